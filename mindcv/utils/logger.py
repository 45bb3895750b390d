"""The ``mindcv`` logger of the scripts: INFO lines on stdout, and ``train.log`` in the output folder.

Only rank 0 of a distributed run writes the file; every rank prints, so msrun's per-worker logs
(``msrun_log/worker_N.log``) show each rank's progress.
"""

import contextlib
import logging
import os
import sys
from typing import Iterator, Optional

__all__ = ["setup_logger", "close_logger", "mindspore_log_muted", "LOGGER_NAME"]

LOGGER_NAME = "mindcv"
_FORMAT = "[%(asctime)s] %(message)s"
_DATEFMT = "%Y-%m-%d %H:%M:%S"


def setup_logger(
    output_dir: Optional[str] = None, rank: int = 0, filename: str = "train.log", level: int = logging.INFO
) -> logging.Logger:
    """Configure and return the ``mindcv`` logger, replacing handlers of an earlier call in this process.

    Args:
        output_dir: Folder of the log file; None logs to stdout only.
        rank: The process's rank; only rank 0 writes the file, and other ranks prefix their lines.
        filename: Log file name inside ``output_dir`` (appended to, so a resumed run continues it).
        level: Logging level.

    Returns:
        The configured logger.
    """
    logger = close_logger()
    logger.setLevel(level)
    logger.propagate = False
    prefix = f"[rank {rank}] " if rank else ""
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter(prefix + _FORMAT, _DATEFMT))
    logger.addHandler(console)
    if output_dir is not None and rank == 0:
        file_handler = logging.FileHandler(os.path.join(output_dir, filename), encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(_FORMAT, _DATEFMT))
        logger.addHandler(file_handler)
    return logger


def close_logger() -> logging.Logger:
    """Remove and close the handlers of the ``mindcv`` logger (the log file is flushed and released).

    The logger goes back to a library's default (propagating, level unset), so code that runs after a
    script in the same process (tests, notebooks) sees mindcv's messages through the root logger again.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
    return logger


@contextlib.contextmanager
def mindspore_log_muted(min_level: int = logging.NOTSET) -> Iterator[None]:
    """Drop MindSpore's Python log records at ``min_level`` and above during a block whose failure mindcv reports
    itself in one line (MindSpore would print its own lines about it first).

    Args:
        min_level: The lowest level dropped; the default drops everything.
    """
    try:
        from mindspore import log as ms_log  # mindspore is a dependency; its logger module is internal

        ms_logger = ms_log._get_logger()  # private, but the only handle on MindSpore's own logger
    except Exception:  # noqa: BLE001 - a MindSpore without it: just show its lines
        yield
        return

    def keep(record: logging.LogRecord) -> bool:
        return record.levelno < min_level

    ms_logger.addFilter(keep)
    try:
        yield
    finally:
        ms_logger.removeFilter(keep)
