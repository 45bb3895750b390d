"""Optimizers built by :func:`create_optimizer`."""

from .optim_factory import (
    WEIGHT_DECAY_FILTERS,
    create_optimizer,
    list_optimizers,
    optimizer_kwargs,
    split_weight_decay_params,
)
from .trust_ratio import LARS, Lamb

__all__ = [
    "create_optimizer",
    "list_optimizers",
    "optimizer_kwargs",
    "split_weight_decay_params",
    "WEIGHT_DECAY_FILTERS",
    "LARS",
    "Lamb",
]
