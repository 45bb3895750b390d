"""Shared utilities: errors, downloads, checkpoint files."""

from .checkpoint import (
    clean_stale_temporaries,
    is_temporary_checkpoint,
    read_checkpoint,
    save_checkpoint_atomic,
    split_checkpoint,
)
from .download import FileLockTimeout, download_url, file_lock, get_cache_dir, hash_file
from .errors import CheckpointError, ConfigError, DatasetError, DownloadError, MindCVError, UnknownNameError

__all__ = [
    "MindCVError",
    "ConfigError",
    "UnknownNameError",
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
