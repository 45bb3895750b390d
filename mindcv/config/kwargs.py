"""From a parsed configuration to the keyword arguments of each factory, written once per factory.

``train.py`` and ``validate.py`` call these instead of relaying options by hand (the optimizer, scheduler and loss
factories keep their own ``optimizer_kwargs``/``scheduler_kwargs``/``loss_kwargs`` next to them).
"""

from typing import Any, Dict, Optional

from ..data import dataset_info, resolve_data_config
from ..errors import ConfigError

__all__ = [
    "resolve_num_classes",
    "model_kwargs",
    "dataset_kwargs",
    "transforms_kwargs",
    "loader_kwargs",
    "train_step_kwargs",
]

# Upstream MindCV's defaults: an image folder is read from the current directory (its <split>/<class>/ folders), and
# only ImageNet-style training gets colour jitter 0.4 (upstream's CIFAR pipeline has none).
_DEFAULT_DATA_DIRS = {"imagenet": "."}
_DEFAULT_COLOR_JITTER = {"imagenet": 0.4}


def resolve_num_classes(cfg: Any, is_training: bool = True) -> int:
    """The class count of the run: the dataset's, which ``--num_classes`` (when given) must equal.

    Raises:
        ConfigError: ``--num_classes`` differs from the dataset's class count.
        DatasetError: The dataset folder or split is missing (image folders are listed, not read).
    """
    kw = dataset_kwargs(cfg, is_training)
    info = dataset_info(kw["name"], root=kw["root"], split=kw["split"])
    if cfg.num_classes is not None and cfg.num_classes != info.num_classes:
        raise ConfigError(
            f"--num_classes={cfg.num_classes} but {info.name} ({kw['split']}) has {info.num_classes} classes; set "
            f"--num_classes {info.num_classes} or leave it out (it defaults to the dataset's count)"
        )
    return info.num_classes


def model_kwargs(cfg: Any, num_classes: int, load_weights: bool = True) -> Dict[str, Any]:
    """Keyword arguments of :func:`mindcv.models.create_model` (None values keep the model's defaults).

    Args:
        cfg: Parsed configuration.
        num_classes: Resolved class count (``cfg.num_classes`` or the dataset's).
        load_weights: Honour ``--pretrained``/``--ckpt_path``; False when the weights come from elsewhere
            (a resumed training checkpoint, or EMA weights loaded separately).
    """
    return dict(
        model_name=cfg.model,
        num_classes=num_classes,
        pretrained=bool(cfg.pretrained) and load_weights,
        in_channels=cfg.in_channels,
        checkpoint_path=(cfg.ckpt_path or "") if load_weights else "",
        drop_rate=cfg.drop_rate,
        drop_path_rate=cfg.drop_path_rate,
        zero_init_last=cfg.zero_init_last,
        frozen_stages=cfg.frozen_stages,
    )


def dataset_kwargs(
    cfg: Any, is_training: bool, rank: int = 0, group_size: int = 1, shuffle: Optional[bool] = None
) -> Dict[str, Any]:
    """Keyword arguments of :func:`mindcv.data.create_dataset` for the training or the evaluation split.

    Args:
        cfg: Parsed configuration.
        is_training: Training split (shuffled, ``num_samples``) or evaluation split (``val_num_samples``).
        rank: This process's rank; with ``group_size > 1`` the split is sharded.
        group_size: Number of data-parallel processes.
        shuffle: Override the shuffling (default: ``--shuffle`` for training, ``--eval_shuffle`` for evaluation).
    """
    name = cfg.dataset.lower()
    sharded = group_size > 1
    return dict(
        name=name,
        root=cfg.data_dir if cfg.data_dir else _DEFAULT_DATA_DIRS.get(name),
        split=cfg.train_split if is_training else cfg.val_split,
        shuffle=(cfg.shuffle if is_training else cfg.eval_shuffle) if shuffle is None else shuffle,
        num_samples=cfg.num_samples if is_training else cfg.val_num_samples,
        num_shards=group_size if sharded else None,
        shard_id=rank if sharded else None,
        num_parallel_workers=cfg.num_parallel_workers,
        download=cfg.dataset_download,
        image_check=cfg.image_check,
        skip_bad_images=cfg.skip_bad_images,
        **({"num_aug_repeats": cfg.aug_repeats} if is_training and cfg.aug_repeats > 1 else {}),
    )


def transforms_kwargs(cfg: Any, is_training: bool, pretrained_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Keyword arguments of :func:`mindcv.data.create_transforms`.

    The size, interpolation, normalisation and crop come from :func:`mindcv.data.resolve_data_config` (the one
    resolver that validation and inference share), so a checkpoint is evaluated with the preprocessing it was
    trained with.

    Args:
        cfg: Parsed configuration.
        is_training: Random augmentation (training) or deterministic (evaluation) transforms.
        pretrained_cfg: ``mindcv.models.get_pretrained_cfg(cfg.model)``.
    """
    data_config = resolve_data_config(
        pretrained_cfg,
        dataset_name=cfg.dataset,
        image_size=cfg.image_resize or None,
        crop_pct=cfg.crop_pct,
        interpolation=cfg.interpolation,
        mean=cfg.mean,
        std=cfg.std,
    )
    out: Dict[str, Any] = dict(
        dataset_name=cfg.dataset.lower(),
        image_resize=data_config["image_size"],
        is_training=is_training,
        interpolation=data_config["interpolation"],
        mean=data_config["mean"],
        std=data_config["std"],
        crop_pct=data_config["crop_pct"],
    )
    if is_training:
        jitter = cfg.color_jitter
        if jitter is None:
            jitter = _DEFAULT_COLOR_JITTER.get(cfg.dataset.lower())
        elif len(jitter) == 1:
            jitter = jitter[0]
        out.update(
            scale=tuple(cfg.scale),
            ratio=tuple(cfg.ratio),
            hflip=cfg.hflip,
            vflip=cfg.vflip,
            color_jitter=jitter,
            auto_augment=cfg.auto_augment,
            re_prob=cfg.re_prob,
            re_scale=tuple(cfg.re_scale),
            re_ratio=tuple(cfg.re_ratio),
            re_value=_erase_value(cfg.re_value),
            re_max_attempts=cfg.re_max_attempts,
        )
        if cfg.aug_splits > 0:
            out["separate"] = True
    return out


def _erase_value(text: str) -> Any:
    """``--re_value``: ``random``, one value or ``r,g,b`` (as create_transforms takes it)."""
    text = str(text).strip()
    if text.lower() == "random":
        return "random"
    try:
        values = [int(float(v)) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--re_value {text!r}: give a value 0-255, three values r,g,b, or random") from None
    return values[0] if len(values) == 1 else values


def loader_kwargs(cfg: Any, is_training: bool, num_classes: int, start_epoch: int = 0) -> Dict[str, Any]:
    """Keyword arguments of :func:`mindcv.data.create_loader` (without the dataset and transform).

    Evaluation never drops the last batch, so every sample is counted.
    """
    out: Dict[str, Any] = dict(
        batch_size=cfg.batch_size,
        drop_remainder=bool(cfg.drop_remainder) if is_training else False,
        is_training=is_training,
        num_classes=num_classes,
        num_parallel_workers=cfg.num_parallel_workers,
    )
    if is_training:
        out.update(
            mixup=cfg.mixup,
            cutmix=cfg.cutmix,
            cutmix_prob=cfg.cutmix_prob,
            mixup_off_epoch=cfg.mixup_off_epoch,
            start_epoch=start_epoch,
        )
        if cfg.aug_splits > 0:
            out["separate"] = True
    return out


def train_step_kwargs(cfg: Any) -> Dict[str, Any]:
    """Keyword arguments of :class:`mindcv.engine.train_step.TrainStep` besides network, loss, optimizer, EMA."""
    return dict(
        amp_level=cfg.amp_level,
        loss_scale_type=cfg.loss_scale_type,
        loss_scale=cfg.loss_scale,
        clip_grad=cfg.clip_grad,
        clip_value=cfg.clip_value,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        distribute=cfg.distribute,
        amp_cast_list=cfg.amp_cast_list,
        # Upstream: a dynamic loss scale always drops overflowing updates, a fixed one only when asked to.
        skip_nonfinite=bool(cfg.drop_overflow_update) or cfg.loss_scale_type != "fixed",
    )
