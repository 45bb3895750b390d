"""Datasets, transforms and loaders on ``mindspore.dataset``.

Typical use::

    from mindcv.data import create_dataset, create_loader, create_transforms

    dataset = create_dataset("cifar10", root="data", split="train", download=True)
    transform = create_transforms("cifar10", image_resize=32, is_training=True, auto_augment="randaug-m9-n2")
    loader = create_loader(dataset, batch_size=64, drop_remainder=True, is_training=True, transform=transform)
"""

from .auto_augment import AugMix, auto_augment_ops
from .constants import DEFAULT_CROP_PCT, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from .dataset_download import get_dataset_download_root
from .dataset_factory import DatasetInfo, create_dataset, dataset_info, get_dataset_size, list_datasets
from .loader import create_loader
from .mixup import Mixup
from .sampling import RepeatAugSampler
from .transforms_factory import create_transforms, eval_resize_size, resolve_data_config

__all__ = [
    "create_dataset",
    "create_transforms",
    "resolve_data_config",
    "eval_resize_size",
    "create_loader",
    "list_datasets",
    "dataset_info",
    "get_dataset_size",
    "get_dataset_download_root",
    "DatasetInfo",
    "Mixup",
    "RepeatAugSampler",
    "AugMix",
    "auto_augment_ops",
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "DEFAULT_CROP_PCT",
]
