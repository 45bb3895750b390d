"""Parameter and MAC counting: exact on a hand-made net, agreeing with the paper and timm on Res2Net-50."""

import importlib.util
import os

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn, ops

from mindcv.models import create_model
from mindcv.utils.model_stats import count_macs, count_params, profile_macs

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Tiny(nn.Cell):
    """Every counted layer kind once, with groups, dilation, stride and a bias."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, pad_mode="pad", padding=1, has_bias=True)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, pad_mode="pad", padding=2, dilation=2, group=4)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv3 = nn.Conv2d(8, 4, 1, stride=2)
        self.fc = nn.Dense(64, 10)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        x = self.pool(self.conv2(self.bn(self.conv1(x))))
        x = self.conv3(x)
        return self.fc(ops.reshape(x, (x.shape[0], -1)))


def test_macs_of_a_hand_made_net_are_exact():
    net = _Tiny()
    report = profile_macs(net, (3, 16, 16))
    # output elements x (in_channels / groups) x kernel area, per image
    conv1 = (8 * 16 * 16) * 3 * 3 * 3
    conv2 = (8 * 16 * 16) * (8 // 4) * 3 * 3  # dilation changes the reach, not the work
    conv3 = (4 * 4 * 4) * 8 * 1 * 1  # 1x1, stride 2: 8x8 -> 4x4
    fc = 10 * 64
    assert report.conv == conv1 + conv2 + conv3
    assert report.dense == fc
    assert report.norm == 8 * 16 * 16
    assert report.pool == (8 * 8 * 8) * 2 * 2
    assert count_macs(net, (3, 16, 16)) == conv1 + conv2 + conv3 + fc
    assert [name for name, _, _ in report.by_layer] == ["conv1", "bn", "conv2", "pool", "conv3", "fc"]


def test_counting_leaves_the_model_untouched():
    net = _Tiny()
    net.set_train(True)
    before = net.bn.moving_mean.asnumpy().copy()
    count_macs(net, (3, 16, 16))
    assert net.training  # mode restored
    np.testing.assert_array_equal(net.bn.moving_mean.asnumpy(), before)  # ran in eval mode: stats untouched


def test_count_params_separates_trainable_from_moving_stats():
    trainable, total = count_params(_Tiny())
    expected_trainable = (8 * 3 * 9 + 8) + (8 + 8) + (8 * 2 * 9) + (4 * 8) + (64 * 10 + 10)
    assert trainable == expected_trainable
    assert total == expected_trainable + 8 + 8  # BN moving mean and variance


def test_res2net50_macs_match_the_paper_and_timm():
    model = create_model("res2net50")
    macs = count_macs(model, (3, 224, 224))
    # The paper reports ~4.2 GFLOPs (multiply-adds) for Res2Net-50 26w4s at 224.
    assert 4.1e9 < macs < 4.4e9, macs
    trainable, total = count_params(model)
    assert trainable == sum(int(np.prod(p.shape)) for p in model.trainable_params())
    assert total > trainable

    torch = pytest.importorskip("torch", reason="torch (test extra) cross-checks the count against timm")
    timm = pytest.importorskip("timm", reason="timm (test extra) supplies the reference Res2Net")
    from torch.utils.flop_counter import FlopCounterMode

    reference = timm.create_model("res2net50_26w_4s").eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        reference(torch.zeros(1, 3, 224, 224))
    # torch counts 2 FLOPs per multiply-add of convolutions and matrix products
    assert macs == counter.get_total_flops() // 2
    assert trainable == sum(p.numel() for p in reference.parameters())


def test_tool_prints_a_markdown_row_per_model(capsys):
    spec = importlib.util.spec_from_file_location("model_stats_tool", os.path.join(_ROOT, "tools", "model_stats.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--models", "res2net50", "--image_size", "64", "--num_classes", "10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "| model | trainable params | total params | MACs (G) @64 |"
    model = create_model("res2net50", num_classes=10)
    trainable, total = count_params(model)
    cells = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert cells == ["res2net50", f"{trainable:,}", f"{total:,}", f"{count_macs(model, (3, 64, 64)) / 1e9:.2f}"]
    assert len(lines) == 3
