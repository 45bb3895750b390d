"""Image folders in ImageNet layout (``root/<split>/<class>/<image>``): scan, check and read.

The folder is listed in Python once, so that a wrong layout fails with one line naming the folder and
the layout expected, and so that every image can be checked before training starts. MindSpore's
``Decode`` fails mid-epoch on a corrupt file, and also writes a copy of it (``abnormal_image.jpg``,
``unsupported_image.webp``) into the current directory; a cheap check up front avoids both.

Reading stays in MindSpore's C++ ``ImageFolderDataset`` whenever it can read exactly the files the scan
accepted. Only when bad files were skipped, or WebP files are present (MindSpore 2.10 cannot decode
WebP), does a Python source read the accepted files instead; it returns the encoded bytes, so
decoding and augmentation still run in the C++ vision ops either way.
"""

import io
import logging
import os
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

import mindspore as ms
import mindspore.dataset as ds

from ..errors import ConfigError, DatasetError
from .constants import IMAGE_EXTENSIONS
from .sampling import shard_sampling

__all__ = ["FolderScan", "scan_image_folder", "check_images", "build_image_folder", "IMAGE_CHECKS"]

_logger = logging.getLogger(__name__)

# "header": PIL parses each header (and, for PNG, checks the chunk CRCs), cheap enough to run on
#   every ImageNet-scale folder (cost per file: docs/performance.md). Catches empty, text,
#   random-byte and unsupported-format files, and truncated PNGs; not truncated JPEGs.
# "full": PIL decodes every image (a full decode per file, far slower); also catches truncated JPEGs.
# "none": no check; a bad file then stops MindSpore's Decode mid-epoch.
IMAGE_CHECKS = ("header", "full", "none")

# Formats MindSpore 2.10's Decode reads (PIL's names; MPO is a multi-picture JPEG from cameras).
_DECODABLE = {"JPEG", "MPO", "PNG", "BMP", "TIFF"}
# Read through PIL and handed to MindSpore as BMP (cheap to encode, decoded natively).
_TRANSCODED = {"WEBP"}

_LAYOUT = "<root>/<split>/<class>/<image> (e.g. <root>/train/n01440764/x.JPEG)"


@dataclass
class FolderScan:
    """What a scan of one split folder found.

    Attributes:
        split_dir: The folder scanned.
        classes: Class folder names, sorted; the label of a class is its index here.
        files: ``(path, label)`` of every image, by class then file name.
        bad_files: ``(path, reason)`` of the images that failed the check.
        has_webp: Whether any accepted file is WebP (MindSpore cannot decode it natively).
    """

    split_dir: str
    classes: List[str]
    files: List[Tuple[str, int]]
    bad_files: List[Tuple[str, str]] = field(default_factory=list)
    has_webp: bool = False


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_classes(root: str, split: str) -> Tuple[str, List[str]]:
    """Return the split folder and its sorted class folder names, or raise a layout error.

    Args:
        root: Dataset root holding one folder per split.
        split: Split folder name, e.g. ``"train"`` or ``"val"``.

    Returns:
        ``(split_dir, classes)``.

    Raises:
        DatasetError: The root or split folder is missing, or the split has no class folders.
    """
    if not os.path.isdir(root):
        raise DatasetError(f"dataset root {root} does not exist or is not a folder; expected the layout {_LAYOUT}")
    split_dir = os.path.join(root, split)
    if not os.path.isdir(split_dir):
        found = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
        have = f"it has the folders {found}" if found else "it has no sub-folders"
        raise DatasetError(f"split folder {split_dir} does not exist ({have}); expected the layout {_LAYOUT}")
    entries = list(os.scandir(split_dir))
    # Hidden folders (.ipynb_checkpoints, .git) are never classes.
    classes = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    if not classes:
        loose = sum(1 for e in entries if e.is_file() and _is_image_name(e.name))
        hint = f"; its {loose} images lie directly in it: move them into one folder per class" if loose else ""
        raise DatasetError(f"no class folders in {split_dir}{hint}; expected the layout {_LAYOUT}")
    return split_dir, classes


def scan_image_folder(root: str, split: str) -> FolderScan:
    """List the images of one split, in the order and with the labels ``ImageFolderDataset`` uses.

    Files directly inside a class folder count when their extension, in any case, is one of
    ``IMAGE_EXTENSIONS``; nested folders are not read (as in MindSpore).

    Args:
        root: Dataset root holding one folder per split.
        split: Split folder name.

    Returns:
        The scan, without any image check yet.

    Raises:
        DatasetError: Wrong layout, or no images in any class folder.
    """
    split_dir, classes = list_classes(root, split)
    files: List[Tuple[str, int]] = []
    empty = []
    for label, name in enumerate(classes):
        class_dir = os.path.join(split_dir, name)
        images = sorted(e.name for e in os.scandir(class_dir) if e.is_file() and _is_image_name(e.name))
        if not images:
            empty.append(name)
        files.extend((os.path.join(class_dir, f), label) for f in images)
    if not files:
        exts = "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        raise DatasetError(
            f"no images in {split_dir}: its {len(classes)} class folders hold no {exts} files; "
            f"expected the layout {_LAYOUT}"
        )
    if empty:
        # A validation subset may lack classes; the labels stay those of the sorted class list.
        _logger.warning("%d class folders in %s hold no images (first: %s)", len(empty), split_dir, empty[0])
    return FolderScan(split_dir=split_dir, classes=classes, files=files)


def _check_one(path: str, level: str) -> Tuple[Optional[str], bool]:
    """Return ``(reason it is bad or None, is_webp)`` for one file."""
    try:
        with Image.open(path) as im:
            fmt = im.format
            if fmt not in _DECODABLE and fmt not in _TRANSCODED:
                return f"it is a {fmt} image, which MindSpore cannot decode", False
            if level == "full":
                im.load()
            else:
                im.verify()
    except Exception as e:  # noqa: BLE001 - PIL raises many types (OSError, SyntaxError, ValueError...)
        text = str(e).replace(os.linesep, " ") or type(e).__name__
        return f"{type(e).__name__}: {text}", False
    return None, fmt in _TRANSCODED


def check_images(scan: FolderScan, level: str = "header") -> FolderScan:
    """Check every scanned image with PIL; record the bad ones and whether WebP files are present.

    Args:
        scan: The result of :func:`scan_image_folder`.
        level: One of ``IMAGE_CHECKS`` (see the module constants for cost and coverage).

    Returns:
        The same scan with ``bad_files`` and ``has_webp`` filled in.
    """
    if level not in IMAGE_CHECKS:
        raise ConfigError(f"image_check={level!r} is not one of {list(IMAGE_CHECKS)}")
    if level == "none":
        # WebP detection by extension only: without a check there is nothing better to go on.
        scan.has_webp = any(p.lower().endswith(".webp") for p, _ in scan.files)
        return scan
    start = time.perf_counter()
    bad, webp = [], False
    for path, _ in scan.files:
        reason, is_webp = _check_one(path, level)
        if reason is not None:
            bad.append((path, reason))
        webp = webp or is_webp
    scan.bad_files, scan.has_webp = bad, webp
    _logger.info(
        "checked %d images in %s (%s) in %.1f s: %d bad",
        len(scan.files),
        scan.split_dir,
        level,
        time.perf_counter() - start,
        len(bad),
    )
    return scan


class _EncodedImageSource:
    """Random-access source of ``(encoded image bytes, label)`` for ``GeneratorDataset``.

    Returns the file bytes untouched except WebP, which MindSpore cannot decode and which is re-encoded
    as BMP (lossless and fast; decoding then stays in the C++ ops).
    """

    def __init__(self, files: Sequence[Tuple[str, int]]) -> None:
        self._files = list(files)

    def __len__(self) -> int:
        return len(self._files)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        path, label = self._files[index]
        data = np.fromfile(path, dtype=np.uint8)
        if data[:4].tobytes() == b"RIFF" and data[8:12].tobytes() == b"WEBP":
            with Image.open(io.BytesIO(data.tobytes())) as im:
                buf = io.BytesIO()
                im.convert("RGB").save(buf, format="BMP")
            data = np.frombuffer(buf.getvalue(), dtype=np.uint8)
        # ndarrays only: MindSpore 2.10 rejects numpy scalars from Python sources under numpy 2.
        return data, np.array(label, dtype=np.int32)


def build_image_folder(
    scan: FolderScan,
    skip_bad_images: bool,
    shuffle: bool,
    num_samples: Optional[int],
    num_shards: Optional[int],
    shard_id: Optional[int],
    num_parallel_workers: Optional[int],
    num_aug_repeats: int = 0,
) -> Tuple[ds.Dataset, int]:
    """Create the dataset of a checked scan, columns ``image`` (encoded bytes) and ``label`` (int32).

    Args:
        scan: A scan passed through :func:`check_images`.
        skip_bad_images: Leave bad files out (with a warning) instead of raising.
        shuffle, num_samples, num_shards, shard_id, num_parallel_workers, num_aug_repeats: As in
            ``create_dataset``.

    Returns:
        ``(dataset, number of files skipped)``.

    Raises:
        DatasetError: A bad file was found and ``skip_bad_images`` is False, or every file is bad.
    """
    files = scan.files
    if scan.bad_files:
        first, reason = scan.bad_files[0]
        more = f" ({len(scan.bad_files)} bad files in {scan.split_dir})" if len(scan.bad_files) > 1 else ""
        if not skip_bad_images:
            raise DatasetError(
                f"corrupt or unreadable image {first}: {reason}{more}; fix or delete it, or pass "
                f"--skip_bad_images (skip_bad_images=True) to leave bad files out"
            )
        bad = {p for p, _ in scan.bad_files}
        files = [(p, label) for p, label in files if p not in bad]
        _logger.warning(
            "skipped %d unreadable images of %d in %s (first: %s: %s)",
            len(bad),
            len(scan.files),
            scan.split_dir,
            first,
            reason,
        )
        for path, why in scan.bad_files[1:]:
            _logger.debug("skipped %s: %s", path, why)
        if not files:
            raise DatasetError(f"every image in {scan.split_dir} is unreadable (first: {first}: {reason})")
    common = shard_sampling(len(files), shuffle, num_samples, num_shards, shard_id, num_aug_repeats=num_aug_repeats)
    if len(files) == len(scan.files) and not scan.has_webp:
        # Exactly the scanned files: MindSpore reads them itself. Its extension match is case-sensitive,
        # so pass every spelling the scan met; class_indexing fixes labels to the sorted class order.
        extensions = sorted({os.path.splitext(p)[1] for p, _ in files})
        dataset = ds.ImageFolderDataset(
            scan.split_dir,
            extensions=extensions,
            class_indexing={name: i for i, name in enumerate(scan.classes)},
            decode=False,
            num_parallel_workers=num_parallel_workers,
            **common,
        )
    else:
        dataset = ds.GeneratorDataset(
            _EncodedImageSource(files),
            column_names=["image", "label"],
            column_types=[ms.uint8, ms.int32],
            num_parallel_workers=num_parallel_workers or 1,
            # Threads: the work is file I/O (and rare WebP transcoding), not worth process start-up.
            python_multiprocessing=False,
            **common,
        )
    return dataset, len(scan.files) - len(files)
