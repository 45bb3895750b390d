"""File-system helpers written once: atomic writes (temporary name, fsync, rename), quiet removal, the mode of
new files, and a cross-process file lock.

Everything that saves a file the user keeps (checkpoints, exports, configs, summaries, downloads) goes through
these, so a crash or a full disk never leaves a half-written file under the real name nor loses the last good one.

Temporary names look like ``.<target name>.tmp-<pid>-<8 hex digits><suffix>``, in the target's folder: the
leading dot hides them from ``ls`` and ``glob("*.ckpt")``, the folder makes the final ``os.replace`` a rename
within one file system (atomic), and :func:`is_temporary` recognises them so that tools never take one for a
real file.
"""

import contextlib
import errno
import logging
import os
import secrets
import shutil
import socket
import time
from typing import IO, Any, Iterator, Optional, Sequence

from ..errors import MindCVError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "TEMP_MARKER",
    "temporary_path",
    "is_temporary",
    "new_file_mode",
    "unlink_quiet",
    "fsync_dir",
    "atomic_path",
    "atomic_write",
    "atomic_write_text",
    "file_lock",
    "FileLockTimeout",
]

_logger = logging.getLogger(__name__)

#: What every temporary name holds after the target's name (see :func:`temporary_path`).
TEMP_MARKER = ".tmp-"
_file_mode: Optional[int] = None


def temporary_path(path: str, suffix: str = "") -> str:
    """A fresh hidden name next to ``path`` to write into before renaming onto ``path``.

    Args:
        path: The target file.
        suffix: Appended to the name, e.g. ``".ckpt"`` for a writer (MindSpore) that checks the extension,
            or ``".part"`` for downloads.

    Returns:
        ``<folder>/.<name>.tmp-<pid>-<8 random hex digits><suffix>``; the pid names the writer and the random
        part keeps two threads or two saves of one process apart.
    """
    folder, name = os.path.split(os.fspath(path))
    return os.path.join(folder, f".{name}{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def is_temporary(name: str) -> bool:
    """Return True for a name made by :func:`temporary_path` (or derived from one), never a real file.

    Args:
        name: A file name or path.
    """
    name = os.path.basename(os.fspath(name))
    return name.startswith(".") and TEMP_MARKER in name


def new_file_mode() -> int:
    """The mode a freshly created ordinary file gets: ``0o666`` minus the process umask.

    Returns:
        The permission bits, for files that a writer such as MindSpore creates with its own mode (0400).
    """
    global _file_mode
    if _file_mode is None:
        # Read once: the umask can only be read by setting it, which is process-wide and races with other threads.
        mask = os.umask(0)
        os.umask(mask)
        _file_mode = 0o666 & ~mask
    return _file_mode


def unlink_quiet(path: str) -> None:
    """Remove a file if it exists, for clean-ups that must not mask the error being handled.

    A missing file is fine; any other failure is logged as a warning, not raised.

    Args:
        path: The file.
    """
    try:
        try:
            os.unlink(path)
        except PermissionError:
            if os.name != "nt":
                raise
            # Windows refuses to delete a read-only file, and MindSpore writes its files read-only.
            os.chmod(path, 0o600)
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        _logger.warning("Could not remove temporary file %s: %s", path, e)


def fsync_dir(folder: str) -> None:
    """Persist the entries of ``folder`` (a rename into it); without this a power cut can lose the new name.

    Never raises: where folders cannot be opened (Windows) the rename is atomic all the same.

    Args:
        folder: The folder; ``""`` means the current one.
    """
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_temporary(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        unlink_quiet(path)


@contextlib.contextmanager
def _replacing(path: str, suffix: str, sidecars: Sequence[str]) -> Iterator[str]:
    """Yield a temporary name; rename it onto ``path`` after the block, remove it and its sidecars on any error."""
    tmp = temporary_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: the temporary must not survive
        stem = tmp[: len(tmp) - len(suffix)]
        for leftover in [tmp] + [stem + s for s in sidecars]:
            _remove_temporary(leftover)
        raise
    fsync_dir(os.path.dirname(tmp))


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "", *, sidecars: Sequence[str] = (), chmod: bool = False) -> Iterator[str]:
    """Give a writer that takes a file name a temporary one, and make it ``path`` once the block succeeds.

    When the block exits normally the temporary file is flushed to disk, renamed onto ``path`` and the
    folder is flushed, so ``path`` holds either its previous content or the complete new file. When the
    block raises (KeyboardInterrupt included), the temporary file and its sidecars are removed, ``path`` is
    untouched and the exception propagates::

        with atomic_path(target, ".ckpt", chmod=True) as tmp:
            mindspore.save_checkpoint(net, tmp)

    Args:
        path: The target file; its folder must exist.
        suffix: End of the temporary name (see :func:`temporary_path`).
        sidecars: Other endings, in place of ``suffix``, of files or folders the writer may leave next to the
            temporary one (MindSpore's ``.tmp`` intermediate, an export's ``_variables`` folder); removed on
            failure.
        chmod: Give the file :func:`new_file_mode` before the rename, for writers that pick their own mode.

    Yields:
        The temporary path; the block must create the file there.
    """
    with _replacing(path, suffix, sidecars) as tmp:
        yield tmp
        if chmod:
            os.chmod(tmp, new_file_mode())
        _fsync_file(tmp)


@contextlib.contextmanager
def atomic_write(
    path: str,
    mode: str = "w",
    *,
    encoding: Optional[str] = "utf-8",
    newline: Optional[str] = None,
    suffix: str = "",
) -> Iterator[IO[Any]]:
    """Open a hidden temporary file for writing that replaces ``path`` once the block succeeds.

    The file is created exclusively, with ``0o666`` minus the umask as ``open`` gives (:func:`new_file_mode`);
    after the block it is flushed and fsynced, renamed onto ``path`` and the folder is fsynced. If the block
    raises, the temporary file is removed, ``path`` keeps its previous content and the exception propagates.

    Args:
        path: The target file; its folder must exist.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: Text encoding (ignored in binary mode).
        newline: As for :func:`open` (``""`` for the csv module).
        suffix: End of the temporary name (see :func:`temporary_path`).

    Yields:
        The open file object.

    Raises:
        ValueError: ``mode`` is not ``"w"`` or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    text = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
    with _replacing(path, suffix, ()) as tmp:
        # O_EXCL: the name is ours alone; 0o666 lets the umask decide the permissions, as open() does.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            f = os.fdopen(fd, mode, **text)
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str, text: str, encoding: str = "utf-8") -> str:
    """Write ``text`` to ``path`` through :func:`atomic_write`.

    Args:
        path: The target file; its folder must exist.
        text: The whole content.
        encoding: Text encoding.

    Returns:
        ``path``.
    """
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)
    return path


class FileLockTimeout(MindCVError, TimeoutError):
    """Another process held a :func:`file_lock` for longer than the caller was willing to wait.

    Args:
        message: The one-line error.
        holder: Who holds the lock, as its holder wrote it (``"pid <n> on <host>"``), or ``"unknown"``.
    """

    def __init__(self, message: str, holder: str = "unknown") -> None:
        super().__init__(message)
        self.holder = holder


def _lock_path(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.lock")


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock without blocking; False when another open file description holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows: lock the first byte instead
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
            return False
        raise


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:  # pragma: no cover - Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


@contextlib.contextmanager
def file_lock(path: str, timeout: Optional[float] = None, poll_interval: float = 0.1) -> Iterator[str]:
    """Hold an exclusive inter-process lock on ``path`` for the duration of a ``with`` block.

    The lock is an OS file lock (``flock``) on the hidden file ``.<name>.lock`` next to ``path``, so
    the OS releases it when the holder exits or is killed: a crashed process never leaves it stuck.
    The lock file itself stays (deleting it would let two processes lock different files). Use it
    where one process must do the work while the others wait, e.g. one rank downloading a dataset:

        with file_lock(archive_path, timeout=3600):
            download_url(url, root=folder, md5=...)   # the first holder downloads, the rest hit the cache

    The lock is per open file, not per thread: taking it twice in one process blocks the second taker.

    Args:
        path: The file or folder being protected (it need not exist; its parent folder is created).
        timeout: Seconds to wait; None waits indefinitely, 0 tries exactly once.
        poll_interval: Seconds between attempts while waiting.

    Yields:
        The path of the lock file.

    Raises:
        FileLockTimeout: The lock was still held by another process after ``timeout`` seconds.
    """
    lock = _lock_path(path)
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not _try_lock(fd):
            if deadline is not None and time.monotonic() >= deadline:
                try:
                    with open(lock, encoding="utf-8", errors="replace") as f:
                        holder = f.read().strip() or "unknown"
                except OSError:
                    holder = "unknown"
                raise FileLockTimeout(
                    f"{path} is locked by another process ({holder}) for more than {timeout:g} s (lock file "
                    f"{lock}); wait for it to finish or stop it: a crashed holder releases the lock by itself",
                    holder=holder,
                )
            time.sleep(poll_interval)
        try:
            # Who holds it, for the message above; written only while holding the lock.
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        except OSError:
            pass  # diagnostics only; e.g. a full disk must not prevent locking
        try:
            yield lock
        finally:
            _unlock(fd)
    finally:
        os.close(fd)
