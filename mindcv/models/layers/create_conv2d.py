"""The one place model files get their convolutions from."""

from mindspore import nn

from .small_map import PointwiseConv2d, SmallMapConv2d

__all__ = ["create_conv2d"]


def create_conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
) -> nn.Conv2d:
    """A bias-free convolution with symmetric padding ``dilation * (kernel_size - 1) // 2``, He-normal (fan-out).

    It takes the CPU small-map fast paths where they apply: :class:`PointwiseConv2d` for ungrouped 1x1
    convolutions (dilation does not matter there), :class:`SmallMapConv2d` for every other one, which keeps the
    plain convolution for dilated and grouped kernels. Both are ``nn.Conv2d`` subclasses with the usual ``weight``
    and accept ``construct(x, folded=False)`` (see :class:`SmallMapStage`).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: spatial stride.
        dilation: kernel dilation.
        groups: convolution groups.

    Returns:
        The convolution cell.
    """
    if kernel_size == 1 and groups == 1:
        return PointwiseConv2d(in_channels, out_channels, stride=stride)
    return SmallMapConv2d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups)
