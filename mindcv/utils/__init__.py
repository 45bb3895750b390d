"""Shared utilities: errors, downloads, checkpoints, logging, seeding, configuration."""
from .errors import CheckpointError, ConfigError, DatasetError, DownloadError, MindCVError, UnknownNameError

__all__ = ["MindCVError", "ConfigError", "UnknownNameError", "CheckpointError", "DatasetError", "DownloadError"]
