"""The file helpers of mindcv.utils.fs: temporary names, atomic writes, quiet removal, file modes and the file lock.

Offline and fast: plain files in ``tmp_path``, no MindSpore kernels.
"""

import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from mindcv.utils import fs
from mindcv.utils.checkpoint import is_temporary_checkpoint
from mindcv.utils.fs import (
    FileLockTimeout,
    atomic_path,
    atomic_write,
    atomic_write_text,
    file_lock,
    fsync_dir,
    is_temporary,
    new_file_mode,
    temporary_path,
    unlink_quiet,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="umask and flock semantics are POSIX")


class Boom(Exception):
    """A failure in the middle of a write."""


@pytest.fixture
def umask():
    """Set the process umask for one test (and drop new_file_mode's cached value around it)."""
    saved = os.umask(0o022)
    os.umask(saved)
    fs._file_mode = None

    def set_mask(mask: int) -> None:
        os.umask(mask)
        fs._file_mode = None

    yield set_mask
    os.umask(saved)
    fs._file_mode = None


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_temporary_names_are_hidden_unique_and_recognised(tmp_path):
    target = str(tmp_path / "m-last.ckpt")
    a, b = temporary_path(target, ".ckpt"), temporary_path(target, ".ckpt")
    assert a != b
    assert os.path.dirname(a) == str(tmp_path)  # same folder: the rename stays on one file system
    name = os.path.basename(a)
    assert name.startswith(f".m-last.ckpt.tmp-{os.getpid()}-") and name.endswith(".ckpt")
    assert len(name) == len(f".m-last.ckpt.tmp-{os.getpid()}-") + 8 + len(".ckpt")
    assert is_temporary(a) and is_temporary(name) and is_temporary_checkpoint(a)
    # names written by earlier versions and by MindSpore's own intermediate step
    for old in (".last.ckpt.tmp-123-0a1b2c3d.ckpt", ".last.ckpt.tmp-123-0a1b2c3d.tmp", ".x.tmp-1-link.ckpt"):
        assert is_temporary(old), old
    for real in ("last.ckpt", ".hidden.ckpt", "summary.csv.tmp-12", "a.tmp-b.ckpt", ".run.lock"):
        assert not is_temporary(real), real
    assert os.path.basename(temporary_path("config.yaml")).startswith(".config.yaml.tmp-")  # relative paths too


def test_atomic_write_text_and_binary_are_complete_after_the_rename(tmp_path):
    target = tmp_path / "out.txt"
    assert atomic_write_text(str(target), "héllo\nworld\n") == str(target)
    assert target.read_text(encoding="utf-8") == "héllo\nworld\n"
    with atomic_write(str(target), "wb", suffix=".part") as f:
        f.write(b"\x00" * 100_000)
        f.write(b"end")
        (tmp_name,) = [n for n in os.listdir(tmp_path) if n != "out.txt"]
        assert tmp_name.startswith(".out.txt.tmp-") and tmp_name.endswith(".part")
    assert target.read_bytes() == b"\x00" * 100_000 + b"end"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_the_target_is_untouched_until_the_block_ends(tmp_path):
    target = tmp_path / "summary.csv"
    target.write_text("old\n")
    with atomic_write(str(target), newline="") as f:
        f.write("new\r\n")
        f.flush()
        assert target.read_text() == "old\n"
        (tmp_name,) = [n for n in os.listdir(tmp_path) if n != "summary.csv"]
        assert is_temporary(tmp_name)
    assert target.read_bytes() == b"new\r\n"  # newline="" writes the text as given


@pytest.mark.parametrize("error", [Boom("disk full"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, error):
    target = tmp_path / "config.yaml"
    target.write_bytes(b"previous content")
    with pytest.raises(type(error)):
        with atomic_write(str(target)) as f:
            f.write("half of the new")
            raise error
    assert target.read_bytes() == b"previous content"
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_a_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(Boom):
        with atomic_write(str(tmp_path / "results.json")):
            raise Boom
    assert os.listdir(tmp_path) == []


def test_atomic_write_in_a_missing_folder_raises_and_refuses_other_modes(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_write(str(tmp_path / "missing" / "x.txt")):
            pass
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(str(tmp_path / "x.txt"), "a"):
            pass
    assert os.listdir(tmp_path) == []


@posix_only
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_new_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert new_file_mode() == expected
    path = atomic_write_text(str(tmp_path / "a.txt"), "x")
    assert _mode(path) == expected
    # a writer that makes its file read-only (as MindSpore does) gets the same mode with chmod=True
    target = str(tmp_path / "b.ckpt")
    with atomic_path(target, ".ckpt", chmod=True) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"weights")
        os.chmod(tmp, 0o400)
    assert _mode(target) == expected
    with atomic_path(str(tmp_path / "c.bin")) as tmp:  # without chmod the writer's mode stays
        with open(tmp, "wb"):
            pass
        os.chmod(tmp, 0o400)
    assert _mode(tmp_path / "c.bin") == 0o400


def test_atomic_path_renames_what_the_writer_made(tmp_path):
    target = tmp_path / "model.mindir"
    target.write_bytes(b"old")
    with atomic_path(str(target), ".mindir") as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".mindir") and is_temporary(tmp)
        with open(tmp, "wb") as f:
            f.write(b"new model")
    assert target.read_bytes() == b"new model"
    assert os.listdir(tmp_path) == ["model.mindir"]


def test_atomic_path_failure_removes_the_temporary_and_its_sidecars(tmp_path):
    target = tmp_path / "model.mindir"
    target.write_bytes(b"old")
    with pytest.raises(Boom):
        with atomic_path(str(target), ".mindir", sidecars=(".tmp", "_variables")) as tmp:
            stem = tmp[: -len(".mindir")]
            with open(tmp, "wb") as f:
                f.write(b"partial")
            os.chmod(tmp, 0o400)  # read-only, as MindSpore writes it
            with open(stem + ".tmp", "wb") as f:
                f.write(b"intermediate")
            os.makedirs(os.path.join(stem + "_variables", "data"))
            with open(os.path.join(stem + "_variables", "data", "w.bin"), "wb") as f:
                f.write(b"external weights")
            raise Boom
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.mindir"]


def test_atomic_path_when_the_writer_made_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(str(tmp_path / "x.ckpt"), ".ckpt"):
            pass  # e.g. a writer that only logged its failure
    assert os.listdir(tmp_path) == []


def test_unlink_quiet(tmp_path, caplog):
    path = tmp_path / "gone.txt"
    unlink_quiet(str(path))  # missing: no error
    path.write_text("x")
    unlink_quiet(str(path))
    assert not path.exists()
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with caplog.at_level(logging.WARNING, logger="mindcv.utils.fs"):
        unlink_quiet(str(folder))  # cannot be unlinked: logged, not raised
    assert folder.is_dir()
    assert "Could not remove temporary file" in caplog.text and str(folder) in caplog.text


def test_fsync_dir_never_raises(tmp_path):
    fsync_dir(str(tmp_path))
    fsync_dir(str(tmp_path / "missing"))
    fsync_dir("")


@posix_only
def test_file_lock_second_open_file_times_out_and_names_the_holder(tmp_path):
    target = str(tmp_path / "data" / "archive.tar.gz")
    with file_lock(target) as lock:
        assert os.path.basename(lock) == ".archive.tar.gz.lock"
        # flock belongs to an open file: a second one, even in this process, is refused
        with pytest.raises(FileLockTimeout, match="locked by another process") as info:
            with file_lock(target, timeout=0.05, poll_interval=0.01):
                pass
    assert info.value.holder.startswith(f"pid {os.getpid()} on ")
    assert info.value.holder in str(info.value) and "wait for it to finish" in str(info.value)
    with file_lock(target, timeout=0):  # released at the end of the block
        pass


def test_file_lock_between_threads(tmp_path):
    target = str(tmp_path / "data" / "archive.tar.gz")
    held = threading.Event()
    release = threading.Event()

    def holder():
        with file_lock(target):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(10)
    with pytest.raises(FileLockTimeout, match="locked by another process") as info:
        with file_lock(target, timeout=0):
            pass
    assert f"pid {os.getpid()}" in str(info.value)
    threading.Timer(0.3, release.set).start()
    start = time.monotonic()
    with file_lock(target, timeout=10) as lock:
        waited = time.monotonic() - start
        assert os.path.basename(lock) == ".archive.tar.gz.lock"
    t.join(10)
    assert 0.2 < waited < 5


def test_file_lock_of_a_killed_process_is_released(tmp_path):
    """A holder killed with SIGKILL cannot clean up; the OS must still release its lock."""
    target = str(tmp_path / "ckpt")
    lock = fs._lock_path(target)
    code = textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({lock!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(60)
        """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(FileLockTimeout):
            with file_lock(target, timeout=0.2):
                pass
        child.kill()
        child.wait(10)
        with file_lock(target, timeout=5):
            pass
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdout.close()
