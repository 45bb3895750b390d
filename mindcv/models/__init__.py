"""Model registry, factory and families."""

from . import res2net
from .features import FeatureExtractor, FeatureExtractWrapper  # noqa: F401
from .helpers import build_model_with_cfg, load_model_checkpoint, load_pretrained  # noqa: F401
from .model_factory import create_model  # noqa: F401
from .registry import (  # noqa: F401
    get_model_tags,
    get_pretrained_cfg,
    get_pretrained_cfg_value,
    has_pretrained_cfg_key,
    is_model,
    is_model_in_modules,
    is_model_pretrained,
    list_models,
    list_modules,
    model_entrypoint,
    register_model,
)
from .res2net import *  # noqa: F401,F403  (the Res2Net class and every registered entrypoint)

__all__ = [
    "create_model",
    "list_models",
    "list_modules",
    "is_model",
    "is_model_in_modules",
    "is_model_pretrained",
    "model_entrypoint",
    "register_model",
    "get_pretrained_cfg",
    "get_model_tags",
    "get_pretrained_cfg_value",
    "has_pretrained_cfg_key",
    "build_model_with_cfg",
    "load_pretrained",
    "load_model_checkpoint",
    "FeatureExtractor",
    "FeatureExtractWrapper",
] + list(res2net.__all__)
