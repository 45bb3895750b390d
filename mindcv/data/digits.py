"""The UCI handwritten digits, shipped inside the package for offline quickstarts and learning tests.

1,797 grey 8x8 images with values 0-16 (each pixel counts the set pixels of a 4x4 block of a 32x32
bitmap) in 10 classes: the copy scikit-learn ships as ``load_digits``. Source and licence:
``assets/README.md``. They are served as 32x32 RGB uint8 (each value scaled to 0-255 and repeated over
its 4x4 block, i.e. nearest-neighbour upscaling, which restores the original block geometry) so that
every model, with its five stride-2 stages, can train on them.

Split rule (deterministic, stratified, no random generator involved): within each class, in file
order, every fifth image (positions 4, 9, 14, ...) is ``val``, the rest ``train``: 1,442 / 355 images.
"""

import os
from typing import Optional, Tuple

import numpy as np

import mindspore.dataset as ds

from ..errors import DatasetError
from .sampling import shard_sampling

__all__ = ["DIGITS_CLASSES", "DIGITS_ASSET", "check_digits_split", "load_digits", "build_digits"]

DIGITS_ASSET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "digits.npz")
DIGITS_CLASSES = tuple(str(i) for i in range(10))
_SPLITS = ("train", "val")
_VAL_EVERY = 5
_UPSCALE = 4


def check_digits_split(split: str) -> None:
    """Raise a DatasetError unless ``split`` is ``"train"`` or ``"val"``."""
    if split not in _SPLITS:
        raise DatasetError(f"digits has no split {split!r}; use one of {list(_SPLITS)}")


def load_digits(split: str) -> Tuple[np.ndarray, np.ndarray]:
    """Return one split as served: images ``(N, 32, 32, 3)`` uint8 and labels ``(N,)`` int32.

    Args:
        split: ``"train"`` or ``"val"``.

    Raises:
        DatasetError: Unknown split, or the shipped file is missing (a broken installation).
    """
    check_digits_split(split)
    if not os.path.isfile(DIGITS_ASSET):
        raise DatasetError(f"the shipped digits file {DIGITS_ASSET} is missing; reinstall mindcv")
    with np.load(DIGITS_ASSET) as z:
        images, labels = z["images"], z["labels"].astype(np.int32)
    is_val = np.zeros(len(labels), dtype=bool)
    for c in range(len(DIGITS_CLASSES)):
        is_val[np.flatnonzero(labels == c)[_VAL_EVERY - 1 :: _VAL_EVERY]] = True
    keep = is_val if split == "val" else ~is_val
    images, labels = images[keep], labels[keep]
    # 0-16 -> 0-255, then each pixel becomes a 4x4 block, then grey -> RGB.
    scaled = np.round(images.astype(np.float32) * (255.0 / 16.0)).astype(np.uint8)
    scaled = scaled.repeat(_UPSCALE, axis=1).repeat(_UPSCALE, axis=2)
    return np.ascontiguousarray(np.repeat(scaled[..., None], 3, axis=-1)), labels


def build_digits(
    split: str,
    shuffle: bool,
    num_samples: Optional[int],
    num_shards: Optional[int],
    shard_id: Optional[int],
    num_aug_repeats: int = 0,
) -> ds.Dataset:
    """Create the digits dataset, columns ``image`` (32x32x3 uint8) and ``label`` (int32)."""
    images, labels = load_digits(split)
    return ds.NumpySlicesDataset(
        (images, labels),
        column_names=["image", "label"],
        # One reader: slicing in-memory arrays is cheap, and more workers make NumpySlicesDataset start
        # Python worker processes, which cut throughput several-fold (benchmarks/data_pipeline.py). The
        # transforms still get create_loader's workers.
        num_parallel_workers=1,
        **shard_sampling(len(labels), shuffle, num_samples, num_shards, shard_id, num_aug_repeats=num_aug_repeats),
    )
