"""Feature-map extraction driven by a model's ``feature_info``.

A model that supports ``features_only`` exposes ``feature_info`` (one ``dict(chs, reduction, name)``
per feature level, in forward order) and ``forward_intermediates(x)`` returning the matching tuple
of feature maps. :class:`FeatureExtractor` selects levels by index and drops the classifier, keeping
parameter names unchanged so checkpoints of the full model still load.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import mindspore as ms
from mindspore import nn

from ..errors import ConfigError

__all__ = ["FeatureExtractor"]


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
        n = len(info)
        indices = tuple(range(n)) if out_indices is None else tuple(int(i) for i in out_indices)
        bad = [i for i in indices if not -n <= i < n]
        if bad or not indices:
            raise ConfigError(f"out_indices {list(indices)} out of range for {n} feature levels (0..{n - 1})")
        self.out_indices: Tuple[int, ...] = tuple(i % n for i in indices)
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
