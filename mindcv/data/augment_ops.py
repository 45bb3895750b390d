"""Single image augmentations at a magnitude level, as MindSpore C++ vision ops (HWC uint8 in and out).

The level scale and the rules from a level to an op's argument are timm's (``timm/data/auto_augment.py``), the
convention upstream MindCV's ``autoaugr``, ``3a`` and ``augmix`` policies are written in: a level runs from 0
to ``LEVEL_MAX`` (10) and

* ``Rotate``: up to 30 degrees; ``ShearX``/``ShearY``: up to a shear factor of 0.3; ``TranslateX``/``TranslateY``:
  up to ``translate_pct`` of the image side; each with a random sign;
* ``Color``, ``Contrast``, ``Brightness``, ``Sharpness``: enhancement factor ``0.1 + 1.8 * level / 10`` (1 is the
  identity, so severity is not monotonic in the level); their ``...Increasing`` forms: ``1 +- 0.9 * level / 10``
  (random sign, at least 0.1), stronger with the level;
* ``PosterizeOriginal``: keep ``4 + int(4 * level / 10)`` bits (the AutoAugment paper's scale, weaker with the
  level); ``PosterizeIncreasing``: keep ``4 - int(4 * level / 10)`` bits (stronger with the level);
* ``Solarize``: invert the pixels at or above ``int(256 * level / 10)`` (weaker with the level);
  ``SolarizeIncreasing``: at or above ``256 - int(256 * level / 10)``;
* ``Desaturate``: blend ``0.5 + 0.5 * level / 10`` of the way to grey; ``GaussianBlurRand``: a Gaussian blur with a
  sigma drawn uniformly from ``[0.1, 2 * level / 10]`` (DeiT III's 3-Augment uses both at level 10);
* ``AutoContrast``, ``Equalize``, ``Invert``: no argument.

An op at a level is a list of C++ ops that are equally likely (the two signs of a rotation, a set of blur sigmas;
one op for the rest). Magnitude noise (timm's ``mstd``) draws the level per image; MindSpore's ops take fixed
arguments, so the op at a noisy level is the concatenation of the lists at ``NOISE_QUANTILES`` evenly spaced
quantiles of the level's distribution: a uniform ``RandomChoice`` over it then draws the argument from that
distribution, rounded to the quantiles, and stays in C++.
"""

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import mindspore as ms
from mindspore.dataset import transforms, vision
from mindspore.dataset.vision import Inter

from ..errors import ConfigError

__all__ = ["LEVEL_MAX", "NOISE_QUANTILES", "OpParams", "noisy_levels", "op_variants", "random_op", "list_ops"]

LEVEL_MAX = 10.0
NOISE_QUANTILES = 16
# timm's magnitude std above which the level is drawn uniformly from [0, level] instead of a normal.
UNIFORM_STD = 100.0
_BLUR_SIGMAS = 8
_BLUR_SIGMA_MIN, _BLUR_SIGMA_MAX = 0.1, 2.0


@dataclass(frozen=True)
class OpParams:
    """What the geometric ops need besides the level.

    Attributes:
        interpolation: Resampling of rotations, shears and translations.
        fill: RGB fill (0-255) of the areas they uncover.
        translate_pct: Translation at ``LEVEL_MAX``, as a fraction of the image side.
    """

    interpolation: Inter = Inter.BILINEAR
    fill: Tuple[int, int, int] = (128, 128, 128)
    translate_pct: float = 0.45


def _identity() -> Callable:
    # A C++ no-op on uint8 images: MindSpore has no identity vision op, and Solarize(256) is out of its range.
    return transforms.TypeCast(ms.uint8)


def _signed(value: float) -> List[float]:
    # Always two entries, also for 0, so that every level of an op weighs the same in a noisy RandomChoice.
    return [value, -value]


def _affine(p: OpParams, translate=(0.0, 0.0), shear=(0.0, 0.0)) -> Callable:
    return vision.Affine(
        degrees=0.0,
        translate=[float(translate[0]), float(translate[1])],
        scale=1.0,
        shear=[float(shear[0]), float(shear[1])],
        resample=p.interpolation,
        fill_value=p.fill,
    )


def _shear_degrees(level: float) -> float:
    # timm's shear factor is the off-diagonal of the affine matrix; MindSpore takes the angle.
    return math.degrees(math.atan(level / LEVEL_MAX * 0.3))


def _enhance(level: float) -> List[float]:
    return [level / LEVEL_MAX * 1.8 + 0.1]


def _enhance_increasing(level: float) -> List[float]:
    return [max(0.1, 1.0 + v) for v in _signed(level / LEVEL_MAX * 0.9)]


def _solarize(threshold: int) -> Callable:
    return _identity() if threshold > 255 else vision.Solarize(float(threshold))


def _blur(sigma: float) -> Callable:
    # An odd kernel covering +-3 sigma, so the blur is not truncated.
    return vision.GaussianBlur(kernel_size=2 * math.ceil(3 * sigma) + 1, sigma=sigma)


def _blur_sigmas(level: float) -> List[float]:
    top = _BLUR_SIGMA_MAX * min(1.0, level / LEVEL_MAX)
    return [_BLUR_SIGMA_MIN + (top - _BLUR_SIGMA_MIN) * (i + 0.5) / _BLUR_SIGMAS for i in range(_BLUR_SIGMAS)]


def _bits(level: float) -> int:
    return int(level / LEVEL_MAX * 4)


_Builder = Callable[[float, OpParams], List[Callable]]

_OPS: Dict[str, _Builder] = {
    "AutoContrast": lambda level, p: [vision.AutoContrast()],
    "Equalize": lambda level, p: [vision.Equalize()],
    "Invert": lambda level, p: [vision.Invert()],
    "Rotate": lambda level, p: [
        vision.Rotate(d, resample=p.interpolation, fill_value=p.fill) for d in _signed(level / LEVEL_MAX * 30.0)
    ],
    "ShearX": lambda level, p: [_affine(p, shear=(d, 0.0)) for d in _signed(_shear_degrees(level))],
    "ShearY": lambda level, p: [_affine(p, shear=(0.0, d)) for d in _signed(_shear_degrees(level))],
    "TranslateX": lambda level, p: [
        _affine(p, translate=(t, 0.0)) for t in _signed(level / LEVEL_MAX * p.translate_pct)
    ],
    "TranslateY": lambda level, p: [
        _affine(p, translate=(0.0, t)) for t in _signed(level / LEVEL_MAX * p.translate_pct)
    ],
    "Color": lambda level, p: [vision.AdjustSaturation(f) for f in _enhance(level)],
    "ColorIncreasing": lambda level, p: [vision.AdjustSaturation(f) for f in _enhance_increasing(level)],
    "Contrast": lambda level, p: [vision.AdjustContrast(f) for f in _enhance(level)],
    "ContrastIncreasing": lambda level, p: [vision.AdjustContrast(f) for f in _enhance_increasing(level)],
    "Brightness": lambda level, p: [vision.AdjustBrightness(f) for f in _enhance(level)],
    "BrightnessIncreasing": lambda level, p: [vision.AdjustBrightness(f) for f in _enhance_increasing(level)],
    "Sharpness": lambda level, p: [vision.AdjustSharpness(f) for f in _enhance(level)],
    "SharpnessIncreasing": lambda level, p: [vision.AdjustSharpness(f) for f in _enhance_increasing(level)],
    "PosterizeOriginal": lambda level, p: [vision.Posterize(4 + _bits(level))],
    "PosterizeIncreasing": lambda level, p: [vision.Posterize(4 - _bits(level))],
    "Solarize": lambda level, p: [_solarize(int(level / LEVEL_MAX * 256))],
    "SolarizeIncreasing": lambda level, p: [_solarize(256 - int(level / LEVEL_MAX * 256))],
    "Desaturate": lambda level, p: [vision.AdjustSaturation(1.0 - (0.5 + 0.5 * min(1.0, level / LEVEL_MAX)))],
    "GaussianBlurRand": lambda level, p: [_blur(s) for s in _blur_sigmas(level)],
}


def list_ops() -> List[str]:
    """Names of the single ops, sorted."""
    return sorted(_OPS)


def noisy_levels(level: float, std: float, upper: float = LEVEL_MAX) -> List[float]:
    """The levels an op is drawn at: ``[level]`` without noise, else ``NOISE_QUANTILES`` quantiles.

    Args:
        level: The policy's level.
        std: Standard deviation of the level's normal noise; 0: none; above ``UNIFORM_STD`` (or infinite): the
            level is uniform on ``[0, level]`` (timm's convention, AugMix's severity).
        upper: Levels are clipped to ``[0, upper]``.
    """
    if std == 0:
        return [level]
    if std > UNIFORM_STD:
        return [level * (i + 0.5) / NOISE_QUANTILES for i in range(NOISE_QUANTILES)]
    normal = statistics.NormalDist(level, std)
    return [min(upper, max(0.0, normal.inv_cdf((i + 0.5) / NOISE_QUANTILES))) for i in range(NOISE_QUANTILES)]


def op_variants(name: str, level: float, params: OpParams) -> List[Callable]:
    """The equally likely C++ ops that make up op ``name`` at ``level`` (see the module docstring).

    Raises:
        ConfigError: Unknown op name.
    """
    if name not in _OPS:
        raise ConfigError(f"unknown augmentation op {name!r}; known ops: {', '.join(list_ops())}")
    return _OPS[name](float(level), params)


def random_op(name: str, level: float, std: float, params: OpParams) -> Callable:
    """One C++ op applying ``name`` at ``level`` with magnitude noise ``std`` (see :func:`noisy_levels`)."""
    variants = [op for lv in noisy_levels(level, std) for op in op_variants(name, lv, params)]
    return variants[0] if len(variants) == 1 else transforms.RandomChoice(variants)
