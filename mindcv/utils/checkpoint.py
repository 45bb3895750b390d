"""Crash-safe checkpoint files: atomic saves, strict reads, and metadata that survives the round trip.

``mindspore.save_checkpoint`` is not atomic: it deletes an existing target first, writes
``<name>.tmp`` and renames it, leaving nothing at the old name if the process dies in between, and
it makes the file read-only (0400). :func:`save_checkpoint_atomic` lets MindSpore write a unique,
hidden temporary file next to the target and ``os.replace``-s it onto the target only once it is
complete and on disk (:func:`mindcv.utils.fs.atomic_path`), so ``path`` always holds either the
previous checkpoint or the new one.

Temporary names look like ``.<target name>.tmp-<pid>-<random>.ckpt``: the leading dot hides them from
``glob("*.ckpt")`` and from ``ls``, and :func:`is_temporary_checkpoint` recognises them (and
MindSpore's own ``....tmp`` intermediate) so tools never take one for a real checkpoint.

Metadata passed through ``append_dict`` (epoch, step, learning rate, architecture name...) is stored
next to the tensors, with a small JSON record of its keys and types under :data:`META_KEY`, so that
:func:`split_checkpoint` can separate it exactly and give back Python ``int``/``float``/``bool``/``str``
(MindSpore itself returns numbers as 0-d Parameters, and cannot store strings in safetensors at all).
"""

import contextlib
import errno
import json
import logging
import os
import re
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor

from ..errors import CheckpointError
from .fs import atomic_path, is_temporary
from .logger import mindspore_log_muted

__all__ = [
    "META_KEY",
    "save_checkpoint_atomic",
    "read_checkpoint",
    "split_checkpoint",
    "is_temporary_checkpoint",
    "clean_stale_temporaries",
]

_logger = logging.getLogger(__name__)

#: Reserved entry holding the JSON record of the metadata keys written through ``append_dict``.
META_KEY = "__meta_keys__"
_FORMATS = {".ckpt": "ckpt", ".safetensors": "safetensors"}
_META_TYPES = ("int", "float", "bool", "str", "tensor")


def is_temporary_checkpoint(filename: str) -> bool:
    """Return True for a temporary file of :func:`save_checkpoint_atomic`, which is never a checkpoint.

    Args:
        filename: A file name or path.
    """
    return is_temporary(filename)


def clean_stale_temporaries(folder: str, max_age_s: float = 3600.0) -> List[str]:
    """Delete temporary checkpoint files that a crashed or killed writer left in ``folder``.

    A live writer's temporary file is at most as old as one save, so the age threshold keeps a
    concurrent save in the same folder safe; ``max_age_s=0`` removes every temporary file and is
    right only when no other process writes into the folder (e.g. under a run lock).

    Args:
        folder: Checkpoint folder; a missing folder is not an error.
        max_age_s: Only files last modified longer ago than this are removed.

    Returns:
        The paths removed.
    """
    removed = []
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return removed
    now = time.time()
    for entry in entries:
        full = os.path.join(folder, entry)
        if not is_temporary_checkpoint(entry):
            continue
        try:
            if os.path.isfile(full) and now - os.path.getmtime(full) >= max_age_s:
                os.unlink(full)
                removed.append(full)
        except OSError:
            pass  # removed by someone else, or not ours to delete: leave it
    if removed:
        _logger.info("Removed %d stale temporary checkpoint file(s) from %s", len(removed), folder)
    return removed


def _format_of(path: str, format: Optional[str]) -> str:
    ext = os.path.splitext(path)[1].lower()
    by_ext = _FORMATS.get(ext)
    if by_ext is None:
        raise CheckpointError(
            f"cannot save checkpoint {path}: the name must end in .ckpt or .safetensors (MindSpore checks the "
            "extension when loading)"
        )
    if format is not None and format != by_ext:
        raise CheckpointError(
            f"cannot save checkpoint {path} in format {format!r}: the extension says {by_ext!r}; name the file "
            f"*.{format} or drop the format"
        )
    return by_ext


def _param_names(save_obj: Any) -> List[str]:
    if isinstance(save_obj, ms.nn.Cell):
        return list(save_obj.parameters_dict().keys())
    if isinstance(save_obj, dict):
        return [str(k) for k in save_obj]
    if isinstance(save_obj, (list, tuple)):
        return [item["name"] if isinstance(item, dict) else getattr(item, "name", "") for item in save_obj]
    return []


def _normalise_save_obj(save_obj: Any) -> Any:
    """Wrap plain Tensors of a dict in Parameters.

    MindSpore 2.10's dict path accepts only Parameters, numpy arrays and strings: a plain Tensor
    raises ``UnboundLocalError`` when it comes first and otherwise silently repeats the previous
    entry, so the Tensor is lost from the file.
    """
    if not isinstance(save_obj, dict):
        return save_obj
    return {
        k: Parameter(v, name=k) if isinstance(v, Tensor) and not isinstance(v, Parameter) else v
        for k, v in save_obj.items()
    }


def _encode_append_dict(append_dict: Optional[Dict[str, Any]], fmt: str, names: List[str]) -> Optional[dict]:
    """Convert metadata to what MindSpore stores faithfully, plus the JSON record of keys and types."""
    if not append_dict:
        return None
    taken = set(names)
    types: Dict[str, str] = {}
    strings: Dict[str, str] = {}
    out: Dict[str, Any] = {}
    for key, value in append_dict.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"save_checkpoint_atomic: append_dict keys must be non-empty strings, got {key!r}")
        if key == META_KEY or key in taken:
            raise ValueError(
                f"save_checkpoint_atomic: append_dict key {key!r} collides with "
                f"{'the reserved metadata key' if key == META_KEY else 'a parameter of the same name'}"
            )
        if isinstance(value, (bool, np.bool_)):
            types[key], out[key] = "bool", Tensor(np.array(bool(value)))
        elif isinstance(value, (int, np.integer)):
            types[key], out[key] = "int", Tensor(np.array(int(value), dtype=np.int64))
        elif isinstance(value, (float, np.floating)):
            # float64, not MindSpore's default float32: a resumed lr or best accuracy must be exact.
            types[key], out[key] = "float", Tensor(np.array(float(value), dtype=np.float64))
        elif isinstance(value, str):
            types[key], strings[key] = "str", value
            if fmt == "ckpt" and value:
                out[key] = value  # also readable by plain MindSpore/upstream MindCV; safetensors has no strings
        elif isinstance(value, (Tensor, Parameter)):
            types[key], out[key] = "tensor", value
        elif isinstance(value, np.ndarray):
            types[key], out[key] = "tensor", Tensor(value)
        else:
            raise TypeError(
                f"save_checkpoint_atomic: append_dict[{key!r}] has type {type(value).__name__}; use int, float, "
                "bool, str, numpy array or Tensor"
            )
    record = json.dumps({"types": types, "strings": strings}, sort_keys=True)
    out[META_KEY] = record if fmt == "ckpt" else Tensor(np.frombuffer(record.encode("utf-8"), dtype=np.uint8).copy())
    return out


def _errno_of(exc: BaseException) -> Optional[int]:
    """The errno behind an exception, also when a library (safetensors) reports it only as text."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int):
        return code
    m = re.search(r"os error (\d+)|code: (\d+)", str(exc))
    if m:
        return int(m.group(1) or m.group(2))
    if "No space left" in str(exc):
        return errno.ENOSPC
    return None


def _save_failure(path: str, exc: BaseException) -> str:
    code = _errno_of(exc)
    folder = os.path.dirname(path)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        reason = "no space left on device: free space or choose another --ckpt_save_dir"
    elif code == errno.EROFS:
        reason = f"{folder} is on a read-only file system: choose another --ckpt_save_dir"
    elif code in (errno.EACCES, errno.EPERM):
        reason = f"permission denied writing into {folder}: make it writable or choose another --ckpt_save_dir"
    else:
        text = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        reason = f"{text}: check the folder or choose another --ckpt_save_dir"
    return f"cannot save checkpoint {path}: {reason} (any previous file there is unchanged)"


def save_checkpoint_atomic(
    save_obj: Any,
    path: str,
    *,
    append_dict: Optional[Dict[str, Any]] = None,
    format: Optional[str] = None,
) -> str:
    """Save a checkpoint so that ``path`` holds either the old file or the complete new one, never less.

    Args:
        save_obj: Anything :func:`mindspore.save_checkpoint` accepts: a Cell, a list of
            ``{"name", "data"}`` dicts or Parameters, or a dict name -> Parameter/Tensor/array.
        path: Target file, ending in ``.ckpt`` or ``.safetensors``; its folder is created if needed.
        append_dict: Metadata to store with the tensors: int, float, bool, str, numpy array or Tensor
            values (floats are stored as float64). Read it back with :func:`split_checkpoint`.
        format: ``"ckpt"`` or ``"safetensors"``; must agree with the extension (inferred when None).

    Returns:
        The absolute path written. The file is user-writable (0o666 minus the umask), unlike
        MindSpore's 0400, so later overwrites and clean-ups need no chmod.

    Raises:
        CheckpointError: The file cannot be written (full disk, read-only or unwritable folder), or
            the name has the wrong extension; one line naming the path, the reason and the fix.
    """
    path = os.path.abspath(os.fspath(path))
    fmt = _format_of(path, format)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise CheckpointError(f"cannot save checkpoint {path}: a folder of that name exists; choose another name")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise CheckpointError(_save_failure(path, e)) from e
    encoded = _encode_append_dict(append_dict, fmt, _param_names(save_obj))

    try:
        # MindSpore checks the extension, writes `<tmp without extension>.tmp` first, and makes the file 0400.
        with atomic_path(path, f".{fmt}", sidecars=(".tmp",), chmod=True) as tmp:
            with mindspore_log_muted(logging.CRITICAL):
                ms.save_checkpoint(_normalise_save_obj(save_obj), tmp, append_dict=encoded, format=fmt)
            if not os.path.isfile(tmp):  # MindSpore only logs a warning when its own rename fails
                raise OSError(errno.ENOENT, f"MindSpore did not produce {tmp}")
    except BaseException as e:  # the temporary files are gone already; only the error is translated
        if isinstance(e, OSError) or _errno_of(e) is not None:
            raise CheckpointError(_save_failure(path, e)) from e
        raise
    return path


def _available_memory() -> Optional[int]:
    """Bytes the kernel can hand out now, page cache included (``MemAvailable``); None where it does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@contextlib.contextmanager
def _memory_check_counts_page_cache() -> Iterator[None]:
    """Make MindSpore's pre-load size check of ``.ckpt`` files count reclaimable page cache as free.

    MindSpore 2.10 refuses a ``.ckpt`` larger than ``sysconf(SC_AVPHYS_PAGES)``, the strictly unused memory, which on
    a machine whose page cache fills its RAM is a few hundred MB even with gigabytes available: a 280 MB res2net50
    checkpoint then fails to load with "exceeds current available memory". Only for the duration of one load, the
    check reads ``MemAvailable`` instead, the kernel's own estimate of what can be allocated without swapping.
    """
    serialization = getattr(ms.train, "serialization", None)
    original = getattr(serialization, "_get_available_memory", None)
    if original is None or _available_memory() is None:  # another MindSpore, or not Linux: leave its check alone
        yield
        return
    serialization._get_available_memory = _available_memory
    try:
        yield
    finally:
        serialization._get_available_memory = original


def _load(path: str, fmt: str) -> Dict[str, Any]:
    with mindspore_log_muted(logging.CRITICAL), _memory_check_counts_page_cache():
        return ms.load_checkpoint(path, format=fmt)


def _load_any_extension(path: str, fmt: str) -> Dict[str, Any]:
    """MindSpore refuses names not ending in the format's extension: load through a correctly named link."""
    with tempfile.TemporaryDirectory(prefix="mindcv-ckpt-") as tmp:
        alias = os.path.join(tmp, f"checkpoint.{fmt}")
        try:
            os.symlink(os.path.abspath(path), alias)
        except OSError:  # no symlinks (some Windows setups): copy instead
            import shutil

            shutil.copyfile(path, alias)
        return _load(alias, fmt)


def read_checkpoint(path: str) -> Dict[str, Any]:
    """Load a ``.ckpt`` or ``.safetensors`` file into a dict name -> Parameter, failing loudly.

    The format follows the extension; for any other extension ``ckpt`` is tried, then
    ``safetensors``. Metadata entries come back as MindSpore returns them (0-d Parameters, ``str``,
    and the :data:`META_KEY` record): pass the result to :func:`split_checkpoint` to separate them.

    Args:
        path: Checkpoint file.

    Returns:
        The non-empty dict of entries.

    Raises:
        CheckpointError: One line for a missing path, a folder, an unreadable, empty, truncated or
            garbage file, or a file with no entries.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path} does not exist; check the path / pass --ckpt_path")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} is a folder, not a file; pass the .ckpt file inside it")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.read(1)
    except PermissionError as e:
        raise CheckpointError(
            f"checkpoint {path} cannot be read: permission denied; fix its permissions (chmod u+r) or copy it"
        ) from e
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} cannot be read: {e.strerror or e}") from e
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); re-download or re-save it")

    ext = os.path.splitext(path)[1].lower()
    formats = [_FORMATS[ext]] if ext in _FORMATS else ["ckpt", "safetensors"]
    last: Optional[BaseException] = None
    for fmt in formats:
        try:
            params = _load(path, fmt) if ext in _FORMATS else _load_any_extension(path, fmt)
            break
        except PermissionError as e:
            raise CheckpointError(f"checkpoint {path} cannot be read: permission denied; fix its permissions") from e
        except Exception as e:  # MindSpore raises ValueError/RuntimeError, safetensors its own error type
            last = e
    else:
        detail = str(last).strip().splitlines()[0][:200] if last is not None and str(last).strip() else ""
        if "memory" in str(last).lower():
            raise CheckpointError(
                f"checkpoint {path} could not be read: not enough free memory ({detail}); free memory or close other "
                "processes and retry"
            ) from last
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a MindSpore checkpoint ({type(last).__name__}: {detail}); "
            "re-download or re-save it"
        ) from last
    if not params:
        raise CheckpointError(f"checkpoint {path} holds no parameters; re-download or re-save it")
    return params


def _to_python(key: str, kind: str, value: Any, strings: Dict[str, str]) -> Any:
    if kind == "str":
        return strings[key] if key in strings else str(value)
    array = value.asnumpy() if isinstance(value, Tensor) else np.asarray(value)
    if kind == "tensor":
        return array
    scalar = array.reshape(-1)[0].item()
    return {"int": int, "float": float, "bool": bool}[kind](scalar)


def split_checkpoint(d: Dict[str, Any]) -> Tuple[Dict[str, Parameter], Dict[str, Any]]:
    """Separate a loaded checkpoint into tensors (model/optimizer state) and metadata.

    Files written by :func:`save_checkpoint_atomic` carry a record of their ``append_dict`` keys, so
    the split is exact: those keys become metadata, converted back to Python ``int``, ``float``,
    ``bool`` and ``str`` (tensor values come back as numpy arrays); everything else is a tensor.
    For other files (e.g. upstream MindCV's) only string entries count as metadata, since a 0-d
    Parameter may as well be optimizer state such as ``learning_rate``.

    Args:
        d: The dict returned by :func:`read_checkpoint` or :func:`mindspore.load_checkpoint`.

    Returns:
        ``(tensors, metadata)``; :data:`META_KEY` itself is in neither.

    Raises:
        CheckpointError: The metadata record is unreadable or names an entry that is missing.
    """
    meta: Dict[str, Any] = {}
    raw = d.get(META_KEY)
    if raw is not None:
        try:
            text = raw if isinstance(raw, str) else bytes(np.asarray(raw.asnumpy(), dtype=np.uint8)).decode("utf-8")
            record = json.loads(text)
            types, strings = record["types"], record.get("strings", {})
            if not all(kind in _META_TYPES for kind in types.values()):
                raise ValueError(f"unknown metadata type in {sorted(set(types.values()))}")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(
                f"the checkpoint's metadata record {META_KEY!r} is unreadable ({e}); the file is corrupt: re-save it"
            ) from e
        for key, kind in types.items():
            if kind != "str" and key not in d:
                raise CheckpointError(
                    f"the checkpoint's metadata names {key!r} but the file has no such entry; the file is "
                    "corrupt: re-save it"
                )
            meta[key] = _to_python(key, kind, d.get(key), strings)
    for key, value in d.items():
        if isinstance(value, str) and key != META_KEY:
            meta.setdefault(key, value)
    tensors = {k: v for k, v in d.items() if k not in meta and k != META_KEY}
    return tensors, meta
