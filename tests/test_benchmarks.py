"""The benchmark tooling runs end to end on a tiny workload and its compute-ceiling arithmetic holds."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import compare  # noqa: E402


def test_training_cost_is_three_forward_passes():
    # res2net50 at 224: 4.26 GMAC forward (the model card, equal to torch's counter on timm) -> 25.5 GFLOP to train
    assert compare.train_gflop_per_image("res2net50") == pytest.approx(3 * 2 * 4.255, rel=0.005)
    # the deep stem of v1b adds ~0.24 GMAC
    assert compare.train_gflop_per_image("res2net50_v1b") == pytest.approx(3 * 2 * 4.495, rel=0.005)


def test_sgemm_rate_is_positive():
    assert compare.sgemm_gflops(n=128, repeats=2) > 0.1


@pytest.mark.slow
def test_compare_runs_ours_alone(tmp_path, capsys):
    out = tmp_path / "cmp.json"
    argv = ["--no_torch", "--workloads", "train32", "--batch_size", "2", "--steps", "1", "--json", str(out)]
    assert compare.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| train32 |" in printed and "compute ceiling" not in printed  # no 224 training: no ceiling line
    report = json.loads(out.read_text())
    (ours,) = report["results"]["train32"]["ours"]
    assert "error" not in ours, ours
    assert ours["img_per_s"] > 0 and ours["peak_rss_gib"] > 0 and report["ceiling"] is None
