"""Res2Net and Res2NeXt for MindSpore.

Res2Net: A New Multi-scale Backbone Architecture, Shang-Hua Gao, Ming-Ming Cheng, Kai Zhao,
Xin-Yu Zhang, Ming-Hsuan Yang, Philip Torr. IEEE TPAMI 2021. https://arxiv.org/abs/1904.01169

Written for this project from the paper and the published architecture facts (no code copied).
The numerics equal the authors' reference definition: given the same weights, the logits match the
PyTorch models (see ``tests/test_parity_torch.py``), and parameter names and shapes equal upstream
MindCV's, so its published Res2Net checkpoints load unchanged.

The ``_v1b`` variants (called ``res2net50d``/``res2net101d`` in timm) use the deep 3-conv stem and
an average-pool shortcut, the "ResNet-D" tweaks of Bag of Tricks, https://arxiv.org/abs/1812.01187.
"""

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import HeNormal

from .helpers import build_model_with_cfg
from .layers import DropPath
from .registry import register_model

# The entrypoint names are appended by @register_model.
__all__ = ["PointwiseConv2d", "SmallMapConv2d", "Bottle2neck", "Res2Net"]

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


def _he_normal() -> HeNormal:
    return HeNormal(mode="fan_out", nonlinearity="relu")


class PointwiseConv2d(nn.Conv2d):
    """Bias-free 1x1 convolution that folds the batch into the height axis on small feature maps.

    On the CPU, MindSpore 2.10's oneDNN kernels handle a batch of small maps badly: for batch 32, 2048->416 channels
    on a 1x1 map, the weight gradient alone took ~30 ms. On maps of at most ``FOLD_MAX_HW`` output positions the
    input is therefore transposed to a single (1, Cin, N*H*W, 1) map, convolved with the unchanged 4-D weight (one
    large GEMM for oneDNN, and no reshaped copy of the weight, which MindSpore's CPU backend would materialise in the
    forward pass and again for its gradient) and transposed back. res2net50 training at 32x32, batch 32 on 2 cores
    ran 1-7 % faster (three alternating process pairs) than the previous ``MatMul`` form of the same product, which
    was itself much faster than the plain convolution. At 8x8 the transposes cost more than they save (limit 16 ~3 %
    faster than 64). Inputs of more than ``FOLD_MAX_VALUES`` values keep the convolution: the transposed copy is
    kept for the backward pass.

    The parameter is the usual ``weight`` of shape (Cout, Cin, 1, 1), so checkpoints are unaffected, and the result
    equals the convolution up to float rounding. The choice depends only on static shapes, so it is made once at
    graph compile time.
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

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        n, c, h, w = x.shape
        out_h, out_w = (h - 1) // self.step + 1, (w - 1) // self.step + 1
        if out_h * out_w > self.FOLD_MAX_HW or n * c * out_h * out_w > self.FOLD_MAX_VALUES:
            return self.conv2d(x, self.weight)
        s = self.step
        if s > 1 and h % s == 0 and w % s == 0:
            # The positions a strided 1x1 convolution reads, as one Slice of a (N, C, H/s, s, W/s, s) view (its
            # gradient is one SliceGrad; two Gathers cost six kernels each way, with transposes).
            x = ops.slice(x.reshape(n, c, h // s, s, w // s, s), (0,) * 6, (n, c, h // s, 1, w // s, 1))
            x = x.reshape(n, c, out_h, out_w)
        elif s > 1:
            # Gather, not x[:, :, ::s, ::s]: the gradient of that strided slice fails in MindSpore 2.10 PyNative
            # ("StridedSliceGrad ... out of bounds").
            x = ops.gather(x, ops.arange(0, h, s), 2)
            x = ops.gather(x, ops.arange(0, w, s), 3)
        out = self.folded(x.transpose(1, 0, 2, 3).reshape(1, c, n * out_h * out_w, 1))
        return out.reshape(self.out_channels, n, out_h, out_w).transpose(1, 0, 2, 3)

    def folded(self, x: ms.Tensor) -> ms.Tensor:
        """The stride-1 convolution of maps already folded into one (1, C, positions, 1) map."""
        return self.conv_1x1(x, self.weight)


class SmallMapConv2d(nn.Conv2d):
    """Bias-free k x k convolution that runs as one GEMM when its output is a single position.

    At 32x32 input, res2net50's last stage works on 1x1 maps (2x2 before its strided first block).
    There a 3x3 convolution with padding 1 only ever multiplies the taps that land inside the input:
    the centre tap for a 1x1 input, the lower-right 2x2 taps for a strided 2x2 input. The output is
    then ``x.reshape(N, Cin*H*W) @ weight[:, :, p:p+H, p:p+W].reshape(Cout, Cin*H*W).T`` exactly,
    without the 8 (or 5) zero-padding taps oneDNN would multiply and without its per-image overhead:
    res2net50 training at 32x32, batch 32 on 2 cores ran ~3-6 % faster. Every other shape, and any
    dilated or grouped convolution (Res2NeXt), uses the ordinary convolution. Parameter name and
    shape are those of ``nn.Conv2d``.
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

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        n, c, h, w = x.shape
        k, p = self.kernel, self.pad
        single_output = (h + 2 * p - k) // self.step == 0 and (w + 2 * p - k) // self.step == 0
        if self.conv_only or not single_output or h + p > k or w + p > k:
            return self.conv2d(x, self.weight)
        # ops.slice, not weight[:, :, a:b, c:d]: the StridedSlice kernel took ~1.5 ms for a 208x208x3x3 weight.
        taps = ops.slice(self.weight, (0, 0, p, p), (self.out_channels, c, h, w))
        out = self.matmul_nt(x.reshape(n, c * h * w), taps.reshape(self.out_channels, c * h * w))
        return out.reshape(n, self.out_channels, 1, 1)

    def folded(self, x: ms.Tensor) -> ms.Tensor:
        """This stride-1 convolution on a batch of 1x1 maps folded into one (1, C, N, 1) map (see ``Res2Net``).

        With ``padding = dilation * (kernel - 1) / 2`` only the centre tap of a 1x1 input meets data: the result is
        a (grouped) 1x1 convolution with that tap, which needs no reshaped copy of the weight.
        """
        mid = (self.kernel - 1) // 2
        centre = ops.slice(self.weight, (0, 0, mid, mid), (self.out_channels, self.in_channels // self.group, 1, 1))
        return self.conv_centre(x, centre)


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1, groups: int = 1):
    if kernel_size == 1 and groups == 1:
        return PointwiseConv2d(in_channels, out_channels, stride=stride)
    return SmallMapConv2d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups)


def _bn(channels: int, zero_init: bool = False) -> nn.BatchNorm2d:
    # MindSpore's momentum is the weight of the running value: 0.9 here equals PyTorch's 0.1.
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.9, gamma_init="zeros" if zero_init else "ones")


class _ConcatChunks(nn.Cell):
    """Concatenate ``num`` equally wide chunks along the channels; the gradient is one Split kernel.

    MindSpore differentiates a concatenation into one Slice kernel per input (its ``_SplitWithSize`` expander):
    with equal widths a single Split gives the same gradients, 48 fewer kernel launches per res2net50 step at
    32x32. A Cell with its own ``bprop`` changes how MindSpore orders the backward pass, though: with it on the
    blocks of the last two stages (or all) res2net50_v1b's training peak at 224 rose from 5.3 to 6.2 GiB. Blocks
    therefore use it only for chunks of at most ``MAX_VALUES`` values (all blocks at 32x32, none at 224), where
    kernel launches matter and memory does not.
    """

    MAX_VALUES = 1 << 17

    def __init__(self, num: int) -> None:
        super().__init__()
        self.num = num

    def construct(self, chunks: Tuple[ms.Tensor, ...]) -> ms.Tensor:
        return ops.cat(chunks, axis=1)

    def bprop(self, chunks, out, dout):  # noqa: D102 (MindSpore's custom-gradient hook)
        return (ops.split(dout, dout.shape[1] // self.num, axis=1),)


class Bottle2neck(nn.Cell):
    """Res2Net bottleneck: a 1x1 conv, ``scale`` hierarchical 3x3 branches, a 1x1 conv, a shortcut.

    The 1x1 conv output is split once into ``scale`` chunks of ``width`` channels. Branch ``i`` (all
    but the last chunk) applies a 3x3 conv + BN + ReLU; in a regular block each branch after the
    first first adds the previous branch's output, which widens the receptive field step by step.
    The last chunk passes through and is concatenated last. The first block of each stage
    (``stage_first``) has no additions, puts the stride on the 3x3 convs and average-pools the
    pass-through chunk (3x3, padding 1, padding counted in the divisor).

    Args:
        in_channels: input channels.
        planes: bottleneck planes; the block outputs ``planes * 4`` channels.
        stride: spatial stride of the block (on the 3x3 convs).
        down_sample: the shortcut projection, or None for identity.
        cardinality: groups of the 3x3 convs (Res2NeXt).
        base_width: channels per group at ``planes=64``; ``width = floor(planes * base_width / 64)``.
        scale: number of chunks (the paper's s).
        dilation: dilation of the 3x3 convs (for ``output_stride`` < 32).
        stage_first: whether this is the first block of a stage (see above).
        drop_path_rate: stochastic-depth probability of the residual branch.
        zero_init_last: start the last BN's gamma at zero, so the block starts as its shortcut.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        down_sample: Optional[nn.Cell] = None,
        cardinality: int = 1,
        base_width: int = 26,
        scale: int = 4,
        dilation: int = 1,
        stage_first: bool = False,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = False,
    ) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        width = int(math.floor(planes * (base_width / 64.0))) * cardinality
        out_channels = planes * self.expansion
        self.width = width
        self.scale = scale
        self.stage_first = stage_first
        self.num_branches = max(1, scale - 1)

        self.conv1 = _conv(in_channels, width * scale, 1)
        self.bn1 = _bn(width * scale)
        self.convs = nn.CellList(
            [
                _conv(width, width, 3, stride=stride, dilation=dilation, groups=cardinality)
                for _ in range(self.num_branches)
            ]
        )
        self.bns = nn.CellList([_bn(width) for _ in range(self.num_branches)])
        self.has_pool = stage_first and scale > 1
        self.pool = (
            nn.AvgPool2d(3, stride, pad_mode="pad", padding=1, count_include_pad=True)
            if self.has_pool
            else nn.Identity()
        )
        self.concat = _ConcatChunks(scale)
        self.conv3 = _conv(width * scale, out_channels, 1)
        self.bn3 = _bn(out_channels, zero_init=zero_init_last)
        self.relu = nn.ReLU()
        self.down_sample = down_sample
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        # Whether construct(x, folded=True) is valid: no stride, pool or projection, and drop path (per sample) off.
        self.can_fold = stride == 1 and down_sample is None and drop_path_rate == 0 and not stage_first

    def construct(self, x: ms.Tensor, folded: bool = False) -> ms.Tensor:
        """``folded``: ``x`` is a batch of 1x1 maps folded into one (1, C, N, 1) map (see ``Res2Net._stage``)."""
        shortcut = x
        out = self.relu(self.bn1(self.conv1.folded(x) if folded else self.conv1(x)))
        chunks = ops.split(out, self.width, axis=1)  # split once ...
        branches = ()
        sp = chunks[0]
        for i in range(self.num_branches):
            if i == 0 or self.stage_first:
                sp = chunks[i]
            else:
                sp = sp + chunks[i]
            sp = self.relu(self.bns[i](self.convs[i].folded(sp) if folded else self.convs[i](sp)))
            branches = branches + (sp,)
        if self.scale > 1:
            branches = branches + (self.pool(chunks[self.scale - 1]),)
        # ... and concatenate once (see _ConcatChunks for when its one-kernel gradient is used)
        out = self.concat(branches) if branches[0].size <= _ConcatChunks.MAX_VALUES else ops.cat(branches, axis=1)
        out = self.bn3(self.conv3.folded(out) if folded else self.conv3(out))
        if self.down_sample is not None:
            shortcut = self.down_sample(x)
        # Not `out += shortcut`: MindSpore 2.10 turns that into InplaceAddExt, which ONNX export rejects.
        out = self.drop_path(out) + shortcut
        return self.relu(out)


class Res2Net(nn.Cell):
    """Res2Net / Res2NeXt backbone with a linear classifier.

    Args:
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for the 50-layer model.
        base_width: per-group width at 64 planes (26 for res2net50_26w_4s).
        scale: chunks per block (4 for ..._4s).
        cardinality: 3x3 conv groups (>1 for Res2NeXt).
        stem_type: ``""`` for the 7x7 stem, ``"deep"`` for three 3x3 convs (v1b).
        stem_width: channels of the deep stem's first two convs.
        avg_down: shortcut of strided blocks average-pools then projects with a stride-1 1x1 conv (v1b).
        num_classes: classifier outputs; 0 makes the head return pooled features.
        in_channels: input image channels.
        drop_rate: dropout probability before the classifier.
        drop_path_rate: stochastic depth, rising linearly from 0 (first block) to this (last block).
        output_stride: 32, 16 or 8; stages past it use dilation instead of stride.
        global_pool: ``"avg"`` or ``"max"``.
        zero_init_last: zero the last BN of every block (faster convergence from scratch).
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        base_width: int = 26,
        scale: int = 4,
        cardinality: int = 1,
        stem_type: str = "",
        stem_width: int = 32,
        avg_down: bool = False,
        num_classes: int = 1000,
        in_channels: int = 3,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        output_stride: int = 32,
        global_pool: str = "avg",
        zero_init_last: bool = False,
    ) -> None:
        super().__init__()
        if stem_type not in ("", "deep"):
            raise ValueError(f"stem_type must be '' or 'deep', got '{stem_type}'")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        if global_pool not in ("avg", "max"):
            raise ValueError(f"global_pool must be 'avg' or 'max', got '{global_pool}'")
        if not 0.0 <= drop_rate < 1.0 or not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_rate and drop_path_rate must be in [0, 1), got {drop_rate}, {drop_path_rate}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.drop_rate = drop_rate
        self.global_pool = global_pool

        if stem_type == "deep":
            self.conv1 = nn.SequentialCell(
                [
                    _conv(in_channels, stem_width, 3, stride=2),
                    _bn(stem_width),
                    nn.ReLU(),
                    _conv(stem_width, stem_width, 3),
                    _bn(stem_width),
                    nn.ReLU(),
                    _conv(stem_width, 64, 3),
                ]
            )
        else:
            self.conv1 = _conv(in_channels, 64, 7, stride=2)
        self.bn1 = _bn(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, pad_mode="pad", padding=1)
        self.feature_info: List[Dict[str, Any]] = [dict(chs=64, reduction=2, name="relu")]

        total_blocks = sum(layers)
        block_idx = 0
        in_chs = 64
        reduction = 4
        dilation = 1
        for i, (planes, num_blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            nominal_stride = 1 if i == 0 else 2
            stride = nominal_stride
            prev_dilation = dilation
            if reduction * nominal_stride > output_stride:
                dilation *= nominal_stride
                stride = 1
            else:
                reduction *= nominal_stride
            blocks = []
            for b in range(num_blocks):
                dpr = drop_path_rate * block_idx / max(1, total_blocks - 1)
                down_sample = None
                if b == 0 and (stride != 1 or in_chs != planes * Bottle2neck.expansion):
                    down_sample = self._shortcut(
                        in_chs, planes * Bottle2neck.expansion, stride, nominal_stride, avg_down
                    )
                blocks.append(
                    Bottle2neck(
                        in_chs,
                        planes,
                        stride=stride if b == 0 else 1,
                        down_sample=down_sample,
                        cardinality=cardinality,
                        base_width=base_width,
                        scale=scale,
                        dilation=prev_dilation if b == 0 else dilation,
                        stage_first=b == 0,
                        drop_path_rate=dpr,
                        zero_init_last=zero_init_last,
                    )
                )
                in_chs = planes * Bottle2neck.expansion
                block_idx += 1
            setattr(self, f"layer{i + 1}", nn.SequentialCell(blocks))
            self.feature_info.append(dict(chs=in_chs, reduction=reduction, name=f"layer{i + 1}"))

        # Run blocks on 1x1 maps in the folded layout (see _stage). Read when a graph is compiled: set it before the
        # first call (False gives the plain layout, e.g. for comparison).
        self.fold_small_maps = True
        self.num_features = in_chs
        self.dropout = nn.Dropout(p=drop_rate) if drop_rate > 0 else nn.Identity()
        self.classifier = self._make_classifier(num_classes)

    @staticmethod
    def _shortcut(in_chs: int, out_chs: int, stride: int, nominal_stride: int, avg_down: bool) -> nn.SequentialCell:
        if not avg_down:
            return nn.SequentialCell([_conv(in_chs, out_chs, 1, stride=stride), _bn(out_chs)])
        if nominal_stride == 1:
            return nn.SequentialCell([_conv(in_chs, out_chs, 1), _bn(out_chs)])
        # The pool keeps index 0 even when dilation replaces the stride, so parameter names (and
        # checkpoints) do not depend on output_stride. ceil_mode + uncounted padding: exact for odd sizes.
        pool = (
            nn.AvgPool2d(stride, stride, pad_mode="pad", ceil_mode=True, count_include_pad=False)
            if stride > 1
            else nn.Identity()
        )
        return nn.SequentialCell([pool, _conv(in_chs, out_chs, 1), _bn(out_chs)])

    def _make_classifier(self, num_classes: int) -> nn.Cell:
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        return nn.Dense(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Cell:
        """The final classifier layer (``nn.Identity`` when ``num_classes == 0``)."""
        return self.classifier

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0: pooled features out)."""
        if global_pool is not None:
            if global_pool not in ("avg", "max"):
                raise ValueError(f"global_pool must be 'avg' or 'max', got '{global_pool}'")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.classifier = self._make_classifier(num_classes)

    def _stem(self, x: ms.Tensor) -> ms.Tensor:
        return self.relu(self.bn1(self.conv1(x)))

    def _stage(self, stage: nn.SequentialCell, x: ms.Tensor) -> ms.Tensor:
        """Run one stage; blocks on a batch of 1x1 maps run on it folded into one (1, C, N, 1) map.

        Small inputs (32x32 and below) reach 1x1 maps in the last stages. There a transpose turns (N, C, 1, 1) into
        (1, C, N, 1): batch-norm statistics, split, concatenation, additions and ReLU are unchanged by it, the 1x1
        and centre-tap convolutions become single GEMMs on the weights as stored, and oneDNN's batch norm runs ~3x
        faster on it than on N maps of one pixel. A second transpose restores the layout at the end of the stage.
        res2net50 training at 32x32, batch 32, 2 cores: ~2 % faster. Strided, projecting (stage-first) and
        drop-path blocks keep the plain layout.
        """
        folded = False
        for block in stage:
            if not folded and self.fold_small_maps and block.can_fold and x.shape[0] > 1 and x.shape[2:] == (1, 1):
                x = x.transpose(2, 1, 0, 3)
                folded = True
            x = block(x, folded)
        if folded:
            x = x.transpose(2, 1, 0, 3)
        return x

    def forward_intermediates(self, x: ms.Tensor) -> Tuple[ms.Tensor, ...]:
        """The stem output and the four stage outputs, matching ``feature_info``."""
        x0 = self._stem(x)
        x1 = self._stage(self.layer1, self.maxpool(x0))
        x2 = self._stage(self.layer2, x1)
        x3 = self._stage(self.layer3, x2)
        x4 = self._stage(self.layer4, x3)
        return x0, x1, x2, x3, x4

    def forward_features(self, x: ms.Tensor) -> ms.Tensor:
        """Unpooled last-stage feature map, (B, num_features, H/32, W/32) at output_stride 32."""
        x = self.maxpool(self._stem(x))
        x = self._stage(self.layer1, x)
        x = self._stage(self.layer2, x)
        x = self._stage(self.layer3, x)
        return self._stage(self.layer4, x)

    def forward_head(self, x: ms.Tensor, pre_logits: bool = False) -> ms.Tensor:
        """Global pool, dropout and classifier; ``pre_logits`` stops before the classifier."""
        if self.global_pool == "max":
            x = x.amax(axis=(2, 3))
        else:
            x = x.mean(axis=(2, 3))
        x = self.dropout(x)
        if pre_logits:
            return x
        return self.classifier(x)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.forward_head(self.forward_features(x))


def _create_res2net(variant: str, pretrained: bool = False, **kwargs: Any) -> Res2Net:
    return build_model_with_cfg(Res2Net, variant, pretrained, default_cfgs[variant], **kwargs)


def _cfg(url: str = "", **kwargs: Any) -> Dict[str, Any]:
    return {
        "url": url,
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.875,
        "interpolation": "bilinear",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "conv1",
        "classifier": "classifier",
        "paper": "https://arxiv.org/abs/1904.01169",
        **kwargs,
    }


_MINDCV_URL = "https://download.mindspore.cn/toolkits/mindcv/res2net/"

# fmt: off
default_cfgs = {
    "res2net50": _cfg(url=_MINDCV_URL + "res2net50-f42cf71b.ckpt"),
    "res2net101": _cfg(url=_MINDCV_URL + "res2net101-8ae60132.ckpt"),
    "res2net152": _cfg(),
    "res2net50_v1b": _cfg(url=_MINDCV_URL + "res2net50_v1b-99304e92.ckpt", first_conv="conv1.0"),
    "res2net101_v1b": _cfg(url=_MINDCV_URL + "res2net101_v1b-7e6db001.ckpt", first_conv="conv1.0"),
    "res2net152_v1b": _cfg(first_conv="conv1.0"),
    "res2net50_26w_6s": _cfg(),
    "res2net50_26w_8s": _cfg(),
    "res2net50_48w_2s": _cfg(),
    "res2net50_14w_8s": _cfg(),
    "res2next50": _cfg(),
}
# fmt: on


@register_model
def res2net50(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2Net-50 (26w x 4s): 50 layers, base width 26, scale 4."""
    model_args = dict(layers=(3, 4, 6, 3), base_width=26, scale=4)
    return _create_res2net("res2net50", pretrained, **dict(model_args, **kwargs))


@register_model
def res2net101(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2Net-101 (26w x 4s): 101 layers, base width 26, scale 4."""
    model_args = dict(layers=(3, 4, 23, 3), base_width=26, scale=4)
    return _create_res2net("res2net101", pretrained, **dict(model_args, **kwargs))


@register_model
def res2net152(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2Net-152 (26w x 4s): 152 layers, base width 26, scale 4."""
    model_args = dict(layers=(3, 8, 36, 3), base_width=26, scale=4)
    return _create_res2net("res2net152", pretrained, **dict(model_args, **kwargs))


@register_model
def res2net50_v1b(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2Net-50 v1b (26w x 4s): deep 3x3-conv stem and average-pool shortcut."""
    model_args = dict(layers=(3, 4, 6, 3), base_width=26, scale=4, stem_type="deep", avg_down=True)
    return _create_res2net("res2net50_v1b", pretrained, **dict(model_args, **kwargs))


@register_model
def res2net101_v1b(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2Net-101 v1b (26w x 4s): deep 3x3-conv stem and average-pool shortcut."""
    model_args = dict(layers=(3, 4, 23, 3), base_width=26, scale=4, stem_type="deep", avg_down=True)
    return _create_res2net("res2net101_v1b", pretrained, **dict(model_args, **kwargs))


@register_model
def res2net152_v1b(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2Net-152 v1b (26w x 4s): deep 3x3-conv stem and average-pool shortcut."""
    model_args = dict(layers=(3, 8, 36, 3), base_width=26, scale=4, stem_type="deep", avg_down=True)
    return _create_res2net("res2net152_v1b", pretrained, **dict(model_args, **kwargs))


@register_model
def res2net50_26w_6s(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2Net-50 with base width 26 and scale 6."""
    model_args = dict(layers=(3, 4, 6, 3), base_width=26, scale=6)
    return _create_res2net("res2net50_26w_6s", pretrained, **dict(model_args, **kwargs))


@register_model
def res2net50_26w_8s(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2Net-50 with base width 26 and scale 8."""
    model_args = dict(layers=(3, 4, 6, 3), base_width=26, scale=8)
    return _create_res2net("res2net50_26w_8s", pretrained, **dict(model_args, **kwargs))


@register_model
def res2net50_48w_2s(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2Net-50 with base width 48 and scale 2."""
    model_args = dict(layers=(3, 4, 6, 3), base_width=48, scale=2)
    return _create_res2net("res2net50_48w_2s", pretrained, **dict(model_args, **kwargs))


@register_model
def res2net50_14w_8s(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2Net-50 with base width 14 and scale 8."""
    model_args = dict(layers=(3, 4, 6, 3), base_width=14, scale=8)
    return _create_res2net("res2net50_14w_8s", pretrained, **dict(model_args, **kwargs))


@register_model
def res2next50(pretrained: bool = False, **kwargs: Any) -> Res2Net:
    """Res2NeXt-50: base width 4, cardinality 8, scale 4 (grouped 3x3 convs)."""
    model_args = dict(layers=(3, 4, 6, 3), base_width=4, scale=4, cardinality=8)
    return _create_res2net("res2next50", pretrained, **dict(model_args, **kwargs))
