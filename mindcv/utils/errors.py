"""User-facing error types.

Every error a user can cause with bad input is a :class:`MindCVError`. The command-line scripts print
such errors as one line (problem and fix) without a traceback; anything else is a bug and keeps its
traceback.
"""

__all__ = [
    "MindCVError",
    "ConfigError",
    "UnknownNameError",
    "CheckpointError",
    "DatasetError",
    "DownloadError",
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
