"""Learning-rate schedules: per-update float32 arrays built by :func:`create_scheduler`, and upstream MindCV's
PyTorch-style per-step functions in :mod:`mindcv.scheduler.dynamic_lr`."""

from . import dynamic_lr
from .scheduler_factory import create_scheduler, list_schedulers, scheduler_kwargs, scheduler_lr_at

__all__ = ["create_scheduler", "list_schedulers", "scheduler_lr_at", "scheduler_kwargs", "dynamic_lr"]
