"""Closed-form learning-rate curves, evaluated at arrays of positions.

Each curve is written once here and used by both front ends: :mod:`mindcv.scheduler.dynamic_lr` (upstream MindCV's
per-step lists with PyTorch-style arguments) and :mod:`mindcv.scheduler.scheduler_factory` (``create_scheduler``,
which also evaluates single steps after a resume). Positions ``t`` are in epochs unless a curve says steps; callers
pass ``floor(step / steps_per_epoch)`` for a rate that changes once per epoch and ``step / steps_per_epoch`` for one
that changes every step. All arithmetic is float64.
"""

import math
from typing import Callable, Sequence

import numpy as np

__all__ = [
    "linear",
    "cosine",
    "cosine_cycles",
    "cosine_warm_restarts",
    "polynomial",
    "exponential",
    "step",
    "multi_step",
    "one_cycle",
    "cyclic",
    "elementwise",
]


def linear(t: np.ndarray, start: float, end: float, total: float) -> np.ndarray:
    """From ``start`` at ``t = 0`` to ``end`` at ``t = total``, then ``end``."""
    return start + (end - start) * np.minimum(t, total) / total


def cosine(t: np.ndarray, period: float, high: float, low: float) -> np.ndarray:
    """Half a cosine from ``high`` at ``t = 0`` to ``low`` at ``t = period``; not clamped, so it rises again after."""
    return low + 0.5 * (high - low) * (1.0 + np.cos(math.pi * t / period))


def cosine_cycles(
    t: np.ndarray, span: float, num_cycles: int, cycle_decay: float, high: float, low: float
) -> np.ndarray:
    """``num_cycles`` cosines of length ``span``, the peak multiplied by ``cycle_decay`` per cycle, then ``low``."""
    cycle = np.floor(t / span)
    within = t - cycle * span
    peak = high * cycle_decay ** np.minimum(cycle, num_cycles - 1)
    return np.where(cycle >= num_cycles, low, cosine(within, span, peak, low))


def cosine_warm_restarts(t: np.ndarray, period: int, period_mult: int, high: float, low: float) -> np.ndarray:
    """SGDR (Loshchilov & Hutter, arXiv:1608.03983): a cosine over ``period`` epochs, restarted at ``high`` with the
    period multiplied by ``period_mult`` each time."""
    t = np.asarray(t, dtype=np.float64)
    starts, lengths = [0.0], [float(period)]
    last = float(t.max()) if t.size else 0.0
    while starts[-1] + lengths[-1] <= last:
        starts.append(starts[-1] + lengths[-1])
        lengths.append(lengths[-1] * period_mult)
    k = np.searchsorted(np.asarray(starts), t, side="right") - 1
    begin, length = np.asarray(starts)[k], np.asarray(lengths)[k]
    return cosine(t - begin, length, high, low)


def polynomial(t: np.ndarray, total: float, power: float, high: float, low: float = 0.0) -> np.ndarray:
    """``low + (high - low) * (1 - t / total) ** power`` up to ``t = total``, then ``low``."""
    return low + (high - low) * (1.0 - np.minimum(t, total) / total) ** power


def exponential(t: np.ndarray, gamma: float, high: float) -> np.ndarray:
    """``high * gamma ** t``."""
    return high * gamma**t


def step(t: np.ndarray, step_size: float, gamma: float, high: float) -> np.ndarray:
    """``high`` multiplied by ``gamma`` every ``step_size`` (counted from ``t = 0``)."""
    return high * gamma ** np.floor(t / step_size)


def multi_step(t: np.ndarray, milestones: Sequence[float], gamma: float, high: float) -> np.ndarray:
    """``high`` multiplied by ``gamma`` once per milestone ``<= t`` (``bisect_right``, as torch's MultiStepLR)."""
    passed = np.searchsorted(np.sort(np.asarray(milestones, dtype=np.float64)), t, side="right")
    return high * gamma**passed


def _anneal(begin: float, end: float, pct: np.ndarray, strategy: str) -> np.ndarray:
    if strategy == "cos":
        return end + 0.5 * (begin - end) * (1.0 + np.cos(math.pi * pct))
    return begin + (end - begin) * pct


def one_cycle(
    steps: np.ndarray,
    total_steps: int,
    max_lr: float,
    initial_lr: float,
    final_lr: float,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
) -> np.ndarray:
    """The 1cycle policy (Smith & Topin, arXiv:1708.07120) at update indices, equal to
    ``torch.optim.lr_scheduler.OneCycleLR``: the rise ends at update ``pct_start * T - 1`` and the last phase at
    ``T - 1``; with ``three_phase`` the rate first falls back to ``initial_lr`` by update ``2 * pct_start * T - 2``."""
    steps = np.asarray(steps, dtype=np.float64)
    up = pct_start * total_steps - 1
    end = float(total_steps - 1)
    if three_phase:
        phases = [(up, initial_lr, max_lr), (2 * pct_start * total_steps - 2, max_lr, initial_lr)]
    else:
        phases = [(up, initial_lr, max_lr)]
    phases.append((end, phases[-1][2], final_lr))
    out = np.empty_like(steps)
    done = np.zeros(steps.shape, dtype=bool)
    begin_step = 0.0
    for i, (end_step, begin_lr, end_lr) in enumerate(phases):
        mine = ~done if i == len(phases) - 1 else (steps <= end_step) & ~done
        # A phase shorter than one update (a run of very few updates) is already at its end value.
        pct = np.clip((steps - begin_step) / max(end_step - begin_step, 1e-12), 0.0, 1.0)
        out = np.where(mine, _anneal(begin_lr, end_lr, pct, anneal_strategy), out)
        done |= mine
        begin_step = end_step
    return out


def cyclic(
    steps: np.ndarray,
    base_lr: float,
    max_lr: float,
    step_size_up: float,
    step_size_down: float,
    scale_fn: Callable[[np.ndarray], np.ndarray],
    scale_by_cycle: bool,
) -> np.ndarray:
    """Cyclical learning rates (Smith, arXiv:1506.01186) at update indices, as ``torch.optim.lr_scheduler.CyclicLR``:
    a triangle from ``base_lr`` up to ``max_lr`` in ``step_size_up`` updates and back in ``step_size_down``, its height
    multiplied by ``scale_fn`` of the cycle number (from 1) or of the update index."""
    steps = np.asarray(steps, dtype=np.float64)
    total = step_size_up + step_size_down
    up_ratio = step_size_up / total
    cycle = np.floor(1.0 + steps / total)
    x = 1.0 + steps / total - cycle
    height = np.where(x <= up_ratio, x / up_ratio, (x - 1.0) / (up_ratio - 1.0))
    scale = scale_fn(cycle if scale_by_cycle else steps)
    return base_lr + (max_lr - base_lr) * height * np.asarray(scale, dtype=np.float64)


def elementwise(fn: Callable[[float], float]) -> Callable[[np.ndarray], np.ndarray]:
    """Lift a scalar function (a user's ``scale_fn``) to arrays."""
    return lambda values: np.asarray([fn(float(v)) for v in np.ravel(values)], dtype=np.float64).reshape(
        np.shape(values)
    )
