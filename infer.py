"""Classify image files or folders with a mindcv model: top-k classes with probabilities, as text or JSON.

    python infer.py photos/ --model res2net50 --pretrained --topk 5
    python infer.py cat.jpg dog.png --model res2net50 --ckpt_path run/best.ckpt --class_names names.txt \\
        --output json --output_file predictions.json --mode 1

Folders are searched recursively for jpg/jpeg/png/bmp/webp files (any case). Preprocessing follows the
model's config (resize the shorter side to image_size / crop_pct, centre crop, normalise), as
validate.py does. An unreadable image is skipped with a warning and counted (``--strict``: an error).
"""

import os

os.environ.setdefault("GLOG_v", "3")  # MindSpore reads it once, at import: errors only unless the user asks

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from mindcv.config import CHECKPOINT_MODEL_FLAGS, MODEL_FLAGS, SYSTEM_FLAGS, add_options  # noqa: E402
from mindcv.data import resolve_data_config  # noqa: E402
from mindcv.deploy.backends import OnnxRuntimeModel  # noqa: E402
from mindcv.deploy.infer import (  # noqa: E402
    build_inference_model,
    classify_files,
    format_text,
    list_images,
    resolve_class_names,
)
from mindcv.errors import DatasetError  # noqa: E402
from mindcv.utils.cli import ArgumentParser, run_main  # noqa: E402
from mindcv.utils.runtime import setup_context  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` without the program name; None: ``sys.argv[1:]``)."""
    parser = ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="image files and/or folders (searched recursively)")
    add_options(parser.add_argument_group("model"), MODEL_FLAGS, **CHECKPOINT_MODEL_FLAGS)
    group = parser.add_argument_group("data")
    group.add_argument("--class_names", default=None, help="text file, one class name per line in index order")
    group.add_argument("--image_size", type=int, default=None, help="crop size; default: the model's (224)")
    group.add_argument("--crop_pct", type=float, default=None, help="centre-crop fraction; default: the model's")
    group.add_argument("--interpolation", default=None, choices=["nearest", "bilinear", "bicubic", "area"])
    group.add_argument("--batch_size", type=int, default=8, help="images per forward pass")
    group.add_argument("--strict", action="store_true", help="stop at an unreadable image instead of skipping it")
    group = parser.add_argument_group("output")
    group.add_argument("--topk", type=int, default=5, help="classes reported per image")
    group.add_argument("--output", default="text", choices=["text", "json"], help="output format")
    group.add_argument("--output_file", default=None, help="write the output here instead of stdout")
    add_options(parser.add_argument_group("system"), SYSTEM_FLAGS + ("backend", "onnx_cache_dir"))
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.topk < 1:
        parser.error("--batch_size and --topk must be >= 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run inference; returns the exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    setup_context(args.mode, args.device_target)

    files = list_images(args.inputs)
    model, metadata = build_inference_model(
        args.model, args.ckpt_path, args.pretrained, args.num_classes, in_channels=args.in_channels
    )
    class_names = resolve_class_names(model.num_classes, args.class_names, metadata)
    if args.backend == "onnxruntime":  # exported (or taken from the cache) and checked on the first batch
        model = OnnxRuntimeModel(model, cache_dir=args.onnx_cache_dir)
    data_config = resolve_data_config(
        model.pretrained_cfg, image_size=args.image_size, crop_pct=args.crop_pct, interpolation=args.interpolation
    )
    result = classify_files(
        model, files, class_names, data_config, args.batch_size, args.topk, args.strict, fixed_batch=args.mode == 0
    )
    if not result.predictions:
        raise DatasetError(f"none of the {len(result.skipped)} image(s) could be read; see the warnings above")

    if args.output == "json":
        weights = args.ckpt_path or ("pretrained" if args.pretrained else "random init")
        name = model.pretrained_cfg["architecture"]
        text = json.dumps(dict(model=name, weights=weights, **result.to_dict()), indent=2)
    else:
        text = format_text(result)
    if args.output_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
        with open(args.output_file, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
