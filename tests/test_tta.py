"""Test-time augmentation (--tta hflip): the Evaluator equals a manual numpy computation of the averaged softmax, and
validate.py runs it end to end on digits."""

import json

import numpy as np
import pytest
from scriptutil import TINY, TINY_MODEL, run_script

import mindspore as ms
import mindspore.dataset as ds

from mindcv.config import parse_args
from mindcv.data import create_dataset, create_loader, create_transforms
from mindcv.engine.evaluator import Evaluator
from mindcv.errors import ConfigError
from mindcv.models import create_model


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _manual(net, batches, hflip: bool):
    """(top-1 %, top-5 %, mean NLL) of softmax(net(x)), averaged with softmax(net(mirrored x)) when ``hflip``."""
    net.set_train(False)
    probs, labels = [], []
    for images, y in batches:
        p = _softmax(net(ms.Tensor(images)).asnumpy().astype(np.float64))
        if hflip:
            mirrored = np.ascontiguousarray(images[..., ::-1])  # NCHW: mirror the width axis
            p = (p + _softmax(net(ms.Tensor(mirrored)).asnumpy().astype(np.float64))) / 2
        probs.append(p)
        labels.append(y)
    p, y = np.concatenate(probs), np.concatenate(labels)
    top5 = np.argsort(-p, axis=1)[:, :5]
    return (
        100.0 * np.mean(p.argmax(1) == y),
        100.0 * np.mean((top5 == y[:, None]).any(1)),
        float(np.mean(-np.log(p[np.arange(len(y)), y]))),
    )


@pytest.fixture(scope="module")
def tiny():
    ms.set_seed(3)
    net = create_model(TINY_MODEL, num_classes=10)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(6, 3, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 10, 6).astype(np.int32)
    return net, images, labels


@pytest.mark.parametrize("tta", ["none", "hflip"])
def test_evaluator_equals_manual_computation(tiny, tta):
    net, images, labels = tiny
    loader = ds.NumpySlicesDataset({"image": images, "label": labels}, shuffle=False).batch(4)  # last batch: 2
    metrics = Evaluator(net, batch_size=4, num_classes=10, tta=tta).evaluate(loader)
    batches = [(images[:4], labels[:4]), (images[4:], labels[4:])]
    top1, top5, loss = _manual(net, batches, hflip=tta == "hflip")
    assert metrics["num_samples"] == 6
    assert metrics["top1"] == pytest.approx(top1, abs=1e-6) and metrics["top5"] == pytest.approx(top5, abs=1e-6)
    assert metrics["loss"] == pytest.approx(loss, rel=1e-5)
    # the two settings really differ (a random net is not mirror-symmetric)
    assert abs(loss - _manual(net, batches, hflip=tta != "hflip")[2]) > 1e-6


class _Pooled(ms.nn.Cell):
    """Global average pool + Dense: a "network" whose logits the test chooses."""

    def __init__(self, dense):
        super().__init__()
        self.dense = dense

    def construct(self, x):
        return self.dense(x.mean(axis=(2, 3)))


def test_hflip_loss_stays_finite_for_confident_mistakes():
    """A true class whose probability underflows float32 (logit gap 200) still gives a finite loss, 200."""
    dense = ms.nn.Dense(3, 3, weight_init="zeros", bias_init="zeros")
    dense.bias.set_data(ms.Tensor(np.array([200.0, 0.0, 0.0], np.float32)))
    images, labels = np.zeros((2, 3, 2, 2), np.float32), np.array([1, 2], np.int32)
    loader = ds.NumpySlicesDataset({"image": images, "label": labels}, shuffle=False).batch(2)
    metrics = Evaluator(_Pooled(dense), batch_size=2, num_classes=3, tta="hflip").evaluate(loader)
    assert metrics["top1"] == 0.0 and metrics["loss"] == pytest.approx(200.0, rel=1e-5)


def test_unknown_tta_is_one_line_error(tiny):
    with pytest.raises(ConfigError, match="hflip") as info:
        Evaluator(tiny[0], batch_size=4, num_classes=10, tta="vflip")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="tta"):
        parse_args(["--tta", "flip5"])
    assert parse_args([]).tta == "none" and parse_args(["--tta", "hflip"]).tta == "hflip"
    # "none" is the choice here, not "unset" (it must survive the saved config.yaml and an override)
    assert parse_args(["--tta", "none"]).tta == "none" and parse_args(["tta=None"]).tta == "none"


def test_validate_hflip_on_digits(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MINDCV_HOME", str(tmp_path / "cache"))
    ms.set_seed(5)
    net = create_model(TINY_MODEL, num_classes=10)
    ckpt = str(tmp_path / "tiny.ckpt")
    ms.save_checkpoint(net, ckpt)
    results = str(tmp_path / "r.json")
    argv = TINY + ["--dataset", "digits", "--mode", "0", "--val_num_samples", "6", "--ckpt_path", ckpt]
    rc, out, err = run_script("validate", argv + ["--tta", "hflip", "--results_file", results], capsys)
    assert rc == 0, err
    res = json.load(open(results))
    assert res["tta"] == "hflip" and res["num_samples"] == 6 and "hflip TTA" in out + err

    ms.set_context(mode=ms.PYNATIVE_MODE)
    dataset = create_dataset("digits", split="val", shuffle=False, num_samples=6)
    loader = create_loader(dataset, batch_size=4, transform=create_transforms("digits", image_resize=16))
    batches = list(loader.create_tuple_iterator(num_epochs=1, output_numpy=True))
    top1, _, loss = _manual(create_model(TINY_MODEL, num_classes=10, checkpoint_path=ckpt), batches, hflip=True)
    assert res["top1"] == pytest.approx(top1, abs=1e-6) and res["loss"] == pytest.approx(loss, rel=1e-4)
