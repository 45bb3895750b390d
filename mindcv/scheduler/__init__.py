"""Learning-rate schedules: per-update float32 arrays built by :func:`create_scheduler`."""

from .scheduler_factory import create_scheduler, list_schedulers, scheduler_kwargs, scheduler_lr_at

__all__ = ["create_scheduler", "list_schedulers", "scheduler_lr_at", "scheduler_kwargs"]
