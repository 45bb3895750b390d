"""Optimizer factory: ``create_optimizer(params_or_model, opt, ...)`` with names and arguments from upstream MindCV.

| name     | implementation                                     | weight decay                      |
|----------|----------------------------------------------------|-----------------------------------|
| sgd      | ``nn.SGD`` (with ``momentum``, ``nesterov``)       | L2, added to the gradient (*)     |
| momentum | ``nn.Momentum`` (``nn.SGD`` when ``nesterov``) (f) | L2 (*)                            |
| nesterov | ``nn.SGD(nesterov=True)``                          | L2 (*)                            |
| adam     | ``nn.Adam``                                        | L2                                |
| adamw    | ``nn.AdamWeightDecay``                             | decoupled (Loshchilov & Hutter)   |
| lamb     | :class:`mindcv.optim.trust_ratio.Lamb`             | decoupled, inside the trust ratio |
| lars     | :class:`mindcv.optim.trust_ratio.LARS` (momentum)  | L2, inside the trust ratio        |
| rmsprop  | ``nn.RMSProp``                                     | L2                                |
| adagrad  | ``nn.Adagrad``                                     | L2                                |

(*) Through :mod:`mindcv.optim.l2_decay`: the same classes with the decay added in one kernel per parameter.
(f) On the CPU, :class:`mindcv.optim.fused.FusedMomentum` when it applies (``fused``): the same update as one kernel.

Nesterov momentum goes through ``nn.SGD`` because ``nn.Momentum(use_nesterov=True)`` silently takes the plain
momentum step on the CPU in MindSpore 2.10 (two updates of w=1 with g=1, lr=0.1, momentum=0.9 give 0.71 instead of
0.539); ``nn.SGD`` with ``dampening=0`` has the same update rule and gets Nesterov right.

With ``filter_bias_and_bn`` the parameters are split into two groups: weights with ``weight_decay``, and biases and
normalisation parameters (every parameter with at most one dimension: BN/LN gamma and beta, biases) without.
Decaying those only pulls BN scales and biases towards zero and is known to hurt accuracy (Goyal et al.,
arXiv:1706.02677; He et al., "Bag of Tricks", arXiv:1812.01187).
"""

import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn

from ..errors import ConfigError, unknown_name_error
from .fused import FusedKernelError, FusedMomentum
from .l2_decay import SGD, Momentum
from .trust_ratio import LARS, Lamb

__all__ = [
    "create_optimizer",
    "list_optimizers",
    "optimizer_kwargs",
    "split_weight_decay_params",
    "WEIGHT_DECAY_FILTERS",
    "FUSED_OPTIMIZER_CHOICES",
]

_logger = logging.getLogger(__name__)

LearningRate = Union[float, Sequence[float], np.ndarray, Tensor]
Params = Union[nn.Cell, Sequence[Parameter], Sequence[dict]]

# Upstream MindCV's --weight_decay_filter values and what they mean for filter_bias_and_bn. Upstream "auto" also
# honours a model's no_weight_decay() list; Res2Net has no such list, so it filters exactly what "norm_and_bias" does.
WEIGHT_DECAY_FILTERS: Dict[str, bool] = {"disable": False, "auto": True, "norm_and_bias": True}
# --fused_optimizer values and the create_optimizer(fused=...) they mean.
FUSED_OPTIMIZER_CHOICES: Dict[str, Optional[bool]] = {"auto": None, "true": True, "false": False}


def _is_bias_or_norm(param: Parameter) -> bool:
    return len(param.shape) <= 1 or param.name.endswith((".bias", ".beta", ".gamma"))


def split_weight_decay_params(params: Sequence[Parameter], weight_decay: float) -> List[dict]:
    """Group parameters so that biases and normalisation parameters get no weight decay.

    Args:
        params: Trainable parameters.
        weight_decay: Decay of the remaining (weight) parameters.

    Returns:
        MindSpore parameter groups: ``[{"params": weights, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0}, {"order_params": params}]``; an empty group is left out.
    """
    decay = [p for p in params if not _is_bias_or_norm(p)]
    no_decay = [p for p in params if _is_bias_or_norm(p)]
    groups: List[dict] = []
    if decay:
        groups.append({"params": decay, "weight_decay": float(weight_decay)})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    # order_params keeps the optimizer's parameter order equal to the network's, so the gradient tuple lines up.
    groups.append({"order_params": list(params)})
    return groups


@dataclass(frozen=True)
class _Hyper:
    """Hyper-parameters shared by the builders below; each optimizer reads the ones it has."""

    weight_decay: float
    momentum: float
    nesterov: bool
    loss_scale: float
    eps: float
    betas: Tuple[float, float]
    trust_coefficient: float
    filter_bias_and_bn: bool
    fused: Optional[bool]

    def adapt_filter(self) -> Optional[Callable[[Parameter], bool]]:
        """LARS/LAMB skip the trust ratio for the parameters exempt from weight decay (timm does the same)."""
        return (lambda p: not _is_bias_or_norm(p)) if self.filter_bias_and_bn else None


def _sgd(params: list, lr: LearningRate, h: _Hyper) -> nn.Optimizer:
    return SGD(
        params, lr, momentum=h.momentum, weight_decay=h.weight_decay, nesterov=h.nesterov, loss_scale=h.loss_scale
    )


def _momentum(params: list, lr: LearningRate, h: _Hyper) -> nn.Optimizer:
    if h.nesterov:
        return _nesterov(params, lr, h)
    if h.fused is not False and (h.fused or ms.get_context("device_target") == "CPU"):
        try:
            return FusedMomentum(params, lr, h.momentum, weight_decay=h.weight_decay, loss_scale=h.loss_scale)
        except FusedKernelError as e:
            if h.fused:
                raise FusedKernelError(f"{e}; use fused=False (--fused_optimizer false)") from None
            _warn_unfused(str(e))
    return Momentum(params, lr, h.momentum, weight_decay=h.weight_decay, loss_scale=h.loss_scale)


@functools.lru_cache(maxsize=None)
def _warn_unfused(reason: str) -> None:
    """Once per reason: the CPU default could not use the fused kernel (a missing compiler is worth knowing)."""
    _logger.warning("momentum: %s; using nn.Momentum (set --fused_optimizer false to silence this)", reason)


def _nesterov(params: list, lr: LearningRate, h: _Hyper) -> nn.Optimizer:
    return SGD(params, lr, momentum=h.momentum, weight_decay=h.weight_decay, nesterov=True, loss_scale=h.loss_scale)


def _adam(params: list, lr: LearningRate, h: _Hyper) -> nn.Optimizer:
    b1, b2 = h.betas
    return nn.Adam(
        params,
        lr,
        beta1=b1,
        beta2=b2,
        eps=h.eps,
        use_nesterov=h.nesterov,
        weight_decay=h.weight_decay,
        loss_scale=h.loss_scale,
    )


def _adamw(params: list, lr: LearningRate, h: _Hyper) -> nn.Optimizer:
    return nn.AdamWeightDecay(params, lr, beta1=h.betas[0], beta2=h.betas[1], eps=h.eps, weight_decay=h.weight_decay)


def _lamb(params: list, lr: LearningRate, h: _Hyper) -> nn.Optimizer:
    return Lamb(
        params,
        lr,
        beta1=h.betas[0],
        beta2=h.betas[1],
        eps=h.eps,
        weight_decay=h.weight_decay,
        loss_scale=h.loss_scale,
        adapt_filter=h.adapt_filter(),
    )


def _lars(params: list, lr: LearningRate, h: _Hyper) -> nn.Optimizer:
    return LARS(
        params,
        lr,
        momentum=h.momentum,
        weight_decay=h.weight_decay,
        trust_coefficient=h.trust_coefficient,
        eps=h.eps,
        nesterov=h.nesterov,
        loss_scale=h.loss_scale,
        adapt_filter=h.adapt_filter(),
    )


def _rmsprop(params: list, lr: LearningRate, h: _Hyper) -> nn.Optimizer:
    return nn.RMSProp(
        params, lr, momentum=h.momentum, epsilon=h.eps, loss_scale=h.loss_scale, weight_decay=h.weight_decay
    )


def _adagrad(params: list, lr: LearningRate, h: _Hyper) -> nn.Optimizer:
    return nn.Adagrad(params, learning_rate=lr, loss_scale=h.loss_scale, weight_decay=h.weight_decay)


_OPTIMIZERS: Dict[str, Callable[[list, LearningRate, _Hyper], nn.Optimizer]] = {
    "sgd": _sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "adam": _adam,
    "adamw": _adamw,
    "lamb": _lamb,
    "lars": _lars,
    "rmsprop": _rmsprop,
    "adagrad": _adagrad,
}

# MindSpore's AdamWeightDecay takes no loss_scale argument.
_NO_LOSS_SCALE = ("adamw",)


def list_optimizers() -> List[str]:
    """Names accepted by :func:`create_optimizer`."""
    return list(_OPTIMIZERS)


def _resolve(opt: str) -> str:
    # Upstream lower-cases the name, so "Adam" works there too.
    key = str(opt).lower()
    if key in _OPTIMIZERS:
        return key
    raise unknown_name_error("optimizer", opt, _OPTIMIZERS, flag="--opt")


def _check_lr(lr: LearningRate) -> LearningRate:
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        if lr < 0:
            raise ConfigError(f"lr must be >= 0, got {lr}")
        return float(lr)
    values = lr.asnumpy() if isinstance(lr, Tensor) else np.asarray(lr, dtype=np.float32)
    if values.ndim != 1 or values.size == 0:
        raise ConfigError(f"a learning-rate schedule must be a non-empty 1-D sequence, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigError("the learning-rate schedule contains negative or non-finite values")
    # One float32 Tensor: MindSpore reads entry global_step of it on every update.
    return Tensor(values.astype(np.float32))


def create_optimizer(
    params_or_model: Params,
    opt: str = "adam",
    lr: LearningRate = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    filter_bias_and_bn: bool = True,
    loss_scale: float = 1.0,
    eps: float = 1e-8,
    betas: Tuple[float, float] = (0.9, 0.999),
    trust_coefficient: float = 0.001,
    fused: Optional[bool] = None,
) -> nn.Optimizer:
    """Create an optimizer by name.

    Args:
        params_or_model: A network (its ``trainable_params()`` are used), a list of Parameters, or ready-made
            MindSpore parameter groups (then used as given, without the bias/BN filter).
        opt: One of :func:`list_optimizers` (case-insensitive).
        lr: A float, or a per-update schedule (1-D list/array/Tensor such as :func:`mindcv.scheduler.create_scheduler`
            returns); the optimizer uses entry ``global_step`` on each update, so the schedule must have at least as
            many entries as there will be updates.
        weight_decay: Weight decay factor (see the module table for L2 vs decoupled).
        momentum: Momentum of sgd, momentum, nesterov, lars and rmsprop.
        nesterov: Nesterov momentum for sgd, momentum, adam and lars (``nesterov`` always uses it). The CLI flag is
            upstream's ``--use_nesterov``.
        filter_bias_and_bn: Exempt biases and BN/normalisation parameters from weight decay. The CLI spelling is
            upstream's ``--weight_decay_filter`` (see :data:`WEIGHT_DECAY_FILTERS` and :func:`optimizer_kwargs`).
        loss_scale: Static loss scale the optimizer divides gradients by. Keep 1.0 with
            :class:`mindcv.engine.train_step.TrainStep`, which unscales the gradients itself. Not supported by adamw.
        eps: Numerical-stability term of adam, adamw, lamb, rmsprop and lars.
        betas: ``(beta1, beta2)`` of adam, adamw and lamb.
        trust_coefficient: LARS coefficient ``eta``.
        fused: ``momentum`` only: update all parameters in one CPU kernel (:mod:`mindcv.optim.fused`). ``None``
            (default) does so on the CPU when the configuration allows it and warns once if the kernel cannot be
            built; ``True`` requires it; ``False`` always uses ``nn.Momentum``.

    Returns:
        A ``mindspore.nn.Optimizer``. Its ``global_step`` parameter counts the updates and indexes a schedule.

    Raises:
        UnknownNameError: ``opt`` is not registered.
        ConfigError: an argument is out of range or unsupported by the chosen optimizer, or ``fused=True`` and the
            fused kernel cannot be used (the message says why).
    """
    key = _resolve(opt)
    lr = _check_lr(lr)
    if weight_decay < 0:
        raise ConfigError(f"weight_decay must be >= 0, got {weight_decay}")
    if momentum < 0:
        raise ConfigError(f"momentum must be >= 0, got {momentum}")
    if loss_scale <= 0:
        raise ConfigError(f"loss_scale must be positive, got {loss_scale}")
    if loss_scale != 1.0 and key in _NO_LOSS_SCALE:
        raise ConfigError(f"optimizer '{key}' has no loss_scale; keep loss_scale=1.0 and let the train step unscale")
    if momentum == 0 and (key == "nesterov" or (nesterov and key in ("sgd", "momentum", "lars"))):
        raise ConfigError("Nesterov momentum needs momentum > 0; set --momentum or drop --use_nesterov")

    if isinstance(params_or_model, nn.Cell):
        params: List[Any] = list(params_or_model.trainable_params())
    else:
        params = list(params_or_model)
    if not params:
        raise ConfigError("create_optimizer got no trainable parameters")
    if not isinstance(params[0], dict) and weight_decay > 0:
        if filter_bias_and_bn:
            params = split_weight_decay_params(params, weight_decay)
        else:
            # One explicit group: ungrouped MindSpore optimizers silently skip parameters named *beta*/*gamma*.
            params = [{"params": params, "weight_decay": float(weight_decay)}, {"order_params": params}]
    hyper = _Hyper(
        weight_decay=float(weight_decay),
        momentum=float(momentum),
        nesterov=bool(nesterov),
        loss_scale=float(loss_scale),
        eps=float(eps),
        betas=(float(betas[0]), float(betas[1])),
        trust_coefficient=float(trust_coefficient),
        filter_bias_and_bn=bool(filter_bias_and_bn),
        fused=None if fused is None else bool(fused),
    )
    return _OPTIMIZERS[key](params, lr, hyper)


def optimizer_kwargs(cfg: Any) -> Dict[str, Any]:
    """Map a parsed configuration (upstream MindCV flag names) onto :func:`create_optimizer` kwargs.

    Reads ``opt, lr, weight_decay, momentum, use_nesterov (-> nesterov), weight_decay_filter (-> filter_bias_and_bn),
    filter_bias_and_bn, loss_scale, eps, fused_optimizer (-> fused: auto/true/false)``; absent keys keep the
    defaults. ``weight_decay_filter`` is upstream's string option (``disable``, ``auto``, ``norm_and_bias``) and wins
    over a boolean ``filter_bias_and_bn``.
    ``loss_scale`` is *not* forwarded: the train step does the loss scaling. Use as
    ``create_optimizer(net, **dict(optimizer_kwargs(cfg), lr=lr_schedule))``.

    Raises:
        UnknownNameError: ``weight_decay_filter`` or ``fused_optimizer`` has an unknown value.
    """
    mapping = {
        "opt": "opt",
        "lr": "lr",
        "weight_decay": "weight_decay",
        "momentum": "momentum",
        "use_nesterov": "nesterov",
        "filter_bias_and_bn": "filter_bias_and_bn",
        "eps": "eps",
    }
    kwargs = {kw: getattr(cfg, key) for key, kw in mapping.items() if hasattr(cfg, key)}
    wd_filter = getattr(cfg, "weight_decay_filter", None)
    if wd_filter is not None:
        if wd_filter not in WEIGHT_DECAY_FILTERS:
            raise unknown_name_error(
                "weight_decay_filter", wd_filter, WEIGHT_DECAY_FILTERS, flag="--weight_decay_filter"
            )
        kwargs["filter_bias_and_bn"] = WEIGHT_DECAY_FILTERS[wd_filter]
    fused = getattr(cfg, "fused_optimizer", None)
    if fused is not None:
        if fused not in FUSED_OPTIMIZER_CHOICES:
            raise unknown_name_error("fused_optimizer", fused, FUSED_OPTIMIZER_CHOICES, flag="--fused_optimizer")
        kwargs["fused"] = FUSED_OPTIMIZER_CHOICES[fused]
    return kwargs
