"""``create_transforms``: the image transform list of a dataset, built from MindSpore's C++ vision ops.

Two families, chosen by the dataset name:

* ImageNet-style (``imagenet``: encoded image files). Training: decode + RandomResizedCrop (one fused
  C++ op) -> flips -> AutoAugment/RandAugment/TrivialAugmentWide, or else colour jitter ->
  normalise -> HWC to CHW -> random erasing. Evaluation: decode -> resize the shorter side to
  ``image_resize / crop_pct`` -> centre crop ``image_resize`` -> normalise -> CHW.
* Small decoded datasets (``cifar10``, ``cifar100``, ``digits``: 32x32 uint8 arrays). Training: pad by
  4 and random-crop 32 -> optional resize to ``image_resize`` (e.g. 224 to fine-tune an ImageNet model)
  -> the same flip / augment / normalise / erase tail. Evaluation: optional resize -> normalise -> CHW.

``mean``, ``std``, ``interpolation`` and ``crop_pct`` default to the dataset's own statistics,
``"bilinear"`` and 0.875; a training script passes a model's pretrained config values to override them.

``separate=True`` (training) returns the list cut into three parts, ``(primary, secondary, final)``: the
crop and flips, the augmentation (auto-augment or colour jitter), and normalisation, CHW and erasing.
``create_loader(..., separate=True)`` runs the primary part once per image, the secondary part on two
copies, the final part on all three, and concatenates the clean and the two augmented batches (AugMix's
split training, e.g. with the ``jsd`` loss).
"""

import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from mindspore.dataset import vision
from mindspore.dataset.vision import Inter

from ..errors import ConfigError, UnknownNameError
from .auto_augment import auto_augment_ops
from .constants import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DEFAULT_CROP_PCT,
    DEFAULT_INTERPOLATION,
    DIGITS_MEAN,
    DIGITS_STD,
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
)

__all__ = ["create_transforms", "resolve_data_config", "eval_resize_size", "INTERPOLATIONS", "SplitTransforms"]

INTERPOLATIONS: Dict[str, Inter] = {
    "nearest": Inter.NEAREST,
    "bilinear": Inter.BILINEAR,
    "bicubic": Inter.BICUBIC,
    "area": Inter.AREA,
}

Stats = Sequence[float]
Size = Union[int, Sequence[int]]
# (primary, secondary, final) parts of a training pipeline, from create_transforms(..., separate=True).
SplitTransforms = Tuple[List[Callable], List[Callable], List[Callable]]


class _Family:
    """Per-dataset defaults: normalisation statistics, native size of decoded data, default hflip."""

    def __init__(self, mean: Stats, std: Stats, native_size: Optional[int], hflip: float) -> None:
        self.mean, self.std, self.native_size, self.hflip = mean, std, native_size, hflip


_FAMILIES: Dict[str, _Family] = {
    "imagenet": _Family(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, native_size=None, hflip=0.5),
    "cifar10": _Family(CIFAR10_MEAN, CIFAR10_STD, native_size=32, hflip=0.5),
    "cifar100": _Family(CIFAR100_MEAN, CIFAR100_STD, native_size=32, hflip=0.5),
    # A mirrored 2, 3, 4, 7 or 9 is not a digit: no flip unless asked for.
    "digits": _Family(DIGITS_MEAN, DIGITS_STD, native_size=32, hflip=0.0),
}
# Pad-and-crop shift for the 32x32 datasets: 4 px, as in the ResNet paper's CIFAR recipe.
_SMALL_PAD = 4


def _size(image_resize: Size) -> Union[int, Tuple[int, int]]:
    if isinstance(image_resize, bool):
        raise ConfigError(f"image_resize={image_resize!r} must be a positive integer or an (height, width) pair")
    if isinstance(image_resize, int):
        if image_resize < 1:
            raise ConfigError(f"image_resize={image_resize} must be positive")
        return image_resize
    if (
        isinstance(image_resize, Sequence)
        and len(image_resize) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in image_resize)
    ):
        h, w = image_resize
        return h if h == w else (h, w)
    raise ConfigError(f"image_resize={image_resize!r} must be a positive integer or an (height, width) pair")


def _interpolation(name: Optional[str]) -> Inter:
    name = DEFAULT_INTERPOLATION if name is None else name
    if not isinstance(name, str) or name.lower() not in INTERPOLATIONS:
        raise ConfigError(f"interpolation={name!r} is not one of {list(INTERPOLATIONS)}")
    return INTERPOLATIONS[name.lower()]


def _stats(name: str, value: Optional[Stats], default: Stats) -> Tuple[float, float, float]:
    value = default if value is None else value
    if not isinstance(value, Sequence) or len(value) != 3 or isinstance(value, str):
        raise ConfigError(f"{name}={value!r} must hold 3 numbers (R, G, B) in 0-1 units, e.g. (0.485, 0.456, 0.406)")
    out = tuple(float(v) for v in value)
    if max(out) > 1.0:
        raise ConfigError(f"{name}={value!r} looks like 0-255 units; give it in 0-1 units, e.g. (0.485, 0.456, 0.406)")
    if name == "std" and min(out) <= 0:
        raise ConfigError(f"std={value!r} must be positive")
    return out  # type: ignore[return-value]


def _probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name}={value!r} must be a probability in [0, 1]")
    return float(value)


def _range(name: str, value: Sequence[float], upper: Optional[float] = None) -> Tuple[float, float]:
    if not isinstance(value, Sequence) or len(value) != 2 or isinstance(value, str):
        raise ConfigError(f"{name}={value!r} must be a (min, max) pair")
    lo, hi = float(value[0]), float(value[1])
    if not 0 < lo <= hi or (upper is not None and hi > upper):
        bound = f" <= {upper:g}" if upper is not None else ""
        raise ConfigError(f"{name}={value!r} must satisfy 0 < min <= max{bound}")
    return lo, hi


def _color_jitter(value: Union[float, Sequence[float]]) -> Optional[Callable]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        factors: Tuple[float, ...] = (float(value),) * 3
    elif isinstance(value, Sequence) and len(value) in (3, 4) and not isinstance(value, str):
        factors = tuple(float(v) for v in value)
    else:
        raise ConfigError(
            f"color_jitter={value!r} must be a number or (brightness, contrast, saturation[, hue]) factors"
        )
    if min(factors) < 0 or (len(factors) == 4 and factors[3] > 0.5):
        raise ConfigError(f"color_jitter={value!r}: factors must be >= 0 and hue <= 0.5")
    if not any(factors):
        return None
    brightness, contrast, saturation = [(max(0.0, 1 - f), 1 + f) for f in factors[:3]]
    hue = (-factors[3], factors[3]) if len(factors) == 4 else (0.0, 0.0)
    return vision.RandomColorAdjust(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)


def _erase_value(value: Union[int, str, Sequence[int]]) -> Union[int, str, Tuple[int, ...]]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if value == "random":
        return value
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    raise ConfigError(f"re_value={value!r} must be an integer, 3 integers (R, G, B) or 'random' (normal noise)")


def _crop_pct(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"crop_pct={value!r} must lie in (0, 1], e.g. 0.875 (1.0: no crop)")
    return float(value)


def eval_resize_size(image_size: Size, crop_pct: float) -> Size:
    """The shorter-side resize before evaluation's centre crop of ``image_size``: ``floor(size / crop_pct)``."""
    if isinstance(image_size, int):
        return int(math.floor(image_size / crop_pct))
    return tuple(int(math.floor(v / crop_pct)) for v in image_size)


def resolve_data_config(
    pretrained_cfg: Mapping[str, Any],
    dataset_name: str = "imagenet",
    image_size: Optional[Size] = None,
    crop_pct: Optional[float] = None,
    interpolation: Optional[str] = None,
    mean: Optional[Stats] = None,
    std: Optional[Stats] = None,
) -> Dict[str, Any]:
    """The evaluation preprocessing of a model on a dataset, every value resolved and checked.

    The one place where validation, inference and export decide how an image is prepared. A given value wins;
    otherwise image-file datasets (``imagenet``) take the model's pretrained config, so a checkpoint is evaluated
    as it was trained, and the 32x32 decoded datasets their own statistics. The size defaults to the model's.

    Args:
        pretrained_cfg: The model's ``pretrained_cfg`` (``input_size``, ``crop_pct``, ``interpolation``, ``mean``,
            ``std``).
        dataset_name: A name from ``list_datasets()``.
        image_size: Output size, an int or a (height, width) pair.
        crop_pct: Centre-crop fraction in (0, 1].
        interpolation: ``nearest``, ``bilinear``, ``bicubic`` or ``area``.
        mean: RGB mean in 0-1 units.
        std: RGB std in 0-1 units.

    Returns:
        ``{"image_size", "crop_pct", "interpolation", "mean", "std"}``.

    Raises:
        UnknownNameError: Unknown dataset name.
        ConfigError: An invalid value, one line naming it.
    """
    family = _family(dataset_name)
    from_model = family.native_size is None

    def pick(value: Any, key: str, default: Any) -> Any:
        if value is not None:
            return value
        return pretrained_cfg.get(key, default) if from_model else default

    size = image_size if image_size is not None else int(pretrained_cfg.get("input_size", (3, 224, 224))[-1])
    inter = pick(interpolation, "interpolation", DEFAULT_INTERPOLATION)
    _interpolation(inter)
    return {
        "image_size": _size(size),
        "crop_pct": _crop_pct(pick(crop_pct, "crop_pct", DEFAULT_CROP_PCT)),
        "interpolation": inter.lower(),
        "mean": _stats("mean", pick(mean, "mean", family.mean), family.mean),
        "std": _stats("std", pick(std, "std", family.std), family.std),
    }


def _family(dataset_name: str) -> _Family:
    key = dataset_name.lower() if isinstance(dataset_name, str) else dataset_name
    if key == "":  # upstream MindCV's name for a custom image folder
        key = "imagenet"
    if key not in _FAMILIES:
        raise UnknownNameError(
            f"create_transforms: unknown dataset {dataset_name!r}; known datasets: {', '.join(sorted(_FAMILIES))}"
        )
    return _FAMILIES[key]


def create_transforms(
    dataset_name: str = "",
    image_resize: Size = 224,
    is_training: bool = False,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
    hflip: Optional[float] = None,
    vflip: float = 0.0,
    color_jitter: Optional[Union[float, Sequence[float]]] = None,
    auto_augment: Optional[str] = None,
    re_prob: float = 0.0,
    re_scale: Sequence[float] = (0.02, 0.33),
    re_ratio: Sequence[float] = (0.3, 3.3),
    re_value: Union[int, str, Sequence[int]] = 0,
    re_max_attempts: int = 10,
    interpolation: Optional[str] = None,
    mean: Optional[Stats] = None,
    std: Optional[Stats] = None,
    crop_pct: Optional[float] = None,
    separate: bool = False,
) -> Union[List[Callable], SplitTransforms]:
    """Return the list of vision ops to ``map`` over the ``image`` column of a dataset.

    The output image is float32, CHW, ``image_resize`` square (or the given height and width),
    normalised with ``mean``/``std``.

    Args:
        dataset_name: A name from ``list_datasets()``; selects the family and the defaults. ``""`` (upstream
            MindCV's custom dataset) takes the ImageNet-style transforms.
        image_resize: Output size, an int or a (height, width) pair.
        is_training: Training (random augmentation) or evaluation (deterministic) transforms.
        scale: ImageNet-style training: area fraction range of RandomResizedCrop.
        ratio: ImageNet-style training: aspect ratio range of RandomResizedCrop.
        hflip: Horizontal flip probability; None: 0.5, or 0 for ``digits`` (mirrored digits are not digits).
        vflip: Vertical flip probability.
        color_jitter: Brightness/contrast/saturation factor, or 3-4 factors (the 4th is hue, <= 0.5);
            ignored when ``auto_augment`` is set (as in timm). None or 0: no jitter.
        auto_augment: ``"randaug-m9-n2-mstd0.5"``, ``"autoaug"``, ``"autoaugr"``, ``"3a"``, ``"augmix-m3-w3"`` or
            ``"trivialaugwide"`` (see ``mindcv.data.auto_augment``); None: none.
        re_prob: Random erasing probability (applied after normalisation, on CHW).
        re_scale: Random erasing area fraction range.
        re_ratio: Random erasing aspect ratio range.
        re_value: Random erasing fill: an int, 3 ints, or ``"random"`` for normal noise.
        re_max_attempts: Random erasing attempts to find a box that fits.
        interpolation: ``"nearest"``, ``"bilinear"`` (default), ``"bicubic"`` or ``"area"``.
        mean: RGB mean in 0-1 units; None: the dataset's own (ImageNet's for image folders).
        std: RGB std in 0-1 units; None: the dataset's own.
        crop_pct: ImageNet-style evaluation: centre-crop fraction; None: 0.875.
        separate: Training: return ``(primary, secondary, final)`` lists for ``create_loader(...,
            separate=True)`` (see the module docstring). Evaluation has nothing to split and ignores it.

    Returns:
        A list of callables for ``Dataset.map(operations=..., input_columns="image")``, or with
        ``separate=True`` in training the three lists whose concatenation is that list.

    Raises:
        UnknownNameError: Unknown dataset name.
        ConfigError: An invalid option value, one line naming it.
    """
    family = _family(dataset_name)
    if not isinstance(separate, bool):
        raise ConfigError(f"separate={separate!r} must be True or False")
    size = _size(image_resize)
    inter = _interpolation(interpolation)
    mean_ = _stats("mean", mean, family.mean)
    std_ = _stats("std", std, family.std)
    normalize = [
        vision.Normalize(mean=[m * 255 for m in mean_], std=[s * 255 for s in std_]),
        vision.HWC2CHW(),
    ]
    resize_small = [] if size == family.native_size else [vision.Resize(size, interpolation=inter)]

    if not is_training:
        if family.native_size is not None:
            return resize_small + normalize
        resize = eval_resize_size(size, _crop_pct(DEFAULT_CROP_PCT if crop_pct is None else crop_pct))
        return [vision.Decode(), vision.Resize(resize, interpolation=inter), vision.CenterCrop(size)] + normalize

    primary: List[Callable] = []
    if family.native_size is None:
        primary.append(
            vision.RandomCropDecodeResize(
                size, scale=_range("scale", scale, upper=1.0), ratio=_range("ratio", ratio), interpolation=inter
            )
        )
    else:
        primary.append(vision.RandomCrop(family.native_size, padding=_SMALL_PAD))
        primary.extend(resize_small)
    hflip_p = _probability("hflip", family.hflip if hflip is None else hflip)
    vflip_p = _probability("vflip", vflip)
    if hflip_p > 0:
        primary.append(vision.RandomHorizontalFlip(prob=hflip_p))
    if vflip_p > 0:
        primary.append(vision.RandomVerticalFlip(prob=vflip_p))
    secondary: List[Callable] = []
    if auto_augment:
        # Uncovered areas are filled with the mean colour, so they vanish after normalisation.
        secondary.extend(auto_augment_ops(auto_augment, inter, [round(m * 255) for m in mean_]))
    elif color_jitter is not None:
        jitter = _color_jitter(color_jitter)
        if jitter is not None:
            secondary.append(jitter)
    final = list(normalize)
    if _probability("re_prob", re_prob) > 0:
        if isinstance(re_max_attempts, bool) or not isinstance(re_max_attempts, int) or re_max_attempts < 1:
            raise ConfigError(f"re_max_attempts={re_max_attempts!r} must be a positive integer")
        final.append(
            vision.RandomErasing(
                prob=re_prob,
                scale=_range("re_scale", re_scale, upper=1.0),
                ratio=_range("re_ratio", re_ratio),
                value=_erase_value(re_value),
                max_attempts=re_max_attempts,
            )
        )
    if separate:
        return primary, secondary, final
    return primary + secondary + final
