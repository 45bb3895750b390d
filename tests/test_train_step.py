"""TrainStep and EMA: both modes, loss scaling, overflow skipping and reporting, clipping, accumulation, EMA math, AMP
and exact resume from the checkpointed state."""

import numpy as np
import pytest
from tinynet import tiny_batch, tiny_net

import mindspore as ms
from mindspore import Tensor, nn

from mindcv.engine.ema import EMA, ema_to_network_names
from mindcv.engine.train_step import TrainStep
from mindcv.errors import ConfigError
from mindcv.loss import create_loss
from mindcv.optim import create_optimizer


def _weights(net: nn.Cell) -> dict:
    return {p.name: p.asnumpy().copy() for p in net.get_parameters()}


def _step(net, opt_name="momentum", lr=0.1, **kwargs) -> TrainStep:
    return TrainStep(net, create_loss("CE"), create_optimizer(net, opt_name, lr=lr, weight_decay=1e-4), **kwargs)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_loss_decreases(mode):
    ms.set_context(mode=mode)
    step = _step(tiny_net())
    x, y = tiny_batch()
    losses = []
    for _ in range(6):
        loss, overflow = step(x, y)
        assert isinstance(loss, Tensor) and isinstance(overflow, Tensor)
        assert not bool(overflow.asnumpy())
        losses.append(float(loss.asnumpy()))
    assert losses[-1] < 0.5 * losses[0], losses
    assert int(step.global_step.asnumpy()[0]) == 6


@pytest.mark.parametrize("check_gradients", [None, True])
def test_fp32_non_finite_step_is_skipped(check_gradients):
    """Plain fp32 checks only the loss by default (cheap); either way an inf step leaves every weight alone."""
    net = tiny_net(bn=False)
    step = _step(net, check_gradients=check_gradients)
    assert step.check_gradients is bool(check_gradients) and not step.scaled
    x, y = tiny_batch()
    before = _weights(net)
    bad = Tensor(np.where(np.arange(x.size).reshape(x.shape) == 5, np.inf, x.asnumpy()).astype(np.float32))
    _, overflow = step(bad, y)
    assert bool(overflow.asnumpy())
    for name, value in _weights(net).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    assert int(step.global_step.asnumpy()[0]) == 0
    _, overflow = step(x, y)
    assert not bool(overflow.asnumpy()) and int(step.global_step.asnumpy()[0]) == 1


def test_non_finite_step_is_applied_and_reported_without_skip():
    """skip_nonfinite=False compiles no skip branch: the update happens and `overflow` says it was bad."""
    net = tiny_net(bn=False)
    step = _step(net, skip_nonfinite=False)
    assert not step.skip_nonfinite
    x, y = tiny_batch()
    bad = Tensor(np.where(np.arange(x.size).reshape(x.shape) == 5, np.inf, x.asnumpy()).astype(np.float32))
    _, overflow = step(bad, y)
    assert bool(overflow.asnumpy())
    assert int(step.global_step.asnumpy()[0]) == 1, "the update ran"
    assert not np.isfinite(net[0].weight.asnumpy()).all(), "and wrote the non-finite gradient into the weights"


def test_gradient_check_defaults():
    assert _step(tiny_net(bn=False), loss_scale=1024.0).check_gradients
    assert _step(tiny_net(bn=False), loss_scale_type="dynamic").check_gradients
    assert not _step(tiny_net(bn=False)).check_gradients


def test_dynamic_scale_skips_overflow_and_adjusts_scale():
    # No BN here: BN statistics are updated by the forward pass before the overflow is known (as in MindSpore's own
    # loss-scale cells), and an inf input would poison them; everything the update writes must stay unchanged.
    net = tiny_net(bn=False)
    step = _step(net, loss_scale_type="dynamic", loss_scale=2.0**10, scale_factor=2, scale_window=2)
    x, y = tiny_batch()
    before = {p.name: p.asnumpy().copy() for p in step.state_parameters() if not p.name.startswith("train_step.")}
    bad = Tensor(np.where(np.arange(x.size).reshape(x.shape) == 5, np.inf, x.asnumpy()).astype(np.float32))
    _, overflow = step(bad, y)
    assert bool(overflow.asnumpy())
    for p in step.state_parameters():  # weights, moments, global_step
        if p.name in before:
            np.testing.assert_array_equal(p.asnumpy(), before[p.name], err_msg=p.name)
    assert float(step.loss_scale.asnumpy()) == 2.0**9, "overflow halves the scale"
    assert int(step.global_step.asnumpy()[0]) == 0, "the skipped update does not advance the optimizer"
    # two clean updates in a row (scale_window=2) double the scale again
    for expected_scale in (2.0**9, 2.0**10):
        _, overflow = step(x, y)
        assert not bool(overflow.asnumpy())
        assert float(step.loss_scale.asnumpy()) == expected_scale
    assert int(step.global_step.asnumpy()[0]) == 2


def test_fixed_scale_equals_no_scale():
    x, y = tiny_batch()
    results = []
    for scale in (1.0, 4096.0):
        net = tiny_net(bn=False)
        step = _step(net, loss_scale_type="fixed", loss_scale=scale)
        for _ in range(3):
            step(x, y)
        results.append(_weights(net))
        assert float(step.loss_scale.asnumpy()) == scale
    for name in results[0]:
        np.testing.assert_allclose(results[1][name], results[0][name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_clipping_bounds_the_global_norm():
    # plain SGD, lr=1, momentum 0, no decay: the update equals the (clipped) gradient
    x, y = tiny_batch()
    x = x * 50.0  # large activations -> large gradients
    deltas = []
    for clip in (False, True):
        net = tiny_net(bn=False)
        opt = create_optimizer(net, "sgd", lr=1.0, momentum=0.0)
        step = TrainStep(net, create_loss("CE"), opt, clip_grad=clip, clip_value=0.5)
        before = _weights(net)
        step(x, y)
        deltas.append({k: before[k] - v for k, v in _weights(net).items()})
    norms = [np.sqrt(sum(float((d**2).sum()) for d in delta.values())) for delta in deltas]
    assert norms[0] > 0.5, "the test needs gradients above the clip value"
    assert norms[1] == pytest.approx(0.5, rel=1e-4)
    for name in deltas[0]:  # same direction, scaled
        np.testing.assert_allclose(deltas[1][name], deltas[0][name] * 0.5 / norms[0], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_accumulation_equals_one_step_on_the_concatenated_batch(mode):
    ms.set_context(mode=mode)
    (x1, y1), (x2, y2) = tiny_batch(4, seed=1), tiny_batch(4, seed=2)
    whole = tiny_net(bn=False)
    _step(whole)(ms.ops.concat((x1, x2)), ms.ops.concat((y1, y2)))

    net = tiny_net(bn=False)
    step = _step(net, gradient_accumulation_steps=2)
    before = _weights(net)
    step(x1, y1)
    for name, value in _weights(net).items():
        np.testing.assert_array_equal(value, before[name], err_msg="a micro-step must not update")
    assert int(step.global_step.asnumpy()[0]) == 0
    step(x2, y2)
    assert int(step.global_step.asnumpy()[0]) == 1
    expected = _weights(whole)
    for name, value in _weights(net).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(step.accum_grads[0].asnumpy(), 0.0, err_msg="buffers are cleared after the update")


@pytest.mark.parametrize("mode, warmup_steps", [(ms.PYNATIVE_MODE, 0), (ms.GRAPH_MODE, 3)])
def test_ema_matches_numpy_and_swaps(mode, warmup_steps):
    ms.set_context(mode=mode)
    net = tiny_net()
    ema = EMA(net, decay=0.8, warmup_steps=warmup_steps)
    step = _step(net, ema=ema)
    reference = _weights(net)
    x, y = tiny_batch()
    for t in range(1, 4):
        step(x, y)
        d = 0.8 * (1 - np.exp(-t / warmup_steps)) if warmup_steps else 0.8
        reference = {k: d * v + (1 - d) * p for (k, v), p in zip(reference.items(), _weights(net).values())}
    ema_values = {p.name: p.asnumpy().copy() for p in ema.ema_parameters()}
    assert int(ema_values.pop("ema.updates")) == 3
    assert set(ema_values) == {"ema." + k for k in reference}, "BN moving statistics are averaged too"
    for name, value in reference.items():
        np.testing.assert_allclose(ema_values["ema." + name], value, rtol=1e-5, atol=1e-6, err_msg=name)

    trained = _weights(net)
    with ema.swapped():
        assert ema.is_swapped
        for name, value in _weights(net).items():
            np.testing.assert_array_equal(value, ema_values["ema." + name])
    assert not ema.is_swapped
    for name, value in _weights(net).items():
        np.testing.assert_array_equal(value, trained[name])
    assert set(ema_to_network_names({p.name: p for p in step.state_parameters()})) == set(trained)


@pytest.mark.parametrize("amp_level", ["O1", "O2", "O3"])
def test_amp_float16_runs_on_cpu(amp_level, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # O1's rewriter writes its generated code to ./rewritten_network
    step = _step(tiny_net(), amp_level=amp_level, loss_scale_type="auto", loss_scale=1024.0)
    assert step.loss_scale_type == "dynamic"
    x, y = tiny_batch()
    losses = [float(step(x, y)[0].asnumpy()) for _ in range(3)]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_resume_from_state_parameters_is_exact(tmp_path):
    """Save the full state mid-run (dynamic scale, accumulation, EMA), restore it into fresh objects, continue."""
    batches = [tiny_batch(4, seed=s) for s in range(6)]

    def build():
        net = tiny_net()
        kwargs = dict(loss_scale_type="dynamic", loss_scale=256.0, scale_window=2, gradient_accumulation_steps=2)
        return net, _step(net, opt_name="adamw", lr=0.01, ema=EMA(net, decay=0.5), **kwargs)

    net, step = build()
    for x, y in batches[:3]:  # ends mid-accumulation: the buffers hold one micro-batch
        step(x, y)
    path = str(tmp_path / "state.ckpt")
    params = step.state_parameters()
    names = [p.name for p in params]
    for expected in ("train_step.loss_scale", "train_step.accum_step", "global_step", "ema.updates"):
        assert expected in names
    ms.save_checkpoint([{"name": p.name, "data": p} for p in params], path)
    for x, y in batches[3:]:
        step(x, y)
    final = {p.name: p.asnumpy().copy() for p in step.state_parameters()}

    net2, step2 = build()
    not_loaded, _ = ms.load_param_into_net(step2, ms.load_checkpoint(path), strict_load=True)
    assert not not_loaded
    for x, y in batches[3:]:
        step2(x, y)
    for p in step2.state_parameters():
        np.testing.assert_array_equal(p.asnumpy(), final[p.name], err_msg=p.name)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(amp_level="O4"), "amp_level"),
        (dict(loss_scale_type="static"), "loss_scale_type"),
        (dict(loss_scale=0.5), "loss_scale"),
        (dict(gradient_accumulation_steps=0), "gradient_accumulation_steps"),
        (dict(clip_grad=True, clip_value=0.0), "clip_value"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _step(tiny_net(), **kwargs)


def test_puts_the_network_in_training_mode():
    net = tiny_net()
    net.set_train(False)
    _step(net)
    assert net.training and all(cell.training for _, cell in net.cells_and_names())


def test_optimizer_with_its_own_loss_scale_is_rejected():
    net = tiny_net()
    opt = create_optimizer(net, "momentum", lr=0.1, loss_scale=128.0)
    with pytest.raises(ConfigError, match="loss_scale=1.0"):
        TrainStep(net, create_loss("CE"), opt)
