"""ONNX Runtime sessions for exported models, and the comparison of an exported file with the model it came from.

onnxruntime is an optional dependency (``pip install onnxruntime``, or the package's ``onnx`` extra); it is imported
when a session is first needed, and its absence is a one-line :class:`~mindcv.errors.BackendError` naming the install.

Two outputs are compared by their *max relative difference*, ``max|a - b| / max|b|``: the largest error measured
against the reference's own scale. Elementwise ``|a - b| / |b|`` would be dominated by logits that happen to be near 0.
"""

import logging
import os
from typing import Any, Optional

import numpy as np

from ..errors import BackendError

__all__ = [
    "ONNXRUNTIME_INSTALL",
    "CHECK_TOLERANCE",
    "import_onnxruntime",
    "available_cores",
    "create_session",
    "run_session",
    "max_relative_difference",
]

_logger = logging.getLogger(__name__)

#: What to install for the onnxruntime backend, named in the error when it is missing.
ONNXRUNTIME_INSTALL = "pip install onnxruntime (or pip install 'mindcv[onnx]')"

#: Largest max relative difference accepted between an exported file and the MindSpore model (fp32 both).
CHECK_TOLERANCE = 1e-4


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module.

    Raises:
        BackendError: it is not installed (the message names the install command).
    """
    try:
        import onnxruntime
    except ImportError as e:
        raise BackendError(
            f"the onnxruntime backend needs the onnxruntime package ({e}); {ONNXRUNTIME_INSTALL}"
        ) from None
    return onnxruntime


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def create_session(path: str, threads: Optional[int] = None) -> Any:
    """An ONNX Runtime CPU session for the file ``path``, with all graph optimisations.

    Args:
        path: an ``.onnx`` file.
        threads: intra-op threads; default :func:`available_cores`. Operators run one at a time (inter-op 1): the
            graph is a chain, and a second pool would compete with the first for the same cores.

    Raises:
        BackendError: onnxruntime is missing, or it cannot load the file (the message names it).
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or available_cores())
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its optimiser's notes are not the user's business
    try:
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/NoSuchFile types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BackendError(f"onnxruntime cannot load {path}: {first}; export it again (export.py --file_format ONNX)")


def run_session(session: Any, images: np.ndarray) -> np.ndarray:
    """The session's first output for one float32 ``(N, C, H, W)`` batch."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(images, dtype=np.float32)})[0]


def max_relative_difference(actual: np.ndarray, expected: np.ndarray) -> float:
    """``max|actual - expected| / max|expected|`` in float64 (see the module docstring); inf on a shape mismatch.

    A reference that is all zeros is compared absolutely. NaN anywhere gives NaN, which fails every ``<=`` check.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return float("inf")
    if actual.size == 0:
        return 0.0
    scale = float(np.abs(expected).max())
    return float(np.abs(actual - expected).max() / (scale if scale > 0 else 1.0))
