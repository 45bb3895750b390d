"""Batch-level mixup and cutmix on one-hot labels, run as the ``per_batch_map`` of ``Dataset.batch``.

Labels may come as class indices (one per sample) or already as one-hot or soft vectors of width
``num_classes`` (e.g. after a ``target_transform`` of ``OneHot``); both give the same mixed targets.

MindSpore has C++ ``MixUpBatch`` and ``CutMixBatch`` ops, but no way to choose between them per batch
(timm's switch probability), to apply them to only a fraction of batches, or to turn them off after
a given epoch; this small NumPy implementation provides those, following timm's batch mode:

* with probability ``prob`` a batch is mixed; otherwise it passes with plain one-hot labels;
* a mixed batch uses cutmix with probability ``switch_prob`` when both are enabled, else mixup;
* the partner of sample ``i`` is sample ``N - 1 - i`` (the batch reversed), as in timm;
* mixup: ``x = lam * x + (1 - lam) * x_partner`` with ``lam ~ Beta(mixup_alpha, mixup_alpha)``;
* cutmix: a box of area ``(1 - lam) * H * W`` (``lam ~ Beta(cutmix_alpha, cutmix_alpha)``) is pasted from
  the partner; ``lam`` is then corrected to the area actually kept after clipping at the border;
* labels become ``lam * onehot(y) + (1 - lam) * onehot(y_partner)``; label smoothing stays in the loss;
* from epoch ``off_epoch`` on (0: never) batches pass unmixed, still with one-hot labels, so the label
  shape never changes during a run.

Cost: one pass over the batch in NumPy, negligible next to a training step (measured:
``docs/performance.md``). Randomness: each batch draws from a generator seeded with
(seed, epoch, batch index), so results are reproducible whatever the number of worker threads.
"""

from typing import Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError, DatasetError

__all__ = ["Mixup"]


def _check(name: str, value: float, upper: Optional[float] = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (upper and value > upper):
        bound = f"in [0, {upper:g}]" if upper else ">= 0"
        raise ConfigError(f"{name}={value!r} must be a number {bound}")
    return float(value)


class Mixup:
    """Mix a batch of CHW images and integer (or one-hot) labels into soft one-hot labels.

    Args:
        mixup_alpha: Beta parameter of mixup; 0 disables mixup.
        cutmix_alpha: Beta parameter of cutmix; 0 disables cutmix.
        prob: Probability that a batch is mixed at all.
        switch_prob: Probability of cutmix instead of mixup when both are enabled.
        num_classes: Width of the one-hot labels.
        off_epoch: Epoch (0-based) from which batches are no longer mixed; 0 keeps mixing throughout.
        start_epoch: Epoch the pipeline's first epoch stands for (resumed runs), added to MindSpore's
            epoch counter, which restarts at 0 with every iterator.
        seed: Base seed of the per-batch generators.
    """

    def __init__(
        self,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 0.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        num_classes: int = 1000,
        off_epoch: int = 0,
        start_epoch: int = 0,
        seed: int = 0,
    ) -> None:
        self.mixup_alpha = _check("mixup", mixup_alpha)
        self.cutmix_alpha = _check("cutmix", cutmix_alpha)
        self.prob = _check("cutmix_prob", prob, upper=1.0)
        self.switch_prob = _check("mixup_switch_prob", switch_prob, upper=1.0)
        if self.mixup_alpha == 0 and self.cutmix_alpha == 0:
            raise ConfigError("Mixup needs mixup > 0 or cutmix > 0")
        for name, value, lowest in (
            ("num_classes", num_classes, 1),
            ("mixup_off_epoch", off_epoch, 0),
            ("start_epoch", start_epoch, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ConfigError(f"{name}={value!r} must be an integer >= {lowest}")
        self.num_classes = num_classes
        self.off_epoch = off_epoch
        self.start_epoch = start_epoch
        self.seed = int(seed)

    def _targets(self, labels: np.ndarray) -> np.ndarray:
        """(N,) class indices -> (N, classes) float32 one-hot; (N, classes) one-hot or soft vectors pass as float32."""
        labels = np.asarray(labels)
        if labels.ndim == 2:
            if labels.shape[1] != self.num_classes:
                raise DatasetError(
                    f"the labels are vectors of width {labels.shape[1]} but num_classes={self.num_classes}; set "
                    f"num_classes to the width of the one-hot labels (or give class indices)"
                )
            return labels.astype(np.float32)
        if labels.ndim > 2:
            raise DatasetError(
                f"labels of shape {labels.shape[1:]} per sample cannot be mixed; give class indices or one-hot vectors"
            )
        labels = labels.astype(np.int64).reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            bad = int(labels[(labels < 0) | (labels >= self.num_classes)][0])
            raise DatasetError(
                f"label {bad} is out of range for num_classes={self.num_classes}; set num_classes to the "
                f"dataset's number of classes"
            )
        out = np.zeros((labels.size, self.num_classes), dtype=np.float32)
        out[np.arange(labels.size), labels] = 1.0
        return out

    def mix(self, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """Mix one batch: ``images`` (N, C, H, W) float and ``labels`` -> (images, (N, classes) float32).

        ``labels`` are (N,) class indices or (N, classes) one-hot (or soft) vectors.
        """
        targets = self._targets(labels)
        if rng.random() >= self.prob:
            return images, targets
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0 or rng.random() < self.switch_prob)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = float(rng.beta(alpha, alpha))
        partner = images[::-1]
        if use_cutmix:
            h, w = images.shape[-2:]
            cut = np.sqrt(1.0 - lam)
            ch, cw = int(h * cut), int(w * cut)
            cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
            y0, y1 = np.clip([cy - ch // 2, cy + ch // 2], 0, h)
            x0, x1 = np.clip([cx - cw // 2, cx + cw // 2], 0, w)
            images = images.copy()
            images[..., y0:y1, x0:x1] = partner[..., y0:y1, x0:x1]
            lam = 1.0 - float((y1 - y0) * (x1 - x0)) / float(h * w)
        else:
            images = (images * np.float32(lam) + partner * np.float32(1.0 - lam)).astype(images.dtype, copy=False)
        targets = targets * np.float32(lam) + targets[::-1] * np.float32(1.0 - lam)
        return images, targets

    def mix_batch(self, images: np.ndarray, labels: np.ndarray, batch_info) -> Tuple[np.ndarray, np.ndarray]:
        """Mix a stacked batch as batch ``batch_info.get_batch_num()`` of epoch ``batch_info.get_epoch_num()``."""
        epoch = self.start_epoch + batch_info.get_epoch_num()
        if self.off_epoch and epoch >= self.off_epoch:
            return images, self._targets(labels)
        rng = np.random.default_rng([self.seed, epoch, batch_info.get_batch_num()])
        return self.mix(images, labels, rng)

    def __call__(
        self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], batch_info
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The ``per_batch_map`` hook: lists of per-sample arrays plus MindSpore's ``BatchInfo``."""
        return self.mix_batch(np.stack(images), np.stack([np.asarray(v) for v in labels]), batch_info)

    def __repr__(self) -> str:
        return (
            f"Mixup(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, prob={self.prob}, "
            f"switch_prob={self.switch_prob}, num_classes={self.num_classes}, off_epoch={self.off_epoch})"
        )
