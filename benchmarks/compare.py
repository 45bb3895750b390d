"""Side-by-side speed of our Res2Net (MindSpore) and timm's (PyTorch eager) on this machine.

    python benchmarks/compare.py --model res2net50 --batch_size 32 --repeats 2

For each workload (training at 32x32, training at 224x224, inference at 224x224) the two frameworks
run alternately, each measurement in a fresh process, with the same batch, image size and thread
count; it prints img/s, the ratio ours/PyTorch and peak memory, and writes JSON. PyTorch runs with
its own oneDNN defaults; MindSpore with mindcv's (ONEDNN_MAX_CPU_ISA=AVX2 unless set). The measurements
are ``benchmarks/harness.py``'s; past results are in ``docs/performance.md``.

With the 224x224 training workload it also prints the compute ceiling: numpy's best fp32 GEMM rate on this
machine divided by the model's training cost (3 x 2 x forward multiply-adds per image, the usual estimate
of forward + backward), and our training speed as a share of it.
"""

import argparse
import json
import os
from typing import Optional, Sequence

import harness  # this folder's benchmarks/harness.py: a script's own folder comes first on sys.path

from mindcv.deploy.convert import TORCH_EQUIVALENTS

WORKLOADS = {"train32": ("train", 32), "train224": ("train", 224), "infer224": ("infer", 224)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="res2net50", choices=sorted(TORCH_EQUIVALENTS))
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--mode", default="graph", choices=["graph", "pynative"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process (median)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating rounds per workload (best kept)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch intra-op threads")
    parser.add_argument("--no_torch", action="store_true", help="measure ours only")
    parser.add_argument("--json", default="compare.json")
    args = parser.parse_args(argv)
    try:
        import timm  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        args.no_torch = True
        print("torch/timm not installed: measuring mindcv only (pip install -e '.[test]' for the comparison)")

    results = {}
    print(
        f"| workload | ours img/s ({args.mode}) | PyTorch eager img/s | ours / PyTorch | ours peak RSS GiB | "
        "PyTorch peak RSS GiB |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.workloads:
        task, size = WORKLOADS[name]
        steps = args.steps if size < 224 else max(2, args.steps - 1)
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(
                harness.run_isolated(
                    "mindspore",
                    model_name=args.model,
                    task=task,
                    mode=args.mode,
                    batch_size=args.batch_size,
                    image_size=size,
                    steps=steps,
                )
            )
            if not args.no_torch:
                theirs.append(
                    harness.run_isolated(
                        "torch",
                        model_name=TORCH_EQUIVALENTS[args.model],
                        task=task,
                        batch_size=args.batch_size,
                        image_size=size,
                        steps=steps,
                        threads=args.threads,
                    )
                )
        best = lambda rs: max((r for r in rs if "error" not in r), key=lambda r: r["img_per_s"], default=None)  # noqa
        o, t = best(ours), best(theirs)
        results[name] = {"ours": ours, "torch": theirs}
        ratio = f"{o['img_per_s'] / t['img_per_s']:.2f}" if o and t else "–"
        print(
            f"| {name} | {o['img_per_s'] if o else ours[-1].get('error')} | "
            f"{t['img_per_s'] if t else (theirs[-1].get('error') if theirs else '–')} | {ratio} | "
            f"{o['peak_rss_gib'] if o else '–'} | {t['peak_rss_gib'] if t else '–'} |",
            flush=True,
        )
    ceiling = None
    ours224 = [r for r in results.get("train224", {}).get("ours", []) if "error" not in r]
    if ours224:
        rate, cost = harness.sgemm_gflops(), harness.train_gflop_per_image(args.model)
        speed = max(r["img_per_s"] for r in ours224)
        limit = rate / cost
        ceiling = {"sgemm_gflops": round(rate, 1), "train_gflop_per_image": round(cost, 2)}
        ceiling.update(ceiling_img_per_s=round(limit, 2), share_of_ceiling=round(speed / limit, 3))
        print(
            f"compute ceiling at 224: numpy sgemm {rate:.0f} GFLOP/s / {cost:.1f} GFLOP per training image = "
            f"{limit:.2f} img/s; ours {speed} img/s = {100 * speed / limit:.0f} % of it"
        )
    with open(args.json, "w", encoding="utf-8") as f:
        summary = {"model": args.model, "batch_size": args.batch_size, "results": results, "ceiling": ceiling}
        json.dump(summary, f, indent=2)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
