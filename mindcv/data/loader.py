"""``create_loader``: transforms, label cast, batching and (in training) mixup/cutmix on a dataset.

Output columns: ``image`` float32 (N, C, H, W) and ``label``: int32 (N,) class indices, or float32
(N, num_classes) soft one-hot labels when training with mixup or cutmix (for the whole run, also
after ``mixup_off_epoch``, so the loss sees one label format). Label smoothing belongs to the loss.
Labels that a ``target_transform`` already made one-hot are mixed as they are.

Augmentation splits (``separate=True`` in training, AugMix-style): each image goes through the primary
transforms once, is copied twice, the copies go through the secondary (augmenting) transforms and all
three through the final ones. A batch of ``batch_size`` images then holds ``3 * batch_size`` rows: the
clean images, then the first augmented copies, then the second ones, with the labels repeated in the
same order (what the ``jsd`` loss expects). Mixup, if on, mixes the whole batch; the partner of each row
is the row mirrored (timm's rule), which pairs the three views of an image with the three views of one
partner under one mixing weight, so the views of an image keep the same soft label.
"""

from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

import mindspore as ms
import mindspore.dataset as ds
from mindspore.dataset import transforms

from ..errors import ConfigError, DatasetError
from .mixup import Mixup
from .sampling import worker_count
from .transforms_factory import SplitTransforms, create_transforms

__all__ = ["create_loader"]

# Columns of the augmentation splits: the clean image keeps the "image" column.
_SPLIT_COLUMNS = ("image", "image_aug1", "image_aug2")


def _positive_int(name: str, value: Optional[int], allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")


def _ops(name: str, value: Union[Callable, Sequence[Callable]]) -> List[Callable]:
    """A list of ops from a list, a tuple or a single op (upstream MindCV passes single ops too)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if callable(value):
        return [value]
    raise ConfigError(f"{name}={value!r} must be a list of transforms (or a single transform)")


class _ConcatSplits:
    """``per_batch_map`` of the augmentation splits: stack each column, concatenate, then mix if asked."""

    def __init__(self, mixer: Optional[Mixup]) -> None:
        self.mixer = mixer

    def __call__(self, clean, aug1, aug2, labels, batch_info) -> Tuple[np.ndarray, np.ndarray]:
        images = np.concatenate([np.stack(clean), np.stack(aug1), np.stack(aug2)])
        label = np.stack([np.asarray(v) for v in labels])
        label = np.concatenate([label, label, label])
        if self.mixer is None:
            return images, label
        return self.mixer.mix_batch(images, label, batch_info)


def _map_splits(dataset: ds.Dataset, transform: Sequence[Sequence[Callable]], map_kwargs: dict) -> ds.Dataset:
    """Map (primary, secondary, final) over the image and its two copies (see the module docstring)."""
    primary, secondary, final = (list(part) for part in transform)
    clean, aug1, aug2 = _SPLIT_COLUMNS
    if primary:
        dataset = dataset.map(operations=primary, input_columns=clean, **map_kwargs)
    for copy in (aug1, aug2):
        dataset = dataset.map(
            operations=transforms.Duplicate(), input_columns=clean, output_columns=[clean, copy], **map_kwargs
        )
    for column, ops in ((aug1, secondary), (aug2, secondary), (clean, final), (aug1, final), (aug2, final)):
        if ops:
            dataset = dataset.map(operations=ops, input_columns=column, **map_kwargs)
    return dataset


def create_loader(
    dataset: ds.Dataset,
    batch_size: int,
    drop_remainder: bool = False,
    is_training: bool = False,
    mixup: float = 0.0,
    cutmix: float = 0.0,
    cutmix_prob: float = 1.0,
    mixup_switch_prob: float = 0.5,
    mixup_off_epoch: int = 0,
    start_epoch: int = 0,
    num_classes: Optional[int] = None,
    transform: Optional[Union[Sequence[Callable], SplitTransforms]] = None,
    target_transform: Optional[Union[Callable, Sequence[Callable]]] = None,
    num_parallel_workers: Optional[int] = None,
    python_multiprocessing: bool = False,
    separate: bool = False,
) -> ds.Dataset:
    """Map the transforms over a dataset from ``create_dataset`` and batch it.

    Args:
        dataset: A dataset with ``image`` and ``label`` columns, normally from ``create_dataset``.
        batch_size: Samples per batch (per device in distributed runs).
        drop_remainder: Drop the last, smaller batch (usual in training, so every step has equal size).
        is_training: Enables mixup/cutmix; evaluation loaders never mix.
        mixup: Mixup Beta alpha; 0 disables it.
        cutmix: Cutmix Beta alpha; 0 disables it.
        cutmix_prob: Probability that a batch is mixed at all (upstream MindCV's name; timm's ``mixup_prob``).
        mixup_switch_prob: Probability of cutmix rather than mixup when both are enabled.
        mixup_off_epoch: Epoch (0-based) from which mixing stops; 0 mixes throughout (timm's convention).
        start_epoch: Epoch a resumed run starts at, so that ``mixup_off_epoch`` counts from the run's start.
            MindSpore counts epochs per iterator: create one iterator for the whole run
            (``create_tuple_iterator(num_epochs=...)`` or ``Model.train``), not one per epoch.
        num_classes: Width of the one-hot labels and the number the model predicts; None takes
            ``dataset.info.num_classes``. Fewer than the dataset's classes is an error.
        transform: Ops for the ``image`` column; None: ``create_transforms(dataset.info.name,
            is_training=is_training, separate=separate)``; an empty list: none. With ``separate`` in training:
            the ``(primary, secondary, final)`` lists of ``create_transforms(..., separate=True)``.
        target_transform: Ops (or one op) for the ``label`` column, e.g. ``[OneHot(num_classes)]``, whose
            one-hot labels mixup accepts; None: cast to int32.
        num_parallel_workers: Threads (or processes) of the map and batch operations, at most the CPU count;
            None keeps MindSpore's default.
        python_multiprocessing: Run Python transforms in worker processes (the C++ ops need none).
        separate: Training: augmentation splits; each batch holds ``3 * batch_size`` rows (see the module
            docstring). Evaluation ignores it.

    Returns:
        The batched dataset, carrying the dataset's ``info`` attribute.

    Raises:
        ConfigError: Invalid sizes or probabilities, missing columns, or no class count for mixing.
        DatasetError: The dataset has more classes than ``num_classes``.
    """
    _positive_int("batch_size", batch_size)
    for arg, value in (("mixup", mixup), ("cutmix", cutmix)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{arg}={value!r} must be a number >= 0 (0 disables it)")
    _positive_int("num_parallel_workers", num_parallel_workers, allow_none=True)
    num_parallel_workers = worker_count(num_parallel_workers)
    if not isinstance(separate, bool):
        raise ConfigError(f"separate={separate!r} must be True or False")
    splits = separate and is_training
    info = getattr(dataset, "info", None)  # a DatasetInfo when the dataset comes from create_dataset
    dataset_classes = info.num_classes if info is not None else None
    name = info.name if info is not None else "the dataset"
    if num_classes is None:
        num_classes = dataset_classes
    else:
        _positive_int("num_classes", num_classes)
        if dataset_classes is not None and dataset_classes > num_classes:
            raise DatasetError(
                f"{name} has {dataset_classes} classes (labels 0..{dataset_classes - 1}) but num_classes="
                f"{num_classes}; set num_classes to {dataset_classes} (or more)"
            )
    if getattr(dataset, "parent", None):
        # MindSpore pipelines are trees: a second consumer fails later with "not a tree".
        raise ConfigError("this dataset already feeds another loader; call create_dataset again for a second loader")
    columns = dataset.get_col_names()
    if "image" not in columns or "label" not in columns:
        raise ConfigError(f"create_loader needs the columns 'image' and 'label', the dataset has {columns}")

    if transform is None:
        if info is None:
            raise ConfigError(
                "create_loader: pass transform=create_transforms(...) for a dataset not made by create_dataset"
            )
        transform = create_transforms(info.name, is_training=is_training, separate=splits)
    is_split = isinstance(transform, tuple) and len(transform) == 3 and all(isinstance(t, list) for t in transform)
    if splits and not is_split:
        raise ConfigError(
            "separate=True needs transform=create_transforms(..., is_training=True, separate=True), "
            "the (primary, secondary, final) lists"
        )
    if is_split and not splits:
        raise ConfigError(
            "transform is a (primary, secondary, final) split; pass separate=True and is_training=True to "
            "create_loader, or build it with create_transforms(..., separate=False)"
        )
    map_kwargs = dict(num_parallel_workers=num_parallel_workers, python_multiprocessing=python_multiprocessing)
    dataset_out = dataset
    if splits:
        dataset_out = _map_splits(dataset_out, transform, map_kwargs)
    else:
        image_ops = _ops("transform", transform)
        if image_ops:
            dataset_out = dataset_out.map(operations=image_ops, input_columns="image", **map_kwargs)
    if target_transform is None:
        target_ops = [transforms.TypeCast(ms.int32)]
    else:
        target_ops = _ops("target_transform", target_transform)
    if target_ops:
        dataset_out = dataset_out.map(operations=target_ops, input_columns="label", **map_kwargs)

    mixer = None
    if is_training and (mixup > 0 or cutmix > 0):
        if num_classes is None:
            raise ConfigError("mixup/cutmix need num_classes (the dataset does not say how many classes it has)")
        mixer = Mixup(
            mixup_alpha=mixup,
            cutmix_alpha=cutmix,
            prob=cutmix_prob,
            switch_prob=mixup_switch_prob,
            num_classes=num_classes,
            off_epoch=mixup_off_epoch,
            start_epoch=start_epoch,
            seed=ds.config.get_seed(),
        )
    if splits:
        dataset_out = dataset_out.batch(
            batch_size,
            drop_remainder=drop_remainder,
            num_parallel_workers=num_parallel_workers,
            per_batch_map=_ConcatSplits(mixer),
            input_columns=[*_SPLIT_COLUMNS, "label"],
            output_columns=["image", "label"],
        )
    elif mixer is not None:
        dataset_out = dataset_out.batch(
            batch_size,
            drop_remainder=drop_remainder,
            num_parallel_workers=num_parallel_workers,
            per_batch_map=mixer,
            input_columns=["image", "label"],
            output_columns=["image", "label"],
        )
    else:
        dataset_out = dataset_out.batch(
            batch_size, drop_remainder=drop_remainder, num_parallel_workers=num_parallel_workers
        )

    if info is not None:
        dataset_out.info = info
    return dataset_out
