"""Layers shared by model families: the conv factory with its CPU small-map fast paths, shortcuts, drop path."""

from .create_conv2d import create_conv2d
from .drop_path import DropPath
from .shortcut import create_shortcut
from .small_map import ConcatChunks, FoldSmallMaps, PointwiseConv2d, SmallMapConv2d, SmallMapStage

__all__ = [
    "create_conv2d",
    "create_shortcut",
    "DropPath",
    "PointwiseConv2d",
    "SmallMapConv2d",
    "ConcatChunks",
    "SmallMapStage",
    "FoldSmallMaps",
]
