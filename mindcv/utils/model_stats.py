"""Parameter counts and multiply-accumulate counts (MACs), measured from the model itself.

MACs are measured, not looked up: :func:`trace_cells` runs one forward pass of a single zero image in
PyNative mode with forward hooks on every leaf cell and records the shapes each call saw; the counts
follow from those shapes and the layers' weights. Every call of a cell counts, so a cell used twice
counts twice.

What is counted, per image:

* ``conv``: multiply-adds of convolutions, ``output elements x (in_channels / groups) x kernel area``
  (transposed convolutions: ``input elements x (out_channels / groups) x kernel area``). Groups and
  dilation are accounted for through the weight and the output shape; bias additions are not counted.
* ``dense``: multiply-adds of fully connected layers, ``output elements x in_features``.
* ``norm``: one multiply-add per output element of a batch/group/layer norm (its inference-time affine
  form, which is usually folded into the preceding convolution).
* ``pool``: one operation per element of each window of a pooling cell (adds or comparisons).

:func:`count_macs` returns ``conv + dense``, the convention of the papers and of timm/fvcore model
tables ("FLOPs" there means multiply-adds). Operations written as tensor methods inside ``construct``
rather than as cells (the global average pool, residual additions, activations) are not counted.
"""

from dataclasses import dataclass, field
from typing import Iterator, List, Sequence, Tuple

import numpy as np

import mindspore as ms
from mindspore import nn

__all__ = ["CellCall", "MacsReport", "count_params", "trace_cells", "profile_macs", "count_macs"]

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_TRANSPOSED = (nn.Conv1dTranspose, nn.Conv2dTranspose, nn.Conv3dTranspose)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d) + _TRANSPOSED


@dataclass
class CellCall:
    """One call of a leaf cell during a traced forward pass.

    Attributes:
        name: the cell's name in ``model.cells_and_names()`` (``"layer1.0.conv1"``).
        cell: the cell.
        input_shape: shape of its first input.
        output_shape: shape of its (first) output.
    """

    name: str
    cell: nn.Cell
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]


@dataclass
class MacsReport:
    """Per-image operation counts of one forward pass, by kind (see the module docstring).

    Attributes:
        conv: convolution multiply-adds.
        dense: fully connected multiply-adds.
        norm: normalisation multiply-adds (one per output element).
        pool: pooling window operations.
        by_layer: ``(cell name, kind, count)`` for every counted call, in call order.
    """

    conv: int = 0
    dense: int = 0
    norm: int = 0
    pool: int = 0
    by_layer: List[Tuple[str, str, int]] = field(default_factory=list)

    @property
    def macs(self) -> int:
        """Convolution plus dense multiply-adds: the figure papers and model tables report."""
        return self.conv + self.dense


def count_params(model: nn.Cell) -> Tuple[int, int]:
    """Count parameter elements.

    Args:
        model: any cell.

    Returns:
        ``(trainable, total)``: ``total`` also counts the non-trainable parameters, such as the
        batch-norm moving mean and variance, i.e. everything a checkpoint of the model stores.
        A parameter shared by several cells counts once.
    """
    total = trainable = 0
    seen = set()
    for p in model.get_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        size = int(np.prod(p.shape)) if len(p.shape) else 1
        total += size
        if p.requires_grad:
            trainable += size
    return trainable, total


def _leaf_cells(model: nn.Cell) -> Iterator[Tuple[str, nn.Cell]]:
    for name, cell in model.cells_and_names():
        if not cell.name_cells():  # containers compute nothing themselves
            yield name, cell


def _first_shape(value: object) -> Tuple[int, ...]:
    while isinstance(value, (tuple, list)) and value:
        value = value[0]
    return tuple(int(d) for d in getattr(value, "shape", ()))


def trace_cells(model: nn.Cell, input_shape: Sequence[int]) -> List[CellCall]:
    """Run one forward pass of a zero tensor and record the shapes every leaf cell saw.

    The model is put in eval mode for the pass (batch-norm statistics must not move, dropout must be
    off) and its previous mode, the execution mode and the hooks are restored afterwards. Forward
    hooks only fire in PyNative mode, so the pass runs there.

    Args:
        model: the network.
        input_shape: full input shape including the batch dimension, e.g. ``(1, 3, 224, 224)``.

    Returns:
        One :class:`CellCall` per leaf-cell call, in call order.
    """
    calls: List[CellCall] = []
    handles = []

    def make_hook(cell_name: str):
        def hook(cell: nn.Cell, args: tuple, output: object) -> None:
            calls.append(CellCall(cell_name, cell, _first_shape(args), _first_shape(output)))

        return hook

    was_training = model.training
    mode = ms.get_context("mode")
    try:
        if mode != ms.PYNATIVE_MODE:
            ms.set_context(mode=ms.PYNATIVE_MODE)
        for name, cell in _leaf_cells(model):
            handles.append(cell.register_forward_hook(make_hook(name)))
        model.set_train(False)
        model(ms.Tensor(np.zeros(tuple(input_shape), dtype=np.float32)))
    finally:
        for handle in handles:
            handle.remove()
        model.set_train(was_training)
        if mode != ms.PYNATIVE_MODE:
            ms.set_context(mode=mode)
    return calls


def _numel(shape: Sequence[int]) -> int:
    return int(np.prod(shape)) if len(shape) else 1


def _kernel_area(cell: nn.Cell, spatial_rank: int) -> int:
    size = cell.kernel_size
    if isinstance(size, (tuple, list)):
        return _numel(size[-spatial_rank:])  # MindSpore pads some kernel tuples with leading 1s
    return int(size) ** spatial_rank


def _call_ops(call: CellCall) -> Tuple[str, int]:
    """Kind and count of one call (count 0 for cells that are not counted)."""
    cell = call.cell
    batch = call.output_shape[0] if call.output_shape else 1
    if isinstance(cell, _CONVS):
        weight = cell.weight.shape  # (out, in/groups, *k); transposed: (in, out/groups, *k)
        per_position = _numel(weight[1:])
        if isinstance(cell, _TRANSPOSED):
            return "conv", _numel(call.input_shape) // max(batch, 1) * per_position
        return "conv", _numel(call.output_shape) // max(batch, 1) * per_position
    if isinstance(cell, nn.Dense):
        return "dense", _numel(call.output_shape) // max(batch, 1) * int(cell.in_channels)
    if isinstance(cell, _NORMS):
        return "norm", _numel(call.output_shape) // max(batch, 1)
    if isinstance(cell, _POOLS):
        return "pool", _numel(call.output_shape) // max(batch, 1) * _kernel_area(cell, len(call.output_shape) - 2)
    return "", 0


def profile_macs(model: nn.Cell, input_size: Sequence[int] = (3, 224, 224)) -> MacsReport:
    """Measure the per-image operation counts of ``model`` by kind (see the module docstring).

    Args:
        model: the network; left in the train/eval mode it was in.
        input_size: one image's shape, ``(channels, height, width)``.

    Returns:
        A :class:`MacsReport`.
    """
    report = MacsReport()
    for call in trace_cells(model, (1,) + tuple(input_size)):
        kind, count = _call_ops(call)
        if kind:
            setattr(report, kind, getattr(report, kind) + count)
            report.by_layer.append((call.name, kind, count))
    return report


def count_macs(model: nn.Cell, input_size: Sequence[int] = (3, 224, 224)) -> int:
    """Multiply-accumulates of convolutions and dense layers for one image, measured by a forward pass.

    This is the figure papers and timm/fvcore call "FLOPs" (Res2Net-50 at 224x224: about 4.3 G).

    Args:
        model: the network; left in the train/eval mode it was in.
        input_size: one image's shape, ``(channels, height, width)``.

    Returns:
        The count as an int.
    """
    return profile_macs(model, input_size).macs
