"""Projection shortcuts of ResNet-style residual blocks."""

from typing import Optional

from mindspore import nn

from .create_conv2d import create_conv2d

__all__ = ["create_shortcut"]


def create_shortcut(
    in_channels: int, out_channels: int, stride: int = 1, nominal_stride: int = 1, avg_down: bool = False
) -> Optional[nn.SequentialCell]:
    """The shortcut projection of a residual block, or None where the identity fits (stride 1, equal channels).

    By default a strided 1x1 convolution and BatchNorm (``0``, ``1``). With ``avg_down`` (the "ResNet-D" tweak of
    Bag of Tricks, https://arxiv.org/abs/1812.01187) a stage's strided block average-pools first and projects with a
    stride-1 convolution (``0`` pool, ``1``, ``2``). The pool keeps index 0 even when dilation replaces the stride
    (``nominal_stride`` 2, ``stride`` 1), so parameter names, and checkpoints, do not depend on ``output_stride``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: the block's stride (1 where dilation replaces it).
        nominal_stride: the stride the block would have without dilation.
        avg_down: average-pool, then project with a stride-1 convolution.

    Returns:
        The shortcut cell, or None.
    """
    if stride == 1 and in_channels == out_channels:
        return None
    proj = [create_conv2d(in_channels, out_channels, 1, stride=1 if avg_down else stride), nn.BatchNorm2d(out_channels)]
    if not avg_down or nominal_stride == 1:
        return nn.SequentialCell(proj)
    # ceil_mode + uncounted padding: exact for odd sizes.
    pool = nn.AvgPool2d(stride, stride, pad_mode="pad", ceil_mode=True, count_include_pad=False)
    return nn.SequentialCell([pool if stride > 1 else nn.Identity()] + proj)
