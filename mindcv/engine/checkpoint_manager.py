"""Training checkpoints: the output folder, its run lock, the save policy, and exact resumes.

Files in the output folder (``--ckpt_save_dir``), written by rank 0 only:

* ``<model>-last.ckpt``: the complete training state after the latest epoch (model, optimizer,
  train-step state such as the loss scale, EMA), plus metadata: completed epochs, global step,
  steps per epoch, best metric, model name, class count, seed, and the list of kept epoch files.
  ``--resume auto`` continues from it.
* ``<model>-<epoch>_<steps per epoch>.ckpt`` (upstream MindCV's names): the same state every
  ``--ckpt_save_interval`` epochs and after the last epoch, of which ``--keep_checkpoint_max`` are kept:
  the latest ones (``latest_k``) or the best by val top-1 (``top_k``). ``-last`` is a hard link to the
  newest of them when the file system allows, so the state is written once per epoch.
* ``<model>-best.ckpt``: the weights (and EMA weights) of the epoch with the best val top-1, what
  ``validate.py --ckpt_path`` loads.

Every file is written by :func:`mindcv.utils.checkpoint.save_checkpoint_atomic` (temporary file,
fsync, rename), so a crash leaves the previous file intact. A lock on the folder
(``.run.lock``, an OS ``flock`` released even when the holder is killed) stops a second run from
writing into it at the same time.
"""

import contextlib
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence

import mindspore as ms
from mindspore import Parameter, nn

from ..errors import CheckpointError, ConfigError
from ..utils.checkpoint import clean_stale_temporaries, read_checkpoint, save_checkpoint_atomic, split_checkpoint
from ..utils.fs import FileLockTimeout, atomic_path, file_lock, temporary_path

__all__ = [
    "RunCheckpoints",
    "TrainingCheckpoint",
    "prepare_output_dir",
    "run_lock",
    "read_training_checkpoint",
    "restore_train_state",
    "resolve_resume_path",
]

_LOCK_NAME = "run"  # file_lock(<folder>/run) holds <folder>/.run.lock
_KEPT_KEY = "kept_checkpoints"
_RECOMPUTED = ("learning_rate",)
# Two state Parameters have names that mindcv.models.load_model_checkpoint (validate.py --ckpt_path) would take
# for model weights: the EMA's update counter "ema.updates" (read as an EMA weight "updates" with --ema) and the
# momentum factor "momentum" of nn.Momentum/nn.SGD. On disk they get names it skips as training state;
# restore_train_state maps them back.
_FILE_NAMES = {"ema.updates": "ema_updates", "momentum": "train_momentum"}
_PARAM_NAMES = {v: k for k, v in _FILE_NAMES.items()}


def _entries(params: Sequence[Parameter]) -> List[Dict[str, Any]]:
    """``save_checkpoint`` entries for ``params`` under their on-disk names."""
    return [{"name": _FILE_NAMES.get(p.name, p.name), "data": p} for p in params]


def prepare_output_dir(path: str) -> str:
    """Create the output folder and prove that it is writable, before any work is done.

    Raises:
        ConfigError: The folder cannot be created or written (one line, with the fix).
    """
    folder = os.path.abspath(os.path.expanduser(path))
    try:
        os.makedirs(folder, exist_ok=True)
        probe = temporary_path(os.path.join(folder, "write-test"))
        with open(probe, "w", encoding="utf-8") as f:
            f.write("ok")
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(
            f"output folder {folder} is not writable ({e.strerror or e}); choose another --ckpt_save_dir"
        ) from None
    return folder


@contextlib.contextmanager
def run_lock(folder: str) -> Iterator[None]:
    """Hold the folder's run lock for a ``with`` block; a second run on the same folder is refused.

    Raises:
        ConfigError: Another live process holds the lock (names it). A killed holder's lock is
            released by the OS, so a crashed run never blocks the next one.
    """
    try:
        with file_lock(os.path.join(folder, _LOCK_NAME), timeout=0):
            # Only now is it certain that no other writer is active: temporaries are leftovers of a crash.
            clean_stale_temporaries(folder, max_age_s=0)
            yield
    except FileLockTimeout as e:
        holder = e.holder if e.holder != "unknown" else "another process"
        raise ConfigError(
            f"another training run ({holder}) is writing into {folder}; wait for it to finish or stop it, or choose "
            "another --ckpt_save_dir"
        ) from None


@dataclass
class TrainingCheckpoint:
    """A training checkpoint read from disk.

    Attributes:
        path: The file.
        tensors: name -> Parameter (model, optimizer, train-step and EMA state).
        meta: The metadata (``epoch``, ``step``, ``steps_per_epoch``, ``model``, ...).
    """

    path: str
    tensors: Dict[str, Parameter]
    meta: Dict[str, Any]

    @property
    def epoch(self) -> int:
        """Completed epochs: training continues with this (0-based) epoch."""
        return int(self.meta["epoch"])


def resolve_resume_path(resume: str, folder: str, model_name: str) -> Optional[str]:
    """The checkpoint ``--resume`` names: a path, or for ``auto`` ``<folder>/<model>-last.ckpt`` if present.

    Returns:
        The path, or None for a fresh start (no ``--resume``, or ``auto`` with nothing to resume).

    Raises:
        CheckpointError: An explicit path that does not exist.
        ConfigError: A fresh start in a folder that already holds a run of this model, whose
            checkpoints it would overwrite.
    """
    if not resume:
        last = os.path.join(folder, f"{model_name}-last.ckpt")
        if os.path.isfile(last):
            raise ConfigError(
                f"{folder} already holds a {model_name} run ({os.path.basename(last)}); continue it with --resume "
                "auto, or choose another --ckpt_save_dir (or delete that one) to start afresh"
            )
        return None
    if resume == "auto":
        path = os.path.join(folder, f"{model_name}-last.ckpt")
        return path if os.path.isfile(path) else None
    if not os.path.isfile(resume):
        raise CheckpointError(
            f"--resume {resume}: no such file; pass a training checkpoint (<model>-last.ckpt) or --resume auto"
        )
    return resume


def read_training_checkpoint(path: str, model_name: str, num_classes: int) -> TrainingCheckpoint:
    """Read a training checkpoint and check that it belongs to this model and class count.

    Raises:
        CheckpointError: Unreadable file, a weights-only file (no training metadata), or a file saved
            for another model or class count (one line naming both).
    """
    tensors, meta = split_checkpoint(read_checkpoint(path))
    if "epoch" not in meta or "step" not in meta:
        raise CheckpointError(
            f"{path} holds no training state (no epoch/step metadata); to start from its weights use --ckpt_path "
            "instead of --resume"
        )
    saved_model, saved_classes = meta.get("model"), meta.get("num_classes")
    if saved_model != model_name:
        raise CheckpointError(
            f"{path} was saved for model '{saved_model}', not '{model_name}'; pass --model {saved_model} or resume "
            "another checkpoint"
        )
    if saved_classes != num_classes:
        raise CheckpointError(
            f"{path} was saved with num_classes={saved_classes}, this run has {num_classes}; use the same dataset "
            "and --num_classes to resume"
        )
    return TrainingCheckpoint(path=path, tensors=tensors, meta=meta)


def restore_train_state(train_step: nn.Cell, ckpt: TrainingCheckpoint, steps_per_epoch: int) -> None:
    """Load every Parameter of ``train_step`` from ``ckpt``, strictly (names and shapes).

    Args:
        train_step: The freshly built train step of the resumed run.
        ckpt: The checkpoint.
        steps_per_epoch: Batches per epoch of this run, which must equal the checkpoint's: the step
            counter indexes the learning-rate schedule and the data order.

    Raises:
        CheckpointError: The data or batch settings changed; the checkpoint lacks state this run has
            (e.g. it was saved without ``--ema`` or with another optimizer), has state this run lacks,
            or shapes differ.
    """
    saved_steps = ckpt.meta.get("steps_per_epoch")
    if saved_steps != steps_per_epoch:
        raise CheckpointError(
            f"cannot resume from {ckpt.path}: it was trained with {saved_steps} steps per epoch, this run has "
            f"{steps_per_epoch}; resume with the original --batch_size, dataset, --num_samples and number of devices"
        )
    # The optimizer's learning_rate holds the whole per-step schedule, which is recomputed from the options (so a
    # resumed run may extend --epoch_size); its position is global_step, which is restored.
    params = {p.name: p for p in train_step.get_parameters() if p.name not in _RECOMPUTED}
    tensors = {_PARAM_NAMES.get(k, k): v for k, v in ckpt.tensors.items()}
    ckpt_names = set(tensors) - set(_RECOMPUTED)
    missing = sorted(set(params) - ckpt_names)
    extra = sorted(ckpt_names - set(params))
    mismatched = [
        f"{k} {tuple(tensors[k].shape)} vs {tuple(p.shape)}"
        for k, p in params.items()
        if k in tensors and tuple(tensors[k].shape) != tuple(p.shape)
    ]
    if missing or extra or mismatched:
        parts = []
        if missing:
            parts.append(f"it lacks {len(missing)} entries this run needs ({', '.join(missing[:4])})")
        if extra:
            parts.append(f"it has {len(extra)} entries this run does not use ({', '.join(extra[:4])})")
        if mismatched:
            parts.append(f"shapes differ: {', '.join(mismatched[:3])}")
        raise CheckpointError(
            f"cannot resume from {ckpt.path}: {'; '.join(parts)}. Resume with the options of the original run "
            "(same --opt, --ema, --gradient_accumulation_steps, --amp_level/--loss_scale_type)"
        )
    for name, param in params.items():
        value = tensors[name]
        param.set_data(ms.Tensor(value.asnumpy().astype(ms.dtype_to_nptype(param.dtype), copy=False)))


class RunCheckpoints:
    """Writes a training run's ``-last``, epoch and ``-best`` checkpoints under the keep policy (rank 0 only).

    (:class:`mindcv.utils.CheckpointManager` is upstream MindCV's standalone keep-K helper for custom loops.)

    Args:
        folder: The output folder (already created and locked).
        model_name: File name prefix.
        keep_checkpoint_max: Epoch checkpoints to keep (0: only ``-last`` and ``-best``).
        policy: ``"latest_k"`` or ``"top_k"`` (by val top-1).
        save_interval: Write an epoch checkpoint every this many epochs (and after ``num_epochs``).
        steps_per_epoch: The ``<steps>`` of the epoch file names.
        num_epochs: The run's last epoch, whose checkpoint is always written; 0: unknown.
    """

    def __init__(
        self,
        folder: str,
        model_name: str,
        keep_checkpoint_max: int = 10,
        policy: str = "latest_k",
        save_interval: int = 1,
        steps_per_epoch: int = 1,
        num_epochs: int = 0,
    ) -> None:
        if policy not in ("latest_k", "top_k"):
            raise ConfigError(f"ckpt_save_policy must be latest_k or top_k, got '{policy}'")
        self.folder = folder
        self.model_name = model_name
        self.keep = int(keep_checkpoint_max)
        self.policy = policy
        self.save_interval = int(save_interval)
        self.steps_per_epoch = int(steps_per_epoch)
        self.num_epochs = int(num_epochs)
        self.kept: List[Dict[str, Any]] = []  # [{"file": name, "epoch": e, "metric": top1 or None}]

    @property
    def last_path(self) -> str:
        """``<folder>/<model>-last.ckpt``."""
        return os.path.join(self.folder, f"{self.model_name}-last.ckpt")

    @property
    def best_path(self) -> str:
        """``<folder>/<model>-best.ckpt``."""
        return os.path.join(self.folder, f"{self.model_name}-best.ckpt")

    def epoch_path(self, epoch: int) -> str:
        """``<folder>/<model>-<epoch>_<steps per epoch>.ckpt`` for a 1-based epoch number."""
        return os.path.join(self.folder, f"{self.model_name}-{epoch}_{self.steps_per_epoch}.ckpt")

    def kept_state(self) -> str:
        """The kept-file list as JSON, stored in each checkpoint so a resumed run keeps applying the policy."""
        return json.dumps(self.kept)

    def load_kept_state(self, text: str) -> None:
        """Restore the kept-file list from a checkpoint's metadata (files since deleted are dropped)."""
        try:
            entries = json.loads(text) if text else []
        except ValueError:
            entries = []
        self.kept = [e for e in entries if os.path.isfile(os.path.join(self.folder, e.get("file", "")))]

    def _select_removals(self) -> List[Dict[str, Any]]:
        if len(self.kept) <= self.keep:
            return []
        if self.policy == "latest_k":
            order = sorted(self.kept, key=lambda e: e["epoch"], reverse=True)
        else:  # top_k: best metric first, newer first among equals
            order = sorted(
                self.kept, key=lambda e: (e["metric"] is not None, e["metric"] or 0.0, e["epoch"]), reverse=True
            )
        return order[self.keep :]

    def save(
        self,
        epoch: int,
        state: Sequence[Parameter],
        meta: Dict[str, Any],
        metric: Optional[float] = None,
        best_weights: Optional[Sequence[Parameter]] = None,
    ) -> List[str]:
        """Write the checkpoints of a completed epoch.

        Args:
            epoch: Completed epochs (1-based number of the epoch just finished).
            state: Every Parameter of the training state.
            meta: Metadata for ``append_dict`` (the kept-file list is added here).
            metric: This epoch's val top-1, or None without evaluation.
            best_weights: When given, these Parameters are also written as ``-best`` (the caller decides
                that this epoch is the best).

        Returns:
            The paths written.
        """
        written: List[str] = []
        save_obj = _entries(state)
        write_epoch = self.keep > 0 and (epoch % self.save_interval == 0 or epoch == self.num_epochs)
        if write_epoch:
            name = os.path.basename(self.epoch_path(epoch))
            self.kept = [e for e in self.kept if e["file"] != name] + [{"file": name, "epoch": epoch, "metric": metric}]
            removals = self._select_removals()
            self.kept = [e for e in self.kept if e not in removals]
        else:
            removals = []
        if best_weights is not None:
            # -best before -last: -last's metadata already names this epoch as the best, so a crash
            # between the two must leave -best complete; a resume from the previous -last rewrites it.
            written.append(save_checkpoint_atomic(_entries(best_weights), self.best_path, append_dict=meta))
        full_meta = dict(meta, **{_KEPT_KEY: self.kept_state()})
        if write_epoch and all(e["file"] != name for e in removals):
            path = save_checkpoint_atomic(save_obj, self.epoch_path(epoch), append_dict=full_meta)
            written.append(path)
            if not self._link_last(path):
                written.append(save_checkpoint_atomic(save_obj, self.last_path, append_dict=full_meta))
        else:
            written.append(save_checkpoint_atomic(save_obj, self.last_path, append_dict=full_meta))
        for entry in removals:  # only after the new state is safely on disk
            try:
                os.unlink(os.path.join(self.folder, entry["file"]))
            except FileNotFoundError:
                pass
        return written

    def _link_last(self, path: str) -> bool:
        """Point ``-last`` at ``path`` with a hard link renamed into place (atomic); False if links are unsupported."""
        try:
            with atomic_path(self.last_path, ".ckpt") as tmp:
                os.link(path, tmp)
            return True
        except OSError:
            return False
