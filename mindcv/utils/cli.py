"""What every command-line entry point shares: one-line errors for user mistakes, status 2.

Each script's ``main(argv=None)`` returns ``run_main(body, argv)`` (train/validate go through
:func:`mindcv.config.run_cli`, which parses their configuration first): any
:class:`~mindcv.errors.MindCVError` (bad input: a wrong option, a missing file, an unreachable download...)
becomes one line ``error: <problem and fix>`` on stderr and exit status 2, with the traceback only under
``--debug``. Anything else is a bug and keeps its traceback.
"""

import argparse
import logging
import sys
import traceback
from typing import Callable, Optional, Sequence

from ..errors import ConfigError, MindCVError
from .logger import close_logger
from .runtime import quiet_cell_teardown

__all__ = ["run_main", "ArgumentParser", "EXIT_USAGE"]

#: Exit status of a user error (the argparse convention).
EXIT_USAGE = 2

_logger = logging.getLogger("mindcv")


def _wants_debug(argv: Sequence[str]) -> bool:
    """``--debug`` (or ``debug=true``) on the command line, found even when parsing itself fails."""
    for i, token in enumerate(argv):
        key, _, value = token.lstrip("-").partition("=")
        if key != "debug" or (token.startswith("-") and not token.startswith("--")):
            continue
        if not value and i + 1 < len(argv) and not argv[i + 1].startswith("-") and "=" not in argv[i + 1]:
            value = argv[i + 1]
        return value.lower() not in ("false", "0", "no", "n", "off")
    return False


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


class ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`ConfigError` (one line) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message} (see --help)")


def run_main(
    main_fn: Callable[[Sequence[str]], Optional[int]],
    argv: Optional[Sequence[str]] = None,
    debug_requested: Optional[Callable[[], bool]] = None,
) -> int:
    """Call ``main_fn(argv)``, turning user errors into one ``error:`` line and status 2.

    Args:
        main_fn: The script's body; it parses ``argv`` itself (with :class:`ArgumentParser`) and returns
            an exit status or None.
        argv: Command-line tokens without the program name; None reads ``sys.argv[1:]``.
        debug_requested: Asked after a failure whether tracebacks were requested some other way than
            ``--debug`` on the command line (e.g. ``debug: true`` in a YAML file).

    Returns:
        ``main_fn``'s status (None counts as 0), :data:`EXIT_USAGE` after a user error, 130 after Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _wants_debug(argv)
    quiet_cell_teardown()
    try:
        return int(main_fn(argv) or 0)
    except MindCVError as e:
        if debug or (debug_requested is not None and debug_requested()):
            traceback.print_exc()
        message = _one_line(e)
        _log_to_files(f"error: {message}")  # the reason stays in train.log too
        print(f"error: {message}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _log_to_files("interrupted")
        print(
            "error: interrupted; the last completed checkpoint is kept (continue with --resume auto)", file=sys.stderr
        )
        return 130
    finally:
        close_logger()  # a later run in the same process (tests, notebooks) starts clean


def _log_to_files(text: str) -> None:
    record = _logger.makeRecord(_logger.name, logging.ERROR, __file__, 0, "%s", (text,), None)
    for handler in _logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
