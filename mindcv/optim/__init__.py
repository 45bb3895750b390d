"""Optimizers built by :func:`create_optimizer`."""

from .adamw import AdamWeightDecay
from .fused import FusedMomentum
from .optim_factory import (
    FUSED_OPTIMIZER_CHOICES,
    WEIGHT_DECAY_FILTERS,
    create_optimizer,
    list_optimizers,
    optimizer_kwargs,
    param_layer_ids,
    split_weight_decay_params,
)
from .trust_ratio import LARS, Lamb

__all__ = [
    "create_optimizer",
    "list_optimizers",
    "optimizer_kwargs",
    "split_weight_decay_params",
    "param_layer_ids",
    "WEIGHT_DECAY_FILTERS",
    "FUSED_OPTIMIZER_CHOICES",
    "AdamWeightDecay",
    "FusedMomentum",
    "LARS",
    "Lamb",
]
