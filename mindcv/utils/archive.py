"""Safe, all-or-nothing archive extraction.

Archives (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, and single ``.gz``/``.bz2`` files) are unpacked
into a hidden temporary folder next to the destination and each top-level entry is then renamed into place, so an
interrupted extraction never leaves a half-written tree under the real names. Members that would land outside the
destination (absolute paths, ``..``), links and device files are refused.
"""

import bz2
import gzip
import os
import shutil
import tarfile
import zipfile
from typing import List, Optional

from ..errors import DownloadError
from .fs import atomic_write, temporary_path

__all__ = ["extract_archive"]

_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open}


def _archive_kind(path: str) -> str:
    name = path.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    if name.endswith(tuple(_COMPRESSED)):
        return "single"
    raise DownloadError(f"cannot extract {path}: unknown archive type; expected .zip, .tar[.gz|.bz2|.xz] or .gz/.bz2")


def _inside(root: str, member: str) -> bool:
    target = os.path.realpath(os.path.join(root, member))
    return target == root or target.startswith(root + os.sep)


def _safe_names(path: str, names: List[str], root: str) -> None:
    bad = [n for n in names if os.path.isabs(n) or not _inside(root, n)]
    if bad:
        raise DownloadError(f"refusing to extract {path}: member '{bad[0]}' would land outside {root}")


def extract_archive(from_path: str, to_path: Optional[str] = None) -> str:
    """Unpack ``from_path`` into ``to_path`` (default: the archive's folder) and return ``to_path``.

    A single compressed file (``x.gz``) becomes ``x`` in ``to_path``. Entries already present under ``to_path`` are
    replaced only once the whole archive has been unpacked.

    Raises:
        DownloadError: Unknown type, unsafe member, or a corrupt archive (one line naming the file).
    """
    kind = _archive_kind(from_path)
    to_path = os.path.abspath(to_path or os.path.dirname(os.path.abspath(from_path)))
    os.makedirs(to_path, exist_ok=True)
    if kind == "single":
        stem, ext = os.path.splitext(os.path.basename(from_path))
        target = os.path.join(to_path, stem)
        try:
            with _COMPRESSED[ext.lower()](from_path, "rb") as src, atomic_write(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError) as e:
            raise DownloadError(f"cannot extract {from_path}: {e}; delete it and download it again") from None
        return to_path
    staging = temporary_path(os.path.join(to_path, os.path.basename(from_path)))
    os.makedirs(staging)
    try:
        try:
            if kind == "zip":
                with zipfile.ZipFile(from_path) as archive:
                    _safe_names(from_path, archive.namelist(), staging)
                    archive.extractall(staging)
            else:
                with tarfile.open(from_path) as archive:
                    members = archive.getmembers()
                    unsafe = [m.name for m in members if not (m.isfile() or m.isdir())]
                    if unsafe:
                        raise DownloadError(f"refusing to extract {from_path}: '{unsafe[0]}' is a link or device")
                    _safe_names(from_path, [m.name for m in members], staging)
                    archive.extractall(staging, members=members)
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as e:
            raise DownloadError(f"cannot extract {from_path}: {e}; delete it and download it again") from None
        for entry in os.listdir(staging):
            dest = os.path.join(to_path, entry)
            if os.path.isdir(dest) and not os.path.islink(dest):
                shutil.rmtree(dest)
            elif os.path.lexists(dest):
                os.unlink(dest)
            os.replace(os.path.join(staging, entry), dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return to_path
