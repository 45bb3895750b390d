"""Convert PyTorch Res2Net weights (the authors' layout, as in timm) into a mindcv checkpoint.

Usage::

    python -m mindcv.convert --model res2net50 --src res2net50_26w_4s.safetensors --out res2net50.ckpt

``.safetensors`` sources are read with the safetensors package (no torch needed); ``.pth``/``.pt``/
``.bin`` need torch. The result is checked name by name and shape by shape against the mindcv model,
so a state dict of another architecture is rejected, never half-loaded. The name mapping itself
(:mod:`mindcv.models.torch_weights`) is shared with ``pretrained=True`` for timm's weights.
"""

import logging
import os
import sys
from typing import Dict, Optional, Sequence

import numpy as np

import mindspore as ms

from ..errors import CheckpointError
from ..models import create_model
from ..models.torch_weights import TORCH_EQUIVALENTS, convert_torch_state_dict
from ..utils.checkpoint import save_checkpoint_atomic
from ..utils.cli import ArgumentParser, run_main

__all__ = ["TORCH_EQUIVALENTS", "load_torch_state_dict", "convert_state_dict", "convert_file", "main"]

_logger = logging.getLogger(__name__)


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
    return convert_torch_state_dict(state_dict, shapes, model_name)


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
