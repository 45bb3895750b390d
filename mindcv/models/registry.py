"""Model registry: a strict name -> entrypoint table with pretrained configs and weight tags.

Each model family module decorates its entrypoints with :func:`register_model`; the module's
``default_cfgs`` dict holds the pretrained configs of every entrypoint, as timm's do: under
``"<model>.<tag>"``, one key per weight source (the first listed is the default), or under the bare
``"<model>"`` when no weights are published. ``create_model("res2net50")`` therefore means the
default tag and ``create_model("res2net50.timm_in1k")`` names another source.
"""

import difflib
import fnmatch
import re
import sys
from collections import defaultdict
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

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
    "split_model_name_tag",
    "get_model_tags",
]

_model_entrypoints: Dict[str, Callable[..., Any]] = {}
_model_to_module: Dict[str, str] = {}
_module_to_models: Dict[str, Set[str]] = defaultdict(set)
_model_pretrained_cfgs: Dict[str, Dict[str, Any]] = {}  # name -> the default tag's cfg
_model_tag_cfgs: Dict[str, Dict[str, Dict[str, Any]]] = {}  # name -> {tag: cfg}, default tag first


def split_model_name_tag(model_name: str) -> Tuple[str, str]:
    """``"res2net50.timm_in1k"`` -> ``("res2net50", "timm_in1k")``; a name without a tag gives ``(name, "")``."""
    name, _, tag = model_name.partition(".")
    return name, tag


def _has_weights(cfg: Dict[str, Any]) -> bool:
    return bool(cfg.get("url") or cfg.get("hf_hub_id"))


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a model entrypoint under its function name.

    The defining module must hold ``default_cfgs[fn.__name__]`` or ``default_cfgs[fn.__name__ + ".<tag>"]``
    entries (defined before the entrypoints; not both kinds, every tagged one with weights) and list the name
    in ``__all__``. A name registered twice is an error: silently replacing a model would make
    ``create_model`` depend on import order.
    """
    name = fn.__name__
    if name in _model_entrypoints:
        raise ValueError(f"model '{name}' is already registered by module '{_model_to_module[name]}'")
    mod = sys.modules[fn.__module__]
    module_name = fn.__module__.split(".")[-1]
    cfgs = getattr(mod, "default_cfgs", None) or {}
    tags = {split_model_name_tag(k)[1]: c for k, c in cfgs.items() if split_model_name_tag(k)[0] == name}
    if not tags:
        raise ValueError(f"model '{name}' has no entry in {fn.__module__}.default_cfgs; add one before registering")
    if "" in tags and len(tags) > 1:
        raise ValueError(f"model '{name}' has both an untagged and tagged entries in default_cfgs; use tags only")
    if "" not in tags and not all(_has_weights(c) for c in tags.values()):
        raise ValueError(f"every tagged default_cfgs entry of '{name}' needs a url or hf_hub_id")
    if hasattr(mod, "__all__"):
        if name not in mod.__all__:
            mod.__all__.append(name)
    else:
        mod.__all__ = [name]
    _model_entrypoints[name] = fn
    _model_to_module[name] = module_name
    _module_to_models[module_name].add(name)
    _model_tag_cfgs[name] = tags
    _model_pretrained_cfgs[name] = next(iter(tags.values()))
    return fn


def _natural_key(name: str) -> List[Union[int, str]]:
    """Sort key that orders res2net50 < res2net101 < res2net152."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name.lower())]


def list_models(
    filter: Union[str, Sequence[str]] = "",
    module: str = "",
    pretrained: bool = False,
    exclude_filters: Union[str, Sequence[str]] = "",
    include_tags: Optional[bool] = None,
) -> List[str]:
    """Return registered model names, naturally sorted.

    Args:
        filter: shell-style wildcard(s) a name must match (any of them), e.g. ``"res2net50*"``.
        module: only models of this family module (e.g. ``"res2net"``).
        pretrained: only models that have published weights.
        exclude_filters: wildcard(s) that remove matching names.
        include_tags: list ``"<model>.<tag>"`` once per weight source (a model without weights keeps its bare
            name); default: with ``pretrained``, as timm does, so ``list_models(pretrained=True)`` names every
            loadable weight source.
    """
    names: Iterable[str] = _module_to_models[module] if module else _model_entrypoints.keys()
    names = set(names)
    if include_tags if include_tags is not None else pretrained:
        names = {f"{n}.{t}" if t else n for n in names for t in _model_tag_cfgs[n]}
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
    """Whether ``model_name`` is a registered model, or a registered model and one of its tags."""
    name, tag = split_model_name_tag(model_name)
    return name in _model_entrypoints and (not tag or tag in _model_tag_cfgs[name])


def is_model_in_modules(model_name: str, module_names: Sequence[str]) -> bool:
    """Whether ``model_name`` is registered by one of ``module_names``."""
    return _model_to_module.get(model_name) in set(module_names)


def is_model_pretrained(model_name: str) -> bool:
    """Whether ``model_name`` (a model: its default tag; or ``model.tag``) has published weights."""
    name, tag = split_model_name_tag(model_name)
    cfgs = _model_tag_cfgs.get(name, {})
    cfg = cfgs.get(tag, {}) if tag else _model_pretrained_cfgs.get(name, {})
    return _has_weights(cfg)


def get_model_tags(model_name: str) -> List[str]:
    """The weight tags of a model, the default first (empty for a model without published weights)."""
    name, _ = split_model_name_tag(model_name)
    if name not in _model_tag_cfgs:
        raise _unknown_model(model_name)
    return [t for t in _model_tag_cfgs[name] if t]


def suggest_models(model_name: str, n: int = 5) -> List[str]:
    """Registered names closest to a misspelled ``model_name``."""
    return difflib.get_close_matches(model_name.lower(), list(_model_entrypoints), n=n, cutoff=0.5)


def _unknown_model(model_name: str) -> UnknownNameError:
    close = suggest_models(model_name)
    hint = f"did you mean: {', '.join(close)}?" if close else f"registered models: {', '.join(list_models())}"
    return UnknownNameError(f"unknown model '{model_name}'; {hint} (list them with mindcv.list_models())")


def _check_tag(model_name: str) -> Tuple[str, str]:
    name, tag = split_model_name_tag(model_name)
    if name not in _model_entrypoints:
        raise _unknown_model(name)
    if tag and tag not in _model_tag_cfgs[name]:
        known = [t for t in _model_tag_cfgs[name] if t]
        choices = ", ".join(f"{name}.{t}" for t in known) if known else f"none ({name} has no published weights)"
        raise UnknownNameError(f"unknown weight tag '{tag}' of '{name}'; tags: {choices}")
    return name, tag


def model_entrypoint(model_name: str) -> Callable[..., Any]:
    """Return the entrypoint function of a registered model (a ``.tag`` is checked and ignored), or raise."""
    return _model_entrypoints[_check_tag(model_name)[0]]


def _cfg_of(model_name: str) -> Dict[str, Any]:
    name, tag = split_model_name_tag(model_name)
    cfgs = _model_tag_cfgs.get(name, {})
    return cfgs.get(tag, {}) if tag else _model_pretrained_cfgs.get(name, {})


def get_pretrained_cfg(model_name: str) -> Dict[str, Any]:
    """Return a copy of the pretrained config (url or hf_hub_id, input_size, mean, std, ...) of a model.

    ``model_name`` may carry a tag (``"res2net50.timm_in1k"``); without one the default tag's config is
    returned. The copy holds ``tag`` (``""`` for a model without weights).
    """
    name, tag = _check_tag(model_name)
    cfgs = _model_tag_cfgs[name]
    tag = tag or next(iter(cfgs))
    return dict(cfgs[tag], tag=tag)


def get_pretrained_cfg_value(model_name: str, cfg_key: str) -> Any:
    """One value of a model's pretrained config, None when the model or the key is absent (upstream's helper)."""
    return _cfg_of(model_name).get(cfg_key)


def has_pretrained_cfg_key(model_name: str, cfg_key: str) -> bool:
    """Whether a registered model's pretrained config holds ``cfg_key`` (upstream's helper)."""
    return cfg_key in _cfg_of(model_name)


def get_module_name(model_name: str) -> Optional[str]:
    """The family module that registered ``model_name``."""
    return _model_to_module.get(model_name)
