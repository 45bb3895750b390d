"""The epoch loop of ``train.py``: deterministic data per epoch, lazy loss read-back, evaluation, checkpoints.

Per epoch ``e`` (0-based):

1. the dataset engine is reseeded with ``epoch_seed(seed, e)`` and the epoch's pipeline is built, so the
   batches of epoch ``e`` are the same whether the run started at 0 or was resumed at ``e``;
2. every batch goes through the compiled :class:`~mindcv.engine.train_step.TrainStep`, which returns
   ``(loss, overflow)`` as device tensors; they are read back only every ``log_interval`` steps (one
   host sync, then the progress bar or a log line), so the device is never stalled in between;
3. a non-finite loss (or an update skipped for non-finite gradients) stops the run with its global
   step number, the last completed checkpoint untouched; with dynamic loss scaling such steps are
   expected, counted and skipped instead (the run stops only if a whole epoch was skipped);
4. every ``val_interval`` epochs (and after the last) the network (its EMA weights with ``--ema``) is
   evaluated, then rank 0 writes the checkpoints, ``summary.csv`` and ``curves.png``.
"""

import logging
import math
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import mindspore.dataset as ds
from mindspore import Parameter, Tensor, nn

from ..errors import ConfigError, MindCVError
from ..utils.seed import seed_epoch_data
from .checkpoint_manager import RunCheckpoints
from .evaluator import Evaluator
from .summary import TrainingSummary

__all__ = ["Trainer", "NonFiniteLossError", "build_epoch_loader", "describe_schedule"]

_logger = logging.getLogger("mindcv")


class NonFiniteLossError(MindCVError, ArithmeticError):
    """The training loss became NaN or infinite."""


def build_epoch_loader(make_loader: Callable[[int], ds.Dataset], seed: int, epoch: int) -> ds.Dataset:
    """Build the training pipeline of ``epoch`` under its own data seed (see :mod:`mindcv.utils.seed`).

    Raises:
        ConfigError: The pipeline yields no batch (fewer samples than one batch, with drop_remainder).
    """
    seed_epoch_data(seed, epoch)
    loader = make_loader(epoch)
    if loader.get_dataset_size() == 0:
        raise ConfigError(
            "the training split yields no batch: it has fewer samples (per device) than --batch_size; lower "
            "--batch_size or set --drop_remainder false"
        )
    return loader


class Trainer:
    """Runs epochs of a :class:`~mindcv.engine.train_step.TrainStep` with evaluation and checkpoints.

    Args:
        train_step: The compiled step; its ``state_parameters()`` are what checkpoints hold.
        network: The model inside ``train_step`` (for evaluation and the ``-best`` weights).
        make_train_loader: ``epoch -> loader``; called once per epoch after the data seed is set.
        model_name: Registered model name (checkpoint file names and metadata).
        num_classes: Class count (checkpoint metadata, checked on resume).
        epoch_size: Total number of epochs.
        seed: The run's seed (per-epoch data seeds derive from it).
        lr_schedule: Per-update learning rates (for logging; the optimizer holds its own copy).
        batch_size: Batch size per device.
        evaluator: Evaluates on ``val_loader``; None disables evaluation.
        val_loader: The evaluation pipeline (built once, iterated per evaluation).
        val_interval: Evaluate every this many epochs and after the last one.
        ema: The EMA in ``train_step``, if any: evaluation uses its weights and ``-best`` stores them.
        ckpt_manager: Writes checkpoints; None on ranks other than 0.
        summary: Writes ``summary.csv``/``curves.png``; None on ranks other than 0.
        log_interval: Steps between loss read-backs (progress updates).
        group_size: Number of data-parallel ranks (for the global throughput).
        rank: This process's rank (only rank 0 shows progress).
    """

    def __init__(
        self,
        train_step: nn.Cell,
        network: nn.Cell,
        make_train_loader: Callable[[int], ds.Dataset],
        *,
        model_name: str,
        num_classes: int,
        epoch_size: int,
        seed: int,
        lr_schedule: np.ndarray,
        batch_size: int,
        evaluator: Optional[Evaluator] = None,
        val_loader: Optional[ds.Dataset] = None,
        val_interval: int = 1,
        ema: Optional[nn.Cell] = None,
        ckpt_manager: Optional[RunCheckpoints] = None,
        summary: Optional[TrainingSummary] = None,
        log_interval: int = 20,
        group_size: int = 1,
        rank: int = 0,
    ) -> None:
        self.train_step = train_step
        self.network = network
        self.make_train_loader = make_train_loader
        self.model_name = model_name
        self.num_classes = int(num_classes)
        self.epoch_size = int(epoch_size)
        self.seed = int(seed)
        self.lr_schedule = np.asarray(lr_schedule)
        self.batch_size = int(batch_size)
        self.evaluator = evaluator if val_loader is not None else None
        self.val_loader = val_loader
        self.val_interval = int(val_interval)
        self.ema = ema
        self.ckpt_manager = ckpt_manager
        self.summary = summary
        self.log_interval = int(log_interval)
        self.group_size = int(group_size)
        self.rank = int(rank)
        self.accum = int(getattr(train_step, "accum_steps", 1))
        self.dynamic = bool(getattr(train_step, "dynamic", False))
        self.best_top1 = -1.0
        self.best_epoch = 0
        self.skipped_steps = 0

    def load_progress(self, meta: Dict[str, Any]) -> None:
        """Take the best metric and the kept-checkpoint list of a resumed checkpoint's metadata."""
        self.best_top1 = float(meta.get("best_top1", -1.0))
        self.best_epoch = int(meta.get("best_epoch", 0))
        if self.ckpt_manager is not None:
            self.ckpt_manager.load_kept_state(str(meta.get("kept_checkpoints", "")))

    # ------------------------------------------------------------------------------------------------------------

    def _lr_after(self, updates: int) -> float:
        if updates <= 0 or self.lr_schedule.size == 0:
            return float(self.lr_schedule[0]) if self.lr_schedule.size else 0.0
        return float(self.lr_schedule[min(updates, self.lr_schedule.size) - 1])

    def _read(self, pending: List[Tuple[Tensor, Tensor]], first_step: int, epoch: int) -> List[float]:
        """Host read of the pending step outputs; raises on a non-finite loss (fixed loss scaling)."""
        losses: List[float] = []
        for j, (loss, overflow) in enumerate(pending):
            value = float(loss.asnumpy())
            bad = bool(overflow.asnumpy()) or not math.isfinite(value)
            if not bad:
                losses.append(value)
                continue
            if self.dynamic:
                self.skipped_steps += 1
                continue
            last = self.ckpt_manager.last_path if self.ckpt_manager is not None else "the last checkpoint"
            what = f"loss is {value}" if not math.isfinite(value) else f"gradients are not finite (loss {value:.4g})"
            raise NonFiniteLossError(
                f"{what} at step {first_step + j} (epoch {epoch + 1}): training stopped and {last} is kept. "
                "Lower --lr, add --clip_grad, or use --loss_scale_type dynamic to skip such steps"
            )
        return losses

    def _train_epoch(self, epoch: int, loader: ds.Dataset) -> Tuple[float, int, float]:
        """One epoch; returns (mean loss, batches, seconds)."""
        seed_epoch_data(self.seed, epoch)  # the iterator draws its shuffle/augmentation seeds now
        batches = loader.get_dataset_size()
        show_bar = self.rank == 0 and sys.stderr.isatty()
        bar = None
        if show_bar:
            from tqdm import tqdm

            bar = tqdm(total=batches, desc=f"epoch {epoch + 1}/{self.epoch_size}", leave=False, dynamic_ncols=True)
        self.network.set_train(True)
        start = time.time()
        step0 = epoch * batches
        pending: List[Tuple[Tensor, Tensor]] = []
        losses: List[float] = []
        done = 0
        last_read = start
        for i, (images, labels) in enumerate(loader.create_tuple_iterator(num_epochs=1)):
            pending.append(self.train_step(images, labels))
            if (i + 1) % self.log_interval and i + 1 != batches:
                continue
            new = self._read(pending, step0 + done + 1, epoch)
            losses.extend(new)
            now = time.time()
            speed = len(pending) * self.batch_size * self.group_size / max(now - last_read, 1e-9)
            lr = self._lr_after((step0 + i + 1) // self.accum)
            recent = float(np.mean(new)) if new else float("nan")
            if bar is not None:
                bar.update(len(pending))
                bar.set_postfix(loss=f"{recent:.4f}", lr=f"{lr:.3g}", img_s=f"{speed:.1f}")
            elif self.rank == 0:
                _logger.info(
                    "epoch %d/%d step %d/%d: loss %.4f, lr %.6g, %.1f img/s",
                    epoch + 1, self.epoch_size, i + 1, batches, recent, lr, speed,
                )  # fmt: skip
            done += len(pending)
            pending = []
            last_read = now
        if bar is not None:
            bar.close()
        if done and not losses:
            raise NonFiniteLossError(
                f"every step of epoch {epoch + 1} overflowed even with dynamic loss scaling; the last checkpoint "
                "is kept. Lower --lr or add --clip_grad"
            )
        return (float(np.mean(losses)) if losses else float("nan")), done, time.time() - start

    def _evaluate(self) -> Dict[str, float]:
        assert self.evaluator is not None and self.val_loader is not None
        if self.ema is not None:
            with self.ema.swapped():
                return self.evaluator.evaluate(self.val_loader)
        return self.evaluator.evaluate(self.val_loader)

    def _best_weights(self) -> List[Parameter]:
        weights = list(self.network.get_parameters())
        if self.ema is not None:
            weights += list(self.ema.ema_weights)
        return weights

    def fit(self, start_epoch: int = 0, first_loader: Optional[ds.Dataset] = None) -> Dict[str, Any]:
        """Train epochs ``start_epoch .. epoch_size - 1``.

        Args:
            start_epoch: Completed epochs (0, or the resumed checkpoint's ``epoch``).
            first_loader: The pipeline of ``start_epoch`` if already built (by :func:`build_epoch_loader`).

        Returns:
            ``{"epochs_run", "best_top1", "best_epoch", "last_metrics", "skipped_steps"}``.

        Raises:
            NonFiniteLossError: The loss became NaN/inf (fixed loss scaling).
        """
        last_metrics: Optional[Dict[str, float]] = None
        for epoch in range(start_epoch, self.epoch_size):
            if epoch == start_epoch and first_loader is not None:
                loader = first_loader
            else:
                loader = build_epoch_loader(self.make_train_loader, self.seed, epoch)
            train_loss, batches, seconds = self._train_epoch(epoch, loader)
            updates = (epoch + 1) * batches // self.accum
            lr = self._lr_after(updates)
            metrics = None
            if self.evaluator is not None and ((epoch + 1) % self.val_interval == 0 or epoch + 1 == self.epoch_size):
                metrics = self._evaluate()
                last_metrics = metrics
            is_best = metrics is not None and metrics["top1"] > self.best_top1
            if is_best:
                self.best_top1, self.best_epoch = float(metrics["top1"]), epoch + 1
            img_s = batches * self.batch_size * self.group_size / max(seconds, 1e-9)
            self._log_epoch(epoch, train_loss, lr, metrics, seconds, img_s)
            # The summary row first: once -last records this epoch, a resume never writes its row again.
            if self.summary is not None:
                row: Dict[str, Any] = dict(
                    epoch=epoch + 1, lr=lr, train_loss=train_loss, epoch_time_s=seconds, img_per_s=img_s
                )
                if metrics is not None:
                    row.update(val_top1=metrics["top1"], val_top5=metrics["top5"], val_loss=metrics["loss"])
                self.summary.add(row)
            if self.ckpt_manager is not None:
                meta = dict(
                    epoch=epoch + 1,
                    step=(epoch + 1) * batches,
                    steps_per_epoch=batches,
                    model=self.model_name,
                    num_classes=self.num_classes,
                    seed=self.seed,
                    best_top1=float(self.best_top1),
                    best_epoch=int(self.best_epoch),
                )
                self.ckpt_manager.save(
                    epoch + 1,
                    self.train_step.state_parameters(),
                    meta,
                    metric=None if metrics is None else float(metrics["top1"]),
                    best_weights=self._best_weights() if is_best else None,
                )
        # Identical on every rank of a data-parallel run (same start, same averaged gradients): a cheap check.
        checksum = sum(float(np.abs(p.asnumpy()).astype(np.float64).sum()) for p in self.network.trainable_params())
        _logger.info("weights checksum (sum of |trainable weights|): %.12e", checksum)
        if self.skipped_steps:
            _logger.info("%d step(s) skipped for overflowing gradients (dynamic loss scaling)", self.skipped_steps)
        return {
            "epochs_run": max(0, self.epoch_size - start_epoch),
            "best_top1": self.best_top1 if self.best_top1 >= 0 else None,
            "best_epoch": self.best_epoch or None,
            "last_metrics": last_metrics,
            "skipped_steps": self.skipped_steps,
        }

    def _log_epoch(
        self, epoch: int, loss: float, lr: float, metrics: Optional[Dict[str, float]], seconds: float, img_s: float
    ) -> None:
        text = f"epoch {epoch + 1}/{self.epoch_size}: train loss {loss:.4f}, lr {lr:.6g}"
        if metrics is not None:
            which = "EMA " if self.ema is not None else ""
            text += (
                f", {which}val top-1 {metrics['top1']:.2f}% top-5 {metrics['top5']:.2f}% loss {metrics['loss']:.4f}"
                f" ({metrics['num_samples']} images)"
            )
        _logger.info("%s, %.1f s, %.1f img/s", text, seconds, img_s)


def describe_schedule(values: Sequence[float]) -> str:
    """``first -> peak -> last`` of a learning-rate schedule, for the start-of-run log line."""
    arr = np.asarray(values, dtype=np.float64)
    return f"{arr[0]:.3g} -> {arr.max():.3g} -> {arr[-1]:.3g} over {arr.size} updates"
