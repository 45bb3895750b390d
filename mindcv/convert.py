"""``python -m mindcv.convert``: the weight converter's command line (implemented in :mod:`mindcv.deploy.convert`)."""

import sys

from .deploy.convert import *  # noqa: F401,F403 (the converter's public names, for `from mindcv.convert import ...`)
from .deploy.convert import main

if __name__ == "__main__":
    sys.exit(main())
