"""Loss factory: ``create_loss(name, ...)`` over a name -> class registry, names as in upstream MindCV."""

from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

import mindspore as ms
from mindspore import Tensor, nn

from ..errors import ConfigError, unknown_name_error
from .asymmetric import AsymmetricLossMultilabel, AsymmetricLossSingleLabel
from .cross_entropy import BinaryCrossEntropySmooth, CrossEntropySmooth
from .jsd import JSDCrossEntropy

__all__ = ["create_loss", "list_losses", "loss_kwargs"]


def _asl_single_label(smoothing: float, aux_factor: float, reduction: str, weight: Optional[Tensor]) -> nn.Cell:
    return AsymmetricLossSingleLabel(smoothing=smoothing, reduction=reduction)


def _asl_multi_label(smoothing: float, aux_factor: float, reduction: str, weight: Optional[Tensor]) -> nn.Cell:
    # Upstream MindCV builds it with its defaults only: the paper's sum over samples and classes.
    return AsymmetricLossMultilabel()


# name -> builder called with the keywords smoothing, aux_factor, reduction and weight
_LOSSES: Dict[str, Callable[..., nn.Cell]] = {
    "CE": CrossEntropySmooth,
    "BCE": BinaryCrossEntropySmooth,
    "asl_single_label": _asl_single_label,
    "asl_multi_label": _asl_multi_label,
    "jsd": JSDCrossEntropy,
}

_REDUCTIONS = ("mean", "sum", "none")


def list_losses() -> List[str]:
    """Names accepted by :func:`create_loss`."""
    return list(_LOSSES)


def _resolve(name: str) -> str:
    # Upstream MindCV lower-cases the name before matching, so "ce" and "CE" both work there; same here.
    for key in _LOSSES:
        if key.lower() == str(name).lower():
            return key
    raise unknown_name_error("loss", name, _LOSSES, flag="--loss")


def create_loss(
    name: str = "CE",
    weight: Optional[Union[Sequence[float], np.ndarray, Tensor]] = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    aux_factor: float = 0.0,
) -> nn.Cell:
    """Create a classification loss Cell called as ``loss(logits, labels)``.

    Labels may be class indices ``(N,)`` or per-class probabilities ``(N, C)`` (one-hot, mixup/cutmix); see
    :mod:`mindcv.loss.cross_entropy`.

    The arguments and their positional order are upstream MindCV's (``create_loss("CE", None, "sum", 0.1)``).

    Args:
        name: Case-insensitive: ``"CE"`` (softmax cross-entropy), ``"BCE"`` (per-class sigmoid binary
            cross-entropy), ``"asl_single_label"``/``"asl_multi_label"`` (asymmetric losses, see
            :mod:`mindcv.loss.asymmetric`; the multi-label one sums over samples and classes and takes no other
            argument, as upstream) or ``"jsd"`` (AugMix's Jensen-Shannon consistency + cross-entropy, for
            ``--aug_splits 3``).
        weight: Optional per-class weights, length ``C``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: Smoothing ``s`` in ``[0, 1)``; the target becomes ``y * (1 - s) + s / C``.
        aux_factor: Weight of auxiliary logits when the network returns a tuple ``(main, aux, ...)``.

    Returns:
        The loss Cell.

    Raises:
        UnknownNameError: ``name`` is not registered.
        ConfigError: an argument is out of range.
    """
    key = _resolve(name)
    if not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
    if aux_factor < 0:
        raise ConfigError(f"aux_factor must be >= 0, got {aux_factor}")
    if reduction not in _REDUCTIONS:
        raise ConfigError(f"reduction must be one of {', '.join(_REDUCTIONS)}, got '{reduction}'")
    weight_t = None
    if weight is not None:
        w = weight.asnumpy() if isinstance(weight, Tensor) else np.asarray(weight)
        if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ConfigError("loss weight must be a non-empty 1-D list of finite, non-negative per-class weights")
        weight_t = Tensor(w.astype(np.float32), ms.float32)
    return _LOSSES[key](smoothing=label_smoothing, aux_factor=aux_factor, reduction=reduction, weight=weight_t)


def loss_kwargs(cfg: Any) -> Dict[str, Any]:
    """Map a parsed configuration (upstream MindCV flag names) onto :func:`create_loss` kwargs.

    Reads ``loss`` (-> ``name``), ``label_smoothing``, ``aux_factor`` and ``reduction``; absent keys keep the
    defaults. Use as ``create_loss(**loss_kwargs(cfg))``.
    """
    mapping = {
        "loss": "name",
        "label_smoothing": "label_smoothing",
        "aux_factor": "aux_factor",
        "reduction": "reduction",
    }
    return {kw: getattr(cfg, key) for key, kw in mapping.items() if hasattr(cfg, key)}
