"""The bad-input corpus: every user-facing command refuses bad input with one line, exit != 0, and no trace on disk.

Each case runs the real command (``train.py``, ``validate.py``, ``infer.py``, ``export.py``, ``python -m
mindcv.convert``) as a subprocess from the repository root and checks the contract of
:func:`badinput_util.assert_one_line_error`: a non-zero exit, exactly one stderr line starting with
``error: `` that names the problem and the fix, and no traceback. Around every command the shared inputs,
the output folder (which already holds a good checkpoint), the mindcv cache and the top of the repository
are snapshotted; nothing may change. The only exception is train.py's run bookkeeping in its output
folder: the error is appended to ``train.log`` and the lock file ``.run.lock`` stays (documented in
``mindcv/utils/cli.py`` and ``mindcv/utils/fs.py:file_lock``).

Cases that pass argument checking use tiny settings (digits, 32 px, batch 4, 8 samples, PyNative) and fail
before anything is compiled. A case marked ``xfail(strict=True)`` is a product bug, described in its reason.
"""

import json
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import numpy as np
import pytest
from badinput_util import (
    assert_one_line_error,
    changes,
    repo_top_level,
    run_command,
    snapshot,
)
from httpserver import closed_port_url
from PIL import Image

import mindspore as ms

from mindcv.models import create_model, res2net
from mindcv.utils.checkpoint import save_checkpoint_atomic

TINY_MODEL = "res2net50_48w_2s"  # the cheapest registered model to build
DIGITS = ["--dataset", "digits", "--image_resize", "32", "--batch_size", "4", "--num_samples", "8", "--mode", "1"]
TRAIN = ["train.py", "--model", TINY_MODEL, *DIGITS, "--epoch_size", "1", "--ckpt_save_dir", "{out}"]
# One evaluation batch: the cases that get as far as evaluating stay cheap.
VALIDATE = ["validate.py", "--model", TINY_MODEL, *DIGITS, "--val_num_samples", "4"]
# train.py's own bookkeeping in the output folder, which a refused run may leave (see the module docstring).
RUN_FILES = ("train.log", ".run.lock")


@dataclass(frozen=True)
class Case:
    """One bad input: the command (``{a}`` = shared inputs, ``{out}`` = output folder) and words its error must hold.

    Attributes:
        id: Test id.
        args: Arguments after ``python``.
        words: Substrings the error line must contain (the bad value, the fix).
        bug: When set, the case is a known product bug: ``xfail(strict=True)`` with this reason.
    """

    id: str
    args: Sequence[str]
    words: Sequence[str]
    bug: Optional[str] = None
    allowed: Tuple[str, ...] = field(default=())


def _train(id: str, extra: Sequence[str], words: Sequence[str], bug: Optional[str] = None) -> Case:
    return Case(id, [*TRAIN, *extra], words, bug, RUN_FILES)


def _validate(id: str, extra: Sequence[str], words: Sequence[str], bug: Optional[str] = None) -> Case:
    return Case(id, [*VALIDATE, *extra], words, bug)


# fmt: off
CASES = [
    # --- names: closest registered names first, then the rest -----------------------------------------------------
    _train("unknown-model", ["--model", "res2net5"], ["unknown --model 'res2net5'", "did you mean res2net50"]),
    _train("unknown-dataset", ["--dataset", "cifar11"], ["unknown --dataset 'cifar11'", "did you mean cifar10"]),
    _train("unknown-optimizer", ["--opt", "adamm"], ["unknown --opt 'adamm'", "did you mean adam, adamw"]),
    _train("unknown-scheduler", ["--scheduler", "cosine"], ["unknown --scheduler 'cosine'", "cosine_decay"]),
    _train("unknown-loss", ["--loss", "CEE"], ["unknown --loss 'CEE'", "did you mean ce"]),
    _train("unknown-flag", ["--batchsize", "4"], ["unknown option '--batchsize'", "'batch_size'"]),
    _validate("validate-unknown-model", ["--model", "res2net5", "--ckpt_path", "{a}/tiny10.ckpt"],
              ["unknown --model 'res2net5'", "did you mean res2net50"]),
    # --- YAML ------------------------------------------------------------------------------------------------------
    _train("yaml-misspelled-key", ["-c", "{a}/typo.yaml"], ["unknown key 'batchsize'", "typo.yaml", "'batch_size'"]),
    _train("yaml-not-a-mapping", ["-c", "{a}/list.yaml"], ["list.yaml", "must be a mapping", "got list"]),
    _train("yaml-syntax-error", ["-c", "{a}/syntax.yaml"], ["syntax.yaml", "not valid YAML at line 2"]),
    _train("yaml-wrong-type", ["-c", "{a}/wrongtype.yaml"], ["lr:", "'fast' is not a number", "wrongtype.yaml"]),
    # --- values ----------------------------------------------------------------------------------------------------
    _train("batch-size-not-int", ["--batch_size", "abc"], ["--batch_size", "'abc' is not an integer"]),
    _train("lr-not-a-number", ["--lr", "abc"], ["--lr", "'abc' is not a number"]),
    _train("batch-size-zero", ["--batch_size", "0"], ["--batch_size", "0 must be >= 1"]),
    _train("batch-size-negative", ["--batch_size", "-4"], ["--batch_size", "-4 must be >= 1"]),
    _train("epochs-zero", ["--epoch_size", "0"], ["--epoch_size", "0 must be >= 1"]),
    _train("epochs-negative", ["--epoch_size", "-1"], ["--epoch_size", "-1 must be >= 1"]),
    _train("mean-std-lengths", ["--mean", "0.5", "0.5", "--std", "0.2"], ["--mean has 2 values", "--std has 1"]),
    _train("distribute-without-launcher", ["--distribute"], ["--distribute needs a launcher", "msrun --worker_num"]),
    # --- checkpoints -----------------------------------------------------------------------------------------------
    _train("train-missing-checkpoint", ["--ckpt_path", "{a}/missing.ckpt"], ["{a}/missing.ckpt", "does not exist"]),
    _train("train-resume-missing", ["--resume", "{a}/missing.ckpt"],
           ["--resume {a}/missing.ckpt: no such file", "--resume auto"]),
    _validate("empty-checkpoint", ["--ckpt_path", "{a}/empty.ckpt"], ["{a}/empty.ckpt is empty", "re-save"]),
    _validate("truncated-checkpoint", ["--ckpt_path", "{a}/truncated.ckpt"],
              ["{a}/truncated.ckpt is corrupt", "re-save"]),
    _validate("garbage-checkpoint", ["--ckpt_path", "{a}/garbage.ckpt"], ["{a}/garbage.ckpt is corrupt", "re-save"]),
    _validate("checkpoint-of-another-model", ["--model", "res2net50", "--ckpt_path", "{a}/r101.ckpt"],
              ["{a}/r101.ckpt' does not fit", "unexpected weights: layer3.6.", "same model name"]),
    _validate("checkpoint-another-class-count", ["--ckpt_path", "{a}/tiny3.ckpt"],
              ["{a}/tiny3.ckpt' does not fit", "classifier.weight: (3, 2048) vs model (10, 2048)", "num_classes"]),
    _train("train-checkpoint-another-class-count", ["--ckpt_path", "{a}/tiny3.ckpt"],
           ["{a}/tiny3.ckpt' does not fit", "classifier.weight: (3, 2048) vs model (10, 2048)"]),
    _validate("safetensors-int32-weights", ["--ckpt_path", "{a}/tiny_int32.safetensors"],
              ["{a}/tiny_int32.safetensors", "int32"]),
    # --- data ------------------------------------------------------------------------------------------------------
    _train("missing-data-folder", ["--dataset", "imagenet", "--data_dir", "{a}/nonexistent"],
           ["dataset root {a}/nonexistent does not exist", "<root>/<split>/<class>/<image>"]),
    _train("missing-split-folder", ["--dataset", "imagenet", "--data_dir", "{a}/small", "--train_split", "training"],
           ["split folder {a}/small/training does not exist", "['train', 'val']"]),
    _train("empty-class-folders", ["--dataset", "imagenet", "--data_dir", "{a}/emptyclasses"],
           ["no images in {a}/emptyclasses/train", "class folders hold no"]),
    _validate("corrupt-image", ["--dataset", "imagenet", "--data_dir", "{a}/corrupt", "--ckpt_path", "{a}/tiny3.ckpt"],
              ["corrupt or unreadable image {a}/corrupt/val/b/0.jpg"]),
    _validate("corrupt-image-fix-is-a-flag",
              ["--dataset", "imagenet", "--data_dir", "{a}/corrupt", "--ckpt_path", "{a}/tiny3.ckpt"],
              ["{a}/corrupt/val/b/0.jpg", "--skip_bad_images"]),
    _train("train-corrupt-image", ["--dataset", "imagenet", "--data_dir", "{a}/corrupt"],
           ["corrupt or unreadable image {a}/corrupt/train/b/0.jpg"]),
    _train("truncated-cifar", ["--dataset", "cifar10", "--data_dir", "{a}/cifar"],
           ["truncated CIFAR file {a}/cifar/cifar-10-batches-bin/data_batch_1.bin", "--dataset_download"]),
    _train("cifar-missing-no-download", ["--dataset", "cifar10", "--data_dir", "{a}/nonexistent"],
           ["CIFAR-10 not found in {a}/nonexistent", "--dataset_download"]),
    _train("num-classes-below-digits", ["--num_classes", "5"],
           ["--num_classes=5 but digits (train) has 10 classes", "--num_classes 10"]),
    _train("num-classes-below-folder-classes",
           ["--dataset", "imagenet", "--data_dir", "{a}/small", "--num_classes", "2"],
           ["--num_classes=2 but imagenet (train) has 3 classes", "--num_classes 3"]),
    # --- output ----------------------------------------------------------------------------------------------------
    _train("output-parent-is-a-file", ["--ckpt_save_dir", "{a}/afile.txt/sub"],
           ["output folder {a}/afile.txt/sub is not writable", "--ckpt_save_dir"]),
    _validate("results-file-folder-missing",
              ["--ckpt_path", "{a}/tiny10.ckpt", "--results_file", "{a}/afile.txt/r.json"],
              ["--results_file {a}/afile.txt/r.json"]),
    # --- infer / export / convert ----------------------------------------------------------------------------------
    Case("infer-no-images", ["infer.py", "{a}/noimages", "--model", TINY_MODEL],
         ["no images found in {a}/noimages", "jpg/jpeg/png"]),
    Case("infer-missing-checkpoint", ["infer.py", "{a}/small/val", "--ckpt_path", "{a}/missing.ckpt"],
         ["checkpoint {a}/missing.ckpt does not exist"]),
    Case("infer-bad-topk", ["infer.py", "{a}/small/val", "--model", TINY_MODEL, "--topk", "0"], ["--topk", ">= 1"]),
    Case("infer-assumed-model-does-not-fit", ["infer.py", "{a}/small/val", "--ckpt_path", "{a}/tiny3.ckpt"],
         ["{a}/tiny3.ckpt", "res2net50", "--model"]),
    Case("export-air-on-cpu", ["export.py", "--model", TINY_MODEL, "--file_format", "AIR", "--output", "{out}/m"],
         ["AIR export needs the Ascend backend", "MINDIR or ONNX"]),
    Case("export-unknown-format", ["export.py", "--model", TINY_MODEL, "--file_format", "TFLITE", "--output",
                                   "{out}/m"], ["--file_format", "'TFLITE'", "MINDIR"]),
    Case("export-garbage-checkpoint", ["export.py", "--ckpt_path", "{a}/garbage.ckpt", "--output", "{out}/m"],
         ["{a}/garbage.ckpt is corrupt"]),
    Case("convert-other-architecture",
         ["-m", "mindcv.convert", "--model", "res2net101", "--src", "{a}/torch_res2net50.safetensors",
          "--out", "{out}/good.ckpt"], ["does not match mindcv 'res2net101'", "res2net50 <- res2net50_26w_4s"]),
    Case("convert-missing-source",
         ["-m", "mindcv.convert", "--model", "res2net50", "--src", "{a}/missing.safetensors",
          "--out", "{out}/good.ckpt"],
         ["{a}/missing.safetensors", "do not exist", "--src"]),
    Case("convert-unknown-model",
         ["-m", "mindcv.convert", "--model", "res2net5", "--src", "{a}/torch_res2net50.safetensors",
          "--out", "{out}/good.ckpt"], ["'res2net5'", "res2net50"]),
    Case("convert-missing-argument", ["-m", "mindcv.convert", "--model", "res2net50", "--src", "{a}/x.safetensors"],
         ["--out"]),
    Case("convert-int-tensors",
         ["-m", "mindcv.convert", "--model", "res2net50", "--src", "{a}/torch_res2net50_int32.safetensors",
          "--out", "{out}/good.ckpt"], ["int32"]),
]
# fmt: on


def _params(cases):
    for case in cases:
        marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
        yield pytest.param(case, id=case.id, marks=marks)


# ----------------------------------------------------------------------------------------------------------------------
# inputs, built once


def _save_safetensors(path, arrays):
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, path)


def _torch_state_dict():
    """A PyTorch Res2Net-50 (26w x 4s) state dict with 10 classes: timm's when installed, else rebuilt by name.

    The fallback renames our own res2net50 parameters back to the PyTorch layout that mindcv.convert
    reads (the inverse of its table), which is all the conversion test needs.
    """
    try:
        import timm

        model = timm.create_model("res2net50_26w_4s", pretrained=False, num_classes=10)
        return {k: v.detach().numpy() for k, v in model.state_dict().items()}
    except ImportError:
        pass
    renames = ((".gamma", ".weight"), (".beta", ".bias"), (".moving_mean", ".running_mean"),
               (".moving_variance", ".running_var"), (".down_sample.", ".downsample."))  # fmt: skip
    out = {}
    for p in create_model("res2net50", num_classes=10).get_parameters():
        name = "fc." + p.name[len("classifier.") :] if p.name.startswith("classifier.") else p.name
        for ours, theirs in renames:
            name = name.replace(ours, theirs)
        out[name] = p.asnumpy()
    return out


def _image_folder(root, splits, size=(40, 40), classes=("a", "b", "c")):
    rng = np.random.default_rng(0)
    for split in splits:
        for name in classes:
            os.makedirs(os.path.join(root, split, name))
            for i in range(2):
                pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(os.path.join(root, split, name, f"{i}.png" if i else f"{i}.jpg"))


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Shared inputs that every case reads (and none may change): configs, checkpoints, data folders."""
    a = tmp_path_factory.mktemp("inputs")
    (a / "typo.yaml").write_text("lr: 0.1\nbatchsize: 4\n")
    (a / "list.yaml").write_text("- lr\n- 0.1\n")
    (a / "syntax.yaml").write_text("lr: [0.1\nbatch_size: 4\n")
    (a / "wrongtype.yaml").write_text("lr: fast\n")
    (a / "afile.txt").write_text("a regular file where a folder is expected\n")

    ms.set_seed(0)
    tiny10 = create_model(TINY_MODEL, num_classes=10)
    save_checkpoint_atomic(tiny10, str(a / "tiny10.ckpt"))
    weights = {p.name: p.asnumpy() for p in tiny10.get_parameters()}
    _save_safetensors(str(a / "tiny_int32.safetensors"), {k: v.astype(np.int32) for k, v in weights.items()})
    _save_safetensors(str(a / "tiny_f16.safetensors"), {k: v.astype(np.float16) for k, v in weights.items()})
    # The same values widened back to float32: what loading the float16 file should be equivalent to.
    _save_safetensors(
        str(a / "tiny_f16_as_f32.safetensors"), {k: v.astype(np.float16).astype(np.float32) for k, v in weights.items()}
    )
    save_checkpoint_atomic(create_model(TINY_MODEL, num_classes=3), str(a / "tiny3.ckpt"))
    save_checkpoint_atomic(create_model("res2net101", num_classes=10), str(a / "r101.ckpt"))
    data = open(a / "tiny10.ckpt", "rb").read(200_000)
    (a / "truncated.ckpt").write_bytes(data)  # a prefix of a real checkpoint
    (a / "empty.ckpt").write_bytes(b"")
    (a / "garbage.ckpt").write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())

    torch_sd = _torch_state_dict()
    _save_safetensors(str(a / "torch_res2net50.safetensors"), torch_sd)
    _save_safetensors(
        str(a / "torch_res2net50_int32.safetensors"), {k: v.astype(np.int32) for k, v in torch_sd.items()}
    )

    _image_folder(str(a / "corrupt"), ("train", "val"))
    for split in ("train", "val"):  # replace one JPEG in each split by a truncated one
        (a / "corrupt" / split / "b" / "0.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 60)
    _image_folder(str(a / "small"), ("train", "val"), size=(4, 6))  # smaller than any crop
    for split in ("train", "val"):
        for name in ("a", "b"):
            os.makedirs(a / "emptyclasses" / split / name)
    cifar = a / "cifar" / "cifar-10-batches-bin"
    cifar.mkdir(parents=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (cifar / name).write_bytes(bytes(3073 * 10))  # 10 records instead of 10,000
    (a / "noimages" / "sub").mkdir(parents=True)
    (a / "noimages" / "readme.txt").write_text("no images here\n")
    return str(a)


@pytest.fixture
def workspace(tmp_path):
    """A per-case output folder that already holds a good checkpoint, and an empty mindcv cache."""
    out, home = tmp_path / "out", tmp_path / "home"
    out.mkdir()
    home.mkdir()
    params = {"w": ms.Parameter(ms.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3)), name="w")}
    save_checkpoint_atomic(params, str(out / "good.ckpt"), append_dict={"epoch": 3})
    (out / "notes.txt").write_text("the user's own file\n")
    return str(out), str(home)


def _format(args, assets, out):
    return [str(x).format(a=assets, out=out) for x in args]


# ----------------------------------------------------------------------------------------------------------------------
# the corpus


@pytest.mark.parametrize("case", list(_params(CASES)))
def test_bad_input(case, assets, workspace):
    out, home = workspace
    roots = (assets, out, home)
    before, top_before = snapshot(roots), repo_top_level()
    result = run_command(_format(case.args, assets, out), home)
    assert_one_line_error(result, _format(case.words, assets, out))
    assert changes(before, snapshot(roots), allowed=case.allowed) == []
    assert repo_top_level() - top_before == set()


def test_debug_shows_the_traceback(assets, workspace):
    out, home = workspace
    result = run_command(_format([*TRAIN, "--lr", "abc", "--debug"], assets, out), home)
    assert result.returncode == 2, result.describe()
    assert "Traceback (most recent call last)" in result.stderr and "ConfigError" in result.stderr
    assert result.stderr_lines[-1] == "error: argument --lr: 'abc' is not a number (see --help)"


@pytest.mark.parametrize("script", ["train", "validate"])
def test_pretrained_offline(script, assets, workspace, monkeypatch, capsys):
    """--pretrained with no route to the weights: one line naming the URL, the cache path and --ckpt_path.

    The weight URLs are fixed in ``default_cfgs`` (no environment override exists), so the command runs
    in-process with the URL pointed at a closed port on 127.0.0.1: this can never reach the internet.
    """
    from scriptutil import run_script

    out, home = workspace
    url = closed_port_url("/res2net/res2net50-f42cf71b.ckpt")
    monkeypatch.setitem(res2net.default_cfgs["res2net50.mindcv_in1k"], "url", url)
    monkeypatch.setenv("MINDCV_HOME", home)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    roots = (assets, out)
    before, top_before = snapshot(roots), repo_top_level()
    argv = ["--model", "res2net50", "--pretrained", *DIGITS]
    argv += ["--epoch_size", "1", "--ckpt_save_dir", out] if script == "train" else []
    rc, stdout, stderr = run_script(script, argv, capsys)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert url in lines[0] and os.path.join(home, "models") in lines[0] and "--ckpt_path" in lines[0]
    assert "Traceback" not in stdout + stderr
    assert changes(before, snapshot(roots), allowed=RUN_FILES) == []
    assert repo_top_level() - top_before == set()
    # The cache may hold its (empty) models folder, never a partial download.
    assert [f for _, _, files in os.walk(home) for f in files] == []


# ----------------------------------------------------------------------------------------------------------------------
# inputs that look bad but are fine


def test_image_smaller_than_the_crop_is_fine(assets, workspace):
    """4x6 images with a 16 px input: the evaluation transform resizes before it crops, so they evaluate."""
    out, home = workspace
    results = os.path.join(out, "r.json")
    args = ["validate.py", "--model", TINY_MODEL, "--dataset", "imagenet", "--data_dir", f"{assets}/small",
            "--image_resize", "16", "--batch_size", "8", "--mode", "1", "--ckpt_path", f"{assets}/tiny3.ckpt",
            "--results_file", results]  # fmt: skip
    result = run_command(args, home)
    assert result.returncode == 0, result.describe()
    with open(results) as f:
        assert json.load(f)["num_samples"] == 6


def test_float16_safetensors_load_as_their_exact_float32_values(assets, workspace):
    """float16 -> float32 is exact, so a float16 file evaluates exactly like its widened float32 copy."""
    out, home = workspace
    metrics = []
    for name in ("tiny_f16.safetensors", "tiny_f16_as_f32.safetensors"):
        results = os.path.join(out, name + ".json")
        result = run_command(
            _format([*VALIDATE, "--ckpt_path", f"{{a}}/{name}", "--results_file", results], assets, out), home
        )
        assert result.returncode == 0, result.describe()
        with open(results) as f:
            metrics.append({k: v for k, v in json.load(f).items() if k in ("top1", "top5", "loss", "num_samples")})
    assert metrics[0] == metrics[1] and metrics[0]["num_samples"] == 4
