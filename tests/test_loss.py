"""Losses: every registered loss against numpy references, smoothing formula, soft targets, reductions, graph mode."""

from types import SimpleNamespace

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor

from mindcv.errors import ConfigError, UnknownNameError
from mindcv.loss import create_loss, list_losses, loss_kwargs

N, C = 6, 5


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(N, C)).astype(np.float32)
    labels = rng.integers(0, C, size=N).astype(np.int32)
    return logits, labels


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _ce_ref(logits: np.ndarray, target: np.ndarray, smoothing: float) -> np.ndarray:
    """Per-sample soft-target cross-entropy with the smoothed target y * (1 - s) + s / C."""
    target = target * (1 - smoothing) + smoothing / logits.shape[1]
    return -(target * _log_softmax(logits)).sum(axis=1)


def _bce_ref(logits: np.ndarray, target: np.ndarray, smoothing: float) -> np.ndarray:
    target = target * (1 - smoothing) + smoothing / logits.shape[1]
    x = logits.astype(np.float64)
    return np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x)))


def _asl_single_ref(logits: np.ndarray, target: np.ndarray, smoothing: float, g_pos=1.0, g_neg=4.0) -> np.ndarray:
    """Per-sample single-label ASL: log-probabilities weighted by (1 - p)^g_pos (target) and p^g_neg (others)."""
    logp = _log_softmax(logits)
    p = np.exp(logp)
    # Soft targets interpolate the distance (1 - p for the target, p otherwise) and the exponent.
    weight = (target * (1 - p) + (1 - target) * p) ** (g_pos * target + g_neg * (1 - target))
    smoothed = target * (1 - smoothing) + smoothing / logits.shape[1]
    return -(smoothed * logp * weight).sum(axis=1)


def _asl_multi_ref(logits: np.ndarray, target: np.ndarray, g_pos=1.0, g_neg=4.0, clip=0.05) -> float:
    """Multi-label ASL of the paper, summed: positives log(p)(1-p)^g_pos, negatives log(1-p_m) p_m^g_neg."""
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    p_m = np.maximum(p - clip, 0)
    pos = target * np.log(np.maximum(p, 1e-8)) * (1 - p) ** g_pos
    neg = (1 - target) * np.log(np.maximum(1 - p_m, 1e-8)) * p_m**g_neg
    return float(-(pos + neg).sum())


# The multi-label ASL takes no smoothing, reduction or auxiliary logits (as upstream MindCV builds it): its own tests
# below. JSD is the plain cross-entropy outside training mode; its training-mode loss is tested below.
_REFS = {"CE": _ce_ref, "BCE": _bce_ref, "jsd": _ce_ref, "asl_single_label": _asl_single_ref}
_GENERIC = [name for name in list_losses() if name in _REFS]
_WITH_AUX = [name for name in _GENERIC if name != "asl_single_label"]


def _run(loss, logits, labels):
    return loss(Tensor(logits), Tensor(labels)).asnumpy()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("name", _GENERIC)
def test_matches_numpy_reference_hard_and_soft(name, smoothing, data):
    logits, labels = data
    onehot = np.eye(C, dtype=np.float32)[labels]
    per_sample = _REFS[name](logits, onehot, smoothing)
    for reduction, expected in [("mean", per_sample.mean()), ("sum", per_sample.sum()), ("none", per_sample)]:
        loss = create_loss(name, label_smoothing=smoothing, reduction=reduction)
        hard = _run(loss, logits, labels)
        soft = _run(loss, logits, onehot)
        np.testing.assert_allclose(hard, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(soft, hard, rtol=1e-5, atol=1e-6)  # one-hot soft labels equal hard labels


@pytest.mark.parametrize("name", _GENERIC)
def test_mixup_soft_targets(name, data):
    logits, labels = data
    rng = np.random.default_rng(1)
    lam = 0.7
    mixed = lam * np.eye(C)[labels] + (1 - lam) * np.eye(C)[rng.permutation(labels)]
    got = _run(create_loss(name, label_smoothing=0.1), logits, mixed.astype(np.float32))
    np.testing.assert_allclose(got, _REFS[name](logits, mixed, 0.1).mean(), rtol=1e-5)


def test_label_smoothing_formula(data):
    # CE with smoothing s = (1 - s) * CE(hard) + s * mean over classes of -log p
    logits, labels = data
    s = 0.2
    logp = _log_softmax(logits)
    expected = ((1 - s) * -logp[np.arange(N), labels] + s * -logp.mean(axis=1)).mean()
    np.testing.assert_allclose(_run(create_loss("CE", label_smoothing=s), logits, labels), expected, rtol=1e-5)


def test_class_weights_follow_torch_semantics(data):
    # hard labels, mean reduction: weighted sum divided by the summed weights of the targets
    logits, labels = data
    w = np.array([1.0, 2.0, 0.5, 3.0, 1.5], np.float32)
    nll = -_log_softmax(logits)[np.arange(N), labels]
    expected = (w[labels] * nll).sum() / w[labels].sum()
    np.testing.assert_allclose(_run(create_loss("CE", weight=list(w)), logits, labels), expected, rtol=1e-5)


@pytest.mark.parametrize("name", _WITH_AUX)
def test_aux_logits_are_weighted(name, data):
    logits, labels = data
    aux = logits[:, ::-1].copy()
    loss = create_loss(name, aux_factor=0.4)
    got = loss((Tensor(logits), Tensor(aux)), Tensor(labels)).asnumpy()
    np.testing.assert_allclose(got, _run(loss, logits, labels) + 0.4 * _run(loss, aux, labels), rtol=1e-5)


@pytest.mark.parametrize("name", _GENERIC)
def test_graph_mode_hard_and_soft(name, data):
    logits, labels = data
    loss = create_loss(name, label_smoothing=0.1)
    eager = (_run(loss, logits, labels), _run(loss, logits, np.eye(C, dtype=np.float32)[labels]))
    ms.set_context(mode=ms.GRAPH_MODE)
    graph = (_run(loss, logits, labels), _run(loss, logits, np.eye(C, dtype=np.float32)[labels]))
    np.testing.assert_allclose(graph, eager, rtol=1e-5)


def test_float16_logits_are_computed_in_float32(data):
    logits, labels = data
    got = _run(create_loss("CE"), logits.astype(np.float16), labels)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _ce_ref(logits.astype(np.float16), np.eye(C)[labels], 0).mean(), rtol=1e-4)


def test_names_are_case_insensitive_and_unknown_names_list_choices():
    assert type(create_loss("ce")) is type(create_loss("CE"))
    with pytest.raises(UnknownNameError, match="unknown loss 'BCEE'; choose one of: BCE, CE"):
        create_loss("BCEE")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(reduction="avg"), "reduction"),
        (dict(aux_factor=-1.0), "aux_factor"),
        (dict(weight=[[1.0]]), "weight"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        create_loss("CE", **kwargs)


def test_loss_kwargs_maps_upstream_flag_names():
    cfg = SimpleNamespace(loss="BCE", label_smoothing=0.1, reduction="sum", model="res2net50")
    assert loss_kwargs(cfg) == dict(name="BCE", label_smoothing=0.1, reduction="sum")


def test_upstream_positional_order():
    """name, weight, reduction, label_smoothing, aux_factor, as upstream MindCV documents create_loss."""
    loss = create_loss("CE", None, "sum", 0.1, 0.0)
    assert (loss.reduction, loss.smoothing, loss.aux_factor, loss.weight) == ("sum", 0.1, 0.0, None)


@pytest.mark.parametrize(
    "logits, labels, expected",
    [  # upstream MindCV's published values (its tests/modules/test_loss.py), with label_smoothing 0.1
        (
            [[0.38317937, 0.82873726, 0.8164871, 0.6443424], [0.77863216, 0.17288171, 0.69345415, 0.26514006],
             [0.14249292, 0.38524792, 0.97271717, 0.90531427]],
            [1, 1, 1],
            1.1247127,
        ),
        (np.zeros((3, 5)), [0, 0, 0], 1.1847522),
    ],
)  # fmt: skip
def test_asl_single_label_values(logits, labels, expected):
    logits = np.asarray(logits, np.float32)
    labels = np.asarray(labels, np.int32)
    got = _run(create_loss("asl_single_label", label_smoothing=0.1), logits, labels)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got, _asl_single_ref(logits, np.eye(logits.shape[1])[labels], 0.1).mean(), rtol=1e-5)


@pytest.mark.parametrize("graph", [False, True])
def test_asl_multi_label_values(graph):
    logits = np.array(
        [[0.38317937, 0.82873726, 0.8164871, 0.6443424], [0.77863216, 0.17288171, 0.69345415, 0.26514006],
         [0.14249292, 0.38524792, 0.97271717, 0.90531427]], np.float32,
    )  # fmt: skip
    labels = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], np.int32)
    loss = create_loss("asl_multi_label")
    ms.set_context(mode=ms.GRAPH_MODE if graph else ms.PYNATIVE_MODE)
    try:
        got = _run(loss, logits, labels)
        zero = _run(loss, np.zeros((3, 5), np.float32), np.zeros((3, 5), np.int32))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    np.testing.assert_allclose(got, 1.8657642, rtol=1e-5)  # upstream's published values
    np.testing.assert_allclose(zero, 0.3677258, rtol=1e-5)
    np.testing.assert_allclose(got, _asl_multi_ref(logits, labels.astype(np.float64)), rtol=1e-5)


def test_jsd_training_loss_is_clean_ce_plus_divergence(data):
    logits, labels = data  # N = 6: 3 splits of 2 images
    loss = create_loss("jsd", label_smoothing=0.1)
    loss.set_train(True)
    got = _run(loss, logits, labels)
    probs = np.exp(_log_softmax(logits)).reshape(3, 2, C)
    mixture = np.clip(probs.mean(axis=0), 1e-7, 1)
    kl = (probs * (np.log(np.clip(probs, 1e-7, 1)) - np.log(mixture))).sum(axis=-1).mean(axis=-1)
    expected = _ce_ref(logits[:2], np.eye(C)[labels[:2]], 0.1).mean() + 12.0 * kl.mean()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    loss.set_train(False)
    np.testing.assert_allclose(_run(loss, logits, labels), _ce_ref(logits, np.eye(C)[labels], 0.1).mean(), rtol=1e-5)
