"""Configuration of ``train.py`` and ``validate.py``: the option table, the parser (flags, YAML, ``_base_``), the
saved ``config.yaml``, and the mapping of a parsed configuration onto each factory's keyword arguments."""

from .kwargs import (
    dataset_kwargs,
    loader_kwargs,
    model_kwargs,
    resolve_num_classes,
    train_step_kwargs,
    transforms_kwargs,
)
from .options import BASE_KEY, CHECKPOINT_MODEL_FLAGS, MODEL_FLAGS, SYSTEM_FLAGS, option_names
from .parser import (
    add_options,
    check_cfgs_in_parser,
    config_to_dict,
    create_config_parsers,
    create_parser,
    load_yaml_config,
    parse_args,
    run_cli,
    save_args,
    save_config,
)

__all__ = [
    "BASE_KEY",
    "create_parser",
    "create_config_parsers",
    "check_cfgs_in_parser",
    "add_options",
    "MODEL_FLAGS",
    "CHECKPOINT_MODEL_FLAGS",
    "SYSTEM_FLAGS",
    "parse_args",
    "run_cli",
    "option_names",
    "load_yaml_config",
    "config_to_dict",
    "save_config",
    "save_args",
    "resolve_num_classes",
    "model_kwargs",
    "dataset_kwargs",
    "transforms_kwargs",
    "loader_kwargs",
    "train_step_kwargs",
]
