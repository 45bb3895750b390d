"""The fused momentum optimizer (one C++ kernel for the whole update): same numbers as nn.Momentum in both modes,
with weight-decay groups and a schedule, inside TrainStep with EMA, accumulation and the non-finite skip; when the
factory uses it; and its build: cached, atomic, with clear errors when it cannot be built or used."""

import os
import shutil
import stat
from types import SimpleNamespace

import numpy as np
import pytest
from tinynet import tiny_batch, tiny_net

import mindspore as ms
from mindspore import Tensor, nn

from mindcv.engine.ema import EMA
from mindcv.engine.train_step import TrainStep
from mindcv.errors import ConfigError, UnknownNameError
from mindcv.loss import create_loss
from mindcv.optim import create_optimizer, optimizer_kwargs, split_weight_decay_params
from mindcv.optim.fused import FusedKernelError, FusedMomentum, build_fused_kernel
from mindcv.optim.l2_decay import Momentum

pytestmark = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX") or "g++") is None, reason="needs a C++ compiler to build the fused kernel"
)


def _state(net: nn.Cell, opt: nn.Optimizer) -> dict:
    return {p.name: p.asnumpy().copy() for p in list(net.get_parameters()) + list(opt.moments)}


def _assert_same(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
@pytest.mark.parametrize("grouped", [False, True], ids=["flat", "grouped"])
@pytest.mark.parametrize("scheduled", [False, True], ids=["constant_lr", "lr_schedule"])
def test_equals_mindspore_momentum(mode, grouped, scheduled):
    ms.set_context(mode=mode)
    lr = Tensor(np.array([0.1, 0.05, 0.02, 0.01], np.float32)) if scheduled else 0.05
    x, y = tiny_batch()
    results = []
    for cls in (FusedMomentum, nn.Momentum):
        net = tiny_net()
        params = split_weight_decay_params(net.trainable_params(), 0.2) if grouped else net.trainable_params()
        opt = cls(params, lr, 0.9, weight_decay=0.2)
        loss_fn = nn.CrossEntropyLoss()

        def forward(images, labels):
            return loss_fn(net(images), labels)

        grad_fn = ms.value_and_grad(forward, None, opt.parameters)
        for _ in range(4):
            _, grads = grad_fn(x, y)
            opt(grads)
        assert int(opt.global_step.asnumpy()[0]) == 4
        results.append(_state(net, opt))
    _assert_same(*results)
    assert all(np.abs(v).max() > 0 for k, v in results[0].items() if k.startswith("moments."))


@pytest.mark.parametrize("accumulation", [1, 2])
def test_train_step_with_ema_equals_unfused(accumulation):
    """Inside the compiled step the kernel runs after every read of the weights and before the EMA reads them."""
    ms.set_context(mode=ms.GRAPH_MODE)
    results = []
    for fused in (True, False):
        net = tiny_net()
        opt = create_optimizer(net, "momentum", lr=0.1, weight_decay=1e-3, fused=fused)
        assert isinstance(opt, FusedMomentum) is fused
        ema = EMA(net, decay=0.5)
        step = TrainStep(net, create_loss("CE"), opt, ema=ema, gradient_accumulation_steps=accumulation)
        for i in range(4):
            loss, overflow = step(*tiny_batch(seed=i))
            assert not bool(overflow.asnumpy())
        state = _state(net, opt)
        state.update({p.name: p.asnumpy().copy() for p in ema.ema_weights})
        results.append(state)
    _assert_same(*results)


def test_non_finite_step_is_skipped():
    ms.set_context(mode=ms.GRAPH_MODE)
    net = tiny_net(bn=False)  # an inf input makes the loss non-finite (BN's batch statistics would absorb it)
    opt = create_optimizer(net, "momentum", lr=0.1, weight_decay=1e-3, fused=True)
    step = TrainStep(net, create_loss("CE"), opt)
    x, y = tiny_batch()
    step(x, y)
    before = _state(net, opt)
    bad = x.asnumpy()
    bad[0, 0, 0, 0] = np.inf
    _, overflow = step(Tensor(bad), y)
    assert bool(overflow.asnumpy())
    after = _state(net, opt)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert int(step.global_step.asnumpy()[0]) == 1


def test_factory_choice():
    net = tiny_net()
    assert type(create_optimizer(net, "momentum", lr=0.1)) is FusedMomentum  # the CPU default
    assert type(create_optimizer(net, "momentum", lr=0.1, fused=False)) is Momentum
    assert type(create_optimizer(net, "momentum", lr=0.1, nesterov=True)) is not FusedMomentum
    assert type(create_optimizer(net, "sgd", lr=0.1, momentum=0.9)) is not FusedMomentum
    # State names, hence checkpoints and resume, are nn.Momentum's.
    names = [p.name for p in create_optimizer(net, "momentum", lr=0.1).get_parameters()]
    assert names == [p.name for p in create_optimizer(net, "momentum", lr=0.1, fused=False).get_parameters()]


def test_unsupported_configuration_falls_back_or_explains(caplog):
    net = tiny_net()
    params = net.trainable_params()
    groups = [{"params": params[:2], "lr": 0.01}, {"params": params[2:]}]
    with pytest.raises(FusedKernelError, match="per-group learning rates"):
        FusedMomentum(groups, 0.1, 0.9)
    with pytest.raises(ConfigError, match="per-group learning rates.*fused=False"):
        create_optimizer(groups, "momentum", lr=0.1, fused=True)
    with caplog.at_level("WARNING"):
        opt = create_optimizer(groups, "momentum", lr=0.1)
    assert type(opt) is Momentum
    assert "per-group learning rates" in caplog.text
    with pytest.raises(FusedKernelError, match="loss scale"):
        FusedMomentum(params, 0.1, 0.9, loss_scale=8.0)
    with pytest.raises(FusedKernelError, match="Nesterov"):
        FusedMomentum(params, 0.1, 0.9, use_nesterov=True)


def test_missing_compiler(monkeypatch, caplog):
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    build_fused_kernel.cache_clear()
    try:
        with pytest.raises(ConfigError, match="no C.. compiler 'no-such-compiler-here'.*install g..") as info:
            create_optimizer(tiny_net(), "momentum", lr=0.1, fused=True)
        assert "fused=False" in str(info.value)
        with caplog.at_level("WARNING"):
            assert type(create_optimizer(tiny_net(), "momentum", lr=0.1)) is Momentum
        assert "no-such-compiler-here" in caplog.text
    finally:
        build_fused_kernel.cache_clear()


def test_build_is_cached_and_leaves_no_partial_files(tmp_path):
    library = build_fused_kernel(cache_dir=str(tmp_path))
    assert os.path.dirname(library) == str(tmp_path) and os.path.isfile(library)
    mtime = os.stat(library).st_mtime_ns
    build_fused_kernel.cache_clear()
    assert build_fused_kernel(cache_dir=str(tmp_path)) == library
    assert os.stat(library).st_mtime_ns == mtime  # reused, not rebuilt
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(library)]


def test_failed_build_explains_and_leaves_nothing(tmp_path):
    fake = tmp_path / "fakecxx"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo fakecxx 1.0; exit 0; fi\n'
        "echo 'fused_momentum.cc:1: error: something is wrong' >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    cache = tmp_path / "cache"
    with pytest.raises(FusedKernelError, match="building the fused optimizer kernel failed.*something is wrong"):
        build_fused_kernel(compiler=str(fake), cache_dir=str(cache))
    assert os.listdir(cache) == []


def test_config_flag():
    assert optimizer_kwargs(SimpleNamespace(fused_optimizer="false"))["fused"] is False
    assert optimizer_kwargs(SimpleNamespace(fused_optimizer="true"))["fused"] is True
    assert optimizer_kwargs(SimpleNamespace(fused_optimizer="auto"))["fused"] is None
    with pytest.raises(UnknownNameError, match="fused_optimizer"):
        optimizer_kwargs(SimpleNamespace(fused_optimizer="yes"))


def test_unusable_cache_folder(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    with pytest.raises(FusedKernelError, match="no folder for the fused optimizer kernel"):
        build_fused_kernel(cache_dir=str(blocker / "kernels"))
