"""Classification losses built by :func:`create_loss`."""

from .asymmetric import AsymmetricLossMultilabel, AsymmetricLossSingleLabel
from .cross_entropy import BinaryCrossEntropySmooth, CrossEntropySmooth
from .jsd import JSDCrossEntropy
from .loss_factory import create_loss, list_losses, loss_kwargs

__all__ = [
    "create_loss",
    "list_losses",
    "loss_kwargs",
    "CrossEntropySmooth",
    "BinaryCrossEntropySmooth",
    "AsymmetricLossSingleLabel",
    "AsymmetricLossMultilabel",
    "JSDCrossEntropy",
]
