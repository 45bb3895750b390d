"""Stochastic depth (drop path) for residual branches."""

import mindspore as ms
from mindspore import nn, ops

__all__ = ["DropPath"]


class DropPath(nn.Cell):
    """Zero a residual branch per sample with probability ``drop_prob`` during training.

    Kept samples are scaled by ``1 / (1 - drop_prob)`` so the expected output is unchanged; in eval
    mode (``set_train(False)``) this is the identity. Deep Networks with Stochastic Depth,
    https://arxiv.org/abs/1603.09382.

    Args:
        drop_prob: probability of dropping the branch for a sample, in [0, 1).
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        self.drop_prob = float(drop_prob)
        self.keep_prob = 1.0 - float(drop_prob)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = ops.floor(ops.rand(shape, dtype=x.dtype) + self.keep_prob)
        return x * mask / self.keep_prob

    def extend_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"
