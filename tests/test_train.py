"""train.py end to end (in-process ``main(argv)``): digits and an image folder in both modes, the seed's
commands with local data, offline failures, and bad input that must give one line, exit 2 and lose nothing."""

import csv
import json
import os

import pytest
from httpserver import closed_port_url
from scriptutil import (
    ROOT,
    TINY,
    TINY_MODEL,
    error_lines,
    make_image_folder,
    read_meta,
    read_tensors,
    run_script,
    sha256_of,
    write_cifar10,
)

import mindspore as ms

from mindcv import engine
from mindcv.data import cifar
from mindcv.engine.train_step import TrainStep
from mindcv.models import res2net
from mindcv.utils.fs import file_lock

SEED_TRAIN = (
    "--model=res2net50 --pretrained --opt=momentum --lr=0.001 dataset=cifar10 --num_classes=10 --dataset_download"
)
SEED_VALIDATE = "--model=res2net50 --dataset=imagenet --val_split=val --ckpt_path=./ckpt/res2net50-best.ckpt"

# momentum: the smallest training state (weights + one moment); the machine is shared and memory is tight
DIGITS = TINY + ["--dataset", "digits", "--num_samples", "8", "--val_num_samples", "6", "--log_interval", "1"]
DIGITS += ["--opt", "momentum"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No proxies, an empty cache, no launcher variables: nothing here may reach the network or a scheduler."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("MS_WORKER_NUM", "MS_ROLE", "RANK_TABLE_FILE", "OMPI_COMM_WORLD_SIZE", "RANK_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MINDCV_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(cifar, "_DOWNLOAD_RETRIES", 0, raising=False)


def _summary(folder):
    with open(os.path.join(folder, "summary.csv"), newline="") as f:
        return list(csv.DictReader(f))


def _assert_run_outputs(folder, model, epochs):
    for name in ("config.yaml", "train.log", "summary.csv", "curves.png", f"{model}-last.ckpt", f"{model}-best.ckpt"):
        assert os.path.isfile(os.path.join(folder, name)), name
    rows = _summary(folder)
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    assert all(r["val_top1"] and r["train_loss"] and r["img_per_s"] for r in rows)
    meta = read_meta(os.path.join(folder, f"{model}-last.ckpt"))
    assert (meta["epoch"], meta["model"]) == (epochs, model)
    return rows


@pytest.mark.parametrize("mode", [0, 1], ids=["graph", "pynative"])
def test_digits_train_checkpoint_validate(tmp_path, capsys, mode):
    out = str(tmp_path / "run")
    rc, stdout, stderr = run_script(
        "train",
        DIGITS + ["--mode", str(mode), "--epoch_size", "2", "--ckpt_save_dir", out, "--ema"],
        capsys,
    )
    assert rc == 0, stderr
    rows = _assert_run_outputs(out, TINY_MODEL, 2)
    assert "epoch 2/2: train loss" in stdout and "EMA val top-1" in stdout
    # latest_k with the default keep_checkpoint_max keeps both epoch files; -last is the newest one
    assert read_meta(os.path.join(out, f"{TINY_MODEL}-2_2.ckpt"))["epoch"] == 2
    last = read_tensors(os.path.join(out, f"{TINY_MODEL}-last.ckpt"))
    assert any(k.startswith("moments.") for k in last) and any(k.startswith("ema.") for k in last)
    assert "train_step.loss_scale" in last

    # validate.py on -best with --ema reproduces the evaluation of the best epoch exactly
    best_meta = read_meta(os.path.join(out, f"{TINY_MODEL}-best.ckpt"))
    best_row = rows[best_meta["best_epoch"] - 1]
    results = str(tmp_path / "res.json")
    argv = DIGITS + ["--mode", str(mode), "--ema", "--ckpt_path", os.path.join(out, f"{TINY_MODEL}-best.ckpt")]
    rc, _, stderr = run_script("validate", argv + ["--results_file", results], capsys)
    assert rc == 0, stderr
    res = json.load(open(results))
    assert res["num_samples"] == 6
    assert res["top1"] == pytest.approx(float(best_row["val_top1"]), abs=1e-3)
    assert res["loss"] == pytest.approx(float(best_row["val_loss"]), rel=1e-4)
    # the full training checkpoint (optimizer, loss scale, EMA counter) loads as plain weights too
    argv = DIGITS + ["--mode", str(mode), "--ckpt_path", os.path.join(out, f"{TINY_MODEL}-last.ckpt")]
    rc, _, stderr = run_script("validate", argv, capsys)
    assert rc == 0, stderr


def test_image_folder_pynative_then_graph_validate(tmp_path, capsys):
    data = make_image_folder(str(tmp_path / "imgs"))
    out = str(tmp_path / "run")
    argv = TINY + ["--dataset", "imagenet", "--data_dir", data, "--mode", "1", "--epoch_size", "1"]
    rc, stdout, stderr = run_script("train", argv + ["--ckpt_save_dir", out, "--opt", "momentum"], capsys)
    assert rc == 0, stderr
    rows = _assert_run_outputs(out, TINY_MODEL, 1)
    assert "(6 images)" in stdout  # 3 classes x 2 val images, last partial batch included
    rc, stdout, stderr = run_script(
        "validate", TINY + ["--dataset", "imagenet", "--data_dir", data, "--mode", "0", "--ckpt_path",
                            os.path.join(out, f"{TINY_MODEL}-best.ckpt")], capsys)  # fmt: skip
    assert rc == 0, stderr
    assert f"top-1 {float(rows[0]['val_top1']):.2f}%" in stdout and "over 6 images" in stdout


@pytest.fixture
def local_pretrained(tmp_path, monkeypatch):
    """A res2net50 weight file in the cache under the name its (patched) URL gives: no host is contacted."""
    import mindspore as ms

    from mindcv.models import create_model

    folder = tmp_path / "cache" / "models"
    folder.mkdir(parents=True)
    raw = str(folder / "raw.ckpt")
    ms.save_checkpoint(create_model("res2net50"), raw)
    digest = sha256_of(raw)
    name = f"res2net50-{digest[:8]}.ckpt"
    os.replace(raw, str(folder / name))
    monkeypatch.setitem(res2net.default_cfgs["res2net50.mindcv_in1k"], "url", closed_port_url(f"/res2net/{name}"))
    return str(folder / name)


@pytest.mark.slow
def test_seed_train_command_with_local_data(tmp_path, capsys, local_pretrained, monkeypatch):
    root = str(tmp_path / "cifar")
    write_cifar10(root)
    monkeypatch.chdir(tmp_path)
    small = ["--data_dir", root, "--image_resize", "16", "--batch_size", "2", "--num_samples", "2",
             "--val_num_samples", "2", "--epoch_size", "1", "--mode", "1", "--warmup_epochs", "0"]  # fmt: skip
    rc, stdout, stderr = run_script("train", SEED_TRAIN.split() + small, capsys)
    assert rc == 0, stderr
    assert os.path.isfile(tmp_path / "ckpt" / "res2net50-last.ckpt")  # the default --ckpt_save_dir
    assert "res2net50 (10 classes" in stdout and "on cifar10" in stdout


@pytest.mark.slow
def test_seed_validate_command_as_written(tmp_path, capsys, monkeypatch):
    """Exactly the seed's command, run as upstream users do from the dataset folder (./val/<class>/) that also holds
    ./ckpt/res2net50-best.ckpt: --data_dir defaults to ./ as in upstream."""
    import mindspore as ms

    from mindcv.models import create_model

    make_image_folder(str(tmp_path), per_class={"val": 1})
    (tmp_path / "ckpt").mkdir()
    ms.save_checkpoint(create_model("res2net50", num_classes=3), str(tmp_path / "ckpt" / "res2net50-best.ckpt"))
    monkeypatch.chdir(tmp_path)
    rc, stdout, stderr = run_script("validate", SEED_VALIDATE.split(), capsys)
    assert rc == 0, stderr
    assert "res2net50 on imagenet/val" in stdout and "over 3 images" in stdout


def test_seed_train_command_offline_fails_on_pretrained(tmp_path, capsys, monkeypatch):
    url = closed_port_url("/res2net/res2net50-f42cf71b.ckpt")
    monkeypatch.setitem(res2net.default_cfgs["res2net50.mindcv_in1k"], "url", url)
    monkeypatch.chdir(tmp_path)
    rc, _, stderr = run_script("train", SEED_TRAIN.split() + ["--ckpt_save_dir", str(tmp_path / "out")], capsys)
    lines = error_lines(stderr)
    assert rc == 2 and len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and url in lines[0]
    assert os.path.join(str(tmp_path / "cache"), "models") in lines[0] and "--ckpt_path" in lines[0]
    assert "Traceback" not in stderr


def test_cifar_download_offline_fails_clearly(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(cifar.MIRROR_ENV, closed_port_url("/cifar").rsplit("/", 1)[0])
    argv = TINY + ["--dataset", "cifar10", "--dataset_download", "--data_dir", str(tmp_path / "c"), "--mode", "1"]
    rc, _, stderr = run_script("train", argv + ["--ckpt_save_dir", str(tmp_path / "out")], capsys)
    lines = error_lines(stderr)
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "127.0.0.1" in lines[0] and "Traceback" not in stderr


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One completed 1-epoch PyNative run, shared by the bad-input tests."""
    out = str(tmp_path_factory.mktemp("done") / "run")
    rc, _, _ = run_script("train", DIGITS + ["--mode", "1", "--epoch_size", "1", "--ckpt_save_dir", out])
    assert rc == 0
    return out


def _snapshot(folder):
    return {n: sha256_of(os.path.join(folder, n)) for n in sorted(os.listdir(folder)) if n.endswith(".ckpt")}


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--resume", "{last}", "--model", "res2net50_14w_8s"], "saved for model 'res2net50_48w_2s'"),
        (["--resume", "{last}", "--num_samples", "4"], "steps per epoch"),
        (["--resume", "auto", "--epoch_size", "3", "--opt", "sgd"], "cannot resume"),
        (["--resume", "auto", "--epoch_size", "3", "--ema"], "lacks"),
        (["--resume", "{folder}/missing.ckpt"], "no such file"),
        (["--epoch_size", "3"], "already holds a res2net50_48w_2s run"),  # a fresh start would overwrite it
    ],
)
def test_bad_resume_keeps_checkpoints(finished_run, capsys, extra, needle):
    before = _snapshot(finished_run)
    last = os.path.join(finished_run, f"{TINY_MODEL}-last.ckpt")
    extra = [e.format(last=last, folder=finished_run) for e in extra]
    rc, _, stderr = run_script("train", DIGITS + ["--mode", "1", "--ckpt_save_dir", finished_run] + extra, capsys)
    lines = error_lines(stderr)
    assert rc == 2 and len(lines) == 1 and needle in lines[0], stderr
    assert _snapshot(finished_run) == before


def test_second_run_on_locked_folder_is_refused(finished_run, capsys):
    before = _snapshot(finished_run)
    with file_lock(os.path.join(finished_run, "run"), timeout=0):  # what a live run holds
        rc, _, stderr = run_script(
            "train", DIGITS + ["--resume", "auto", "--epoch_size", "2", "--ckpt_save_dir", finished_run], capsys
        )
    lines = error_lines(stderr)
    assert rc == 2 and len(lines) == 1 and "another training run (pid" in lines[0], stderr
    assert _snapshot(finished_run) == before


def test_resume_of_completed_run_does_nothing(finished_run, capsys):
    before = _snapshot(finished_run)
    rc, stdout, _ = run_script(
        "train", DIGITS + ["--resume", "auto", "--epoch_size", "1", "--ckpt_save_dir", finished_run], capsys
    )
    assert rc == 0 and "nothing to do" in stdout
    assert _snapshot(finished_run) == before


class _FaultyStep(TrainStep):
    """The real train step, except that chosen calls (1-based, counted over the run) report a fault."""

    calls = 0
    nan_loss_at: tuple = ()
    overflow_at: tuple = ()

    def __call__(self, *args):
        loss, overflow = super().__call__(*args)
        type(self).calls += 1
        if type(self).calls in self.nan_loss_at:
            loss = ms.Tensor(float("nan"), ms.float32)
        if type(self).calls in self.overflow_at:
            overflow = ms.Tensor(True)
        return loss, overflow


@pytest.fixture
def faulty_step(monkeypatch):
    monkeypatch.setattr(engine, "TrainStep", _FaultyStep)  # train.py imports it from mindcv.engine
    monkeypatch.setattr(_FaultyStep, "calls", 0)
    return _FaultyStep


def test_nan_loss_stops_with_step_and_keeps_last_good(tmp_path, capsys, monkeypatch, faulty_step):
    monkeypatch.setattr(faulty_step, "nan_loss_at", (4,))  # epoch 2, its second step
    out = str(tmp_path / "run")
    argv = DIGITS + ["--mode", "1", "--epoch_size", "3", "--log_interval", "5", "--ckpt_save_dir", out]
    rc, _, stderr = run_script("train", argv, capsys)
    lines = error_lines(stderr)
    assert rc == 2 and len(lines) == 1, stderr
    assert "loss is nan at step 4 (epoch 2)" in lines[0] and f"{TINY_MODEL}-last.ckpt is kept" in lines[0]
    assert read_meta(os.path.join(out, f"{TINY_MODEL}-last.ckpt"))["epoch"] == 1
    assert sorted(n for n in os.listdir(out) if n.endswith(".ckpt")) == [
        f"{TINY_MODEL}-1_2.ckpt", f"{TINY_MODEL}-best.ckpt", f"{TINY_MODEL}-last.ckpt"
    ]  # fmt: skip
    assert "at step 4 (epoch 2)" in open(os.path.join(out, "train.log")).read()  # the reason stays in the log


def test_dynamic_loss_scale_skips_instead_of_stopping(tmp_path, capsys, monkeypatch, faulty_step):
    monkeypatch.setattr(faulty_step, "overflow_at", (1, 3))  # the first step of each epoch
    out = str(tmp_path / "run")
    argv = DIGITS + ["--mode", "1", "--epoch_size", "2", "--ckpt_save_dir", out, "--loss_scale_type", "dynamic"]
    rc, stdout, stderr = run_script("train", argv, capsys)
    assert rc == 0, stderr
    assert "2 step(s) skipped for overflowing gradients" in stdout


def test_every_step_overflowing_stops(tmp_path, capsys, monkeypatch, faulty_step):
    monkeypatch.setattr(faulty_step, "overflow_at", (1, 2))
    argv = DIGITS + ["--mode", "1", "--ckpt_save_dir", str(tmp_path / "run"), "--loss_scale_type", "dynamic"]
    rc, _, stderr = run_script("train", argv, capsys)
    lines = error_lines(stderr)
    assert rc == 2 and len(lines) == 1 and "every step of epoch 1 overflowed" in lines[0], stderr


def test_quickstart_recipe_smoke(tmp_path, capsys):
    """The quickstart's own recipe (via the tiny config that inherits it) trains and validates end to end."""
    config = os.path.join(ROOT, "configs", "res2net", "res2net50_digits_tiny_cpu.yaml")
    out = str(tmp_path / "run")
    rc, stdout, stderr = run_script("train", ["-c", config, "--ckpt_save_dir", out], capsys)
    assert rc == 0, stderr
    assert "res2net50 (10 classes" in stdout and "2 steps/epoch of 8" in stdout and "(16 images)" in stdout
    saved = open(os.path.join(out, "config.yaml")).read()
    assert "opt: momentum" in saved and "num_samples: 16" in saved  # from the base file and the tiny file
    rc, stdout, stderr = run_script(
        "validate", ["-c", config, "--ckpt_path", os.path.join(out, "res2net50-best.ckpt")], capsys
    )
    assert rc == 0 and "over 16 images" in stdout, stderr


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--distribute"], "msrun --worker_num"),
        (["--num_classes", "5"], "has 10 classes"),
        (["--batch_size", "0"], "must be >= 1"),
        (["--epoch_size", "-1"], "must be >= 1"),
        (["--lr", "fast"], "'fast' is not a number"),
        (["--model", "resnet50"], "unknown --model 'resnet50'"),
        (["--ckpt_path", "/nonexistent/w.ckpt"], "does not exist"),
        (["--device_target", "Ascend"], "--device_target Ascend is not usable here"),
        (["--batch_size", "16"], "fewer samples (per device) than --batch_size"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, extra, needle):
    out = tmp_path / "out"
    rc, _, stderr = run_script("train", DIGITS + ["--mode", "1", "--ckpt_save_dir", str(out)] + extra, capsys)
    lines = error_lines(stderr)
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], stderr
    assert not any(n.endswith(".ckpt") for n in (os.listdir(out) if out.exists() else []))


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc, _, stderr = run_script("train", DIGITS + ["--ckpt_save_dir", str(blocker / "sub")], capsys)
    lines = error_lines(stderr)
    assert rc == 2 and len(lines) == 1 and "is not writable" in lines[0] and "--ckpt_save_dir" in lines[0], stderr


def test_debug_shows_traceback(tmp_path, capsys):
    rc, _, stderr = run_script("train", ["--lr", "fast", "--debug"], capsys)
    assert rc == 2 and "Traceback" in stderr and stderr.strip().splitlines()[-1].startswith("error: ")
