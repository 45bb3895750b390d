"""Upstream MindCV's mindcv.scheduler.dynamic_lr: every function against values worked out by hand here, bad
arguments, PyTorch's schedulers where torch is installed, and create_scheduler built on the same curves."""

import inspect
import math

import numpy as np
import pytest

from mindcv.errors import ConfigError
from mindcv.scheduler import create_scheduler, dynamic_lr

C45 = 0.5 * (1 + math.cos(math.pi / 4))  # a half-cosine from 1 to 0, a quarter of the way
C135 = 0.5 * (1 + math.cos(3 * math.pi / 4))  # ... three quarters of the way


# fmt: off
@pytest.mark.parametrize("name, args, kwargs, expected", [
    ("constant_lr", (0.5, 2), dict(lr=0.1, steps_per_epoch=2, epochs=3), [0.05, 0.05, 0.05, 0.05, 0.1, 0.1]),
    ("linear_lr", (0.25, 1.0, 2), dict(lr=0.4, steps_per_epoch=2, epochs=3), [0.1, 0.1, 0.25, 0.25, 0.4, 0.4]),
    ("linear_refined_lr", (0.25, 1.0, 2), dict(lr=0.4, steps_per_epoch=2, epochs=3),
     [0.1, 0.175, 0.25, 0.325, 0.4, 0.4]),
    ("polynomial_lr", (2, 2.0), dict(lr=0.8, steps_per_epoch=1, epochs=4), [0.8, 0.2, 0.0, 0.0]),
    ("polynomial_refined_lr", (2, 2.0), dict(lr=0.8, steps_per_epoch=2, epochs=2), [0.8, 0.45, 0.2, 0.05]),
    ("exponential_lr", (0.5,), dict(lr=1.0, steps_per_epoch=2, epochs=3), [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]),
    ("exponential_refined_lr", (0.25,), dict(lr=1.0, steps_per_epoch=2, epochs=2), [1.0, 0.5, 0.25, 0.125]),
    ("step_lr", (2, 0.1), dict(lr=1.0, steps_per_epoch=1, epochs=5), [1.0, 1.0, 0.1, 0.1, 0.01]),
    ("multi_step_lr", ([3, 1], 0.5), dict(lr=1.0, steps_per_epoch=1, epochs=4), [1.0, 0.5, 0.5, 0.25]),
    ("multi_step_lr", ([2, 2], 0.5), dict(lr=1.0, steps_per_epoch=1, epochs=3), [1.0, 1.0, 0.25]),
    ("cosine_decay_lr", (2, 0.0), dict(eta_max=1.0, steps_per_epoch=2, epochs=5, num_cycles=2, cycle_decay=0.5),
     [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.0, 0.0]),
    ("cosine_decay_refined_lr", (2, 0.1), dict(eta_max=1.1, steps_per_epoch=2, epochs=3),
     [1.1, 0.1 + C45, 0.6, 0.1 + C135, 0.1, 0.1]),
    ("cosine_annealing_lr", (2, 0.0), dict(eta_max=1.0, steps_per_epoch=1, epochs=5), [1.0, 0.5, 0.0, 0.5, 1.0]),
    # periods of 1 then 2 epochs, changing every update
    ("cosine_annealing_warm_restarts_lr", (1, 2, 0.0), dict(eta_max=1.0, steps_per_epoch=2, epochs=3),
     [1.0, 0.5, 1.0, C45, 0.5, C135]),
    # 10 updates: rise over updates 0..2 (0.3 * 10 - 1), fall to 1 / 4 / 2 over updates 2..9
    ("one_cycle_lr", (1.0, 0.3, "linear", 4.0, 2.0, False), dict(steps_per_epoch=5, epochs=2),
     [0.25, 0.625, 1.0] + [1.0 - (1.0 - 0.125) * k / 7 for k in range(1, 8)]),
    ("one_cycle_lr", (1.0, 0.3, "cos", 4.0, 2.0, False), dict(steps_per_epoch=5, epochs=2),
     [0.25, 0.25 + 0.75 * 0.5, 1.0] + [0.125 + 0.875 * 0.5 * (1 + math.cos(math.pi * k / 7)) for k in range(1, 8)]),
    # triangles of 2 updates up and 1 down between 0 and 1
    ("cyclic_lr", (0.0, 1.0, 2, 1, "triangular"), dict(steps_per_epoch=3, epochs=2), [0.0, 0.5, 1.0, 0.0, 0.5, 1.0]),
    ("cyclic_lr", (0.0, 1.0, 2, 1, "triangular2"), dict(steps_per_epoch=3, epochs=2),
     [0.0, 0.5, 1.0, 0.0, 0.25, 0.5]),
    ("cyclic_lr", (0.0, 1.0, 2, 1, "exp_range", 0.5), dict(steps_per_epoch=3, epochs=2),
     [0.0, 0.25, 0.25, 0.0, 0.5 * 0.5**4, 0.5**5]),
    ("cyclic_lr", (0.0, 1.0, 2, 1, "triangular", 1.0, lambda cycle: 1.0 / cycle, "cycle"),
     dict(steps_per_epoch=3, epochs=2), [0.0, 0.5, 1.0, 0.0, 0.25, 0.5]),
])
# fmt: on
def test_dynamic_lr_hand_computed(name, args, kwargs, expected):
    lrs = getattr(dynamic_lr, name)(*args, **kwargs)
    assert isinstance(lrs, list) and all(isinstance(v, float) for v in lrs)
    np.testing.assert_allclose(lrs, expected, rtol=1e-12, atol=1e-12)


def test_the_module_has_upstreams_functions():
    upstream = {
        "constant_lr", "linear_lr", "linear_refined_lr", "polynomial_lr", "polynomial_refined_lr", "exponential_lr",
        "exponential_refined_lr", "step_lr", "multi_step_lr", "cosine_decay_lr", "cosine_decay_refined_lr",
        "cosine_annealing_lr", "cosine_annealing_warm_restarts_lr", "one_cycle_lr", "cyclic_lr",
    }  # fmt: skip
    assert set(dynamic_lr.__all__) == upstream
    assert list(inspect.signature(dynamic_lr.one_cycle_lr).parameters) == [
        "max_lr", "pct_start", "anneal_strategy", "div_factor", "final_div_factor", "three_phase",
        "steps_per_epoch", "epochs",
    ]  # fmt: skip
    assert dynamic_lr.step_lr(1, 0.5, lr=1.0, steps_per_epoch=3, epochs=0) == []


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: dynamic_lr.step_lr(0, 0.5, lr=1.0, steps_per_epoch=2, epochs=2), "step_size must be positive"),
        (lambda: dynamic_lr.step_lr(2, 0.5, lr=1.0, steps_per_epoch=0, epochs=2), "steps_per_epoch"),
        (lambda: dynamic_lr.linear_lr(0.1, 1.0, 2, lr=1.0, steps_per_epoch=2, epochs=2.5), "epochs"),
        (lambda: dynamic_lr.constant_lr(2.0, 1, lr=1.0, steps_per_epoch=1, epochs=2), r"factor must be in \[0, 1\]"),
        (lambda: dynamic_lr.polynomial_lr(0, 1.0, lr=1.0, steps_per_epoch=1, epochs=2), "total_iters"),
        (lambda: dynamic_lr.cosine_annealing_lr(0, 0.0, eta_max=1.0, steps_per_epoch=1, epochs=2), "t_max"),
        (
            lambda: dynamic_lr.cosine_decay_lr(2, 0.0, eta_max=1.0, steps_per_epoch=1, epochs=2, num_cycles=0),
            "num_cycles",
        ),
        (
            lambda: dynamic_lr.cosine_annealing_warm_restarts_lr(1.5, 2, 0.0, eta_max=1.0, steps_per_epoch=1, epochs=2),
            "te must be a positive integer",
        ),
        (
            lambda: dynamic_lr.one_cycle_lr(1.0, anneal_strategy="cosine", steps_per_epoch=2, epochs=2),
            "anneal_strategy must be 'cos' or 'linear'",
        ),
        (lambda: dynamic_lr.one_cycle_lr(1.0, pct_start=1.5, steps_per_epoch=2, epochs=2), "pct_start"),
        (lambda: dynamic_lr.cyclic_lr(0.0, 1.0, mode="triangle", steps_per_epoch=2, epochs=2), "mode must be"),
        (lambda: dynamic_lr.cyclic_lr(0.0, 1.0, 0, steps_per_epoch=2, epochs=2), "step_size_up"),
    ],
)
def test_bad_arguments_are_one_line_config_errors(call, message):
    with pytest.raises(ConfigError, match=message) as info:
        call()
    assert "\n" not in str(info.value) and str(info.value).split(":")[0].endswith("_lr")


def _torch_lrs(make, total):
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0, momentum=0.9)
    sched = make(torch.optim.lr_scheduler, opt)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize(
    "ours, make",
    [
        (
            lambda: dynamic_lr.one_cycle_lr(2.0, 0.25, "linear", 10.0, 100.0, True, steps_per_epoch=7, epochs=3),
            lambda s, o: s.OneCycleLR(o, 2.0, total_steps=21, pct_start=0.25, anneal_strategy="linear",
                                      div_factor=10.0, final_div_factor=100.0, three_phase=True),
        ),
        (
            lambda: dynamic_lr.cyclic_lr(0.1, 1.0, 3, 5, "triangular2", steps_per_epoch=6, epochs=4),
            lambda s, o: s.CyclicLR(o, 0.1, 1.0, 3, 5, "triangular2"),
        ),
        (
            lambda: dynamic_lr.cyclic_lr(0.1, 1.0, 4, None, "exp_range", 0.9, steps_per_epoch=6, epochs=4),
            lambda s, o: s.CyclicLR(o, 0.1, 1.0, 4, None, "exp_range", 0.9),
        ),
        (
            lambda: dynamic_lr.cosine_annealing_warm_restarts_lr(2, 3, 0.05, eta_max=1.0, steps_per_epoch=1, epochs=11),
            lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=3, eta_min=0.05),
        ),
        (
            lambda: dynamic_lr.multi_step_lr([2, 5, 5], 0.3, lr=1.0, steps_per_epoch=1, epochs=8),
            lambda s, o: s.MultiStepLR(o, [2, 5, 5], 0.3),
        ),
    ],
    ids=["one_cycle_three_phase_linear", "cyclic_triangular2", "cyclic_exp_range", "warm_restarts", "multi_step"],
)  # fmt: skip
def test_equals_torch_step_for_step(ours, make):
    lrs = ours()
    np.testing.assert_allclose(lrs, _torch_lrs(make, len(lrs)), rtol=1e-6, atol=1e-9)


SPE, EPOCHS, LR, MIN_LR = 4, 9, 0.4, 0.01


def _ours(scheduler, **kwargs):
    kw = dict(scheduler=scheduler, lr=LR, min_lr=MIN_LR, warmup_epochs=0, num_epochs=EPOCHS, **kwargs)
    return create_scheduler(SPE, **kw)


@pytest.mark.parametrize("stair", [False, True])
def test_create_scheduler_is_built_on_the_same_curves(stair):
    """Where upstream's create_scheduler and ours mean the same thing, the values are the dynamic_lr ones."""
    common = dict(steps_per_epoch=SPE, epochs=EPOCHS)
    cosine = dynamic_lr.cosine_decay_lr if stair else dynamic_lr.cosine_decay_refined_lr
    pairs = [
        (
            _ours("cosine_decay", decay_epochs=3, num_cycles=2, cycle_decay=0.5, lr_epoch_stair=stair),
            cosine(3, MIN_LR, eta_max=LR, num_cycles=2, cycle_decay=0.5, **common),
        ),
        (_ours("step_decay", decay_epochs=2, decay_rate=0.5), dynamic_lr.step_lr(2, 0.5, lr=LR, **common)),
        (
            _ours("multi_step_decay", milestones=[3, 6], decay_rate=0.5),
            dynamic_lr.multi_step_lr([3, 6], 0.5, lr=LR, **common),
        ),
        (
            _ours("one_cycle"),
            dynamic_lr.one_cycle_lr(LR, final_div_factor=LR / 25 / MIN_LR, **common),
        ),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    exponential = dynamic_lr.exponential_lr if stair else dynamic_lr.exponential_refined_lr
    np.testing.assert_allclose(
        create_scheduler(SPE, "exponential_decay", LR, 0.0, 0, decay_rate=0.7, num_epochs=EPOCHS, lr_epoch_stair=stair),
        exponential(0.7, lr=LR, **common),
        rtol=1e-6,
    )
    polynomial = dynamic_lr.polynomial_lr if stair else dynamic_lr.polynomial_refined_lr
    np.testing.assert_allclose(
        create_scheduler(SPE, "polynomial_decay", LR, 0.0, 0, decay_rate=2.0, num_epochs=EPOCHS, lr_epoch_stair=stair),
        polynomial(EPOCHS, 2.0, lr=LR, **common),
        rtol=1e-6,
        atol=1e-9,
    )


@pytest.mark.parametrize("stair", [False, True])
def test_warmup_is_linear_lr(stair):
    warm = 3
    lrs = create_scheduler(SPE, "constant", LR, 0.0, warm, 0.1, num_epochs=EPOCHS, lr_epoch_stair=stair)
    linear = dynamic_lr.linear_lr if stair else dynamic_lr.linear_refined_lr
    expected = linear(0.1, 1.0, warm, lr=LR, steps_per_epoch=SPE, epochs=warm) + [LR] * (SPE * (EPOCHS - warm))
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)


def test_create_scheduler_signature_is_upstreams():
    assert list(inspect.signature(create_scheduler).parameters) == [
        "steps_per_epoch", "scheduler", "lr", "min_lr", "warmup_epochs", "warmup_factor", "decay_epochs",
        "decay_rate", "milestones", "num_epochs", "num_cycles", "cycle_decay", "lr_epoch_stair",
    ]  # fmt: skip
    lrs = create_scheduler(2, "step_decay", 0.1, 1e-6, 0, 0.0, 2, 0.5, None, 4)  # upstream's positional order
    assert len(lrs) == 8 and list(lrs[::2]) == pytest.approx([0.1, 0.1, 0.05, 0.05])
