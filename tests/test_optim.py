"""Optimizers: every registered optimizer trains a tiny conv net, honours the weight-decay filter and a per-step
learning-rate schedule; LARS/LAMB and Nesterov against numpy references."""

from types import SimpleNamespace

import numpy as np
import pytest

import mindspore as ms
from mindspore import Parameter, Tensor, nn

from mindcv.errors import ConfigError, UnknownNameError
from mindcv.optim import WEIGHT_DECAY_FILTERS, create_optimizer, list_optimizers, optimizer_kwargs

# Learning rates that make each optimizer move a tiny net noticeably in a few steps (LARS's and LAMB's steps are
# proportional to the weight norm, so they need a larger base rate).
_LR = {"lars": 1.0, "lamb": 0.05}


def _net() -> nn.Cell:
    ms.set_seed(0)
    return nn.SequentialCell(
        nn.Conv2d(3, 4, 3, has_bias=True), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dense(4 * 6 * 6, 3)
    )


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return Tensor(rng.normal(size=(8, 3, 6, 6)).astype(np.float32)), Tensor(rng.integers(0, 3, 8).astype(np.int32))


def _train(net, opt, batch, steps):
    loss_fn = nn.CrossEntropyLoss()

    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, opt.parameters)
    losses = []
    for _ in range(steps):
        loss, grads = grad_fn(*batch)
        opt(grads)
        losses.append(float(loss.asnumpy()))
    return losses


@pytest.mark.parametrize("name", list_optimizers())
def test_reduces_loss(name, batch):
    net = _net()
    net.set_train(True)
    opt = create_optimizer(net, name, lr=_LR.get(name, 0.05), weight_decay=1e-4)
    losses = _train(net, opt, batch, 10)
    assert losses[-1] < 0.7 * losses[0], f"{name}: {losses}"
    assert int(opt.global_step.asnumpy()[0]) == 10


def _is_bias_or_bn(name: str) -> bool:
    return name.endswith((".bias", ".gamma", ".beta"))


@pytest.mark.parametrize("filter_bias_and_bn", [True, False])
@pytest.mark.parametrize("name", list_optimizers())
def test_weight_decay_filter(name, filter_bias_and_bn):
    # With zero gradients only weight decay moves a parameter: the filter must leave biases and BN untouched.
    net = _net()
    before = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
    opt = create_optimizer(net, name, lr=_LR.get(name, 0.05), weight_decay=0.5, filter_bias_and_bn=filter_bias_and_bn)
    opt(tuple(ms.ops.zeros_like(p) for p in opt.parameters))
    for p in net.trainable_params():
        moved = not np.allclose(p.asnumpy(), before[p.name])
        if _is_bias_or_bn(p.name) and filter_bias_and_bn:
            assert not moved, f"{name}: {p.name} was decayed"
        elif np.any(before[p.name] != 0):  # a zero-initialised bias stays zero under decay
            assert moved, f"{name}: {p.name} was not decayed"


def test_schedule_array_is_indexed_by_global_step(batch):
    net = _net()
    schedule = np.array([0.5, 0.25, 0.125, 0.0625], np.float32)
    opt = create_optimizer(net, "sgd", lr=schedule, momentum=0.0)
    for k in range(3):
        assert float(opt.get_lr().asnumpy()) == pytest.approx(schedule[k])
        _train(net, opt, batch, 1)
    # the update itself used schedule[k]: a plain SGD step moves a weight by lr * grad
    w = net[4].weight
    before = w.asnumpy().copy()
    loss_fn = nn.CrossEntropyLoss()
    grads = ms.grad(lambda x, y: loss_fn(net(x), y), None, opt.parameters)(*batch)
    opt(grads)
    grad_w = [g for g, p in zip(grads, opt.parameters) if p.name == w.name][0].asnumpy()
    np.testing.assert_allclose(w.asnumpy(), before - schedule[3] * grad_w, rtol=1e-5, atol=1e-7)


def test_nesterov_is_really_nesterov():
    # w=1, g=1, lr=0.1, momentum=0.9, two steps: plain momentum gives 0.71, Nesterov 1 - 0.19 - 0.271 = 0.539
    for opt_name, nesterov, expected in [
        ("momentum", False, 0.71),
        ("momentum", True, 0.539),
        ("nesterov", False, 0.539),
    ]:
        w = Parameter(Tensor(np.ones(3, np.float32)), name="w")
        opt = create_optimizer([w], opt_name, lr=0.1, momentum=0.9, nesterov=nesterov)
        for _ in range(2):
            opt((Tensor(np.ones(3, np.float32)),))
        np.testing.assert_allclose(w.asnumpy(), expected, rtol=1e-6, err_msg=f"{opt_name} nesterov={nesterov}")


def _numpy_lars(w, grads, lr, momentum, wd, eta, eps):
    w, v = w.astype(np.float64), np.zeros_like(w, dtype=np.float64)
    for g in grads:
        trust = eta * np.linalg.norm(w) / (np.linalg.norm(g) + wd * np.linalg.norm(w) + eps)
        d = (g + wd * w) * trust
        v = momentum * v + d
        w = w - lr * v
    return w


def _numpy_lamb(w, grads, lr, b1, b2, eps, wd):
    w = w.astype(np.float64)
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        r = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) + wd * w
        w = w - lr * np.linalg.norm(w) / np.linalg.norm(r) * r
    return w


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_lars_and_lamb_match_numpy(mode):
    ms.set_context(mode=mode)
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(3)]
    expected = {
        "lars": _numpy_lars(w0, grads, lr=0.5, momentum=0.9, wd=0.01, eta=0.001, eps=1e-8),
        "lamb": _numpy_lamb(w0, grads, lr=0.05, b1=0.9, b2=0.999, eps=1e-8, wd=0.01),
    }
    for name, ref in expected.items():
        w = Parameter(Tensor(w0.copy()), name="weight")
        opt = create_optimizer([w], name, lr=0.5 if name == "lars" else 0.05, weight_decay=0.01, momentum=0.9)
        for g in grads:
            opt((Tensor(g),))
        np.testing.assert_allclose(w.asnumpy(), ref, rtol=1e-5, atol=1e-6, err_msg=name)


def test_unknown_optimizer_lists_close_matches_first():
    with pytest.raises(UnknownNameError, match=r"unknown optimizer 'adamm'; choose one of: adam, adamw"):
        create_optimizer(_net(), "adamm")
    assert create_optimizer(_net(), "AdamW").__class__.__name__ == "AdamWeightDecay"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(opt="sgd", weight_decay=-1.0), "weight_decay"),
        (dict(opt="sgd", lr=[[0.1]]), "1-D"),
        (dict(opt="sgd", lr=[0.1, float("nan")]), "non-finite"),
        (dict(opt="nesterov", momentum=0.0), "momentum > 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        create_optimizer(_net(), **kwargs)


def test_parameter_groups_pass_through():
    net = _net()
    params = net.trainable_params()
    groups = [{"params": params[:2], "weight_decay": 0.1}, {"params": params[2:]}, {"order_params": params}]
    opt = create_optimizer(groups, "momentum", lr=0.1, weight_decay=0.0)
    assert [p.name for p in opt.parameters] == [p.name for p in params]
    assert opt.decay_flags == tuple([True, True] + [False] * (len(params) - 2))


def test_optimizer_kwargs_maps_upstream_flag_names():
    cfg = SimpleNamespace(opt="momentum", lr=0.1, weight_decay=1e-4, use_nesterov=True, weight_decay_filter="disable")
    assert optimizer_kwargs(cfg) == dict(
        opt="momentum", lr=0.1, weight_decay=1e-4, nesterov=True, filter_bias_and_bn=False
    )
    assert set(WEIGHT_DECAY_FILTERS) == {"disable", "auto", "norm_and_bias"}
    with pytest.raises(UnknownNameError, match="weight_decay_filter"):
        optimizer_kwargs(SimpleNamespace(weight_decay_filter="bias"))


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
@pytest.mark.parametrize("kind", ["momentum", "sgd", "nesterov", "momentum_scheduled_decay"])
@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
def test_one_pass_weight_decay_equals_mindspore(kind, grouped, mode, batch):
    # mindcv.optim.l2_decay adds the decay with one AddExt per parameter; the update must equal MindSpore's own.
    from mindcv.optim import split_weight_decay_params
    from mindcv.optim.l2_decay import SGD, Momentum

    decay = nn.ExponentialDecayLR(0.2, 0.5, 1) if kind.endswith("scheduled_decay") else 0.2
    ours_cls, theirs_cls = (Momentum, nn.Momentum) if kind.startswith("momentum") else (SGD, nn.SGD)
    ms.set_context(mode=mode)
    try:
        finals = []
        for cls in (ours_cls, theirs_cls):
            net = _net()
            params = split_weight_decay_params(net.trainable_params(), 0.2) if grouped else net.trainable_params()
            if cls in (Momentum, nn.Momentum):
                opt = cls(params, 0.05, 0.9, weight_decay=decay)
            else:
                opt = cls(params, 0.05, momentum=0.9, weight_decay=decay, nesterov=kind == "nesterov")
            _train(net, opt, batch, 4)
            finals.append({p.name: p.asnumpy() for p in net.trainable_params()})
            if cls is ours_cls and not isinstance(decay, nn.Cell):
                decayed = [wd for wd, p in zip(opt.constant_decays, opt.parameters) if not _is_bias_or_bn(p.name)]
                exempt = [wd for wd, p in zip(opt.constant_decays, opt.parameters) if _is_bias_or_bn(p.name)]
                assert decayed and all(wd == pytest.approx(0.2) for wd in decayed)
                if grouped:  # ungrouped, MindSpore's own filter exempts only gamma/beta, and decays biases
                    assert exempt and all(wd == 0.0 for wd in exempt)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    ours, theirs = finals
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
