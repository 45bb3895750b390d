"""Model registry: a strict name -> entrypoint table with pretrained configs.

Each model family module decorates its entrypoints with :func:`register_model`; the module's
``default_cfgs`` dict holds the pretrained config of every entrypoint under the same name.
"""

import difflib
import fnmatch
import re
import sys
from collections import defaultdict
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Union

from ..errors import UnknownNameError

__all__ = [
    "register_model",
    "list_models",
    "list_modules",
    "is_model",
    "model_entrypoint",
    "is_model_in_modules",
    "is_model_pretrained",
    "get_pretrained_cfg",
    "get_pretrained_cfg_value",
    "has_pretrained_cfg_key",
    "suggest_models",
]

_model_entrypoints: Dict[str, Callable[..., Any]] = {}
_model_to_module: Dict[str, str] = {}
_module_to_models: Dict[str, Set[str]] = defaultdict(set)
_model_pretrained_cfgs: Dict[str, Dict[str, Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a model entrypoint under its function name.

    The defining module must hold ``default_cfgs[fn.__name__]`` (defined before the entrypoints) and
    list the name in ``__all__``. A name registered twice is an error: silently replacing a model
    would make ``create_model`` depend on import order.
    """
    name = fn.__name__
    if name in _model_entrypoints:
        raise ValueError(f"model '{name}' is already registered by module '{_model_to_module[name]}'")
    mod = sys.modules[fn.__module__]
    module_name = fn.__module__.split(".")[-1]
    cfgs = getattr(mod, "default_cfgs", None)
    if cfgs is None or name not in cfgs:
        raise ValueError(f"model '{name}' has no entry in {fn.__module__}.default_cfgs; add one before registering")
    if hasattr(mod, "__all__"):
        if name not in mod.__all__:
            mod.__all__.append(name)
    else:
        mod.__all__ = [name]
    _model_entrypoints[name] = fn
    _model_to_module[name] = module_name
    _module_to_models[module_name].add(name)
    _model_pretrained_cfgs[name] = cfgs[name]
    return fn


def _natural_key(name: str) -> List[Union[int, str]]:
    """Sort key that orders res2net50 < res2net101 < res2net152."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name.lower())]


def list_models(
    filter: Union[str, Sequence[str]] = "",
    module: str = "",
    pretrained: bool = False,
    exclude_filters: Union[str, Sequence[str]] = "",
) -> List[str]:
    """Return registered model names, naturally sorted.

    Args:
        filter: shell-style wildcard(s) a name must match (any of them), e.g. ``"res2net50*"``.
        module: only models of this family module (e.g. ``"res2net"``).
        pretrained: only models that have published weights.
        exclude_filters: wildcard(s) that remove matching names.
    """
    names: Iterable[str] = _module_to_models[module] if module else _model_entrypoints.keys()
    names = set(names)
    if filter:
        patterns = [filter] if isinstance(filter, str) else list(filter)
        names = {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)}
    if exclude_filters:
        patterns = [exclude_filters] if isinstance(exclude_filters, str) else list(exclude_filters)
        names = {n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in patterns)}
    if pretrained:
        names = {n for n in names if is_model_pretrained(n)}
    return sorted(names, key=_natural_key)


def list_modules() -> List[str]:
    """Return the names of the model family modules that registered models."""
    return sorted(m for m, models in _module_to_models.items() if models)


def is_model(model_name: str) -> bool:
    """Whether ``model_name`` is a registered model."""
    return model_name in _model_entrypoints


def is_model_in_modules(model_name: str, module_names: Sequence[str]) -> bool:
    """Whether ``model_name`` is registered by one of ``module_names``."""
    return _model_to_module.get(model_name) in set(module_names)


def is_model_pretrained(model_name: str) -> bool:
    """Whether ``model_name`` has a published weights URL."""
    return bool(_model_pretrained_cfgs.get(model_name, {}).get("url"))


def suggest_models(model_name: str, n: int = 5) -> List[str]:
    """Registered names closest to a misspelled ``model_name``."""
    return difflib.get_close_matches(model_name.lower(), list(_model_entrypoints), n=n, cutoff=0.5)


def _unknown_model(model_name: str) -> UnknownNameError:
    close = suggest_models(model_name)
    hint = f"did you mean: {', '.join(close)}?" if close else f"registered models: {', '.join(list_models())}"
    return UnknownNameError(f"unknown model '{model_name}'; {hint} (list them with mindcv.list_models())")


def model_entrypoint(model_name: str) -> Callable[..., Any]:
    """Return the entrypoint function of a registered model, or raise with close matches."""
    if model_name not in _model_entrypoints:
        raise _unknown_model(model_name)
    return _model_entrypoints[model_name]


def get_pretrained_cfg(model_name: str) -> Dict[str, Any]:
    """Return a copy of the pretrained config (url, input_size, mean, std, ...) of a model."""
    if model_name not in _model_pretrained_cfgs:
        raise _unknown_model(model_name)
    return dict(_model_pretrained_cfgs[model_name])


def get_pretrained_cfg_value(model_name: str, cfg_key: str) -> Any:
    """One value of a model's pretrained config, None when the model or the key is absent (upstream's helper)."""
    return _model_pretrained_cfgs.get(model_name, {}).get(cfg_key)


def has_pretrained_cfg_key(model_name: str, cfg_key: str) -> bool:
    """Whether a registered model's pretrained config holds ``cfg_key`` (upstream's helper)."""
    return cfg_key in _model_pretrained_cfgs.get(model_name, {})


def get_module_name(model_name: str) -> Optional[str]:
    """The family module that registered ``model_name``."""
    return _model_to_module.get(model_name)
