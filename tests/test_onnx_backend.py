"""The onnxruntime backend (validate.py/infer.py --backend onnxruntime) and export.py --check.

The backend must give the MindSpore backend's metrics and predictions on the same data, reuse its cached export only
for the same weights and shape, replace a damaged cached file, refuse a file that disagrees with MindSpore, and say in
one line how to install onnxruntime when it is missing.
"""

import csv
import json
import os
import sys

import numpy as np
import pytest
from PIL import Image
from scriptutil import TINY, TINY_MODEL, error_lines, load_script, make_image_folder, run_script

import mindspore as ms

from mindcv.data.digits import load_digits
from mindcv.deploy import backends
from mindcv.deploy.backends import OnnxRuntimeModel, cached_onnx_export, onnx_cache_key
from mindcv.deploy.export import check_export, export_model
from mindcv.deploy.onnx_runtime import max_relative_difference
from mindcv.engine.evaluator import Evaluator
from mindcv.errors import BackendError, ConfigError
from mindcv.models import create_model, list_models

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install '.[test]')")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    ms.set_seed(3)
    path = str(tmp_path_factory.mktemp("w") / "tiny.ckpt")
    ms.save_checkpoint(create_model(TINY_MODEL, num_classes=10), path)
    return path


def _tiny(seed: int = 0, num_classes: int = 10):
    ms.set_seed(seed)
    model = create_model(TINY_MODEL, num_classes=num_classes)
    model.set_train(False)
    return model


def _validate(argv, tmp_path, name, capsys):
    results = str(tmp_path / f"{name}.csv")
    rc, out, err = run_script("validate", argv + ["--results_file", results], capsys)
    assert rc == 0, err
    with open(results, newline="") as f:
        (row,) = list(csv.DictReader(f))
    return row, out


def _assert_same_metrics(ours, theirs):
    assert ours["num_samples"] == theirs["num_samples"]
    assert float(ours["top1"]) == float(theirs["top1"])
    assert float(ours["top5"]) == float(theirs["top5"])
    assert float(ours["loss"]) == pytest.approx(float(theirs["loss"]), rel=1e-5)


@pytest.mark.parametrize("tta", ["none", "hflip"])
def test_validate_backends_agree_on_digits_and_the_export_is_reused(ckpt, tmp_path, capsys, tta):
    cache = tmp_path / "onnx"
    # 11 samples in batches of 4: the padded last batch goes through both backends too.
    argv = TINY + ["--dataset", "digits", "--val_num_samples", "11", "--ckpt_path", ckpt, "--tta", tta]
    argv += ["--onnx_cache_dir", str(cache)]
    reference, _ = _validate(argv + ["--backend", "mindspore"], tmp_path, "ms", capsys)
    first, _ = _validate(argv + ["--backend", "onnxruntime"], tmp_path, "ort1", capsys)
    (exported,) = [f for f in os.listdir(cache) if not f.startswith(".")]  # the lock file is ".<name>.lock"
    stamp = os.stat(cache / exported).st_mtime_ns
    second, _ = _validate(argv + ["--backend", "onnxruntime"], tmp_path, "ort2", capsys)
    assert [f for f in os.listdir(cache) if not f.startswith(".")] == [exported]
    assert os.stat(cache / exported).st_mtime_ns == stamp  # reused, not written again
    for row in (first, second):
        _assert_same_metrics(row, reference)
        assert row["backend"] == "onnxruntime"
    assert exported.startswith(f"{TINY_MODEL}-4x3x16x16-")


def test_validate_backends_agree_on_an_image_folder_of_real_digits(ckpt, tmp_path, capsys):
    """The shipped handwritten digits written out as JPEG and PNG files: decoded, resized and evaluated from disk."""
    images, labels = load_digits("val")
    root = tmp_path / "data"
    for i in range(18):
        folder = root / "val" / f"digit_{labels[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(folder / f"{i}.{'jpg' if i % 2 else 'png'}")
    missing = set(range(10)) - {int(label) for label in labels[:18]}
    for digit in missing:  # ImageNet-style folders: every class has a folder, so the class indices are the digits
        (root / "val" / f"digit_{digit}").mkdir(parents=True)
        Image.fromarray(images[list(labels).index(digit)]).save(root / "val" / f"digit_{digit}" / "extra.png")
    argv = TINY + ["--dataset", "imagenet", "--data_dir", str(root), "--num_classes", "10", "--ckpt_path", ckpt]
    argv += ["--onnx_cache_dir", str(tmp_path / "onnx")]
    reference, _ = _validate(argv + ["--backend", "mindspore"], tmp_path, "ms", capsys)
    ours, _ = _validate(argv + ["--backend", "onnxruntime"], tmp_path, "ort", capsys)
    assert int(reference["num_samples"]) == 18 + len(missing)
    _assert_same_metrics(ours, reference)


def test_infer_backends_give_the_same_predictions(tmp_path, capsys):
    root = make_image_folder(str(tmp_path / "images"), per_class={"val": 2})
    model = _tiny(7, num_classes=3)
    path = str(tmp_path / "infer.ckpt")
    ms.save_checkpoint(model, path)
    outputs = {}
    for backend in ("mindspore", "onnxruntime"):
        out = str(tmp_path / f"{backend}.json")
        argv = [root, "--model", TINY_MODEL, "--ckpt_path", path, "--image_size", "16", "--batch_size", "4"]
        argv += ["--output", "json", "--output_file", out, "--backend", backend, "--topk", "3"]
        argv += ["--onnx_cache_dir", str(tmp_path / "onnx")]
        assert load_script("infer").main(argv) == 0
        with open(out, encoding="utf-8") as f:
            outputs[backend] = json.load(f)["predictions"]
    assert len(outputs["mindspore"]) == 6  # 6 images in batches of 4: the last batch is padded for onnxruntime
    for ours, theirs in zip(outputs["onnxruntime"], outputs["mindspore"]):
        assert ours["path"] == theirs["path"]
        assert [t["index"] for t in ours["topk"]] == [t["index"] for t in theirs["topk"]]
        np.testing.assert_allclose([t["prob"] for t in ours["topk"]], [t["prob"] for t in theirs["topk"]], atol=1e-5)


def test_cache_key_follows_weights_shape_and_structure():
    a, b = _tiny(1), _tiny(2)
    shape = (2, 3, 16, 16)
    assert onnx_cache_key(a, shape) == onnx_cache_key(a, shape)  # stable (no object addresses in it)
    assert onnx_cache_key(a, shape) != onnx_cache_key(b, shape)  # other weights
    assert onnx_cache_key(a, shape) != onnx_cache_key(a, (4, 3, 16, 16))  # other shape
    # Same weights, another structure: a stride or a layer count lives in the repr, not in the parameters.
    c = create_model(TINY_MODEL, num_classes=10, layers=(1, 1, 1, 1))
    assert onnx_cache_key(c, shape) != onnx_cache_key(a, shape)
    stats = a.bn1.moving_mean
    stats.set_data(stats + 1.0)  # BatchNorm statistics are weights too
    assert onnx_cache_key(a, shape) != onnx_cache_key(_tiny(1), shape)


def test_a_damaged_cached_file_is_exported_again(tmp_path):
    model = _tiny(4)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    path, exported = cached_onnx_export(model, x.shape, str(tmp_path))
    assert exported and cached_onnx_export(model, x.shape, str(tmp_path)) == (path, False)
    with open(path, "wb") as f:
        f.write(b"not an onnx file")
    runner = OnnxRuntimeModel(model, cache_dir=str(tmp_path))
    got = runner(x)
    assert max_relative_difference(got, model(ms.Tensor(x)).asnumpy()) <= 1e-4
    assert runner.paths[x.shape] == path and os.path.getsize(path) > 1000
    assert runner.checks[x.shape] <= 1e-4


def test_a_file_that_disagrees_with_mindspore_is_refused(tmp_path, monkeypatch):
    model = _tiny(4)
    x = np.ones((2, 3, 16, 16), np.float32)
    real_run = backends.run_session
    monkeypatch.setattr(backends, "run_session", lambda session, images: real_run(session, images) + 1.0)
    with pytest.raises(BackendError, match="differs from MindSpore's by .* use --backend mindspore"):
        OnnxRuntimeModel(model, cache_dir=str(tmp_path))(x)


def test_missing_onnxruntime_is_one_line_naming_the_install(ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with pytest.raises(BackendError, match="pip install onnxruntime"):
        OnnxRuntimeModel(_tiny(0))
    argv = TINY + ["--dataset", "digits", "--val_num_samples", "4", "--ckpt_path", ckpt, "--backend", "onnxruntime"]
    rc, _, err = run_script("validate", argv, capsys)
    assert rc == 2
    (line,) = error_lines(err)
    assert "pip install onnxruntime" in line
    export = load_script("export")
    assert export.run_main(export.main, ["--model", TINY_MODEL, "--file_format", "onnx", "--check"]) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith("error: ") and "pip install onnxruntime" in line


def test_predictors_take_fp32_only():
    with pytest.raises(ConfigError, match="--val_amp_level O0"):
        Evaluator(lambda images: images, batch_size=2, num_classes=10, amp_level="O2")


def test_check_export_measures_and_refuses(tmp_path):
    model = _tiny(6)
    shape = (1, 3, 16, 16)
    paths = export_model(model, str(tmp_path / "m"), shape, "both")
    for path in paths:
        assert check_export(model, path, shape) <= 1e-4
    other = _tiny(9)  # same architecture, other weights: the files no longer reproduce it
    for path in paths:
        with pytest.raises(BackendError, match="does not reproduce the model"):
            check_export(other, path, shape)
    with pytest.raises(ConfigError, match="AIR"):
        check_export(model, str(tmp_path / "m.air"), shape)


def test_export_cli_check_prints_the_difference(tmp_path, capsys):
    out = str(tmp_path / "cli")
    argv = ["--model", TINY_MODEL, "--image_size", "16", "--file_format", "both", "--check", "--output", out]
    rc, stdout, err = run_script("export", argv, capsys)
    assert rc == 0, err
    lines = stdout.split("\n")
    checks = [line for line in lines if line.startswith("check ")]
    assert [c.split()[1].rstrip(":") for c in checks] == [out + ".mindir", out + ".onnx"]
    assert all(float(c.split("difference ")[1].split()[0]) <= 1e-4 for c in checks)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_export_check_passes_for_every_model(name, tmp_path):
    """Every registered model at 32 px, ONNX and MINDIR, one block per stage: that keeps its stem, widths, scales,
    cardinality and shortcuts, while the full depths only repeat those cells at a minute of CI each (a full-depth model
    goes through export.py --check above)."""
    model = create_model(name, num_classes=10, layers=(1, 1, 1, 1))
    model.set_train(False)
    shape = (2, 3, 32, 32)
    for path in export_model(model, str(tmp_path / name), shape, "both"):
        assert check_export(model, path, shape) <= 1e-4, path
