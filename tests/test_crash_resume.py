"""Crash and resume, full disk and concurrent runs, end to end with ``train.py`` (issue 7).

A tiny Graph-mode run (3 epochs of 5 steps, evaluation after each, momentum + EMA state, cosine lr) is
killed with SIGKILL at five points: mid-step, during evaluation, while an epoch checkpoint is being written,
while -best is being written, and between epochs. After each kill the last complete checkpoint must load,
``--resume auto`` must finish the run, and the result must be bit-identical to an uninterrupted run's, with
no temporary file left that a user could take for a checkpoint. A full disk while writing a checkpoint
(simulated in-process, and real on a small tmpfs when mounting is allowed) must stop with one line and leave
the previous checkpoint intact. A second run on a folder in use is refused; a killed run's lock does not stick.

Kills are timed by watching the output folder (log lines, hidden temporaries, ``summary.csv`` rows), and
each case then checks from the files that it really landed where intended.
"""

import errno
import hashlib
import os
import shutil
import subprocess
import types

import numpy as np
import pytest
from crashutil import (
    TrainProcess,
    checkpoint_names,
    kill_when,
    read_text,
    run_train,
    summary_epochs,
    summary_rows,
    temporaries,
    unexplained_files,
    wait_until,
)
from scriptutil import TINY, TINY_MODEL, error_lines, read_meta, read_tensors, run_script

import mindspore as ms

from mindcv.utils.checkpoint import is_temporary_checkpoint, read_checkpoint, split_checkpoint
from mindcv.utils.fs import file_lock

pytestmark = pytest.mark.slow

MODEL = TINY_MODEL
EPOCHS, STEPS = 3, 5
# 20 samples / batch 4 = 5 steps per epoch; 120 validation images keep the evaluation window wide enough to
# land a kill in. Shuffling, random crops, a per-step cosine lr, momentum and EMA: all state a resume must restore.
ARGS = TINY + [
    "--dataset", "digits", "--num_samples", "20", "--val_num_samples", "120", "--mode", "0",
    "--opt", "momentum", "--lr", "0.002", "--scheduler", "cosine_decay", "--ema", "--ema_decay", "0.9",
    "--epoch_size", str(EPOCHS), "--val_while_train", "true", "--log_interval", "1",
]  # fmt: skip
# summary.csv columns that a resumed run must reproduce exactly (timings and throughput naturally differ).
COMPARED_SUMMARY = ("epoch", "lr", "train_loss", "val_top1", "val_top5", "val_loss")
ALL_CHECKPOINTS = sorted(
    [f"{MODEL}-{e}_{STEPS}.ckpt" for e in range(1, EPOCHS + 1)] + [f"{MODEL}-best.ckpt", f"{MODEL}-last.ckpt"]
)


def _last(folder: str) -> str:
    return os.path.join(folder, f"{MODEL}-last.ckpt")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _lock_released(folder: str) -> bool:
    try:
        with file_lock(os.path.join(folder, "run"), timeout=0):
            return True
    except Exception:  # FileLockTimeout: still held
        return False


def _assert_same_as_reference(folder: str, reference: types.SimpleNamespace, summary: bool = True) -> None:
    """The finished run's complete state (and, with ``summary``, its per-epoch summary) equal the uninterrupted
    run's exactly."""
    tensors = read_tensors(_last(folder))
    assert sorted(tensors) == sorted(reference.tensors)
    different = [k for k in tensors if not np.array_equal(tensors[k], reference.tensors[k])]
    assert (
        not different
    ), f"{len(different)} of {len(tensors)} tensors differ from the uninterrupted run: {different[:5]}"
    meta = read_meta(_last(folder))
    assert (meta["epoch"], meta["step"]) == (EPOCHS, EPOCHS * STEPS)
    if summary:
        rows = [{k: r[k] for k in COMPARED_SUMMARY} for r in summary_rows(folder)]
        assert rows == reference.summary


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, started with ``--resume auto`` in an empty folder; while it holds the folder, a
    second run on the same folder is started and must be refused."""
    root = tmp_path_factory.mktemp("crash_reference")
    folder = root / "run"
    folder.mkdir()  # empty: --resume auto has nothing to resume
    first = TrainProcess(ARGS + ["--ckpt_save_dir", str(folder), "--resume", "auto"], str(root), "first")
    try:
        # The lock file names its holder once the lock is taken: from then on the folder is in use.
        wait_until(first, lambda: f"pid {first.pid} " in read_text(os.path.join(folder, ".run.lock")), 300, 0.01)
        second = run_train(ARGS + ["--ckpt_save_dir", str(folder), "--resume", "auto"], str(root), "second", 300)
        first_alive_after_second = first.alive()
        first_status = first.wait(600)
    finally:
        first.kill()
    assert first_status == 0, first.tail()
    # its kept epoch files also serve the full-disk case (the state after epoch 1)
    yield types.SimpleNamespace(
        folder=str(folder),
        first=first,
        second=second,
        first_alive_after_second=first_alive_after_second,
        tensors=read_tensors(_last(str(folder))),
        summary=[{k: r[k] for k in COMPARED_SUMMARY} for r in summary_rows(str(folder))],
    )
    shutil.rmtree(folder, ignore_errors=True)  # ~1.3 GB of checkpoints


def test_resume_auto_in_empty_folder_starts_fresh(reference):
    """Documented (``--resume`` help): 'auto' with nothing to resume is a fresh start, not an error."""
    log = read_text(os.path.join(reference.folder, "train.log"))
    assert "resumed from" not in log
    assert summary_epochs(reference.folder) == [1, 2, 3]
    assert [f"epoch {e}/{EPOCHS} step 1/{STEPS}:" in log for e in (1, 2, 3)] == [True] * 3
    assert checkpoint_names(reference.folder) == ALL_CHECKPOINTS
    assert read_meta(_last(reference.folder))["epoch"] == EPOCHS
    assert not temporaries(reference.folder)
    # the last epoch changed the state, so a resume that skipped or repeated an epoch cannot match the reference
    before_last = read_tensors(os.path.join(reference.folder, f"{MODEL}-{EPOCHS - 1}_{STEPS}.ckpt"))
    assert not np.array_equal(before_last["conv1.weight"], reference.tensors["conv1.weight"])


def test_second_run_on_the_same_folder_is_refused(reference):
    """While a run writes into a folder, a second one stops at once with one line naming the holder, and the
    first finishes undisturbed (its result is the reference every resumed run below must match)."""
    second = reference.second
    assert second.proc.returncode == 2, second.tail()
    lines = error_lines(second.stderr())
    assert len(lines) == 1, second.stderr()
    line = lines[0]
    assert line.startswith("error: another training run") and f"pid {reference.first.pid} " in line, line
    assert reference.folder in line and "--ckpt_save_dir" in line, line
    assert "epoch 1/" not in second.stdout()  # refused before any training
    assert reference.first_alive_after_second, "the first run must still be running when the second is refused"
    assert "another training run" not in read_text(os.path.join(reference.folder, "train.log"))
    assert _lock_released(reference.folder)


def _log_has(folder: str, text: str) -> bool:
    return text in read_text(os.path.join(folder, "train.log"))


def _writing_epoch_file(folder: str, epoch: int) -> bool:
    prefix = f".{MODEL}-{epoch}_{STEPS}.ckpt.tmp-"
    return any(n.startswith(prefix) for n in os.listdir(folder))


# name: (kill when this is true, what the files must show about where the kill landed, epochs completed)
def _last_is_epoch_file(folder: str, epoch: int) -> bool:
    """-last.ckpt is a hard link to -<epoch>_<steps>.ckpt: the epoch's checkpoints are all committed."""
    try:
        last = os.stat(os.path.join(folder, f"{MODEL}-last.ckpt"))
        return last.st_ino == os.stat(os.path.join(folder, f"{MODEL}-{epoch}_{STEPS}.ckpt")).st_ino
    except FileNotFoundError:
        return False


KILL_POINTS = {
    "mid_step": (
        lambda f: _log_has(f, f"epoch 2/{EPOCHS} step 1/{STEPS}:"),
        lambda f: not _log_has(f, f"epoch 2/{EPOCHS} step {STEPS}/{STEPS}:"),  # epoch 2's steps unfinished
        1,
    ),
    "during_evaluation": (
        lambda f: _log_has(f, f"epoch 2/{EPOCHS} step {STEPS}/{STEPS}:"),  # the last step is read back: evaluation
        lambda f: not _log_has(f, f"epoch 2/{EPOCHS}: train loss"),  # its line comes after the evaluation
        1,
    ),
    "writing_checkpoint": (
        lambda f: _writing_epoch_file(f, 2),
        # the temp was never renamed
        lambda f: _writing_epoch_file(f, 2) and f"{MODEL}-2_{STEPS}.ckpt" not in os.listdir(f),
        1,
    ),
    "between_epochs": (
        lambda f: _last_is_epoch_file(f, 2),  # -last is re-linked to -2_5.ckpt as the last write of epoch 2
        lambda f: not _log_has(f, f"epoch 3/{EPOCHS} step"),  # epoch 3 had not produced a step yet
        2,
    ),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_resume_auto_is_bit_identical(reference, tmp_path, point):
    ready, landed, completed = KILL_POINTS[point]
    folder = str(tmp_path / "run")
    try:
        run = TrainProcess(ARGS + ["--ckpt_save_dir", folder], str(tmp_path), "killed")
        kill_when(run, lambda: os.path.isdir(folder) and ready(folder))
        assert landed(folder), f"the kill did not land {point.replace('_', ' ')}:\n{read_text(folder + '/train.log')}"

        # What the crash left: the last complete checkpoint and every listed checkpoint load; nothing else looks
        # like one (a half-written file, if any, is a hidden temporary that tools recognise).
        listed = checkpoint_names(folder)
        assert f"{MODEL}-last.ckpt" in listed and not unexplained_files(folder), os.listdir(folder)
        for name in listed:
            read_checkpoint(os.path.join(folder, name))
        meta = split_checkpoint(read_checkpoint(_last(folder)))[1]
        assert (meta["epoch"], meta["step"]) == (completed, completed * STEPS)
        assert all(is_temporary_checkpoint(n) for n in temporaries(folder))
        # the killed run's lock file stays behind, naming it, but a killed holder's lock is free
        assert f"pid {run.pid} " in read_text(os.path.join(folder, ".run.lock"))

        resumed = run_train(ARGS + ["--ckpt_save_dir", folder, "--resume", "auto"], str(tmp_path), "resumed")
        assert resumed.proc.returncode == 0, resumed.tail()
        assert f"after epoch {completed}" in resumed.stdout() and "resumed from" in resumed.stdout()
        _assert_same_as_reference(folder, reference)
        assert checkpoint_names(folder) == ALL_CHECKPOINTS
        assert not temporaries(folder) and not unexplained_files(folder), os.listdir(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # ~1.3 GB of checkpoints per case


@pytest.fixture(scope="module")
def killed_writing_best(reference, tmp_path_factory):
    """A run killed while the best epoch's -best.ckpt was being written, then finished with ``--resume auto``."""
    best_epoch = read_meta(_last(reference.folder))["best_epoch"]
    root = tmp_path_factory.mktemp("crash_best")
    folder = str(root / "run")
    try:
        run = TrainProcess(ARGS + ["--ckpt_save_dir", folder], str(root), "killed")
        epoch_done = f"epoch {best_epoch}/{EPOCHS}: train loss"  # logged right before that epoch's checkpoints
        writing_best = f".{MODEL}-best.ckpt.tmp-"
        kill_when(
            run, lambda: _log_has(folder, epoch_done) and any(n.startswith(writing_best) for n in os.listdir(folder))
        )
        after_kill = sorted(os.listdir(folder))
        last_epoch = read_meta(_last(folder))["epoch"] if os.path.exists(_last(folder)) else 0
        resumed = run_train(ARGS + ["--ckpt_save_dir", folder, "--resume", "auto"], str(root), "resumed")
        yield types.SimpleNamespace(
            folder=folder, best_epoch=best_epoch, after_kill=after_kill, last_epoch=last_epoch, resumed=resumed
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # ~1.3 GB of checkpoints


def test_sigkill_while_writing_best_then_resume(killed_writing_best, reference):
    """The kill landed mid-write of -best; the resumed run's complete state is the uninterrupted run's."""
    run = killed_writing_best
    assert any(n.startswith(f".{MODEL}-best.ckpt.tmp-") for n in run.after_kill), run.after_kill
    assert run.last_epoch in (run.best_epoch - 1, run.best_epoch)  # 0: nothing committed yet, a fresh start
    assert run.resumed.proc.returncode == 0, run.resumed.tail()
    _assert_same_as_reference(run.folder, reference, summary=False)
    assert not temporaries(run.folder) and not unexplained_files(run.folder), os.listdir(run.folder)


def test_sigkill_while_writing_best_keeps_the_best_checkpoint(killed_writing_best, reference):
    """After the resume, -best (what ``validate.py --ckpt_path <model>-best.ckpt`` evaluates) is the uninterrupted
    run's."""
    best = os.path.join(killed_writing_best.folder, f"{MODEL}-best.ckpt")
    assert os.path.isfile(best), f"{best} is missing, but the resumed run's log names it as the best checkpoint"
    expected = read_tensors(os.path.join(reference.folder, f"{MODEL}-best.ckpt"))
    got = read_tensors(best)
    assert sorted(got) == sorted(expected) and all(np.array_equal(got[k], expected[k]) for k in got)
    assert read_meta(best)["epoch"] == killed_writing_best.best_epoch


def test_sigkill_while_writing_best_keeps_every_summary_row(killed_writing_best, reference):
    rows = [{k: r[k] for k in COMPARED_SUMMARY} for r in summary_rows(killed_writing_best.folder)]
    assert rows == reference.summary


def _failing_save_on(prefix: str, seen: dict):
    """mindspore.save_checkpoint that, for a file whose name starts with ``prefix``, writes half of it and then
    fails as a full disk does; it records the checkpoints on disk at that moment."""
    real = ms.save_checkpoint

    def save(save_obj, ckpt_file_name, *args, **kwargs):
        if not os.path.basename(ckpt_file_name).startswith(prefix):
            return real(save_obj, ckpt_file_name, *args, **kwargs)
        folder = os.path.dirname(ckpt_file_name)
        seen["before"] = {n: _sha256(os.path.join(folder, n)) for n in checkpoint_names(folder)}
        real(save_obj, ckpt_file_name, *args, **kwargs)
        with open(ckpt_file_name, "r+b") as f:
            f.truncate(os.path.getsize(ckpt_file_name) // 2)
        seen["partial"] = ckpt_file_name
        raise OSError(errno.ENOSPC, "No space left on device")

    return save


def _assert_full_disk_error(stderr: str, folder: str) -> str:
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    line = lines[0]
    epoch_file = os.path.join(folder, f"{MODEL}-2_{STEPS}.ckpt")
    assert line.startswith("error: cannot save checkpoint") and epoch_file in line, line
    assert "no space left on device" in line and "--ckpt_save_dir" in line, line
    return line


def test_full_disk_while_saving_simulated(tmp_path, monkeypatch, capsys):
    """The 2nd epoch's checkpoint write fails half-way with ENOSPC: exit 2 with one line naming the file and the
    fix, the epoch-1 checkpoints byte-identical, no temporary left, the lock released."""
    folder = str(tmp_path / "run")
    seen: dict = {}
    try:
        monkeypatch.setattr(ms, "save_checkpoint", _failing_save_on(f".{MODEL}-2_{STEPS}.ckpt.tmp-", seen))
        rc, _, stderr = run_script("train", ARGS + ["--ckpt_save_dir", folder], capsys)
        assert rc == 2, stderr
        assert "partial" in seen, "the simulated full disk was never hit"
        line = _assert_full_disk_error(stderr, folder)
        assert line in read_text(os.path.join(folder, "train.log"))  # the reason stays in the log too
        assert (
            seen["before"] and {n: _sha256(os.path.join(folder, n)) for n in checkpoint_names(folder)} == seen["before"]
        )
        assert read_meta(_last(folder))["epoch"] == 1
        assert not os.path.exists(seen["partial"]) and not temporaries(folder) and not unexplained_files(folder)
        assert _lock_released(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # ~450 MB of epoch-1 checkpoints


@pytest.fixture
def small_tmpfs(tmp_path):
    """A tmpfs mount point; ``mount(bytes)`` mounts it, ``mount(bytes, remount=True)`` resizes it. Skipped where
    mounting is not allowed; unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()

    def mount(size: int, remount: bool = False) -> None:
        options = f"{'remount,' if remount else ''}size={size}"
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            if remount:
                raise AssertionError(f"remount failed: {proc.stderr.strip()}")
            pytest.skip(
                f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not root'}); the simulated case covers it"
            )

    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8); the simulated full-disk case covers the behaviour")
    yield types.SimpleNamespace(path=str(mount_point), mount=mount)
    if os.path.ismount(str(mount_point)):
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_disk_on_a_real_small_filesystem_then_resume(reference, tmp_path, small_tmpfs):
    """A tmpfs with room for epoch 1's checkpoints but not epoch 2's: the run stops with one line, epoch 1's state is
    intact; once space is freed, ``--resume auto`` finishes bit-identical to the uninterrupted run."""
    epoch_file = os.path.getsize(os.path.join(reference.folder, f"{MODEL}-1_{STEPS}.ckpt"))
    best_file = os.path.getsize(os.path.join(reference.folder, f"{MODEL}-best.ckpt"))
    small_tmpfs.mount(epoch_file + best_file + epoch_file // 2)  # the 2nd epoch file cannot fit
    folder = os.path.join(small_tmpfs.path, "run")

    failed = run_train(ARGS + ["--ckpt_save_dir", folder], str(tmp_path), "full")
    assert failed.proc.returncode == 2, failed.tail()
    _assert_full_disk_error(failed.stderr(), folder)
    assert "Traceback" not in failed.stderr()
    assert checkpoint_names(folder) == sorted([f"{MODEL}-1_{STEPS}.ckpt", f"{MODEL}-best.ckpt", f"{MODEL}-last.ckpt"])
    assert not temporaries(folder) and not unexplained_files(folder), os.listdir(folder)
    after_one = read_tensors(os.path.join(reference.folder, f"{MODEL}-1_{STEPS}.ckpt"))
    last = read_tensors(_last(folder))
    assert sorted(last) == sorted(after_one) and all(np.array_equal(last[k], after_one[k]) for k in last)
    assert read_meta(_last(folder))["epoch"] == 1

    small_tmpfs.mount(4 * epoch_file + 2 * best_file, remount=True)  # the user frees space
    resumed = run_train(ARGS + ["--ckpt_save_dir", folder, "--resume", "auto"], str(tmp_path), "resumed")
    assert resumed.proc.returncode == 0, resumed.tail()
    _assert_same_as_reference(folder, reference)
    assert not temporaries(folder)
