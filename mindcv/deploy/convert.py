"""Convert PyTorch Res2Net weights (the authors' layout, as in timm) into a mindcv checkpoint.

Usage::

    python -m mindcv.convert --model res2net50 --src res2net50_26w_4s.safetensors --out res2net50.ckpt

``.safetensors`` sources are read with the safetensors package (no torch needed); ``.pth``/``.pt``/
``.bin`` need torch. The result is checked name by name and shape by shape against the mindcv model,
so a state dict of another architecture is rejected, never half-loaded. Conv and dense weights have
the same layout in both frameworks; only names change:

============================================  ==============================================
PyTorch                                       mindcv
============================================  ==============================================
``*.weight`` / ``*.bias`` of a BatchNorm      ``*.gamma`` / ``*.beta``
``*.running_mean`` / ``*.running_var``        ``*.moving_mean`` / ``*.moving_variance``
``*.num_batches_tracked``                     dropped
``layerL.B.downsample.I.*``                   ``layerL.B.down_sample.I.*`` (v1b layer1: ``I-1``,
                                              PyTorch keeps a no-op pool at index 0 there)
``fc.weight`` / ``fc.bias``                   ``classifier.weight`` / ``classifier.bias``
============================================  ==============================================
"""

import logging
import os
import re
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

import mindspore as ms

from ..errors import CheckpointError
from ..models import create_model
from ..utils.checkpoint import save_checkpoint_atomic
from ..utils.cli import ArgumentParser, run_main

__all__ = ["TORCH_EQUIVALENTS", "load_torch_state_dict", "convert_state_dict", "convert_file", "main"]

_logger = logging.getLogger(__name__)

# PyTorch model names whose weights map onto each mindcv model (for help texts and tests).
TORCH_EQUIVALENTS = {
    "res2net50": "res2net50_26w_4s",
    "res2net101": "res2net101_26w_4s",
    "res2net50_26w_6s": "res2net50_26w_6s",
    "res2net50_26w_8s": "res2net50_26w_8s",
    "res2net50_48w_2s": "res2net50_48w_2s",
    "res2net50_14w_8s": "res2net50_14w_8s",
    "res2next50": "res2next50",
    "res2net50_v1b": "res2net50d",
    "res2net101_v1b": "res2net101d",
}


def load_torch_state_dict(path: str) -> Dict[str, np.ndarray]:
    """Read a PyTorch state dict from ``.safetensors`` (no torch needed) or ``.pth`` (needs torch)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"source weights '{path}' do not exist; check --src")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"source weights '{path}' are empty; re-download them")
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        try:
            return dict(load_file(path))
        except Exception as e:  # the safetensors package raises several types for bad files
            raise CheckpointError(f"cannot read '{path}' as safetensors ({e}); the file is corrupt or not safetensors")
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"reading '{path}' needs torch (pip install torch), or convert it to .safetensors first"
        ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read '{path}' with torch.load ({type(e).__name__}); the file is corrupt")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"'{path}' does not hold a state dict (got {type(obj).__name__})")
    out = {}
    for k, v in obj.items():
        if hasattr(v, "detach"):
            out[k[len("module.") :] if k.startswith("module.") else k] = v.detach().cpu().float().numpy()
    return out


def _rename(key: str, value: np.ndarray, model_keys: Sequence[str]) -> Optional[str]:
    if key.endswith("num_batches_tracked"):
        return None
    name = key
    if name.startswith("fc."):
        name = "classifier." + name[3:]
    name = name.replace(".downsample.", ".down_sample.")
    if name.endswith(".running_mean"):
        name = name[: -len("running_mean")] + "moving_mean"
    elif name.endswith(".running_var"):
        name = name[: -len("running_var")] + "moving_variance"
    elif value.ndim == 1 and not name.startswith("classifier."):
        # 1-D weight/bias outside the classifier: BatchNorm affine parameters (all convs are bias-free).
        if name.endswith(".weight"):
            name = name[: -len("weight")] + "gamma"
        elif name.endswith(".bias"):
            name = name[: -len("bias")] + "beta"
    if name not in model_keys:
        # v1b layer1: PyTorch holds an identity pool at down_sample index 0 (conv at 1, BN at 2);
        # mindcv, like upstream MindCV, has no pool there (conv at 0, BN at 1).
        m = re.match(r"^(.*\.down_sample\.)(\d+)(\..*)$", name)
        if m and int(m.group(2)) > 0:
            shifted = f"{m.group(1)}{int(m.group(2)) - 1}{m.group(3)}"
            if shifted in model_keys:
                name = shifted
    return name


def convert_state_dict(state_dict: Dict[str, np.ndarray], model_name: str) -> Dict[str, np.ndarray]:
    """Map a PyTorch Res2Net state dict onto ``model_name``'s parameter names, checking everything.

    The class count is taken from ``fc.weight``. Raises :class:`CheckpointError` listing missing,
    unexpected or mis-shaped entries, e.g. for a state dict of another architecture.
    """
    if "fc.weight" not in state_dict:
        raise CheckpointError("state dict has no 'fc.weight'; it is not a Res2Net/ResNet classifier state dict")
    num_classes = int(state_dict["fc.weight"].shape[0])
    model = create_model(model_name, num_classes=num_classes)
    shapes = {p.name: tuple(p.shape) for p in model.get_parameters()}
    del model
    out: Dict[str, np.ndarray] = {}
    unexpected: List[str] = []
    mismatched: List[str] = []
    not_float = [
        f"{k} ({np.asarray(v).dtype})"
        for k, v in state_dict.items()
        if not k.endswith("num_batches_tracked") and np.asarray(v).dtype.kind != "f"
    ]
    if not_float:
        raise CheckpointError(
            f"the source holds non-floating tensors ({', '.join(not_float[:3])}{' ...' if len(not_float) > 3 else ''}"
            "); it is not a float state dict of model weights"
        )
    for key, value in state_dict.items():
        value = np.asarray(value)
        name = _rename(key, value, shapes)
        if name is None:
            continue
        if name not in shapes:
            unexpected.append(key)
        elif tuple(value.shape) != shapes[name]:
            mismatched.append(f"{key} {tuple(value.shape)} -> {name} {shapes[name]}")
        else:
            out[name] = value.astype(np.float32)
    missing = [k for k in shapes if k not in out]
    if unexpected or mismatched or missing:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if items:
                parts.append(f"{label} {len(items)}: {', '.join(items[:4])}{' ...' if len(items) > 4 else ''}")
        hint = ", ".join(f"{k} <- {v}" for k, v in TORCH_EQUIVALENTS.items())
        raise CheckpointError(
            f"the source does not match mindcv '{model_name}' ({'; '.join(parts)}); pick the matching --model "
            f"({hint})"
        )
    return out


def convert_file(model_name: str, src: str, out: str) -> str:
    """Convert ``src`` (PyTorch weights) into a mindcv checkpoint at ``out`` (.ckpt or .safetensors)."""
    params = convert_state_dict(load_torch_state_dict(src), model_name)
    if os.path.splitext(out)[1] not in (".ckpt", ".safetensors"):
        raise CheckpointError(f"output '{out}' must end with .ckpt or .safetensors")
    save_obj = [{"name": k, "data": ms.Tensor(v)} for k, v in params.items()]
    save_checkpoint_atomic(save_obj, out)
    return out


def _main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(
        prog="python -m mindcv.convert", description="Convert PyTorch Res2Net weights into a mindcv checkpoint."
    )
    parser.add_argument("--model", required=True, help="mindcv model name, e.g. res2net50 or res2net50_v1b")
    parser.add_argument("--src", required=True, help="PyTorch weights: .safetensors, or .pth/.pt/.bin (needs torch)")
    parser.add_argument("--out", required=True, help="output checkpoint: .ckpt or .safetensors")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"wrote {convert_file(args.model, args.src, args.out)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit status (2 after a one-line error)."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
