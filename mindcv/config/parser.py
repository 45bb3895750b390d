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

The ``*_kwargs`` functions at the end map a parsed configuration onto the keyword arguments of the
model, data and train-step factories, once per factory (the optimizer, scheduler and loss factories
have their own ``optimizer_kwargs``/``scheduler_kwargs``/``loss_kwargs`` next to them).
"""

import argparse
import difflib
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import yaml

from .cli import ArgumentParser
from .errors import ConfigError

__all__ = [
    "BASE_KEY",
    "create_parser",
    "parse_args",
    "option_names",
    "load_yaml_config",
    "config_to_dict",
    "save_config",
    "resolve_num_classes",
    "model_kwargs",
    "dataset_kwargs",
    "transforms_kwargs",
    "loader_kwargs",
    "train_step_kwargs",
]

#: YAML key listing parent files (relative to the file that names them).
BASE_KEY = "_base_"

_TRUE = ("true", "1", "yes", "y", "on")
_FALSE = ("false", "0", "no", "n", "off")
_NONE = ("none", "null", "~")


# ----------------------------------------------------------------------------------------------------------------
# Value converters. Each accepts a command-line string or an already-typed YAML value and raises
# argparse.ArgumentTypeError with the reason, so both paths give the same one-line message.
# ----------------------------------------------------------------------------------------------------------------


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not a boolean; use true/false, 1/0 or yes/no")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if number.is_integer():
            return int(number)
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        number = float(str(value).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
    return number


def _to_str(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        raise argparse.ArgumentTypeError(f"{value!r} is not a single value")
    return str(value)


def _bounded(conv: Callable[[Any], Any], low: Optional[float], high: Optional[float], low_open: bool = False):
    """A converter that also checks ``low <= x`` (``low < x`` when ``low_open``) and ``x <= high``."""

    def check(value: Any) -> Any:
        x = conv(value)
        if low is not None and (x <= low if low_open else x < low):
            raise argparse.ArgumentTypeError(f"{x!r} must be {'>' if low_open else '>='} {low:g}")
        if high is not None and x > high:
            raise argparse.ArgumentTypeError(f"{x!r} must be <= {high:g}")
        return x

    check.__name__ = conv.__name__
    return check


_pos_int = _bounded(_to_int, 1, None)
_nonneg_int = _bounded(_to_int, 0, None)
_pos_float = _bounded(_to_float, 0, None, low_open=True)
_nonneg_float = _bounded(_to_float, 0, None)
_prob = _bounded(_to_float, 0, 1)
_unit = _bounded(_to_float, 0, 1, low_open=True)


@dataclass(frozen=True)
class _Opt:
    """One option: its flag name (also its YAML key and attribute), converter, default and help."""

    name: str
    conv: Callable[[Any], Any]
    default: Any
    help: str
    choices: Optional[Sequence[Any]] = None
    is_list: bool = False
    length: Optional[int] = None  # required list length
    short: Optional[str] = None

    @property
    def is_bool(self) -> bool:
        return self.conv is _to_bool and not self.is_list

    def convert(self, value: Any) -> Any:
        """Convert a raw (string or YAML) value; raises argparse.ArgumentTypeError."""
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE and not self.is_bool):
            if self.default is not None and not self.is_list:
                raise argparse.ArgumentTypeError(f"needs a value (default {self.default!r}), got none")
            return None
        if self.is_list:
            items = value if isinstance(value, (list, tuple)) else [value]
            flat: List[Any] = []
            for item in items:  # "0.08,1.0" and ["0.08", "1.0"] alike
                flat.extend(p for p in item.split(",") if p.strip()) if isinstance(item, str) else flat.append(item)
            out = [self.conv(v) for v in flat]
            if not out:
                raise argparse.ArgumentTypeError("needs at least one value")
            if self.length is not None and len(out) != self.length:
                raise argparse.ArgumentTypeError(f"needs exactly {self.length} values, got {len(out)}")
            return out
        out = self.conv(value)
        if self.choices is not None and isinstance(out, str):  # case-insensitive: "cpu" -> "CPU", "o2" -> "O2"
            out = next((c for c in self.choices if str(c).lower() == out.lower()), out)
        if self.choices is not None and out not in self.choices:
            close = difflib.get_close_matches(str(out), [str(c) for c in self.choices], n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise argparse.ArgumentTypeError(f"{out!r} is not one of: {', '.join(str(c) for c in self.choices)}{hint}")
        return out


def _o(name: str, conv: Callable[[Any], Any], default: Any, help: str, **kw: Any) -> _Opt:
    return _Opt(name, conv, default, help, **kw)


# fmt: off
_GROUPS: List[Tuple[str, List[_Opt]]] = [
    ("system", [
        _o("mode", _to_int, 0, "0: Graph mode (compiled, ~2.5x faster on CPU), 1: PyNative (eager, for debugging)",
           choices=(0, 1)),
        _o("device_target", _to_str, "CPU", "device to run on", choices=("CPU", "GPU", "Ascend")),
        _o("seed", _nonneg_int, 42, "seed of weight init, data order and augmentation (same on every rank)"),
        _o("debug", _to_bool, False, "show full tracebacks instead of one-line errors"),
    ]),
    ("model", [
        _o("model", _to_str, "res2net50", "registered model name (mindcv.list_models())"),
        _o("pretrained", _to_bool, False, "start from the published weights (downloaded into $MINDCV_HOME, "
           "default ~/.cache/mindcv); the classifier is re-initialised when num_classes differs"),
        _o("ckpt_path", _to_str, "", "load these weights (a .ckpt/.safetensors file, training checkpoints too); "
           "validate.py evaluates it, train.py fine-tunes from it. Missing or unreadable is an error"),
        _o("num_classes", _pos_int, None, "classifier outputs; default: the dataset's class count (must match it)"),
        _o("in_channels", _pos_int, 3, "input image channels"),
        _o("drop_rate", _prob, None, "dropout before the classifier (default: the model's, 0)"),
        _o("drop_path_rate", _prob, None, "stochastic depth rate (default: the model's, 0)"),
        _o("zero_init_last", _to_bool, None, "zero the last BN of every block (default: the model's, off)"),
    ]),
    ("data", [
        _o("dataset", _to_str, "imagenet", "dataset name: imagenet (any <root>/<split>/<class>/<img> folder), "
           "cifar10, cifar100, digits (shipped, offline)"),
        _o("data_dir", _to_str, None, "dataset root; default: ./data/imagenet for imagenet, the mindcv cache "
           "($MINDCV_HOME/datasets) for cifar; not used by digits"),
        _o("train_split", _to_str, "train", "training split (folder name for imagenet)"),
        _o("val_split", _to_str, "val", "evaluation split (cifar: 'val' is the test set)"),
        _o("dataset_download", _to_bool, False, "download cifar10/cifar100 when missing"),
        _o("image_check", _to_str, "header", "how image files are checked before use: none, header (fast, "
           "default) or full (decodes every file; catches truncated JPEGs)", choices=("none", "header", "full")),
        _o("skip_bad_images", _to_bool, False, "leave unreadable images out (counted and logged) instead of "
           "stopping"),
        _o("num_parallel_workers", _pos_int, None, "data-loading threads (default: MindSpore's)"),
        _o("batch_size", _pos_int, 32, "batch size per device"),
        _o("drop_remainder", _to_bool, True, "drop the last incomplete training batch (evaluation never drops)"),
        _o("num_samples", _pos_int, None, "use at most this many training samples (per device); default all"),
        _o("val_num_samples", _pos_int, None, "evaluate at most this many samples (per device); default all"),
        _o("image_resize", _pos_int, None, "input size in pixels; default: the model's (224)"),
        _o("interpolation", _to_str, None, "resize interpolation (default: the model's for imagenet)",
           choices=("nearest", "bilinear", "bicubic", "area")),
        _o("crop_pct", _unit, None, "evaluation centre-crop fraction (default: the model's for imagenet)"),
        _o("mean", _to_float, None, "RGB mean in 0-1 units (default: the model's for imagenet, else the "
           "dataset's)", is_list=True),
        _o("std", _to_float, None, "RGB std in 0-1 units (default as for --mean)", is_list=True),
    ]),
    ("augmentation", [
        _o("scale", _unit, [0.08, 1.0], "random-resized-crop area range (imagenet)", is_list=True, length=2),
        _o("ratio", _pos_float, [0.75, 1.333], "random-resized-crop aspect-ratio range (imagenet)", is_list=True,
           length=2),
        _o("hflip", _prob, None, "horizontal flip probability (default 0.5; 0 for digits)"),
        _o("vflip", _prob, 0.0, "vertical flip probability"),
        _o("color_jitter", _nonneg_float, None, "brightness/contrast/saturation[/hue] jitter: 1, 3 or 4 values",
           is_list=True),
        _o("auto_augment", _to_str, None, "randaug-m9-n2-mstd0.5, autoaug or trivialaugwide (default none)"),
        _o("re_prob", _prob, 0.0, "random erasing probability"),
        _o("mixup", _nonneg_float, 0.0, "mixup alpha (0: off)"),
        _o("cutmix", _nonneg_float, 0.0, "cutmix alpha (0: off)"),
        _o("cutmix_prob", _prob, 1.0, "probability that a batch is mixed when mixup/cutmix is on"),
        _o("mixup_off_epoch", _nonneg_int, 0, "epoch from which batches are no longer mixed (0: never)"),
    ]),
    ("optimizer", [
        _o("opt", _to_str, "adamw", "optimizer: sgd, momentum, nesterov, adam, adamw, lamb, lars, rmsprop, adagrad"),
        _o("lr", _nonneg_float, 0.001, "peak learning rate (per device batch; scale it yourself for more devices)"),
        _o("momentum", _nonneg_float, 0.9, "momentum of sgd/momentum/nesterov/lars/rmsprop"),
        _o("weight_decay", _nonneg_float, 1e-4, "weight decay"),
        _o("weight_decay_filter", _to_str, "disable", "exempt parameters from weight decay: disable (none), "
           "norm_and_bias or auto (BN and bias parameters)", choices=("disable", "auto", "norm_and_bias")),
        _o("use_nesterov", _to_bool, False, "Nesterov momentum (sgd, momentum, adam, lars)"),
        _o("eps", _pos_float, 1e-8, "epsilon of adam/adamw/lamb/rmsprop/lars"),
        _o("fused_optimizer", _to_str, "auto", "momentum: update all parameters in one CPU kernel (compiled with "
           "g++ on first use): auto (when possible), true (required) or false", choices=("auto", "true", "false")),
    ]),
    ("schedule", [
        _o("scheduler", _to_str, "cosine_decay", "lr schedule: constant, cosine_decay, polynomial_decay, "
           "exponential_decay, step_decay, multi_step_decay, one_cycle"),
        _o("min_lr", _nonneg_float, 1e-6, "lowest learning rate of the decaying schedules"),
        _o("warmup_epochs", _nonneg_float, 3.0, "linear warm-up length in epochs (may be fractional)"),
        _o("warmup_factor", _nonneg_float, 0.0, "warm-up starts at lr * warmup_factor"),
        _o("decay_epochs", _pos_float, None, "decay span (cosine/polynomial) or interval (step_decay)"),
        _o("decay_rate", _pos_float, 0.9, "decay multiplier (step/multi-step/exponential) or power (polynomial)"),
        _o("multi_step_decay_milestones", _nonneg_float, None, "epochs at which multi_step_decay multiplies the lr "
           "by decay_rate", is_list=True),
        _o("lr_epoch_stair", _to_bool, False, "keep the lr constant within each epoch"),
    ]),
    ("loss", [
        _o("loss", _to_str, "CE", "loss: CE (softmax cross-entropy) or BCE (per-class binary cross-entropy)"),
        _o("label_smoothing", _bounded(_to_float, 0, 0.999), 0.0, "label smoothing in [0, 1)"),
    ]),
    ("training", [
        _o("epoch_size", _pos_int, 90, "number of epochs"),
        _o("amp_level", _to_str, "O0", "mixed precision O0 (float32), O1, O2, O3 (float16). On CPU keep O0: "
           "float16 runs but is slower and bfloat16 convolutions are unsupported; O1-O3 warn there",
           choices=("O0", "O1", "O2", "O3")),
        _o("loss_scale_type", _to_str, "fixed", "fixed, dynamic (skip steps whose gradients overflow) or auto "
           "(dynamic with AMP)", choices=("fixed", "dynamic", "auto")),
        _o("loss_scale", _bounded(_to_float, 1, None), 1.0, "fixed loss scale, or the initial dynamic one"),
        _o("clip_grad", _to_bool, False, "clip the gradients' global norm to --clip_value"),
        _o("clip_value", _pos_float, 15.0, "maximum global gradient norm"),
        _o("gradient_accumulation_steps", _pos_int, 1, "micro-batches per optimizer update"),
        _o("ema", _to_bool, False, "train: keep an EMA of the weights (evaluated and saved as ema.*); "
           "validate: evaluate the EMA weights of --ckpt_path"),
        _o("ema_decay", _bounded(_to_float, 0, 0.999999999), 0.9999, "EMA decay per update"),
        _o("val_while_train", _to_bool, True, "evaluate on --val_split during training"),
        _o("val_interval", _pos_int, 1, "evaluate every N epochs (and after the last)"),
        _o("resume", _to_str, "", "resume from a training checkpoint: PATH, or 'auto' for "
           "<ckpt_save_dir>/<model>-last.ckpt (a fresh start when there is none)"),
    ]),
    ("checkpoint", [
        _o("ckpt_save_dir", _to_str, "./ckpt", "output folder: checkpoints, config.yaml, train.log, summary.csv, "
           "curves.png"),
        _o("ckpt_save_interval", _pos_int, 1, "write <model>-<epoch>.ckpt every N epochs (<model>-last.ckpt is "
           "written every epoch)"),
        _o("keep_checkpoint_max", _nonneg_int, 5, "how many <model>-<epoch>.ckpt files to keep (0: none)"),
        _o("ckpt_save_policy", _to_str, "latest_k", "which epoch checkpoints to keep: latest_k or top_k (best "
           "val top-1; needs --val_while_train)", choices=("latest_k", "top_k")),
    ]),
    ("distributed", [
        _o("distribute", _to_bool, False, "data-parallel training; launch with msrun (see the README)"),
    ]),
    ("logging", [
        _o("log_interval", _pos_int, 20, "read the loss back and log every N steps (no host sync in between)"),
        _o("results_file", _to_str, "", "validate.py: write the metrics to this .json or .csv file"),
    ]),
]
# fmt: on

_OPTIONS: Dict[str, _Opt] = {opt.name: opt for _, opts in _GROUPS for opt in opts}


def option_names() -> List[str]:
    """Every option (flag, YAML key and attribute name) in parser order."""
    return list(_OPTIONS)


def _suggest(key: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else "see --help for the options"


class _Store(argparse.Action):
    """Converts with the option's own converter, so bool/list/none handling matches YAML's."""

    def __init__(self, option_strings: List[str], dest: str, opt: _Opt, **kwargs: Any) -> None:
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
    for title, opts in _GROUPS:
        group = parser.add_argument_group(title)
        for opt in opts:
            kwargs: Dict[str, Any] = dict(action=_Store, opt=opt, default=opt.default, help=opt.help)
            if opt.is_bool:
                kwargs.update(nargs="?", const="true", metavar="BOOL")
            elif opt.is_list:
                kwargs.update(nargs="+", metavar="V")
            elif opt.choices is not None:
                kwargs.update(metavar="{" + ",".join(str(c) for c in opt.choices) + "}")
            group.add_argument(f"--{opt.name}", **kwargs)
    return parser


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
                if key not in _OPTIONS and key != "config":
                    raise ConfigError(f"unknown override '{token}': no option '{key}'; {_suggest(key, _OPTIONS)}")
                token = "--" + token
        out.append(token)
        flag = token.split("=", 1)[0] if token.startswith("--") else token
        opt = _OPTIONS.get(flag[2:]) if flag.startswith("--") else None
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
        if key not in _OPTIONS:
            raise ConfigError(f"unknown key '{key}' in {path}; {_suggest(str(key), _OPTIONS)}")
        try:
            merged[key] = _OPTIONS[key].convert(value)
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
    pre = ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("-c", "--config", default="")
    known, _ = pre.parse_known_args(tokens)
    parser = create_parser(description)
    if known.config:
        parser.set_defaults(**load_yaml_config(known.config))
    cfg, unknown = parser.parse_known_args(tokens)
    if unknown:
        flag = unknown[0].split("=", 1)[0]
        if flag.startswith("-"):
            raise ConfigError(f"unknown option '{flag}'; {_suggest(flag.lstrip('-'), _OPTIONS)}")
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
    from ..data import list_datasets
    from ..loss import list_losses
    from ..models import list_models
    from ..optim import list_optimizers
    from ..scheduler import list_schedulers

    _check_name("model", cfg.model, list_models())
    _check_name("dataset", cfg.dataset, list_datasets(), case_insensitive=True)
    _check_name("opt", cfg.opt, list_optimizers(), case_insensitive=True)
    _check_name("scheduler", cfg.scheduler, list_schedulers())
    _check_name("loss", cfg.loss, list_losses(), case_insensitive=True)


def _check_combinations(cfg: argparse.Namespace) -> None:
    """Cross-option checks that a single converter cannot do."""
    _check_names(cfg)
    if cfg.pretrained and cfg.ckpt_path:
        raise ConfigError("--pretrained and --ckpt_path both given: use one (drop --pretrained to load your file)")
    if cfg.ckpt_save_policy == "top_k" and not cfg.val_while_train and cfg.keep_checkpoint_max > 0:
        raise ConfigError("--ckpt_save_policy top_k ranks checkpoints by val accuracy: add --val_while_train")
    if cfg.mean is not None and cfg.std is not None and len(cfg.mean) != len(cfg.std):
        raise ConfigError(f"--mean has {len(cfg.mean)} values but --std has {len(cfg.std)}; give one per channel")


def config_to_dict(cfg: argparse.Namespace) -> Dict[str, Any]:
    """The options of ``cfg`` in parser order (``config`` and ``debug`` left out), YAML-ready."""
    out: Dict[str, Any] = {}
    for name in _OPTIONS:
        if name == "debug" or not hasattr(cfg, name):
            continue
        value = getattr(cfg, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


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
    for title, opts in _GROUPS:
        names = [o.name for o in opts if o.name in values]
        if names:
            lines.append(f"\n# {title}")
        for name in names:
            value = values[name]
            if isinstance(value, list):  # one line: scale: [0.08, 1.0]
                lines.append(f"{name}: " + yaml.safe_dump(value, default_flow_style=True).strip())
            else:
                lines.append(yaml.safe_dump({name: value}, default_flow_style=False).strip())
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------------------------------------------
# Namespace -> factory kwargs, one function per factory (rule: the mapping happens once).
# ----------------------------------------------------------------------------------------------------------------

# Datasets whose images come decoded at 32x32; the rest (imagenet) are image files with the model's preprocessing.
_SMALL_DATASETS = ("cifar10", "cifar100", "digits")
_DEFAULT_DATA_DIRS = {"imagenet": os.path.join(".", "data", "imagenet")}


def resolve_num_classes(cfg: Any, is_training: bool = True) -> int:
    """The class count of the run: the dataset's, which ``--num_classes`` (when given) must equal.

    Raises:
        ConfigError: ``--num_classes`` differs from the dataset's class count.
        DatasetError: The dataset folder or split is missing (image folders are listed, not read).
    """
    from ..data import dataset_info

    kw = dataset_kwargs(cfg, is_training)
    info = dataset_info(kw["name"], root=kw["root"], split=kw["split"])
    if cfg.num_classes is not None and cfg.num_classes != info.num_classes:
        raise ConfigError(
            f"--num_classes={cfg.num_classes} but {info.name} ({kw['split']}) has {info.num_classes} classes; set "
            f"--num_classes {info.num_classes} or leave it out (it defaults to the dataset's count)"
        )
    return info.num_classes


def model_kwargs(cfg: Any, num_classes: int, load_weights: bool = True) -> Dict[str, Any]:
    """Keyword arguments of :func:`mindcv.models.create_model` (None values keep the model's defaults).

    Args:
        cfg: Parsed configuration.
        num_classes: Resolved class count (``cfg.num_classes`` or the dataset's).
        load_weights: Honour ``--pretrained``/``--ckpt_path``; False when the weights come from elsewhere
            (a resumed training checkpoint, or EMA weights loaded separately).
    """
    return dict(
        model_name=cfg.model,
        num_classes=num_classes,
        pretrained=bool(cfg.pretrained) and load_weights,
        in_channels=cfg.in_channels,
        checkpoint_path=(cfg.ckpt_path or "") if load_weights else "",
        drop_rate=cfg.drop_rate,
        drop_path_rate=cfg.drop_path_rate,
        zero_init_last=cfg.zero_init_last,
    )


def dataset_kwargs(
    cfg: Any, is_training: bool, rank: int = 0, group_size: int = 1, shuffle: Optional[bool] = None
) -> Dict[str, Any]:
    """Keyword arguments of :func:`mindcv.data.create_dataset` for the training or the evaluation split.

    Args:
        cfg: Parsed configuration.
        is_training: Training split (shuffled, ``num_samples``) or evaluation split (``val_num_samples``).
        rank: This process's rank; with ``group_size > 1`` the split is sharded.
        group_size: Number of data-parallel processes.
        shuffle: Override the shuffling (default: shuffle the training split only).
    """
    name = cfg.dataset.lower()
    sharded = group_size > 1
    return dict(
        name=name,
        root=cfg.data_dir if cfg.data_dir else _DEFAULT_DATA_DIRS.get(name),
        split=cfg.train_split if is_training else cfg.val_split,
        shuffle=is_training if shuffle is None else shuffle,
        num_samples=cfg.num_samples if is_training else cfg.val_num_samples,
        num_shards=group_size if sharded else None,
        shard_id=rank if sharded else None,
        num_parallel_workers=cfg.num_parallel_workers,
        download=cfg.dataset_download,
        image_check=cfg.image_check,
        skip_bad_images=cfg.skip_bad_images,
    )


def transforms_kwargs(cfg: Any, is_training: bool, pretrained_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Keyword arguments of :func:`mindcv.data.create_transforms`.

    Unset preprocessing options come from the model's pretrained config for image-file datasets
    (``imagenet``), and from the dataset's own statistics for the small decoded ones; the input size
    defaults to the model's for every dataset. ``train.py`` and ``validate.py`` both use this, so a
    checkpoint is evaluated with the preprocessing it was trained with.

    Args:
        cfg: Parsed configuration.
        is_training: Random augmentation (training) or deterministic (evaluation) transforms.
        pretrained_cfg: ``mindcv.models.get_pretrained_cfg(cfg.model)``.
    """
    model_side = cfg.dataset.lower() not in _SMALL_DATASETS

    def pick(value: Any, key: str) -> Any:
        if value is not None:
            return value
        return pretrained_cfg.get(key) if model_side else None

    out: Dict[str, Any] = dict(
        dataset_name=cfg.dataset.lower(),
        image_resize=cfg.image_resize or int(pretrained_cfg.get("input_size", (3, 224, 224))[-1]),
        is_training=is_training,
        interpolation=pick(cfg.interpolation, "interpolation"),
        mean=pick(cfg.mean, "mean"),
        std=pick(cfg.std, "std"),
        crop_pct=pick(cfg.crop_pct, "crop_pct"),
    )
    if is_training:
        jitter = cfg.color_jitter
        out.update(
            scale=tuple(cfg.scale),
            ratio=tuple(cfg.ratio),
            hflip=cfg.hflip,
            vflip=cfg.vflip,
            color_jitter=jitter[0] if jitter is not None and len(jitter) == 1 else jitter,
            auto_augment=cfg.auto_augment,
            re_prob=cfg.re_prob,
        )
    return out


def loader_kwargs(cfg: Any, is_training: bool, num_classes: int, start_epoch: int = 0) -> Dict[str, Any]:
    """Keyword arguments of :func:`mindcv.data.create_loader` (without the dataset and transform).

    Evaluation never drops the last batch, so every sample is counted.
    """
    out: Dict[str, Any] = dict(
        batch_size=cfg.batch_size,
        drop_remainder=bool(cfg.drop_remainder) if is_training else False,
        is_training=is_training,
        num_classes=num_classes,
        num_parallel_workers=cfg.num_parallel_workers,
    )
    if is_training:
        out.update(
            mixup=cfg.mixup,
            cutmix=cfg.cutmix,
            cutmix_prob=cfg.cutmix_prob,
            mixup_off_epoch=cfg.mixup_off_epoch,
            start_epoch=start_epoch,
        )
    return out


def train_step_kwargs(cfg: Any) -> Dict[str, Any]:
    """Keyword arguments of :class:`mindcv.utils.train_step.TrainStep` besides network, loss, optimizer, EMA."""
    return dict(
        amp_level=cfg.amp_level,
        loss_scale_type=cfg.loss_scale_type,
        loss_scale=cfg.loss_scale,
        clip_grad=cfg.clip_grad,
        clip_value=cfg.clip_value,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        distribute=cfg.distribute,
    )
