"""Optimizer factory: ``create_optimizer(model_or_params, opt, ...)`` with names and arguments from upstream MindCV.

| name     | implementation                                     | weight decay                      |
|----------|----------------------------------------------------|-----------------------------------|
| sgd      | ``nn.SGD`` (with ``momentum``, ``nesterov``)       | L2, added to the gradient (*)     |
| momentum | ``nn.Momentum`` (``nn.SGD`` when ``nesterov``) (f) | L2 (*)                            |
| nesterov | ``nn.SGD(nesterov=True)``                          | L2 (*)                            |
| adam     | ``nn.Adam``                                        | L2                                |
| adamw    | :class:`mindcv.optim.adamw.AdamWeightDecay`        | decoupled (Loshchilov & Hutter)   |
| lamb     | :class:`mindcv.optim.trust_ratio.Lamb`             | decoupled, inside the trust ratio |
| lars     | :class:`mindcv.optim.trust_ratio.LARS` (momentum)  | L2, inside the trust ratio        |
| rmsprop  | ``nn.RMSProp``                                     | L2                                |
| adagrad  | ``nn.Adagrad``                                     | L2                                |

(*) Through :mod:`mindcv.optim.l2_decay`: the same classes with the decay added in one kernel per parameter.
(f) On the CPU, :class:`mindcv.optim.fused.FusedMomentum` when it applies (``fused``): the same update as one kernel.

Nesterov momentum goes through ``nn.SGD`` because ``nn.Momentum(use_nesterov=True)`` silently takes the plain
momentum step on the CPU in MindSpore 2.10 (two updates of w=1 with g=1, lr=0.1, momentum=0.9 give 0.71 instead of
0.539); ``nn.SGD`` with ``dampening=0`` has the same update rule and gets Nesterov right.

Weight-decay filters (upstream's ``weight_decay_filter``; :data:`WEIGHT_DECAY_FILTERS`) say which parameters get no
weight decay:

* ``disable``: none; every parameter is decayed.
* ``auto``: the normalisation parameters, by MindSpore's own rule for ungrouped optimizers (a name containing
  ``beta`` or ``gamma``: BN/LN/GN scales and shifts). Biases are decayed.
* ``norm_and_bias``: those, plus biases (a name containing ``bias``), every other parameter with at most one dimension
  and the names a model lists in ``no_weight_decay()``. Decaying BN scales and biases only pulls them towards zero and
  is known to hurt accuracy (Goyal et al., arXiv:1706.02677; He et al., "Bag of Tricks", arXiv:1812.01187).

The boolean ``filter_bias_and_bn`` is the older spelling of the same choice: ``True`` is ``norm_and_bias`` and
``False`` is ``disable``. Given neither, the filter is ``norm_and_bias`` (upstream's default is ``disable``).

Layer-wise learning-rate decay (``layer_decay``, as in BEiT, arXiv:2106.08254, and upstream MindCV) multiplies the
rate of layer group ``i`` of ``L`` by ``layer_decay ** (L - 1 - i)``: the last group (the head) trains at the full
rate and each group below it at ``layer_decay`` times the one above. The groups come from the model's
``feature_info`` stages (:func:`param_layer_ids`); for Res2Net they are the stem, ``layer1`` .. ``layer4`` and the
classifier.
"""

import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn

from ..errors import CheckpointError, ConfigError, unknown_name_error
from ..utils.checkpoint import read_checkpoint, split_checkpoint
from .adamw import AdamWeightDecay
from .fused import FusedKernelError, FusedMomentum
from .l2_decay import SGD, Momentum
from .trust_ratio import LARS, Lamb

__all__ = [
    "create_optimizer",
    "list_optimizers",
    "optimizer_kwargs",
    "split_weight_decay_params",
    "param_layer_ids",
    "WEIGHT_DECAY_FILTERS",
    "FUSED_OPTIMIZER_CHOICES",
]

_logger = logging.getLogger(__name__)

LearningRate = Union[float, Sequence[float], np.ndarray, Tensor]
Params = Union[nn.Cell, Sequence[Parameter], Sequence[dict]]

# Upstream MindCV's weight_decay_filter values and which parameters each exempts from weight decay (module docstring).
WEIGHT_DECAY_FILTERS: Dict[str, str] = {
    "disable": "none: every parameter is decayed",
    "auto": "normalisation parameters (names with beta/gamma, MindSpore's rule); biases are decayed",
    "norm_and_bias": "normalisation parameters, biases, every 1-D parameter and the model's no_weight_decay()",
}
# filter_bias_and_bn -> the weight_decay_filter it means.
_FILTER_OF_BOOL: Dict[bool, str] = {True: "norm_and_bias", False: "disable"}
# --fused_optimizer values and the create_optimizer(fused=...) they mean.
FUSED_OPTIMIZER_CHOICES: Dict[str, Optional[bool]] = {"auto": None, "true": True, "false": False}
# Upstream's default schedule_decay, used only by its NAdam, which this registry does not have.
_SCHEDULE_DECAY = 4e-3


def _is_norm(param: Parameter) -> bool:
    # MindSpore's own default decay filter for ungrouped parameters, hence upstream's "auto".
    return "beta" in param.name or "gamma" in param.name


def _is_bias_or_norm(param: Parameter) -> bool:
    return len(param.shape) <= 1 or "bias" in param.name or _is_norm(param)


def _exemption(weight_decay_filter: str, no_weight_decay: Iterable[str] = ()) -> Callable[[Parameter], bool]:
    """The predicate "this parameter gets no weight decay" of a filter."""
    if weight_decay_filter == "disable":
        return lambda p: False
    if weight_decay_filter == "auto":
        return _is_norm
    names = set(no_weight_decay)
    return lambda p: _is_bias_or_norm(p) or p.name in names


def _resolve_filter(weight_decay_filter: Optional[str], filter_bias_and_bn: Optional[bool]) -> str:
    if weight_decay_filter is not None and weight_decay_filter not in WEIGHT_DECAY_FILTERS:
        raise unknown_name_error(
            "weight_decay_filter", weight_decay_filter, WEIGHT_DECAY_FILTERS, flag="--weight_decay_filter"
        )
    if filter_bias_and_bn is None:
        return weight_decay_filter or "norm_and_bias"
    implied = _FILTER_OF_BOOL[bool(filter_bias_and_bn)]
    if weight_decay_filter is not None and weight_decay_filter != implied:
        raise ConfigError(
            f"weight_decay_filter='{weight_decay_filter}' contradicts filter_bias_and_bn={bool(filter_bias_and_bn)} "
            f"(which means '{implied}'); pass only weight_decay_filter"
        )
    return implied


def split_weight_decay_params(
    params: Sequence[Parameter],
    weight_decay: float,
    weight_decay_filter: str = "norm_and_bias",
    no_weight_decay: Iterable[str] = (),
) -> List[dict]:
    """Group parameters so that those the filter exempts get no weight decay.

    Args:
        params: Trainable parameters.
        weight_decay: Decay of the remaining parameters.
        weight_decay_filter: One of :data:`WEIGHT_DECAY_FILTERS` (see the module docstring).
        no_weight_decay: Further parameter names exempt under ``norm_and_bias`` (a model's ``no_weight_decay()``).

    Returns:
        MindSpore parameter groups: ``[{"params": decayed, "weight_decay": weight_decay},
        {"params": exempt, "weight_decay": 0.0}, {"order_params": params}]``; an empty group is left out.
    """
    exempt = _exemption(_resolve_filter(weight_decay_filter, None), no_weight_decay)
    decay = [p for p in params if not exempt(p)]
    no_decay = [p for p in params if exempt(p)]
    groups: List[dict] = []
    if decay:
        groups.append({"params": decay, "weight_decay": float(weight_decay)})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    # order_params keeps the optimizer's parameter order equal to the network's, so the gradient tuple lines up.
    groups.append({"order_params": list(params)})
    return groups


def param_layer_ids(model: nn.Cell) -> Dict[str, int]:
    """Layer group of every trainable parameter, for layer-wise learning-rate decay.

    The groups follow the model's ``feature_info`` stages (the entries whose module owns parameters, in order):
    group 0 holds the parameters before the first stage (the stem), group ``k`` those of the ``k``-th stage, and the
    last group everything after the last stage (the head). For Res2Net: stem 0, ``layer1`` .. ``layer4`` 1 .. 4,
    classifier 5.

    Args:
        model: A network with ``feature_info`` (a list of ``dict(name=...)``), as every registered model has.

    Returns:
        Parameter name -> group index, in ``trainable_params()`` order.

    Raises:
        ConfigError: the model has no ``feature_info`` stage that owns parameters.
    """
    params = model.trainable_params()
    stages = [
        info["name"]
        for info in getattr(model, "feature_info", None) or ()
        if isinstance(info, dict) and any(p.name.startswith(f"{info.get('name')}.") for p in params)
    ]
    if not stages:
        raise ConfigError(
            f"layer_decay needs a model whose feature_info names its stages; {type(model).__name__} has none "
            "(pass a registered model, or drop layer_decay)"
        )
    ids: Dict[str, int] = {}
    current = 0
    for p in params:
        stage = next((k for k, name in enumerate(stages, start=1) if p.name.startswith(f"{name}.")), None)
        if stage is not None:
            current = stage
        elif current == len(stages):  # past the last stage: the head
            current = len(stages) + 1
        ids[p.name] = current
    return ids


def _layer_decay_groups(
    model: nn.Cell,
    params: List[Parameter],
    lr: Union[float, np.ndarray],
    weight_decay: float,
    layer_decay: float,
    exempt: Callable[[Parameter], bool],
) -> List[dict]:
    ids = param_layer_ids(model)
    last = max(ids.values())
    groups: Dict[Tuple[int, bool], dict] = {}
    for p in params:
        layer, decayed = ids[p.name], weight_decay > 0 and not exempt(p)
        if (layer, decayed) not in groups:
            scale = layer_decay ** (last - layer)
            layer_lr = lr * scale if isinstance(lr, float) else Tensor((lr * scale).astype(np.float32))
            groups[(layer, decayed)] = {"params": [], "lr": layer_lr, "weight_decay": weight_decay if decayed else 0.0}
        groups[(layer, decayed)]["params"].append(p)
    return [groups[key] for key in sorted(groups)] + [{"order_params": params}]


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
    weight_decay_filter: str
    no_weight_decay: Tuple[str, ...]
    fused: Optional[bool]

    def adapt_filter(self) -> Optional[Callable[[Parameter], bool]]:
        """LARS/LAMB skip the trust ratio for the parameters exempt from weight decay (timm does the same)."""
        if self.weight_decay_filter == "disable":
            return None
        exempt = _exemption(self.weight_decay_filter, self.no_weight_decay)
        return lambda p: not exempt(p)


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
    return AdamWeightDecay(
        params,
        lr,
        beta1=h.betas[0],
        beta2=h.betas[1],
        eps=h.eps,
        weight_decay=h.weight_decay,
        loss_scale=h.loss_scale,
    )


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


def list_optimizers() -> List[str]:
    """Names accepted by :func:`create_optimizer`."""
    return list(_OPTIMIZERS)


def _resolve(opt: str) -> str:
    # Upstream lower-cases the name, so "Adam" works there too.
    key = str(opt).lower()
    if key in _OPTIMIZERS:
        return key
    raise unknown_name_error("optimizer", opt, _OPTIMIZERS, flag="--opt")


def _check_lr(lr: LearningRate) -> Union[float, np.ndarray]:
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        if lr < 0:
            raise ConfigError(f"lr must be >= 0, got {lr}")
        return float(lr)
    values = lr.asnumpy() if isinstance(lr, Tensor) else np.asarray(lr, dtype=np.float32)
    if values.ndim != 1 or values.size == 0:
        raise ConfigError(f"a learning-rate schedule must be a non-empty 1-D sequence, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigError("the learning-rate schedule contains negative or non-finite values")
    return values.astype(np.float64)


def _as_lr(lr: Union[float, np.ndarray]) -> LearningRate:
    # A schedule is one float32 Tensor: MindSpore reads entry global_step of it on every update.
    return lr if isinstance(lr, float) else Tensor(lr.astype(np.float32))


def _check_params(params: List[Any]) -> None:
    """One-line errors for what MindSpore would reject with a traceback, naming the offending entry."""
    if not params:
        raise ConfigError("create_optimizer got no trainable parameters")
    if all(isinstance(p, Parameter) for p in params):
        return
    if not all(isinstance(g, dict) for g in params):
        bad = next(p for p in params if not isinstance(p, (Parameter, dict)))
        raise ConfigError(
            f"create_optimizer got {bad!r} ({type(bad).__name__}) among the parameters; pass a network, "
            "net.trainable_params() or a list of parameter-group dicts, not a mix"
        )
    for i, group in enumerate(params):
        for p in group.get("params", group.get("order_params", ())):
            if not isinstance(p, Parameter):
                raise ConfigError(
                    f"parameter group {i} holds {p!r} ({type(p).__name__}), not a mindspore Parameter; "
                    "build the groups from net.trainable_params()"
                )


def _load_state(optimizer: nn.Optimizer, path: str) -> None:
    entries, _ = split_checkpoint(read_checkpoint(path))
    try:
        not_loaded, _ = ms.load_param_into_net(optimizer, entries)
    except (RuntimeError, ValueError, TypeError) as e:
        detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"optimizer checkpoint {path} does not fit this optimizer: {detail}") from None
    if not_loaded:
        raise CheckpointError(
            f"optimizer checkpoint {path} lacks {len(not_loaded)} of this optimizer's entries (e.g. "
            f"{not_loaded[0]}); pass a checkpoint saved from the same optimizer and network"
        )


def create_optimizer(
    model_or_params: Params,
    opt: str = "adam",
    lr: LearningRate = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay_filter: Optional[str] = None,
    layer_decay: Optional[float] = None,
    loss_scale: float = 1.0,
    schedule_decay: float = _SCHEDULE_DECAY,
    checkpoint_path: str = "",
    eps: float = 1e-8,
    filter_bias_and_bn: Optional[bool] = None,
    betas: Tuple[float, float] = (0.9, 0.999),
    trust_coefficient: float = 0.001,
    fused: Optional[bool] = None,
) -> nn.Optimizer:
    """Create an optimizer by name. The arguments up to ``eps`` are upstream MindCV's, in its order.

    Args:
        model_or_params: A network (its ``trainable_params()`` are used), a list of Parameters, or ready-made
            MindSpore parameter groups. Groups are used as given: the weight-decay filter and ``layer_decay`` do not
            apply to them.
        opt: One of :func:`list_optimizers` (case-insensitive).
        lr: A float, or a per-update schedule (1-D list/array/Tensor such as :func:`mindcv.scheduler.create_scheduler`
            returns); the optimizer uses entry ``global_step`` on each update, so the schedule must have at least as
            many entries as there will be updates.
        weight_decay: Weight decay factor (see the module table for L2 vs decoupled).
        momentum: Momentum of sgd, momentum, nesterov, lars and rmsprop.
        nesterov: Nesterov momentum for sgd, momentum, adam and lars (``nesterov`` always uses it). The CLI flag is
            upstream's ``--use_nesterov``.
        weight_decay_filter: Which parameters get no weight decay: ``"disable"``, ``"auto"`` or ``"norm_and_bias"``
            (module docstring). ``None`` follows ``filter_bias_and_bn``, and is ``"norm_and_bias"`` without it.
        layer_decay: Layer-wise learning-rate decay factor (> 0) over the model's layer groups
            (:func:`param_layer_ids`); needs ``model_or_params`` to be the model. ``None`` disables it.
        loss_scale: Static loss scale the optimizer divides gradients by. Keep 1.0 with
            :class:`mindcv.engine.train_step.TrainStep`, which unscales the gradients itself.
        schedule_decay: Upstream's NAdam momentum-schedule decay. No registered optimizer has one, so it must stay at
            its default; it is here to keep upstream's argument order.
        checkpoint_path: An optimizer checkpoint (``.ckpt``/``.safetensors`` saved from this optimizer) whose state
            (moments, ``global_step``, ...) is loaded into the new optimizer; ``""`` loads nothing.
        eps: Numerical-stability term of adam, adamw, lamb, rmsprop and lars.
        filter_bias_and_bn: The boolean spelling of ``weight_decay_filter``: ``True`` is ``"norm_and_bias"``,
            ``False`` is ``"disable"``.
        betas: ``(beta1, beta2)`` of adam, adamw and lamb.
        trust_coefficient: LARS coefficient ``eta``.
        fused: ``momentum`` only: update all parameters in one CPU kernel (:mod:`mindcv.optim.fused`). ``None``
            (default) does so on the CPU when the configuration allows it and warns once if the kernel cannot be
            built; ``True`` requires it; ``False`` always uses ``nn.Momentum``.

    Returns:
        A ``mindspore.nn.Optimizer``. Its ``global_step`` parameter counts the updates and indexes a schedule.

    Raises:
        UnknownNameError: ``opt`` or ``weight_decay_filter`` is not registered.
        ConfigError: an argument is out of range, unsupported by the chosen optimizer or contradicts another, or
            ``fused=True`` and the fused kernel cannot be used (the message says why).
        CheckpointError: ``checkpoint_path`` is missing, unreadable or does not fit the optimizer.
    """
    key = _resolve(opt)
    lr = _check_lr(lr)
    wd_filter = _resolve_filter(weight_decay_filter, filter_bias_and_bn)
    if weight_decay < 0:
        raise ConfigError(f"weight_decay must be >= 0, got {weight_decay}")
    if momentum < 0:
        raise ConfigError(f"momentum must be >= 0, got {momentum}")
    if loss_scale <= 0:
        raise ConfigError(f"loss_scale must be positive, got {loss_scale}")
    if momentum == 0 and (key == "nesterov" or (nesterov and key in ("sgd", "momentum", "lars"))):
        raise ConfigError("Nesterov momentum needs momentum > 0; set --momentum or drop --use_nesterov")
    if schedule_decay != _SCHEDULE_DECAY:
        raise ConfigError(
            f"schedule_decay={schedule_decay} has no effect: it is upstream NAdam's, and no registered optimizer "
            f"uses it; leave it at {_SCHEDULE_DECAY}"
        )
    if layer_decay is not None and not (isinstance(layer_decay, (int, float)) and layer_decay > 0):
        raise ConfigError(f"layer_decay must be a positive factor (e.g. 0.75) or None, got {layer_decay!r}")

    no_weight_decay: Tuple[str, ...] = ()
    if isinstance(model_or_params, nn.Cell):
        params: List[Any] = list(model_or_params.trainable_params())
        if hasattr(model_or_params, "no_weight_decay"):
            no_weight_decay = tuple(model_or_params.no_weight_decay())
    else:
        params = list(model_or_params)
    _check_params(params)
    grouped = isinstance(params[0], dict)
    if layer_decay is not None:
        if not isinstance(model_or_params, nn.Cell):
            raise ConfigError("layer_decay needs the model itself, not a parameter list or groups: pass the network")
        params = _layer_decay_groups(
            model_or_params, params, lr, float(weight_decay), float(layer_decay), _exemption(wd_filter, no_weight_decay)
        )
    elif not grouped and weight_decay > 0:
        # Always explicit groups: ungrouped MindSpore optimizers silently skip parameters named *beta*/*gamma*.
        params = split_weight_decay_params(params, weight_decay, wd_filter, no_weight_decay)
    hyper = _Hyper(
        weight_decay=float(weight_decay),
        momentum=float(momentum),
        nesterov=bool(nesterov),
        loss_scale=float(loss_scale),
        eps=float(eps),
        betas=(float(betas[0]), float(betas[1])),
        trust_coefficient=float(trust_coefficient),
        weight_decay_filter=wd_filter,
        no_weight_decay=no_weight_decay,
        fused=None if fused is None else bool(fused),
    )
    optimizer = _OPTIMIZERS[key](params, _as_lr(lr), hyper)
    if checkpoint_path:
        _load_state(optimizer, checkpoint_path)
    return optimizer


def optimizer_kwargs(cfg: Any) -> Dict[str, Any]:
    """Map a parsed configuration (upstream MindCV flag names) onto :func:`create_optimizer` kwargs.

    Reads ``opt, lr, weight_decay, momentum, use_nesterov (-> nesterov), weight_decay_filter, filter_bias_and_bn,
    layer_decay, eps, fused_optimizer (-> fused: auto/true/false)``; absent keys (and a ``layer_decay`` of None) keep
    the defaults. ``weight_decay_filter`` is upstream's string option and wins over a boolean
    ``filter_bias_and_bn``; it is passed as ``filter_bias_and_bn`` where that spelling exists (``disable``,
    ``norm_and_bias``) and as ``weight_decay_filter="auto"`` otherwise.
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
    if getattr(cfg, "layer_decay", None) is not None:
        kwargs["layer_decay"] = cfg.layer_decay
    wd_filter = getattr(cfg, "weight_decay_filter", None)
    if wd_filter is not None:
        if wd_filter not in WEIGHT_DECAY_FILTERS:
            raise unknown_name_error(
                "weight_decay_filter", wd_filter, WEIGHT_DECAY_FILTERS, flag="--weight_decay_filter"
            )
        as_bool = {name: flag for flag, name in _FILTER_OF_BOOL.items()}
        if wd_filter in as_bool:
            kwargs["filter_bias_and_bn"] = as_bool[wd_filter]
        else:
            kwargs.pop("filter_bias_and_bn", None)
            kwargs["weight_decay_filter"] = wd_filter
    fused = getattr(cfg, "fused_optimizer", None)
    if fused is not None:
        if fused not in FUSED_OPTIMIZER_CHOICES:
            raise unknown_name_error("fused_optimizer", fused, FUSED_OPTIMIZER_CHOICES, flag="--fused_optimizer")
        kwargs["fused"] = FUSED_OPTIMIZER_CHOICES[fused]
    return kwargs
