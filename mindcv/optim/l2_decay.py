"""L2 weight decay added to the gradient in one pass per parameter.

MindSpore's optimizers add L2 weight decay as ``grad + weight * wd`` with a ``Mul`` and an ``AddN`` kernel per
parameter: two passes over every weight and an intermediate the size of the weight. ``AddExt`` (``mint.add`` with
``alpha``) computes ``grad + wd * weight`` in one pass, which reads and writes a third less memory and launches
half the kernels. The update rule is unchanged (equal up to float rounding). On the CPU, where small steps are bound by
per-kernel cost, that shortens every momentum-SGD step (measured: ``docs/performance.md``).

:class:`Momentum` and :class:`SGD` are MindSpore's ``nn.Momentum`` and ``nn.SGD`` with this decay; everything else
(arguments, parameter groups, state names ``moments``/``accum``/``stat``) is inherited unchanged, so checkpoints and
resume are unaffected.
"""

from typing import Optional, Tuple

from mindspore import Tensor, mint, nn
from mindspore.ops import composite as C

__all__ = ["Momentum", "SGD"]

_add_decay = C.MultitypeFuncGraph("mindcv_add_decay")


@_add_decay.register("Number", "Tensor", "Tensor")
def _add_constant_decay(weight_decay: float, weight: Tensor, grad: Tensor) -> Tensor:
    if weight_decay == 0.0:
        return grad
    return mint.add(grad, weight, alpha=weight_decay)


class _OnePassDecay:
    """Replaces ``nn.Optimizer.decay_weight`` with the one-kernel form; same arguments, same result.

    ``AddExt`` needs ``alpha`` as a compile-time constant, so the per-parameter decay is read once into a tuple of
    Python floats (0.0 where a parameter is not decayed). A weight-decay schedule (a Cell, changing every step) keeps
    MindSpore's own two-kernel path.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)  # the MindSpore optimizer this is mixed into
        self.constant_decays: Optional[Tuple[float, ...]] = None
        if not self.dynamic_weight_decay:
            decays = self.weight_decay if self.is_group else (self.weight_decay,) * len(self._parameters)
            self.constant_decays = tuple(float(wd) if flag else 0.0 for wd, flag in zip(decays, self.decay_flags))

    def decay_weight(self, gradients: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        if not self.exec_weight_decay:
            return gradients
        if self.dynamic_weight_decay:
            return nn.Optimizer.decay_weight(self, gradients)
        return self.map_(_add_decay, self.constant_decays, self._parameters, gradients)


class Momentum(_OnePassDecay, nn.Momentum):
    """``mindspore.nn.Momentum`` with one-pass L2 weight decay (see the module docstring)."""


class SGD(_OnePassDecay, nn.SGD):
    """``mindspore.nn.SGD`` with one-pass L2 weight decay (see the module docstring)."""
