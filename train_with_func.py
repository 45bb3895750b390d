"""Upstream MindCV's ``train_with_func.py``: ``train.py`` in PyNative mode, same flags and YAML files.

Upstream runs a ``mindspore.jit`` train function under PyNative; here ``train.py --mode 1`` already does that (the
train step is one ``jit``-compiled graph in both modes), so this script only forces ``--mode 1``.

    python train_with_func.py -c configs/res2net/res2net50_digits_cpu.yaml
"""

import sys
from typing import Optional, Sequence

import train


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns train.py's exit status."""
    return train.main(list(sys.argv[1:] if argv is None else argv) + ["--mode", "1"])


if __name__ == "__main__":
    sys.exit(main())
