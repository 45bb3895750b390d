"""Print a markdown table of parameter counts and MACs for registered models, measured from the models.

    python tools/model_stats.py                         # every registered model
    python tools/model_stats.py --models res2net50 res2net50_v1b --image_size 224

MACs are the multiply-accumulates of convolutions and dense layers for one image, measured by one
PyNative forward pass with shape hooks (see ``mindcv/utils/model_stats.py`` for what is counted).
Total parameters also count the batch-norm moving statistics.
"""

import os

os.environ.setdefault("GLOG_v", "3")  # MindSpore reads it once, at import: errors only unless the user asks

import gc  # noqa: E402
import sys  # noqa: E402
from typing import List, Optional, Sequence  # noqa: E402

import mindspore as ms  # noqa: E402

from mindcv.models import create_model, list_models  # noqa: E402
from mindcv.utils.cli import ArgumentParser, run_main  # noqa: E402
from mindcv.utils.model_stats import count_params, profile_macs  # noqa: E402


def stats_rows(model_names: Sequence[str], image_size: int = 224, num_classes: int = 1000) -> List[List[str]]:
    """One formatted table row per model: name, trainable params, total params, GMACs."""
    rows = []
    for name in model_names:
        model = create_model(name, num_classes=num_classes)
        trainable, total = count_params(model)
        macs = profile_macs(model, (3, image_size, image_size)).macs
        rows.append([name, f"{trainable:,}", f"{total:,}", f"{macs / 1e9:.2f}"])
        del model
        gc.collect()  # the 152-layer models hold ~250 MB each; free before the next
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the table; returns the exit code."""
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=None, help="model names (default: all registered)")
    parser.add_argument("--image_size", type=int, default=224, help="square input size for the MAC count")
    parser.add_argument("--num_classes", type=int, default=1000, help="classifier outputs")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    args = parser.parse_args(argv)
    if args.image_size < 32 or args.num_classes < 1:
        parser.error("need --image_size >= 32 and --num_classes >= 1")
    ms.set_context(mode=ms.PYNATIVE_MODE)

    print(f"| model | trainable params | total params | MACs (G) @{args.image_size} |")
    print("|---|---:|---:|---:|")
    for row in stats_rows(args.models or list_models(), args.image_size, args.num_classes):
        print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
