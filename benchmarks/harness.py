"""The benchmark harness: speed, memory and per-operator profiles of training and inference steps, and their tables.

Every measurement runs in a child process, ``python <this file> '<json>'``, so that the execution mode, the compile
cache and the peak-memory reading belong to that configuration alone. Inputs are fixed random tensors: the figures
are model + framework speed, without data loading. ``benchmark.py``, ``benchmarks/compare.py`` and
``benchmarks/profile_ops.py`` are its command lines; what they measured is in ``docs/performance.md``.

This file imports the standard library, numpy, mindspore and mindcv (torch and timm only inside the functions that
use them, as they are optional) and no other file of ``benchmarks/``, so it is the same module whether it is imported
as ``benchmarks.harness`` (from the repository root: ``benchmark.py``, the tests) or as ``harness`` (by a script of
this folder run by its path, which puts the folder first on ``sys.path``).
"""

import csv
import glob
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import mindspore as ms
from mindspore import nn

from mindcv.deploy.backends import OnnxRuntimeModel
from mindcv.engine import TrainStep
from mindcv.loss import create_loss
from mindcv.models import create_model
from mindcv.optim import create_optimizer
from mindcv.utils.model_stats import count_macs
from mindcv.utils.runtime import setup_context

__all__ = [
    "measure",
    "measure_torch",
    "measure_onnxruntime",
    "TORCH_VARIANTS",
    "profile_ops",
    "profile_ops_torch",
    "op_category",
    "OP_CATEGORIES",
    "run_isolated",
    "benchmark_rows",
    "markdown_table",
    "format_report",
    "sgemm_gflops",
    "train_gflop_per_image",
    "published_top1_top5",
    "IMAGENET_TRAIN_IMAGES",
    "MODEL_CARD",
]

HARNESS = os.path.abspath(__file__)
REPO_ROOT = os.path.dirname(os.path.dirname(HARNESS))
#: The model card whose table holds the published accuracies (the one place they are written down).
MODEL_CARD = os.path.join(REPO_ROOT, "configs", "res2net", "README.md")
_PUBLISHED_COLUMN = "top-1 / top-5 (upstream MindCV, published)"

IMAGENET_TRAIN_IMAGES = 1_281_167

_TORCH_OPTIMIZER_LABEL = "mindcv::optimizer_step"


def _cells(line: str) -> List[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def published_top1_top5(model_card: str = MODEL_CARD) -> Dict[str, Tuple[float, float]]:
    """ImageNet-1k top-1/top-5 published by upstream MindCV for its checkpoints (not reproduced here).

    Args:
        model_card: a markdown file with a table whose first column is ``model`` and which has a
            ``top-1 / top-5 (upstream MindCV, published)`` column.

    Returns:
        ``{model: (top1, top5)}`` for the rows with a figure; rows marked ``–`` are left out.

    Raises:
        ValueError: the file has no such table.
    """
    with open(model_card, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    for i, line in enumerate(lines):
        header = _cells(line)
        if line.startswith("|") and header[0] == "model" and _PUBLISHED_COLUMN in header:
            column = header.index(_PUBLISHED_COLUMN)
            published = {}
            for row in lines[i + 2 :]:  # after the header and its |---| line
                if not row.startswith("|"):
                    break
                cells = _cells(row)
                top1, sep, top5 = cells[column].partition("/")
                if sep:
                    published[cells[0]] = (float(top1), float(top5))
            return published
    raise ValueError(f"{model_card} has no table with a 'model' and a '{_PUBLISHED_COLUMN}' column")


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


def _time_steps(run: Callable[[], Any], steps: int, warmup: int) -> Tuple[float, List[float]]:
    """Seconds of the first (compiling) call and of each of ``steps`` calls after ``warmup`` untimed ones."""
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
    return first, times


def _mindspore_workload(
    model_name: str,
    task: str,
    mode: str,
    batch_size: int,
    image_size: int,
    num_classes: int,
    device_target: str,
    amp_level: str,
    seed: int,
    loop: str = "trainstep",
) -> Callable[[], Any]:
    """Set up the context, model and fixed inputs; return a function that runs one step to completion.

    ``loop`` (training only): ``"trainstep"``, the trainer's :class:`~mindcv.engine.TrainStep` with the library's
    optimizer; ``"trainonestepcell"``, MindSpore's own cell ``nn.TrainOneStepCell(nn.WithLossCell(net, loss),
    nn.Momentum(...))``; or ``"jitfunction"``, the loop of MindSpore's tutorials: a free function under ``@ms.jit``
    calling ``ms.value_and_grad(...)`` and the optimizer.
    """
    setup_context(0 if mode == "graph" else 1, device_target, amp_level)  # as train.py: incl. the CPU memory pool
    ms.set_seed(seed)
    rng = np.random.default_rng(seed)
    x = ms.Tensor(rng.standard_normal((batch_size, 3, image_size, image_size)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, num_classes, batch_size).astype(np.int32))
    net = create_model(model_name, num_classes=num_classes)
    if task == "train":
        net.set_train(True)
        if loop == "trainonestepcell":
            opt = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9, weight_decay=1e-4)
            plain = nn.TrainOneStepCell(nn.WithLossCell(net, nn.CrossEntropyLoss()), opt)
            plain.set_train(True)

            def run():
                return plain(x, y).asnumpy()

        elif loop == "jitfunction":
            opt = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9, weight_decay=1e-4)
            loss_fn = nn.CrossEntropyLoss()

            def forward(images, labels):
                return loss_fn(net(images), labels)

            grad_fn = ms.value_and_grad(forward, None, opt.parameters)

            @ms.jit
            def train_step(images, labels):
                loss, grads = grad_fn(images, labels)
                opt(grads)
                return loss

            def run():
                return train_step(x, y).asnumpy()

        elif loop == "trainstep":
            opt = create_optimizer(net, opt="momentum", lr=0.01, momentum=0.9, weight_decay=1e-4)
            step = TrainStep(net, create_loss("CE"), opt, amp_level=amp_level)

            def run():
                loss, _ = step(x, y)
                return loss.asnumpy()  # the host read waits for the step: time whole steps

        else:
            raise ValueError(f"loop must be 'trainstep', 'trainonestepcell' or 'jitfunction', got '{loop}'")

        run.optimizer = opt  # for profile_ops: the fused optimizer's kernel carries no optimizer scope
        return run
    if task == "infer":
        net.set_train(False)
        return lambda: net(x).asnumpy()
    raise ValueError(f"task must be 'train' or 'infer', got '{task}'")


#: How a timm model runs in :func:`measure_torch`: as written, in channels-last memory format, or through
#: ``torch.compile`` (TorchInductor, its default mode).
TORCH_VARIANTS = ("eager", "channels_last", "compile")


def _torch_workload(
    model_name: str,
    task: str,
    batch_size: int,
    image_size: int,
    num_classes: int,
    threads: Optional[int],
    seed: int,
    variant: str = "eager",
) -> Callable[[], Any]:
    """The timm counterpart of :func:`_mindspore_workload`; ``optimizer.step()`` is labelled for the profiler."""
    import timm
    import torch

    if variant not in TORCH_VARIANTS:
        raise ValueError(f"variant must be one of {TORCH_VARIANTS}, got '{variant}'")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x = torch.randn(batch_size, 3, image_size, image_size)
    y = torch.randint(0, num_classes, (batch_size,))
    net = timm.create_model(model_name, pretrained=False, num_classes=num_classes)
    if variant == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    parameters = list(net.parameters())
    if variant == "compile":
        net = torch.compile(net)  # compiled on the first call, which the harness times apart
    if task == "train":
        net.train()
        opt = torch.optim.SGD(parameters, lr=0.01, momentum=0.9, weight_decay=1e-4)
        loss_fn = torch.nn.CrossEntropyLoss()

        def run():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            with torch.profiler.record_function(_TORCH_OPTIMIZER_LABEL):
                opt.step()
            return loss.item()

        return run
    if task == "infer":
        net.eval()

        def run():
            with torch.inference_mode():
                return net(x).sum().item()

        return run
    raise ValueError(f"task must be 'train' or 'infer', got '{task}'")


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
    loop: str = "trainstep",
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
        loop: the training loop: ``"trainstep"``, ``"trainonestepcell"`` or ``"jitfunction"`` (see
            :func:`_mindspore_workload`).

    Returns:
        A dict with the first-call (compile + first step) time, the median step time, images/s and the
        process's peak resident memory; on GPU/Ascend also the device's peak allocation.
    """
    run = _mindspore_workload(
        model_name, task, mode, batch_size, image_size, num_classes, device_target, amp_level, seed, loop
    )
    first, times = _time_steps(run, steps, warmup)
    result = _summarise(times, batch_size, first)
    if device_target != "CPU":
        try:
            result["device_peak_gib"] = round(ms.runtime.max_memory_allocated() / 2**30, 3)
        except Exception as e:  # not every backend reports it
            result["device_peak_gib"] = f"n/a ({type(e).__name__})"
    result.update(framework=f"mindspore {ms.__version__}", model=model_name, task=task, mode=mode)
    result.update(batch_size=batch_size, image_size=image_size, device_target=device_target, amp_level=amp_level)
    if task == "train":
        result["loop"] = loop
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
    variant: str = "eager",
) -> Dict[str, Any]:
    """The same measurement for a timm model in PyTorch (fp32, CPU), for side-by-side runs.

    ``variant`` is one of :data:`TORCH_VARIANTS`; with ``"compile"`` the first call includes TorchInductor's compile.
    """
    import torch

    run = _torch_workload(model_name, task, batch_size, image_size, num_classes, threads, seed, variant)
    first, times = _time_steps(run, steps, warmup)
    result = _summarise(times, batch_size, first)
    result.update(framework=f"torch {torch.__version__} {variant}", model=model_name, task=task, mode=variant)
    result.update(batch_size=batch_size, image_size=image_size, threads=torch.get_num_threads())
    return result


def measure_onnxruntime(
    model_name: str = "res2net50",
    batch_size: int = 32,
    image_size: int = 224,
    steps: int = 5,
    warmup: int = 1,
    num_classes: int = 1000,
    threads: Optional[int] = None,
    seed: int = 0,
    cache_dir: Optional[str] = None,
) -> Dict[str, Any]:
    """Inference through the onnxruntime backend (:class:`mindcv.deploy.OnnxRuntimeModel`) on our exported model.

    The first call exports the model (or takes it from ``cache_dir``) and checks it against MindSpore; the seed fixes
    the weights, so repeated measurements reuse one export. Default cache: ``mindcv-bench-onnx`` in the temp folder.
    """
    import onnxruntime

    setup_context(0, "CPU")
    ms.set_seed(seed)
    x = np.random.default_rng(seed).standard_normal((batch_size, 3, image_size, image_size)).astype(np.float32)
    net = create_model(model_name, num_classes=num_classes)
    folder = cache_dir or os.path.join(tempfile.gettempdir(), "mindcv-bench-onnx")
    runner = OnnxRuntimeModel(net, cache_dir=folder, threads=threads)
    first, times = _time_steps(lambda: runner(x), steps, warmup)
    result = _summarise(times, batch_size, first)
    result.update(framework=f"onnxruntime {onnxruntime.__version__}", model=model_name, task="infer")
    result.update(mode="onnxruntime", batch_size=batch_size, image_size=image_size, threads=runner.threads)
    result["max_relative_difference"] = runner.checks[x.shape]
    return result


def sgemm_gflops(n: int = 2048, repeats: int = 10) -> float:
    """The best fp32 matrix-multiply rate numpy reaches here, in GFLOP/s: the machine's practical ceiling."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best / 1e9


def train_gflop_per_image(model_name: str, image_size: int = 224) -> float:
    """Forward + backward cost of one training image, estimated as 3 x the forward pass (2 FLOP per MAC)."""
    return 3 * 2 * count_macs(create_model(model_name), (3, image_size, image_size)) / 1e9


# Per-operator breakdown. Categories are tried in order on the lower-cased kernel name: MindSpore op types
# ("Conv2DBackpropFilter", "BatchNormGrad") and PyTorch operators ("aten::convolution_backward") alike.
OP_CATEGORIES: Tuple[Tuple[str, str], ...] = (
    ("convolution", r"conv"),
    ("matmul", r"matmul|^aten::(mm|addmm|bmm)$"),
    ("batchnorm", r"batch_?norm"),
    ("pooling", r"pool|^reducemean$|^aten::mean$"),
    ("loss", r"softmax|cross_?entropy|nll_loss"),
    (
        "layout and copies",
        r"reshape|transpose|slice|concat|^aten::cat$|split|gather|segmentsum|copy|narrow|tile|squeeze|flatten"
        r"|^aten::(clone|contiguous|as_strided)$",
    ),
    ("elementwise", r"relu|threshold|clamp|add|mul|sub|neg|div|exp|maximum|minimum|where|masked|fill"),
)


def op_category(name: str, scope: str = "") -> str:
    """The breakdown category of one kernel: ``"optimizer"``/``"loss"`` by scope, else by name (see OP_CATEGORIES)."""
    scope = scope.lower()
    if "optimizer" in scope:
        return "optimizer"
    if "loss" in scope:
        return "loss"
    lowered = name.lower()
    for category, pattern in OP_CATEGORIES:
        if re.search(pattern, lowered):
            return category
    return "other"


def _breakdown(kernels: List[Tuple[str, str, float, float, float]], steps: int, wall_ms: float) -> Dict[str, Any]:
    """Sum (name, scope, total ms, launches, calls) kernel records into per-step category and per-op totals.

    Launches count towards a category's kernel count; calls towards an operator's own count (they differ only for
    PyTorch's nested operators).
    """
    categories: Dict[str, Dict[str, float]] = {}
    ops: Dict[str, List[float]] = {}
    for name, scope, total_ms, launches, calls in kernels:
        cat = categories.setdefault(op_category(name, scope), {"ms": 0.0, "count": 0.0})
        cat["ms"] += total_ms / steps
        cat["count"] += launches / steps
        op = ops.setdefault(name, [0.0, 0.0])
        op[0] += calls / steps
        op[1] += total_ms / steps
    kernel_ms = sum(c["ms"] for c in categories.values())
    return {
        "wall_ms": round(wall_ms, 2),
        "kernel_ms": round(kernel_ms, 2),
        "host_ms": round(wall_ms - kernel_ms, 2),
        "kernels_per_step": round(sum(c["count"] for c in categories.values())),
        "categories": {k: {"ms": round(v["ms"], 2), "count": round(v["count"])} for k, v in categories.items()},
        "top_ops": [[n, round(c), round(t, 2)] for n, (c, t) in sorted(ops.items(), key=lambda kv: -kv[1][1])[:15]],
    }


def profile_ops(
    model_name: str = "res2net50",
    task: str = "train",
    mode: str = "graph",
    batch_size: int = 32,
    image_size: int = 32,
    steps: int = 3,
    warmup: int = 2,
    num_classes: int = 1000,
    seed: int = 0,
    output_dir: Optional[str] = None,
) -> Dict[str, Any]:
    """Where one CPU step's time goes, per operator category, from MindSpore's profiler.

    ``steps`` unprofiled steps give the wall time, then ``steps`` profiled steps the kernel times. Host time is
    the wall time minus the kernel time: framework dispatch, memory management and the Python call, which the
    profiler does not attribute to any kernel.
    """
    run = _mindspore_workload(model_name, task, mode, batch_size, image_size, num_classes, "CPU", "O0", seed)
    wall_ms = statistics.median(_time_steps(run, steps, warmup)[1]) * 1000
    with tempfile.TemporaryDirectory(dir=output_dir) as out_dir:
        profiler = ms.Profiler(output_path=out_dir)
        for _ in range(steps):
            run()
        profiler.analyse()
        found = glob.glob(os.path.join(out_dir, "**", "cpu_op_detail_info_*.csv"), recursive=True)
        if not found:
            raise RuntimeError(f"MindSpore's profiler wrote no cpu_op_detail_info_*.csv under {out_dir}")
        with open(found[0], newline="") as f:
            rows = list(csv.DictReader(f))
        # MindSpore names the fused optimizer's Custom kernel outside the optimizer's scope ("Default/Custom-op0").
        fused = type(getattr(run, "optimizer", None)).__name__ == "FusedMomentum"
        kernels = [
            (
                r["op_type"],
                "optimizer" if fused and r["op_type"] == "Custom" else r["full_op_name"],
                float(r["op_total_time(ms)"]),
                *(2 * [float(r["op_occurrences"])]),
            )
            for r in rows
        ]
    result = _breakdown(kernels, steps, wall_ms)
    result.update(framework=f"mindspore {ms.__version__}", model=model_name, task=task, mode=mode)
    result.update(batch_size=batch_size, image_size=image_size)
    return result


def profile_ops_torch(
    model_name: str = "res2net50_26w_4s",
    task: str = "train",
    batch_size: int = 32,
    image_size: int = 32,
    steps: int = 3,
    warmup: int = 2,
    num_classes: int = 1000,
    threads: Optional[int] = None,
    seed: int = 0,
) -> Dict[str, Any]:
    """The same breakdown for a timm model in PyTorch eager mode, from ``torch.profiler``.

    Kernels are the ``aten::`` operators (self time, so nested calls count once; the call count is that of the
    outermost ones); autograd-engine and optimizer bookkeeping outside them is host time, as is Python. Operators
    under the labelled ``optimizer.step()`` form the ``optimizer`` category, whatever their name.
    """
    import torch

    run = _torch_workload(model_name, task, batch_size, image_size, num_classes, threads, seed)
    wall_ms = statistics.median(_time_steps(run, steps, warmup)[1]) * 1000
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            run()
    kernels = []
    for event in prof.events():
        if not event.name.startswith("aten::"):
            continue
        scope, outermost, parent = "", True, event.cpu_parent
        while parent is not None:
            outermost = outermost and not parent.name.startswith("aten::")
            if parent.name == _TORCH_OPTIMIZER_LABEL:
                scope = "optimizer"
            parent = parent.cpu_parent
        # Time is self time, so nested operators (convolution -> _convolution -> mkldnn_convolution) add up once;
        # only the outermost one counts as a call.
        kernels.append((event.name, scope, event.self_cpu_time_total / 1000, 1.0 if outermost else 0.0, 1.0))
    result = _breakdown(kernels, steps, wall_ms)
    result.update(framework=f"torch {torch.__version__} eager", model=model_name, task=task, mode="eager")
    result.update(batch_size=batch_size, image_size=image_size, threads=torch.get_num_threads())
    return result


def run_isolated(kind: str, timeout: float = 3600.0, env: Optional[Dict[str, str]] = None, **kwargs: Any) -> Dict:
    """Run :func:`measure` (``kind="mindspore"``), :func:`measure_torch` (``"torch"``), :func:`measure_onnxruntime`
    (``"onnxruntime"``), :func:`profile_ops`
    (``"mindspore_ops"``) or :func:`profile_ops_torch` (``"torch_ops"``) in a child process.

    PyTorch children run with PyTorch's own oneDNN defaults: mindcv's ``ONEDNN_MAX_CPU_ISA`` cap works around
    MindSpore's bundled oneDNN, and PyTorch bundles its own. Pass ``env={"ONEDNN_MAX_CPU_ISA": ...}`` to cap them too.

    Returns:
        The measurement dict, or ``{"error": "..."}`` when the child fails (e.g. no such device).
    """
    child_env = dict(os.environ, GLOG_v=os.environ.get("GLOG_v", "3"))
    if kind.startswith("torch"):
        # `import mindcv` has set the cap in this process whether or not the user did, so only `env` can ask for it.
        child_env.pop("ONEDNN_MAX_CPU_ISA", None)
    child_env.update(env or {})
    payload = json.dumps({"kind": kind, "kwargs": kwargs, "onednn_isa": child_env.get("ONEDNN_MAX_CPU_ISA")})
    try:
        proc = subprocess.run(
            [sys.executable, HARNESS, payload], capture_output=True, text=True, timeout=timeout, env=child_env
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
    onnxruntime: bool = False,
) -> List[Dict[str, Any]]:
    """Measure training and inference for every (model, mode), each in its own process.

    The epoch time is an estimate, marked as such: the steady-state step time times the steps of one
    ImageNet-1k epoch (1,281,167 images) at ``global_batch`` (default ``batch_size``, one device). With
    ``onnxruntime`` each model also gets an inference-only row through the onnxruntime backend (mode
    ``onnxruntime``; CPU).
    """
    global_batch = global_batch or batch_size
    published = published_top1_top5()
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
            row["published_top1_top5"] = published.get(model)
            rows.append(row)
            log(markdown_table([row], header=False))
        if onnxruntime:
            infer = run_isolated(
                "onnxruntime", model_name=model, batch_size=batch_size, image_size=image_size, steps=steps,
                warmup=warmup,
            )  # fmt: skip
            row = dict(model=model, mode="onnxruntime", batch_size=batch_size, image_size=image_size, device="CPU")
            row.update(train=None, infer=infer, published_top1_top5=published.get(model))
            rows.append(row)
            log(markdown_table([row], header=False))
    return rows


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "–"
    return format(value, spec) if spec else str(value)


def markdown_table(rows: List[Dict[str, Any]], header: bool = True) -> str:
    """Format :func:`benchmark_rows` output as the benchmark table of ``docs/performance.md``."""
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
        err = (t or {}).get("error") or i.get("error")
        if err:
            lines.append(
                f"| {r['model']} | {r['mode']} | {r['device']} | {r['batch_size']}x{r['image_size']} | "
                f"failed: {err} |"
            )
            continue
        if t is None:  # an inference-only row (the onnxruntime backend)
            train_cells = "– | – | – "
            first, rss = f"– / {i['first_call_s']:.1f}", f"– / {i['peak_rss_gib']:.2f}"
        else:
            train_cells = f"{t['step_s']:.3f} | {t['img_per_s']:.2f} | {_fmt(r.get('est_imagenet_epoch_h'), '.1f')} "
            first = f"{t['first_call_s']:.1f} / {i['first_call_s']:.1f}"
            rss = f"{t['peak_rss_gib']:.2f} / {i['peak_rss_gib']:.2f}"
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['device']} | {r['batch_size']}x{r['image_size']} | {train_cells}| "
            f"{i['step_s'] * 1000:.0f} | {i['img_per_s']:.2f} | {first} | {rss} | "
            f"{f'{acc[0]:.2f} / {acc[1]:.2f}' if acc else '–'} |"
        )
    return "\n".join(lines)


def format_report(ours: Dict[str, Any], theirs: Optional[Dict[str, Any]]) -> str:
    """The side-by-side markdown tables for a :func:`profile_ops` and a :func:`profile_ops_torch` result.

    Args:
        ours: the MindSpore breakdown.
        theirs: the PyTorch breakdown; None or a failed run (``{"error": ...}``) leaves its columns empty.

    Returns:
        The per-category table (kernel ms and launches per step, with the kernel, host and wall totals), then each
        side's most expensive operators.
    """
    both = theirs is not None and "error" not in theirs
    cats = sorted(
        set(ours["categories"]) | (set(theirs["categories"]) if both else set()),
        key=lambda c: -ours["categories"].get(c, {"ms": 0.0})["ms"],
    )
    lines = [
        "| category | ours ms/step | ours kernels/step | PyTorch ms/step | PyTorch ops/step | ours - PyTorch ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def row(label: str, a: Optional[float], an: Any, b: Optional[float], bn: Any) -> str:
        diff = f"{a - b:+.1f}" if a is not None and b is not None else "–"
        fa = f"{a:.1f}" if a is not None else "–"
        fb = f"{b:.1f}" if b is not None else "–"
        return f"| {label} | {fa} | {an} | {fb} | {bn} | {diff} |"

    absent = {"ms": 0.0, "count": 0}  # a category only one side has
    for c in cats:
        a = ours["categories"].get(c, absent)
        b = theirs["categories"].get(c, absent) if both else {"ms": None, "count": "–"}
        lines.append(row(c, a["ms"], a["count"], b["ms"], b["count"]))
    for label, key, count_key in (
        ("**kernels**", "kernel_ms", "kernels_per_step"),
        ("**host (wall - kernels)**", "host_ms", None),
        ("**step wall time**", "wall_ms", None),
    ):
        lines.append(
            row(
                label,
                ours[key],
                ours[count_key] if count_key else "",
                theirs[key] if both else None,
                (theirs[count_key] if count_key else "") if both else "–",
            )
        )
    for side, result in (("ours", ours), ("PyTorch", theirs if both else None)):
        if result is None:
            continue
        lines += ["", f"Most expensive operators, {side} ({result['framework']}):", "", "| operator | per step | ms |"]
        lines.append("|---|---:|---:|")
        lines += [f"| {name} | {count} | {ms:.2f} |" for name, count, ms in result["top_ops"]]
    return "\n".join(lines)


_CHILD_KINDS = {
    "mindspore": measure,
    "torch": measure_torch,
    "onnxruntime": measure_onnxruntime,
    "mindspore_ops": profile_ops,
    "torch_ops": profile_ops_torch,
}


def _child(payload: str) -> None:
    spec = json.loads(payload)
    if spec["kind"].startswith("torch"):
        # Importing this file imported mindcv, which set its cap again: restore what the parent chose (see
        # run_isolated). torch is imported after this.
        os.environ.pop("ONEDNN_MAX_CPU_ISA", None)
        if spec.get("onednn_isa"):
            os.environ["ONEDNN_MAX_CPU_ISA"] = spec["onednn_isa"]
    result = _CHILD_KINDS[spec["kind"]](**spec["kwargs"])
    result["onednn_max_cpu_isa"] = os.environ.get("ONEDNN_MAX_CPU_ISA")  # what this measurement ran under
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    _child(sys.argv[1])
