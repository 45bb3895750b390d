"""Asymmetric losses (ASL) for single-label and multi-label classification.

Ben-Baruch, Ridnik, Zamir, Noy, Friedman, Protter, Zelnik-Manor, "Asymmetric Loss For Multi-Label Classification",
ICCV 2021, https://arxiv.org/abs/2009.14119. Written here from the paper's equations; the reductions follow the paper's
reference definition and upstream MindCV, so ``create_loss("asl_single_label")``/``("asl_multi_label")`` give the
numbers upstream users know.

Focusing down-weights easy examples by ``(1 - p_t) ** gamma`` with a separate exponent for positives and negatives
(``gamma_neg > gamma_pos`` suppresses the many easy negatives); the multi-label loss also shifts the negative
probability by ``clip`` ("probability margin"), which discards very easy negatives altogether.
"""

from typing import Optional

import mindspore as ms
from mindspore import Tensor, nn, ops

__all__ = ["AsymmetricLossSingleLabel", "AsymmetricLossMultilabel"]


class AsymmetricLossSingleLabel(nn.Cell):
    """Softmax cross-entropy with asymmetric focusing and label smoothing, for class indices ``(N,)`` or soft labels.

    The log-probability of each class is weighted by ``(1 - p) ** gamma_pos`` for the target class and by
    ``p ** gamma_neg`` for the others, then taken against the smoothed target ``y * (1 - s) + s / C``.

    Args:
        gamma_pos: Focusing exponent of the target class.
        gamma_neg: Focusing exponent of the other classes.
        smoothing: Label smoothing ``s`` in ``[0, 1)``.
        reduction: ``"mean"`` or ``"sum"`` over samples, or ``"none"`` (per-sample losses ``(N,)``).
    """

    def __init__(
        self, gamma_pos: float = 1.0, gamma_neg: float = 4.0, smoothing: float = 0.1, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.gamma_pos = float(gamma_pos)
        self.gamma_neg = float(gamma_neg)
        self.smoothing = float(smoothing)
        self.reduction = reduction

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        logits = logits.astype(ms.float32)  # float16 log-softmax under AMP loses the small probabilities
        num_classes = logits.shape[-1]
        log_p = ops.log_softmax(logits, axis=-1)
        if labels.ndim == logits.ndim:
            targets = labels.astype(ms.float32)
        else:
            targets = ops.one_hot(
                labels.astype(ms.int32), num_classes, Tensor(1.0, ms.float32), Tensor(0.0, ms.float32)
            )
        p = ops.exp(log_p)
        # 1 - p for the target class, p for the others: the "p_t" distance of the paper.
        distance = targets * (1.0 - p) + (1.0 - targets) * p
        weight = ops.pow(distance, self.gamma_pos * targets + self.gamma_neg * (1.0 - targets))
        smoothed = targets * (1.0 - self.smoothing) + self.smoothing / num_classes
        loss = -(smoothed * log_p * weight).sum(axis=-1)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss


class AsymmetricLossMultilabel(nn.Cell):
    """Per-class sigmoid loss with asymmetric focusing and a probability margin, for multi-hot labels ``(N, C)``.

    Positives contribute ``y * log(p) * (1 - p) ** gamma_pos``; negatives use the shifted probability
    ``p_m = max(p - clip, 0)`` and contribute ``(1 - y) * log(1 - p_m) * p_m ** gamma_neg``. As in the paper's
    reference definition the loss is summed over samples and classes.

    Args:
        gamma_neg: Focusing exponent of the negatives.
        gamma_pos: Focusing exponent of the positives.
        clip: Probability margin of the negatives; 0 disables it.
        eps: Floor of the probabilities inside the logarithms.
        reduction: ``"sum"`` (the reference), ``"mean"`` over samples and classes, or ``"none"`` (``(N, C)``).
        weight: Optional per-class weights of shape ``(C,)``, multiplying each class's term.
    """

    def __init__(
        self,
        gamma_neg: float = 4.0,
        gamma_pos: float = 1.0,
        clip: float = 0.05,
        eps: float = 1e-8,
        reduction: str = "sum",
        weight: Optional[Tensor] = None,
    ) -> None:
        super().__init__()
        self.gamma_neg = float(gamma_neg)
        self.gamma_pos = float(gamma_pos)
        self.clip = float(clip)
        self.eps = float(eps)
        self.reduction = reduction
        self.weight = weight

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        logits = logits.astype(ms.float32)
        labels = labels.astype(ms.float32)
        p = ops.sigmoid(logits)
        q = 1.0 - p
        if self.clip > 0:
            q = ops.clamp(q + self.clip, max=1.0)  # 1 - max(p - clip, 0)
        loss = labels * ops.log(ops.clamp(p, min=self.eps)) + (1.0 - labels) * ops.log(ops.clamp(q, min=self.eps))
        if self.gamma_pos > 0 or self.gamma_neg > 0:
            p_t = p * labels + q * (1.0 - labels)
            loss = loss * ops.pow(1.0 - p_t, self.gamma_pos * labels + self.gamma_neg * (1.0 - labels))
        if self.weight is not None:
            loss = loss * self.weight
        if self.reduction == "none":
            return -loss
        if self.reduction == "mean":
            return -loss.mean()
        return -loss.sum()
