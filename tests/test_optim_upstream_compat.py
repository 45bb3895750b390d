"""Upstream MindCV's create_optimizer arguments on our factory: weight_decay_filter (and how it meets our
filter_bias_and_bn), layer_decay over a Res2Net's stages, adamw's loss_scale, checkpoint_path, and the signature."""

import inspect
from types import SimpleNamespace

import numpy as np
import pytest
from tinynet import tiny_net

import mindspore as ms
from mindspore import Parameter, Tensor, nn

from mindcv.errors import CheckpointError, ConfigError, UnknownNameError
from mindcv.models import create_model
from mindcv.optim import AdamWeightDecay, create_optimizer, optimizer_kwargs, param_layer_ids

# tiny_net's trainable parameters: 0 = Conv2d (with bias), 1 = BatchNorm2d, 4 = Dense.
_WEIGHTS = {"0.weight", "4.weight"}
_BIASES = {"0.bias", "4.bias"}
_NORM = {"1.gamma", "1.beta"}


def _decayed(opt: nn.Optimizer) -> set:
    """Names of the parameters the optimizer applies weight decay to."""
    return {p.name for p, flag in zip(opt.parameters, opt.decay_flags) if flag}


@pytest.mark.parametrize(
    "kwargs, decayed",
    [
        (dict(weight_decay_filter="disable"), _WEIGHTS | _BIASES | _NORM),
        (dict(weight_decay_filter="auto"), _WEIGHTS | _BIASES),  # MindSpore's rule: only gamma/beta are exempt
        (dict(weight_decay_filter="norm_and_bias"), _WEIGHTS),
        (dict(filter_bias_and_bn=True), _WEIGHTS),
        (dict(filter_bias_and_bn=False), _WEIGHTS | _BIASES | _NORM),
        (dict(weight_decay_filter="norm_and_bias", filter_bias_and_bn=True), _WEIGHTS),
        (dict(weight_decay_filter="disable", filter_bias_and_bn=False), _WEIGHTS | _BIASES | _NORM),
        (dict(), _WEIGHTS),  # neither given: norm_and_bias, as before the upstream keyword existed
    ],
)
def test_weight_decay_filter_groups(kwargs, decayed):
    opt = create_optimizer(tiny_net(), "adamw", lr=0.01, weight_decay=0.1, **kwargs)
    assert _decayed(opt) == decayed
    for p, flag, wd in zip(opt.parameters, opt.decay_flags, opt.weight_decay):
        assert float(wd.asnumpy()) == pytest.approx(0.1 if flag else 0.0), p.name


@pytest.mark.parametrize("wd_filter", ["disable", "auto", "norm_and_bias"])
def test_weight_decay_filter_moves_exactly_the_decayed_parameters(wd_filter):
    # Zero gradients: only weight decay moves a parameter (plain SGD, lr 0.5, decay 0.1: w -> 0.95 w).
    net = tiny_net()
    before = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
    opt = create_optimizer(net, "sgd", lr=0.5, weight_decay=0.1, momentum=0.0, weight_decay_filter=wd_filter)
    opt(tuple(ms.ops.zeros_like(p) for p in opt.parameters))
    decayed = _decayed(opt)
    for p in net.trainable_params():
        expected = before[p.name] * (0.95 if p.name in decayed else 1.0)
        np.testing.assert_allclose(p.asnumpy(), expected, rtol=1e-6, atol=1e-7, err_msg=p.name)


def test_norm_and_bias_honours_the_model_no_weight_decay_list():
    class Listed(nn.Cell):
        def __init__(self):
            super().__init__()
            self.body = tiny_net()
            self.pos = Parameter(Tensor(np.ones((2, 3), np.float32)), name="pos")

        def no_weight_decay(self):
            return ["pos"]

        def construct(self, x):
            return self.body(x)

    assert "pos" not in _decayed(
        create_optimizer(Listed(), "sgd", weight_decay=0.1, weight_decay_filter="norm_and_bias")
    )
    assert "pos" in _decayed(create_optimizer(Listed(), "sgd", weight_decay=0.1, weight_decay_filter="auto"))
    assert "pos" in _decayed(create_optimizer(Listed(), "sgd", weight_decay=0.1, weight_decay_filter="disable"))


def test_contradicting_or_unknown_filters_raise_one_line_errors():
    with pytest.raises(ConfigError, match=r"weight_decay_filter='disable' contradicts filter_bias_and_bn=True"):
        create_optimizer(tiny_net(), "sgd", weight_decay=0.1, weight_decay_filter="disable", filter_bias_and_bn=True)
    with pytest.raises(ConfigError, match="contradicts"):
        create_optimizer(tiny_net(), "sgd", weight_decay=0.1, weight_decay_filter="auto", filter_bias_and_bn=False)
    with pytest.raises(
        UnknownNameError, match=r"unknown weight_decay_filter 'norm_bias'; choose one of: norm_and_bias"
    ):
        create_optimizer(tiny_net(), "sgd", weight_decay=0.1, weight_decay_filter="norm_bias")


@pytest.fixture(scope="module")
def res2net():
    ms.set_seed(0)
    return create_model("res2net50", num_classes=3)


def _expected_layer(name: str) -> int:
    for k in range(1, 5):
        if name.startswith(f"layer{k}."):
            return k
    return 5 if name.startswith("classifier.") else 0


def test_res2net_layer_ids_are_stem_stages_head(res2net):
    ids = param_layer_ids(res2net)
    assert list(ids) == [p.name for p in res2net.trainable_params()]
    assert ids == {name: _expected_layer(name) for name in ids}
    assert {ids["conv1.weight"], ids["bn1.gamma"], ids["classifier.weight"]} == {0, 5}
    assert sorted(set(ids.values())) == [0, 1, 2, 3, 4, 5]


def test_layer_decay_scales_each_group_lr(res2net):
    ld, lr = 0.5, 0.1
    opt = create_optimizer(res2net, "adamw", lr=lr, weight_decay=0.05, layer_decay=ld)
    assert opt.is_group_lr
    lrs = [float(v.asnumpy()) for v in opt.get_lr()]
    assert [p.name for p in opt.parameters] == [p.name for p in res2net.trainable_params()]
    for p, got in zip(opt.parameters, lrs):
        assert got == pytest.approx(lr * ld ** (5 - _expected_layer(p.name)), rel=1e-6), p.name
    # the weight-decay filter still applies inside each layer group (default norm_and_bias: 1-D parameters exempt)
    assert _decayed(opt) == {p.name for p in res2net.trainable_params() if len(p.shape) > 1}


def test_layer_decay_scales_a_schedule(res2net):
    schedule = np.array([0.4, 0.2, 0.1], np.float32)
    opt = create_optimizer(res2net, "sgd", lr=schedule, momentum=0.9, layer_decay=0.5, weight_decay_filter="disable")
    first = {p.name: float(v.asnumpy()) for p, v in zip(opt.parameters, opt.get_lr())}
    assert first["classifier.weight"] == pytest.approx(0.4)
    assert first["layer4.0.conv1.weight"] == pytest.approx(0.2)
    assert first["conv1.weight"] == pytest.approx(0.4 * 0.5**5)
    opt.global_step.set_data(Tensor([2], ms.int32))
    third = {p.name: float(v.asnumpy()) for p, v in zip(opt.parameters, opt.get_lr())}
    assert third["layer2.0.conv1.weight"] == pytest.approx(0.1 * 0.5**3)


def test_layer_decay_bad_inputs(res2net):
    with pytest.raises(ConfigError, match="layer_decay needs the model itself"):
        create_optimizer(res2net.trainable_params(), "sgd", layer_decay=0.75)
    with pytest.raises(ConfigError, match="feature_info"):
        create_optimizer(tiny_net(), "sgd", layer_decay=0.75)
    with pytest.raises(ConfigError, match="positive factor"):
        create_optimizer(res2net, "sgd", layer_decay=0.0)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
@pytest.mark.parametrize("loss_scale", [0.25, 64.0])
def test_adamw_loss_scale_divides_the_gradients(mode, loss_scale):
    # adamw(loss_scale=S) fed S * g must make the same updates, and keep the same state, as adamw fed g.
    ms.set_context(mode=mode)
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(3)]
    results = []
    for scale in (1.0, loss_scale):
        w = Parameter(Tensor(w0.copy()), name="weight")
        opt = create_optimizer([w], "adamw", lr=0.05, weight_decay=0.1, loss_scale=scale)
        assert isinstance(opt, AdamWeightDecay) and isinstance(opt, nn.AdamWeightDecay)
        for g in grads:
            opt((Tensor(g * scale),))
        results.append((w.asnumpy(), opt.moments1[0].asnumpy(), opt.moments2[0].asnumpy()))
        assert int(opt.global_step.asnumpy()[0]) == len(grads)
    for plain, scaled in zip(*results):
        np.testing.assert_allclose(scaled, plain, rtol=1e-5, atol=1e-7)
    assert not np.allclose(results[0][0], w0), "the updates happened"


def test_adamw_loss_scale_must_be_positive():
    with pytest.raises(ConfigError, match="loss_scale"):
        create_optimizer(tiny_net(), "adamw", loss_scale=-1.0)
    with pytest.raises(ConfigError, match="loss_scale"):
        AdamWeightDecay(tiny_net().trainable_params(), loss_scale=0)


def test_signature_is_upstreams_then_ours():
    upstream = [
        "model_or_params", "opt", "lr", "weight_decay", "momentum", "nesterov", "weight_decay_filter",
        "layer_decay", "loss_scale", "schedule_decay", "checkpoint_path", "eps",
    ]  # fmt: skip
    names = list(inspect.signature(create_optimizer).parameters)
    assert names[: len(upstream)] == upstream
    assert names[len(upstream) :] == ["filter_bias_and_bn", "betas", "trust_coefficient", "fused"]
    # positional, as upstream code calls it: ... weight_decay_filter, layer_decay, loss_scale
    opt = create_optimizer(tiny_net(), "sgd", 0.1, 0.1, 0.9, False, "auto", None, 2.0)
    assert _decayed(opt) == _WEIGHTS | _BIASES and opt.loss_scale == 2.0
    with pytest.raises(ConfigError, match="schedule_decay"):
        create_optimizer(tiny_net(), "adam", schedule_decay=0.01)


def test_checkpoint_path_restores_the_optimizer_state(tmp_path):
    net = tiny_net()
    opt = create_optimizer(net, "adamw", lr=0.05, weight_decay=0.01)
    for _ in range(2):
        opt(tuple(ms.ops.ones_like(p) for p in opt.parameters))
    path = str(tmp_path / "opt.ckpt")
    ms.save_checkpoint(opt, path)
    restored = create_optimizer(net, "adamw", lr=0.05, weight_decay=0.01, checkpoint_path=path)
    assert int(restored.global_step.asnumpy()[0]) == 2
    for a, b in zip(opt.moments1, restored.moments1):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    with pytest.raises(CheckpointError, match="does not exist"):
        create_optimizer(net, "adamw", checkpoint_path=str(tmp_path / "missing.ckpt"))
    with pytest.raises(CheckpointError, match="lacks"):
        create_optimizer(net, "momentum", lr=0.1, checkpoint_path=path)  # moments.* are not in an adamw file


def test_bad_parameter_groups_name_the_entry():
    params = tiny_net().trainable_params()
    with pytest.raises(ConfigError, match=r"parameter group 0 holds 'test' \(str\)"):
        create_optimizer([{"params": params[:2] + ["test"]}, {"params": params[2:]}], "momentum")
    with pytest.raises(ConfigError, match=r"got 1 \(int\) among the parameters"):
        create_optimizer(params[:1] + [1], "sgd")


def test_optimizer_kwargs_passes_the_upstream_filter_and_layer_decay():
    assert optimizer_kwargs(SimpleNamespace(weight_decay_filter="auto")) == dict(weight_decay_filter="auto")
    assert optimizer_kwargs(SimpleNamespace(weight_decay_filter="norm_and_bias")) == dict(filter_bias_and_bn=True)
    assert optimizer_kwargs(SimpleNamespace(layer_decay=0.65)) == dict(layer_decay=0.65)
    assert optimizer_kwargs(SimpleNamespace(layer_decay=None)) == {}
