"""Evaluate a model's top-1, top-5 and loss over every image of a split (``python validate.py --help``).

python validate.py --model=res2net50 --dataset=imagenet --val_split=val --ckpt_path=./ckpt/res2net50-best.ckpt
python validate.py -c configs/res2net/res2net50_digits_cpu.yaml --ckpt_path=./ckpt/res2net50-best.ckpt
python validate.py --model=res2net50 --pretrained --data_dir=/data/imagenet --results_file=res2net50.json
"""

import os
import sys

os.environ.setdefault("GLOG_v", "3")  # MindSpore reads it when it loads: errors only, unless the user chose

from argparse import Namespace  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from mindcv.config import (  # noqa: E402
    dataset_kwargs,
    loader_kwargs,
    model_kwargs,
    resolve_num_classes,
    run_cli,
    transforms_kwargs,
)
from mindcv.data import create_dataset, create_loader, create_transforms  # noqa: E402
from mindcv.deploy.backends import OnnxRuntimeModel  # noqa: E402
from mindcv.engine.evaluator import Evaluator, check_results_file, save_results  # noqa: E402
from mindcv.errors import ConfigError  # noqa: E402
from mindcv.models import create_model, get_pretrained_cfg, load_model_checkpoint  # noqa: E402
from mindcv.utils.distributed import init_distributed  # noqa: E402
from mindcv.utils.logger import setup_logger  # noqa: E402
from mindcv.utils.runtime import setup_context  # noqa: E402


def validate(cfg: Namespace) -> None:
    """Load the weights named by ``cfg`` and evaluate them on ``cfg.val_split``."""
    setup_context(cfg.mode, cfg.device_target, cfg.val_amp_level)
    rank, group_size = init_distributed(cfg.distribute)
    logger = setup_logger(None, rank)
    if not cfg.pretrained and not cfg.ckpt_path:
        raise ConfigError(
            f"no weights to evaluate: pass --ckpt_path FILE (e.g. ./ckpt/{cfg.model}-best.ckpt) or --pretrained"
        )
    if cfg.ema and not cfg.ckpt_path:
        raise ConfigError("--ema evaluates the EMA weights of a training checkpoint: pass --ckpt_path")
    if cfg.results_file:
        check_results_file(cfg.results_file)
    num_classes = resolve_num_classes(cfg, is_training=False)

    # With --ema the regular weights are skipped and the checkpoint's ema.* entries loaded instead.
    network = create_model(**model_kwargs(cfg, num_classes, load_weights=not cfg.ema))
    if cfg.ema:
        load_model_checkpoint(network, cfg.ckpt_path, ema=True)
    if cfg.backend == "onnxruntime":  # exported (or taken from the cache) and checked on the first batch
        network = OnnxRuntimeModel(network, cache_dir=cfg.onnx_cache_dir)
    dataset = create_dataset(**dataset_kwargs(cfg, False, rank, group_size))
    transform = create_transforms(**transforms_kwargs(cfg, False, get_pretrained_cfg(cfg.model)))
    loader = create_loader(dataset, transform=transform, **loader_kwargs(cfg, False, num_classes))

    evaluator = Evaluator(network, cfg.batch_size, num_classes, cfg.distribute, cfg.val_amp_level, tta=cfg.tta)
    metrics = evaluator.evaluate(loader)
    timing = evaluator.timing
    weights = "pretrained" if cfg.pretrained else cfg.ckpt_path + (" (EMA)" if cfg.ema else "")
    tta = "" if cfg.tta == "none" else f", {cfg.tta} TTA"
    logger.info(
        "%s on %s/%s, %s%s, %s: top-1 %.2f%%, top-5 %.2f%%, loss %.4f over %d images in %.1f s (first batch "
        "%.1f s with compilation/export, then %.1f img/s)",
        cfg.model, cfg.dataset, cfg.val_split, weights, tta, cfg.backend, metrics["top1"], metrics["top5"],
        metrics["loss"], metrics["num_samples"], timing["seconds"], timing["first_batch_s"],
        timing["steady_img_per_s"],
    )  # fmt: skip
    if rank == 0:  # upstream's result line, in 0-1 units, that scripts written against upstream parse
        upstream = {"Top_1_Accuracy": metrics["top1"] / 100.0}
        if num_classes >= 5:
            upstream["Top_5_Accuracy"] = metrics["top5"] / 100.0
        print(dict(upstream, loss=metrics["loss"]), flush=True)
    if rank == 0 and cfg.results_file:
        results = dict(
            model=cfg.model, weights=weights, tta=cfg.tta, backend=cfg.backend, dataset=cfg.dataset,
            split=cfg.val_split, num_classes=num_classes, top1=metrics["top1"], top5=metrics["top5"],
            loss=metrics["loss"],
            num_samples=metrics["num_samples"], seconds=round(timing["seconds"], 3),
            steady_img_per_s=round(timing["steady_img_per_s"], 2),
        )  # fmt: skip
        logger.info("results written to %s", save_results(cfg.results_file, results))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status (0, or 2 after a one-line error)."""
    return run_cli(validate, argv, description="Evaluate a mindcv model (flags override the -c YAML file).")


if __name__ == "__main__":
    sys.exit(main())
