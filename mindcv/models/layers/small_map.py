"""CPU fast paths for convolutional networks on small feature maps (32x32 inputs and below).

MindSpore 2.10's CPU backend (oneDNN) spends most of a small-input training step in per-image and per-kernel
overhead rather than arithmetic. The cells here compute exactly what the plain layers compute, with the same
parameter names and shapes, but as fewer and larger kernels; every choice between the fast path and the plain
operator depends only on static shapes and constructor arguments, so it is made once when a graph is compiled.

- :class:`PointwiseConv2d` and :class:`SmallMapConv2d`: 1x1 and k x k convolutions on small maps as single GEMMs.
- :class:`ConcatChunks`: a channel concatenation whose gradient is one Split kernel on small chunks.
- :class:`SmallMapStage`: a stage of residual blocks that runs blocks on 1x1 maps with the batch folded into the
  height axis, a layout in which the convolutions above take their folded path (``construct(x, folded=True)``).
- :class:`FoldSmallMaps`: a model's ``fold_small_maps`` switch over its stages.

Measured effects, with the commands that measured them, are in ``docs/performance.md``.
"""

from typing import Any, List, Optional, Tuple

import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import HeNormal

__all__ = ["PointwiseConv2d", "SmallMapConv2d", "ConcatChunks", "SmallMapStage", "FoldSmallMaps"]


def _he_normal() -> HeNormal:
    return HeNormal(mode="fan_out", nonlinearity="relu")


def _as_input_dtype(weight: ms.Parameter, x: ms.Tensor) -> ms.Tensor:
    """The weight in the input's dtype: under AMP (O1-O3) the input arrives in float16 while the weight stays float32,
    and the primitives here (MatMul, Conv2D on a sliced weight) do not cast for the layer as ``nn.Conv2d`` does."""
    return weight if weight.dtype == x.dtype else weight.astype(x.dtype)


class PointwiseConv2d(nn.Conv2d):
    """Bias-free 1x1 convolution that folds the batch into the height axis on small feature maps.

    On the CPU, MindSpore 2.10's oneDNN kernels handle a batch of small maps badly, the weight gradient above all.
    On maps of at most ``FOLD_MAX_HW`` output positions the input is therefore transposed to a single
    (1, Cin, N*H*W, 1) map, convolved with the unchanged 4-D weight (one large GEMM for oneDNN, and no reshaped copy
    of the weight, which MindSpore's CPU backend would materialise in the forward pass and again for its gradient)
    and transposed back. On larger maps the transposes cost more than they save. Inputs of more than
    ``FOLD_MAX_VALUES`` values keep the convolution: the transposed copy is kept for the backward pass and would
    raise the training peak memory at large inputs.

    ``construct(x, folded=True)`` takes maps already folded into one (1, C, positions, 1) map (see
    :class:`SmallMapStage`) and applies the stride-1 convolution to them.

    The parameter is the usual ``weight`` of shape (Cout, Cin, 1, 1), so checkpoints are unaffected, and the result
    equals the convolution up to float rounding.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: spatial stride.
    """

    FOLD_MAX_HW = 16
    FOLD_MAX_VALUES = 1 << 20

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            in_channels,
            out_channels,
            1,
            stride=stride,
            pad_mode="pad",
            padding=0,
            has_bias=False,
            weight_init=_he_normal(),
        )
        self.step = stride
        # Stride 1: the folded map is already subsampled. kernel_size as a tuple, which the ONNX exporter needs.
        self.conv_1x1 = ops.Conv2D(out_channels, (1, 1))

    def construct(self, x: ms.Tensor, folded: bool = False) -> ms.Tensor:
        weight = _as_input_dtype(self.weight, x)
        if folded:
            return self.conv_1x1(x, weight)
        n, c, h, w = x.shape
        out_h, out_w = (h - 1) // self.step + 1, (w - 1) // self.step + 1
        if out_h * out_w > self.FOLD_MAX_HW or n * c * out_h * out_w > self.FOLD_MAX_VALUES:
            return self.conv2d(x, self.weight)
        s = self.step
        if s > 1 and h % s == 0 and w % s == 0:
            # The positions a strided 1x1 convolution reads, as one Slice of a (N, C, H/s, s, W/s, s) view: its
            # gradient is one SliceGrad, where two Gathers take several kernels each way, with transposes.
            x = ops.slice(x.reshape(n, c, h // s, s, w // s, s), (0,) * 6, (n, c, h // s, 1, w // s, 1))
            x = x.reshape(n, c, out_h, out_w)
        elif s > 1:
            # Gather, not x[:, :, ::s, ::s]: the gradient of that strided slice fails in MindSpore 2.10 PyNative
            # ("StridedSliceGrad ... out of bounds").
            x = ops.gather(x, ops.arange(0, h, s), 2)
            x = ops.gather(x, ops.arange(0, w, s), 3)
        out = self.conv_1x1(x.transpose(1, 0, 2, 3).reshape(1, c, n * out_h * out_w, 1), weight)
        return out.reshape(self.out_channels, n, out_h, out_w).transpose(1, 0, 2, 3)


class SmallMapConv2d(nn.Conv2d):
    """Bias-free k x k convolution that runs as one GEMM when its output is a single position.

    Small inputs reach maps of one position (e.g. Res2Net's last stage at 32x32 input, 2x2 before its strided first
    block). There a k x k convolution with symmetric padding only ever multiplies the taps that land inside the
    input: the centre tap for a 1x1 input, the lower-right 2x2 taps of a 3x3 kernel for a strided 2x2 input. The
    output is then ``x.reshape(N, Cin*H*W) @ weight[:, :, p:p+H, p:p+W].reshape(Cout, Cin*H*W).T`` exactly, without
    the taps oneDNN would multiply with zero padding (8 of a 3x3 kernel's 9 for a 1x1 input, 5 for a strided 2x2 one)
    and without its per-image overhead. Every other shape, and any dilated or grouped convolution (Res2NeXt), uses the
    ordinary convolution.

    ``construct(x, folded=True)`` takes a batch of 1x1 maps folded into one (1, C, N, 1) map (see
    :class:`SmallMapStage`): with ``padding = dilation * (kernel - 1) / 2`` only the centre tap of a 1x1 input meets
    data, so the result is a (grouped) 1x1 convolution with that tap, which needs no reshaped copy of the weight.

    Parameter name and shape are those of ``nn.Conv2d``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: spatial stride.
        dilation: kernel dilation.
        groups: convolution groups.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        # Explicit symmetric padding: MindSpore's default pad_mode="same" pads stride-2 convs
        # asymmetrically (more on the bottom/right), which would change every number downstream.
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            pad_mode="pad",
            padding=padding,
            dilation=dilation,
            group=groups,
            has_bias=False,
            weight_init=_he_normal(),
        )
        self.kernel = kernel_size
        self.pad = padding
        self.step = stride
        self.conv_only = dilation != 1 or groups != 1
        self.matmul_nt = ops.MatMul(transpose_b=True)
        self.conv_centre = ops.Conv2D(out_channels, (1, 1), group=groups)

    def construct(self, x: ms.Tensor, folded: bool = False) -> ms.Tensor:
        weight = _as_input_dtype(self.weight, x)
        if folded:
            mid = (self.kernel - 1) // 2
            centre = ops.slice(weight, (0, 0, mid, mid), (self.out_channels, self.in_channels // self.group, 1, 1))
            return self.conv_centre(x, centre)
        n, c, h, w = x.shape
        k, p = self.kernel, self.pad
        single_output = (h + 2 * p - k) // self.step == 0 and (w + 2 * p - k) // self.step == 0
        if self.conv_only or not single_output or h + p > k or w + p > k:
            return self.conv2d(x, self.weight)
        # ops.slice, not weight[:, :, a:b, c:d]: MindSpore's StridedSlice kernel is much slower on a weight.
        taps = ops.slice(weight, (0, 0, p, p), (self.out_channels, c, h, w))
        out = self.matmul_nt(x.reshape(n, c * h * w), taps.reshape(self.out_channels, c * h * w))
        return out.reshape(n, self.out_channels, 1, 1)


class _ConcatSplitGrad(nn.Cell):
    """Channel concatenation of ``num`` equally wide chunks whose gradient is a single Split."""

    def __init__(self, num: int) -> None:
        super().__init__()
        self.num = num

    def construct(self, chunks: Tuple[ms.Tensor, ...]) -> ms.Tensor:
        return ops.cat(chunks, axis=1)

    def bprop(self, chunks, out, dout):  # noqa: D102 (MindSpore's custom-gradient hook)
        return (ops.split(dout, dout.shape[1] // self.num, axis=1),)


class ConcatChunks(nn.Cell):
    """Concatenate ``num`` equally wide chunks along the channels; on small chunks the gradient is one Split kernel.

    MindSpore differentiates a concatenation into one Slice kernel per input (its ``_SplitWithSize`` expander): with
    equal widths a single Split gives the same gradients in one launch. A Cell with its own ``bprop`` applies it on
    every call and changes how MindSpore orders the backward pass, which raises the training peak memory at large
    inputs. So only chunks of at most ``MAX_VALUES`` values (at batch 32: every Res2Net block at 32x32, none at 224)
    go through it, where kernel launches matter and memory does not; larger ones use ``ops.cat`` and its gradient.

    Args:
        num: number of chunks.
    """

    MAX_VALUES = 1 << 17

    def __init__(self, num: int) -> None:
        super().__init__()
        self.split_grad = _ConcatSplitGrad(num)

    def construct(self, chunks: Tuple[ms.Tensor, ...]) -> ms.Tensor:
        if chunks[0].size <= self.MAX_VALUES:
            return self.split_grad(chunks)
        return ops.cat(chunks, axis=1)


class SmallMapStage(nn.SequentialCell):
    """A stage of residual blocks; blocks on a batch of 1x1 maps run on it folded into one (1, C, N, 1) map.

    Small inputs (32x32 and below) reach 1x1 maps in the last stages. There a transpose turns (N, C, 1, 1) into
    (1, C, N, 1): batch-norm statistics, split, concatenation, additions and ReLU are unchanged by it, the 1x1 and
    centre-tap convolutions become single GEMMs on the weights as stored (their ``construct(x, folded=True)``), and
    oneDNN's batch norm is faster on one tall map than on N maps of one pixel. A second transpose restores the
    layout at the end of the stage.

    Each block takes ``construct(x, folded)`` and has ``can_fold``: whether it is exact in the folded layout (no
    stride, projection or per-sample drop path). The folded layout starts at the first such block that sees more than
    one 1x1 map and lasts to the end of the stage. Parameter names are those of ``nn.SequentialCell``
    (``0.conv1.weight``, ...).

    Args:
        blocks: the blocks of the stage, in order.
    """

    def __init__(self, blocks: List[nn.Cell]) -> None:
        super().__init__(blocks)
        # Read when a graph is compiled: set it before the first call (False keeps the plain layout, e.g. to compare).
        self.fold_small_maps = True

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        folded = False
        for block in self.cell_list:
            if not folded and self.fold_small_maps and block.can_fold and x.shape[0] > 1 and x.shape[2:] == (1, 1):
                x = x.transpose(2, 1, 0, 3)
                folded = True
            x = block(x, folded)
        if folded:
            x = x.transpose(2, 1, 0, 3)
        return x


class FoldSmallMaps:
    """A model attribute (descriptor) that reads and sets ``fold_small_maps`` of every ``SmallMapStage`` in it.

    ``model.fold_small_maps = False`` puts all its stages in the plain layout, e.g. to compare the two. The stages
    read the flag when a graph is compiled, so set it before the first call.
    """

    def __get__(self, model: Optional[nn.Cell], owner: Optional[type] = None) -> Any:
        if model is None:
            return self
        return all(stage.fold_small_maps for stage in self._stages(model))

    def __set__(self, model: nn.Cell, value: bool) -> None:
        for stage in self._stages(model):
            stage.fold_small_maps = value

    @staticmethod
    def _stages(model: nn.Cell) -> List[SmallMapStage]:
        return [cell for _, cell in model.cells_and_names() if isinstance(cell, SmallMapStage)]
