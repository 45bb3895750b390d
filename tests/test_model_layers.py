"""The CPU small-map fast paths of ``mindcv.models.layers`` equal MindSpore's own operators, values and gradients.

``PointwiseConv2d`` folds the batch of a small map into one map and ``SmallMapConv2d`` uses a GEMM for a single
output position, chosen from static shapes; their ``construct(x, folded=True)`` serves the folded layout of
``SmallMapStage``. Every convolution case compares one of them against an ``nn.Conv2d`` holding the same weight,
forward and backward (input and weight gradients), in PyNative and in Graph mode. The shapes cover each branch: the
fast paths (1x1 output, strided, 2x2 and 4x4 maps, folded 1x1 maps) and the fall-backs to the convolution.
``ConcatChunks`` is compared with ``ops.cat`` on both sides of its size limit, and the last test runs a whole model
in the folded and the plain layout.
"""

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn, ops

from mindcv.models.layers import ConcatChunks, PointwiseConv2d, SmallMapConv2d, create_conv2d


def _reference(cell: nn.Conv2d) -> nn.Conv2d:
    ref = nn.Conv2d(
        cell.in_channels,
        cell.out_channels,
        cell.kernel_size,
        stride=cell.stride,
        pad_mode="pad",
        padding=cell.padding,
        dilation=cell.dilation,
        group=cell.group,
        has_bias=False,
    )
    ref.weight.set_data(cell.weight.data.copy())
    return ref


class _LossAndGrads(nn.Cell):
    def __init__(self, conv: nn.Cell) -> None:
        super().__init__()
        self.conv = conv
        self.grad = ms.value_and_grad(self.loss, 0, [conv.weight])

    def loss(self, x):
        out = self.conv(x)
        return (out * out).sum(), out

    def construct(self, x):
        return self.grad(x)


def _run(conv: nn.Cell, x: np.ndarray):
    (_, out), (grad_x, (grad_w,)) = _LossAndGrads(conv)(ms.Tensor(x))
    return out.asnumpy(), grad_x.asnumpy(), grad_w.asnumpy()


def _check(cell: nn.Conv2d, shape, graph: bool) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ms.set_context(mode=ms.GRAPH_MODE if graph else ms.PYNATIVE_MODE)
    try:
        ours = _run(cell, x)
        ref = _run(_reference(cell), x)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    for name, a, b in zip(("output", "input grad", "weight grad"), ours, ref):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=f"{name} for input {shape}")


# (in, out, stride, input shape): 1x1 map, strided to 1x1, 2x2 and 4x4 maps (folded),
# strided 4x4 -> 2x2, and 8x8 / strided 8x8 -> 4x4 / 16x16 (limit and convolution).
POINTWISE_CASES = [
    (16, 8, 1, (3, 16, 1, 1)),
    (16, 8, 2, (3, 16, 2, 2)),
    (16, 8, 1, (3, 16, 2, 2)),
    (16, 8, 1, (2, 16, 4, 4)),
    (16, 8, 2, (2, 16, 4, 3)),
    (16, 8, 2, (2, 16, 8, 8)),
    (16, 8, 1, (2, 16, 8, 8)),
]

# (in, out, kernel, stride, dilation, groups, input shape): centre tap (1x1, stride 1 and 2), the 2x2 taps of a
# strided 2x2 input, a 2x1 input, and the convolution for 2x2 stride 1, 3x3 stride 2, dilation 2, groups 2 on a
# 1x1 map (Res2NeXt) and a 7x7 stem conv.
SMALL_MAP_CASES = [
    (12, 10, 3, 1, 1, 1, (3, 12, 1, 1)),
    (12, 10, 3, 2, 1, 1, (3, 12, 1, 1)),
    (12, 10, 3, 2, 1, 1, (3, 12, 2, 2)),
    (12, 10, 3, 2, 1, 1, (3, 12, 2, 1)),
    (12, 10, 3, 1, 1, 1, (2, 12, 2, 2)),
    (12, 10, 3, 2, 1, 1, (2, 12, 3, 3)),
    (12, 10, 3, 1, 2, 1, (2, 12, 1, 1)),
    (12, 10, 3, 1, 1, 2, (2, 12, 1, 1)),
    (3, 8, 7, 2, 1, 1, (2, 3, 5, 5)),
]


@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("cin,cout,stride,shape", POINTWISE_CASES)
def test_pointwise_conv_equals_convolution(cin, cout, stride, shape, graph):
    ms.set_seed(0)
    _check(PointwiseConv2d(cin, cout, stride=stride), shape, graph)


@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("cin,cout,kernel,stride,dilation,groups,shape", SMALL_MAP_CASES)
def test_small_map_conv_equals_convolution(cin, cout, kernel, stride, dilation, groups, shape, graph):
    ms.set_seed(0)
    _check(SmallMapConv2d(cin, cout, kernel, stride=stride, dilation=dilation, groups=groups), shape, graph)


class _Folded(nn.Cell):
    """Runs ``conv(x, folded=True)`` on a batch of 1x1 maps: fold to (1, C, N, 1), convolve, unfold (as
    ``SmallMapStage`` does)."""

    def __init__(self, conv: nn.Cell) -> None:
        super().__init__()
        self.conv = conv
        self.weight = conv.weight

    def construct(self, x):
        return self.conv(x.transpose(2, 1, 0, 3), True).transpose(2, 1, 0, 3)


# (kernel, dilation, groups): the pointwise conv, and the centre tap of 3x3 convs, dilated and grouped (Res2NeXt).
FOLDED_CASES = [(1, 1, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2)]


@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("kernel,dilation,groups", FOLDED_CASES)
def test_folded_conv_equals_convolution_on_1x1_maps(kernel, dilation, groups, graph):
    ms.set_seed(0)
    conv = create_conv2d(12, 10, kernel, dilation=dilation, groups=groups)
    assert isinstance(conv, PointwiseConv2d if kernel == 1 else SmallMapConv2d)
    x = np.random.default_rng(0).standard_normal((5, 12, 1, 1)).astype(np.float32)
    ms.set_context(mode=ms.GRAPH_MODE if graph else ms.PYNATIVE_MODE)
    try:
        ours = _run(_Folded(conv), x)
        ref = _run(_reference(conv), x)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    for name, a, b in zip(("output", "input grad", "weight grad"), ours, ref):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=name)


class _ConcatLoss(nn.Cell):
    """Loss and chunk gradients of a concatenation (ours or ``ops.cat``) of the chunks of ``x``."""

    def __init__(self, num: int, ours: bool) -> None:
        super().__init__()
        self.num = num
        self.concat = ConcatChunks(num) if ours else None
        self.grad = ms.value_and_grad(self.loss, 0)

    def loss(self, x):
        chunks = ops.split(x, x.shape[1] // self.num, axis=1)
        branches = tuple(c * (i + 1.0) for i, c in enumerate(chunks))  # distinct gradient per chunk
        out = self.concat(branches) if self.concat is not None else ops.cat(branches, axis=1)
        return (out * out).sum()

    def construct(self, x):
        return self.grad(x)


# (chunks, input shape, above the limit): small chunks and chunks of exactly MAX_VALUES values (one-Split
# gradient), and chunks just above it (ops.cat's own gradient).
CONCAT_CASES = [(4, (2, 16, 3, 5), False), (4, (2, 16, 128, 128), False), (3, (2, 6, 128, 257), True)]


@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("num,shape,above", CONCAT_CASES)
def test_concat_chunks_equals_concatenation(num, shape, above, graph):
    assert (np.prod(shape) // num > ConcatChunks.MAX_VALUES) == above
    x = ms.Tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    ms.set_context(mode=ms.GRAPH_MODE if graph else ms.PYNATIVE_MODE)
    try:
        ours = [t.asnumpy() for t in _ConcatLoss(num, True)(x)]
        ref = [t.asnumpy() for t in _ConcatLoss(num, False)(x)]
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    for name, a, b in zip(("loss", "input grad"), ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)


def test_fold_small_maps_switches_every_stage():
    from mindcv.models import create_model

    net = create_model("res2net50", num_classes=10, layers=(1, 1, 1, 2))
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    assert net.fold_small_maps and all(s.fold_small_maps for s in stages)
    net.fold_small_maps = False
    assert not net.fold_small_maps and not any(s.fold_small_maps for s in stages)


@pytest.mark.slow
def test_folded_stages_train_like_the_plain_layout():
    """res2net50 at 32x32 runs its last stages folded; training-mode outputs, gradients and BN statistics must equal
    those of the plain layout (fold_small_maps=False)."""
    from mindcv.models import create_model

    rng = np.random.default_rng(0)
    # Batch 16: with 4 samples, BatchNorm on the 1x1 maps of the last stage amplifies float rounding (that the
    # layouts sum in different orders) to ~1e-3 relative; with 16 it stays at ~2e-5.
    x = ms.Tensor(rng.standard_normal((16, 3, 32, 32)).astype(np.float32))
    results = []
    for fold in (True, False):
        ms.set_seed(0)
        net = create_model("res2net50", num_classes=10)
        net.fold_small_maps = fold
        net.set_train(True)
        (_, out), grads = ms.value_and_grad(
            lambda a: ((net(a) ** 2).sum(), net(a)), None, net.trainable_params(), has_aux=True
        )(x)
        stats = [p.asnumpy() for p in net.get_parameters() if "moving_" in p.name]
        results.append((out.asnumpy(), [g.asnumpy() for g in grads], stats))
    (out_a, grads_a, stats_a), (out_b, grads_b, stats_b) = results
    np.testing.assert_allclose(out_a, out_b, rtol=1e-4, atol=1e-4)
    for a, b in zip(grads_a + stats_a, grads_b + stats_b):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * max(np.abs(b).max(), 1e-6))
