"""``create_dataset``: one entry point for every dataset, a name -> implementation table, ``list_datasets``.

Every dataset comes out with the same two columns, ``image`` and ``label`` (int32), so the transforms
and the loader never need to know where it came from:

* ``imagenet``: any folder in ImageNet layout, ``root/<split>/<class>/<image>``; the image column holds the
  encoded file bytes (the transforms decode them); the splits are the folders under ``root``. The empty
  name ``""`` (upstream MindCV's default, "a custom dataset") means the same.
* ``cifar10``, ``cifar100`` (fine labels): 32x32x3 uint8; splits ``train`` and ``test`` (``val`` = ``test``).
* ``digits``: 32x32x3 uint8, shipped inside the package (offline); splits ``train`` and ``val``.

The created dataset carries a :class:`DatasetInfo` as its ``info`` attribute (name, number and names of
the classes, files skipped), which ``create_loader`` reads to check ``num_classes`` and which a training
script reads to size the model's head; :func:`dataset_info` gives the same without building a
pipeline, e.g. for class names at inference time. (``info`` rather than ``num_classes``: MindSpore's
``Dataset`` already has a ``num_classes()`` method, which only image-folder readers answer.)
"""

import ssl
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import mindspore.dataset as ds

from ..errors import ConfigError, DatasetError, unknown_name_error
from .cifar import CIFAR_SPECS, build_cifar, cifar_split, cifar_split_size, prepare_cifar
from .digits import DIGITS_CLASSES, build_digits, check_digits_split, load_digits
from .folder import IMAGE_CHECKS, build_image_folder, check_images, list_classes, scan_image_folder
from .sampling import worker_count

__all__ = ["create_dataset", "list_datasets", "dataset_info", "get_dataset_size", "DatasetInfo"]

# Upstream MindCV's name for "an image folder that is not a standard dataset".
_CUSTOM_FOLDER = ""


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset split holds.

    Attributes:
        name: Dataset name as registered.
        num_classes: Number of classes; labels run from 0 to ``num_classes - 1``.
        class_names: Class names, index = label (folder names for image folders).
        num_skipped: Unreadable files left out by ``skip_bad_images`` (always 0 from :func:`dataset_info`).
    """

    name: str
    num_classes: int
    class_names: Tuple[str, ...]
    num_skipped: int = 0


@dataclass(frozen=True)
class _Request:
    """The arguments of ``create_dataset`` that every implementation receives."""

    root: Optional[str]
    split: str
    shuffle: bool
    num_samples: Optional[int]
    num_shards: Optional[int]
    shard_id: Optional[int]
    num_parallel_workers: Optional[int]
    num_aug_repeats: int
    download: bool
    skip_bad_images: bool
    image_check: str
    mirror: Optional[str]
    ssl_context: Optional[ssl.SSLContext]


# An implementation returns (dataset, class names, files skipped as unreadable).
_Built = Tuple[ds.Dataset, Tuple[str, ...], int]


def _imagenet(req: _Request) -> _Built:
    if req.root is None:
        raise DatasetError(
            "the imagenet dataset needs root=<folder>, laid out as <root>/<split>/<class>/<image> "
            "(e.g. <root>/train/n01440764/x.JPEG)"
        )
    scan = check_images(scan_image_folder(req.root, req.split), req.image_check)
    dataset, skipped = build_image_folder(
        scan,
        skip_bad_images=req.skip_bad_images,
        shuffle=req.shuffle,
        num_samples=req.num_samples,
        num_shards=req.num_shards,
        shard_id=req.shard_id,
        num_parallel_workers=req.num_parallel_workers,
        num_aug_repeats=req.num_aug_repeats,
    )
    return dataset, tuple(scan.classes), skipped


def _cifar(name: str) -> Callable[[_Request], _Built]:
    def build(req: _Request) -> _Built:
        usage = cifar_split(name, req.split)
        folder = prepare_cifar(name, req.root, usage, req.download, mirror=req.mirror, ssl_context=req.ssl_context)
        dataset = build_cifar(
            name,
            folder,
            usage,
            shuffle=req.shuffle,
            num_samples=req.num_samples,
            num_shards=req.num_shards,
            shard_id=req.shard_id,
            num_parallel_workers=req.num_parallel_workers,
            num_aug_repeats=req.num_aug_repeats,
        )
        return dataset, CIFAR_SPECS[name].classes, 0

    return build


def _digits(req: _Request) -> _Built:
    # root is not used: the data ships inside the package.
    dataset = build_digits(
        req.split, req.shuffle, req.num_samples, req.num_shards, req.shard_id, num_aug_repeats=req.num_aug_repeats
    )
    return dataset, DIGITS_CLASSES, 0


_DATASETS: Dict[str, Callable[[_Request], _Built]] = {
    "imagenet": _imagenet,
    "cifar10": _cifar("cifar10"),
    "cifar100": _cifar("cifar100"),
    "digits": _digits,
}


def list_datasets() -> List[str]:
    """Names accepted by :func:`create_dataset`, sorted."""
    return sorted(_DATASETS)


def _check_name(name: str) -> str:
    if name == _CUSTOM_FOLDER:
        return "imagenet"
    if not isinstance(name, str) or name.lower() not in _DATASETS:
        raise unknown_name_error("dataset", name, list_datasets(), flag="--dataset")
    return name.lower()


def _check_positive(name: str, value: Optional[int]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name}={value!r} must be a positive integer or None")


def _check_sharding(num_shards: Optional[int], shard_id: Optional[int]) -> None:
    if (num_shards is None) != (shard_id is None):
        raise ConfigError(f"num_shards={num_shards!r} and shard_id={shard_id!r}: give both (distributed) or neither")
    if num_shards is not None:
        _check_positive("num_shards", num_shards)
        if isinstance(shard_id, bool) or not isinstance(shard_id, int) or not 0 <= shard_id < num_shards:
            raise ConfigError(
                f"shard_id={shard_id!r} must be an integer in [0, {num_shards - 1}] for {num_shards} shards"
            )


def create_dataset(
    name: str = _CUSTOM_FOLDER,
    root: Optional[str] = None,
    split: str = "train",
    shuffle: bool = True,
    num_samples: Optional[int] = None,
    num_shards: Optional[int] = None,
    shard_id: Optional[int] = None,
    num_parallel_workers: Optional[int] = None,
    download: bool = False,
    num_aug_repeats: int = 0,
    skip_bad_images: bool = False,
    image_check: str = "header",
    mirror: Optional[str] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
) -> ds.Dataset:
    """Create a dataset with the columns ``image`` and ``label`` (int32), before any transform.

    Args:
        name: One of :func:`list_datasets` (case-insensitive); ``""`` (the default, upstream MindCV's spelling of a
            custom dataset) is an image folder, the same as ``imagenet``.
        root: Dataset folder. ``imagenet``: the folder holding the split folders (required). CIFAR: the
            folder holding ``cifar-10-batches-bin``/``cifar-100-binary`` (or the ``.bin`` files); None
            means the mindcv cache, ``$MINDCV_HOME/datasets`` or ``~/.cache/mindcv/datasets``.
            ``digits``: not used.
        split: Split name; CIFAR accepts ``val`` as its test split.
        shuffle: Shuffle the samples (each epoch, from MindSpore's global seed).
        num_samples: Read at most this many samples (per shard); None reads all.
        num_shards: Number of shards in distributed runs (the number of ranks). Without shuffling
            (evaluation) the shards are disjoint and together hold every sample once. With shuffling
            (training) they are drawn from one global permutation per epoch and have equal sizes, so
            every rank runs the same number of steps: when the split size is not a multiple of
            ``num_shards``, fewer than ``num_shards`` samples repeat (see ``mindcv.data.sampling``). All
            ranks must use the same dataset seed.
        shard_id: This process's shard, ``0 <= shard_id < num_shards``.
        num_parallel_workers: Reader threads (at most the CPU count); None keeps MindSpore's default.
        download: CIFAR only: fetch and extract the official archive when the files are missing.
        num_aug_repeats: Repeated augmentation (DeiT): each drawn sample is read this many times, the copies
            dealt to different ranks (next to each other on one device); an epoch keeps its length, so it
            covers about ``1 / num_aug_repeats`` of the split (see ``mindcv.data.sampling``). 0 or 1: off.
            Cannot be combined with ``num_samples``.
        skip_bad_images: Image folders: leave files that fail ``image_check`` out (the number skipped is
            logged and stored as ``dataset.info.num_skipped``) instead of raising.
        image_check: Image folders: ``"header"`` (PIL header and PNG CRC check, cheap), ``"full"`` (decode every
            image, slower; also catches truncated JPEGs) or ``"none"``.
        mirror: CIFAR: base URL of a mirror holding the official archives (default: the home page, or
            ``$MINDCV_DATASET_MIRROR``).
        ssl_context: CIFAR: TLS context for the download; None verifies against the system CAs.

    Returns:
        A ``mindspore.dataset.Dataset`` whose ``info`` attribute is its :class:`DatasetInfo`.

    Raises:
        UnknownNameError: Unknown dataset name.
        ConfigError: Inconsistent sharding or sample arguments.
        DatasetError: Missing or malformed files, one line naming the path and the fix.
        DownloadError: A requested download failed or did not match its MD5.
    """
    key = _check_name(name)
    _check_positive("num_samples", num_samples)
    _check_positive("num_parallel_workers", num_parallel_workers)
    _check_sharding(num_shards, shard_id)
    if isinstance(num_aug_repeats, bool) or not isinstance(num_aug_repeats, int) or num_aug_repeats < 0:
        raise ConfigError(f"num_aug_repeats={num_aug_repeats!r} must be an integer >= 0 (0 or 1: off, usually 3)")
    if image_check not in IMAGE_CHECKS:
        raise ConfigError(f"image_check={image_check!r} is not one of {list(IMAGE_CHECKS)}")
    req = _Request(
        root=root,
        split=split,
        shuffle=shuffle,
        num_samples=num_samples,
        num_shards=num_shards,
        shard_id=shard_id,
        num_parallel_workers=worker_count(num_parallel_workers),
        num_aug_repeats=num_aug_repeats,
        download=download,
        skip_bad_images=skip_bad_images,
        image_check=image_check,
        mirror=mirror,
        ssl_context=ssl_context,
    )
    dataset, classes, skipped = _DATASETS[key](req)
    dataset.info = DatasetInfo(name=key, num_classes=len(classes), class_names=classes, num_skipped=skipped)
    return dataset


def dataset_info(name: str, root: Optional[str] = None, split: str = "train") -> DatasetInfo:
    """Return the classes of a dataset split without reading its images or building a pipeline.

    Args:
        name: One of :func:`list_datasets`.
        root: As in :func:`create_dataset`; needed for ``imagenet`` (class folders are listed).
        split: Split name; only image folders can differ between splits.

    Raises:
        UnknownNameError: Unknown dataset name.
        DatasetError: ``imagenet`` without a valid ``root``/``split`` folder, or an unknown split.
    """
    key = _check_name(name)
    if key == "imagenet":
        if root is None:
            raise DatasetError("dataset_info('imagenet') needs root=<folder holding the split folders>")
        classes: Tuple[str, ...] = tuple(list_classes(root, split)[1])
    elif key in CIFAR_SPECS:
        cifar_split(key, split)  # validates the split name
        classes = CIFAR_SPECS[key].classes
    else:
        check_digits_split(split)
        classes = DIGITS_CLASSES
    return DatasetInfo(name=key, num_classes=len(classes), class_names=classes)


def get_dataset_size(name: str = _CUSTOM_FOLDER, root: Optional[str] = None, split: str = "train") -> int:
    """Return the number of samples in a dataset split, without building a pipeline or reading images.

    Args:
        name: As in :func:`create_dataset`.
        root: As in :func:`create_dataset`; needed for image folders.
        split: Split name.

    Returns:
        The number of images: for image folders, every image file the layout holds (before any
        ``skip_bad_images``); for CIFAR, the official count once the files are found and checked.

    Raises:
        UnknownNameError: Unknown dataset name.
        DatasetError: Missing or malformed files or folders, or an unknown split.
    """
    key = _check_name(name)
    if key == "imagenet":
        if root is None:
            raise DatasetError("get_dataset_size('imagenet') needs root=<folder holding the split folders>")
        return len(scan_image_folder(root, split).files)
    if key in CIFAR_SPECS:
        usage = cifar_split(key, split)
        prepare_cifar(key, root, usage, download=False)  # finds and validates the files
        return cifar_split_size(key, usage)
    return len(load_digits(split)[1])
