"""Parse ``auto_augment`` strings into augmentation ops that run on HWC uint8 images.

Accepted strings (timm's spelling of the options, upstream MindCV's policy names):

* ``randaug-m9-n2-mstd0.5``: RandAugment with ``n`` ops (default 2) of magnitude ``m`` (default 9) out
  of ``mmax`` (default 10), with Gaussian magnitude noise of std ``mstd`` (default 0; above 100: uniform
  on ``[0, m]``). ``inc1`` is accepted: MindSpore's ops already grow stronger with the magnitude (timm's
  "increasing" variants).
* ``autoaug``: AutoAugment with the ImageNet policy; ``autoaug-cifar10`` and ``autoaug-svhn`` pick
  the policies found on those datasets. ``autoaug-mstd0.5`` adds magnitude noise to the ImageNet policy.
* ``autoaugr``: AutoAugment's ImageNet policy with the "research" posterize of timm and upstream MindCV, which
  keeps fewer bits at higher levels (so it grows stronger with the level, unlike the paper's); ``-mstd<x>``
  adds magnitude noise.
* ``3a``: DeiT III's 3-Augment: per image one of solarize (threshold 128), greyscale or a Gaussian blur
  (sigma uniform in [0.1, 2]); ``-mstd<x>`` adds magnitude noise.
* ``augmix-m3-w3-d0-a1``: AugMix with severity ``m`` (default 3, of 10), ``w`` mixed chains (default 3) of
  ``d`` ops each (default 0: 1 to 3 at random), Dirichlet/Beta parameter ``a`` (default 1).
* ``trivialaugwide``: TrivialAugment Wide.

Implementation: ``autoaug`` (without noise), ``randaug`` and ``trivialaugwide`` are MindSpore's fused C++ ops,
with MindSpore's (torchvision's) magnitude scale. ``autoaug`` with noise, ``autoaugr`` and ``3a`` are composed
from single C++ ops on timm's level scale (``mindcv.data.augment_ops``), so they also stay in C++. AugMix
mixes several augmented copies of an image, which no C++ op does; it is a Python callable that runs the same
single ops eagerly.

RandAugment's magnitude scale: timm's ``m9`` means 9/10 of each op's maximum. MindSpore's RandAugment divides
its range into ``num_magnitude_bins`` steps (31 by default, the torchvision scale), so the ops are built
with ``mmax + 1`` bins, which makes ``m`` mean ``m / mmax`` of the maximum as in timm.

RandAugment's magnitude noise: MindSpore's RandAugment has one fixed magnitude. With ``mstd > 0`` the
transform is a ``RandomChoice`` over RandAugment ops whose magnitudes are the 16 evenly spaced quantiles
of N(m, mstd), rounded and clipped to [0, mmax]: per image, the magnitude then follows the rounded
Gaussian, in C++. Unlike timm, the sampled magnitude is shared by the ``n`` ops of one image. In the composed
policies each op draws its own level, as in timm.

Defaults differ from upstream MindCV in two places, to keep one meaning per string: magnitude noise is off
unless ``mstd`` is given (upstream adds 0.5 to every ``randaug``/``autoaug*``/``3a``), and ``randaug`` means
``m9`` (upstream: ``m10``).
"""

import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

import mindspore.dataset as ds
from mindspore.dataset import transforms, vision
from mindspore.dataset.vision import AutoAugmentPolicy, Inter

from ..errors import ConfigError
from .augment_ops import LEVEL_MAX, OpParams, noisy_levels, op_variants, random_op

__all__ = ["auto_augment_ops", "parse_randaug", "AugMix", "IMAGENET_POLICY", "THREE_AUGMENT_POLICY"]

_POLICIES = {
    "imagenet": AutoAugmentPolicy.IMAGENET,
    "cifar10": AutoAugmentPolicy.CIFAR10,
    "svhn": AutoAugmentPolicy.SVHN,
}
_FORMS = (
    "randaug-m<int>[-n<int>][-mstd<float>][-mmax<int>][-inc1], autoaug[-cifar10|-svhn][-mstd<float>], "
    "autoaugr[-mstd<float>], 3a[-mstd<float>], augmix[-m<int>][-w<int>][-d<int>][-a<float>], trivialaugwide"
)
# AugMix translates by up to 30 % of the side at level 10 (the AugMix paper's and timm's setting).
_AUGMIX_TRANSLATE_PCT = 0.3

Step = Tuple[str, float, float]  # (op name, probability, level on the 0-10 scale)

# AutoAugment's ImageNet policy (Cubuk et al., "AutoAugment", CVPR 2019, appendix): 25 sub-policies of two
# steps; one sub-policy is picked per image. "Posterize" is filled in as the paper's or the research form.
# fmt: off
IMAGENET_POLICY: Tuple[Tuple[Step, ...], ...] = (
    (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),       (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),      (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),      (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)),      (("Posterize", 0.8, 5), ("Equalize", 1.0, 2)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),        (("Equalize", 0.6, 8), ("Posterize", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)),           (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
    (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)),      (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),         (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)),         (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)),        (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),      (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
)
# fmt: on

# DeiT III's 3-Augment (Touvron et al., "DeiT III: Revenge of the ViT", 2022): one of three, always applied.
# Solarize at level 5 is threshold 128; Desaturate at level 10 is full greyscale.
THREE_AUGMENT_POLICY: Tuple[Tuple[Step, ...], ...] = (
    (("Solarize", 1.0, 5),),
    (("Desaturate", 1.0, 10),),
    (("GaussianBlurRand", 1.0, 10),),
)

# AugMix's ops (Hendrycks et al., ICLR 2020) with timm's additions (the four enhancements), all in their
# "increasing" forms so that the severity grows with the level.
# fmt: off
_AUGMIX_OPS = (
    "AutoContrast", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing",
    "Equalize", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "ShearX", "ShearY", "TranslateX",
    "TranslateY",
)
# fmt: on


def _bad(spec: str, why: str) -> ConfigError:
    return ConfigError(f"auto_augment={spec!r}: {why}; accepted forms: {_FORMS}")


def _options(spec: str, parts: Sequence[str], defaults: Dict[str, Union[int, float]]) -> Dict[str, Union[int, float]]:
    """Parse ``<key><number>`` parts; a value takes the type of its default (``m9`` int, ``mstd0.5`` float)."""
    options = dict(defaults)
    for part in parts:
        key = part.rstrip("0123456789.")
        value = part[len(key) :]
        if key not in options:
            raise _bad(spec, f"unknown option {key!r}")
        if not value:
            raise _bad(spec, f"option {part!r} has no value")
        try:
            options[key] = type(defaults[key])(value)
        except ValueError:
            raise _bad(spec, f"option {part!r} has a malformed value") from None
    return options


def _check_mstd(spec: str, mstd: float) -> float:
    if mstd < 0:
        raise _bad(spec, "mstd must be >= 0")
    return mstd


def parse_randaug(spec: str) -> Tuple[int, int, float, int]:
    """Return ``(magnitude, num_ops, magnitude_std, magnitude_max)`` of a ``randaug-...`` string.

    Raises:
        ConfigError: An unknown option, a malformed value, or a magnitude above ``mmax``.
    """
    options = _options(spec, spec.split("-")[1:], {"m": 9, "n": 2, "mstd": 0.0, "mmax": 10, "inc": 1})
    if options["inc"] != 1:
        raise _bad(spec, "MindSpore's RandAugment ops always grow with the magnitude; only inc1 exists")
    magnitude, num_ops, mstd, mmax = int(options["m"]), int(options["n"]), float(options["mstd"]), int(options["mmax"])
    if mmax < 1 or not 0 <= magnitude <= mmax:
        raise _bad(spec, f"the magnitude m{magnitude} must lie in 0..mmax ({mmax})")
    if num_ops < 1:
        raise _bad(spec, "n must be at least 1")
    return magnitude, num_ops, _check_mstd(spec, mstd), mmax


def _noisy_magnitudes(magnitude: int, mstd: float, mmax: int) -> List[int]:
    return [min(mmax, max(0, round(m))) for m in noisy_levels(magnitude, mstd, upper=mmax)]


def _composed_policy(
    policy: Sequence[Sequence[Step]], mstd: float, params: OpParams, posterize: str = "PosterizeOriginal"
) -> Callable:
    """One C++ op: a random sub-policy per image, each step applied with its probability at a (noisy) level."""
    subs = []
    for sub in policy:
        steps = []
        for name, prob, level in sub:
            if prob <= 0:  # the paper's policy holds an ("Equalize", 0.0, 7) step, which never runs
                continue
            op = random_op(posterize if name == "Posterize" else name, level, mstd, params)
            steps.append(op if prob >= 1 else transforms.RandomApply([op], prob=prob))
        subs.append(steps[0] if len(steps) == 1 else transforms.Compose(steps))
    return transforms.RandomChoice(subs)


class AugMix:
    """AugMix (Hendrycks et al., "AugMix", ICLR 2020) of one HWC uint8 image, as a Python callable.

    ``width`` chains of ``depth`` random ops (each at a level uniform in ``[0, severity]``) are applied to the
    image and mixed with Dirichlet(``alpha``) weights; the mix is then blended with the original image by a
    Beta(``alpha``, ``alpha``) weight. The ops are MindSpore's C++ ops, built once and run eagerly.

    Args:
        severity: Highest op level, 0 to 10.
        width: Number of chains mixed.
        depth: Ops per chain; 0 draws 1 to 3 per chain.
        alpha: Parameter of the Dirichlet and Beta distributions.
        params: Interpolation and fill of the geometric ops.
        seed: Seed of the random draws; None takes MindSpore's dataset seed. Worker processes (with
            ``python_multiprocessing``) each add their process id, so they do not repeat each other's draws.
    """

    def __init__(
        self,
        severity: int = 3,
        width: int = 3,
        depth: int = 0,
        alpha: float = 1.0,
        params: Optional[OpParams] = None,
        seed: Optional[int] = None,
    ) -> None:
        self.severity, self.width, self.depth, self.alpha = severity, width, depth, float(alpha)
        params = params or OpParams(translate_pct=_AUGMIX_TRANSLATE_PCT)
        # The level of an op is uniform on [0, severity]: its variants at the uniform quantiles.
        levels = noisy_levels(severity, float("inf"))
        self._ops = [[op for lv in levels for op in op_variants(name, lv, params)] for name in _AUGMIX_OPS]
        self.seed = ds.config.get_seed() if seed is None else int(seed)
        self._pid = os.getpid()
        self._rng = np.random.default_rng(self.seed)

    def _generator(self) -> np.random.Generator:
        if os.getpid() != self._pid:  # a worker process got a copy of the parent's state
            self._pid = os.getpid()
            self._rng = np.random.default_rng([self.seed, self._pid])
        return self._rng

    def __call__(self, image: np.ndarray) -> np.ndarray:
        rng = self._generator()
        weights = rng.dirichlet([self.alpha] * self.width).astype(np.float32)
        blend = np.float32(rng.beta(self.alpha, self.alpha))
        mixed = np.zeros(image.shape, dtype=np.float32)
        for weight in weights:
            chain = image
            for _ in range(self.depth if self.depth > 0 else int(rng.integers(1, 4))):
                variants = self._ops[int(rng.integers(len(self._ops)))]
                chain = variants[int(rng.integers(len(variants)))](chain)
            mixed += weight * chain.astype(np.float32)
        out = (1.0 - blend) * image.astype(np.float32) + blend * mixed
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def __repr__(self) -> str:
        return f"AugMix(severity={self.severity}, width={self.width}, depth={self.depth}, alpha={self.alpha})"


def _augmix(spec: str, parts: Sequence[str], params: OpParams) -> AugMix:
    options = _options(spec, parts, {"m": 3, "w": 3, "d": 0, "a": 1.0})
    severity, width, depth, alpha = int(options["m"]), int(options["w"]), int(options["d"]), float(options["a"])
    if not 0 <= severity <= LEVEL_MAX:
        raise _bad(spec, f"the severity m{severity} must lie in 0..{LEVEL_MAX:g}")
    if width < 1:
        raise _bad(spec, "w (the number of chains) must be at least 1")
    if alpha <= 0:
        raise _bad(spec, "a must be > 0")
    params = OpParams(interpolation=params.interpolation, fill=params.fill, translate_pct=_AUGMIX_TRANSLATE_PCT)
    return AugMix(severity, width, depth, alpha, params)


def auto_augment_ops(spec: str, interpolation: Inter, fill_value: Sequence[int]) -> List[Callable]:
    """Build the op(s) for an ``auto_augment`` string; they run on HWC uint8 images.

    Args:
        spec: See the module docstring.
        interpolation: Resampling of the geometric ops.
        fill_value: RGB fill of the areas that rotations and shifts uncover (the dataset mean in 0-255).

    Returns:
        A list with one op: a C++ op, or the Python :class:`AugMix`.

    Raises:
        ConfigError: An unknown or malformed string.
    """
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"auto_augment={spec!r} must be a non-empty string; accepted forms: {_FORMS}")
    fill = tuple(int(v) for v in fill_value)
    params = OpParams(interpolation=interpolation, fill=fill)  # type: ignore[arg-type]
    head, _, rest = spec.partition("-")
    parts = rest.split("-") if rest else []
    if head == "randaug":
        magnitude, num_ops, mstd, mmax = parse_randaug(spec)
        magnitudes = _noisy_magnitudes(magnitude, mstd, mmax)

        def rand_augment(m: int) -> Callable:
            return vision.RandAugment(
                num_ops=num_ops, magnitude=m, num_magnitude_bins=mmax + 1, interpolation=interpolation, fill_value=fill
            )

        if len(set(magnitudes)) == 1:
            return [rand_augment(magnitudes[0])]
        return [transforms.RandomChoice([rand_augment(m) for m in magnitudes])]
    if head == "autoaug":
        # A part without a number is a policy name (cifar10 has one, but is a name); the rest are options.
        names = [p for p in parts if p in _POLICIES or (p.rstrip("0123456789.") == p and p != "mstd")]
        if len(names) > 1:
            raise _bad(spec, f"name one AutoAugment policy, not {len(names)}")
        policy = names[0] if names else "imagenet"
        if policy not in _POLICIES:
            raise _bad(spec, f"unknown AutoAugment policy {policy!r} (known: {', '.join(_POLICIES)})")
        mstd = _check_mstd(spec, float(_options(spec, [p for p in parts if p not in names], {"mstd": 0.0})["mstd"]))
        if mstd == 0:
            return [vision.AutoAugment(policy=_POLICIES[policy], interpolation=interpolation, fill_value=fill)]
        if policy != "imagenet":
            raise _bad(spec, "magnitude noise (mstd) exists for the ImageNet policy only")
        return [_composed_policy(IMAGENET_POLICY, mstd, params)]
    if head in ("autoaugr", "3a"):
        mstd = _check_mstd(spec, float(_options(spec, parts, {"mstd": 0.0})["mstd"]))
        if head == "autoaugr":
            return [_composed_policy(IMAGENET_POLICY, mstd, params, posterize="PosterizeIncreasing")]
        return [_composed_policy(THREE_AUGMENT_POLICY, mstd, params)]
    if head == "augmix":
        return [_augmix(spec, parts, params)]
    if head == "trivialaugwide":
        if rest:
            raise _bad(spec, "trivialaugwide takes no options")
        return [vision.TrivialAugmentWide(interpolation=interpolation, fill_value=fill)]
    raise _bad(spec, f"unknown policy {head!r}")
