"""Upstream MindCV's root ``config.py`` names, for code and tests written as ``from config import ...``.

Re-exports only; the parser lives in :mod:`mindcv.config`. ``create_parser()`` here returns upstream's pair
``(parser_config, parser)``; ``mindcv.config.create_parser`` returns the full parser alone.
"""

from mindcv.config import check_cfgs_in_parser as _check_cfgs_in_parser  # noqa: F401
from mindcv.config import create_config_parsers as create_parser  # noqa: F401
from mindcv.config import parse_args, save_args  # noqa: F401

__all__ = ["create_parser", "parse_args", "save_args"]
