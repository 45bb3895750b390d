"""frozen_stages: which parameters freeze, that training leaves them (and their BN statistics) bit-identical in both
modes, one-line errors for out-of-range values, and train.py on digits with a frozen backbone."""

import csv
import math
import os

import numpy as np
import pytest
from scriptutil import TINY, TINY_MODEL, error_lines, read_tensors, run_script

import mindspore as ms
from mindspore import Tensor, nn

from mindcv.config import parse_args
from mindcv.engine.train_step import TrainStep
from mindcv.errors import ConfigError
from mindcv.loss import create_loss
from mindcv.models import create_model
from mindcv.optim import create_optimizer


def _frozen_prefixes(k: int):
    return () if k == 0 else ("conv1.", "bn1.") + tuple(f"layer{i}." for i in range(1, k + 1))


def _is_frozen(name: str, k: int) -> bool:
    return name.startswith(_frozen_prefixes(k))


def _values(net: nn.Cell) -> dict:
    return {p.name: p.asnumpy().copy() for p in net.get_parameters()}


@pytest.mark.parametrize("model_name", [TINY_MODEL, "res2net50_v1b"])  # 7x7 stem, and the deep stem (conv1.0 ...)
@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
def test_frozen_parameter_set(model_name, k):
    net = create_model(model_name, num_classes=3, frozen_stages=k)
    assert net.frozen_stages == k
    trainable = {p.name for p in net.trainable_params()}
    # moving_mean/moving_variance are never trainable; the frozen set is about the weights.
    weights = [p.name for p in net.get_parameters() if "moving_" not in p.name]
    assert {n for n in weights if n not in trainable} == {n for n in weights if _is_frozen(n, k)}
    assert {"classifier.weight", "classifier.bias"} <= trainable
    if k:
        assert any(n.startswith(f"layer{k}.") for n in weights if n not in trainable)
    # Frozen BatchNorms normalise with their moving statistics whatever set_train says.
    net.set_train(True)
    for name, cell in net.cells_and_names():
        if isinstance(cell, nn.BatchNorm2d):
            assert cell.use_batch_statistics is (False if _is_frozen(name + ".", k) else None), name
    # The optimizer built from the network leaves the frozen weights out.
    opt = create_optimizer(net, "momentum", lr=0.1, fused=False)
    assert {p.name for p in opt.parameters} == trainable


def test_frozen_stages_default_and_drop_path():
    """0 changes nothing; frozen blocks drop no path (a fixed function), the others keep the linear schedule."""
    plain = create_model(TINY_MODEL, num_classes=3, drop_path_rate=0.2)
    frozen = create_model(TINY_MODEL, num_classes=3, drop_path_rate=0.2, frozen_stages=2)
    assert plain.frozen_stages == 0 and len(plain.trainable_params()) > len(frozen.trainable_params())
    for i in (1, 2, 3, 4):
        for b, (block_plain, block_frozen) in enumerate(zip(getattr(plain, f"layer{i}"), getattr(frozen, f"layer{i}"))):
            if i <= 2:
                assert isinstance(block_frozen.drop_path, nn.Identity), (i, b)
            else:
                assert block_frozen.drop_path.drop_prob == block_plain.drop_path.drop_prob, (i, b)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def test_training_leaves_frozen_stages_unchanged(mode):
    ms.set_context(mode=mode)
    ms.set_seed(0)
    k = 2
    net = create_model(TINY_MODEL, num_classes=3, frozen_stages=k)
    before = _values(net)
    step = TrainStep(net, create_loss("CE"), create_optimizer(net, "momentum", lr=0.1, weight_decay=1e-4))
    rng = np.random.default_rng(0)
    for i in range(3):
        x = Tensor(rng.normal(size=(4, 3, 16, 16)).astype(np.float32))
        y = Tensor(rng.integers(0, 3, 4).astype(np.int32))
        loss, _ = step(x, y)
        assert math.isfinite(float(loss.asnumpy()))
        # An evaluation in between (set_train(False), then back to True on the network and on the wrapper)
        # must not re-enable the frozen BatchNorms' batch statistics.
        net.set_train(False)
        net.set_train(True)
        step.set_train(True)
    after = _values(net)
    changed = {n for n in after if not np.array_equal(after[n], before[n])}
    frozen = {n for n in after if _is_frozen(n, k)}
    assert frozen and not (changed & frozen), sorted(changed & frozen)[:5]
    # Every unfrozen weight moved, and so did the BN statistics of the stages that still train.
    unfrozen_weights = {p.name for p in net.trainable_params()}
    assert unfrozen_weights - changed == set()
    assert any(n.startswith("layer3.") and "moving_mean" in n for n in changed)
    assert all(n in changed for n in after if n.startswith("layer4.") and "moving_" in n)


@pytest.mark.parametrize("value", [-1, 5, True, 2.0, "2"])
def test_out_of_range_is_one_line_config_error(value):
    with pytest.raises(ConfigError) as info:
        create_model(TINY_MODEL, num_classes=3, frozen_stages=value)
    message = str(info.value)
    assert "\n" not in message and "frozen_stages" in message and "0" in message and "4" in message


@pytest.mark.parametrize("value", ["5", "-1", "two"])
def test_out_of_range_flag_is_one_line_config_error(value):
    with pytest.raises(ConfigError) as info:
        parse_args(["--frozen_stages", value])
    assert "\n" not in str(info.value) and "frozen_stages" in str(info.value)


def test_flag_and_yaml_key(tmp_path):
    assert parse_args([]).frozen_stages is None  # unset: the model's default, 0
    assert parse_args(["--frozen_stages", "3"]).frozen_stages == 3
    path = tmp_path / "cfg.yaml"
    path.write_text("frozen_stages: 4\n")
    assert parse_args(["-c", str(path)]).frozen_stages == 4
    assert parse_args(["-c", str(path), "--frozen_stages", "1"]).frozen_stages == 1


def test_train_digits_with_frozen_backbone(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MINDCV_HOME", str(tmp_path / "cache"))
    out = str(tmp_path / "run")
    argv = TINY + ["--dataset", "digits", "--num_samples", "8", "--val_num_samples", "6", "--log_interval", "1"]
    argv += ["--opt", "momentum", "--epoch_size", "1", "--ckpt_save_dir", out, "--frozen_stages", "4"]
    rc, _, stderr = run_script("train", argv, capsys)
    assert rc == 0, error_lines(stderr)
    with open(os.path.join(out, "summary.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and math.isfinite(float(rows[0]["train_loss"]))
    tensors = read_tensors(os.path.join(out, f"{TINY_MODEL}-last.ckpt"))
    # The frozen backbone's BN statistics are still their initial values (zeros / ones) after training.
    for name, value in tensors.items():
        if _is_frozen(name, 4) and name.endswith("moving_mean"):
            np.testing.assert_array_equal(value, 0.0, err_msg=name)
        if _is_frozen(name, 4) and name.endswith("moving_variance"):
            np.testing.assert_array_equal(value, 1.0, err_msg=name)
    assert "frozen_stages: 4" in open(os.path.join(out, "config.yaml")).read()
