"""Upstream MindCV's ``CheckpointManager``: save a network's checkpoint and keep the best or the latest K files.

``train.py`` keeps its own run folder (``mindcv.engine``: ``-last``, epoch and ``-best`` files with the training
state and exact resume); this class is the small standalone policy that upstream's custom training loops call as
``manager.save_ckpoint(network, num_ckpt, metric, save_path)``. Every file is written atomically.
"""

import logging
import os
from typing import Any, List, Optional, Tuple, Union

import numpy as np

import mindspore as ms

from ..errors import ConfigError
from .checkpoint import save_checkpoint_atomic
from .fs import unlink_quiet

__all__ = ["CheckpointManager"]

_logger = logging.getLogger(__name__)
_POLICIES = (None, "top_k", "latest_k")


class CheckpointManager:
    """Save checkpoints under a keep policy.

    Args:
        ckpt_save_policy: ``None`` keeps every file, ``"latest_k"`` the newest K, ``"top_k"`` the K with the
            highest metric (K is ``num_ckpt`` of :meth:`save_ckpoint`).
    """

    def __init__(self, ckpt_save_policy: Optional[str] = None) -> None:
        if ckpt_save_policy not in _POLICIES:
            raise ConfigError(f"ckpt_save_policy must be None, 'top_k' or 'latest_k', got {ckpt_save_policy!r}")
        self.ckpt_save_policy = ckpt_save_policy
        self._files: List[Any] = []  # latest_k: paths, oldest first; top_k: (path, metric), best first

    @property
    def ckpoint_filelist(self) -> List[Any]:
        """The kept files: paths (latest_k, oldest first) or ``(path, metric)`` pairs (top_k, best first)."""
        return list(self._files)

    @property
    def ckpoint_num(self) -> int:
        """How many files are kept."""
        return len(self._files)

    def save_ckpoint(
        self, network: Any, num_ckpt: int = 10, metric: Union[float, ms.Tensor, None] = None, save_path: str = ""
    ) -> Optional[List[Any]]:
        """Save ``network`` (a Cell or anything :func:`mindspore.save_checkpoint` takes) to ``save_path`` and apply
        the policy; files that fall out of it are deleted after the new one is on disk.

        Returns:
            The kept-file list (:attr:`ckpoint_filelist`), or None with the keep-all policy.
        """
        if not save_path:
            raise ConfigError("save_ckpoint needs save_path, the .ckpt file to write")
        if self.ckpt_save_policy is None:
            save_checkpoint_atomic(network, save_path)
            return None
        if num_ckpt < 1:
            raise ConfigError(f"num_ckpt must be at least 1, got {num_ckpt}")
        if self.ckpt_save_policy == "latest_k":
            save_checkpoint_atomic(network, save_path)
            self._files = [f for f in self._files if f != save_path] + [save_path]
            drop, self._files = self._files[:-num_ckpt], self._files[-num_ckpt:]
        else:
            if metric is None:
                raise ConfigError("the top_k policy ranks checkpoints by metric: pass metric=<validation accuracy>")
            value = float(np.asarray(metric.asnumpy() if isinstance(metric, ms.Tensor) else metric))
            ranked: List[Tuple[str, float]] = sorted(
                [f for f in self._files if f[0] != save_path] + [(save_path, value)], key=lambda f: f[1], reverse=True
            )
            if (save_path, value) not in ranked[:num_ckpt]:
                return self.ckpoint_filelist  # worse than every kept file: not written
            save_checkpoint_atomic(network, save_path)
            drop, self._files = [f[0] for f in ranked[num_ckpt:]], ranked[:num_ckpt]
            _logger.info("top-%d checkpoints: %s", num_ckpt, ", ".join(f"{p} ({m:.4f})" for p, m in self._files))
        for path in drop:
            if path != save_path:
                unlink_quiet(path)
        return self.ckpoint_filelist

    def remove_ckpoint_file(self, file_name: str) -> None:
        """Delete a kept file and forget it."""
        unlink_quiet(file_name)
        self._files = [f for f in self._files if (f[0] if isinstance(f, tuple) else f) != file_name]

    def update_ckpoint_filelist(self, directory: str, prefix: str) -> None:
        """Adopt the ``<prefix>-<digits/_>.ckpt`` files of ``directory`` (oldest first) as the kept list."""
        names = [
            n
            for n in os.listdir(directory)
            if n.startswith(prefix + "-") and n.endswith(".ckpt") and not any(c.isalpha() for c in n[len(prefix) : -5])
        ]
        paths = sorted((os.path.join(directory, n) for n in names), key=os.path.getmtime)
        self._files = paths if self.ckpt_save_policy != "top_k" else [(p, float("-inf")) for p in paths]
