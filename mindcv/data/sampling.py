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
"""

from typing import Any, Dict, Optional

import mindspore.dataset as ds

from ..errors import ConfigError

__all__ = ["shard_sampling"]


def shard_sampling(
    num_rows: int, shuffle: bool, num_samples: Optional[int], num_shards: Optional[int], shard_id: Optional[int]
) -> Dict[str, Any]:
    """Return the sampling keyword arguments for a MindSpore source of ``num_rows`` samples.

    Args:
        num_rows: Samples in the split.
        shuffle: Random order (a new one each epoch).
        num_samples: Read at most this many samples (per shard); None reads all.
        num_shards: Number of shards, or None when not sharded.
        shard_id: This shard, in ``[0, num_shards)``.

    Returns:
        Either ``{"shuffle", "num_samples"}`` or ``{"sampler"}``.

    Raises:
        ConfigError: More shards than samples.
    """
    if num_shards is None:
        return dict(shuffle=shuffle, num_samples=num_samples)
    if num_rows < num_shards:
        raise ConfigError(
            f"num_shards={num_shards} is more than the {num_rows} samples of the split; use fewer devices"
        )
    if shuffle:
        return dict(sampler=ds.DistributedSampler(num_shards, shard_id, shuffle=True, num_samples=num_samples))
    return dict(sampler=ds.SubsetSampler(list(range(shard_id, num_rows, num_shards)), num_samples=num_samples))
