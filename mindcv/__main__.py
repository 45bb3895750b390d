"""``python -m mindcv``: build every registered model, run one forward pass and print a table.

A quick self-check of an installation: it needs no data and no network.
"""

import argparse
import time
from typing import Optional, Sequence

import numpy as np

import mindspore as ms

from . import create_model, list_models


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print name, parameter count, output shape and forward time of each model."""
    parser = argparse.ArgumentParser(prog="python -m mindcv", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="model names or wildcards (default: all)")
    parser.add_argument("--image_size", type=int, default=64, help="input height and width")
    parser.add_argument("--batch_size", type=int, default=2)
    args = parser.parse_args(argv)

    names = list_models(args.models) if args.models else list_models()
    x = ms.Tensor(
        np.random.default_rng(0).standard_normal((args.batch_size, 3, args.image_size, args.image_size)), ms.float32
    )
    print(f"| model | params | output shape | forward (ms, {args.batch_size}x3x{args.image_size}x{args.image_size}) |")
    print("|---|---:|---|---:|")
    for name in names:
        model = create_model(name)
        model.set_train(False)
        n_params = sum(int(np.prod(p.shape)) for p in model.trainable_params())
        start = time.perf_counter()
        out = model(x)
        out.asnumpy()
        ms_taken = (time.perf_counter() - start) * 1000
        print(f"| {name} | {n_params:,} | {tuple(out.shape)} | {ms_taken:.0f} |", flush=True)
        del model
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
