"""Res2Net and Res2NeXt for MindSpore.

Res2Net: A New Multi-scale Backbone Architecture, Shang-Hua Gao, Ming-Ming Cheng, Kai Zhao, Xin-Yu Zhang,
Ming-Hsuan Yang, Philip Torr. IEEE TPAMI 2021. https://arxiv.org/abs/1904.01169

Written for this project from the paper and the published architecture facts (no code copied). The numerics equal
the authors' reference definition: given the same weights, the logits match the PyTorch models (see
``tests/test_parity_torch.py``), and parameter names and shapes equal upstream MindCV's, so its published Res2Net
checkpoints load unchanged. BatchNorm uses MindSpore's defaults, which are PyTorch's (momentum 0.9 is the weight of
the running value, PyTorch's 0.1). Convolutions and stages come from ``layers``: CPU fast paths, same names and numbers.

The ``_v1b`` variants (called ``res2net50d``/``res2net101d`` in timm) use the deep 3-conv stem and an average-pool
shortcut, the "ResNet-D" tweaks of Bag of Tricks, https://arxiv.org/abs/1812.01187.
"""

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mindspore as ms
from mindspore import nn, ops

from ..errors import ConfigError
from .helpers import build_model_with_cfg
from .layers import ConcatChunks, DropPath, FoldSmallMaps, SmallMapStage, create_conv2d, create_shortcut
from .registry import register_model

# The entrypoint names are appended by @register_model.
__all__ = ["Bottle2neck", "Res2Net"]


class Bottle2neck(nn.Cell):
    """Res2Net bottleneck: a 1x1 conv, ``scale`` hierarchical 3x3 branches, a 1x1 conv, a shortcut.

    The 1x1 conv output is split once into ``scale`` chunks of ``width`` channels. Branch ``i`` (all but the last
    chunk) applies a 3x3 conv + BN + ReLU; in a regular block each branch after the first first adds the previous
    branch's output, which widens the receptive field step by step. The last chunk passes through and is
    concatenated last. The first block of each stage (``stage_first``) has no additions, puts the stride on the 3x3
    convs and average-pools the pass-through chunk (3x3, padding 1, padding counted in the divisor).

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
        self.width = width = int(math.floor(planes * (base_width / 64.0))) * cardinality
        self.scale = scale
        self.stage_first = stage_first
        self.num_branches = max(1, scale - 1)

        self.conv1 = create_conv2d(in_channels, width * scale, 1)
        self.bn1 = nn.BatchNorm2d(width * scale)
        branches = range(self.num_branches)
        self.convs = nn.CellList(
            [create_conv2d(width, width, 3, stride=stride, dilation=dilation, groups=cardinality) for _ in branches]
        )
        self.bns = nn.CellList([nn.BatchNorm2d(width) for _ in branches])
        self.has_pool = stage_first and scale > 1
        self.pool = nn.AvgPool2d(3, stride, pad_mode="pad", padding=1) if self.has_pool else nn.Identity()
        self.concat = ConcatChunks(scale)
        self.conv3 = create_conv2d(width * scale, planes * self.expansion, 1)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, gamma_init="zeros" if zero_init_last else "ones")
        self.relu = nn.ReLU()
        self.down_sample = down_sample
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        # Whether construct(x, folded=True) is exact (see SmallMapStage): no stride, pool, projection or drop path.
        self.can_fold = stride == 1 and down_sample is None and drop_path_rate == 0 and not stage_first

    def construct(self, x: ms.Tensor, folded: bool = False) -> ms.Tensor:
        """``folded``: ``x`` is a batch of 1x1 maps folded into one (1, C, N, 1) map (see ``SmallMapStage``)."""
        shortcut = x
        out = self.relu(self.bn1(self.conv1(x, folded)))
        chunks = ops.split(out, self.width, axis=1)  # split once ...
        branches = ()
        sp = chunks[0]
        for i in range(self.num_branches):
            if i == 0 or self.stage_first:
                sp = chunks[i]
            else:
                sp = sp + chunks[i]
            sp = self.relu(self.bns[i](self.convs[i](sp, folded)))
            branches = branches + (sp,)
        if self.scale > 1:
            branches = branches + (self.pool(chunks[self.scale - 1]),)
        out = self.bn3(self.conv3(self.concat(branches), folded))  # ... and concatenate once
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
        frozen_stages: for fine-tuning, 0 (default) freezes nothing; ``k`` in 1-4 freezes the stem (``conv1``,
            ``bn1``) and the first ``k`` stages (``layer1`` .. ``layer<k>``), so 4 freezes the whole backbone and only
            the classifier trains. Frozen parameters get ``requires_grad=False`` (``trainable_params()`` and so the
            optimizer leave them out), their BatchNorms always normalise with the moving statistics and never
            update them (``use_batch_statistics=False``, which ``set_train(True)`` of the model or of any wrapper
            does not undo, in Graph and PyNative mode alike), and their blocks have no drop path: the frozen part
            is a fixed function. mmpretrain's ``frozen_stages=k`` is the same for ``k >= 1``; its ``-1`` is our 0,
            and its stem-only 0 has no equivalent here.
    """

    # True (default): stages run blocks on 1x1 maps folded (SmallMapStage). Set it before the first call.
    fold_small_maps = FoldSmallMaps()

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
        frozen_stages: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(frozen_stages, int) or isinstance(frozen_stages, bool) or not 0 <= frozen_stages <= 4:
            raise ConfigError(
                f"frozen_stages must be an integer from 0 (nothing frozen) to 4 (stem and every stage), "
                f"got {frozen_stages!r}; set --frozen_stages in that range"
            )
        if stem_type not in ("", "deep"):
            raise ValueError(f"stem_type must be '' or 'deep', got '{stem_type}'")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        if global_pool not in ("avg", "max"):
            raise ValueError(f"global_pool must be 'avg' or 'max', got '{global_pool}'")
        if not 0.0 <= drop_rate < 1.0 or not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_rate and drop_path_rate must be in [0, 1), got {drop_rate}, {drop_path_rate}")
        self.in_channels = in_channels
        self.drop_rate = drop_rate

        if stem_type == "deep":
            c = stem_width
            stem = [create_conv2d(in_channels, c, 3, stride=2), nn.BatchNorm2d(c), nn.ReLU(), create_conv2d(c, c, 3)]
            self.conv1 = nn.SequentialCell(stem + [nn.BatchNorm2d(c), nn.ReLU(), create_conv2d(c, 64, 3)])
        else:
            self.conv1 = create_conv2d(in_channels, 64, 7, stride=2)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, pad_mode="pad", padding=1)
        self.feature_info: List[Dict[str, Any]] = [dict(chs=64, reduction=2, name="relu")]

        block_args = dict(cardinality=cardinality, base_width=base_width, scale=scale, zero_init_last=zero_init_last)
        dprs = [drop_path_rate * i / max(1, sum(layers) - 1) for i in range(sum(layers))]  # rising linearly
        in_chs, reduction, dilation = 64, 4, 1
        for i, (planes, num_blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            nominal_stride = stride = 1 if i == 0 else 2
            first_dilation = dilation
            if reduction * nominal_stride > output_stride:  # past output_stride: dilate instead of striding
                dilation *= nominal_stride
                stride = 1
            else:
                reduction *= nominal_stride
            out_chs = planes * Bottle2neck.expansion
            blocks = []
            for b in range(num_blocks):
                if b == 0:
                    down_sample = create_shortcut(in_chs, out_chs, stride, nominal_stride, avg_down)
                    kw = dict(stride=stride, down_sample=down_sample, dilation=first_dilation, stage_first=True)
                else:
                    kw = dict(dilation=dilation)
                # Frozen blocks keep their place in the linear drop-path schedule but drop nothing (a fixed function).
                dpr = dprs.pop(0)
                dpr = dpr if i >= frozen_stages else 0.0
                blocks.append(Bottle2neck(in_chs, planes, drop_path_rate=dpr, **kw, **block_args))
                in_chs = out_chs
            # SmallMapStage: blocks on 1x1 maps run folded; parameter names are those of nn.SequentialCell.
            setattr(self, f"layer{i + 1}", SmallMapStage(blocks))
            self.feature_info.append(dict(chs=in_chs, reduction=reduction, name=f"layer{i + 1}"))

        self.num_features = in_chs
        self.dropout = nn.Dropout(p=drop_rate) if drop_rate > 0 else nn.Identity()
        self.reset_classifier(num_classes, global_pool)
        self.frozen_stages = frozen_stages
        self._freeze(frozen_stages)

    def _freeze(self, frozen_stages: int) -> None:
        """Stop gradients and BN statistics updates in the stem and ``layer1`` .. ``layer<frozen_stages>``."""
        if frozen_stages == 0:
            return
        frozen = [self.conv1, self.bn1] + [getattr(self, f"layer{i}") for i in range(1, frozen_stages + 1)]
        for cell in frozen:
            for param in cell.get_parameters():
                param.requires_grad = False
            # set_train() sets `training` on every sub-cell (add_flags_recursive) without calling their set_train,
            # so overriding set_train here would not survive a wrapper's set_train(True); use_batch_statistics
            # is read by BatchNorm's construct before `training` and is a compile-time constant in Graph mode.
            for _, sub in cell.cells_and_names():
                if isinstance(sub, nn.BatchNorm2d):
                    sub.use_batch_statistics = False

    def get_classifier(self) -> nn.Cell:
        """The final classifier layer (``nn.Identity`` when ``num_classes == 0``)."""
        return self.classifier

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0: pooled features out)."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if global_pool is not None:
            if global_pool not in ("avg", "max"):
                raise ValueError(f"global_pool must be 'avg' or 'max', got '{global_pool}'")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.classifier = nn.Dense(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_intermediates(self, x: ms.Tensor) -> Tuple[ms.Tensor, ...]:
        """The stem output and the four stage outputs, matching ``feature_info``."""
        x0 = self.relu(self.bn1(self.conv1(x)))
        x1 = self.layer1(self.maxpool(x0))
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        return x0, x1, x2, x3, self.layer4(x3)

    def forward_features(self, x: ms.Tensor) -> ms.Tensor:
        """Unpooled last-stage feature map, (B, num_features, H/32, W/32) at output_stride 32."""
        return self.forward_intermediates(x)[-1]

    def forward_head(self, x: ms.Tensor, pre_logits: bool = False) -> ms.Tensor:
        """Global pool, dropout and classifier; ``pre_logits`` stops before the classifier."""
        x = self.dropout(x.amax(axis=(2, 3)) if self.global_pool == "max" else x.mean(axis=(2, 3)))
        return x if pre_logits else self.classifier(x)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.forward_head(self.forward_features(x))


def _create_res2net(variant: str, pretrained: bool = False, **kwargs: Any) -> Res2Net:
    # The builder takes the cfg of the requested tag (``pretrained_tag`` from create_model) from the registry.
    return build_model_with_cfg(Res2Net, variant, pretrained, **kwargs)


def _cfg(url: str = "", **kwargs: Any) -> Dict[str, Any]:
    cfg = dict(url=url, num_classes=1000, input_size=(3, 224, 224), pool_size=(7, 7), crop_pct=0.875)
    cfg.update(interpolation="bilinear", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))  # ImageNet
    cfg.update(first_conv="conv1", classifier="classifier", paper="https://arxiv.org/abs/1904.01169")
    return {**cfg, **kwargs}


def _mindcv(file: str, top1: float, top5: float, **kwargs: Any) -> Dict[str, Any]:
    """Upstream MindCV's checkpoint (its SHA-256 prefix is in the name), with its published ImageNet accuracy."""
    url = "https://download.mindspore.cn/toolkits/mindcv/res2net/" + file
    return _cfg(url=url, source="upstream MindCV", top1=top1, top5=top5, **kwargs)


def _timm(hf_hub_id: str, top1: float, top5: float, **kwargs: Any) -> Dict[str, Any]:
    """timm's weights on the Hugging Face Hub (PyTorch layout, converted on load), with timm's published accuracy.

    timm evaluates them with this preprocessing (224, crop 0.875, bilinear, ImageNet mean/std) and publishes
    their licence as "unknown" (the paper's authors trained them).
    """
    kwargs.update(hf_hub_id=hf_hub_id, hf_hub_filename="model.safetensors", source="timm", license="unknown")
    return _cfg(top1=top1, top5=top5, **kwargs)


# "<model>.<tag>": one entry per weight source, the default first (see registry); a bare name has no weights.
# top1/top5: the source's published ImageNet-1k validation accuracy, not reproduced here.
# fmt: off
default_cfgs = {
    "res2net50.mindcv_in1k": _mindcv("res2net50-f42cf71b.ckpt", 79.35, 94.64),
    "res2net50.timm_in1k": _timm("timm/res2net50_26w_4s.in1k", 77.994, 93.860),
    "res2net101.mindcv_in1k": _mindcv("res2net101-8ae60132.ckpt", 79.56, 94.70),
    "res2net101.timm_in1k": _timm("timm/res2net101_26w_4s.in1k", 79.192, 94.466),
    "res2net152": _cfg(),
    "res2net50_v1b.mindcv_in1k": _mindcv("res2net50_v1b-99304e92.ckpt", 80.32, 95.09, first_conv="conv1.0"),
    "res2net50_v1b.timm_in1k": _timm("timm/res2net50d.in1k", 80.280, 95.028, first_conv="conv1.0"),
    "res2net101_v1b.mindcv_in1k": _mindcv("res2net101_v1b-7e6db001.ckpt", 81.14, 95.41, first_conv="conv1.0"),
    "res2net101_v1b.timm_in1k": _timm("timm/res2net101d.in1k", 81.236, 95.346, first_conv="conv1.0"),
    "res2net152_v1b": _cfg(first_conv="conv1.0"),
    "res2net50_26w_6s.timm_in1k": _timm("timm/res2net50_26w_6s.in1k", 78.586, 94.120),
    "res2net50_26w_8s.timm_in1k": _timm("timm/res2net50_26w_8s.in1k", 78.950, 94.280),
    "res2net50_48w_2s.timm_in1k": _timm("timm/res2net50_48w_2s.in1k", 77.528, 93.562),
    "res2net50_14w_8s.timm_in1k": _timm("timm/res2net50_14w_8s.in1k", 78.142, 93.852),
    "res2next50.timm_in1k": _timm("timm/res2next50.in1k", 78.238, 93.904),
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
