"""Speed and memory measurements of training and inference steps, each in a fresh process.

A measurement runs in a child process (``python -m mindcv.utils.benchmarking '<json>'``) so that the
execution mode, the compile cache and the peak-memory reading belong to that configuration alone.
Inputs are fixed random tensors: the figures are model + framework speed, without data loading.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

__all__ = [
    "measure",
    "measure_torch",
    "run_isolated",
    "benchmark_rows",
    "markdown_table",
    "IMAGENET_TRAIN_IMAGES",
    "PUBLISHED_TOP1_TOP5",
]

IMAGENET_TRAIN_IMAGES = 1_281_167

# ImageNet-1k top-1/top-5 published by upstream MindCV for its checkpoints (not reproduced here).
PUBLISHED_TOP1_TOP5 = {
    "res2net50": (79.35, 94.64),
    "res2net101": (79.56, 94.70),
    "res2net50_v1b": (80.32, 95.09),
    "res2net101_v1b": (81.14, 95.41),
}


def _peak_rss_gib() -> float:
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _summarise(times: List[float], batch_size: int, first_s: float) -> Dict[str, Any]:
    step = statistics.median(times)
    return {
        "first_call_s": round(first_s, 3),
        "step_s": round(step, 4),
        "step_s_min": round(min(times), 4),
        "img_per_s": round(batch_size / step, 2),
        "timed_steps": len(times),
        "peak_rss_gib": round(_peak_rss_gib(), 3),
    }


def measure(
    model_name: str = "res2net50",
    task: str = "train",
    mode: str = "graph",
    batch_size: int = 32,
    image_size: int = 224,
    steps: int = 5,
    warmup: int = 1,
    num_classes: int = 1000,
    device_target: str = "CPU",
    amp_level: str = "O0",
    seed: int = 0,
) -> Dict[str, Any]:
    """Time one model's training step or inference batch in this process.

    Args:
        model_name: a registered model.
        task: ``"train"`` (forward, backward, momentum-SGD update) or ``"infer"`` (eval-mode forward).
        mode: ``"graph"`` (GRAPH_MODE) or ``"pynative"``.
        batch_size: images per step.
        image_size: input height and width.
        steps: timed steps after warm-up; the median is reported.
        warmup: untimed steps after the first (compiling) call.
        num_classes: classifier outputs.
        device_target: ``"CPU"``, ``"GPU"`` or ``"Ascend"``.
        amp_level: mixed-precision level of the train step.
        seed: random seed for weights and inputs.

    Returns:
        A dict with the first-call (compile + first step) time, the median step time, images/s and the
        process's peak resident memory; on GPU/Ascend also the device's peak allocation.
    """
    import numpy as np

    import mindspore as ms

    from ..loss import create_loss
    from ..models import create_model
    from ..optim import create_optimizer
    from .cli import setup_context
    from .train_step import TrainStep

    setup_context(0 if mode == "graph" else 1, device_target, amp_level)  # as train.py: incl. the CPU memory pool
    ms.set_seed(seed)
    rng = np.random.default_rng(seed)
    x = ms.Tensor(rng.standard_normal((batch_size, 3, image_size, image_size)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, num_classes, batch_size).astype(np.int32))
    net = create_model(model_name, num_classes=num_classes)
    if task == "train":
        net.set_train(True)
        opt = create_optimizer(net, opt="momentum", lr=0.01, momentum=0.9, weight_decay=1e-4)
        step = TrainStep(net, create_loss("CE"), opt, amp_level=amp_level)

        def run():
            loss, _ = step(x, y)
            return loss

    elif task == "infer":
        net.set_train(False)

        def run():
            return net(x)

    else:
        raise ValueError(f"task must be 'train' or 'infer', got '{task}'")

    start = time.perf_counter()
    run().asnumpy()
    first = time.perf_counter() - start
    for _ in range(warmup):
        run().asnumpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run().asnumpy()
        times.append(time.perf_counter() - start)
    result = _summarise(times, batch_size, first)
    if device_target != "CPU":
        try:
            result["device_peak_gib"] = round(ms.runtime.max_memory_allocated() / 2**30, 3)
        except Exception as e:  # not every backend reports it
            result["device_peak_gib"] = f"n/a ({type(e).__name__})"
    result.update(framework=f"mindspore {ms.__version__}", model=model_name, task=task, mode=mode)
    result.update(batch_size=batch_size, image_size=image_size, device_target=device_target, amp_level=amp_level)
    return result


def measure_torch(
    model_name: str = "res2net50_26w_4s",
    task: str = "train",
    batch_size: int = 32,
    image_size: int = 224,
    steps: int = 5,
    warmup: int = 1,
    num_classes: int = 1000,
    threads: Optional[int] = None,
    seed: int = 0,
) -> Dict[str, Any]:
    """The same measurement for a timm model in PyTorch eager mode (fp32, CPU), for side-by-side runs."""
    import timm
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x = torch.randn(batch_size, 3, image_size, image_size)
    y = torch.randint(0, num_classes, (batch_size,))
    net = timm.create_model(model_name, pretrained=False, num_classes=num_classes)
    if task == "train":
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        loss_fn = torch.nn.CrossEntropyLoss()

        def run():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            return loss.item()

    else:
        net.eval()

        def run():
            with torch.inference_mode():
                return net(x).sum().item()

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    result = _summarise(times, batch_size, first)
    result.update(framework=f"torch {torch.__version__} eager", model=model_name, task=task, mode="eager")
    result.update(batch_size=batch_size, image_size=image_size, threads=torch.get_num_threads())
    return result


def run_isolated(kind: str, timeout: float = 3600.0, env: Optional[Dict[str, str]] = None, **kwargs: Any) -> Dict:
    """Run :func:`measure` (``kind="mindspore"``) or :func:`measure_torch` (``"torch"``) in a child process.

    Returns the measurement dict, or ``{"error": "..."}`` when the child fails (e.g. no such device).
    """
    child_env = dict(os.environ, GLOG_v=os.environ.get("GLOG_v", "3"))
    child_env.update(env or {})
    payload = json.dumps({"kind": kind, "kwargs": kwargs, "user_isa": child_env.get("ONEDNN_MAX_CPU_ISA")})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mindcv.utils.benchmarking", payload],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def benchmark_rows(
    models: List[str],
    modes: List[str],
    batch_size: int,
    image_size: int,
    device_target: str = "CPU",
    steps: int = 3,
    warmup: int = 1,
    global_batch: Optional[int] = None,
    log=print,
) -> List[Dict[str, Any]]:
    """Measure training and inference for every (model, mode), each in its own process.

    The epoch time is an estimate, marked as such: the steady-state step time times the steps of one
    ImageNet-1k epoch (1,281,167 images) at ``global_batch`` (default ``batch_size``, one device).
    """
    global_batch = global_batch or batch_size
    rows = []
    for model in models:
        for mode in modes:
            common = dict(
                model_name=model, mode=mode, batch_size=batch_size, image_size=image_size, device_target=device_target
            )
            train = run_isolated("mindspore", task="train", steps=steps, warmup=warmup, **common)
            infer = run_isolated("mindspore", task="infer", steps=steps, warmup=warmup, **common)
            row = dict(model=model, mode=mode, batch_size=batch_size, image_size=image_size, device=device_target)
            row["train"], row["infer"] = train, infer
            if "error" not in train:
                steps_per_epoch = -(-IMAGENET_TRAIN_IMAGES // global_batch)
                row["est_imagenet_epoch_h"] = round(train["step_s"] * steps_per_epoch / 3600, 2)
            row["published_top1_top5"] = PUBLISHED_TOP1_TOP5.get(model)
            rows.append(row)
            log(markdown_table([row], header=False))
    return rows


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "–"
    return format(value, spec) if spec else str(value)


def markdown_table(rows: List[Dict[str, Any]], header: bool = True) -> str:
    """Format :func:`benchmark_rows` output as the README's benchmark table."""
    lines = []
    if header:
        lines.append(
            "| model | mode | device | batch x size | train s/step | train img/s | est. ImageNet epoch (h)* | "
            "infer ms/batch | infer img/s | compile s (train / infer) | peak RSS GiB (train / infer) | "
            "top-1 / top-5 (published**) |"
        )
        lines.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        t, i = r["train"], r["infer"]
        acc = r.get("published_top1_top5")
        err = t.get("error") or i.get("error")
        if err:
            lines.append(
                f"| {r['model']} | {r['mode']} | {r['device']} | {r['batch_size']}x{r['image_size']} | "
                f"failed: {err} |"
            )
            continue
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['device']} | {r['batch_size']}x{r['image_size']} | "
            f"{t['step_s']:.3f} | {t['img_per_s']:.2f} | {_fmt(r.get('est_imagenet_epoch_h'), '.1f')} | "
            f"{i['step_s'] * 1000:.0f} | {i['img_per_s']:.2f} | {t['first_call_s']:.1f} / {i['first_call_s']:.1f} | "
            f"{t['peak_rss_gib']:.2f} / {i['peak_rss_gib']:.2f} | "
            f"{f'{acc[0]:.2f} / {acc[1]:.2f}' if acc else '–'} |"
        )
    return "\n".join(lines)


def _child(payload: str) -> None:
    spec = json.loads(payload)
    if spec["kind"] == "torch" and not spec.get("user_isa"):
        # `import mindcv` capped the ISA for MindSpore; PyTorch bundles its own oneDNN, which reads the
        # same variable: run it as its users do (torch is imported after this).
        os.environ.pop("ONEDNN_MAX_CPU_ISA", None)
    fn = measure if spec["kind"] == "mindspore" else measure_torch
    print("RESULT " + json.dumps(fn(**spec["kwargs"])), flush=True)


if __name__ == "__main__":
    _child(sys.argv[1])
