"""Shared utilities: errors, downloads, checkpoint files, the train step and EMA."""

from .checkpoint import (
    clean_stale_temporaries,
    is_temporary_checkpoint,
    read_checkpoint,
    save_checkpoint_atomic,
    split_checkpoint,
)
from .download import FileLockTimeout, download_url, file_lock, get_cache_dir, hash_file
from .ema import EMA, ema_to_network_names
from .errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    DownloadError,
    MindCVError,
    UnknownNameError,
    unknown_name_error,
)
from .train_step import TrainStep

__all__ = [
    "MindCVError",
    "ConfigError",
    "UnknownNameError",
    "unknown_name_error",
    "TrainStep",
    "EMA",
    "ema_to_network_names",
    "CheckpointError",
    "DatasetError",
    "DownloadError",
    "FileLockTimeout",
    "download_url",
    "file_lock",
    "get_cache_dir",
    "hash_file",
    "save_checkpoint_atomic",
    "read_checkpoint",
    "split_checkpoint",
    "is_temporary_checkpoint",
    "clean_stale_temporaries",
]
