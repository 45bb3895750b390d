"""Every YAML file under configs/ parses with the training parser and names a registered model and dataset."""

import glob
import os

import pytest
import yaml

from mindcv.config import BASE_KEY, parse_args
from mindcv.data import list_datasets
from mindcv.models import is_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True))


def _is_base_only(path: str) -> bool:
    """A file that only supplies shared keys to others (no model of its own) is checked through its children."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    return "model" not in data and not data.get(BASE_KEY)


def test_configs_exist():
    assert CONFIGS, "configs/ holds no YAML file"


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.relpath(p, ROOT) for p in CONFIGS])
def test_config_parses_and_names_registered_model(path):
    cfg = parse_args(["-c", path])
    if _is_base_only(path):
        return
    assert is_model(cfg.model), f"{path}: model '{cfg.model}' is not registered"
    assert cfg.dataset.lower() in list_datasets()
    # the file name starts with the model name (configs/<family>/<model>_<device>.yaml)
    assert os.path.basename(path).startswith(cfg.model + "_"), f"{path} should be named {cfg.model}_<...>.yaml"
