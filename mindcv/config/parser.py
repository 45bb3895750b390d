"""The command line and YAML configuration of ``train.py`` and ``validate.py``: one grouped parser.

Precedence, lowest first: the parser defaults below, the YAML file given with ``-c/--config`` (after
its ``_base_`` files), then the command line in order. Command-line flags follow upstream MindCV's
names, so its users' commands and YAML files keep working; ``key=value`` tokens without dashes are
overrides too (``python train.py -c cfg.yaml dataset=cifar10 lr=0.01``).

Value syntax, identical on the command line, in ``key=value`` tokens and in YAML:

* booleans: ``--ema`` alone, or ``--ema true|false|1|0|yes|no`` (YAML ``true``/``false``);
* lists: ``--scale 0.08 1.0``, ``--scale=0.08,1.0``, ``scale=0.08,1.0`` or a YAML list;
* ``none``/``null`` resets an option whose default is None (e.g. ``--drop_rate none``).

A YAML file is a flat mapping whose keys are the flag names, in the parser's group order under
matching comment headers. ``_base_: [a.yaml, ...]`` (paths relative to the file) lists parent files
whose keys the file inherits and may override; later parents win over earlier ones. An unknown key
is an error naming the key, the file and the closest valid key.
"""

import argparse
import difflib
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import yaml

from ..data import list_datasets
from ..errors import ConfigError
from ..loss import list_losses
from ..models import list_models
from ..optim import list_optimizers
from ..scheduler import list_schedulers
from ..utils.cli import ArgumentParser, run_main
from ..utils.fs import atomic_write_text
from ..utils.runtime import detect_device_target
from .options import BASE_KEY, GROUPS, OPTIONS, Option

__all__ = [
    "create_parser",
    "create_config_parsers",
    "check_cfgs_in_parser",
    "add_options",
    "parse_args",
    "run_cli",
    "load_yaml_config",
    "config_to_dict",
    "save_config",
    "save_args",
]


def _suggest(key: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else "see --help for the options"


class _Store(argparse.Action):
    """Converts with the option's own converter, so bool/list/none handling matches YAML's."""

    def __init__(self, option_strings: List[str], dest: str, opt: Option, **kwargs: Any) -> None:
        self.opt = opt
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string=None):
        try:
            value = self.opt.convert(values)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentError(self, str(e)) from None
        setattr(namespace, self.dest, value)


def create_parser(description: str = "mindcv training and evaluation") -> argparse.ArgumentParser:
    """Build the grouped parser shared by ``train.py`` and ``validate.py``.

    Args:
        description: Text shown at the top of ``--help``.

    Returns:
        An ``ArgumentParser`` whose errors raise :class:`ConfigError` (one line) instead of exiting.
    """
    parser = ArgumentParser(
        description=description, allow_abbrev=False, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("-c", "--config", default="", help="YAML file supplying defaults (command line wins)")
    for title, opts in GROUPS:
        add_options(parser.add_argument_group(title), [opt.name for opt in opts])
    return parser


def create_config_parsers(
    description: str = "mindcv training and evaluation",
) -> Tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Upstream MindCV's ``create_parser()`` pair: ``(parser_config, parser)``.

    ``parser_config`` reads only ``-c/--config``; ``parser`` is :func:`create_parser`'s full parser. The root
    ``config.py`` serves it as ``create_parser`` for code written against upstream's ``from config import ...``.
    """
    parser_config = ArgumentParser(description=description, add_help=False, allow_abbrev=False)
    parser_config.add_argument("-c", "--config", default="", help="YAML file supplying defaults (command line wins)")
    return parser_config, create_parser(description)


def check_cfgs_in_parser(cfgs: Dict[str, Any], parser: argparse.ArgumentParser) -> None:
    """Upstream's key check: raise ``KeyError("<key> does not exist in ArgumentParser!")`` for a key of ``cfgs``
    that is no option of ``parser`` (:func:`load_yaml_config` gives the one-line :class:`ConfigError` instead)."""
    known = {action.dest for action in parser._actions} | set(parser._defaults)
    for key in cfgs:
        if key not in known and key != BASE_KEY:
            raise KeyError(f"{key} does not exist in ArgumentParser!")


def add_options(group: Any, names: Sequence[str], **changes: Dict[str, Any]) -> None:
    """Add options of the table to a parser or argument group, with the converters, choices and help of
    ``train.py``, so every script spells and checks a shared flag (``--model``, ``--ckpt_path``, ``--device_target``
    ...) the same way.

    Args:
        group: An ``argparse`` parser or argument group.
        names: Option names from :data:`~mindcv.config.options.OPTIONS`.
        changes: Per option name, the ``default`` and/or ``help`` that differ for this script.
    """
    for name in names:
        opt = OPTIONS[name]
        change = changes.get(name, {})
        kwargs: Dict[str, Any] = dict(
            action=_Store, opt=opt, default=change.get("default", opt.default), help=change.get("help", opt.help)
        )
        if opt.is_bool:
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        elif opt.is_list:
            kwargs.update(nargs="+", metavar="V")
        elif opt.choices is not None:
            kwargs.update(metavar="{" + ",".join(str(c) for c in opt.choices) + "}")
        group.add_argument(f"--{opt.name}", **kwargs)


def _expand_overrides(argv: Sequence[str]) -> List[str]:
    """Turn ``key=value`` tokens (no dashes) into ``--key=value``; leave option values alone.

    A token directly after a flag that takes a value is that value (``--data_dir a=b``), not an
    override; anything else of the form ``name=value`` must name a known option.
    """
    out: List[str] = []
    previous_takes_value = False
    for token in argv:
        if not token.startswith("-") and "=" in token and not previous_takes_value:
            key = token.split("=", 1)[0]
            if key.isidentifier():
                if key not in OPTIONS and key != "config":
                    raise ConfigError(f"unknown override '{token}': no option '{key}'; {_suggest(key, OPTIONS)}")
                token = "--" + token
        out.append(token)
        flag = token.split("=", 1)[0] if token.startswith("--") else token
        opt = OPTIONS.get(flag[2:]) if flag.startswith("--") else None
        previous_takes_value = (
            token.startswith("-")
            and "=" not in token
            and (flag in ("-c", "--config") or (opt is not None and not opt.is_bool))
        )
    return out


def load_yaml_config(path: str, _seen: Optional[Tuple[str, ...]] = None) -> Dict[str, Any]:
    """Read a YAML config with its ``_base_`` parents, check every key and convert every value.

    Args:
        path: The YAML file.

    Returns:
        ``{option name: converted value}``; parents' keys first, overridden by the file's own.

    Raises:
        ConfigError: Missing or malformed file, circular ``_base_``, unknown key (with the closest
            valid one), or a value of the wrong type (naming the key and the file).
    """
    path = os.path.abspath(os.path.expanduser(path))
    seen = _seen or ()
    if path in seen:
        chain = " -> ".join(os.path.basename(p) for p in seen + (path,))
        raise ConfigError(f"circular {BASE_KEY} in {chain}; remove one of the references")
    if not os.path.isfile(path):
        where = f" (listed in {BASE_KEY} of {seen[-1]})" if seen else ""
        raise ConfigError(f"config file {path} does not exist{where}; check the path")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror or e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of option: value, got {type(data).__name__}")

    merged: Dict[str, Any] = {}
    bases = data.pop(BASE_KEY, None) or []
    for base in [bases] if isinstance(bases, str) else bases:
        if not isinstance(base, str):
            raise ConfigError(f"{BASE_KEY} in {path} must list file paths, got {base!r}")
        merged.update(load_yaml_config(os.path.join(os.path.dirname(path), base), seen + (path,)))
    for key, value in data.items():
        if key not in OPTIONS:
            raise ConfigError(f"unknown key '{key}' in {path}; {_suggest(str(key), OPTIONS)}")
        try:
            merged[key] = OPTIONS[key].convert(value)
        except argparse.ArgumentTypeError as e:
            raise ConfigError(f"{key}: {e} (in {path})") from None
    return merged


def parse_args(argv: Optional[Sequence[str]] = None, description: str = "mindcv") -> argparse.Namespace:
    """Parse ``argv`` over the YAML given by ``-c/--config``, then check combinations of options.

    Args:
        argv: Command-line tokens without the program name; None reads ``sys.argv[1:]``.
        description: Text shown at the top of ``--help``.

    Returns:
        A namespace with one attribute per option plus ``config`` (the YAML path or "").

    Raises:
        ConfigError: Any invalid flag, value, override, YAML file or combination, in one line.
    """
    tokens = _expand_overrides(list(sys.argv[1:] if argv is None else argv))
    pre, parser = create_config_parsers(description)
    known, _ = pre.parse_known_args(tokens)
    if known.config:
        parser.set_defaults(**load_yaml_config(known.config))
    cfg, unknown = parser.parse_known_args(tokens)
    if unknown:
        flag = unknown[0].split("=", 1)[0]
        if flag.startswith("-"):
            raise ConfigError(f"unknown option '{flag}'; {_suggest(flag.lstrip('-'), OPTIONS)}")
        raise ConfigError(f"unexpected argument '{unknown[0]}': options are --name value or name=value (see --help)")
    _check_combinations(cfg)
    return cfg


def _check_name(flag: str, value: str, names: Sequence[str], case_insensitive: bool = False) -> None:
    known = [n.lower() for n in names] if case_insensitive else list(names)
    key = value.lower() if case_insensitive else value
    if key in known:
        return
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    shown = ", ".join(names) if len(names) <= 20 else ", ".join(list(names)[:20]) + ", ..."
    raise ConfigError(f"unknown --{flag} '{value}'; {hint}choose one of: {shown}")


def _check_names(cfg: argparse.Namespace) -> None:
    """Registered names (model, dataset, optimizer, scheduler, loss), checked before anything is built."""

    # A model name, or one with a weight tag ("res2net50.timm_in1k", see list_models(pretrained=True)).
    _check_name("model", cfg.model, list_models() + [n for n in list_models(include_tags=True) if "." in n])
    _check_name("dataset", cfg.dataset, list_datasets(), case_insensitive=True)
    _check_name("opt", cfg.opt, list_optimizers(), case_insensitive=True)
    _check_name("scheduler", cfg.scheduler, list_schedulers())
    _check_name("loss", cfg.loss, list_losses(), case_insensitive=True)


def _check_combinations(cfg: argparse.Namespace) -> None:
    """Cross-option checks that a single converter cannot do, and the defaults that depend on other options."""
    _check_names(cfg)
    if cfg.device_target is None:
        cfg.device_target = detect_device_target()
    if cfg.resume_opt:
        if not cfg.ckpt_path:
            raise ConfigError(
                "--resume_opt continues the training checkpoint given with --ckpt_path; pass it there (or use --resume "
                "PATH)"
            )
        if cfg.resume:
            raise ConfigError("--resume and --resume_opt --ckpt_path both name a checkpoint to continue; use one")
        cfg.resume, cfg.ckpt_path, cfg.resume_opt = cfg.ckpt_path, "", False  # upstream's spelling of --resume PATH
    if cfg.pretrained and cfg.ckpt_path:
        raise ConfigError("--pretrained and --ckpt_path both given: use one (drop --pretrained to load your file)")
    if cfg.ckpt_save_policy == "top_k" and not cfg.val_while_train and cfg.keep_checkpoint_max > 0:
        raise ConfigError("--ckpt_save_policy top_k ranks checkpoints by val accuracy: add --val_while_train")
    if cfg.mean is not None and cfg.std is not None and len(cfg.mean) != len(cfg.std):
        raise ConfigError(f"--mean has {len(cfg.mean)} values but --std has {len(cfg.std)}; give one per channel")
    for name in ("mean", "std"):  # upstream writes them in 0-255 units, ours in 0-1: no channel statistic exceeds 1
        values = getattr(cfg, name)
        if values is not None and max(values) > 1.0:
            setattr(cfg, name, [v / 255.0 for v in values])
    if cfg.aug_splits not in (0, 3):
        raise ConfigError(f"--aug_splits {cfg.aug_splits}: only 0 (off) and 3 are supported")
    if cfg.aug_splits == 3 and not cfg.auto_augment:
        raise ConfigError("--aug_splits 3 augments each image twice with --auto_augment: set one, e.g. augmix")


def config_to_dict(cfg: argparse.Namespace) -> Dict[str, Any]:
    """The options of ``cfg`` in parser order (``config`` and ``debug`` left out), YAML-ready."""
    out: Dict[str, Any] = {}
    for name in OPTIONS:
        if name == "debug" or not hasattr(cfg, name):
            continue
        value = getattr(cfg, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def save_args(args: argparse.Namespace, filepath: str, rank: int = 0) -> None:
    """Upstream's ``save_args``: :func:`save_config` on rank 0, nothing on other ranks."""
    if rank == 0:
        save_config(args, filepath)


def save_config(cfg: argparse.Namespace, path: str) -> str:
    """Write the resolved configuration as YAML, grouped under the parser's headers.

    The file parses back with ``-c`` to the same options, so a run can be repeated or evaluated
    with exactly its settings.

    Args:
        cfg: The parsed configuration.
        path: Target file (written via a temporary file and a rename).

    Returns:
        The path written.
    """
    values = config_to_dict(cfg)
    lines = [f"# resolved configuration{f' (from {cfg.config})' if getattr(cfg, 'config', '') else ''}"]
    for title, opts in GROUPS:
        names = [o.name for o in opts if o.name in values]
        if names:
            lines.append(f"\n# {title}")
        for name in names:
            value = values[name]
            if isinstance(value, list):  # one line: scale: [0.08, 1.0]
                lines.append(f"{name}: " + yaml.safe_dump(value, default_flow_style=True).strip())
            else:
                lines.append(yaml.safe_dump({name: value}, default_flow_style=False).strip())
    return atomic_write_text(path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------------------------
# Namespace -> factory kwargs, one function per factory (rule: the mapping happens once).


def run_cli(
    run: Callable[[argparse.Namespace], None],
    argv: Optional[Sequence[str]] = None,
    description: str = "mindcv",
) -> int:
    """Parse the train/validate configuration and call ``run(cfg)`` under :func:`run_main`'s error handling.

    Args:
        run: The script's body, given the parsed configuration.
        argv: Command-line tokens without the program name; None reads ``sys.argv[1:]``.
        description: Text at the top of ``--help``.

    Returns:
        0 on success, :data:`EXIT_USAGE` after a user error, 130 after Ctrl-C.
    """
    state = {"debug": False}

    def main_fn(tokens: Sequence[str]) -> int:
        cfg = parse_args(tokens, description)
        state["debug"] = bool(cfg.debug)  # also set by `debug: true` in the YAML file
        run(cfg)
        return 0

    return run_main(main_fn, argv, debug_requested=lambda: state["debug"])
