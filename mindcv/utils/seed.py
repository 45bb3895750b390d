"""Seeding: one seed for weight init and augmentation, and a per-epoch data seed for exact resumes.

The training data order and augmentation of epoch ``e`` are drawn from ``epoch_seed(seed, e)``
(the dataset engine is reseeded before each epoch's pipeline is created), so they depend only on the
seed and the epoch, not on how many epochs ran before in this process: a run resumed at epoch ``k``
sees exactly the batches that an uninterrupted run sees from epoch ``k`` on.
"""

import random
from typing import Optional

import numpy as np

import mindspore as ms
import mindspore.dataset as ds

__all__ = ["set_seed", "epoch_seed", "seed_epoch_data"]


def set_seed(seed: int = 42, rank: Optional[int] = 0) -> None:
    """Seed MindSpore (weight init and random ops), numpy, Python's ``random`` and the dataset engine.

    ``rank`` (upstream MindCV's argument) offsets the seed per process; the trainer passes 0 on every rank so that
    all ranks start from the same weights.
    """
    seed = int(seed) + int(rank or 0)
    ms.set_seed(seed)  # also seeds numpy's global generator
    np.random.seed(seed)
    random.seed(seed)
    ds.config.set_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """A 32-bit data seed for ``epoch`` of a run seeded with ``seed``, well mixed (SeedSequence)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint32)[0])


def seed_epoch_data(seed: int, epoch: int) -> None:
    """Reseed the dataset engine for ``epoch``; call it right before creating that epoch's pipeline/iterator."""
    ds.config.set_seed(epoch_seed(seed, epoch))
