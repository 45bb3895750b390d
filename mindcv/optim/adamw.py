"""AdamW (decoupled weight decay, Loshchilov & Hutter, arXiv:1711.05101) with a static loss scale.

MindSpore's ``nn.AdamWeightDecay`` has no ``loss_scale`` argument. Upstream MindCV's ``adamw`` takes one and divides
the gradients by it before the update, so that a loss multiplied by ``loss_scale`` (fixed-scale mixed precision)
trains as the unscaled loss would. :class:`AdamWeightDecay` adds exactly that and nothing else: the update, the
decoupled decay (not multiplied by the loss scale, which the base ``nn.Optimizer`` does for L2 decay) and the state
names (``adam_m.*``, ``adam_v.*``, ``global_step``), hence checkpoints and resume, are ``nn.AdamWeightDecay``'s.
"""

from typing import Tuple

import mindspore as ms
from mindspore import Tensor, nn

from ..errors import ConfigError

__all__ = ["AdamWeightDecay"]


class AdamWeightDecay(nn.AdamWeightDecay):
    """``mindspore.nn.AdamWeightDecay`` whose gradients are divided by ``loss_scale`` first.

    Args:
        params: Parameters or MindSpore parameter groups.
        learning_rate: A float or a per-update schedule.
        beta1: Decay of the first-moment estimate.
        beta2: Decay of the second-moment estimate.
        eps: Added to the denominator.
        weight_decay: Decoupled weight decay.
        loss_scale: The static factor the loss was multiplied by (> 0); 1.0 leaves the gradients as they are.

    Raises:
        ConfigError: ``loss_scale`` is not a positive number.
    """

    def __init__(
        self,
        params,
        learning_rate=1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-6,
        weight_decay=0.0,
        loss_scale: float = 1.0,
    ) -> None:
        if isinstance(loss_scale, bool) or not isinstance(loss_scale, (int, float)) or not loss_scale > 0:
            raise ConfigError(f"loss_scale must be a positive number, got {loss_scale!r}")
        super().__init__(params, learning_rate, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)
        # The attributes nn.Optimizer.scale_grad reads; the base class saw loss_scale 1.0, so the weight decay
        # stored above is the unscaled one, as the decoupled update needs.
        self.loss_scale = float(loss_scale)
        self.reciprocal_scale = Tensor(1.0 / self.loss_scale, ms.float32)
        self.need_scale = self.loss_scale != 1.0

    # One graph for the unscale and the parent's (jit-compiled) update: in PyNative, a plain Python construct that
    # calls the parent's jit-compiled one moved the weights by far more than one update per call in MindSpore 2.10.
    @ms.jit
    def construct(self, gradients: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        return super().construct(self.scale_grad(gradients))
