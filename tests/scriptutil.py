"""Helpers for the end-to-end tests of train.py / validate.py: run them in-process, make tiny data sets."""

import hashlib
import importlib.util
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The cheapest registered model to compile (scale 2: fewest branches), at 16 px: a few seconds per step on 2 cores.
TINY_MODEL = "res2net50_48w_2s"
TINY = ["--model", TINY_MODEL, "--image_resize", "16", "--batch_size", "4", "--warmup_epochs", "0"]


def load_script(name: str):
    """Import ``<repo>/<name>.py`` as a module (the scripts are not part of the package)."""
    spec = importlib.util.spec_from_file_location(f"_mindcv_script_{name}", os.path.join(ROOT, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, argv: Sequence[str], capsys=None) -> Tuple[int, str, str]:
    """``main(argv)`` of a script; returns (exit status, stdout, stderr) when ``capsys`` is given."""
    rc = load_script(name).main(list(argv))
    if capsys is None:
        return rc, "", ""
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def error_lines(stderr: str) -> List[str]:
    """Non-empty stderr lines (MindSpore's own C++ log lines are silenced by GLOG_v=3)."""
    return [line for line in stderr.splitlines() if line.strip()]


def make_image_folder(root: str, classes: Sequence[str] = ("cat", "dog", "fox"), per_class: Dict[str, int] = None):
    """An ImageNet-style tree ``root/<split>/<class>/<i>.jpg|png`` of small random images of varied sizes."""
    per_class = per_class or {"train": 4, "val": 2}
    rng = np.random.default_rng(0)
    for split, count in per_class.items():
        for c, name in enumerate(classes):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                h, w = rng.integers(20, 48, size=2)
                pixels = (rng.integers(0, 60, size=(h, w, 3)) + 60 * c).astype(np.uint8)
                ext = "jpg" if i % 2 == 0 else "png"
                Image.fromarray(pixels).save(os.path.join(folder, f"{i}.{ext}"))
    return root


def write_cifar10(root: str) -> str:
    """The official CIFAR-10 binary layout with random pixels (MindSpore requires the full record counts)."""
    folder = os.path.join(root, "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = rng.integers(0, 256, size=(10000, 3073), dtype=np.uint8)
        records[:, 0] = np.arange(10000) % 10
        records.tofile(os.path.join(folder, name))
    return folder


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_tensors(path: str) -> Dict[str, np.ndarray]:
    """Every tensor of a checkpoint (metadata left out) as numpy arrays."""
    from mindcv.utils.checkpoint import read_checkpoint, split_checkpoint

    tensors, _ = split_checkpoint(read_checkpoint(path))
    return {k: v.asnumpy() for k, v in tensors.items()}


def read_meta(path: str) -> Dict[str, object]:
    from mindcv.utils.checkpoint import read_checkpoint, split_checkpoint

    return split_checkpoint(read_checkpoint(path))[1]
