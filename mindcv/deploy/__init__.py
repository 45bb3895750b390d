"""Using trained models outside training: export to MINDIR/ONNX, inference on image files, and conversion of
PyTorch Res2Net weights."""

from .convert import TORCH_EQUIVALENTS, convert_file, convert_state_dict, load_torch_state_dict
from .backends import OnnxRuntimeModel, cached_onnx_export, onnx_cache_key, weights_digest
from .export import check_export, export_model, resolve_formats
from .infer import build_inference_model, classify_files

__all__ = [
    "export_model",
    "check_export",
    "OnnxRuntimeModel",
    "cached_onnx_export",
    "onnx_cache_key",
    "weights_digest",
    "resolve_formats",
    "build_inference_model",
    "classify_files",
    "TORCH_EQUIVALENTS",
    "convert_file",
    "convert_state_dict",
    "load_torch_state_dict",
]
