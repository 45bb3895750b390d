"""Upstream MindCV's ``mindcv.scheduler.dynamic_lr``: PyTorch's ``torch.optim.lr_scheduler`` policies as per-step lists.

Each function takes the positional arguments of its PyTorch counterpart (``StepLR(optimizer, step_size, gamma)`` is
``step_lr(step_size, gamma, ...)``) and, as keywords, what PyTorch gets from the optimizer and the training loop: the
base rate ``lr`` (``eta_max`` for the cosine policies; ``one_cycle_lr`` and ``cyclic_lr`` carry their own rates),
``steps_per_epoch`` and ``epochs``. The result is a list of ``steps_per_epoch * epochs`` floats, entry ``i`` being the
rate of update ``i``, ready for :func:`mindcv.optim.create_optimizer`.

PyTorch's epoch-wise policies change the rate once per epoch, and so do the plain functions here. The
``*_refined_lr`` variants evaluate the same curve at the fractional epoch ``step / steps_per_epoch``, so the rate
changes every update. ``cosine_annealing_warm_restarts_lr``, ``one_cycle_lr`` and ``cyclic_lr`` change every update,
as their PyTorch counterparts do when stepped once per batch.

The curves themselves are :mod:`mindcv.scheduler.curves`, shared with :func:`mindcv.scheduler.create_scheduler`.
Arguments PyTorch would reject (a non-positive period, an unknown mode) raise :class:`~mindcv.errors.ConfigError`.
"""

from typing import Callable, List, Optional, Sequence

import numpy as np

from ..errors import ConfigError
from . import curves

__all__ = [
    "constant_lr",
    "linear_lr",
    "linear_refined_lr",
    "polynomial_lr",
    "polynomial_refined_lr",
    "exponential_lr",
    "exponential_refined_lr",
    "step_lr",
    "multi_step_lr",
    "cosine_decay_lr",
    "cosine_decay_refined_lr",
    "cosine_annealing_lr",
    "cosine_annealing_warm_restarts_lr",
    "one_cycle_lr",
    "cyclic_lr",
]


def _is_int(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())


def _updates(fn: str, steps_per_epoch: int, epochs: int) -> np.ndarray:
    """The update indices ``0 .. steps_per_epoch * epochs - 1``."""
    if not _is_int(steps_per_epoch) or steps_per_epoch < 1:
        raise ConfigError(f"{fn}: steps_per_epoch must be a positive integer, got {steps_per_epoch}")
    if not _is_int(epochs) or epochs < 0:
        raise ConfigError(f"{fn}: epochs must be a non-negative integer, got {epochs}")
    return np.arange(int(steps_per_epoch) * int(epochs), dtype=np.float64)


def _positions(fn: str, steps_per_epoch: int, epochs: int, per_step: bool) -> np.ndarray:
    """Epoch position of every update: fractional with ``per_step``, else the epoch index."""
    t = _updates(fn, steps_per_epoch, epochs) / int(steps_per_epoch)
    return t if per_step else np.floor(t)


def _check(fn: str, name: str, value: float, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{fn}: {name} must be {expected}, got {value}")


def _positive(fn: str, name: str, value: float) -> None:
    _check(fn, name, value, isinstance(value, (int, float, np.number)) and value > 0, "positive")


def _non_negative(fn: str, name: str, value: float) -> None:
    _check(fn, name, value, isinstance(value, (int, float, np.number)) and value >= 0, ">= 0")


def _out(lrs: np.ndarray) -> List[float]:
    return np.asarray(lrs, dtype=np.float64).tolist()


def constant_lr(factor: float, total_iters: int, *, lr: float, steps_per_epoch: int, epochs: int) -> List[float]:
    """``lr * factor`` for the first ``total_iters`` epochs, then ``lr`` (``torch.optim.lr_scheduler.ConstantLR``)."""
    t = _positions("constant_lr", steps_per_epoch, epochs, per_step=False)
    _check("constant_lr", "factor", factor, 0 <= factor <= 1, "in [0, 1]")
    _non_negative("constant_lr", "total_iters", total_iters)
    return _out(np.where(t < total_iters, lr * factor, float(lr)))


def _linear(fn: str, start_factor, end_factor, total_iters, lr, steps_per_epoch, epochs, per_step) -> List[float]:
    t = _positions(fn, steps_per_epoch, epochs, per_step)
    _non_negative(fn, "start_factor", start_factor)
    _non_negative(fn, "end_factor", end_factor)
    _positive(fn, "total_iters", total_iters)
    return _out(curves.linear(t, lr * start_factor, lr * end_factor, total_iters))


def linear_lr(
    start_factor: float, end_factor: float, total_iters: int, *, lr: float, steps_per_epoch: int, epochs: int
) -> List[float]:
    """From ``lr * start_factor`` to ``lr * end_factor`` over ``total_iters`` epochs, per epoch
    (``torch.optim.lr_scheduler.LinearLR``)."""
    return _linear("linear_lr", start_factor, end_factor, total_iters, lr, steps_per_epoch, epochs, False)


def linear_refined_lr(
    start_factor: float, end_factor: float, total_iters: int, *, lr: float, steps_per_epoch: int, epochs: int
) -> List[float]:
    """:func:`linear_lr` changing every update."""
    return _linear("linear_refined_lr", start_factor, end_factor, total_iters, lr, steps_per_epoch, epochs, True)


def _polynomial(fn: str, total_iters, power, lr, steps_per_epoch, epochs, per_step) -> List[float]:
    t = _positions(fn, steps_per_epoch, epochs, per_step)
    _positive(fn, "total_iters", total_iters)
    _non_negative(fn, "power", power)
    return _out(curves.polynomial(t, total_iters, power, lr))


def polynomial_lr(total_iters: int, power: float, *, lr: float, steps_per_epoch: int, epochs: int) -> List[float]:
    """``lr * (1 - epoch / total_iters) ** power``, then 0 (``torch.optim.lr_scheduler.PolynomialLR``)."""
    return _polynomial("polynomial_lr", total_iters, power, lr, steps_per_epoch, epochs, False)


def polynomial_refined_lr(
    total_iters: int, power: float, *, lr: float, steps_per_epoch: int, epochs: int
) -> List[float]:
    """:func:`polynomial_lr` changing every update."""
    return _polynomial("polynomial_refined_lr", total_iters, power, lr, steps_per_epoch, epochs, True)


def _exponential(fn: str, gamma, lr, steps_per_epoch, epochs, per_step) -> List[float]:
    t = _positions(fn, steps_per_epoch, epochs, per_step)
    _positive(fn, "gamma", gamma)
    return _out(curves.exponential(t, gamma, lr))


def exponential_lr(gamma: float, *, lr: float, steps_per_epoch: int, epochs: int) -> List[float]:
    """``lr * gamma ** epoch`` (``torch.optim.lr_scheduler.ExponentialLR``)."""
    return _exponential("exponential_lr", gamma, lr, steps_per_epoch, epochs, False)


def exponential_refined_lr(gamma: float, *, lr: float, steps_per_epoch: int, epochs: int) -> List[float]:
    """:func:`exponential_lr` changing every update."""
    return _exponential("exponential_refined_lr", gamma, lr, steps_per_epoch, epochs, True)


def step_lr(step_size: int, gamma: float, *, lr: float, steps_per_epoch: int, epochs: int) -> List[float]:
    """``lr`` multiplied by ``gamma`` every ``step_size`` epochs (``torch.optim.lr_scheduler.StepLR``)."""
    t = _positions("step_lr", steps_per_epoch, epochs, per_step=False)
    _positive("step_lr", "step_size", step_size)
    _positive("step_lr", "gamma", gamma)
    return _out(curves.step(t, step_size, gamma, lr))


def multi_step_lr(
    milestones: Sequence[int], gamma: float, *, lr: float, steps_per_epoch: int, epochs: int
) -> List[float]:
    """``lr`` multiplied by ``gamma`` at each milestone epoch, in any order (``torch.optim.lr_scheduler.MultiStepLR``;
    a repeated milestone decays twice there, as in PyTorch)."""
    t = _positions("multi_step_lr", steps_per_epoch, epochs, per_step=False)
    _positive("multi_step_lr", "gamma", gamma)
    return _out(curves.multi_step(t, list(milestones), gamma, lr))


def _cosine_decay(fn, decay_epochs, eta_min, eta_max, steps_per_epoch, epochs, num_cycles, cycle_decay, per_step):
    t = _positions(fn, steps_per_epoch, epochs, per_step)
    _positive(fn, "decay_epochs", decay_epochs)
    _check(fn, "num_cycles", num_cycles, _is_int(num_cycles) and num_cycles >= 1, "a positive integer")
    _positive(fn, "cycle_decay", cycle_decay)
    return _out(curves.cosine_cycles(t, decay_epochs, int(num_cycles), cycle_decay, eta_max, eta_min))


def cosine_decay_lr(
    decay_epochs: int,
    eta_min: float,
    *,
    eta_max: float,
    steps_per_epoch: int,
    epochs: int,
    num_cycles: int = 1,
    cycle_decay: float = 1.0,
) -> List[float]:
    """``num_cycles`` cosines from ``eta_max`` to ``eta_min`` of ``decay_epochs`` each, the peak multiplied by
    ``cycle_decay`` per cycle, then ``eta_min``; per epoch."""
    return _cosine_decay(
        "cosine_decay_lr", decay_epochs, eta_min, eta_max, steps_per_epoch, epochs, num_cycles, cycle_decay, False
    )


def cosine_decay_refined_lr(
    decay_epochs: int,
    eta_min: float,
    *,
    eta_max: float,
    steps_per_epoch: int,
    epochs: int,
    num_cycles: int = 1,
    cycle_decay: float = 1.0,
) -> List[float]:
    """:func:`cosine_decay_lr` changing every update."""
    return _cosine_decay(
        "cosine_decay_refined_lr",
        decay_epochs,
        eta_min,
        eta_max,
        steps_per_epoch,
        epochs,
        num_cycles,
        cycle_decay,
        True,
    )


def cosine_annealing_lr(
    t_max: int, eta_min: float, *, eta_max: float, steps_per_epoch: int, epochs: int
) -> List[float]:
    """``eta_min + (eta_max - eta_min) * (1 + cos(pi * epoch / t_max)) / 2``, rising again after ``t_max`` as in
    ``torch.optim.lr_scheduler.CosineAnnealingLR``."""
    t = _positions("cosine_annealing_lr", steps_per_epoch, epochs, per_step=False)
    _positive("cosine_annealing_lr", "t_max", t_max)
    return _out(curves.cosine(t, t_max, eta_max, eta_min))


def cosine_annealing_warm_restarts_lr(
    te: int, tm: int, eta_min: float, *, eta_max: float, steps_per_epoch: int, epochs: int
) -> List[float]:
    """A cosine from ``eta_max`` to ``eta_min`` over ``te`` epochs, restarted with the period multiplied by ``tm``
    (``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0=te, T_mult=tm)``); changes every update."""
    fn = "cosine_annealing_warm_restarts_lr"
    t = _positions(fn, steps_per_epoch, epochs, per_step=True)
    _check(fn, "te", te, _is_int(te) and te >= 1, "a positive integer (epochs)")
    _check(fn, "tm", tm, _is_int(tm) and tm >= 1, "an integer >= 1")
    return _out(curves.cosine_warm_restarts(t, int(te), int(tm), eta_max, eta_min))


def one_cycle_lr(
    max_lr: float,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 10000.0,
    three_phase: bool = False,
    *,
    steps_per_epoch: int,
    epochs: int,
) -> List[float]:
    """The 1cycle policy, update for update ``torch.optim.lr_scheduler.OneCycleLR``.

    Args:
        max_lr: Peak rate.
        pct_start: Fraction of the updates spent rising.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        div_factor: The first rate is ``max_lr / div_factor``.
        final_div_factor: The last rate is ``max_lr / div_factor / final_div_factor``.
        three_phase: Fall back to the first rate symmetrically, then anneal to the last one.
        steps_per_epoch: Updates per epoch.
        epochs: Number of epochs.
    """
    fn = "one_cycle_lr"
    steps = _updates(fn, steps_per_epoch, epochs)
    _non_negative(fn, "max_lr", max_lr)
    _check(fn, "pct_start", pct_start, 0 < pct_start < 1, "in (0, 1)")
    _check(fn, "anneal_strategy", anneal_strategy, anneal_strategy in ("cos", "linear"), "'cos' or 'linear'")
    _positive(fn, "div_factor", div_factor)
    _positive(fn, "final_div_factor", final_div_factor)
    initial_lr = max_lr / div_factor
    return _out(
        curves.one_cycle(
            steps,
            len(steps),
            max_lr,
            initial_lr,
            initial_lr / final_div_factor,
            pct_start,
            anneal_strategy,
            three_phase,
        )
    )


def cyclic_lr(
    base_lr: float,
    max_lr: float,
    step_size_up: int = 2000,
    step_size_down: Optional[int] = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Optional[Callable[[float], float]] = None,
    scale_mode: str = "cycle",
    *,
    steps_per_epoch: int,
    epochs: int,
) -> List[float]:
    """Cyclical learning rates, update for update ``torch.optim.lr_scheduler.CyclicLR``.

    Args:
        base_lr: Bottom of each cycle.
        max_lr: Top of each cycle (before scaling).
        step_size_up: Updates from the bottom to the top.
        step_size_down: Updates from the top back down (default ``step_size_up``).
        mode: ``"triangular"`` (constant height), ``"triangular2"`` (height halved every cycle) or ``"exp_range"``
            (height times ``gamma ** update``); ignored when ``scale_fn`` is given.
        gamma: Base of ``"exp_range"``.
        scale_fn: Custom height multiplier, a function of the cycle number (from 1) or of the update index.
        scale_mode: What ``scale_fn`` takes: ``"cycle"`` or ``"iterations"``.
        steps_per_epoch: Updates per epoch.
        epochs: Number of epochs.
    """
    fn = "cyclic_lr"
    steps = _updates(fn, steps_per_epoch, epochs)
    _positive(fn, "step_size_up", step_size_up)
    if step_size_down is not None:
        _positive(fn, "step_size_down", step_size_down)
    down = float(step_size_up if step_size_down is None else step_size_down)
    if scale_fn is None:
        modes = {
            "triangular": (np.ones_like, True),
            "triangular2": (lambda x: 0.5 ** (x - 1.0), True),
            "exp_range": (lambda x: gamma**x, False),
        }
        _check(fn, "mode", repr(mode), mode in modes, "'triangular', 'triangular2' or 'exp_range'")
        scale, by_cycle = modes[mode]
    else:
        _check(fn, "scale_mode", repr(scale_mode), scale_mode in ("cycle", "iterations"), "'cycle' or 'iterations'")
        scale, by_cycle = curves.elementwise(scale_fn), scale_mode == "cycle"
    return _out(curves.cyclic(steps, base_lr, max_lr, float(step_size_up), down, scale, by_cycle))
