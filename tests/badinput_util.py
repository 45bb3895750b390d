"""Helpers for the bad-input corpus: run a real command as a user would, and prove that it touched nothing.

A command runs as a subprocess from the repository root, with MindSpore's C++ logs at ERROR only
(``GLOG_v=3``), an empty mindcv cache (``MINDCV_HOME``), no proxy and no distributed-launcher variables, so
that nothing it does can reach the network, a scheduler or a real cache.

"Nothing on disk changed" is checked with :func:`snapshot` before and after: every file and folder under
the given roots, with size, modification time, and for files up to :data:`HASH_LIMIT` bytes their
SHA-256. Larger files (multi-hundred-MB checkpoints shared by all cases) are compared by size, mtime and
ctime instead: any write to a file updates its ctime, which a process cannot set back, so a changed
large file is still caught without hashing it twice per case.
"""

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Files larger than this are compared by (size, mtime, ctime), not by hash.
HASH_LIMIT = 8 << 20

# Variables that would route 127.0.0.1 through a proxy, or make a script believe msrun started it.
_DROPPED_ENV = (
    "http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
    "MS_WORKER_NUM", "MS_ROLE", "MS_SCHED_HOST", "MS_SCHED_PORT", "RANK_ID", "RANK_SIZE", "RANK_TABLE_FILE",
    "OMPI_COMM_WORLD_SIZE", "MINDCV_DATASET_MIRROR",
)  # fmt: skip

# Top-level entries of the repository that test runs and editors create by themselves.
_ROOT_NOISE = {".pytest_cache", "__pycache__", ".git", ".mypy_cache", ".ruff_cache"}


@dataclass
class Result:
    """What a command did: exit status and both output streams."""

    argv: List[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> List[str]:
        """Non-empty lines of stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]

    def describe(self) -> str:
        """Everything, for assertion messages."""
        return f"$ {' '.join(self.argv)}\nexit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def command_env(mindcv_home: str, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment of a user command: quiet MindSpore, a private cache, no proxy, no launcher."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(GLOG_v="3", MINDCV_HOME=mindcv_home)
    env.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")  # conftest sets it for this process; children need it too
    env.update(extra or {})
    return env


def run_command(
    args: Sequence[str], mindcv_home: str, extra_env: Optional[Mapping[str, str]] = None, timeout: float = 240
) -> Result:
    """Run ``python <args>`` from the repository root, e.g. ``["train.py", "--lr", "abc"]`` or ``["-m", ...]``."""
    argv = [sys.executable] + [str(a) for a in args]
    proc = subprocess.run(
        argv, cwd=ROOT, env=command_env(mindcv_home, extra_env), capture_output=True, text=True, timeout=timeout
    )
    return Result(argv=argv[1:], returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)


def _hash(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshot(roots: Iterable[str]) -> Dict[str, Tuple]:
    """Record every entry under ``roots`` (which need not exist): path -> a tuple that changes with any write.

    Folders are recorded by existence only (their mtime changes whenever a file is created and deleted
    again, which the file entries already show).
    """
    state: Dict[str, Tuple] = {}
    for root in roots:
        root = os.path.abspath(root)
        if not os.path.exists(root):
            continue
        state[root] = ("dir",) if os.path.isdir(root) else _file_state(root)
        for folder, dirs, files in os.walk(root):
            for name in dirs:
                state[os.path.join(folder, name)] = ("dir",)
            for name in files:
                path = os.path.join(folder, name)
                state[path] = _file_state(path)
    return state


def _file_state(path: str) -> Tuple:
    st = os.lstat(path)
    if not os.path.isfile(path) or os.path.islink(path):
        return ("other", st.st_mode)
    if st.st_size <= HASH_LIMIT:
        return ("file", st.st_size, st.st_mtime_ns, _hash(path))
    return ("big", st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def changes(before: Mapping[str, Tuple], after: Mapping[str, Tuple], allowed: Iterable[str] = ()) -> List[str]:
    """Describe what differs between two snapshots, ignoring paths whose base name is in ``allowed``."""
    allowed = set(allowed)
    out = []
    for path in sorted(set(before) | set(after)):
        if os.path.basename(path) in allowed:
            continue
        if path not in after:
            out.append(f"deleted {path}")
        elif path not in before:
            out.append(f"created {path}")
        elif before[path] != after[path]:
            out.append(f"modified {path}")
    return out


def repo_top_level() -> set:
    """Names at the top of the repository (a command run from there must not leave files in it)."""
    return {name for name in os.listdir(ROOT) if name not in _ROOT_NOISE}


def assert_one_line_error(result: Result, words: Sequence[str]) -> str:
    """Check the user-facing contract of a refused command and return its error line.

    Non-zero exit; stderr holds exactly one non-empty line, starting with ``error: `` and containing
    every one of ``words`` (case-sensitive: names and flags must be spelled as the user types them);
    no Python traceback in either stream.
    """
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stdout + result.stderr, result.describe()
    lines = result.stderr_lines
    assert len(lines) == 1, f"expected exactly one stderr line\n{result.describe()}"
    line = lines[0]
    assert line.startswith("error: "), result.describe()
    missing = [w for w in words if w not in line]
    assert not missing, f"error line lacks {missing}: {line}"
    return line
