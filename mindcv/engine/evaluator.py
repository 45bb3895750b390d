"""Top-1, top-5 and loss over every sample of an evaluation loader, summed over ranks.

The last, smaller batch is padded to the full batch size with label -1 and masked out, so it counts
exactly and the compiled graph keeps one input shape (a second shape would cost a second graph
compilation). Per-batch sums stay on the device until the end of the pass: one host read per
evaluation. In a distributed run each rank evaluates its shard (disjoint, together complete) and the
sums are all-reduced, so the metrics are correct/total over the whole split.

Test-time augmentation ``tta="hflip"`` predicts with the mean of ``softmax(model(x))`` and
``softmax(model(flip(x)))`` (``flip`` mirrors the width axis). Top-1/top-k rank that averaged probability and the
loss is its negative log-likelihood, ``-log(p_avg[label])``, i.e. the cross-entropy of the prediction actually
made (not the mean of the two views' cross-entropies).
"""

import csv
import json
import math
import os
import time
from typing import Any, Callable, Dict, Optional, Union

import numpy as np

import mindspore as ms
import mindspore.dataset as ds
from mindspore import Tensor, nn, ops

from ..errors import ConfigError
from ..utils.distributed import all_reduce_sum
from ..utils.fs import atomic_write
from .train_step import mixed_precision

__all__ = ["Evaluator", "TTA_MODES", "check_results_file", "save_results"]

_RESULT_FORMATS = (".json", ".csv")

#: Test-time augmentations of :class:`Evaluator` (``--tta``).
TTA_MODES = ("none", "hflip")


def check_results_file(path: str) -> None:
    """Fail before the evaluation, not after it, on a results file that cannot be written.

    Raises:
        ConfigError: The extension is not .json/.csv, or the folder does not exist.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in _RESULT_FORMATS:
        raise ConfigError(f"--results_file {path}: use a .json or .csv name (the extension selects the format)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"--results_file {path}: folder {folder} does not exist; create it or choose another path")


def save_results(path: str, results: Dict[str, Any]) -> str:
    """Write one evaluation's results as JSON (an object) or CSV (a header and one row), by extension."""
    check_results_file(path)
    with atomic_write(path, newline="") as f:
        if path.lower().endswith(".json"):
            json.dump(results, f, indent=2)
            f.write("\n")
        else:
            writer = csv.DictWriter(f, fieldnames=list(results))
            writer.writeheader()
            writer.writerow(results)
    return path


def _metric_sums(logits: Tensor, flipped: Tensor, labels: Tensor, topk: int, hflip: bool, log_views: float) -> Tensor:
    """(correct top-1, correct top-k, summed cross-entropy, samples) of one padded batch's logits."""
    logits = logits.astype(ms.float32)
    valid = labels >= 0
    target = ops.maximum(labels, 0)  # padded rows (-1) are masked below; any class index will do
    validf = valid.astype(ms.float32)
    if hflip:  # a Python bool: one graph per setting
        # log of the mean of the two softmaxes, via log-sum-exp of the log-softmaxes: the probability of a
        # confidently wrong class can underflow to 0 in float32, its logarithm must stay finite.
        views = ops.stack([ops.log_softmax(logits, 1), ops.log_softmax(flipped.astype(ms.float32), 1)])
        scores = ops.logsumexp(views, 0) - log_views
        onehot = ops.one_hot(target, scores.shape[1], Tensor(1.0, ms.float32), Tensor(0.0, ms.float32))
        loss = -(scores * onehot).sum(axis=1)
    else:
        scores = logits
        loss = ops.cross_entropy(logits, target, reduction="none")
    top1 = (ops.argmax(scores, dim=1).astype(target.dtype) == target).astype(ms.float32)
    _, indices = ops.topk(scores, topk)
    topk_hit = (indices.astype(target.dtype) == target.expand_dims(1)).any(axis=1).astype(ms.float32)
    return ops.stack([(top1 * validf).sum(), (topk_hit * validf).sum(), (loss * validf).sum(), validf.sum()])


class _EvalStep(nn.Cell):
    """The metric sums of one padded batch, the network's forward pass(es) included in the same graph."""

    def __init__(self, network: nn.Cell, topk: int, hflip: bool = False) -> None:
        super().__init__(auto_prefix=False)
        self.network = network
        self.topk = topk
        self.hflip = hflip
        self.log_views = math.log(2.0)  # log of the number of views averaged by hflip

    @ms.jit
    def construct(self, images: Tensor, labels: Tensor) -> Tensor:
        logits = self.network(images)
        flipped = self.network(ops.flip(images, (3,))) if self.hflip else logits
        return _metric_sums(logits, flipped, labels, self.topk, self.hflip, self.log_views)


class _LogitMetrics(nn.Cell):
    """The same sums from logits computed elsewhere (a predictor such as the onnxruntime backend)."""

    def __init__(self, topk: int, hflip: bool = False) -> None:
        super().__init__()
        self.topk = topk
        self.hflip = hflip
        self.log_views = math.log(2.0)

    @ms.jit
    def construct(self, logits: Tensor, flipped: Tensor, labels: Tensor) -> Tensor:
        return _metric_sums(logits, flipped, labels, self.topk, self.hflip, self.log_views)


class Evaluator:
    """Evaluates a classification network on loaders of ``(image, label)`` batches.

    Args:
        network: The model (put in eval mode during the pass, restored afterwards), or a predictor: any callable
            mapping a float32 ``(N, C, H, W)`` numpy batch to numpy logits, such as
            :class:`mindcv.deploy.OnnxRuntimeModel`. A predictor's logits go through the same metric code as a
            model's.
        batch_size: The loaders' batch size; smaller batches are padded to it.
        num_classes: Number of classes (top-k uses ``k = min(5, num_classes)``).
        distribute: Sum the counts over all ranks.
        amp_level: Mixed precision of the pass (``--val_amp_level``); O2/O3 cast ``network`` in place, so use them
            for a network that is only evaluated (validate.py), not for one that is still being trained.
        tta: Test-time augmentation, one of :data:`TTA_MODES`: ``"none"``, or ``"hflip"`` (average the softmax of
            each image and its mirror; the loss is the NLL of that average, see the module docstring). ``hflip``
            costs a second forward pass per batch.

    Raises:
        ConfigError: ``tta`` is not one of :data:`TTA_MODES`, or ``amp_level`` is not O0 for a predictor.
    """

    def __init__(
        self,
        network: Union[nn.Cell, Callable[[np.ndarray], np.ndarray]],
        batch_size: int,
        num_classes: int,
        distribute: bool = False,
        amp_level: str = "O0",
        tta: str = "none",
    ) -> None:
        if tta not in TTA_MODES:
            raise ConfigError(f"unknown test-time augmentation '{tta}'; choose one of: {', '.join(TTA_MODES)} (--tta)")
        self.is_cell = isinstance(network, nn.Cell)
        if self.is_cell:
            network = mixed_precision(network, amp_level)
        elif amp_level != "O0":
            raise ConfigError(f"mixed precision {amp_level} applies to MindSpore models only; use --val_amp_level O0")
        self.network = network
        self.batch_size = int(batch_size)
        self.topk = min(5, int(num_classes))
        self.distribute = distribute
        self.tta = tta
        hflip = tta == "hflip"
        self.timing: Dict[str, float] = {}
        self._step = _EvalStep(network, self.topk, hflip) if self.is_cell else _LogitMetrics(self.topk, hflip)

    def _batch_sums(self, images: np.ndarray, labels: np.ndarray) -> Tensor:
        if self.is_cell:
            return self._step(Tensor(images), Tensor(labels))
        logits = self.network(images)
        flipped = self.network(np.ascontiguousarray(images[..., ::-1])) if self.tta == "hflip" else logits
        return self._step(Tensor(logits), Tensor(flipped), Tensor(labels))

    def _pad(self, images: np.ndarray, labels: np.ndarray):
        short = self.batch_size - len(labels)
        if short <= 0:
            return images, labels
        images = np.concatenate([images, np.zeros((short,) + images.shape[1:], images.dtype)])
        labels = np.concatenate([labels, np.full((short,), -1, labels.dtype)])
        return images, labels

    def evaluate(self, loader: ds.Dataset) -> Dict[str, float]:
        """One pass over ``loader``.

        Returns:
            ``{"top1": %, "top5": %, "loss": mean cross-entropy, "num_samples": n}`` (top-k with k =
            ``min(5, num_classes)`` is reported as ``top5``; with ``tta`` they are those of the averaged prediction).
            The pass's timing is left in :attr:`timing`: ``{"seconds", "first_batch_s", "steady_img_per_s"}``, the
            first batch (compilation, an export) being timed apart from the rest.
        """
        start = time.perf_counter()
        first_done, images_after_first = None, 0
        was_training = self.network.training if self.is_cell else False
        if self.is_cell:
            self.network.set_train(False)
        total: Optional[Tensor] = None
        try:
            for images, labels in loader.create_tuple_iterator(num_epochs=1, output_numpy=True):
                if len(labels) > self.batch_size:
                    raise ValueError(f"evaluation batch of {len(labels)} exceeds batch_size={self.batch_size}")
                images, labels = self._pad(images, labels.astype(np.int32))
                sums = self._batch_sums(images, labels)
                if total is None:
                    sums.asnumpy()  # one sync, so that the first batch's compilation is timed apart from the rest
                    first_done = time.perf_counter()
                else:
                    images_after_first += int((labels >= 0).sum())
                total = sums if total is None else total + sums
        finally:
            if self.is_cell:
                self.network.set_train(was_training)
        counts = np.zeros(4) if total is None else total.asnumpy().astype(np.float64)
        end = time.perf_counter()
        steady = end - first_done if first_done is not None else 0.0
        self.timing = {
            "seconds": end - start,
            "first_batch_s": (first_done or end) - start,
            "steady_img_per_s": images_after_first / steady if images_after_first and steady > 0 else float("nan"),
        }
        if self.distribute:
            counts = all_reduce_sum(counts)
        correct1, correctk, loss_sum, n = counts
        n_int = int(round(n))
        if n_int == 0:
            return {"top1": 0.0, "top5": 0.0, "loss": float("nan"), "num_samples": 0}
        return {
            "top1": 100.0 * correct1 / n,
            "top5": 100.0 * correctk / n,
            "loss": loss_sum / n,
            "num_samples": n_int,
        }
