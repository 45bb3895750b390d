"""Side-by-side speed of our Res2Net and the strongest peers a user could pick instead, on this machine.

    python benchmarks/compare.py --model res2net50 --batch_size 32 --repeats 1

Workloads: training at 32x32 and at 224x224, inference at 224x224 (model and framework only, on fixed random
tensors), and ``validate224``: ``validate.py`` end to end (JPEG decoding, resizing and the metrics included) over a
generated folder of ImageNet-sized JPEGs. Peers:

- PyTorch with timm's Res2Net: eager, ``channels_last`` and ``torch.compile`` (TorchInductor), training and inference;
- ONNX Runtime on our exported model (the ``--backend onnxruntime`` path), inference;
- ours in MindSpore Graph mode: training with the trainer's ``TrainStep``, with a plain ``nn.TrainOneStepCell`` and
  with the loop of MindSpore's tutorials (``ms.value_and_grad`` inside a free ``@ms.jit`` function), inference with
  the model's forward;
- ``validate.py --backend onnxruntime`` and ``--backend mindspore`` (validate224), set against the best inference peer.

Each measurement runs in a fresh process, the peers of a workload alternate (the order rotates between repeats) and
the best of the repeats is kept; every figure is printed with its ratio to the best peer of its workload, and all of
them go to JSON. PyTorch runs with its own oneDNN defaults; MindSpore with mindcv's (ONEDNN_MAX_CPU_ISA=AVX2 unless
set). The measurements are ``benchmarks/harness.py``'s; past results are in ``docs/performance.md``.

With the 224x224 training workload it also prints the compute ceiling: numpy's best fp32 GEMM rate on this machine
divided by the model's training cost (3 x 2 x forward multiply-adds per image), and each training peer's share of it.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import harness  # this folder's benchmarks/harness.py: a script's own folder comes first on sys.path
import numpy as np
from PIL import Image

import mindspore as ms

from mindcv.deploy.convert import TORCH_EQUIVALENTS
from mindcv.models import create_model

WORKLOADS = {
    "train32": ("train", 32),
    "train224": ("train", 224),
    "infer224": ("infer", 224),
    "validate224": ("validate", 224),
}

# (label, harness kind, extra keyword arguments) per task; "torch*" kinds are skipped with --no_torch.
PEERS: Dict[str, List[Tuple[str, str, Dict[str, Any]]]] = {
    "train": [
        ("PyTorch eager", "torch", {"variant": "eager"}),
        ("PyTorch channels_last", "torch", {"variant": "channels_last"}),
        ("torch.compile", "torch", {"variant": "compile"}),
        ("ours, TrainStep (Graph)", "mindspore", {"loop": "trainstep"}),
        ("ours, nn.TrainOneStepCell (Graph)", "mindspore", {"loop": "trainonestepcell"}),
        ("ours, @ms.jit function (tutorial loop)", "mindspore", {"loop": "jitfunction"}),
    ],
    "infer": [
        ("PyTorch eager", "torch", {"variant": "eager"}),
        ("PyTorch channels_last", "torch", {"variant": "channels_last"}),
        ("torch.compile", "torch", {"variant": "compile"}),
        ("ours, ONNX Runtime", "onnxruntime", {}),
        ("ours, MindSpore (Graph)", "mindspore", {}),
    ],
    "validate": [
        ("validate.py --backend onnxruntime", "validate", {"backend": "onnxruntime"}),
        ("validate.py --backend mindspore", "validate", {"backend": "mindspore"}),
    ],
}

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_jpeg_folder(root: str, images: int, classes: int = 4, size: Tuple[int, int] = (375, 500)) -> str:
    """``root/val/<class>/<i>.jpg``: smooth random colour fields of ImageNet's typical size (decoding cost alike)."""
    rng = np.random.default_rng(0)
    for i in range(images):
        folder = os.path.join(root, "val", f"class_{i % classes}")
        os.makedirs(folder, exist_ok=True)
        coarse = rng.integers(0, 256, size=(size[0] // 25 + 1, size[1] // 25 + 1, 3), dtype=np.uint8)
        picture = Image.fromarray(coarse).resize((size[1], size[0]), Image.BICUBIC)
        picture.save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)
    return root


def run_validate(
    model: str, data_dir: str, ckpt: str, backend: str, batch_size: int, num_classes: int, cache_dir: str
) -> Dict[str, Any]:
    """``validate.py`` in a child process; its results file's steady-state images/s (first batch excluded)."""
    with tempfile.TemporaryDirectory() as out:
        results = os.path.join(out, "results.json")
        argv = [sys.executable, os.path.join(ROOT, "validate.py"), "--model", model, "--dataset", "imagenet"]
        argv += ["--data_dir", data_dir, "--val_split", "val", "--ckpt_path", ckpt, "--batch_size", str(batch_size)]
        argv += ["--num_classes", str(num_classes), "--backend", backend, "--onnx_cache_dir", cache_dir]
        argv += ["--results_file", results, "--mode", "0"]
        proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, GLOG_v="3"))
        if proc.returncode != 0 or not os.path.isfile(results):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
            return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
        with open(results, encoding="utf-8") as f:
            report = json.load(f)
    return {
        "img_per_s": report["steady_img_per_s"],
        "seconds": report["seconds"],
        "num_samples": report["num_samples"],
        "top1": report["top1"],
        "loss": report["loss"],
    }


def _best(results: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    return max((r for r in results if "error" not in r), key=lambda r: r["img_per_s"], default=None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="res2net50", choices=sorted(TORCH_EQUIVALENTS))
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process (median)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating rounds per workload (best kept)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch/ONNX Runtime intra-op threads")
    parser.add_argument("--val_images", type=int, default=320, help="JPEGs of the validate224 workload")
    parser.add_argument("--no_torch", action="store_true", help="measure ours only")
    parser.add_argument("--json", default="compare.json")
    args = parser.parse_args(argv)
    if not args.no_torch:
        try:
            import timm  # noqa: F401
            import torch  # noqa: F401
        except ImportError:
            args.no_torch = True
            print("torch/timm not installed: measuring mindcv only (pip install -e '.[test]' for the comparison)")

    results: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    scratch = tempfile.TemporaryDirectory(prefix="mindcv-compare-")
    cache_dir = os.path.join(scratch.name, "onnx")
    val_data = None
    for name in args.workloads:
        task, size = WORKLOADS[name]
        steps = args.steps if size < 224 else max(2, args.steps - 1)
        peers = [p for p in PEERS[task] if not (args.no_torch and p[1] == "torch")]
        if task == "validate" and val_data is None:
            val_data = make_jpeg_folder(os.path.join(scratch.name, "jpegs"), args.val_images)
            ms.set_seed(0)
            ckpt = os.path.join(scratch.name, "weights.ckpt")
            ms.save_checkpoint(create_model(args.model, num_classes=4), ckpt)
        runs: Dict[str, List[Dict[str, Any]]] = {label: [] for label, _, _ in peers}
        for repeat in range(args.repeats):
            shift = repeat % len(peers)
            for label, kind, extra in peers[shift:] + peers[:shift]:
                if kind == "validate":
                    result = run_validate(
                        args.model, val_data, ckpt, extra["backend"], args.batch_size, 4, cache_dir
                    )  # fmt: skip
                else:
                    common = dict(batch_size=args.batch_size, image_size=size, steps=steps, **extra)
                    if kind == "torch":
                        common.update(model_name=TORCH_EQUIVALENTS[args.model], task=task, threads=args.threads)
                    elif kind == "onnxruntime":
                        common.update(model_name=args.model, threads=args.threads, cache_dir=cache_dir)
                    else:
                        common.update(model_name=args.model, task=task, mode="graph")
                    result = harness.run_isolated(kind, **common)
                runs[label].append(result)
                shown = result.get("img_per_s", result.get("error"))
                print(f"  {name} / {label}: {shown}", file=sys.stderr, flush=True)
        results[name] = runs
    scratch.cleanup()

    table = summary_table(results)
    print(table)
    report: Dict[str, Any] = {"model": args.model, "batch_size": args.batch_size, "results": results}
    ceiling = compute_ceiling(args.model, results.get("train224"))
    if ceiling:
        report["ceiling"] = ceiling
        print(ceiling["line"])
    if "validate224" in results and "infer224" in results:
        line = validate_against_peers(results)
        if line:
            report["validate_vs_best_pytorch"] = line
            print(line)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(dict(report, table=table), f, indent=2)
    print(f"wrote {args.json}")
    return 0


def summary_table(results: Dict[str, Dict[str, List[Dict[str, Any]]]]) -> str:
    """One row per (workload, peer): best img/s, ratio to the workload's best peer, first call, peak RSS."""
    lines = [
        "| workload | peer | img/s | vs best peer | first call s | peak RSS GiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        bests = {label: _best(rs) for label, rs in runs.items()}
        top = max((b["img_per_s"] for b in bests.values() if b), default=None)
        for label, best in bests.items():
            if best is None:
                error = next((r["error"] for r in runs[label] if "error" in r), "no result")
                lines.append(f"| {name} | {label} | failed: {error[:120]} | – | – | – |")
                continue
            first = best.get("first_call_s", best.get("seconds"))
            rss = best.get("peak_rss_gib", "–")
            lines.append(
                f"| {name} | {label} | {best['img_per_s']:.1f} | {best['img_per_s'] / top:.2f} | "
                f"{first if first is not None else '–'} | {rss} |"
            )
    return "\n".join(lines)


def compute_ceiling(model: str, runs: Optional[Dict[str, List[Dict[str, Any]]]]) -> Optional[Dict[str, Any]]:
    """numpy's GEMM rate over the model's training FLOPs at 224, and each training peer's share of it."""
    if not runs:
        return None
    bests = {label: _best(rs) for label, rs in runs.items()}
    if not any(bests.values()):
        return None
    rate, cost = harness.sgemm_gflops(), harness.train_gflop_per_image(model)
    limit = rate / cost
    shares = {label: round(b["img_per_s"] / limit, 3) for label, b in bests.items() if b}
    line = f"compute ceiling at 224: numpy sgemm {rate:.0f} GFLOP/s / {cost:.1f} GFLOP per training image = "
    line += f"{limit:.2f} img/s; " + ", ".join(f"{label} {100 * v:.0f} %" for label, v in shares.items())
    return {"sgemm_gflops": round(rate, 1), "train_gflop_per_image": round(cost, 2), "ceiling_img_per_s": limit,
            "share_of_ceiling": shares, "line": line}  # fmt: skip


def validate_against_peers(results: Dict[str, Dict[str, List[Dict[str, Any]]]]) -> Optional[str]:
    """validate.py --backend onnxruntime end to end against the fastest PyTorch inference configuration."""
    ours = _best(results["validate224"].get("validate.py --backend onnxruntime", []))
    torch_bests = {
        label: _best(rs) for label, rs in results["infer224"].items() if label.startswith(("PyTorch", "torch."))
    }
    torch_bests = {k: v for k, v in torch_bests.items() if v}
    if not ours or not torch_bests:
        return None
    label, best = max(torch_bests.items(), key=lambda kv: kv[1]["img_per_s"])
    return (
        f"validate.py --backend onnxruntime (JPEG decoding included): {ours['img_per_s']:.1f} img/s = "
        f"{ours['img_per_s'] / best['img_per_s']:.2f}x the best PyTorch inference ({label}, model only, "
        f"{best['img_per_s']:.1f} img/s)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
