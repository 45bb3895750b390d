"""Learning-rate schedules: every registered schedule's shape, warm-up, floor and monotonic sections, and known values
computed here from the formulas, independently of the implementation."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from mindcv.errors import ConfigError, UnknownNameError
from mindcv.scheduler import create_scheduler, list_schedulers, scheduler_kwargs, scheduler_lr_at

SPE = 5  # steps per epoch
EPOCHS = 12
LR = 0.4
MIN_LR = 0.01


def _kwargs(name: str) -> dict:
    """Arguments valid for every schedule; the schedule-specific ones are ignored by the others."""
    return dict(
        scheduler=name,
        lr=LR,
        min_lr=MIN_LR,
        warmup_epochs=0 if name == "one_cycle" else 2,
        warmup_factor=0.1,
        decay_epochs=3 if name == "step_decay" else None,
        decay_rate=0.5,
        milestones=[4, 8],
        num_epochs=EPOCHS,
    )


@pytest.mark.parametrize("name", list_schedulers())
def test_shape_range_and_lookup(name):
    lrs = create_scheduler(SPE, **_kwargs(name))
    assert lrs.shape == (EPOCHS * SPE,) and lrs.dtype == np.float32
    assert np.all(np.isfinite(lrs))
    assert lrs.max() <= LR * (1 + 1e-6)
    if name != "constant":
        assert lrs.min() >= MIN_LR * (1 - 1e-6), "decaying schedules are floored at min_lr"
    steps = np.array([0, 3, 17, 33, EPOCHS * SPE - 1])
    np.testing.assert_allclose(scheduler_lr_at(steps, SPE, **_kwargs(name)), lrs[steps], rtol=1e-6)
    assert scheduler_lr_at(17, SPE, **_kwargs(name)) == pytest.approx(float(lrs[17]))


@pytest.mark.parametrize("name", [n for n in list_schedulers() if n != "one_cycle"])
def test_linear_warmup_then_non_increasing(name):
    kw = _kwargs(name)
    lrs = create_scheduler(SPE, **kw).astype(np.float64)
    warm = kw["warmup_epochs"] * SPE
    t = np.arange(warm) / SPE
    expected = LR * (kw["warmup_factor"] + (1 - kw["warmup_factor"]) * t / kw["warmup_epochs"])
    np.testing.assert_allclose(lrs[:warm], expected, rtol=1e-6)
    assert lrs[warm] == pytest.approx(LR, rel=1e-6), "the warm-up ends exactly at the peak"
    assert np.all(np.diff(lrs[warm:]) <= 1e-9), "after the warm-up the rate never increases"


def test_one_cycle_rises_then_falls():
    lrs = create_scheduler(SPE, **_kwargs("one_cycle")).astype(np.float64)
    peak = int(0.3 * EPOCHS * SPE) - 1  # OneCycleLR peaks at update pct * T - 1
    assert lrs[0] == pytest.approx(LR / 25, rel=1e-6)
    assert lrs[peak] == pytest.approx(LR, rel=1e-6) and lrs.argmax() == peak
    assert np.all(np.diff(lrs[: peak + 1]) >= -1e-9) and np.all(np.diff(lrs[peak:]) <= 1e-9)
    assert lrs[-1] == pytest.approx(MIN_LR, rel=1e-5), "the last update runs at min_lr"


@pytest.mark.parametrize("spe,epochs", [(SPE, EPOCHS), (7, 3), (1, 10)])
def test_one_cycle_equals_torch_one_cycle_lr_step_for_step(spe, epochs):
    torch = pytest.importorskip("torch")
    total = spe * epochs
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR, total_steps=total, div_factor=25.0, final_div_factor=LR / 25.0 / MIN_LR
    )
    theirs = []
    for _ in range(total):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = create_scheduler(spe, **dict(_kwargs("one_cycle"), num_epochs=epochs))
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5)


def test_warmup_longer_than_the_run_is_clamped_with_a_warning(caplog):
    kw = dict(_kwargs("cosine_decay"), warmup_epochs=3, num_epochs=1)
    with caplog.at_level("WARNING", logger="mindcv"):
        lrs = create_scheduler(SPE, **kw)
    assert "longer than the run" in caplog.text
    expected = LR * (0.1 + 0.9 * np.arange(SPE) / SPE)  # the warm-up spans the one epoch
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)


def _at(name: str, epoch: float, **overrides) -> float:
    step = epoch * SPE
    assert step == int(step), "pick epochs that fall on a step"
    return float(create_scheduler(SPE, **dict(_kwargs(name), **overrides))[int(step)])


def test_known_values():
    # cosine: half-way through the 10 post-warm-up epochs is the midpoint of lr and min_lr
    assert _at("cosine_decay", 2 + 5) == pytest.approx((LR + MIN_LR) / 2, rel=1e-5)
    assert _at("cosine_decay", 2 + 2) == pytest.approx(MIN_LR + 0.5 * (LR - MIN_LR) * (1 + math.cos(math.pi / 5)))
    # polynomial with power 1 is linear from lr to min_lr over the 10 post-warm-up epochs
    assert _at("polynomial_decay", 2 + 4, decay_rate=1.0) == pytest.approx(LR - 0.4 * (LR - MIN_LR), rel=1e-5)
    # exponential: decay_rate per epoch after the warm-up
    assert _at("exponential_decay", 2 + 3) == pytest.approx(LR * 0.5**3, rel=1e-5)
    # step: decay_rate every 3 epochs counted from the start of training
    assert _at("step_decay", 2.8) == pytest.approx(LR, rel=1e-5)
    assert _at("step_decay", 3) == pytest.approx(LR * 0.5, rel=1e-5)
    assert _at("step_decay", 6.2) == pytest.approx(LR * 0.25, rel=1e-5)
    # multi-step: milestones 4 and 8 (absolute epochs)
    assert _at("multi_step_decay", 3.8) == pytest.approx(LR, rel=1e-5)
    assert _at("multi_step_decay", 4) == pytest.approx(LR * 0.5, rel=1e-5)
    assert _at("multi_step_decay", 8) == pytest.approx(LR * 0.25, rel=1e-5)
    assert _at("constant", 11) == pytest.approx(LR)


def test_cosine_decay_epochs_and_cycles():
    # 2 cycles of 4 epochs after a 2-epoch warm-up, the second at half the peak, then min_lr
    kw = dict(decay_epochs=4, num_cycles=2, cycle_decay=0.5)
    assert _at("cosine_decay", 2 + 2, **kw) == pytest.approx((LR + MIN_LR) / 2, rel=1e-5)
    assert _at("cosine_decay", 2 + 4, **kw) == pytest.approx(LR * 0.5, rel=1e-5), "restart at the decayed peak"
    assert _at("cosine_decay", 2 + 6, **kw) == pytest.approx((LR * 0.5 + MIN_LR) / 2, rel=1e-5)
    assert _at("cosine_decay", 2 + 8.2, **kw) == pytest.approx(MIN_LR, rel=1e-5)


def test_epoch_stair_is_constant_within_an_epoch():
    lrs = create_scheduler(SPE, **dict(_kwargs("cosine_decay"), lr_epoch_stair=True)).reshape(EPOCHS, SPE)
    assert np.all(lrs == lrs[:, :1])
    smooth = create_scheduler(SPE, **_kwargs("cosine_decay")).reshape(EPOCHS, SPE)
    np.testing.assert_allclose(lrs[:, 0], smooth[:, 0], rtol=1e-6)  # the stair takes the value at the epoch start


def test_unknown_scheduler_lists_close_matches_first():
    with pytest.raises(UnknownNameError, match=r"'cosine'; choose one of: cosine_decay"):
        create_scheduler(SPE, "cosine")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(scheduler="one_cycle", warmup_epochs=1), "warmup_epochs 0"),
        (dict(scheduler="multi_step_decay", milestones=None), "milestones"),
        (dict(scheduler="multi_step_decay", milestones=[5, 3]), "increasing"),
        (dict(scheduler="step_decay", decay_epochs=None), "decay_epochs"),
        (dict(scheduler="cosine_decay", min_lr=1.0), "min_lr"),
        (dict(scheduler="cosine_decay", warmup_epochs=-1), "warmup_epochs"),
    ],
)
def test_bad_arguments_raise_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        create_scheduler(SPE, **dict(_kwargs(overrides["scheduler"]), **overrides))


def test_scheduler_kwargs_maps_upstream_flag_names():
    cfg = SimpleNamespace(scheduler="multi_step_decay", lr=0.1, epoch_size=7, multi_step_decay_milestones=[2, 4])
    kw = scheduler_kwargs(cfg)
    assert kw == dict(scheduler="multi_step_decay", lr=0.1, num_epochs=7, milestones=[2, 4])
    assert create_scheduler(3, **dict(kw, warmup_epochs=0)).shape == (21,)
