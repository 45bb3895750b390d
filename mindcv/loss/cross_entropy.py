"""Classification losses: cross-entropy and binary cross-entropy with label smoothing and soft targets.

Both accept hard labels (class indices, shape ``(N,)``) and soft labels (per-class probabilities, shape ``(N, C)``,
e.g. one-hot or mixup/cutmix targets). The choice is made on ``labels.ndim``, which is static in graph mode, so the
same Cell compiles for either kind. Logits are cast to float32 first: under AMP O2/O3 a float16 log-softmax loses
precision and can overflow.
"""

from typing import Optional, Tuple, Union

import mindspore as ms
from mindspore import Tensor, nn, ops

__all__ = ["CrossEntropySmooth", "BinaryCrossEntropySmooth"]

Logits = Union[Tensor, Tuple[Tensor, ...]]

# Per-sample loss and its gradient in one kernel (see CrossEntropySmooth._fused).
_SOFTMAX_CE = ops.SoftmaxCrossEntropyWithLogits()


class _LossWithAux(nn.Cell):
    """Shared by both losses: the settings, and main plus ``aux_factor``-weighted auxiliary logits."""

    def __init__(
        self,
        smoothing: float = 0.0,
        aux_factor: float = 0.0,
        reduction: str = "mean",
        weight: Optional[Tensor] = None,
    ) -> None:
        super().__init__()
        self.smoothing = float(smoothing)
        self.aux_factor = float(aux_factor)
        self.reduction = reduction
        self.weight = weight

    def _single(self, logits: Tensor, labels: Tensor) -> Tensor:
        raise NotImplementedError

    def construct(self, logits: Logits, labels: Tensor) -> Tensor:
        if isinstance(logits, (tuple, list)):
            loss = self._single(logits[0], labels)
            for aux in logits[1:]:
                loss = loss + self.aux_factor * self._single(aux, labels)
            return loss
        return self._single(logits, labels)


class CrossEntropySmooth(_LossWithAux):
    """Softmax cross-entropy with label smoothing, for hard or soft targets.

    With smoothing ``s`` and ``C`` classes the target distribution is ``y * (1 - s) + s / C`` (``y`` one-hot for
    hard labels), as in ``torch.nn.CrossEntropyLoss(label_smoothing=s)``; without class weights, one-hot soft labels
    give the same loss as the equivalent hard labels.

    Args:
        smoothing: Label smoothing ``s`` in ``[0, 1)``.
        aux_factor: Weight of auxiliary logits. When the network returns a tuple ``(main, aux1, ...)`` the loss is
            ``loss(main) + aux_factor * sum(loss(aux_i))``; a plain tensor ignores it.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-sample losses).
        weight: Optional per-class weights of shape ``(C,)``. With hard labels and ``"mean"`` the weighted sum is
            divided by the summed weights of the targets (torch semantics); with soft labels by the batch size.
    """

    def _single(self, logits: Tensor, labels: Tensor) -> Tensor:
        logits = logits.astype(ms.float32)
        if self.weight is None and logits.ndim == 2:
            return self._fused(logits, labels)
        if labels.ndim == logits.ndim:
            labels = labels.astype(ms.float32)
        return ops.cross_entropy(
            logits, labels, weight=self.weight, reduction=self.reduction, label_smoothing=self.smoothing
        )

    def _fused(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Unweighted (N, C) logits: MindSpore's fused softmax cross-entropy kernel, which also returns the gradient.

        ``ops.cross_entropy`` launches a chain of small kernels per training step (log-softmax, gather, smoothing
        term, reduction and their gradients); this takes 3 (one-hot, the fused kernel, one Mul for its gradient), which
        shortens a CPU step (measured: ``docs/performance.md``). The smoothed target of hard labels comes from one
        one-hot kernel with the smoothed on/off values, so hard labels must be valid class indices (no
        ``ignore_index``).
        """
        num_classes = logits.shape[1]
        off = self.smoothing / num_classes
        if labels.ndim == logits.ndim:
            target = labels.astype(ms.float32)
            if self.smoothing > 0:
                target = target * (1.0 - self.smoothing) + off
        else:
            target = ops.one_hot(
                labels, num_classes, Tensor(1.0 - self.smoothing + off, ms.float32), Tensor(off, ms.float32)
            )
        per_sample = _SOFTMAX_CE(logits, target)[0]
        if self.reduction == "mean":
            return per_sample.mean()
        if self.reduction == "sum":
            return per_sample.sum()
        return per_sample


class BinaryCrossEntropySmooth(_LossWithAux):
    """Sigmoid binary cross-entropy per class, with label smoothing, for hard or soft targets.

    Hard labels are one-hot encoded. The target is then ``y * (1 - s) + s / C``, the same smoothed distribution as
    :class:`CrossEntropySmooth` (timm's ``BinaryCrossEntropy`` uses the same on/off values), and each of the ``C``
    outputs is an independent binary classifier.

    Args:
        smoothing: Label smoothing ``s`` in ``[0, 1)``.
        aux_factor: Weight of auxiliary logits, as in :class:`CrossEntropySmooth`.
        reduction: ``"mean"`` (over samples and classes), ``"sum"`` or ``"none"`` (shape ``(N, C)``).
        weight: Optional per-class weights of shape ``(C,)``, multiplying each class's term.
        pos_weight: Optional per-class weights of the positive term, shape ``(C,)``.
    """

    def __init__(
        self,
        smoothing: float = 0.0,
        aux_factor: float = 0.0,
        reduction: str = "mean",
        weight: Optional[Tensor] = None,
        pos_weight: Optional[Tensor] = None,
    ) -> None:
        super().__init__(smoothing, aux_factor, reduction, weight)
        self.pos_weight = pos_weight

    def _single(self, logits: Tensor, labels: Tensor) -> Tensor:
        logits = logits.astype(ms.float32)
        num_classes = logits.shape[-1]
        if labels.ndim == logits.ndim:
            target = labels.astype(ms.float32)
        else:
            target = ops.one_hot(labels, num_classes, Tensor(1.0, ms.float32), Tensor(0.0, ms.float32))
        if self.smoothing > 0:
            target = target * (1.0 - self.smoothing) + self.smoothing / num_classes
        return ops.binary_cross_entropy_with_logits(
            logits, target, weight=self.weight, pos_weight=self.pos_weight, reduction=self.reduction
        )
