"""The benchmark tooling runs end to end on tiny workloads; its ceiling and per-op breakdown arithmetic holds."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import compare  # noqa: E402
import profile_ops  # noqa: E402

from mindcv.utils import benchmarking  # noqa: E402


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


# --- the per-operator breakdown (benchmarks/profile_ops.py) ---


@pytest.mark.parametrize(
    "name, scope, category",
    [
        ("Conv2DBackpropFilter", "Gradients/Default/network-Res2Net/layer1", "convolution"),
        ("aten::convolution_backward", "", "convolution"),
        ("MatMul", "Default/network-Res2Net/layer4", "matmul"),
        ("aten::addmm", "", "matmul"),
        ("BatchNormGrad", "", "batchnorm"),
        ("aten::native_batch_norm", "", "batchnorm"),
        ("MaxPool3DWithArgmax", "", "pooling"),
        ("Reshape", "", "layout and copies"),
        ("aten::cat", "", "layout and copies"),
        ("ReluGrad", "", "elementwise"),
        ("aten::add", "", "elementwise"),
        # the optimizer and the loss are recognised by scope, whatever the kernel
        ("ApplyMomentum", "Default/optimizer-Momentum/ApplyMomentum-op3", "optimizer"),
        ("aten::add_", "optimizer", "optimizer"),
        ("Exp", "Default/loss_fn-CrossEntropySmooth/Exp-op0", "loss"),
        ("aten::_log_softmax", "", "loss"),
        ("Cast", "", "other"),
    ],
)
def test_op_category(name, scope, category):
    assert benchmarking.op_category(name, scope) == category


def test_breakdown_sums_per_step():
    kernels = [
        ("Conv2D", "Default/net", 6.0, 3.0, 3.0),  # 3 launches over 3 steps, 6 ms in all
        ("Conv2DBackpropInput", "Gradients/net", 3.0, 3.0, 3.0),
        ("ApplyMomentum", "Default/optimizer-Momentum", 1.5, 6.0, 6.0),
        ("aten::mkldnn_convolution", "", 3.0, 0.0, 3.0),  # nested in a counted call: time, no launch
    ]
    out = benchmarking._breakdown(kernels, steps=3, wall_ms=6.0)
    assert out["categories"]["convolution"] == {"ms": 4.0, "count": 2}
    assert out["categories"]["optimizer"] == {"ms": 0.5, "count": 2}
    assert out["kernel_ms"] == 4.5 and out["host_ms"] == 1.5 and out["kernels_per_step"] == 4
    assert out["top_ops"][0] == ["Conv2D", 1, 2.0]
    assert ["aten::mkldnn_convolution", 1, 1.0] in out["top_ops"]


def test_report_lines_up_both_sides():
    def result(framework, conv_ms, opt_ms, wall_ms):
        cats = {"convolution": {"ms": conv_ms, "count": 10}, "optimizer": {"ms": opt_ms, "count": 5}}
        kernel = conv_ms + opt_ms
        return dict(
            framework=framework,
            categories=cats,
            kernel_ms=kernel,
            kernels_per_step=15,
            host_ms=wall_ms - kernel,
            wall_ms=wall_ms,
            top_ops=[["Conv2D", 10, conv_ms]],
        )

    text = profile_ops.format_report(result("ms", 50.0, 10.0, 80.0), result("torch", 60.0, 5.0, 70.0))
    assert "| convolution | 50.0 | 10 | 60.0 | 10 | -10.0 |" in text
    assert "| optimizer | 10.0 | 5 | 5.0 | 5 | +5.0 |" in text
    assert "| **host (wall - kernels)** | 20.0 |  | 5.0 |  | +15.0 |" in text
    assert "| **step wall time** | 80.0 |  | 70.0 |  | +10.0 |" in text
    alone = profile_ops.format_report(result("ms", 50.0, 10.0, 80.0), None)
    assert "| convolution | 50.0 | 10 | – | – | – |" in alone and "PyTorch (" not in alone


@pytest.mark.slow
def test_profile_ops_runs_on_both_frameworks():
    common = dict(task="train", batch_size=2, image_size=32, steps=1, warmup=0)
    ours = benchmarking.run_isolated("mindspore_ops", model_name="res2net50", **common)
    assert "error" not in ours, ours
    # res2net50: 85 convolutions, each with a BN, and a classifier: ~900 kernels in a graph-mode training step
    assert ours["kernels_per_step"] > 500
    # each convolution and the classifier forward and with both gradients, but no input gradient for the stem
    convolutions = ours["categories"]["convolution"]["count"] + ours["categories"]["matmul"]["count"]
    assert convolutions == 3 * 86 - 1
    for category in ("convolution", "batchnorm", "optimizer", "matmul"):
        assert ours["categories"][category]["ms"] > 0, category
    assert ours["categories"]["batchnorm"]["count"] == 170  # forward + backward of the 85 BN layers
    assert ours["wall_ms"] > 0 and ours["top_ops"]
    theirs = benchmarking.run_isolated("torch_ops", model_name="res2net50_26w_4s", threads=1, **common)
    assert "error" not in theirs, theirs
    assert theirs["categories"]["convolution"]["count"] == 170  # 85 forward + 85 backward
    assert theirs["categories"]["optimizer"]["ms"] > 0
