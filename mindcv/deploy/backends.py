"""Evaluate and classify through ONNX Runtime: a model exported once per weights and input shape, then reused.

On this project's CPUs ONNX Runtime runs the exported graph about twice as fast as MindSpore 2.10 runs the model (whose
CPU convolutions must be capped at AVX2; see ``docs/performance.md``), so ``validate.py`` and ``infer.py`` can run
through it with ``--backend onnxruntime``. :class:`OnnxRuntimeModel` stands in for the network: it is called with a
float32 ``(N, C, H, W)`` numpy batch and returns the logits as numpy.

The ONNX file lives in ``$MINDCV_HOME/onnx`` (or a folder given), named by :func:`onnx_cache_key`: a hash of the
weights (every parameter's name, dtype, shape and bytes, BatchNorm statistics included), of the network's structure
(its cell tree as ``repr`` prints it), of the input shape, of the exporter (MindSpore's version and the ONNX opset it
writes) and of this package's version. A change to any of them exports a new file; the same model, weights and
shape reuse the old one. The file is written under a temporary name and renamed, under a lock, so concurrent
processes (``msrun`` ranks) export it once.

Before its first use in a process, each session is checked against the MindSpore model on the first real batch;
a difference above :data:`~mindcv.deploy.onnx_runtime.CHECK_TOLERANCE` re-exports the cached file once and then
stops with a one-line :class:`~mindcv.errors.BackendError`.
"""

import hashlib
import logging
import os
import re
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

import mindspore as ms
from mindspore import nn

from ..errors import BackendError
from ..utils.download import get_cache_dir
from ..utils.fs import file_lock, unlink_quiet
from ..version import __version__
from .export import export_model
from .onnx_runtime import (
    CHECK_TOLERANCE,
    available_cores,
    create_session,
    import_onnxruntime,
    max_relative_difference,
    run_session,
)

__all__ = ["ONNX_OPSET", "weights_digest", "onnx_cache_key", "cached_onnx_export", "OnnxRuntimeModel"]

_logger = logging.getLogger(__name__)

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

#: The ONNX opset MindSpore 2.10's exporter writes (it has no option to choose one).
ONNX_OPSET = 11


def weights_digest(model: nn.Cell) -> str:
    """SHA-256 of every parameter's name, dtype, shape and values, in name order (BatchNorm statistics included)."""
    digest = hashlib.sha256()
    for name, param in sorted(model.parameters_and_names(), key=lambda item: item[0]):
        values = np.ascontiguousarray(param.asnumpy())
        digest.update(f"{name}\0{values.dtype.str}\0{values.shape}\0".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def onnx_cache_key(model: nn.Cell, input_shape: Sequence[int]) -> str:
    """The hex key naming the cached ONNX file of ``model`` at ``input_shape`` (see the module docstring)."""
    parts = [
        f"mindcv {__version__}",
        f"mindspore {ms.__version__} opset {ONNX_OPSET}",
        "x".join(str(int(d)) for d in input_shape),
        _ADDRESS.sub("", repr(model)),  # initialiser objects print their address, which differs per process
        weights_digest(model),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _architecture(model: nn.Cell) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__.lower())


def cached_onnx_export(
    model: nn.Cell, input_shape: Sequence[int], cache_dir: Optional[str] = None, refresh: bool = False
) -> Tuple[str, bool]:
    """The ONNX file of ``model`` at ``input_shape``, exported into the cache unless it is there already.

    Args:
        model: the network (exported in eval mode).
        input_shape: ``(N, C, H, W)`` of the exported input.
        cache_dir: folder of the cached files; default ``$MINDCV_HOME/onnx``.
        refresh: export again even if the file exists (a cached file that failed its check).

    Returns:
        ``(path, exported)``: the file, and whether this call wrote it.

    Raises:
        ConfigError: the model cannot be exported to ONNX, or the folder cannot be created.
        DownloadError: the default cache folder cannot be created.
    """
    shape = tuple(int(d) for d in input_shape)
    folder = os.path.abspath(os.path.expanduser(cache_dir)) if cache_dir else get_cache_dir("onnx")
    key = onnx_cache_key(model, shape)
    path = os.path.join(folder, f"{_architecture(model)}-{'x'.join(map(str, shape))}-{key[:16]}.onnx")
    with file_lock(path):
        if refresh:
            unlink_quiet(path)
        if os.path.isfile(path):
            return path, False
        export_model(model, path, shape, "ONNX")
        _logger.info("exported %s for the onnxruntime backend", path)
        return path, True


class OnnxRuntimeModel:
    """A network evaluated by ONNX Runtime from its cached ONNX export; call it with numpy batches.

    Args:
        model: the MindSpore network with its weights (put in eval mode); it is exported on the first call at each
            input shape and run once on that first batch for the check.
        cache_dir: folder of the cached ONNX files; default ``$MINDCV_HOME/onnx``.
        threads: ONNX Runtime intra-op threads; default the cores this process may use.
        tolerance: the largest accepted max relative difference against MindSpore on the first batch.

    Attributes:
        num_classes: the network's class count.
        pretrained_cfg: the network's ``pretrained_cfg`` (its data configuration).
        checks: ``{input shape: max relative difference}`` measured at each shape's first batch.
        paths: ``{input shape: ONNX file}``.

    Raises:
        BackendError: onnxruntime is not installed (raised here, before any export).
    """

    def __init__(
        self,
        model: nn.Cell,
        cache_dir: Optional[str] = None,
        threads: Optional[int] = None,
        tolerance: float = CHECK_TOLERANCE,
    ) -> None:
        import_onnxruntime()
        self.model = model
        self.model.set_train(False)
        self.num_classes = getattr(model, "num_classes", None)
        self.pretrained_cfg = getattr(model, "pretrained_cfg", None) or {}
        self.cache_dir = cache_dir
        self.threads = int(threads or available_cores())
        self.tolerance = float(tolerance)
        self.checks: Dict[Tuple[int, ...], float] = {}
        self.paths: Dict[Tuple[int, ...], str] = {}
        self._sessions: Dict[Tuple[int, ...], Any] = {}

    def _checked_session(self, images: np.ndarray) -> Tuple[Any, np.ndarray]:
        """Export (or reuse) the file for this batch's shape, compare it with MindSpore on the batch; keep it."""
        shape = tuple(images.shape)
        self.model.set_train(False)
        expected = self.model(ms.Tensor(images)).asnumpy()
        for attempt in range(2):  # the second pass exports afresh: a damaged or stale cached file is replaced
            path, exported = cached_onnx_export(self.model, shape, self.cache_dir, refresh=attempt > 0)
            try:
                session = create_session(path, self.threads)
                logits = run_session(session, images)
            except BackendError as e:
                if exported:
                    raise
                _logger.warning("%s; exporting it again", e)
                continue
            diff = max_relative_difference(logits, expected)
            if diff <= self.tolerance:
                break
            if exported:
                raise BackendError(
                    f"onnxruntime's output from {path} differs from MindSpore's by {diff:.3g} (max relative "
                    f"difference, limit {self.tolerance:g}) on the first batch; use --backend mindspore and report "
                    "the model as a bug"
                )
            _logger.warning("cached %s differs from the model by %.3g; exporting it again", path, diff)
        _logger.info("onnxruntime backend: %s, %d threads, max relative difference %.2e", path, self.threads, diff)
        self._sessions[shape], self.checks[shape], self.paths[shape] = session, diff, path
        return session, logits

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Logits (float32 ``(N, num_classes)``) of a float32 ``(N, C, H, W)`` batch."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        session = self._sessions.get(tuple(images.shape))
        if session is None:
            return self._checked_session(images)[1]
        return run_session(session, images)
