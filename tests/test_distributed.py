"""Data parallel under msrun on this CPU: 2 workers train a few steps, exit 0, and end with identical weights."""

import os
import re
import shutil
import socket
import subprocess

import pytest
from scriptutil import ROOT, TINY, TINY_MODEL, read_meta

pytestmark = pytest.mark.slow

CHECKSUM = re.compile(r"weights checksum \(sum of \|trainable weights\|\): (\S+)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("msrun") is None, reason="msrun (MindSpore's launcher) is not on the PATH")
def test_two_workers_data_parallel(tmp_path):
    out, logs = tmp_path / "out", tmp_path / "logs"
    cmd = [
        "msrun", "--worker_num=2", "--local_worker_num=2", f"--master_port={_free_port()}", "--join=True",
        f"--log_dir={logs}", os.path.join(ROOT, "train.py"), "--distribute", "--dataset", "digits",
        "--num_samples", "8", "--val_num_samples", "7", "--epoch_size", "1", "--log_interval", "1",
        "--ckpt_save_dir", str(out),
    ] + TINY  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=540)
    worker_logs = [(logs / f"worker_{r}.log").read_text(errors="replace") for r in (0, 1)]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:] + worker_logs[0][-2000:]

    # both ranks finished with the same weights (averaged gradients from the same start)
    sums = [CHECKSUM.findall(text) for text in worker_logs]
    assert all(len(s) == 1 for s in sums), sums
    assert sums[0] == sums[1]
    # every rank ran 2 steps of its own shard: 8 samples per shard, batch 4
    assert "2 device(s); 2 steps/epoch" in worker_logs[0] and "2 device(s); 2 steps/epoch" in worker_logs[1]
    # evaluation counted both shards: 7 + 7 images, reported identically by each rank
    assert "(14 images)" in worker_logs[0] and "(14 images)" in worker_logs[1]
    # only rank 0 wrote, once
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".ckpt") == sorted(
        f"{TINY_MODEL}-{s}.ckpt" for s in ("1_2", "best", "last")
    )
    assert read_meta(str(out / f"{TINY_MODEL}-last.ckpt"))["epoch"] == 1
    assert "[rank 1]" not in (out / "train.log").read_text()
