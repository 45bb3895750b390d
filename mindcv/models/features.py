"""Feature-map extraction driven by a model's ``feature_info``.

A model that supports ``features_only`` exposes ``feature_info`` (one ``dict(chs, reduction, name)``
per feature level, in forward order) and ``forward_intermediates(x)`` returning the matching tuple
of feature maps. :class:`FeatureExtractor` selects levels by index and drops the classifier, keeping
parameter names unchanged so checkpoints of the full model still load.

:class:`FeatureExtractWrapper` is upstream MindCV's wrapper, for any Cell that declares ``feature_info`` whose
names are its top-level child cells (or, with ``flatten_sequential``, the children of its ``SequentialCell``s),
registered in the order the forward pass uses them.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import mindspore as ms
from mindspore import nn

from ..errors import ConfigError

__all__ = ["FeatureExtractor", "FeatureExtractWrapper"]


def _check_indices(out_indices: Optional[Sequence[int]], n: int) -> Tuple[int, ...]:
    """``out_indices`` as non-negative indices into ``n`` feature levels (default all)."""
    indices = tuple(range(n)) if out_indices is None else tuple(int(i) for i in out_indices)
    bad = [i for i in indices if not -n <= i < n]
    if bad or not indices:
        raise ConfigError(f"out_indices {list(indices)} out of range for {n} feature levels (0..{n - 1})")
    return tuple(i % n for i in indices)


class FeatureExtractor(nn.Cell):
    """Return the feature maps of ``model`` at ``out_indices`` as a tuple.

    Args:
        model: a model with ``feature_info`` and ``forward_intermediates``.
        out_indices: indices into ``model.feature_info`` (negative counts from the end); default all.
    """

    def __init__(self, model: nn.Cell, out_indices: Optional[Sequence[int]] = None) -> None:
        # auto_prefix=False: the wrapped model's parameters keep their names ("conv1.weight", not
        # "model.conv1.weight"), so a full-model checkpoint loads into the extractor as well.
        super().__init__(auto_prefix=False)
        info: List[Dict] = list(getattr(model, "feature_info", []) or [])
        if not info or not hasattr(model, "forward_intermediates"):
            raise ConfigError(f"{type(model).__name__} does not support features_only (no feature_info)")
        self.out_indices: Tuple[int, ...] = _check_indices(out_indices, len(info))
        if hasattr(model, "reset_classifier"):
            model.reset_classifier(0)  # the head is not used; drop its parameters
        self.model = model
        self.feature_info = [dict(info[i]) for i in self.out_indices]
        self.pretrained_cfg = getattr(model, "pretrained_cfg", {})

    def channels(self) -> List[int]:
        """Channels of each returned feature map."""
        return [f["chs"] for f in self.feature_info]

    def reductions(self) -> List[int]:
        """Stride of each returned feature map relative to the input."""
        return [f["reduction"] for f in self.feature_info]

    def construct(self, x: ms.Tensor) -> Tuple[ms.Tensor, ...]:
        feats = self.model.forward_intermediates(x)
        return tuple(feats[i] for i in self.out_indices)


class FeatureExtractWrapper(nn.Cell):
    """Upstream MindCV's feature wrapper: the feature maps named by ``net.feature_info`` at ``out_indices``.

    A model with ``forward_intermediates`` (every registered model) is run as is. Any other Cell is re-run as the
    chain of its child cells in registration order, up to the last requested one, each requested child's output
    being returned; with ``net.flatten_sequential`` true, a ``SequentialCell`` child counts as its own children
    (``feature_info`` names them ``"<child>.<index>"``). That chain must be the Cell's forward pass, which holds for
    plain stacks of blocks; a Cell that reuses a child or computes between children needs ``forward_intermediates``.

    Args:
        net: the network, with ``feature_info`` (a list of ``dict(chs, reduction, name)``).
        out_indices: indices into ``feature_info``; default ``[0, 1, 2, 3, 4]`` as upstream's.

    Returns (from ``construct``) the maps in forward order, as a tuple.
    """

    def __init__(self, net: nn.Cell, out_indices: Sequence[int] = (0, 1, 2, 3, 4)) -> None:
        super().__init__(auto_prefix=False)
        info: List[Dict] = list(getattr(net, "feature_info", []) or [])
        if not info:
            raise ConfigError(
                f"{type(net).__name__} has no feature_info; declare one dict(chs, reduction, name) per feature level"
            )
        indices = sorted(set(_check_indices(out_indices, len(info))))
        self.feature_info = [dict(info[i]) for i in indices]
        self._out_channels = [f["chs"] for f in self.feature_info]
        self.use_intermediates = hasattr(net, "forward_intermediates")
        if self.use_intermediates:
            self.net = net
            self.return_index = tuple(indices)
            return
        children = []
        for name, cell in net.name_cells().items():
            if getattr(net, "flatten_sequential", False) and isinstance(cell, nn.SequentialCell):
                children.extend((f"{name}.{child}", sub) for child, sub in cell.name_cells().items())
            else:
                children.append((name, cell))
        wanted = {info[i]["name"] for i in indices}
        chain, returned = [], []
        for name, cell in children:
            if not wanted:
                break
            chain.append(cell)
            if name in wanted:
                returned.append(len(chain) - 1)
                wanted.discard(name)
        if wanted:
            raise ConfigError(
                f"feature_info names {sorted(wanted)} are not child cells of {type(net).__name__} "
                f"(children: {', '.join(n for n, _ in children)}); set flatten_sequential=True for names inside a "
                "SequentialCell"
            )
        self.net = nn.CellList(chain)
        self.return_index = tuple(returned)

    @property
    def out_channels(self) -> List[int]:
        """Channels of each returned feature map (upstream's property)."""
        return list(self._out_channels)

    def construct(self, x: ms.Tensor) -> Tuple[ms.Tensor, ...]:
        if self.use_intermediates:
            feats = self.net.forward_intermediates(x)
            return tuple(feats[i] for i in self.return_index)
        out = ()
        for i, cell in enumerate(self.net):
            x = cell(x)
            if i in self.return_index:
                out = out + (x,)
        return out
