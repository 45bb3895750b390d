"""CIFAR-10 and CIFAR-100 in the official binary layout, with a verified, all-or-nothing download.

Layout (as extracted from the official archives, https://www.cs.toronto.edu/~kriz/cifar.html)::

    <root>/cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin   records: <label><3072 B RGB planes>
    <root>/cifar-100-binary/train.bin, test.bin                          records: <coarse><fine><3072 B>

``root`` may also be the folder that holds the ``.bin`` files itself. MindSpore's C++ readers read the
files; they reject files that do not hold the official record counts only once iteration reaches them,
so the sizes (and the label bytes) are checked here, up front, with a message that says what to do.

Download: the archive is fetched over https from the dataset's home page (or a mirror), checked against
its published MD5 by :func:`mindcv.utils.download.download_url` (a mismatch leaves nothing behind),
extracted into a hidden temporary folder next to the destination and renamed into place, so an
interrupted download or extraction never leaves a half dataset. A file lock makes one process per
machine download while the others (e.g. the other ranks of a distributed run) wait for it.
"""

import logging
import os
import shutil
import ssl
import tarfile
import tempfile
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

import mindspore as ms
import mindspore.dataset as ds
from mindspore.dataset import transforms

from ..errors import DatasetError
from ..utils.download import download_url
from ..utils.fs import file_lock
from .dataset_download import get_dataset_download_root
from .sampling import shard_sampling

__all__ = ["CifarSpec", "CIFAR_SPECS", "MIRROR_ENV", "build_cifar", "cifar_split", "cifar_split_size", "prepare_cifar"]

_logger = logging.getLogger(__name__)

# A mirror holding the official archives under their official names, e.g. an internal file server;
# tests point it at a local HTTPS server.
MIRROR_ENV = "MINDCV_DATASET_MIRROR"
_IMAGE_BYTES = 32 * 32 * 3
# Transient failures (timeout, cut connection, HTTP 5xx) are retried this often with 1, 2 s pauses.
_DOWNLOAD_RETRIES = 2
# Other ranks wait this long for the one that downloads (170 MB on a slow link).
_LOCK_TIMEOUT_S = 3600.0

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# fmt: off
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
# fmt: on


@dataclass(frozen=True)
class CifarSpec:
    """Where a CIFAR variant comes from and what its files look like.

    Attributes:
        title: Human-readable name for messages.
        home: Base URL of the official archive.
        archive: Archive file name.
        md5: MD5 published on the home page.
        folder: Folder the archive extracts to.
        train_files: Training files, in order.
        test_files: Test files.
        records_per_file: Official record count of each file, by name.
        label_bytes: Label bytes before each image (CIFAR-100: coarse then fine).
        label_offset: Which label byte is the class label (CIFAR-100: the fine label).
        classes: Class names, index = label.
    """

    title: str
    home: str
    archive: str
    md5: str
    folder: str
    train_files: Tuple[str, ...]
    test_files: Tuple[str, ...]
    records_per_file: Tuple[Tuple[str, int], ...]
    label_bytes: int
    label_offset: int
    classes: Tuple[str, ...]

    def records(self, filename: str) -> int:
        return dict(self.records_per_file)[filename]

    @property
    def record_bytes(self) -> int:
        return self.label_bytes + _IMAGE_BYTES


_CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_SPECS = {
    "cifar10": CifarSpec(
        title="CIFAR-10",
        home="https://www.cs.toronto.edu/~kriz/",
        archive="cifar-10-binary.tar.gz",
        md5="c32a1d4ab5d03f1284b67883e8d87530",
        folder="cifar-10-batches-bin",
        train_files=_CIFAR10_TRAIN,
        test_files=("test_batch.bin",),
        records_per_file=tuple((f, 10000) for f in _CIFAR10_TRAIN + ("test_batch.bin",)),
        label_bytes=1,
        label_offset=0,
        classes=CIFAR10_CLASSES,
    ),
    "cifar100": CifarSpec(
        title="CIFAR-100",
        home="https://www.cs.toronto.edu/~kriz/",
        archive="cifar-100-binary.tar.gz",
        md5="03b5dce01913d631647c71ecec9e9cb8",
        folder="cifar-100-binary",
        train_files=("train.bin",),
        test_files=("test.bin",),
        records_per_file=(("train.bin", 50000), ("test.bin", 10000)),
        label_bytes=2,
        label_offset=1,
        classes=CIFAR100_CLASSES,
    ),
}

# CIFAR has no validation split; the seed's commands (--val_split=val) mean the test split.
_SPLITS = {"train": "train", "test": "test", "val": "test"}


def cifar_split(name: str, split: str) -> str:
    """Map a split name to MindSpore's ``usage`` (``"train"`` or ``"test"``); ``val`` means test."""
    if split not in _SPLITS:
        raise DatasetError(f"{CIFAR_SPECS[name].title} has no split {split!r}; use one of {sorted(_SPLITS)}")
    return _SPLITS[split]


def _files_for(spec: CifarSpec, usage: str) -> Tuple[str, ...]:
    return spec.train_files if usage == "train" else spec.test_files


def _find_folder(spec: CifarSpec, root: str) -> Optional[str]:
    """Return the folder holding the binary files: ``root/<folder>`` or ``root`` itself, if either exists."""
    nested = os.path.join(root, spec.folder)
    if os.path.isdir(nested):
        return nested
    names = spec.train_files + spec.test_files
    if os.path.isdir(root) and any(os.path.isfile(os.path.join(root, f)) for f in names):
        return root
    return None


def _validate(spec: CifarSpec, folder: str, usage: str) -> None:
    """Check that the split's files exist, have the official size and plausible labels."""
    redownload = "delete the folder and re-download (--dataset_download)"
    for name in _files_for(spec, usage):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise DatasetError(
                f"{spec.title} file {path} is missing; expected {', '.join(_files_for(spec, usage))} in {folder} "
                f"(the official binary version): {redownload}"
            )
        expected = spec.records(name) * spec.record_bytes
        size = os.path.getsize(path)
        if size != expected:
            what = "truncated" if size < expected else "oversized"
            raise DatasetError(f"{what} CIFAR file {path}: expected {expected} bytes, got {size}; {redownload}")
        # Label bytes: one strided pass over a memory map, cheap from the page cache. A
        # wrong byte here would otherwise surface as a silent out-of-range label during training.
        records = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, spec.record_bytes)
        labels = records[:, spec.label_offset]
        worst = int(labels.max())
        if worst >= len(spec.classes):
            index = int(np.argmax(labels >= len(spec.classes)))
            raise DatasetError(
                f"corrupt CIFAR file {path}: record {index} has label {worst}, expected 0..{len(spec.classes) - 1}; "
                f"{redownload}"
            )
        del records


def _safe_members(tar: tarfile.TarFile, spec: CifarSpec, archive: str) -> List[tarfile.TarInfo]:
    """Members under the expected folder; refuse links, devices and paths that escape the target."""
    members = []
    for m in tar.getmembers():
        name = os.path.normpath(m.name)
        if os.path.isabs(m.name) or name == ".." or name.startswith(".." + os.sep):
            raise DatasetError(
                f"refusing to extract {archive}: member {m.name!r} would land outside the dataset folder"
            )
        if not (m.isfile() or m.isdir()):
            raise DatasetError(f"refusing to extract {archive}: member {m.name!r} is a link or special file")
        if name == spec.folder or name.startswith(spec.folder + os.sep):
            members.append(m)
    return members


def _extract(spec: CifarSpec, archive: str, root: str) -> str:
    """Extract the archive into a hidden temporary folder in ``root``, then rename it into place."""
    target = os.path.join(root, spec.folder)
    tmp = tempfile.mkdtemp(prefix=f".{spec.folder}.extract-", dir=root)
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = _safe_members(tar, spec, archive)
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **kwargs)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DatasetError(f"cannot extract {archive} ({e}); delete it and re-download (--dataset_download)") from e
        extracted = os.path.join(tmp, spec.folder)
        missing = [f for f in spec.train_files + spec.test_files if not os.path.isfile(os.path.join(extracted, f))]
        if missing:
            raise DatasetError(
                f"{archive} does not hold {spec.folder}/{missing[0]}; it is not the {spec.title} binary version, "
                f"delete it and re-download (--dataset_download)"
            )
        try:
            os.rename(extracted, target)
        except OSError as e:
            # The lock is per machine: on a folder shared between machines another one may have won the
            # race; its verified copy is as good as this one.
            if not os.path.isdir(target):
                raise DatasetError(
                    f"cannot move the extracted files to {target} ({e}); check the folder's permissions"
                ) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _download(spec: CifarSpec, root: str, mirror: Optional[str], ssl_context: Optional[ssl.SSLContext]) -> str:
    target = os.path.join(root, spec.folder)
    with file_lock(target, timeout=_LOCK_TIMEOUT_S):
        if os.path.isdir(target):  # another process finished while this one waited
            return target
        base = mirror or os.environ.get(MIRROR_ENV) or spec.home
        url = base.rstrip("/") + "/" + spec.archive
        # download_url reuses an archive already here when its MD5 matches, and deletes a bad transfer.
        archive = download_url(url, root=root, md5=spec.md5, ssl_context=ssl_context, retries=_DOWNLOAD_RETRIES)
        _logger.info("extracting %s into %s", archive, target)
        return _extract(spec, archive, root)


def prepare_cifar(
    name: str,
    root: Optional[str],
    usage: str,
    download: bool,
    mirror: Optional[str] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
) -> str:
    """Locate (downloading when asked and needed) and validate a CIFAR split; return its folder.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        root: Folder holding the extracted folder (or the ``.bin`` files); defaults to the mindcv cache
            (``~/.cache/mindcv/datasets`` or ``$MINDCV_HOME/datasets``).
        usage: ``"train"`` or ``"test"``.
        download: Download and extract the official archive when the files are not there.
        mirror: Base URL to fetch the archive from instead of the home page (also ``$MINDCV_DATASET_MIRROR``).
        ssl_context: TLS context for the download (tests trust their own certificate with it).

    Returns:
        The folder that holds the binary files.

    Raises:
        DatasetError: Missing, truncated or corrupt files.
        DownloadError: The download failed or the archive's MD5 does not match.
    """
    spec = CIFAR_SPECS[name]
    root = os.path.abspath(os.path.expanduser(root)) if root else get_dataset_download_root()
    folder = _find_folder(spec, root)
    if folder is None:
        if not download:
            raise DatasetError(
                f"{spec.title} not found in {root}: expected {os.path.join(root, spec.folder)}/ with "
                f"{', '.join(spec.train_files + spec.test_files)}; pass download=True (--dataset_download) "
                f"to fetch it"
            )
        os.makedirs(root, exist_ok=True)
        folder = _download(spec, root, mirror, ssl_context)
    _validate(spec, folder, usage)
    return folder


def cifar_split_size(name: str, usage: str) -> int:
    """Number of images in a CIFAR split (``usage`` ``"train"`` or ``"test"``), from the official record counts."""
    spec = CIFAR_SPECS[name]
    return sum(spec.records(f) for f in _files_for(spec, usage))


def build_cifar(
    name: str,
    folder: str,
    usage: str,
    shuffle: bool,
    num_samples: Optional[int],
    num_shards: Optional[int],
    shard_id: Optional[int],
    num_parallel_workers: Optional[int],
    num_aug_repeats: int = 0,
) -> ds.Dataset:
    """Create the dataset of a validated CIFAR folder, columns ``image`` (32x32x3 uint8) and ``label`` (int32)."""
    sampling = shard_sampling(
        cifar_split_size(name, usage), shuffle, num_samples, num_shards, shard_id, num_aug_repeats=num_aug_repeats
    )
    common = dict(usage=usage, num_parallel_workers=num_parallel_workers, **sampling)
    if name == "cifar10":
        dataset = ds.Cifar10Dataset(folder, **common)
    else:
        dataset = ds.Cifar100Dataset(folder, **common)
        # Fine labels are the 100 classes; the coarse 20 super-classes are dropped.
        dataset = dataset.rename(input_columns=["fine_label"], output_columns=["label"])
        dataset = dataset.project(["image", "label"])
    # The readers give uint32 labels; every mindcv dataset gives int32.
    return dataset.map(operations=transforms.TypeCast(ms.int32), input_columns="label")
