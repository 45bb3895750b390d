"""Where a training step's time goes, per operator category, ours (MindSpore profiler) beside timm (torch.profiler).

    python benchmarks/profile_ops.py --model res2net50 --image_size 32 --batch_size 32 --steps 3

Each framework runs in its own process on the CPU with the same batch, image size and thread count. For each
category (convolution, matmul, batchnorm, pooling, elementwise, layout and copies, loss, optimizer, other) it
prints kernel milliseconds and kernel launches per step; below them the kernel total, the host time (step wall
time without the profiler, minus the kernel time: dispatch, memory management, Python) and the wall time; then
each side's most expensive operators. The category rules are ``OP_CATEGORIES`` in ``benchmarks/harness.py``; past
results are in ``docs/performance.md``.
"""

import argparse
import json
import os
from typing import Optional, Sequence

import harness  # this folder's benchmarks/harness.py: a script's own folder comes first on sys.path

from mindcv.deploy.convert import TORCH_EQUIVALENTS


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="res2net50", choices=sorted(TORCH_EQUIVALENTS))
    parser.add_argument("--task", default="train", choices=["train", "infer"])
    parser.add_argument("--mode", default="graph", choices=["graph", "pynative"])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="unprofiled and then profiled steps, each")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch intra-op threads")
    parser.add_argument("--no_torch", action="store_true", help="profile ours only")
    parser.add_argument("--json", default=None, help="also write both results here")
    args = parser.parse_args(argv)
    try:
        import timm  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        args.no_torch = True
        print("torch/timm not installed: profiling mindcv only (pip install -e '.[test]' for the comparison)")

    common = dict(task=args.task, batch_size=args.batch_size, image_size=args.image_size, steps=args.steps)
    ours = harness.run_isolated("mindspore_ops", model_name=args.model, mode=args.mode, **common)
    if "error" in ours:
        print(f"profiling {args.model} failed: {ours['error']}")
        return 1
    theirs = None
    if not args.no_torch:
        theirs = harness.run_isolated(
            "torch_ops", model_name=TORCH_EQUIVALENTS[args.model], threads=args.threads, **common
        )
        if "error" in theirs:
            print(f"profiling timm's {TORCH_EQUIVALENTS[args.model]} failed: {theirs['error']}")
    print(
        f"{args.model} {args.task}, batch {args.batch_size}, {args.image_size}x{args.image_size}, "
        f"ours {args.mode} mode vs PyTorch eager, {args.steps} steps each"
    )
    print(harness.format_report(ours, theirs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ours": ours, "pytorch": theirs}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
