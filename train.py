"""Train a registered model; every option is a flag or a YAML key (``python train.py --help``).

    python train.py -c configs/res2net/res2net50_digits_cpu.yaml
    python train.py --model=res2net50 --pretrained --opt=momentum --lr=0.001 dataset=cifar10 --num_classes=10 \\
        --dataset_download
    python train.py -c configs/res2net/res2net50_digits_cpu.yaml --resume auto          # continue a stopped run
    msrun --worker_num=2 --local_worker_num=2 --master_port=8118 --join=True --log_dir=msrun_log \\
        train.py -c configs/res2net/res2net50_digits_cpu.yaml --distribute              # data parallel
"""

import os
import sys

os.environ.setdefault("GLOG_v", "3")  # MindSpore reads it when it loads: errors only, unless the user chose

import contextlib  # noqa: E402
from argparse import Namespace  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from mindcv.config import (  # noqa: E402
    dataset_kwargs,
    loader_kwargs,
    model_kwargs,
    resolve_num_classes,
    run_cli,
    save_config,
    train_step_kwargs,
    transforms_kwargs,
)
from mindcv.data import create_dataset, create_loader, create_transforms  # noqa: E402
from mindcv.engine import EMA, Evaluator, TrainingSummary, TrainStep  # noqa: E402
from mindcv.engine.checkpoint_manager import (  # noqa: E402
    RunCheckpoints,
    prepare_output_dir,
    read_training_checkpoint,
    resolve_resume_path,
    restore_train_state,
    run_lock,
)
from mindcv.engine.trainer import Trainer, build_epoch_loader, describe_schedule  # noqa: E402
from mindcv.loss import create_loss, loss_kwargs  # noqa: E402
from mindcv.models import create_model, get_pretrained_cfg  # noqa: E402
from mindcv.optim import create_optimizer, optimizer_kwargs  # noqa: E402
from mindcv.scheduler import create_scheduler, scheduler_kwargs  # noqa: E402
from mindcv.utils.distributed import init_distributed  # noqa: E402
from mindcv.utils.logger import setup_logger  # noqa: E402
from mindcv.utils.runtime import setup_context  # noqa: E402
from mindcv.utils.seed import set_seed  # noqa: E402


def train(cfg: Namespace) -> None:
    """Build everything from ``cfg`` through the factories and run the epochs."""
    setup_context(cfg.mode, cfg.device_target, cfg.amp_level)
    rank, group_size = init_distributed(cfg.distribute)
    is_main = rank == 0
    folder = prepare_output_dir(cfg.ckpt_save_dir) if is_main else os.path.abspath(cfg.ckpt_save_dir)
    with run_lock(folder) if is_main else contextlib.nullcontext():
        logger = setup_logger(folder, rank)
        if cfg.dataset_sink_mode is not None:
            logger.info(
                "dataset_sink_mode=%s has no effect here: every step is one compiled graph fed without a per-step host "
                "sync (what sink mode gives upstream), and the loss is read back every --log_interval steps",
                cfg.dataset_sink_mode,
            )
        set_seed(cfg.seed)
        num_classes = resolve_num_classes(cfg)
        resume_path = resolve_resume_path(cfg.resume, folder, cfg.model)
        ckpt = read_training_checkpoint(resume_path, cfg.model, num_classes) if resume_path else None
        start_epoch = ckpt.epoch if ckpt else 0
        if start_epoch >= cfg.epoch_size:
            logger.info("%s already completed %d of %d epochs: nothing to do", resume_path, start_epoch, cfg.epoch_size)
            return
        # A resumed run takes every weight from its checkpoint: no pretrained download, no --ckpt_path.
        network = create_model(**model_kwargs(cfg, num_classes, load_weights=ckpt is None))
        pretrained_cfg = get_pretrained_cfg(cfg.model)

        def make_loader(epoch: int, is_training: bool = True):
            dataset = create_dataset(**dataset_kwargs(cfg, is_training, rank, group_size))
            transform = create_transforms(**transforms_kwargs(cfg, is_training, pretrained_cfg))
            return create_loader(dataset, transform=transform, **loader_kwargs(cfg, is_training, num_classes, epoch))

        first_loader = build_epoch_loader(make_loader, cfg.seed, start_epoch)
        batches = first_loader.get_dataset_size()
        val_loader = make_loader(0, is_training=False) if cfg.val_while_train else None
        loss_fn = create_loss(**loss_kwargs(cfg))
        updates_per_epoch = -(-batches // cfg.gradient_accumulation_steps)
        lr_schedule = create_scheduler(updates_per_epoch, **scheduler_kwargs(cfg))
        optimizer = create_optimizer(network, **dict(optimizer_kwargs(cfg), lr=lr_schedule))
        ema = EMA(network, decay=cfg.ema_decay) if cfg.ema else None
        train_step = TrainStep(network, loss_fn, optimizer, ema=ema, **train_step_kwargs(cfg))
        if ckpt is not None:
            restore_train_state(train_step, ckpt, batches)
            logger.info("resumed from %s after epoch %d", ckpt.path, start_epoch)

        n_params = sum(p.size for p in network.trainable_params())
        logger.info(
            "%s (%d classes, %.2fM parameters) on %s, %s mode, %d device(s); %d steps/epoch of %d; lr %s; output %s",
            cfg.model, num_classes, n_params / 1e6, cfg.dataset, "Graph" if cfg.mode == 0 else "PyNative",
            group_size, batches, cfg.batch_size, describe_schedule(lr_schedule), folder,
        )  # fmt: skip
        manager = None  # only rank 0 writes files
        if is_main:
            manager = RunCheckpoints(
                folder,
                cfg.model,
                cfg.keep_checkpoint_max,
                cfg.ckpt_save_policy,
                cfg.ckpt_save_interval,
                steps_per_epoch=batches,
                num_epochs=cfg.epoch_size,
            )
        evaluator = Evaluator(network, cfg.batch_size, num_classes, cfg.distribute, tta=cfg.tta) if val_loader else None
        trainer = Trainer(
            train_step,
            network,
            make_loader,
            model_name=cfg.model,
            num_classes=num_classes,
            epoch_size=cfg.epoch_size,
            seed=cfg.seed,
            lr_schedule=lr_schedule,
            batch_size=cfg.batch_size,
            evaluator=evaluator,
            val_loader=val_loader,
            val_interval=cfg.val_interval,
            ema=ema,
            ckpt_manager=manager,
            summary=TrainingSummary(folder, start_epoch) if is_main else None,
            log_interval=cfg.log_interval,
            group_size=group_size,
            rank=rank,
        )
        if ckpt is not None:
            trainer.load_progress(ckpt.meta)
        if is_main:  # only once everything was built: a refused run leaves no config behind
            save_config(cfg, os.path.join(folder, "config.yaml"))
        result = trainer.fit(start_epoch, first_loader)
        if is_main and result["best_top1"] is not None:
            logger.info(
                "best val top-1 %.2f%% at epoch %d: %s", result["best_top1"], result["best_epoch"],
                os.path.join(folder, f"{cfg.model}-best.ckpt"),
            )  # fmt: skip


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status (0, or 2 after a one-line error)."""
    return run_cli(train, argv, description="Train a mindcv model (flags override the -c YAML file).")


if __name__ == "__main__":
    sys.exit(main())
