"""infer.py and its library: image discovery, evaluation-identical preprocessing, top-k, names, errors."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mindspore.dataset import transforms

from mindcv.data import create_transforms, resolve_data_config
from mindcv.deploy.infer import (
    classify_files,
    imagenet_class_names,
    list_images,
    preprocess_image,
    resolve_class_names,
    softmax,
    topk,
)
from mindcv.errors import ConfigError, DatasetError
from mindcv.models import create_model
from mindcv.utils.checkpoint import save_checkpoint_atomic

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FILE_NAMES = ["cat", "dog", "bird"]
_META_NAMES = ["red", "green", "blue"]


def _load_script():
    spec = importlib.util.spec_from_file_location("infer_script", os.path.join(_ROOT, "infer.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Images of several formats and sizes (one corrupt), a names file, a 3-class checkpoint."""
    root = tmp_path_factory.mktemp("infer")
    rng = np.random.default_rng(0)
    images = root / "images"
    (images / "sub").mkdir(parents=True)
    (images / ".hidden").mkdir()
    Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(images / "a.JPG")
    Image.fromarray(rng.integers(0, 256, (80, 40, 4), dtype=np.uint8), "RGBA").save(images / "sub" / "b.png")
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), "L").save(images / "sub" / "c.bmp")
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(images / ".hidden" / "d.png")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (images / "notes.txt").write_text("not an image")
    names = root / "names.txt"
    names.write_text("# one name per line\n" + "\n".join(_FILE_NAMES) + "\n")
    model = create_model("res2net50", num_classes=3)
    ckpt = save_checkpoint_atomic(
        model, str(root / "r50.ckpt"), append_dict={"class_names": json.dumps(_META_NAMES), "model": "res2net50"}
    )
    return {"root": root, "images": images, "names": str(names), "ckpt": ckpt}


def test_list_images_recurses_matches_any_case_and_skips_hidden(workdir, tmp_path):
    images = workdir["images"]
    found = list_images([str(images)])
    expected = ["a.JPG", "broken.jpg", os.path.join("sub", "b.png"), os.path.join("sub", "c.bmp")]
    assert found == [str(images / name) for name in expected]
    assert list_images([str(images / "notes.txt"), str(images / "a.JPG")]) == [
        str(images / "notes.txt"),  # named explicitly: taken, and reported later if unreadable
        str(images / "a.JPG"),
    ]
    with pytest.raises(DatasetError, match="does not exist"):
        list_images([str(tmp_path / "missing")])
    with pytest.raises(DatasetError, match="no images found"):
        list_images([str(tmp_path)])


def test_preprocessing_equals_the_evaluation_transform(workdir):
    path = workdir["images"] / "sub" / "b.png"  # lossless, so decoders cannot differ
    cfg = resolve_data_config(create_model("res2net50", num_classes=3).pretrained_cfg, image_size=32)
    ours = preprocess_image(str(path), cfg)
    ops = create_transforms("imagenet", image_resize=32, is_training=False, crop_pct=cfg["crop_pct"])
    rgb_png = workdir["root"] / "b_rgb.png"
    Image.open(path).convert("RGB").save(rgb_png)  # the pipeline's decoder drops alpha the same way
    theirs = transforms.Compose(ops)(np.fromfile(rgb_png, dtype=np.uint8))
    assert ours.shape == (3, 32, 32) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, np.asarray(theirs), atol=1e-5)


def test_topk_is_sorted_and_capped():
    probs = softmax(np.array([[1.0, 3.0, 2.0, 3.0], [0.0, 0.0, 0.0, 5.0]]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    idx, val = topk(probs, 3)
    assert idx.tolist() == [[1, 3, 2], [3, 0, 1]]  # ties keep the lower index first
    assert np.all(np.diff(val, axis=1) <= 0)
    assert topk(probs, 10)[0].shape == (2, 4)
    assert np.isfinite(softmax(np.array([[1e4, -1e4]]))).all()


def test_class_name_sources_and_checks(tmp_path):
    names = imagenet_class_names()
    assert len(names) == 1000 and names[0] == "tench" and names[-1] == "toilet tissue"
    assert resolve_class_names(1000) == names
    assert resolve_class_names(3, metadata={"class_names": json.dumps(_META_NAMES)}) == _META_NAMES
    assert resolve_class_names(2, metadata={"class_names": "x\ny\n"}) == ["x", "y"]
    assert resolve_class_names(2) == ["class_0", "class_1"]
    with pytest.raises(ConfigError, match="lists 3 classes but the model has 5"):
        resolve_class_names(5, metadata={"class_names": json.dumps(_META_NAMES)})
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_class_names(3, class_names_file=str(tmp_path / "missing.txt"))


def test_fixed_batches_give_the_same_results(tmp_path):
    model = create_model("res2net50", num_classes=4, layers=(1, 1, 1, 1))
    rng = np.random.default_rng(1)
    files = []
    for name in ("p.png", "q.png", "r.png"):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / name)
        files.append(str(tmp_path / name))
    cfg = resolve_data_config(model.pretrained_cfg, image_size=32)
    names = ["w", "x", "y", "z"]
    plain = classify_files(model, files, names, cfg, batch_size=2, k=2)
    padded = classify_files(model, files, names, cfg, batch_size=2, k=2, fixed_batch=True)  # last batch: 1 + 1 pad
    assert [p["path"] for p in padded.predictions] == files
    for a, b in zip(plain.predictions, padded.predictions):
        assert [t["index"] for t in a["topk"]] == [t["index"] for t in b["topk"]]
        np.testing.assert_allclose([t["prob"] for t in a["topk"]], [t["prob"] for t in b["topk"]], rtol=1e-5)


def test_cli_json_output_with_names_file(workdir, tmp_path):
    script = _load_script()
    out = tmp_path / "pred.json"
    argv = [str(workdir["images"]), "--ckpt_path", workdir["ckpt"], "--class_names", workdir["names"]]
    argv += ["--image_size", "64", "--batch_size", "2", "--topk", "2", "--mode", "1"]
    argv += ["--output", "json", "--output_file", str(out)]
    assert script.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["model"] == "res2net50"  # from the checkpoint's metadata; --model was not given
    assert result["num_images"] == 3 and result["num_skipped"] == 1
    assert result["skipped"][0]["path"].endswith("broken.jpg") and "broken.jpg" in result["skipped"][0]["error"]
    assert [os.path.basename(p["path"]) for p in result["predictions"]] == ["a.JPG", "b.png", "c.bmp"]
    for pred in result["predictions"]:
        probs = [t["prob"] for t in pred["topk"]]
        assert len(probs) == 2 and probs == sorted(probs, reverse=True)
        assert 0 < sum(probs) <= 1 + 1e-6
        for t in pred["topk"]:
            assert t["name"] == _FILE_NAMES[t["index"]]  # 3 classes read from the checkpoint's classifier


def test_cli_text_output_uses_checkpoint_names_and_strict_fails(workdir, capsys):
    script = _load_script()
    argv = [str(workdir["images"] / "sub"), "--ckpt_path", workdir["ckpt"], "--image_size", "32", "--mode", "1"]
    assert script.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 image(s) classified, 0 skipped" in out
    assert sum(out.count(f"] {name}") for name in _META_NAMES) == 2 * 3  # top-5 capped at 3 classes

    argv = [str(workdir["images"]), "--ckpt_path", workdir["ckpt"], "--image_size", "32", "--mode", "1", "--strict"]
    assert script.run_main(script.main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot read image") and "broken.jpg" in err[0]

    for bad, reason in [
        (["--model", "res2net101"], "was trained as 'res2net50'"),
        (["--pretrained"], "both --pretrained and --ckpt_path"),
        (["--topk", "0"], "--topk must be >= 1"),
    ]:
        assert script.run_main(script.main, [str(workdir["images"]), "--ckpt_path", workdir["ckpt"]] + bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and reason in err[0], err


def test_missing_checkpoint_is_one_line_and_exit_2(workdir, tmp_path):
    env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), GLOG_v="3")
    cmd = [sys.executable, os.path.join(_ROOT, "infer.py"), str(workdir["images"])]
    cmd += ["--ckpt_path", str(tmp_path / "missing.ckpt")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: checkpoint") and "missing.ckpt" in lines[0], proc.stderr
    assert proc.stdout == ""
