"""Benchmark training and inference speed, compile time and peak memory of mindcv models.

    python benchmark.py --device_target CPU --models res2net50 res2net50_v1b --modes graph pynative \\
        --batch_size 32 --image_size 224 --json benchmark_cpu.json

Each (model, mode, task) runs in a fresh process on fixed random inputs (no data loading). The
ImageNet epoch time is an estimate: steady-state step time x ceil(1,281,167 / global batch). The
measurements are ``benchmarks/harness.py``'s; past results are in ``docs/performance.md``. On the CPU,
with onnxruntime installed, each model also gets an inference row through the onnxruntime backend
(``validate.py --backend onnxruntime``'s engine, on our exported ONNX file).
"""

import argparse
import importlib.util
import json
import platform
from typing import Optional, Sequence

from benchmarks.harness import benchmark_rows, markdown_table


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device_target", default="CPU", choices=["CPU", "GPU", "Ascend"])
    parser.add_argument("--models", nargs="+", default=["res2net50", "res2net101", "res2net50_v1b", "res2net101_v1b"])
    parser.add_argument("--modes", nargs="+", default=["graph", "pynative"], choices=["graph", "pynative"])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--global_batch", type=int, default=None, help="for the epoch estimate (default: batch_size)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps after the compiling first call")
    parser.add_argument(
        "--onnxruntime",
        default="auto",
        choices=["auto", "yes", "no"],
        help="add an inference row per model through the onnxruntime backend (auto: on CPU, if it is installed)",
    )
    parser.add_argument("--json", default="benchmark.json", help="where to write all figures")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.image_size < 32 or args.steps < 1:
        parser.error("need --batch_size >= 1, --image_size >= 32 and --steps >= 1")

    onnxruntime = args.onnxruntime == "yes" or (
        args.onnxruntime == "auto"
        and args.device_target == "CPU"
        and importlib.util.find_spec("onnxruntime") is not None
    )
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}; device {args.device_target}")
    print(markdown_table([], header=True))
    rows = benchmark_rows(
        args.models,
        args.modes,
        args.batch_size,
        args.image_size,
        args.device_target,
        steps=args.steps,
        warmup=args.warmup,
        global_batch=args.global_batch,
        onnxruntime=onnxruntime,
    )
    print("\n" + markdown_table(rows))
    print("* estimate from the measured step time; ** published by upstream MindCV, not reproduced here")
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump({"device_target": args.device_target, "rows": rows}, f, indent=2)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
