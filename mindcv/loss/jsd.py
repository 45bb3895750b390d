"""Jensen-Shannon divergence + cross-entropy, the consistency loss of AugMix.

Hendrycks, Mu, Cubuk, Zoph, Gilmer, Lakshminarayanan, "AugMix: A Simple Data Processing Method to Improve Robustness
and Uncertainty", ICLR 2020, https://arxiv.org/abs/1912.02781. Written here from the paper.

With ``--aug_splits 3`` a batch holds the clean images followed by two augmented copies of them (labels repeated per
split). Training takes the cross-entropy of the clean split plus ``alpha`` times the Jensen-Shannon divergence between
the splits' predicted distributions, which asks the network to predict the same class for every view of an image.
"""

from typing import Optional

import mindspore as ms
from mindspore import Tensor, nn, ops

from .cross_entropy import CrossEntropySmooth

__all__ = ["JSDCrossEntropy"]


class JSDCrossEntropy(nn.Cell):
    """Cross-entropy of the first split plus ``alpha`` x the Jensen-Shannon divergence between ``num_splits`` splits.

    Out of training mode (evaluation) it is the plain cross-entropy of the whole batch.

    Args:
        num_splits: Number of views per image in the batch (clean + augmented).
        alpha: Weight of the divergence term.
        smoothing: Label smoothing of the cross-entropy.
        aux_factor: Weight of auxiliary logits, as in :class:`~mindcv.loss.CrossEntropySmooth`.
        reduction: Reduction of the cross-entropy term.
        weight: Optional per-class weights of the cross-entropy term.
    """

    def __init__(
        self,
        num_splits: int = 3,
        alpha: float = 12.0,
        smoothing: float = 0.1,
        aux_factor: float = 0.0,
        reduction: str = "mean",
        weight: Optional[Tensor] = None,
    ) -> None:
        super().__init__()
        if num_splits < 1:
            raise ValueError(f"num_splits must be >= 1, got {num_splits}")
        self.num_splits = int(num_splits)
        self.alpha = float(alpha)
        self.cross_entropy = CrossEntropySmooth(smoothing, aux_factor, reduction, weight)

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        if not self.training or self.num_splits == 1:
            return self.cross_entropy(logits, labels)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]  # the divergence is defined on the main head
        split = logits.shape[0] // self.num_splits
        loss = self.cross_entropy(logits[:split], labels[:split])
        probs = ops.softmax(logits.astype(ms.float32), axis=-1).reshape(self.num_splits, split, -1)
        log_mixture = ops.log(ops.clamp(probs.mean(axis=0), 1e-7, 1.0))
        # KL(p_i || mixture) per split, summed over classes and averaged over images ("batchmean"), then over splits.
        kl = (probs * (ops.log(ops.clamp(probs, 1e-7, 1.0)) - log_mixture)).sum(axis=-1).mean(axis=-1)
        return loss + self.alpha * kl.mean()
