"""Layers shared by model families."""

from .drop_path import DropPath

__all__ = ["DropPath"]
