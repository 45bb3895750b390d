"""Learning-rate schedules, computed per optimizer update in plain numpy.

A schedule is a float32 array with one learning rate per optimizer update
(``num_epochs * steps_per_epoch`` entries). It is handed to the optimizer as a dynamic learning rate: MindSpore
optimizers read entry ``global_step`` of it on each update, so the optimizer's ``global_step`` parameter *is* the
schedule position and restoring it from a checkpoint resumes the schedule exactly. :func:`scheduler_lr_at` gives the
value at arbitrary steps without building the whole array (for logging or checks after a resume).

Every schedule is a closed-form function of the training position ``t`` in epochs: ``t = step / steps_per_epoch``
(or ``floor`` of it with ``lr_epoch_stair``). Names and arguments follow upstream MindCV's ``create_scheduler``.

Phases:

* **Warm-up** (all schedules but ``one_cycle``): for ``t < warmup_epochs`` the rate rises linearly from
  ``lr * warmup_factor`` to ``lr``.
* **Decay**, after the warm-up:

  - ``constant``: ``lr``.
  - ``cosine_decay``: cosine from ``lr`` to ``min_lr`` over ``decay_epochs`` counted from the end of the warm-up
    (default: the rest of training), repeated ``num_cycles`` times with the peak multiplied by ``cycle_decay`` per
    cycle; ``min_lr`` after the last cycle.
  - ``polynomial_decay``: ``min_lr + (lr - min_lr) * (1 - tau / decay_epochs) ** decay_rate`` with ``tau`` the epochs
    since the warm-up (upstream overloads ``decay_rate`` as the power); ``min_lr`` afterwards.
  - ``exponential_decay``: ``lr * decay_rate ** tau``, i.e. multiplied by ``decay_rate`` per epoch, floored at
    ``min_lr``.
  - ``step_decay``: ``lr * decay_rate ** floor(t / decay_epochs)``; ``t`` counts from the start of training, like
    ``torch.optim.lr_scheduler.StepLR`` and timm, so "decay every 30 epochs" means epochs 30, 60, ...
  - ``multi_step_decay``: ``lr * decay_rate ** (number of milestones <= t)``, milestones in absolute epochs.
  - ``one_cycle``: the two-phase 1cycle policy (Smith & Topin, arXiv:1708.07120), step for step
    ``torch.optim.lr_scheduler.OneCycleLR(max_lr=lr, total_steps=T, div_factor=25, final_div_factor=lr / 25 /
    min_lr)``: cosine rise from ``lr / 25`` at update 0 to ``lr`` at update ``0.3 T - 1``, then cosine fall to
    ``min_lr`` at the last update ``T - 1``. It has its own warm-up, so ``warmup_epochs`` must be 0.

A warm-up longer than the run is clamped to the run (with a warning), as timm's warm-up simply lasts the whole of a
short run.

The step and multi-step decays never fall below ``min_lr`` either.

The curves are :mod:`mindcv.scheduler.curves`, which :mod:`mindcv.scheduler.dynamic_lr` (upstream's per-step
functions) is built on too. The signature is upstream's; the values differ from upstream's ``create_scheduler`` on
purpose where upstream ignores an argument or counts epochs differently: ``decay_epochs`` defaults to the rest of
training (upstream: 10); step and multi-step decays count epochs from the start of training (upstream: from the end of
the warm-up); every decay is floored at ``min_lr`` and the polynomial one ends there (upstream: at 0, over the rest of
training whatever ``decay_epochs`` says); the warm-up may be fractional. The result is a float32 array rather than
upstream's list; both index, iterate and feed ``create_optimizer`` alike. Upstream's ``cyclic`` policy is
:func:`mindcv.scheduler.dynamic_lr.cyclic_lr`.
"""

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ConfigError, unknown_name_error
from . import curves

__all__ = ["create_scheduler", "list_schedulers", "scheduler_lr_at", "scheduler_kwargs"]

_logger = logging.getLogger("mindcv")

# one_cycle constants, the torch.optim.lr_scheduler.OneCycleLR defaults: start at lr / 25, peak after 30 % of the run.
_ONE_CYCLE_DIV_FACTOR = 25.0
_ONE_CYCLE_PCT_START = 0.3


@dataclass(frozen=True)
class _Args:
    """Validated schedule arguments; all durations in epochs."""

    lr: float
    min_lr: float
    warmup_epochs: float
    warmup_factor: float
    decay_epochs: Optional[float]
    decay_rate: float
    milestones: Tuple[float, ...]
    num_epochs: float
    num_cycles: int
    cycle_decay: float
    steps_per_epoch: int

    @property
    def decay_span(self) -> float:
        """Epochs of the continuous decay: ``decay_epochs`` or everything after the warm-up."""
        if self.decay_epochs is not None:
            return self.decay_epochs
        return max(self.num_epochs - self.warmup_epochs, 1e-12)


def _constant(t: np.ndarray, a: _Args) -> np.ndarray:
    return np.full_like(t, a.lr)


def _since_warmup(t: np.ndarray, a: _Args) -> np.ndarray:
    return np.maximum(t - a.warmup_epochs, 0.0)


def _cosine_decay(t: np.ndarray, a: _Args) -> np.ndarray:
    span = a.decay_epochs if a.decay_epochs is not None else a.decay_span / a.num_cycles
    return curves.cosine_cycles(_since_warmup(t, a), span, a.num_cycles, a.cycle_decay, a.lr, a.min_lr)


def _polynomial_decay(t: np.ndarray, a: _Args) -> np.ndarray:
    return curves.polynomial(_since_warmup(t, a), a.decay_span, a.decay_rate, a.lr, a.min_lr)


def _exponential_decay(t: np.ndarray, a: _Args) -> np.ndarray:
    return np.maximum(curves.exponential(_since_warmup(t, a), a.decay_rate, a.lr), a.min_lr)


def _step_decay(t: np.ndarray, a: _Args) -> np.ndarray:
    return np.maximum(curves.step(t, a.decay_epochs, a.decay_rate, a.lr), a.min_lr)


def _multi_step_decay(t: np.ndarray, a: _Args) -> np.ndarray:
    return np.maximum(curves.multi_step(t, a.milestones, a.decay_rate, a.lr), a.min_lr)


def _one_cycle(t: np.ndarray, a: _Args) -> np.ndarray:
    # In updates, as OneCycleLR counts: the rise ends at update pct * T - 1 and the fall at the last update, T - 1.
    total = a.num_epochs * a.steps_per_epoch
    start = a.lr / _ONE_CYCLE_DIV_FACTOR
    return curves.one_cycle(t * a.steps_per_epoch, total, a.lr, start, a.min_lr, _ONE_CYCLE_PCT_START)


_SCHEDULERS: Dict[str, Callable[[np.ndarray, _Args], np.ndarray]] = {
    "constant": _constant,
    "cosine_decay": _cosine_decay,
    "polynomial_decay": _polynomial_decay,
    "exponential_decay": _exponential_decay,
    "step_decay": _step_decay,
    "multi_step_decay": _multi_step_decay,
    "one_cycle": _one_cycle,
}

# Schedules whose decay runs from the end of the warm-up and so can be given a decay_epochs span.
_SPAN_SCHEDULERS = ("cosine_decay", "polynomial_decay")


def list_schedulers() -> List[str]:
    """Names accepted by :func:`create_scheduler`, in registry order."""
    return list(_SCHEDULERS)


def _unknown_scheduler(name: str) -> Exception:
    return unknown_name_error("scheduler", name, _SCHEDULERS, flag="--scheduler")


def _validate(
    scheduler: str,
    steps_per_epoch: int,
    lr: float,
    min_lr: float,
    warmup_epochs: float,
    warmup_factor: float,
    decay_epochs: Optional[float],
    decay_rate: float,
    milestones: Optional[Sequence[float]],
    num_epochs: float,
    num_cycles: int,
    cycle_decay: float,
) -> _Args:
    if scheduler not in _SCHEDULERS:
        raise _unknown_scheduler(scheduler)
    if int(steps_per_epoch) != steps_per_epoch or steps_per_epoch < 1:
        raise ConfigError(f"steps_per_epoch must be a positive integer, got {steps_per_epoch}")
    if num_epochs <= 0:
        raise ConfigError(f"num_epochs (--epoch_size) must be positive, got {num_epochs}")
    if lr < 0 or min_lr < 0:
        raise ConfigError(f"lr and min_lr must be >= 0, got lr={lr}, min_lr={min_lr}")
    if scheduler != "constant" and min_lr > lr:
        raise ConfigError(f"min_lr ({min_lr}) is above lr ({lr}); lower --min_lr")
    if warmup_epochs < 0:
        raise ConfigError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
    if warmup_epochs > num_epochs:
        _logger.warning(
            "warmup_epochs=%g is longer than the run: warming up for all %g epochs", warmup_epochs, num_epochs
        )
        warmup_epochs = num_epochs
    if warmup_factor < 0:
        raise ConfigError(f"warmup_factor must be >= 0, got {warmup_factor}")
    if scheduler == "one_cycle" and warmup_epochs > 0:
        raise ConfigError("one_cycle has its own warm-up phase; set --warmup_epochs 0")
    if decay_epochs is not None and decay_epochs <= 0:
        raise ConfigError(f"decay_epochs must be positive, got {decay_epochs}")
    if scheduler == "step_decay" and decay_epochs is None:
        raise ConfigError("step_decay needs the decay interval: set --decay_epochs")
    if scheduler in ("polynomial_decay", "exponential_decay", "step_decay", "multi_step_decay") and decay_rate <= 0:
        raise ConfigError(f"decay_rate must be positive for {scheduler}, got {decay_rate}")
    if int(num_cycles) != num_cycles or num_cycles < 1:
        raise ConfigError(f"num_cycles must be a positive integer, got {num_cycles}")
    if cycle_decay <= 0:
        raise ConfigError(f"cycle_decay must be positive, got {cycle_decay}")
    ms_tuple = tuple(float(m) for m in (milestones or ()))
    if scheduler == "multi_step_decay":
        if not ms_tuple:
            raise ConfigError("multi_step_decay needs milestones: set --multi_step_decay_milestones, e.g. 30 60 90")
        if any(b <= a for a, b in zip(ms_tuple, ms_tuple[1:])):
            raise ConfigError(f"multi_step_decay milestones must be strictly increasing, got {list(ms_tuple)}")
    return _Args(
        lr=float(lr),
        min_lr=float(min_lr),
        warmup_epochs=float(warmup_epochs),
        warmup_factor=float(warmup_factor),
        decay_epochs=None if decay_epochs is None else float(decay_epochs),
        decay_rate=float(decay_rate),
        milestones=ms_tuple,
        num_epochs=float(num_epochs),
        num_cycles=int(num_cycles),
        cycle_decay=float(cycle_decay),
        steps_per_epoch=int(steps_per_epoch),
    )


def _evaluate(scheduler: str, args: _Args, steps: np.ndarray, steps_per_epoch: int, lr_epoch_stair: bool) -> np.ndarray:
    t = steps.astype(np.float64) / steps_per_epoch
    if lr_epoch_stair:
        t = np.floor(t)
    lr = _SCHEDULERS[scheduler](t, args)
    if args.warmup_epochs > 0:
        warm = curves.linear(t, args.lr * args.warmup_factor, args.lr, args.warmup_epochs)
        lr = np.where(t < args.warmup_epochs, warm, lr)
    return lr.astype(np.float32)


def create_scheduler(
    steps_per_epoch: int,
    scheduler: str = "constant",
    lr: float = 0.01,
    min_lr: float = 1e-6,
    warmup_epochs: float = 3,
    warmup_factor: float = 0.0,
    decay_epochs: Optional[float] = None,
    decay_rate: float = 0.9,
    milestones: Optional[Sequence[float]] = None,
    num_epochs: int = 200,
    num_cycles: int = 1,
    cycle_decay: float = 1.0,
    lr_epoch_stair: bool = False,
) -> np.ndarray:
    """Build a per-update learning-rate schedule (see the module docstring for the formulas).

    Args:
        steps_per_epoch: Optimizer updates per epoch. With gradient accumulation over N micro-batches this is
            ``batches_per_epoch // N``, because the optimizer (and so the schedule) advances once per update.
        scheduler: One of :func:`list_schedulers`.
        lr: Peak learning rate, reached at the end of the warm-up.
        min_lr: Floor of every decaying schedule and end value of the cosine, polynomial and one-cycle decays.
        warmup_epochs: Length of the linear warm-up in epochs (may be fractional); 0 disables it.
        warmup_factor: The warm-up starts at ``lr * warmup_factor``.
        decay_epochs: Cosine / polynomial: length of the decay (per cycle for the cosine), counted from the end of the
            warm-up; ``None`` spreads it over the rest of training. Step decay: the interval between decays
            (required). Ignored by the other schedules.
        decay_rate: Multiplier per step (step, multi-step), per epoch (exponential) or the power (polynomial).
        milestones: Absolute epochs at which ``multi_step_decay`` multiplies the rate by ``decay_rate``.
        num_epochs: Total training epochs; the schedule has ``num_epochs * steps_per_epoch`` entries.
        num_cycles: Cosine restarts: number of cosine cycles.
        cycle_decay: Cosine restarts: peak multiplier from one cycle to the next.
        lr_epoch_stair: Keep the rate constant within each epoch (evaluate at the epoch start) instead of updating
            it every step.

    Returns:
        float32 array of shape ``(num_epochs * steps_per_epoch,)``, entry ``i`` being the rate of update ``i``.
        Pass it as ``lr`` to :func:`mindcv.optim.create_optimizer`.

    Raises:
        UnknownNameError: ``scheduler`` is not registered.
        ConfigError: an argument is out of range or missing for the chosen schedule.
    """
    args = _validate(
        scheduler,
        steps_per_epoch,
        lr,
        min_lr,
        warmup_epochs,
        warmup_factor,
        decay_epochs,
        decay_rate,
        milestones,
        num_epochs,
        num_cycles,
        cycle_decay,
    )
    total = int(round(args.num_epochs * steps_per_epoch))
    return _evaluate(scheduler, args, np.arange(total), int(steps_per_epoch), lr_epoch_stair)


def scheduler_lr_at(
    step: Union[int, Sequence[int], np.ndarray],
    steps_per_epoch: int,
    scheduler: str = "constant",
    lr: float = 0.01,
    min_lr: float = 1e-6,
    warmup_epochs: float = 3,
    warmup_factor: float = 0.0,
    decay_epochs: Optional[float] = None,
    decay_rate: float = 0.9,
    milestones: Optional[Sequence[float]] = None,
    num_epochs: int = 200,
    num_cycles: int = 1,
    cycle_decay: float = 1.0,
    lr_epoch_stair: bool = False,
) -> Union[float, np.ndarray]:
    """Learning rate at given update indices, equal to ``create_scheduler(...)[step]`` but O(len(step)).

    Takes the same arguments as :func:`create_scheduler` plus ``step`` (a global update index or an array of them,
    e.g. the optimizer's ``global_step`` after a resume). Steps past the end are evaluated by the same formula.

    Returns:
        A Python float for a scalar ``step``, else a float32 array of the same shape.
    """
    args = _validate(
        scheduler,
        steps_per_epoch,
        lr,
        min_lr,
        warmup_epochs,
        warmup_factor,
        decay_epochs,
        decay_rate,
        milestones,
        num_epochs,
        num_cycles,
        cycle_decay,
    )
    steps = np.asarray(step)
    if steps.size and steps.min() < 0:
        raise ConfigError(f"step must be >= 0, got {steps.min()}")
    out = _evaluate(scheduler, args, steps.reshape(-1), int(steps_per_epoch), lr_epoch_stair).reshape(steps.shape)
    return float(out) if steps.ndim == 0 else out


def scheduler_kwargs(cfg: Any) -> Dict[str, Any]:
    """Map a parsed configuration (attribute access, upstream MindCV flag names) onto :func:`create_scheduler` kwargs.

    Reads ``scheduler, lr, min_lr, warmup_epochs, warmup_factor, decay_epochs, decay_rate,
    multi_step_decay_milestones, epoch_size, num_cycles, cycle_decay, lr_epoch_stair``; those absent from ``cfg``
    keep the :func:`create_scheduler` defaults. ``steps_per_epoch`` is not part of the configuration and is passed
    separately: ``create_scheduler(steps_per_epoch, **scheduler_kwargs(cfg))``.
    """
    mapping = {
        "scheduler": "scheduler",
        "lr": "lr",
        "min_lr": "min_lr",
        "warmup_epochs": "warmup_epochs",
        "warmup_factor": "warmup_factor",
        "decay_epochs": "decay_epochs",
        "decay_rate": "decay_rate",
        "multi_step_decay_milestones": "milestones",
        "epoch_size": "num_epochs",
        "num_cycles": "num_cycles",
        "cycle_decay": "cycle_decay",
        "lr_epoch_stair": "lr_epoch_stair",
    }
    return {kw: getattr(cfg, key) for key, kw in mapping.items() if hasattr(cfg, key)}
