"""Parse ``auto_augment`` strings into MindSpore's C++ AutoAugment, RandAugment and TrivialAugmentWide ops.

Accepted strings (timm's spelling of the options, upstream MindCV's ``randaug`` prefix):

* ``randaug-m9-n2-mstd0.5``: RandAugment with ``n`` ops (default 2) of magnitude ``m`` (default 9) out
  of ``mmax`` (default 10), with Gaussian magnitude noise of std ``mstd`` (default 0). ``inc1`` is
  accepted: MindSpore's ops already grow stronger with the magnitude (timm's "increasing" variants).
* ``autoaug``: AutoAugment with the ImageNet policy; ``autoaug-cifar10`` and ``autoaug-svhn`` pick
  the policies found on those datasets.
* ``trivialaugwide``: TrivialAugment Wide.

Magnitude scale: timm's ``m9`` means 9/10 of each op's maximum. MindSpore's RandAugment divides its
range into ``num_magnitude_bins`` steps (31 by default, the torchvision scale), so the ops are built
with ``mmax + 1`` bins, which makes ``m`` mean ``m / mmax`` of the maximum as in timm.

Magnitude noise: MindSpore's RandAugment has one fixed magnitude. With ``mstd > 0`` the transform is a
``RandomChoice`` over RandAugment ops whose magnitudes are the 16 evenly spaced quantiles of
N(m, mstd), rounded and clipped to [0, mmax]: per image, the magnitude then follows the rounded
Gaussian, in C++. Unlike timm, the sampled magnitude is shared by the ``n`` ops of one image.
"""

import statistics
from typing import Callable, List, Sequence, Tuple

from mindspore.dataset import transforms, vision
from mindspore.dataset.vision import AutoAugmentPolicy, Inter

from ..errors import ConfigError

__all__ = ["auto_augment_ops", "parse_randaug"]

_QUANTILES = 16
_POLICIES = {
    "imagenet": AutoAugmentPolicy.IMAGENET,
    "cifar10": AutoAugmentPolicy.CIFAR10,
    "svhn": AutoAugmentPolicy.SVHN,
}
_FORMS = "randaug-m<int>[-n<int>][-mstd<float>][-mmax<int>][-inc1], autoaug[-cifar10|-svhn], trivialaugwide"


def _bad(spec: str, why: str) -> ConfigError:
    return ConfigError(f"auto_augment={spec!r}: {why}; accepted forms: {_FORMS}")


def parse_randaug(spec: str) -> Tuple[int, int, float, int]:
    """Return ``(magnitude, num_ops, magnitude_std, magnitude_max)`` of a ``randaug-...`` string.

    Raises:
        ConfigError: An unknown option, a malformed value, or a magnitude above ``mmax``.
    """
    options = {"m": 9, "n": 2, "mstd": 0.0, "mmax": 10, "inc": 1}
    for part in spec.split("-")[1:]:
        key = part.rstrip("0123456789.")
        value = part[len(key) :]
        if key not in options:
            raise _bad(spec, f"unknown option {key!r}")
        if not value:
            raise _bad(spec, f"option {part!r} has no value")
        try:
            options[key] = float(value) if key == "mstd" else int(value)
        except ValueError:
            raise _bad(spec, f"option {part!r} has a malformed value") from None
    if options["inc"] != 1:
        raise _bad(spec, "MindSpore's RandAugment ops always grow with the magnitude; only inc1 exists")
    magnitude, num_ops, mstd, mmax = int(options["m"]), int(options["n"]), float(options["mstd"]), int(options["mmax"])
    if mmax < 1 or not 0 <= magnitude <= mmax:
        raise _bad(spec, f"the magnitude m{magnitude} must lie in 0..mmax ({mmax})")
    if num_ops < 1:
        raise _bad(spec, "n must be at least 1")
    if mstd < 0:
        raise _bad(spec, "mstd must be >= 0")
    return magnitude, num_ops, mstd, mmax


def _noisy_magnitudes(magnitude: int, mstd: float, mmax: int) -> List[int]:
    if mstd == 0:
        return [magnitude]
    normal = statistics.NormalDist(magnitude, mstd)
    return [min(mmax, max(0, round(normal.inv_cdf((i + 0.5) / _QUANTILES)))) for i in range(_QUANTILES)]


def auto_augment_ops(spec: str, interpolation: Inter, fill_value: Sequence[int]) -> List[Callable]:
    """Build the C++ op(s) for an ``auto_augment`` string; they run on HWC uint8 images.

    Args:
        spec: See the module docstring.
        interpolation: Resampling of the geometric ops.
        fill_value: RGB fill of the areas that rotations and shifts uncover (the dataset mean in 0-255).

    Returns:
        A list with one op.

    Raises:
        ConfigError: An unknown or malformed string.
    """
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"auto_augment={spec!r} must be a non-empty string; accepted forms: {_FORMS}")
    fill = tuple(int(v) for v in fill_value)
    head, _, rest = spec.partition("-")
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
        policy = rest or "imagenet"
        if policy not in _POLICIES:
            raise _bad(spec, f"unknown AutoAugment policy {policy!r} (known: {', '.join(_POLICIES)})")
        return [vision.AutoAugment(policy=_POLICIES[policy], interpolation=interpolation, fill_value=fill)]
    if head == "trivialaugwide":
        if rest:
            raise _bad(spec, "trivialaugwide takes no options")
        return [vision.TrivialAugmentWide(interpolation=interpolation, fill_value=fill)]
    raise _bad(spec, f"unknown policy {head!r}")
