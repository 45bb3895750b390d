"""Exact resume: a run resumed (in a new process) from the end of epoch 1 ends bit-identical to an uninterrupted
2-epoch run (CPU, Graph mode, same seed); a finished run can be extended."""

import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scriptutil import ROOT, TINY, TINY_MODEL, read_meta, read_tensors, run_script

import mindspore as ms
from mindspore import nn

from mindcv.engine.checkpoint_manager import RunCheckpoints, TrainingCheckpoint, restore_train_state
from mindcv.engine.ema import EMA
from mindcv.engine.train_step import TrainStep
from mindcv.loss import create_loss
from mindcv.models import load_model_checkpoint
from mindcv.optim import create_optimizer, list_optimizers

# Shuffled digits with random-crop augmentation, a warm-up + cosine schedule (the lr changes every step), momentum
# and EMA state: everything a resume has to restore. 3 steps per epoch.
ARGS = TINY + [
    "--dataset", "digits", "--num_samples", "12", "--mode", "0", "--opt", "momentum", "--lr", "0.01",
    "--epoch_size", "2", "--warmup_epochs", "1", "--scheduler", "cosine_decay", "--ema", "--ema_decay", "0.9",
    "--val_while_train", "false", "--keep_checkpoint_max", "2", "--log_interval", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 2-epoch run, and one resumed from its end-of-epoch-1 checkpoint (as a crash leaves it)."""
    root = tmp_path_factory.mktemp("resume")
    straight, split = str(root / "straight"), str(root / "split")
    assert run_script("train", ARGS + ["--ckpt_save_dir", straight])[0] == 0
    os.makedirs(split)
    after_one = os.path.join(straight, f"{TINY_MODEL}-1_3.ckpt")
    shutil.copyfile(after_one, os.path.join(split, f"{TINY_MODEL}-last.ckpt"))
    shutil.copyfile(os.path.join(straight, "summary.csv"), os.path.join(split, "summary.csv"))
    # the resumed run is a new process, as after a crash
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, os.path.join(ROOT, "train.py")] + ARGS + ["--ckpt_save_dir", split, "--resume", "auto"]
    proc = subprocess.run(cmd, cwd=str(root), env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return straight, split, read_tensors(after_one)


def test_resume_extends_epoch_size(runs, tmp_path):
    """The schedule is recomputed from the options, so a finished run can be continued for more epochs."""
    _, split, _ = runs
    folder = str(tmp_path / "more")
    os.makedirs(folder)
    shutil.copyfile(os.path.join(split, f"{TINY_MODEL}-last.ckpt"), os.path.join(folder, f"{TINY_MODEL}-last.ckpt"))
    args = [a for a in ARGS] + ["--epoch_size", "3", "--mode", "1", "--ckpt_save_dir", folder, "--resume", "auto"]
    assert run_script("train", args)[0] == 0
    assert read_meta(os.path.join(folder, f"{TINY_MODEL}-last.ckpt"))["epoch"] == 3


def test_resumed_run_is_bit_identical(runs):
    straight, split, after_one = runs
    a = read_tensors(os.path.join(straight, f"{TINY_MODEL}-last.ckpt"))
    b = read_tensors(os.path.join(split, f"{TINY_MODEL}-last.ckpt"))
    assert sorted(a) == sorted(b)
    assert any(k.startswith("ema.") for k in a) and any(k.startswith("moments.") for k in a)
    different = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:5]}"
    # and the second epoch did change the state (the comparison is not vacuous)
    assert not np.array_equal(after_one["conv1.weight"], b["conv1.weight"])
    assert int(b["global_step"].reshape(-1)[0]) == 6


def test_resumed_run_metadata_and_summary(runs):
    straight, split, _ = runs
    meta_a = read_meta(os.path.join(straight, f"{TINY_MODEL}-last.ckpt"))
    meta_b = read_meta(os.path.join(split, f"{TINY_MODEL}-last.ckpt"))
    for key in ("epoch", "step", "steps_per_epoch", "model", "num_classes", "seed"):
        assert meta_a[key] == meta_b[key], key
    assert (meta_b["epoch"], meta_b["step"], meta_b["steps_per_epoch"]) == (2, 6, 3)
    with open(os.path.join(split, "summary.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(straight, "summary.csv"), newline="") as f:
        rows_straight = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in rows_straight]
    assert "resumed from" in open(os.path.join(split, "train.log")).read()


class _Tiny(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, has_bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Dense(4, 3)

    def construct(self, x):
        return self.head(self.bn(self.conv(x)).mean(axis=(2, 3)))


def _tiny_step(opt: str, ema: bool = True):
    net = _Tiny()
    optimizer = create_optimizer(net, opt, lr=np.full(4, 0.1, np.float32), weight_decay=1e-4)
    return net, TrainStep(net, create_loss("CE"), optimizer, ema=EMA(net) if ema else None, loss_scale_type="dynamic")


@pytest.mark.parametrize("opt", list_optimizers())
def test_training_checkpoint_loads_as_plain_and_ema_weights(tmp_path, opt):
    """Whatever the optimizer, validate.py can load -last (state ignored) with and without --ema."""
    net, step = _tiny_step(opt)
    x, y = ms.Tensor(np.random.rand(2, 3, 8, 8).astype(np.float32)), ms.Tensor(np.array([0, 2], np.int32))
    step(x, y)
    manager = RunCheckpoints(str(tmp_path), "tiny", keep_checkpoint_max=0)
    manager.save(1, step.state_parameters(), {"epoch": 1, "step": 1, "steps_per_epoch": 1})
    for ema in (False, True):
        fresh = _Tiny()
        load_model_checkpoint(fresh, manager.last_path, ema=ema)
        source = step.ema.ema_weights if ema else net.get_parameters()
        expected = {p.name[len("ema.") :] if ema else p.name: p.asnumpy() for p in source}
        assert all(np.array_equal(p.asnumpy(), expected[p.name]) for p in fresh.get_parameters())
    # and the state goes back into a new train step exactly
    _, step2 = _tiny_step(opt)
    restore_train_state(step2, TrainingCheckpoint(manager.last_path, *_split(manager.last_path)), 1)
    for a, b in zip(step.state_parameters(), step2.state_parameters()):
        assert a.name == b.name and np.array_equal(a.asnumpy(), b.asnumpy()), a.name


def _split(path):
    from mindcv.utils.checkpoint import read_checkpoint, split_checkpoint

    return split_checkpoint(read_checkpoint(path))


def _params(value: float):
    return [ms.Parameter(ms.Tensor(np.full(2, value, np.float32)), name="w")]


@pytest.mark.parametrize(
    "policy, metrics, kept",
    [
        ("latest_k", [10, 50, 20, 40], [3, 4]),
        ("top_k", [10, 50, 20, 40], [2, 4]),
        ("top_k", [50, 40, 30, 20], [1, 2]),
    ],
)
def test_keep_policies(tmp_path, policy, metrics, kept):
    manager = RunCheckpoints(str(tmp_path), "m", keep_checkpoint_max=2, policy=policy)
    for epoch, metric in enumerate(metrics, start=1):
        manager.save(epoch, _params(epoch), {"epoch": epoch, "step": epoch}, metric=float(metric))
        # -last always holds the newest epoch, whether or not its epoch file is kept
        assert _split(manager.last_path)[1]["epoch"] == epoch
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith(".ckpt"))
    assert names == sorted([f"m-{e}_1.ckpt" for e in kept] + ["m-last.ckpt"])
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]
    # a resumed manager continues the same bookkeeping from the checkpoint's metadata
    again = RunCheckpoints(str(tmp_path), "m", keep_checkpoint_max=2, policy=policy)
    again.load_kept_state(_split(manager.last_path)[1]["kept_checkpoints"])
    assert sorted(e["epoch"] for e in again.kept) == kept


def test_epoch_files_carry_upstream_names_and_the_last_epoch_is_always_saved(tmp_path):
    """``<model>-<epoch>_<steps per epoch>.ckpt`` every ``save_interval`` epochs and after the last one."""
    manager = RunCheckpoints(
        str(tmp_path), "m", keep_checkpoint_max=5, save_interval=2, steps_per_epoch=7, num_epochs=5
    )
    for epoch in range(1, 6):
        manager.save(epoch, _params(epoch), {"epoch": epoch, "step": 7 * epoch})
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith(".ckpt"))
    assert names == ["m-2_7.ckpt", "m-4_7.ckpt", "m-5_7.ckpt", "m-last.ckpt"]
    assert _split(str(tmp_path / "m-5_7.ckpt"))[1]["epoch"] == 5


def test_best_written_only_when_asked(tmp_path):
    manager = RunCheckpoints(str(tmp_path), "m", keep_checkpoint_max=0)
    manager.save(1, _params(1.0), {"epoch": 1, "step": 1}, metric=5.0, best_weights=_params(1.0))
    manager.save(2, _params(2.0), {"epoch": 2, "step": 2}, metric=1.0)
    assert float(_split(manager.best_path)[0]["w"].asnumpy()[0]) == 1.0
    assert float(_split(manager.last_path)[0]["w"].asnumpy()[0]) == 2.0
    assert sorted(os.listdir(tmp_path)) == ["m-best.ckpt", "m-last.ckpt"]
