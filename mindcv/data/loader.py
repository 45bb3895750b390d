"""``create_loader``: transforms, label cast, batching and (in training) mixup/cutmix on a dataset.

Output columns: ``image`` float32 (N, C, H, W) and ``label``: int32 (N,) class indices, or float32
(N, num_classes) soft one-hot labels when training with mixup or cutmix (for the whole run, also
after ``mixup_off_epoch``, so the loss sees one label format). Label smoothing belongs to the loss.
"""

from typing import Callable, Optional, Sequence

import mindspore as ms
import mindspore.dataset as ds
from mindspore.dataset import transforms

from ..errors import ConfigError, DatasetError
from .mixup import Mixup
from .transforms_factory import create_transforms

__all__ = ["create_loader"]


def _positive_int(name: str, value: Optional[int], allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")


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
    transform: Optional[Sequence[Callable]] = None,
    target_transform: Optional[Sequence[Callable]] = None,
    num_parallel_workers: Optional[int] = None,
    python_multiprocessing: bool = False,
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
            is_training=is_training)``; an empty list: none.
        target_transform: Ops for the ``label`` column; None: cast to int32.
        num_parallel_workers: Threads (or processes) of the map and batch operations; None keeps
            MindSpore's default.
        python_multiprocessing: Run Python transforms in worker processes (the C++ ops need none).

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
        transform = create_transforms(info.name, is_training=is_training)
    if len(transform):
        dataset_out = dataset.map(
            operations=list(transform),
            input_columns="image",
            num_parallel_workers=num_parallel_workers,
            python_multiprocessing=python_multiprocessing,
        )
    else:
        dataset_out = dataset
    target_ops = [transforms.TypeCast(ms.int32)] if target_transform is None else list(target_transform)
    if target_ops:
        dataset_out = dataset_out.map(
            operations=target_ops,
            input_columns="label",
            num_parallel_workers=num_parallel_workers,
            python_multiprocessing=python_multiprocessing,
        )

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
