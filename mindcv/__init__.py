"""mindcv: Res2Net image classification models, data pipelines and training on MindSpore."""

from ._env import apply_env_defaults

apply_env_defaults()  # before anything imports mindspore and runs a convolution

from . import models  # noqa: E402
from .models import create_model, is_model, list_models, list_modules  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ["create_model", "list_models", "list_modules", "is_model", "models", "__version__"]
