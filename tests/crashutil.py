"""Helpers for the crash tests: run ``train.py`` in its own process, watch its output folder, kill it with SIGKILL.

A kill is timed by watching files the run writes (``train.log`` lines, hidden checkpoint temporaries,
``summary.csv`` rows), never by sleeping, so the kill lands at the same phase of training on a fast or a
loaded machine.
"""

import csv
import glob
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

from scriptutil import ROOT

from mindcv.utils.checkpoint import is_temporary_checkpoint

#: Names a run writes into its output folder besides checkpoints (``.run.lock`` is the run lock's file).
RUN_FILES = ("config.yaml", "train.log", "summary.csv", "curves.png", ".run.lock")


class TrainProcess:
    """``python train.py <args>`` started in its own session, with stdout and stderr sent to files.

    Its own session (process group) lets the test kill the run and anything it started at once,
    and keeps the test's terminal signals away from it.

    Args:
        args: Command-line tokens after ``train.py``.
        logs: Folder for ``<name>.out`` / ``<name>.err`` (kept out of the run's output folder).
        name: File name stem of the captured streams.
    """

    def __init__(self, args: Sequence[str], logs: str, name: str) -> None:
        os.makedirs(logs, exist_ok=True)
        self.out_path = os.path.join(logs, f"{name}.out")
        self.err_path = os.path.join(logs, f"{name}.err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.join(ROOT, "train.py")] + list(args),
                cwd=logs,
                env=train_env(),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 600) -> int:
        """Wait for the exit status; a run still going after ``timeout`` seconds is killed and reported."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"train.py did not finish within {timeout:g} s:\n{self.tail()}") from None

    def kill(self) -> None:
        """SIGKILL the whole process group (no handler, no cleanup can run) and reap the process."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(60)

    def stdout(self) -> str:
        return read_text(self.out_path)

    def stderr(self) -> str:
        return read_text(self.err_path)

    def tail(self, chars: int = 3000) -> str:
        return f"--- stdout ---\n{self.stdout()[-chars:]}\n--- stderr ---\n{self.stderr()[-chars:]}"


def train_env() -> Dict[str, str]:
    """The test's environment plus the repository on ``PYTHONPATH`` (the package is not necessarily installed)."""
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, GLOG_v=os.environ.get("GLOG_v", "3"))


def run_train(args: Sequence[str], logs: str, name: str, timeout: float = 600) -> TrainProcess:
    """Run ``train.py`` to its end and return the finished process (``.proc.returncode`` is set)."""
    run = TrainProcess(args, logs, name)
    run.wait(timeout)
    return run


def wait_until(run: TrainProcess, ready: Callable[[], bool], timeout: float = 600, poll_s: float = 0.002) -> None:
    """Return as soon as ``ready()`` is true, polling every ``poll_s`` seconds while ``run`` is alive.

    Raises:
        AssertionError: The run ended by itself first, or ``ready()`` stayed false for ``timeout``
            seconds (the run is then killed).
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if not run.alive():
            raise AssertionError(
                f"train.py exited (status {run.proc.returncode}) before the awaited point was reached:\n{run.tail()}"
            )
        if time.monotonic() > deadline:
            run.kill()
            raise AssertionError(f"the awaited point was not reached within {timeout:g} s:\n{run.tail()}")
        time.sleep(poll_s)


def kill_when(run: TrainProcess, ready: Callable[[], bool], timeout: float = 600, poll_s: float = 0.002) -> None:
    """SIGKILL ``run`` as soon as ``ready()`` is true (see :func:`wait_until`)."""
    wait_until(run, ready, timeout, poll_s)
    run.kill()


def read_text(path: str) -> str:
    """The file's text, or "" while it does not exist yet."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def summary_epochs(folder: str) -> List[int]:
    """Epoch numbers of the rows of ``summary.csv`` (written by rename, so never seen half-written)."""
    return [int(row["epoch"]) for row in summary_rows(folder)]


def summary_rows(folder: str) -> List[Dict[str, str]]:
    try:
        with open(os.path.join(folder, "summary.csv"), newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def checkpoint_names(folder: str) -> List[str]:
    """What a user's ``ls *.ckpt`` (or a tool's glob) lists in the folder."""
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.ckpt")))


def temporaries(folder: str) -> List[str]:
    """Names that :func:`is_temporary_checkpoint` recognises as leftovers of an interrupted checkpoint write."""
    return sorted(n for n in os.listdir(folder) if is_temporary_checkpoint(n))


def unexplained_files(folder: str, expected_checkpoints: Optional[Sequence[str]] = None) -> List[str]:
    """Checkpoint-like names (``*.ckpt*``, ``*.tmp``) that are neither listed checkpoints nor recognised temporaries."""
    listed = set(checkpoint_names(folder) if expected_checkpoints is None else expected_checkpoints)
    return sorted(
        n
        for n in os.listdir(folder)
        if (".ckpt" in n or n.endswith(".tmp")) and n not in listed and not is_temporary_checkpoint(n)
    )
