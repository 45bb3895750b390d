"""User-facing error types.

Every error a user can cause with bad input is a :class:`MindCVError`. The command-line scripts print
such errors as one line (problem and fix) without a traceback; anything else is a bug and keeps its
traceback.
"""

import difflib
from typing import Iterable

__all__ = [
    "unknown_name_error",
    "MindCVError",
    "ConfigError",
    "UnknownNameError",
    "CheckpointError",
    "DatasetError",
    "DownloadError",
    "BackendError",
]


class MindCVError(Exception):
    """Base class of errors caused by user input; the message names the problem and the fix."""


class ConfigError(MindCVError, ValueError):
    """A configuration value, key or combination of options is invalid."""


class UnknownNameError(MindCVError, ValueError):
    """A name (model, dataset, optimizer, ...) is not registered."""


class CheckpointError(MindCVError, ValueError):
    """A checkpoint is missing, unreadable, corrupt or does not fit the model."""


class DatasetError(MindCVError, ValueError):
    """A dataset folder, file or label is missing or malformed."""


class DownloadError(MindCVError, OSError):
    """A file could not be downloaded or failed its integrity check."""


class BackendError(MindCVError, RuntimeError):
    """An inference backend is not installed, or an exported model does not compute what the MindSpore model does."""


def unknown_name_error(kind: str, name: object, choices: Iterable[str], flag: str = "") -> UnknownNameError:
    """One-line error for a name not in ``choices``, listing the closest matches first, then the rest.

    Args:
        kind: what was looked up ("optimizer", "dataset", ...).
        name: the name given.
        choices: the valid names, in the order to list them.
        flag: the command-line option that sets it, named in the fix (e.g. ``"--opt"``).
    """
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = [lowered[c] for c in difflib.get_close_matches(str(name).lower(), list(lowered), n=3, cutoff=0.5)]
    ordered = close + [c for c in choices if c not in close]
    where = f" (set {flag})" if flag else ""
    return UnknownNameError(f"unknown {kind} '{name}'; choose one of: {', '.join(ordered)}{where}")
