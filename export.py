"""Export a mindcv model to MINDIR and/or ONNX (AIR on Ascend) for a fixed input shape.

    python export.py --model res2net50 --pretrained --file_format both --output res2net50
    python export.py --model res2net50 --ckpt_path run/best.ckpt --batch_size 1 --image_size 224 --output out/r50
    python export.py --model res2net50 --pretrained --file_format both --check   # run each file against the model

The model is exported in eval mode; each file is written under a temporary name and renamed when
complete. Reload a MINDIR with ``nn.GraphCell(mindspore.load(path))``; the ONNX graph has one input
``input`` (N, C, H, W) and one output ``logits``.
"""

import os

os.environ.setdefault("GLOG_v", "3")  # MindSpore reads it once, at import: errors only unless the user asks

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from mindcv.config import CHECKPOINT_MODEL_FLAGS, MODEL_FLAGS, SYSTEM_FLAGS, add_options  # noqa: E402
from mindcv.data import resolve_data_config  # noqa: E402
from mindcv.deploy.export import CHECKABLE_FORMATS, check_export, export_model, resolve_formats  # noqa: E402
from mindcv.deploy.infer import build_inference_model  # noqa: E402
from mindcv.deploy.onnx_runtime import CHECK_TOLERANCE, import_onnxruntime  # noqa: E402
from mindcv.errors import ConfigError  # noqa: E402
from mindcv.utils.cli import ArgumentParser, run_main  # noqa: E402
from mindcv.utils.runtime import setup_context  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv`` without the program name; None: ``sys.argv[1:]``)."""
    parser = ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_options(parser.add_argument_group("model"), MODEL_FLAGS, **CHECKPOINT_MODEL_FLAGS)
    group = parser.add_argument_group("export")
    group.add_argument(
        "--file_format",
        default="MINDIR",
        type=str.upper,
        choices=["MINDIR", "ONNX", "AIR", "BOTH"],
        help="BOTH: MINDIR and ONNX; AIR needs --device_target Ascend",
    )
    group.add_argument(
        "--check",
        action="store_true",
        help="after writing, run each file (ONNX under onnxruntime, MINDIR through MindSpore) and the model on one "
        f"random batch; print the max relative difference and fail above {CHECK_TOLERANCE:g}",
    )
    group.add_argument("--batch_size", type=int, default=1, help="batch dimension of the exported input")
    group.add_argument("--image_size", type=int, default=None, help="input height/width; default: the model's (224)")
    group.add_argument(
        "--output", default=None, help="output path; the format's extension is added (default: model name)"
    )
    add_options(parser.add_argument_group("system"), SYSTEM_FLAGS)
    args = parser.parse_args(argv)
    for name in ("batch_size", "image_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Export the model; returns the exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    setup_context(args.mode, args.device_target)
    formats = resolve_formats(args.file_format)  # reject AIR off Ascend before building (or downloading) the model
    if args.check:
        if any(f not in CHECKABLE_FORMATS for f in formats):
            raise ConfigError("--check runs ONNX and MINDIR files; AIR needs Ascend's own tools: leave out --check")
        if "ONNX" in formats:
            import_onnxruntime()  # before the export, not after it

    model, _ = build_inference_model(
        args.model, args.ckpt_path, args.pretrained, args.num_classes, in_channels=args.in_channels
    )
    image_size = resolve_data_config(model.pretrained_cfg, image_size=args.image_size)["image_size"]
    shape = (args.batch_size, args.in_channels, image_size, image_size)
    output = args.output or model.pretrained_cfg["architecture"]
    for path in export_model(model, output, shape, args.file_format):
        print(path, flush=True)
        if args.check:
            diff = check_export(model, path, shape)
            print(f"check {path}: max relative difference {diff:.3g} <= {CHECK_TOLERANCE:g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
