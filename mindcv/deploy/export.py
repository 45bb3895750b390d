"""Export a model to MINDIR, ONNX or AIR for deployment, writing each file atomically.

MINDIR is MindSpore's own graph format (reload with ``nn.GraphCell(mindspore.load(path))``); ONNX runs
under onnxruntime and other engines; AIR is for Ascend's offline tools and can only be produced on the
Ascend backend. The model is exported in eval mode (batch-norm moving statistics, no dropout) for one
fixed input shape.

MindSpore 2.10's ONNX exporter has no converter for the primitives that ``nn.MaxPool2d`` and
``nn.AvgPool2d`` use when they pad (``MaxPool3DWithArgmax``, ``AvgPool3D``), nor for ``PadV3``
(``ops.pad`` with a fill value). :func:`onnx_compatible` therefore swaps such cells, for the duration of
the export, for exact equivalents built from what it does convert: a zero ``Pad`` plus a valid-mode
``MaxPool``/``AvgPool``. A max pool pads with -3e38 instead of -inf by adding ``(mask - 1) * 3e38`` (the
mask is 1 inside the image); an average pool that must not count padding, or that uses ``ceil_mode``,
divides by the average of the same mask. The tests check the swapped cells against the originals and
the ONNX file against the model under onnxruntime.
"""

import contextlib
import logging
import math
import os
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

import mindspore as ms
from mindspore import nn, ops

from ..errors import BackendError, ConfigError
from ..utils.fs import atomic_path
from ..utils.model_stats import trace_cells
from .onnx_runtime import CHECK_TOLERANCE, create_session, max_relative_difference, run_session

__all__ = [
    "EXPORT_FORMATS",
    "FORMAT_EXTENSIONS",
    "resolve_formats",
    "export_path",
    "export_model",
    "check_export",
    "CHECKABLE_FORMATS",
    "onnx_compatible",
    "PaddedMaxPool2d",
    "PaddedAvgPool2d",
]

_logger = logging.getLogger(__name__)

#: Formats :func:`export_model` writes; ``"both"`` means MINDIR and ONNX.
EXPORT_FORMATS: Tuple[str, ...] = ("MINDIR", "ONNX", "AIR")
FORMAT_EXTENSIONS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
#: Formats :func:`check_export` can run here (AIR runs only in Ascend's offline tools).
CHECKABLE_FORMATS: Tuple[str, ...] = ("MINDIR", "ONNX")

# Fill value of max-pool padding: below any real fp32 activation, and finite so that the
# `(mask - 1) * _NEG_FILL` trick gives exactly 0 inside the image (0 * inf would be NaN).
_NEG_FILL = 3.0e38


def resolve_formats(file_format: str) -> List[str]:
    """Map a ``--file_format`` value to the list of formats to write, checking the backend supports them.

    Args:
        file_format: ``MINDIR``, ``ONNX``, ``AIR`` or ``both`` (MINDIR and ONNX), any case.

    Returns:
        The formats, upper case.

    Raises:
        ConfigError: an unknown format, or AIR while the backend is not Ascend.
    """
    key = str(file_format).strip().upper()
    if key == "BOTH":
        return ["MINDIR", "ONNX"]
    if key not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {file_format!r}; choose one of {', '.join(EXPORT_FORMATS)} or 'both'")
    target = ms.get_context("device_target")
    if key == "AIR" and target != "Ascend":
        raise ConfigError(
            f"AIR export needs the Ascend backend (this run uses {target}); export MINDIR or ONNX, or run on "
            "Ascend with --device_target Ascend"
        )
    return [key]


def export_path(output: str, file_format: str) -> str:
    """The file :func:`export_model` writes for ``output`` in ``file_format``.

    A known extension on ``output`` is replaced by the format's (``model.onnx`` asked as MINDIR gives
    ``model.mindir``), so one ``--output`` serves both formats.
    """
    stem, ext = os.path.splitext(os.path.abspath(os.fspath(output)))
    if ext.lower() not in FORMAT_EXTENSIONS.values():
        stem += ext
    return stem + FORMAT_EXTENSIONS[file_format]


class PaddedMaxPool2d(nn.Cell):
    """``nn.MaxPool2d(pad_mode="pad")`` rebuilt from a zero pad and a valid max pool, for ONNX export.

    Args:
        kernel_size: ``(kh, kw)``.
        stride: ``(sh, sw)``.
        paddings: ``((top, bottom), (left, right))``, the extra bottom/right rows of ``ceil_mode`` included.
    """

    def __init__(self, kernel_size: Tuple[int, int], stride: Tuple[int, int], paddings: Tuple[Tuple[int, int], ...]):
        super().__init__()
        self.pad = ops.Pad(((0, 0), (0, 0)) + tuple(tuple(p) for p in paddings))
        self.pool = ops.MaxPool(kernel_size=tuple(kernel_size), strides=tuple(stride), pad_mode="valid")

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        inside = self.pad(ops.ones_like(x))  # 1 on the image, 0 on the padding
        return self.pool(self.pad(x) + (inside - 1.0) * _NEG_FILL)


class PaddedAvgPool2d(nn.Cell):
    """``nn.AvgPool2d`` with padding/ceil_mode rebuilt from zero pads and a valid average pool, for ONNX.

    Args:
        kernel_size: ``(kh, kw)``.
        stride: ``(sh, sw)``.
        padding: symmetric ``((top, bottom), (left, right))`` padding of the original cell.
        extra: ``(bottom, right)`` rows/columns that ``ceil_mode`` adds; never counted in the divisor.
        count_include_pad: whether the symmetric padding counts in the divisor.
        divisor_override: a fixed divisor (0: none).
    """

    def __init__(
        self,
        kernel_size: Tuple[int, int],
        stride: Tuple[int, int],
        padding: Tuple[Tuple[int, int], Tuple[int, int]],
        extra: Tuple[int, int] = (0, 0),
        count_include_pad: bool = True,
        divisor_override: int = 0,
    ) -> None:
        super().__init__()
        (top, bottom), (left, right) = padding
        self.pad_all = ops.Pad(((0, 0), (0, 0), (top, bottom + extra[0]), (left, right + extra[1])))
        self.pad_sym = ops.Pad(((0, 0), (0, 0), (top, bottom), (left, right)))
        self.pad_extra = ops.Pad(((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        self.pool = ops.AvgPool(kernel_size=tuple(kernel_size), strides=tuple(stride), pad_mode="valid")
        self.scale = float(kernel_size[0] * kernel_size[1]) / divisor_override if divisor_override else 1.0
        self.use_override = bool(divisor_override)
        # Every window holds kh*kw counted elements, so the plain mean is already right.
        self.full_windows = count_include_pad and extra == (0, 0)
        self.count_include_pad = count_include_pad

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        mean = self.pool(self.pad_all(x))
        if self.use_override:
            return mean * self.scale
        if self.full_windows:
            return mean
        if self.count_include_pad:
            counted = self.pad_extra(ops.ones_like(self.pad_sym(x)))
        else:
            counted = self.pad_all(ops.ones_like(x))
        # mean of x over the window / mean of the mask = sum of x / number of counted elements
        return mean / self.pool(counted)


def _ceil_extra(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """Rows past the symmetric padding that ``ceil_mode`` reads (PyTorch/MindSpore output-size rule)."""
    if not ceil_mode:
        return 0
    out = math.ceil((size + 2 * pad - kernel) / stride) + 1
    if (out - 1) * stride >= size + pad:  # the last window must start inside the image or its left padding
        out -= 1
    return max(0, (out - 1) * stride + kernel - (size + 2 * pad))


def _pair(value: object) -> Tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[-2]), int(value[-1])
    return int(value), int(value)


def _replacement(cell: nn.Cell, input_shape: Tuple[int, ...], name: str) -> Optional[nn.Cell]:
    """An ONNX-convertible equivalent of ``cell`` for inputs of ``input_shape``, or None if none is needed."""
    if isinstance(cell, nn.MaxPool2d) and getattr(cell, "use_pad", False):
        attrs = cell.max_pool.attrs
        if tuple(attrs["dilation"])[-2:] != (1, 1) or cell.return_indices:
            raise ConfigError(
                f"cannot export '{name}' ({type(cell).__name__} with dilation or return_indices) to ONNX: MindSpore "
                "has no ONNX converter for it; export MINDIR instead"
            )
        kernel, stride = _pair(attrs["ksize"]), _pair(attrs["strides"])
        pad = _pair(attrs["pads"])
        extra = [
            _ceil_extra(input_shape[2 + i], kernel[i], stride[i], pad[i], bool(attrs["ceil_mode"])) for i in range(2)
        ]
        return PaddedMaxPool2d(kernel, stride, ((pad[0], pad[0] + extra[0]), (pad[1], pad[1] + extra[1])))
    if isinstance(cell, nn.AvgPool2d) and getattr(cell, "is_expand", False):
        attrs = cell.avg_pool.attrs
        kernel, stride = _pair(attrs["kernel_size"]), _pair(attrs["strides"])
        pad = tuple(int(p) for p in attrs["pad"])  # (front, back, top, bottom, left, right)
        padding = ((pad[2], pad[3]), (pad[4], pad[5]))
        extra = tuple(
            _ceil_extra(input_shape[2 + i], kernel[i], stride[i], padding[i][0], bool(attrs["ceil_mode"]))
            for i in range(2)
        )
        return PaddedAvgPool2d(
            kernel,
            stride,
            padding,
            extra=extra,
            count_include_pad=bool(attrs["count_include_pad"]),
            divisor_override=int(attrs.get("divisor_override", 0) or 0),
        )
    return None


def _parent_and_key(model: nn.Cell, name: str) -> Tuple[nn.Cell, str]:
    parent = model
    *path, key = name.split(".")
    for part in path:
        parent = parent.name_cells()[part]
    return parent, key


def _set_child(parent: nn.Cell, key: str, child: nn.Cell) -> None:
    if isinstance(parent, (nn.SequentialCell, nn.CellList)):
        # Their construct iterates a cached list that only __setitem__ keeps in sync.
        parent[list(parent.name_cells().keys()).index(key)] = child
    else:
        setattr(parent, key, child)


@contextlib.contextmanager
def onnx_compatible(model: nn.Cell, input_shape: Sequence[int]) -> Iterator[nn.Cell]:
    """Temporarily swap the pooling cells MindSpore cannot convert to ONNX for exact equivalents.

    Args:
        model: the network; it is restored when the block exits, also on error.
        input_shape: the full export input shape ``(N, C, H, W)``; ``ceil_mode`` padding depends on it.

    Yields:
        ``model`` itself, with the swapped cells in place.

    Raises:
        ConfigError: a pooling cell without an ONNX equivalent here (dilated or index-returning max pool),
            or a cell called at several input shapes whose ``ceil_mode`` padding would differ.
    """
    plans = {}
    for call in trace_cells(model, input_shape):
        new = _replacement(call.cell, call.input_shape, call.name)
        if new is None:
            continue
        previous = plans.get(call.name)
        if previous is not None and previous[1] != call.input_shape:
            raise ConfigError(
                f"cannot export '{call.name}' to ONNX: the cell is called with inputs of shapes {previous[1]} and "
                f"{call.input_shape}; export MINDIR instead"
            )
        plans[call.name] = (new, call.input_shape)
    swapped = []
    try:
        for name, (new, _) in plans.items():
            parent, key = _parent_and_key(model, name)
            original = parent.name_cells()[key]
            _set_child(parent, key, new)
            swapped.append((parent, key, original))
        if swapped:
            _logger.info("ONNX export: %d padded pooling cell(s) rewritten as Pad + valid pool", len(swapped))
        yield model
    finally:
        for parent, key, original in reversed(swapped):
            _set_child(parent, key, original)


def _forget_export_graphs(model: nn.Cell) -> None:
    """Make MindSpore compile the next export afresh.

    MindSpore 2.10 caches an export's graph per cell and phase, and the ONNX converter rewrites that graph in place:
    a second ONNX export of the same cell in one process reuses the rewritten graph and fails ("i: 6 out of range:
    6, cnode ... BatchNorm").
    """
    cache = getattr(model, "compile_cache", None)
    if isinstance(cache, set):
        cache.difference_update({phase for phase in cache if str(phase).startswith("export.")})


def _export_one(model: nn.Cell, example: ms.Tensor, path: str, file_format: str) -> str:
    ext = FORMAT_EXTENSIONS[file_format]
    _forget_export_graphs(model)
    # "_variables": MindSpore's external-weights folder for models over 2 GB; chmod: it writes exports read-only.
    with atomic_path(path, ext, sidecars=("_variables",), chmod=True) as produced:
        if file_format == "ONNX":
            with onnx_compatible(model, tuple(example.shape)):
                ms.onnx.export(model, example, file_name=produced, input_names=["input"], output_names=["logits"])
        else:  # MindSpore appends the extension itself
            ms.export(model, example, file_name=produced[: -len(ext)], file_format=file_format)
        if not os.path.isfile(produced):  # MindSpore only logs a failed write
            raise ConfigError(f"MindSpore did not write the {file_format} file {path}; check the folder's free space")
    return path


def export_model(
    model: nn.Cell,
    output: str,
    input_shape: Sequence[int] = (1, 3, 224, 224),
    file_format: str = "MINDIR",
) -> List[str]:
    """Export ``model`` for a fixed input shape; each file appears complete or not at all.

    Args:
        model: the network; exported in eval mode and returned to its previous mode.
        output: target path; the format's extension is added or replaces a known one (see :func:`export_path`).
        input_shape: ``(batch, channels, height, width)`` of the exported graph's input.
        file_format: ``MINDIR``, ``ONNX``, ``AIR`` (Ascend backend only) or ``both``.

    Returns:
        The paths written, in the order of the formats.

    Raises:
        ConfigError: an unknown format, AIR off Ascend, a bad input shape, a model ONNX cannot express,
            or an output folder that cannot be created.
    """
    formats = resolve_formats(file_format)
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ConfigError(f"export input shape must be (batch, channels, height, width) >= 1, got {tuple(input_shape)}")
    paths = [export_path(output, f) for f in formats]
    folder = os.path.dirname(paths[0])
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create export folder {folder}: {e.strerror}; choose another --output") from e
    example = ms.Tensor(np.zeros(shape, dtype=np.float32))
    was_training = model.training
    model.set_train(False)
    try:
        for fmt, path in zip(formats, paths):
            _export_one(model, example, path, fmt)
            _logger.info("exported %s", path)
    finally:
        model.set_train(was_training)
    return paths


def check_export(
    model: nn.Cell,
    path: str,
    input_shape: Sequence[int],
    tolerance: float = CHECK_TOLERANCE,
    seed: int = 0,
) -> float:
    """Run an exported file and ``model`` on the same random batch and compare their outputs.

    ONNX files run under onnxruntime, MINDIR files through MindSpore (``nn.GraphCell(mindspore.load(path))``); the
    model runs in eval mode and is returned to its previous mode.

    Args:
        model: the network the file was exported from.
        path: the ``.onnx`` or ``.mindir`` file.
        input_shape: the exported input shape ``(N, C, H, W)``.
        tolerance: the largest accepted max relative difference (``max|file - model| / max|model|``).
        seed: of the standard-normal batch.

    Returns:
        The max relative difference.

    Raises:
        ConfigError: a format that cannot be run here (AIR, an unknown extension).
        BackendError: onnxruntime is missing or cannot load the file, or the difference exceeds ``tolerance``.
    """
    fmt = {ext: f for f, ext in FORMAT_EXTENSIONS.items()}.get(os.path.splitext(path)[1].lower())
    if fmt not in CHECKABLE_FORMATS:
        raise ConfigError(f"cannot check {path}: --check runs ONNX and MINDIR files (AIR needs Ascend's own tools)")
    x = np.random.default_rng(seed).standard_normal(tuple(int(d) for d in input_shape)).astype(np.float32)
    was_training = model.training
    model.set_train(False)
    try:
        expected = model(ms.Tensor(x)).asnumpy()
    finally:
        model.set_train(was_training)
    if fmt == "ONNX":
        got = run_session(create_session(path), x)
    else:
        got = nn.GraphCell(ms.load(path))(ms.Tensor(x)).asnumpy()
    diff = max_relative_difference(got, expected)
    if not diff <= tolerance:  # NaN fails too
        raise BackendError(
            f"{path} does not reproduce the model: max relative difference {diff:.3g} > {tolerance:g} on a random "
            f"batch of shape {tuple(x.shape)}; export again, or report the model and format as a bug"
        )
    return diff
