"""The benchmark tooling runs end to end on tiny workloads; its ceiling and per-op breakdown arithmetic holds.

The harness is imported as ``benchmarks.harness`` (``python -m pytest`` runs from the repository root); the scripts
run as their documentation says, by their path, in a child process.
"""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["benchmark.py", "benchmarks/compare.py", "benchmarks/profile_ops.py", "benchmarks/data_pipeline.py"]


def _run_script(script, *argv, cwd):
    env = dict(os.environ, GLOG_v="3")
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, script), *argv], capture_output=True, text=True, cwd=cwd, env=env
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_start_by_their_path_from_anywhere(script, tmp_path):
    proc = _run_script(script, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_training_cost_is_three_forward_passes():
    # res2net50 at 224: 4.26 GMAC forward (the model card, equal to torch's counter on timm) -> 25.5 GFLOP to train
    assert harness.train_gflop_per_image("res2net50") == pytest.approx(3 * 2 * 4.255, rel=0.005)
    # the deep stem of v1b adds ~0.24 GMAC
    assert harness.train_gflop_per_image("res2net50_v1b") == pytest.approx(3 * 2 * 4.495, rel=0.005)


def test_sgemm_rate_is_positive():
    assert harness.sgemm_gflops(n=128, repeats=2) > 0.1


def test_published_accuracy_comes_from_the_model_card():
    published = harness.published_top1_top5()
    assert published == {
        "res2net50": (79.35, 94.64),
        "res2net101": (79.56, 94.70),
        "res2net50_v1b": (80.32, 95.09),
        "res2net101_v1b": (81.14, 95.41),
    }


def test_a_model_card_without_the_accuracy_column_is_refused(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("| model | params |\n|---|---:|\n| res2net50 | 25,699,120 |\n")
    with pytest.raises(ValueError, match="top-1 / top-5"):
        harness.published_top1_top5(str(card))


@pytest.mark.slow
def test_compare_runs_ours_alone(tmp_path):
    out = tmp_path / "cmp.json"
    argv = ["--no_torch", "--workloads", "train32", "--batch_size", "2", "--steps", "1", "--json", str(out)]
    proc = _run_script("benchmarks/compare.py", *argv, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| train32 |" in proc.stdout and "compute ceiling" not in proc.stdout  # no 224 training: no ceiling line
    report = json.loads(out.read_text())
    runs = report["results"]["train32"]
    assert sorted(runs) == [  # no torch peers
        "ours, @ms.jit function (tutorial loop)",
        "ours, TrainStep (Graph)",
        "ours, nn.TrainOneStepCell (Graph)",
    ]
    for label, (result,) in runs.items():
        assert "error" not in result, (label, result)
        assert result["img_per_s"] > 0 and result["peak_rss_gib"] > 0
    assert {r[0]["loop"] for r in runs.values()} == {"trainstep", "trainonestepcell", "jitfunction"}
    assert "ceiling" not in report
    # each row carries its ratio to the best peer of the workload, and the best one is 1.00
    ratios = [line.split("|")[4].strip() for line in proc.stdout.splitlines() if line.startswith("| train32 |")]
    assert len(ratios) == 3 and "1.00" in ratios


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
    assert harness.op_category(name, scope) == category


def test_breakdown_sums_per_step():
    kernels = [
        ("Conv2D", "Default/net", 6.0, 3.0, 3.0),  # 3 launches over 3 steps, 6 ms in all
        ("Conv2DBackpropInput", "Gradients/net", 3.0, 3.0, 3.0),
        ("ApplyMomentum", "Default/optimizer-Momentum", 1.5, 6.0, 6.0),
        ("aten::mkldnn_convolution", "", 3.0, 0.0, 3.0),  # nested in a counted call: time, no launch
    ]
    out = harness._breakdown(kernels, steps=3, wall_ms=6.0)
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

    text = harness.format_report(result("ms", 50.0, 10.0, 80.0), result("torch", 60.0, 5.0, 70.0))
    assert "| convolution | 50.0 | 10 | 60.0 | 10 | -10.0 |" in text
    assert "| optimizer | 10.0 | 5 | 5.0 | 5 | +5.0 |" in text
    assert "| **host (wall - kernels)** | 20.0 |  | 5.0 |  | +15.0 |" in text
    assert "| **step wall time** | 80.0 |  | 70.0 |  | +10.0 |" in text
    alone = harness.format_report(result("ms", 50.0, 10.0, 80.0), None)
    assert "| convolution | 50.0 | 10 | – | – | – |" in alone and "PyTorch (" not in alone


def _check_totals(profile):
    """The totals are the sums of the categories (one step profiled, so every count is whole)."""
    cats = profile["categories"]
    assert profile["kernels_per_step"] == sum(c["count"] for c in cats.values())
    assert profile["kernel_ms"] == pytest.approx(sum(c["ms"] for c in cats.values()), abs=0.01 * len(cats))
    assert profile["host_ms"] == pytest.approx(profile["wall_ms"] - profile["kernel_ms"], abs=0.02)
    assert profile["wall_ms"] > 0 and profile["top_ops"]


@pytest.mark.slow
def test_profile_ops_runs_on_both_frameworks():
    # How many kernels MindSpore or PyTorch launch is theirs to change (benchmarks/profile_ops.py prints the counts);
    # checked here is that the profile is read, categorised and summed.
    common = dict(task="train", batch_size=2, image_size=32, steps=1, warmup=0)
    ours = harness.run_isolated("mindspore_ops", model_name="res2net50", **common)
    assert "error" not in ours, ours
    _check_totals(ours)
    for category in ("convolution", "batchnorm", "optimizer", "matmul"):
        assert ours["categories"][category]["ms"] > 0, category
        assert ours["categories"][category]["count"] > 0, category  # the fused optimizer's kernel included
    assert ours["onednn_max_cpu_isa"] == os.environ["ONEDNN_MAX_CPU_ISA"]  # MindSpore's children keep the cap

    theirs = harness.run_isolated("torch_ops", model_name="res2net50_26w_4s", threads=1, **common)
    assert "error" not in theirs, theirs
    _check_totals(theirs)
    assert theirs["categories"]["optimizer"]["ms"] > 0
    assert theirs["onednn_max_cpu_isa"] is None  # PyTorch runs with its own oneDNN defaults
    # Nested operators count once: each convolution layer is one call forward and at most two backward (input and
    # weight gradients), where counting every aten:: level would give several per forward call alone.
    import timm
    import torch

    layers = sum(isinstance(m, torch.nn.Conv2d) for m in timm.create_model("res2net50_26w_4s").modules())
    assert layers <= theirs["categories"]["convolution"]["count"] <= 3 * layers


def test_benchmark_table_has_inference_only_rows():
    measured = {"step_s": 0.5, "img_per_s": 64.0, "first_call_s": 12.0, "peak_rss_gib": 1.5}
    rows = [
        dict(model="res2net50", mode="graph", device="CPU", batch_size=32, image_size=224, train=measured,
             infer=measured, est_imagenet_epoch_h=5.6, published_top1_top5=(79.35, 94.64)),
        dict(model="res2net50", mode="onnxruntime", device="CPU", batch_size=32, image_size=224, train=None,
             infer=measured, published_top1_top5=None),
    ]  # fmt: skip
    lines = harness.markdown_table(rows).splitlines()
    width = lines[0].count("|")
    assert all(line.count("|") == width for line in lines), lines  # every row has the header's columns
    assert lines[3].startswith("| res2net50 | onnxruntime | CPU | 32x224 | – | – | – | 500 | 64.00 | – / 12.0 |")
