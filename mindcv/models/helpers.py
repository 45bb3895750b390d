"""One build path for every model: instantiate, load weights (published or local), wrap for features.

``build_model_with_cfg`` is what a family's ``_create_*`` calls; model files never load weights
themselves. Published weights come from one of two sources, named by the cfg of the requested tag: upstream
MindCV's checkpoints (``url``, SHA-256 prefix in the name) or timm's PyTorch weights on the Hugging Face Hub
(``hf_hub_id``), downloaded by huggingface_hub, converted to mindcv names on the first load and cached beside the
download, so later loads read the converted file. Loading is strict: a missing, unexpected or mis-shaped parameter
is an error that lists them, with two deliberate exceptions (a differing class count drops the classifier when loading
*published* weights, and a different ``in_channels`` adapts the first convolution).
"""

import difflib
import logging
import os
import re
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple
from urllib.parse import urlparse

import numpy as np
from safetensors.numpy import load_file as load_safetensors

import mindspore as ms
from mindspore import nn

from ..errors import CheckpointError, ConfigError, DownloadError
from ..utils.checkpoint import read_checkpoint, save_checkpoint_atomic, split_checkpoint
from ..utils.download import download_url, get_cache_dir
from ..utils.fs import unlink_quiet
from ..utils.hub import hf_hub_file, verify_hub_file
from .features import FeatureExtractor
from .registry import get_pretrained_cfg, list_models
from .torch_weights import convert_torch_state_dict

__all__ = [
    "build_model_with_cfg",
    "load_pretrained",
    "load_model_checkpoint",
    "auto_map_names",
    "load_params_into_model",
    "adapt_input_conv",
    "pretrained_url_sha256_prefix",
]

_logger = logging.getLogger(__name__)

#: Base URL serving the published weight files under their own names, instead of their cfg URL.
WEIGHTS_MIRROR_ENV = "MINDCV_WEIGHTS_MIRROR"

# Part of the cached conversion's name: a change of the conversion (torch_weights) must bump it, so that
# files converted by an older mindcv are not taken for current ones.
_CONVERSION_VERSION = "v1"

# Entries of training checkpoints that are not model weights: optimizer/loss-scale/schedule state
# written by MindSpore's optimizers and our trainer. A key that is not a model parameter and ends
# with ".<model parameter name>" (e.g. "moments.conv1.weight") is optimizer state too.
_TRAINING_STATE_KEYS = re.compile(
    r"^(learning_rate|global_step|scale_sense|loss_scale.*|beta1_power|beta2_power|epoch.*|step.*|"
    r"current_iterator_step|last_overflow_iterator_step|cur_step_num|best_.*|__.*|"
    r"accumulation_.*|rng_.*|ema_.*|train_.*)$"
)


def pretrained_url_sha256_prefix(url: str) -> Optional[str]:
    """The SHA-256 prefix that upstream MindCV writes into weight file names (``name-<8 hex>.ckpt``)."""
    stem = os.path.splitext(os.path.basename(urlparse(url).path))[0]
    match = re.search(r"-([0-9a-f]{8,64})$", stem)
    return match.group(1) if match else None


def adapt_input_conv(in_channels: int, weight: np.ndarray) -> np.ndarray:
    """Adapt RGB first-conv weights (O, 3, kH, kW) to ``in_channels`` inputs.

    One channel sums the RGB filters (a grey image equals R=G=B, so the response is preserved).
    More channels repeat the RGB filters cyclically and rescale by 3/in_channels, which keeps the
    activation magnitude for inputs whose channels have RGB-like statistics.
    """
    if weight.ndim != 4:
        raise CheckpointError(f"first conv weight must be 4-D (O, I, kH, kW), got shape {weight.shape}")
    if in_channels == weight.shape[1]:
        return weight
    if weight.shape[1] != 3:
        raise CheckpointError(
            f"cannot adapt a first conv with {weight.shape[1]} input channels to {in_channels}; "
            "only RGB (3-channel) weights can be adapted"
        )
    if in_channels == 1:
        return weight.sum(axis=1, keepdims=True)
    reps = int(np.ceil(in_channels / 3))
    return np.tile(weight, (1, reps, 1, 1))[:, :in_channels] * (3.0 / in_channels)


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    return np.asarray(value)


def _model_param_shapes(model: nn.Cell) -> Dict[str, Tuple[int, ...]]:
    return {p.name: tuple(p.shape) for p in model.get_parameters()}


def _is_training_state(key: str, model_keys: Iterable[str]) -> bool:
    if _TRAINING_STATE_KEYS.match(key):
        return True
    return any(key.endswith("." + k) for k in model_keys)


def _summarise(names: Sequence[str], limit: int = 6) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def load_params_into_model(
    model: nn.Cell,
    params: Dict[str, Any],
    strict: bool = True,
    ignore_missing: Sequence[str] = (),
    source: str = "checkpoint",
) -> None:
    """Copy ``params`` (name -> array/Tensor/Parameter) into ``model``, checking names and shapes.

    Training state (optimizer moments, step counters, loss scale) found next to the weights is
    ignored. With ``strict``, missing or unexpected weights are an error; shape mismatches always
    are. ``ignore_missing`` names module prefixes allowed to be absent (a dropped classifier).
    Nothing in the model changes unless every check passes.
    """
    shapes = _model_param_shapes(model)
    weights = {k: v for k, v in params.items() if k in shapes}
    unexpected = [k for k in params if k not in shapes and not _is_training_state(k, shapes)]
    missing = [
        k for k in shapes if k not in weights and not any(k == p or k.startswith(p + ".") for p in ignore_missing)
    ]
    mismatched = [
        f"{k}: {tuple(_to_numpy(v).shape)} vs model {shapes[k]}"
        for k, v in weights.items()
        if tuple(_to_numpy(v).shape) != shapes[k]
    ]
    # Weights must be floating point: float16/float64 cast exactly enough, integers are not weights.
    not_float = [f"{k} ({_to_numpy(v).dtype})" for k, v in weights.items() if _to_numpy(v).dtype.kind != "f"]
    problems = []
    if not_float:
        problems.append(f"non-floating weights {_summarise(not_float, 3)}")
    if mismatched:
        problems.append(f"shape mismatch for {_summarise(mismatched, 3)}")
    if strict and missing:
        problems.append(f"missing {len(missing)} weights: {_summarise(missing)}")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected weights: {_summarise(unexpected)}")
    if not weights:
        problems.append("it holds none of this model's weights")
    if problems:
        raise CheckpointError(
            f"{source} does not fit this model: " + "; ".join(problems) + ". Check that it was saved for the same "
            "model name and num_classes (to fine-tune with another class count, start from --pretrained weights)"
        )
    for p in model.get_parameters():
        if p.name in weights:
            p.set_data(ms.Tensor(_to_numpy(weights[p.name]), dtype=p.dtype))


def _read(path: str) -> Dict[str, Any]:
    """Tensors of a checkpoint file (metadata written by the trainer is left out)."""
    tensors, _ = split_checkpoint(read_checkpoint(path))
    return tensors


def auto_map_names(model: nn.Cell, params: Dict[str, Any]) -> Dict[str, Any]:
    """Rename checkpoint entries to the model's names where they differ slightly (upstream's ``auto_mapping``).

    Each model weight absent from ``params`` takes the closest-spelled unused entry of its shape (difflib ratio at
    least 0.6), and every rename is logged, so a checkpoint saved under a slightly different naming (an extra
    prefix, a renamed block) loads. A weight with no close entry is an error.
    """
    out = dict(params)
    shapes = _model_param_shapes(model)
    # Shapes of the unmatched entries, read once: an entry may be a Tensor whose conversion copies it.
    free = {
        k: tuple(_to_numpy(v).shape) for k, v in params.items() if k not in shapes and not _TRAINING_STATE_KEYS.match(k)
    }
    renamed = []
    for name, shape in shapes.items():
        if name in out:
            continue
        fitting = [k for k, free_shape in free.items() if free_shape == shape]
        close = difflib.get_close_matches(name, fitting, n=1, cutoff=0.6)
        if not close:
            raise CheckpointError(
                f"auto_mapping found no checkpoint entry of shape {shape} close to the model weight '{name}'; the "
                "checkpoint was saved for another architecture"
            )
        out[name] = out.pop(close[0])
        del free[close[0]]
        renamed.append(f"{close[0]} -> {name}")
    if renamed:
        _logger.warning("auto_mapping renamed %d checkpoint entries: %s", len(renamed), _summarise(renamed, 10))
    return out


def load_model_checkpoint(
    model: nn.Cell,
    checkpoint_path: str = "",
    ema: bool = False,
    auto_mapping: bool = False,
    strict: bool = True,
) -> None:
    """Load a local ``.ckpt`` or ``.safetensors`` into ``model`` strictly.

    The positional order is upstream MindCV's (``model, checkpoint_path, ema, auto_mapping``).

    Args:
        model: the network (before any features wrapper).
        checkpoint_path: the file; a training checkpoint (with optimizer state) works too.
        ema: load the EMA weights (``ema.<name>`` entries written by the trainer) instead.
        auto_mapping: rename entries whose names differ slightly from the model's (see :func:`auto_map_names`).
        strict: require every model weight to be present and nothing foreign.
    """
    if not checkpoint_path:
        raise CheckpointError("empty checkpoint path; pass --ckpt_path /path/to/model.ckpt")
    params = _read(checkpoint_path)
    if ema:
        ema_params = {k[len("ema.") :]: v for k, v in params.items() if k.startswith("ema.")}
        if not ema_params:
            raise CheckpointError(
                f"checkpoint '{checkpoint_path}' holds no EMA weights (no 'ema.*' entries); "
                "drop --ema or train with --ema"
            )
        params = ema_params
    if auto_mapping:
        params = auto_map_names(model, params)
    load_params_into_model(model, params, strict=strict, source=f"checkpoint '{checkpoint_path}'")
    _logger.info("loaded %s into %s", checkpoint_path, type(model).__name__)


def _convert_hub_weights(model: nn.Cell, cfg: Dict[str, Any], src: str, what: str) -> Dict[str, np.ndarray]:
    try:
        state = dict(load_safetensors(src))
    except Exception as e:  # the safetensors package raises several types for a bad file
        raise CheckpointError(f"cannot read {what} ({src}) as safetensors ({e}); delete it and run again") from None
    # The head and the first conv keep their published shapes: load_pretrained drops or adapts them afterwards.
    flexible = [p for p in (cfg.get("classifier"), cfg.get("first_conv")) if p]
    return convert_torch_state_dict(state, _model_param_shapes(model), cfg.get("architecture", "?"), flexible)


def _hub_params(model: nn.Cell, cfg: Dict[str, Any]) -> Tuple[Dict[str, Any], str]:
    """The weights of ``cfg["hf_hub_id"]`` under mindcv names, and a description of where they came from.

    The first load downloads the PyTorch file (huggingface_hub), checks its SHA-256, converts it and saves the
    result beside the download, as ``mindcv-<version>-<sha256[:16]>.ckpt`` in the same snapshot folder: named by
    the source's content, it can never be taken for the conversion of another revision, and deleting the model
    from the Hub cache (``hf cache delete``) deletes it too. Later loads read only that file.
    """
    repo_id, filename = cfg["hf_hub_id"], cfg.get("hf_hub_filename", "model.safetensors")
    what = f"{filename} of {repo_id}"
    src = hf_hub_file(repo_id, filename, verify=False)
    blob = os.path.basename(os.path.realpath(src))
    key = blob if re.fullmatch(r"[0-9a-f]{64}", blob) else os.path.basename(os.path.dirname(src))
    converted = os.path.join(os.path.dirname(src), f"mindcv-{_CONVERSION_VERSION}-{key[:16]}.ckpt")
    if os.path.isfile(converted):
        try:
            return _read(converted), f"{what} (converted: {converted})"
        except CheckpointError as e:  # e.g. cut short by a full disk: convert again
            _logger.warning("cached conversion unreadable (%s); converting %s again", e, what)
            unlink_quiet(converted)
    verify_hub_file(src, what)
    params = _convert_hub_weights(model, cfg, src, what)
    try:
        save_checkpoint_atomic([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], converted)
        _logger.info("converted %s to %s", what, converted)
    except CheckpointError as e:  # a read-only shared cache: load the conversion without keeping it
        _logger.warning("%s; the conversion of %s is not cached and will be repeated next time", e, what)
    return params, what


def load_pretrained(
    model: nn.Cell,
    pretrained_cfg: Dict[str, Any],
    num_classes: int = 1000,
    in_channels: int = 3,
    cache_dir: Optional[str] = None,
) -> None:
    """Download (or reuse from the cache) the published weights and load them.

    Upstream MindCV's weights (``url``): the file's SHA-256 must start with the hex digits in its name, and
    ``$MINDCV_WEIGHTS_MIRROR`` replaces the host and folder of the URL (the file name and its check stay).
    timm's weights (``hf_hub_id``): see :func:`_hub_params` (``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` as
    huggingface_hub documents them). A different ``num_classes`` keeps the freshly initialised classifier;
    ``in_channels != 3`` adapts the first conv; everything else must match exactly.
    """
    url = pretrained_cfg.get("url", "")
    name = pretrained_cfg.get("architecture", type(model).__name__)
    if not url and not pretrained_cfg.get("hf_hub_id"):
        raise ConfigError(
            f"no pretrained weights are published for '{name}'; models with weights: "
            f"{', '.join(list_models(pretrained=True))}. Drop --pretrained or pass --ckpt_path"
        )
    if not url:
        try:
            params, path = _hub_params(model, pretrained_cfg)
        except DownloadError as e:
            raise DownloadError(f"{e} (or drop --pretrained)") from None
    else:
        mirror = os.environ.get(WEIGHTS_MIRROR_ENV, "").strip()
        if mirror:  # same file name, another host (e.g. an internal mirror); the SHA-256 check still applies
            url = f"{mirror.rstrip('/')}/{os.path.basename(urlparse(url).path)}"
        root = cache_dir or get_cache_dir("models")
        try:
            path = download_url(url, root=root, sha256_prefix=pretrained_url_sha256_prefix(url))
        except DownloadError as e:
            raise DownloadError(f"{e}; or pass --ckpt_path FILE (or drop --pretrained)") from None
        params = _read(path)
    params = {k: v for k, v in params.items() if not _is_training_state(k, [])}

    first_conv = pretrained_cfg.get("first_conv")
    if in_channels != 3 and first_conv:
        key = f"{first_conv}.weight"
        if key not in params:
            raise CheckpointError(f"pretrained weights {path} lack the first conv '{key}' named by the model config")
        params[key] = adapt_input_conv(in_channels, _to_numpy(params[key]))
        _logger.info("adapted pretrained %s to %d input channels", key, in_channels)

    classifier = pretrained_cfg.get("classifier")
    ignore_missing: Tuple[str, ...] = ()
    if classifier and num_classes != pretrained_cfg.get("num_classes", 1000):
        dropped = [k for k in params if k == classifier or k.startswith(classifier + ".")]
        for k in dropped:
            params.pop(k)
        _logger.info(
            "num_classes=%d differs from the pretrained %d: classifier %s left freshly initialised",
            num_classes,
            pretrained_cfg.get("num_classes", 1000),
            ", ".join(dropped),
        )
        ignore_missing = (classifier,)
    load_params_into_model(
        model, params, strict=True, ignore_missing=ignore_missing, source=f"pretrained weights {path}"
    )


def build_model_with_cfg(
    model_cls: Callable[..., nn.Cell],
    variant: str,
    pretrained: bool,
    pretrained_cfg: Optional[Dict[str, Any]] = None,
    features_only: bool = False,
    out_indices: Optional[Sequence[int]] = None,
    checkpoint_path: str = "",
    ema: bool = False,
    auto_mapping: bool = False,
    pretrained_tag: str = "",
    **kwargs: Any,
) -> nn.Cell:
    """Instantiate ``model_cls(**kwargs)``, load weights, then apply the features wrapper.

    Args:
        model_cls: the model class.
        variant: the registered name (recorded in the cfg and used in messages).
        pretrained: load the published weights named by the cfg's ``url`` or ``hf_hub_id``.
        pretrained_cfg: the cfg to use; default: the registered one of ``variant`` and ``pretrained_tag``.
        features_only: return a :class:`FeatureExtractor` giving the stem and stage outputs.
        out_indices: which of ``model.feature_info`` to return (default all).
        checkpoint_path: a local checkpoint to load strictly after construction.
        ema: load the checkpoint's EMA weights (``ema.*``) instead of the raw ones.
        auto_mapping: rename checkpoint entries whose names differ slightly from the model's.
        pretrained_tag: the weight tag (``"timm_in1k"``); default: the model's default tag.
        **kwargs: constructor arguments.
    """
    if pretrained_cfg is None:
        pretrained_cfg = get_pretrained_cfg(f"{variant}.{pretrained_tag}" if pretrained_tag else variant)
    cfg = dict(pretrained_cfg, architecture=variant)
    if pretrained and not cfg.get("url") and not cfg.get("hf_hub_id"):
        raise ConfigError(
            f"no pretrained weights are published for '{variant}'; models with weights: "
            f"{', '.join(list_models(pretrained=True))}. Drop --pretrained or pass --ckpt_path"
        )
    model = model_cls(**kwargs)
    model.pretrained_cfg = cfg
    model.default_cfg = cfg  # upstream MindCV spelling
    if pretrained:
        load_pretrained(
            model, cfg, num_classes=kwargs.get("num_classes", 1000), in_channels=kwargs.get("in_channels", 3)
        )
    if checkpoint_path:
        load_model_checkpoint(model, checkpoint_path, ema=ema, auto_mapping=auto_mapping)
    elif ema or auto_mapping:
        raise ConfigError("ema=True and auto_mapping=True apply to a checkpoint_path; pass the checkpoint file")
    if features_only:
        model = FeatureExtractor(model, out_indices=out_indices)
    return model
