"""How a MindSpore source picks its samples: all, a random order, or one shard of a distributed run.

Sharded training (``shuffle=True``) uses MindSpore's ``DistributedSampler``: all ranks draw the same
global permutation each epoch (the dataset seed must be the same on every rank) and take every
``num_shards``-th sample of it. When the split size is not a multiple of ``num_shards``, the last
shards are topped up by wrapping around (fewer than ``num_shards`` repeats per epoch), as PyTorch's
``DistributedSampler`` does, so every rank runs the same number of steps: a rank with one batch more
would wait forever in the gradient all-reduce.

Sharded evaluation (``shuffle=False``) takes the fixed strided subset ``shard_id, shard_id + num_shards,
...``: the shards are exactly disjoint and together complete (sizes differ by at most one), so the
accuracy summed over ranks counts every sample once.

Repeated augmentation (``num_aug_repeats > 1``, Hoffer et al. 2020, as used by DeiT) uses
:class:`RepeatAugSampler`: each epoch draws one permutation, repeats every index ``num_aug_repeats``
times in a row and deals the result out to the ranks in turn, so the copies of an image land on
different ranks (or, on one device, next to each other in a batch), each to be augmented differently.
An epoch keeps its usual length per rank, so it covers about ``1 / num_aug_repeats`` of the images.

Worker counts: MindSpore rejects ``num_parallel_workers`` above the machine's CPU count, so a config
written for a large host would fail on a small one; :func:`worker_count` lowers it to the CPU count instead
(with a warning), which only changes speed.
"""

import logging
import math
import multiprocessing
from typing import Any, Dict, Iterator, Optional

import numpy as np

import mindspore.dataset as ds

from ..errors import ConfigError

__all__ = ["shard_sampling", "RepeatAugSampler", "worker_count"]

_logger = logging.getLogger(__name__)


def worker_count(num_parallel_workers: Optional[int]) -> Optional[int]:
    """``num_parallel_workers`` capped at the CPU count (the bound MindSpore checks); None stays None."""
    cpus = multiprocessing.cpu_count()
    if num_parallel_workers is not None and num_parallel_workers > cpus:
        _logger.warning("num_parallel_workers=%d lowered to the %d CPUs of this machine", num_parallel_workers, cpus)
        return cpus
    return num_parallel_workers


class RepeatAugSampler(ds.Sampler):
    """Sample indices for repeated augmentation, one shard of a distributed run (see the module docstring).

    Args:
        num_rows: Samples in the split.
        num_repeats: Copies of each drawn sample, at least 2.
        num_shards: Number of ranks; None or 1 when not sharded.
        shard_id: This rank, in ``[0, num_shards)``.
        shuffle: A new random order each epoch; otherwise the file order, repeated.
        seed: Seed of the per-epoch permutations; None takes MindSpore's dataset seed. It must be the same
            on every rank, so that the ranks deal from the same permutation.
    """

    def __init__(
        self,
        num_rows: int,
        num_repeats: int,
        num_shards: Optional[int] = None,
        shard_id: Optional[int] = None,
        shuffle: bool = True,
        seed: Optional[int] = None,
    ) -> None:
        self.num_rows = int(num_rows)
        self.num_repeats = int(num_repeats)
        self.num_shards = int(num_shards or 1)
        self.shard_id = int(shard_id or 0)
        self.shuffle = bool(shuffle)
        self.seed = ds.config.get_seed() if seed is None else int(seed)
        self.epoch = 0
        # Every rank yields the same count, so no rank waits in the all-reduce for a missing step.
        self.per_shard = math.ceil(self.num_rows / self.num_shards)
        super().__init__()

    def __len__(self) -> int:
        return self.per_shard

    def indices(self, epoch: int) -> np.ndarray:
        """The indices this rank reads in ``epoch`` (0-based), in order."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.num_rows)
        else:
            order = np.arange(self.num_rows)
        repeated = np.repeat(order, self.num_repeats)
        # Pad by wrapping around to a multiple of the ranks, so each rank's stride holds enough indices.
        total = math.ceil(repeated.size / self.num_shards) * self.num_shards
        repeated = np.resize(repeated, total)
        return repeated[self.shard_id :: self.num_shards][: self.per_shard]

    def __iter__(self) -> Iterator[int]:
        # MindSpore asks for the indices once per epoch; each request is the next epoch's permutation.
        epoch, self.epoch = self.epoch, self.epoch + 1
        return iter(self.indices(epoch).tolist())


def shard_sampling(
    num_rows: int,
    shuffle: bool,
    num_samples: Optional[int],
    num_shards: Optional[int],
    shard_id: Optional[int],
    num_aug_repeats: int = 0,
) -> Dict[str, Any]:
    """Return the sampling keyword arguments for a MindSpore source of ``num_rows`` samples.

    Args:
        num_rows: Samples in the split.
        shuffle: Random order (a new one each epoch).
        num_samples: Read at most this many samples (per shard); None reads all.
        num_shards: Number of shards, or None when not sharded.
        shard_id: This shard, in ``[0, num_shards)``.
        num_aug_repeats: Repeated augmentation: copies of each drawn sample (0 or 1: off).

    Returns:
        Either ``{"shuffle", "num_samples"}`` or ``{"sampler"}``.

    Raises:
        ConfigError: More shards than samples, or ``num_samples`` with repeated augmentation.
    """
    if num_shards is not None and num_rows < num_shards:
        raise ConfigError(
            f"num_shards={num_shards} is more than the {num_rows} samples of the split; use fewer devices"
        )
    if num_aug_repeats > 1:
        if num_samples is not None:
            raise ConfigError(
                f"num_samples={num_samples} and num_aug_repeats={num_aug_repeats} cannot be combined; "
                f"drop one of them"
            )
        return dict(sampler=RepeatAugSampler(num_rows, num_aug_repeats, num_shards, shard_id, shuffle=shuffle))
    if num_shards is None:
        return dict(shuffle=shuffle, num_samples=num_samples)
    if shuffle:
        return dict(sampler=ds.DistributedSampler(num_shards, shard_id, shuffle=True, num_samples=num_samples))
    return dict(sampler=ds.SubsetSampler(list(range(shard_id, num_rows, num_shards)), num_samples=num_samples))
