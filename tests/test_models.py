"""Every registered model, tested generically on small inputs (batch 2, 64x64, PyNative unless noted)."""

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

import mindcv
from mindcv.models import create_model, get_pretrained_cfg, list_models
from mindcv.models.res2net import Bottle2neck

MODELS = list_models()
B, H = 2, 64

# Trainable parameters with 1000 classes, from the reference definition (timm/authors).
EXPECTED_PARAMS = {
    "res2net50": 25_699_120,
    "res2net101": 45_206_688,
    "res2net152": 61_275_248,
    "res2net50_v1b": 25_718_352,
    "res2net101_v1b": 45_225_920,
    "res2net152_v1b": 61_294_480,
    "res2net50_26w_6s": 37_051_448,
    "res2net50_26w_8s": 48_403_776,
    "res2net50_48w_2s": 25_287_304,
    "res2net50_14w_8s": 25_059_816,
    "res2next50": 24_671_464,
}


def _x(channels: int = 3, size: int = H, batch: int = B, seed: int = 0) -> ms.Tensor:
    return ms.Tensor(np.random.default_rng(seed).standard_normal((batch, channels, size, size)).astype(np.float32))


def _n_params(model: nn.Cell) -> int:
    return sum(int(np.prod(p.shape)) for p in model.trainable_params())


def test_seed_models_registered():
    assert set(EXPECTED_PARAMS) <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_param_count(name):
    assert name in EXPECTED_PARAMS, f"add the reference parameter count of '{name}' to EXPECTED_PARAMS"
    assert _n_params(create_model(name)) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", MODELS)
def test_forward_contract(name):
    model = create_model(name, num_classes=10)
    model.set_train(False)
    x = _x()
    assert model.num_classes == 10
    assert model(x).shape == (B, 10)
    feats = model.forward_features(x)
    assert feats.shape == (B, model.num_features, H // 32, H // 32)
    assert model.forward_head(feats, pre_logits=True).shape == (B, model.num_features)
    assert model.get_classifier() is model.classifier
    model.reset_classifier(0)
    assert model(x).shape == (B, model.num_features)
    model.reset_classifier(5)
    assert model(x).shape == (B, 5)


@pytest.mark.parametrize("name", MODELS)
def test_in_channels_1(name):
    model = create_model(name, num_classes=10, in_channels=1)
    model.set_train(False)
    assert model(_x(channels=1)).shape == (B, 10)


@pytest.mark.parametrize("name", MODELS)
def test_cfg_names_real_parameters(name):
    cfg = get_pretrained_cfg(name)
    params = create_model(name).parameters_dict()
    assert f"{cfg['first_conv']}.weight" in params
    assert params[f"{cfg['first_conv']}.weight"].shape[1] == 3
    assert f"{cfg['classifier']}.weight" in params and f"{cfg['classifier']}.bias" in params
    for key in ("url", "num_classes", "input_size", "crop_pct", "interpolation", "mean", "std"):
        assert key in cfg


@pytest.mark.parametrize("name", MODELS)
def test_features_only(name):
    model = create_model(name, features_only=True)
    model.set_train(False)
    feats = model(_x())
    assert len(feats) == len(model.feature_info) == 5
    for f, info in zip(feats, model.feature_info):
        assert f.shape == (B, info["chs"], H // info["reduction"], H // info["reduction"])
    # out_indices selects levels; the classifier is gone and names are unchanged
    model = create_model(name, features_only=True, out_indices=(1, -1))
    assert [i["name"] for i in model.feature_info] == ["layer1", "layer4"]
    names = [p.name for p in model.get_parameters()]
    assert "layer1.0.conv1.weight" in names and not any(n.startswith("classifier") for n in names)


@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_gets_gradient(name):
    model = create_model(name, num_classes=4)
    model.set_train(True)
    loss_fn = nn.CrossEntropyLoss()
    params = model.trainable_params()
    grad_fn = ms.value_and_grad(lambda x, y: loss_fn(model(x), y), None, params)
    loss, grads = grad_fn(_x(size=32, batch=4), ms.Tensor(np.array([0, 1, 2, 3], np.int32)))
    assert np.isfinite(loss.asnumpy())
    dead = [p.name for p, g in zip(params, grads) if not np.any(g.asnumpy() != 0)]
    assert not dead, f"parameters without gradient: {dead[:5]}"


def test_mindcv_parameter_names():
    """Names (and so checkpoints) match upstream MindCV's Res2Net."""
    plain = create_model("res2net50").parameters_dict()
    for key in [
        "conv1.weight",
        "bn1.gamma",
        "bn1.beta",
        "bn1.moving_mean",
        "bn1.moving_variance",
        "layer1.0.conv1.weight",
        "layer1.0.convs.0.weight",
        "layer1.0.bns.0.gamma",
        "layer1.0.conv3.weight",
        "layer1.0.bn3.gamma",
        "layer1.0.down_sample.0.weight",
        "layer1.0.down_sample.1.gamma",
        "layer2.0.down_sample.0.weight",
        "classifier.weight",
        "classifier.bias",
    ]:
        assert key in plain, key
    v1b = create_model("res2net50_v1b").parameters_dict()
    for key in [
        "conv1.0.weight",
        "conv1.1.gamma",
        "conv1.3.weight",
        "conv1.4.moving_variance",
        "conv1.6.weight",
        "layer1.0.down_sample.0.weight",
        "layer1.0.down_sample.1.gamma",
        "layer2.0.down_sample.1.weight",
        "layer2.0.down_sample.2.gamma",
        "layer4.0.down_sample.1.weight",
    ]:
        assert key in v1b, key
    assert "layer2.0.down_sample.0.weight" not in v1b


def test_block_structure_is_exact():
    """First block of every stage, layer1 included, is the 'stage' kind with its pool; others are not."""
    model = create_model("res2net50")
    for i in range(1, 5):
        layer = getattr(model, f"layer{i}")
        assert layer[0].stage_first and layer[0].has_pool
        assert isinstance(layer[0].pool, nn.AvgPool2d)
        assert all(not blk.stage_first for blk in list(layer)[1:])
    stride2 = model.layer2[0]
    assert stride2.conv1.stride == (1, 1) and stride2.convs[0].stride == (2, 2)
    assert all(c.has_bias is False for _, c in model.cells_and_names() if isinstance(c, nn.Conv2d))


@pytest.mark.parametrize("output_stride", [8, 16])
def test_output_stride(output_stride):
    model = create_model("res2net50_v1b", num_classes=3, output_stride=output_stride)
    model.set_train(False)
    assert model.forward_features(_x()).shape == (B, 2048, H // output_stride, H // output_stride)
    assert model.feature_info[-1]["reduction"] == output_stride
    # parameter names do not depend on output_stride (checkpoints load either way)
    ref = {p.name: p.shape for p in create_model("res2net50_v1b", num_classes=3).get_parameters()}
    assert {p.name: p.shape for p in model.get_parameters()} == ref


def test_drop_path_train_only():
    ms.set_seed(0)
    model = create_model("res2net50", num_classes=5, drop_path_rate=0.5)
    blocks = [c for _, c in model.cells_and_names() if isinstance(c, Bottle2neck)]
    rates = [b.drop_path.drop_prob if hasattr(b.drop_path, "drop_prob") else 0.0 for b in blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.5) and rates == sorted(rates)
    x = _x()
    model.set_train(False)
    assert np.array_equal(model(x).asnumpy(), model(x).asnumpy())
    # With every BN frozen (eval) but drop path forced on, outputs become random: drop path acts.
    for b in blocks:
        b.drop_path.set_train(True)
    outs = [model(x).asnumpy() for _ in range(3)]
    assert not (np.allclose(outs[0], outs[1]) and np.allclose(outs[1], outs[2]))


def test_drop_rate_train_only():
    model = create_model("res2net50", num_classes=5, drop_rate=0.5)
    x = _x()
    model.set_train(False)
    assert np.array_equal(model(x).asnumpy(), model(x).asnumpy())
    model.set_train(False)
    model.dropout.set_train(True)
    assert not np.allclose(model(x).asnumpy(), model(x).asnumpy())


def test_zero_init_last():
    model = create_model("res2net50", zero_init_last=True)
    gammas = [b.bn3.gamma.asnumpy() for _, b in model.cells_and_names() if isinstance(b, Bottle2neck)]
    assert all(np.all(g == 0) for g in gammas)
    assert np.all(create_model("res2net50").layer1[0].bn3.gamma.asnumpy() == 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["res2net50_v1b", "res2next50"])
def test_graph_mode_matches_pynative(name):
    model = create_model(name, num_classes=10)
    model.set_train(False)
    x = _x(size=65)  # odd size: exercises padding and ceil-mode pooling
    eager = model(x).asnumpy()
    ms.set_context(mode=ms.GRAPH_MODE)
    graph = model(x).asnumpy()
    ms.set_context(mode=ms.PYNATIVE_MODE)
    assert np.allclose(eager, graph, rtol=1e-4, atol=1e-5), np.abs(eager - graph).max()


def test_top_level_imports():
    assert mindcv.create_model is create_model
    assert mindcv.list_models() == MODELS
    from mindcv.models import create_model as cm  # noqa: F401
