"""Layer-wise trust-ratio optimizers: LARS and LAMB.

Papers:
    * LARS: "Large Batch Training of Convolutional Networks", You, Gitman & Ginsburg, arXiv:1708.03888.
    * LAMB: "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes", You et al., arXiv:1904.00962.

Written here instead of using ``mindspore.nn.LARS`` / ``mindspore.nn.Lamb``: in MindSpore 2.10 ``nn.LARS`` is
deprecated (it warns and is announced for removal) and ``nn.Lamb`` is built on the ``Lamb`` primitive, which has no CPU
kernel ("Unsupported op [Lamb] on CPU"). These versions are composed of ordinary ops, so they run on every device and
in both PyNative and Graph mode.

Both scale each parameter's step by a per-layer trust ratio. Parameters for which ``adapt_filter`` returns False
(the factory passes biases and normalisation parameters when it exempts them from weight decay, as timm and the
SimCLR/BYOL reference code do) take the plain step instead.

LARS, for a parameter ``w`` with gradient ``g`` and weight decay ``wd`` (timm's ``Lars`` formulation)::

    trust = eta * ||w|| / (||g|| + wd * ||w|| + eps)     (1 when ||w|| or ||g|| is 0)
    d     = (g + wd * w) * trust
    v     = momentum * v + d
    w     = w - lr * (d + momentum * v if nesterov else v)

LAMB, with bias-corrected Adam moments at update ``t`` (counted from 1)::

    m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g^2
    r = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd * w
    w = w - lr * trust * r,      trust = ||w|| / ||r||   (1 when either norm is 0)
"""

from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.ops import functional as F

__all__ = ["LARS", "Lamb"]

LearningRate = Union[float, np.ndarray, Tensor, Sequence[float]]
ParamsOrGroups = Union[List[Parameter], List[dict]]


def _safe_ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where both are positive, else 1 (a zero-initialised layer or a zero gradient keeps the step)."""
    ratio = num / ops.maximum(den, ops.full_like(den, 1e-30))
    return ops.select((num > 0) & (den > 0), ratio, ops.ones_like(ratio))


def _lars_update(
    lr: Tensor,
    momentum: float,
    trust_coefficient: float,
    eps: float,
    nesterov: bool,
    weight_decay: float,
    adapt: bool,
    grad: Tensor,
    param: Parameter,
    moment: Parameter,
) -> Tensor:
    # weight_decay, adapt and nesterov are Python constants: these branches are resolved at compile time.
    step = grad + weight_decay * param if weight_decay > 0 else grad
    if adapt:
        w_norm = ops.norm(param)
        step = step * _safe_ratio(trust_coefficient * w_norm, ops.norm(grad) + weight_decay * w_norm + eps)
    new_moment = momentum * moment + step
    ops.assign(moment, new_moment)
    update = step + momentum * new_moment if nesterov else new_moment
    ops.assign(param, param - lr * update)
    return ops.ones((), ms.bool_)


def _lamb_update(
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    bias_corrections: Tuple[Tensor, Tensor],
    weight_decay: float,
    adapt: bool,
    grad: Tensor,
    param: Parameter,
    m: Parameter,
    v: Parameter,
) -> Tensor:
    new_m = beta1 * m + (1.0 - beta1) * grad
    new_v = beta2 * v + (1.0 - beta2) * ops.square(grad)
    ops.assign(m, new_m)
    ops.assign(v, new_v)
    update = (new_m / bias_corrections[0]) / (ops.sqrt(new_v / bias_corrections[1]) + eps)
    if weight_decay > 0:
        update = update + weight_decay * param
    if adapt:
        update = update * _safe_ratio(ops.norm(param), ops.norm(update))
    ops.assign(param, param - lr * update)
    return ops.ones((), ms.bool_)


class _TrustRatioOptimizer(nn.Optimizer):
    """Shared set-up: per-parameter weight decay and adaptation flags as compile-time constants."""

    def __init__(
        self,
        params: ParamsOrGroups,
        learning_rate: LearningRate,
        weight_decay: float,
        loss_scale: float,
        adapt_filter: Optional[Callable[[Parameter], bool]],
    ) -> None:
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        # nn.Optimizer stores weight decay pre-multiplied by loss_scale (it decays before unscaling); undo that, since
        # here the gradients are unscaled first.
        if self.is_group:
            decays = [float(wd.asnumpy()) / self.loss_scale for wd in self.weight_decay]
        else:
            decays = [float(weight_decay) if flag else 0.0 for flag in self.decay_flags]
        self.param_weight_decay = tuple(decays)
        self.adapt_flags = tuple(True if adapt_filter is None else bool(adapt_filter(p)) for p in self._parameters)

    def _begin_step(self, gradients: Tuple[Tensor, ...]) -> Tuple[Tuple[Tensor, ...], Tensor]:
        """Unscaled gradients and this update's learning rate; advances ``global_step`` (after reading the lr)."""
        gradients = self.scale_grad(self.flatten_gradients(gradients))
        lr = self.get_lr()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        return gradients, lr


class LARS(_TrustRatioOptimizer):
    """Momentum SGD with layer-wise adaptive learning rates (LARS).

    Args:
        params: Parameters, or MindSpore parameter groups (dicts with ``params`` and optionally ``weight_decay``,
            plus an ``order_params`` entry).
        learning_rate: A float, or a 1-D per-update array/Tensor (dynamic learning rate indexed by ``global_step``).
        momentum: Momentum factor.
        weight_decay: Weight decay of parameters whose group does not set one.
        trust_coefficient: LARS coefficient ``eta``.
        eps: Added to the denominator of the trust ratio.
        nesterov: Use Nesterov momentum.
        loss_scale: Gradients are divided by this (a static loss scale applied by the caller).
        adapt_filter: Returns False for parameters that take the plain momentum step; ``None`` adapts all.
    """

    def __init__(
        self,
        params: ParamsOrGroups,
        learning_rate: LearningRate,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        eps: float = 1e-8,
        nesterov: bool = False,
        loss_scale: float = 1.0,
        adapt_filter: Optional[Callable[[Parameter], bool]] = None,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay, loss_scale, adapt_filter)
        if momentum < 0:
            raise ValueError(f"LARS momentum must be >= 0, got {momentum}")
        self.momentum = float(momentum)
        self.trust_coefficient = float(trust_coefficient)
        self.eps = float(eps)
        self.nesterov = bool(nesterov)
        self.moments = self._parameters.clone(prefix="moments", init="zeros")

    def construct(self, gradients: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        gradients, lr = self._begin_step(gradients)
        update = F.partial(_lars_update, lr, self.momentum, self.trust_coefficient, self.eps, self.nesterov)
        return self.hyper_map(
            update, self.param_weight_decay, self.adapt_flags, gradients, self._parameters, self.moments
        )


class Lamb(_TrustRatioOptimizer):
    """Adam with decoupled weight decay and a layer-wise trust ratio (LAMB).

    Args:
        params: Parameters, or MindSpore parameter groups (see :class:`LARS`).
        learning_rate: A float, or a 1-D per-update array/Tensor.
        beta1: Decay of the first moment.
        beta2: Decay of the second moment.
        eps: Added to the square root of the second moment.
        weight_decay: Decoupled weight decay of parameters whose group does not set one.
        loss_scale: Gradients are divided by this (a static loss scale applied by the caller).
        adapt_filter: Returns False for parameters that take the plain (Adam-with-decay) step; ``None`` adapts all.
    """

    def __init__(
        self,
        params: ParamsOrGroups,
        learning_rate: LearningRate,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        loss_scale: float = 1.0,
        adapt_filter: Optional[Callable[[Parameter], bool]] = None,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay, loss_scale, adapt_filter)
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"Lamb betas must lie in [0, 1), got ({beta1}, {beta2})")
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.eps = float(eps)
        self.beta1_tensor = Tensor(beta1, ms.float32)
        self.beta2_tensor = Tensor(beta2, ms.float32)
        # The same state names as mindspore.nn.Lamb, so its checkpoints load.
        self.moments1 = self._parameters.clone(prefix="lamb_m", init="zeros")
        self.moments2 = self._parameters.clone(prefix="lamb_v", init="zeros")

    def construct(self, gradients: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        gradients, lr = self._begin_step(gradients)
        t = self.global_step.astype(ms.float32).reshape(())
        corrections = (1.0 - ops.pow(self.beta1_tensor, t), 1.0 - ops.pow(self.beta2_tensor, t))
        update = F.partial(_lamb_update, lr, self.beta1, self.beta2, self.eps, corrections)
        return self.hyper_map(
            update, self.param_weight_decay, self.adapt_flags, gradients, self._parameters, self.moments1, self.moments2
        )
