"""The ground floor: file helpers, downloads, the checkpoint file format, runtime setup, logging, seeds and
distributed helpers. Modules here import only the standard library, numpy, mindspore and :mod:`mindcv.errors`.

Upstream MindCV's helpers keep their names here: ``CheckpointManager`` (the standalone keep-K policy),
``DownLoad``, ``set_seed``, ``get_default_download_root``. ``TrainStep`` and ``EMA`` live in
:mod:`mindcv.engine`; ``mindcv.utils.TrainStep`` and ``mindcv.utils.EMA`` stay valid (they were exported here, as
upstream MindCV does) and resolve on first use, so importing this package never loads the engine.
"""

import importlib
from typing import Any

from ..errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    DownloadError,
    MindCVError,
    UnknownNameError,
    unknown_name_error,
)
from .archive import extract_archive
from .checkpoint import (
    clean_stale_temporaries,
    is_temporary_checkpoint,
    read_checkpoint,
    save_checkpoint_atomic,
    split_checkpoint,
)
from .checkpoint_manager import CheckpointManager
from .download import (
    DownLoad,
    download_url,
    get_cache_dir,
    get_default_download_root,
    hash_file,
    set_default_download_root,
)
from .fs import (
    FileLockTimeout,
    atomic_path,
    atomic_write,
    atomic_write_text,
    file_lock,
    fsync_dir,
    is_temporary,
    new_file_mode,
    temporary_path,
    unlink_quiet,
)
from .seed import set_seed

#: Names kept here for existing imports, and the module that defines each.
COMPAT_ALIASES = {
    "TrainStep": "mindcv.engine.train_step",
    "EMA": "mindcv.engine.ema",
    "ema_to_network_names": "mindcv.engine.ema",
}

__all__ = [
    "MindCVError",
    "ConfigError",
    "UnknownNameError",
    "unknown_name_error",
    "CheckpointError",
    "DatasetError",
    "DownloadError",
    "FileLockTimeout",
    "atomic_path",
    "atomic_write",
    "atomic_write_text",
    "download_url",
    "file_lock",
    "fsync_dir",
    "is_temporary",
    "new_file_mode",
    "temporary_path",
    "unlink_quiet",
    "get_cache_dir",
    "get_default_download_root",
    "set_default_download_root",
    "hash_file",
    "DownLoad",
    "extract_archive",
    "CheckpointManager",
    "set_seed",
    "save_checkpoint_atomic",
    "read_checkpoint",
    "split_checkpoint",
    "is_temporary_checkpoint",
    "clean_stale_temporaries",
    *COMPAT_ALIASES,
]


def __getattr__(name: str) -> Any:
    if name in COMPAT_ALIASES:
        return getattr(importlib.import_module(COMPAT_ALIASES[name]), name)
    raise AttributeError(f"module 'mindcv.utils' has no attribute '{name}'")
