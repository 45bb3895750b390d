"""PyTorch Res2Net weights (the authors' layout, as in timm) under mindcv's parameter names.

The pure name and shape mapping, shared by loading timm's published weights (``pretrained=True`` with a
``timm_*`` tag) and by the ``python -m mindcv.convert`` command (:mod:`mindcv.deploy.convert`). Conv and
dense weights have the same layout in both frameworks; only names change:

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

import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import CheckpointError

__all__ = ["TORCH_EQUIVALENTS", "rename_torch_key", "convert_torch_state_dict"]

# PyTorch (timm) model names whose weights map onto each mindcv model (for help texts, cfgs and tests).
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


def rename_torch_key(key: str, value: np.ndarray, model_keys: Sequence[str]) -> Optional[str]:
    """The mindcv name of PyTorch entry ``key`` (None: dropped); ``model_keys`` resolves the v1b index shift."""
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


def convert_torch_state_dict(
    state_dict: Mapping[str, np.ndarray],
    shapes: Mapping[str, Tuple[int, ...]],
    model_name: str,
    any_shape: Sequence[str] = (),
) -> Dict[str, np.ndarray]:
    """Map a PyTorch Res2Net state dict onto a model's parameter names and shapes, checking everything.

    Args:
        state_dict: PyTorch name -> array.
        shapes: the mindcv model's parameter name -> shape.
        model_name: named in the error message.
        any_shape: name prefixes (e.g. the classifier and the first conv) taken whatever their shape, present in
            ``shapes`` or not: the loader re-initialises or adapts them for another class or channel count.

    Returns:
        mindcv name -> float32 array.

    Raises:
        CheckpointError: non-floating tensors, or missing, unexpected or mis-shaped entries (e.g. a state dict
            of another architecture), listed in one line.
    """
    flexible = tuple(p if p.endswith(".") else p + "." for p in any_shape)
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
        name = rename_torch_key(key, value, shapes)
        if name is None:
            continue
        if name.startswith(flexible):
            out[name] = value.astype(np.float32)
        elif name not in shapes:
            unexpected.append(key)
        elif tuple(value.shape) != tuple(shapes[name]):
            mismatched.append(f"{key} {tuple(value.shape)} -> {name} {tuple(shapes[name])}")
        else:
            out[name] = value.astype(np.float32)
    missing = [k for k in shapes if k not in out and not k.startswith(flexible)]
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
