"""validate.py: every sample counted (last partial batch too), EMA weights, result files, one-line errors."""

import csv
import json
import os

import numpy as np
import pytest
from scriptutil import TINY, TINY_MODEL, error_lines, run_script

import mindspore as ms

from mindcv.data import create_dataset, create_loader, create_transforms
from mindcv.models import create_model

DIGITS = TINY + ["--dataset", "digits", "--mode", "1"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Two differently initialised tiny models: plain A, plain B, and a training-style file A + ema.(B)."""
    folder = tmp_path_factory.mktemp("w")
    ms.set_seed(1)
    a = create_model(TINY_MODEL, num_classes=10)
    ms.set_seed(2)
    b = create_model(TINY_MODEL, num_classes=10)
    paths = {"a": str(folder / "a.ckpt"), "b": str(folder / "b.ckpt"), "a_ema_b": str(folder / "a_ema_b.ckpt")}
    ms.save_checkpoint(a, paths["a"])
    ms.save_checkpoint(b, paths["b"])
    entries = [{"name": p.name, "data": p} for p in a.get_parameters()]
    entries += [{"name": "ema." + p.name, "data": p} for p in b.get_parameters()]
    ms.save_checkpoint(entries, paths["a_ema_b"])
    return paths


def _reference(ckpt_path, num_samples):
    """Top-1 and mean loss computed directly, batch by batch in PyNative, without the evaluator's padding."""
    net = create_model(TINY_MODEL, num_classes=10, checkpoint_path=ckpt_path)
    net.set_train(False)
    dataset = create_dataset("digits", split="val", shuffle=False, num_samples=num_samples)
    loader = create_loader(dataset, batch_size=4, transform=create_transforms("digits", image_resize=16))
    correct, losses = 0, []
    for images, labels in loader.create_tuple_iterator(num_epochs=1, output_numpy=True):
        logits = net(ms.Tensor(images)).asnumpy().astype(np.float64)
        correct += int((logits.argmax(1) == labels).sum())
        shifted = logits - logits.max(1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
        losses.extend(-logp[np.arange(len(labels)), labels])
    return 100.0 * correct / num_samples, float(np.mean(losses)), len(losses)


@pytest.mark.parametrize("mode", ["1", "0"], ids=["pynative", "graph"])
def test_counts_every_sample_and_matches_direct_computation(weights, tmp_path, capsys, mode):
    results = str(tmp_path / "r.csv")
    argv = DIGITS + ["--mode", mode, "--val_num_samples", "7", "--ckpt_path", weights["a"], "--results_file", results]
    rc, _, stderr = run_script("validate", argv, capsys)
    assert rc == 0, stderr
    with open(results, newline="") as f:
        (row,) = list(csv.DictReader(f))
    top1, loss, n = _reference(weights["a"], 7)
    assert n == 7 and int(row["num_samples"]) == 7  # batches of 4: the last one holds 3
    assert float(row["top1"]) == pytest.approx(top1, abs=1e-6)
    assert float(row["loss"]) == pytest.approx(loss, rel=1e-4)
    assert row["model"] == TINY_MODEL and row["split"] == "val"


def test_ema_weights_are_the_ema_entries(weights, tmp_path, capsys):
    out = {}
    for name, extra in (("ema", ["--ckpt_path", weights["a_ema_b"], "--ema"]), ("b", ["--ckpt_path", weights["b"]])):
        path = str(tmp_path / f"{name}.json")
        rc, _, stderr = run_script(
            "validate", DIGITS + ["--val_num_samples", "8", "--results_file", path] + extra, capsys
        )
        assert rc == 0, stderr
        out[name] = json.load(open(path))
    assert out["ema"]["loss"] == pytest.approx(out["b"]["loss"], rel=1e-6)
    assert out["ema"]["weights"].endswith("(EMA)")


@pytest.mark.parametrize(
    "extra, needle",
    [
        ([], "no weights to evaluate: pass --ckpt_path"),
        (["--ckpt_path", "/nonexistent/x.ckpt"], "does not exist"),
        (["--ckpt_path", "{garbage}"], "corrupt"),
        (["--ckpt_path", "{a}", "--ema"], "no EMA weights"),
        (["--ckpt_path", "{a}", "--model", "res2net50_14w_8s"], "does not fit this model"),
        (["--ckpt_path", "{a}", "--results_file", "{tmp}/r.txt"], ".json or .csv"),
        (["--ckpt_path", "{a}", "--results_file", "{tmp}/nodir/r.json"], "does not exist"),
        (["--ckpt_path", "{a}", "--num_classes", "3"], "has 10 classes"),
        (["--ckpt_path", "{a}", "--val_split", "test"], "no split 'test'"),
        (["--ckpt_path", "{a}", "--distribute"], "msrun"),
    ],
)
def test_bad_input_one_line_exit_2(weights, tmp_path, capsys, monkeypatch, extra, needle):
    for name in ("MS_WORKER_NUM", "MS_ROLE", "RANK_TABLE_FILE", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(os.urandom(256))
    extra = [e.format(a=weights["a"], garbage=garbage, tmp=tmp_path) for e in extra]
    rc, _, stderr = run_script("validate", DIGITS + extra, capsys)
    lines = error_lines(stderr)
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], stderr
