"""Registry and create_model behaviour: strictness, suggestions, filters and argument handling."""

import sys

import pytest

import mindcv
from mindcv.errors import ConfigError, UnknownNameError
from mindcv.models import (
    create_model,
    get_pretrained_cfg,
    is_model,
    is_model_pretrained,
    list_models,
    list_modules,
    model_entrypoint,
    register_model,
    registry,
    res2net,
)


def test_every_entrypoint_has_cfg_and_vice_versa():
    # default_cfgs keys are "<model>.<tag>" per weight source, or the bare name of a model without weights.
    assert sorted(res2net.default_cfgs) == sorted(list_models(module="res2net", include_tags=True))
    assert sorted({k.split(".")[0] for k in res2net.default_cfgs}) == sorted(list_models(module="res2net"))
    for name in list_models():
        assert name in res2net.__all__ and name in mindcv.models.__all__
        assert callable(model_entrypoint(name)) and is_model(name)


def test_list_models_filters():
    assert list_models("res2net50*")[:2] == ["res2net50", "res2net50_14w_8s"]
    assert list_models(["res2next*", "res2net152*"]) == ["res2net152", "res2net152_v1b", "res2next50"]
    assert "res2net50_v1b" not in list_models("res2net*", exclude_filters="*_v1b")
    assert list_models("res2net50*", pretrained=True)[:2] == ["res2net50.mindcv_in1k", "res2net50.timm_in1k"]
    assert list_models(pretrained=True, include_tags=False) == [
        "res2net50", "res2net50_14w_8s", "res2net50_26w_6s", "res2net50_26w_8s", "res2net50_48w_2s", "res2net50_v1b",
        "res2net101", "res2net101_v1b", "res2next50",
    ]  # fmt: skip
    assert list_modules() == ["res2net"]
    assert list_models(module="nope") == []
    assert list_models()[:1] == ["res2net50"]  # natural order: 50 < 101 < 152


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_model(res2net.res2net50)


def test_registration_needs_cfg():
    mod = sys.modules[__name__]

    def not_in_cfgs(pretrained=False, **kwargs):
        return None

    mod.default_cfgs = {}
    try:
        with pytest.raises(ValueError, match="default_cfgs"):
            register_model(not_in_cfgs)
    finally:
        del mod.default_cfgs
    assert not is_model("not_in_cfgs")


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownNameError, match="did you mean: res2net50") as e:
        create_model("res2net_50")
    assert "\n" not in str(e.value)
    with pytest.raises(UnknownNameError, match="registered models: res2net50"):
        create_model("vit_base")
    with pytest.raises(UnknownNameError):
        get_pretrained_cfg("resnet2")


def test_pretrained_and_checkpoint_path_exclusive():
    with pytest.raises(ConfigError, match="use one of them"):
        create_model("res2net50", pretrained=True, checkpoint_path="x.ckpt")


def test_pretrained_without_weights_raises():
    assert not is_model_pretrained("res2net152")
    with pytest.raises(ConfigError, match="no pretrained weights are published for 'res2net152'.*res2net50"):
        create_model("res2net152", pretrained=True)


def test_none_kwargs_are_ignored_and_unknown_kwargs_raise():
    model = create_model("res2next50", num_classes=None, drop_rate=None, in_channels=None, checkpoint_path=None)
    assert model.num_classes == 1000 and model.drop_rate == 0.0
    with pytest.raises(TypeError, match="drop_ratio"):
        create_model("res2next50", drop_ratio=0.1)


def test_pretrained_cfg_is_a_copy():
    cfg = get_pretrained_cfg("res2net50")
    cfg["url"] = ""
    assert is_model_pretrained("res2net50")
    assert registry.get_module_name("res2net50") == "res2net"
