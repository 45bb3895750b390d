"""``create_model``: the one public way to build a registered model."""

from typing import Any, Optional

from mindspore import nn

from ..errors import ConfigError
from .registry import model_entrypoint, split_model_name_tag

__all__ = ["create_model"]


def create_model(
    model_name: str,
    num_classes: int = 1000,
    pretrained: bool = False,
    in_channels: int = 3,
    checkpoint_path: Optional[str] = "",
    ema: bool = False,
    auto_mapping: bool = False,
    **kwargs: Any,
) -> nn.Cell:
    """Build a registered model, optionally with published or local weights.

    Args:
        model_name: a name from :func:`mindcv.models.list_models`, e.g. ``"res2net50"`` (its default weights), or
            one with a weight tag from ``list_models(pretrained=True)``, e.g. ``"res2net50.timm_in1k"``.
        num_classes: classifier outputs; 0 gives a model returning pooled features. With
            ``pretrained`` and a different count than the weights', the classifier is re-initialised.
        pretrained: download (or take from the cache) and load the published weights.
        in_channels: input channels; pretrained first-conv weights are adapted when not 3.
        checkpoint_path: a local ``.ckpt``/``.safetensors`` to load strictly (exclusive with
            ``pretrained``). A missing or corrupt file is an error, never random weights.
        ema: load the EMA weights (``ema.*`` entries, as the trainer saves them with ``--ema``) of
            ``checkpoint_path`` instead of the raw ones.
        auto_mapping: rename checkpoint entries whose names differ slightly from the model's
            (upstream MindCV's option; every rename is logged).
        **kwargs: model options (``drop_rate``, ``drop_path_rate``, ``features_only``, ``out_indices``,
            ``output_stride``, ``zero_init_last``, ``frozen_stages``, ...). ``None`` values are dropped so that unset
            command-line options leave the model's defaults alone.

    Returns:
        The model, in training mode as MindSpore cells start.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    entrypoint = model_entrypoint(model_name)  # raises with close matches for an unknown name or tag
    _, tag = split_model_name_tag(model_name)
    if tag:
        kwargs["pretrained_tag"] = tag
    if pretrained and checkpoint_path:
        raise ConfigError(
            f"both pretrained=True and checkpoint_path='{checkpoint_path}' given for '{model_name}'; "
            "use one of them (drop --pretrained to load your own checkpoint)"
        )
    if num_classes is None:
        num_classes = 1000
    if in_channels is None:
        in_channels = 3
    return entrypoint(
        pretrained=bool(pretrained),
        num_classes=num_classes,
        in_channels=in_channels,
        checkpoint_path=checkpoint_path or "",
        **({"ema": True} if ema else {}),
        **({"auto_mapping": True} if auto_mapping else {}),
        **kwargs,
    )
