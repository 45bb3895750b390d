"""Exponential moving average (EMA) of a network's weights, BatchNorm statistics included.

After every optimizer update::

    ema = d * ema + (1 - d) * weight,   d = decay                                      (warmup_steps = 0)
                                        d = decay * (1 - exp(-updates / warmup_steps))  (otherwise)

The warm-up form (upstream MindCV uses it with 2000 steps) keeps ``d`` small early on, so the average is not
dominated by the random initial weights. Every floating-point parameter of the network is averaged: trainable
weights and the BN moving mean/variance, like timm's ``ModelEmaV2`` which averages the whole ``state_dict``.

The averages live in Parameters named ``ema.<network parameter name>`` plus the update counter ``ema.updates``; they
are ordinary Parameters of this Cell, so they are saved and restored with the train step (see
:meth:`mindcv.engine.train_step.TrainStep.state_parameters`). To evaluate with the averaged weights::

    with ema.swapped():          # network now holds the EMA weights
        evaluate(network)
    # network holds the trained weights again

and :func:`ema_to_network_names` turns the ``ema.*`` entries of a checkpoint into a network checkpoint (for
``validate.py --ema``).
"""

from contextlib import contextmanager
from typing import Dict, Iterator, List, Mapping, TypeVar

import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops
from mindspore.ops import functional as F

from ..errors import ConfigError

__all__ = ["EMA", "EMA_PREFIX", "ema_to_network_names"]

EMA_PREFIX = "ema."
_UPDATES_NAME = EMA_PREFIX + "updates"

T = TypeVar("T")


def _ema_update(decay: Tensor, ema: Parameter, weight: Parameter) -> Tensor:
    return ops.assign(ema, ema * decay + weight * (1.0 - decay))


def _swap(weight: Parameter, ema: Parameter) -> Tensor:
    # Materialise a copy first: the two assigns below would otherwise race on the same buffers.
    held = weight * 1.0
    held = F.depend(held, ops.assign(weight, ema))
    return ops.assign(ema, held)


class _Swapper(nn.Cell):
    """Exchanges two parameter tuples in place (one compiled graph in Graph mode)."""

    def __init__(self, weights: ParameterTuple, ema_weights: ParameterTuple) -> None:
        super().__init__(auto_prefix=False)
        self.weights = weights
        self.ema_weights = ema_weights
        self.hyper_map = ops.HyperMap()

    def construct(self) -> tuple:
        return self.hyper_map(_swap, self.weights, self.ema_weights)


class EMA(nn.Cell):
    """Exponential moving average of a network's floating-point parameters.

    Call the Cell (``ema()``) once after each optimizer update; :class:`~mindcv.engine.train_step.TrainStep` does this
    inside its compiled step when given ``ema=EMA(network, ...)``.

    Args:
        network: The network being trained. Build the EMA *after* any AMP conversion and before training, so the
            averages start from the initial (or pretrained) weights.
        decay: Decay ``d`` in ``[0, 1)``; 0.9999 for ImageNet-length runs, lower (e.g. 0.99) for short ones.
        warmup_steps: Time constant of the decay warm-up in updates; 0 disables the warm-up.
    """

    def __init__(self, network: nn.Cell, decay: float = 0.9999, warmup_steps: int = 0) -> None:
        super().__init__(auto_prefix=False)
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"EMA decay must lie in [0, 1), got {decay}; set --ema_decay")
        if warmup_steps < 0:
            raise ConfigError(f"EMA warmup_steps must be >= 0, got {warmup_steps}")
        self.decay = float(decay)
        self.warmup_steps = int(warmup_steps)
        self.decay_tensor = Tensor(self.decay, ms.float32)
        params = [p for p in network.get_parameters() if p.dtype in (ms.float16, ms.float32, ms.bfloat16, ms.float64)]
        if not params:
            raise ConfigError("EMA got a network without floating-point parameters")
        # ParameterTuple rather than a sub-Cell: registering the network here would rename its parameters.
        self.weights = ParameterTuple(params)
        self.ema_weights = ParameterTuple(
            [Parameter(Tensor(p.asnumpy(), p.dtype), name=EMA_PREFIX + p.name, requires_grad=False) for p in params]
        )
        self.updates = Parameter(Tensor(0, ms.int32), name=_UPDATES_NAME, requires_grad=False)
        self.hyper_map = ops.HyperMap()
        self._swapper = _Swapper(self.weights, self.ema_weights)
        self._swapped = False

    def current_decay(self, updates: Tensor) -> Tensor:
        """Decay used for the update that brings the counter to ``updates``."""
        decay = self.decay_tensor
        if self.warmup_steps > 0:
            decay = decay * (1.0 - ops.exp(-updates.astype(ms.float32) / self.warmup_steps))
        return decay

    def construct(self) -> Tensor:
        updates = self.updates + 1
        decay = self.current_decay(updates)
        done = self.hyper_map(F.partial(_ema_update, decay), self.ema_weights, self.weights)
        return F.depend(ops.assign(self.updates, updates), done)

    def ema_parameters(self) -> List[Parameter]:
        """The averaged weights (``ema.<name>``) and the counter ``ema.updates``, for checkpoints."""
        return list(self.ema_weights) + [self.updates]

    def swap(self) -> None:
        """Exchange the network's weights with the averages in place; calling it again swaps them back."""
        self._swapper()
        self._swapped = not self._swapped

    @property
    def is_swapped(self) -> bool:
        """True while the network holds the EMA weights (between two :meth:`swap` calls)."""
        return self._swapped

    @contextmanager
    def swapped(self) -> Iterator["EMA"]:
        """Context manager: the network holds the EMA weights inside the block and its own weights after it."""
        self.swap()
        try:
            yield self
        finally:
            self.swap()


def ema_to_network_names(param_dict: Mapping[str, T]) -> Dict[str, T]:
    """Select the EMA weights of a checkpoint and rename them to the network's parameter names.

    Args:
        param_dict: A loaded checkpoint (``mindspore.load_checkpoint`` result) saved with an :class:`EMA`.

    Returns:
        ``{network name: value}`` for every ``ema.<network name>`` entry (the counter is dropped), ready for
        ``mindspore.load_param_into_net(network, ...)``.

    Raises:
        ConfigError: the checkpoint holds no EMA weights.
    """
    out = {k[len(EMA_PREFIX) :]: v for k, v in param_dict.items() if k.startswith(EMA_PREFIX) and k != _UPDATES_NAME}
    if not out:
        raise ConfigError("the checkpoint has no EMA weights (no 'ema.*' entries); train with --ema or drop --ema")
    return out
