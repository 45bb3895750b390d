"""Normalisation statistics and defaults shared by the dataset, transform and loader factories.

Means and standard deviations are per RGB channel in 0-1 units, the convention of timm's pretrained
configs; the transforms multiply them by 255 because MindSpore's ``Normalize`` runs on uint8 pixels.
"""

from typing import Tuple

__all__ = [
    "IMAGENET_DEFAULT_MEAN",
    "IMAGENET_DEFAULT_STD",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DIGITS_MEAN",
    "DIGITS_STD",
    "DEFAULT_CROP_PCT",
    "DEFAULT_INTERPOLATION",
    "IMAGE_EXTENSIONS",
]

Stats = Tuple[float, float, float]

IMAGENET_DEFAULT_MEAN: Stats = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD: Stats = (0.229, 0.224, 0.225)

# Per-pixel statistics of the CIFAR training sets. Many repositories (upstream MindCV included) use
# std (0.2023, 0.1994, 0.2010) for CIFAR-10, which is the mean of per-image stds, not the std of the
# pixels; these are the pixel stds, so normalised inputs have unit variance.
CIFAR10_MEAN: Stats = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: Stats = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN: Stats = (0.5071, 0.4865, 0.4409)
CIFAR100_STD: Stats = (0.2673, 0.2564, 0.2762)

# Pixel statistics of the shipped digits train split as served (32x32, values 0-255, grey so equal
# in the three channels); tests recompute them from the asset.
DIGITS_MEAN: Stats = (0.3052, 0.3052, 0.3052)
DIGITS_STD: Stats = (0.3760, 0.3760, 0.3760)

# Evaluation resizes the shorter side to image_size / crop_pct, then centre-crops image_size.
DEFAULT_CROP_PCT = 0.875
DEFAULT_INTERPOLATION = "bilinear"

# Extensions an image-folder dataset reads, compared case-insensitively ("x.JPEG" is an image).
IMAGE_EXTENSIONS: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
