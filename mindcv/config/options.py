"""The option table of ``train.py`` and ``validate.py``: every flag and YAML key, its converter, default and help.

One :class:`Option` per key, grouped as ``--help`` shows them (and as recipe YAML files order their keys). The
converters accept a command-line string or an already-typed YAML value alike, so both spellings mean the same.
"""

import argparse
import difflib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = [
    "BASE_KEY",
    "GROUPS",
    "OPTIONS",
    "Option",
    "option_names",
    "MODEL_FLAGS",
    "SYSTEM_FLAGS",
    "CHECKPOINT_MODEL_FLAGS",
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
class Option:
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
        # "none" is a value where it is one of the choices (--tta none, --image_check none), else it means unset.
        named = self.choices is not None and str(value).strip().lower() in [str(c).lower() for c in self.choices]
        unset = isinstance(value, str) and value.strip().lower() in _NONE and not self.is_bool and not named
        if value is None or unset:
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


def _o(name: str, conv: Callable[[Any], Any], default: Any, help: str, **kw: Any) -> Option:
    return Option(name, conv, default, help, **kw)


# fmt: off
GROUPS: List[Tuple[str, List[Option]]] = [
    ("system", [
        _o("mode", _to_int, 0, "0: Graph mode (compiled, faster on CPU), 1: PyNative (eager, for debugging)",
           choices=(0, 1)),
        _o("device_target", _to_str, None, "device to run on; default: the one this machine has (Ascend, then GPU, "
           "else CPU)", choices=("CPU", "GPU", "Ascend")),
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
        _o("frozen_stages", _to_int, None, "fine-tuning: freeze the stem and the first k stages (no gradient, BN "
           "statistics fixed); 0: nothing (default), 4: the whole backbone", choices=(0, 1, 2, 3, 4)),
    ]),
    ("data", [
        _o("dataset", _to_str, "imagenet", "dataset name: imagenet (any <root>/<split>/<class>/<img> folder), "
           "cifar10, cifar100, digits (shipped, offline)"),
        _o("data_dir", _to_str, None, "dataset root; default: ./ for imagenet (the folder holding <split>/), the "
           "mindcv cache ($MINDCV_HOME/datasets) for cifar; not used by digits"),
        _o("train_split", _to_str, "train", "training split (folder name for imagenet)"),
        _o("val_split", _to_str, "val", "evaluation split (cifar: 'val' is the test set)"),
        _o("dataset_download", _to_bool, False, "download cifar10/cifar100 when missing"),
        _o("image_check", _to_str, "header", "how image files are checked before use: none, header (fast, "
           "default) or full (decodes every file; catches truncated JPEGs)", choices=("none", "header", "full")),
        _o("skip_bad_images", _to_bool, False, "leave unreadable images out (counted and logged) instead of "
           "stopping"),
        _o("num_parallel_workers", _pos_int, None, "data-loading threads (default: MindSpore's, 8)"),
        _o("shuffle", _to_bool, True, "shuffle the training split each epoch"),
        _o("eval_shuffle", _to_bool, False, "shuffle the evaluation split (the metrics do not depend on it)"),
        _o("batch_size", _pos_int, 128, "batch size per device"),
        _o("drop_remainder", _to_bool, True, "drop the last incomplete training batch (evaluation never drops)"),
        _o("num_samples", _pos_int, None, "use at most this many training samples (per device); default all"),
        _o("val_num_samples", _pos_int, None, "evaluate at most this many samples (per device); default all"),
        _o("image_resize", _pos_int, None, "input size in pixels; default: the model's (224)"),
        _o("interpolation", _to_str, None, "resize interpolation (default: the model's for imagenet)",
           choices=("nearest", "bilinear", "bicubic", "area")),
        _o("crop_pct", _unit, None, "evaluation centre-crop fraction (default: the model's for imagenet)"),
        _o("mean", _to_float, None, "RGB mean in 0-1 units, or 0-255 units as upstream writes it (any value above 1; "
           "default: the model's for imagenet, else the dataset's)", is_list=True),
        _o("std", _to_float, None, "RGB std in 0-1 or 0-255 units (default as for --mean)", is_list=True),
    ]),
    ("augmentation", [
        _o("scale", _unit, [0.08, 1.0], "random-resized-crop area range (imagenet)", is_list=True, length=2),
        _o("ratio", _pos_float, [0.75, 1.333], "random-resized-crop aspect-ratio range (imagenet)", is_list=True,
           length=2),
        _o("hflip", _prob, None, "horizontal flip probability (default 0.5; 0 for digits)"),
        _o("vflip", _prob, 0.0, "vertical flip probability"),
        _o("color_jitter", _nonneg_float, None, "brightness/contrast/saturation[/hue] jitter: 1, 3 or 4 values "
           "(default: 0.4 for imagenet, none for cifar and digits; 0: off)", is_list=True),
        _o("auto_augment", _to_str, None, "randaug-m9-n2-mstd0.5, autoaug, autoaugr, 3a, augmix or trivialaugwide "
           "(default none)"),
        _o("aug_splits", _nonneg_int, 0, "augmentation splits (0: off; 3: each image also goes through the "
           "auto_augment twice, tripling the batch, as AugMix with --loss jsd)"),
        _o("aug_repeats", _nonneg_int, 0, "repeated augmentation: each training image appears this many times per "
           "epoch, differently augmented (0 or 1: off; 3 is usual)"),
        _o("re_prob", _prob, 0.0, "random erasing probability"),
        _o("re_scale", _unit, [0.02, 0.33], "random erasing area range", is_list=True, length=2),
        _o("re_ratio", _pos_float, [0.3, 3.3], "random erasing aspect-ratio range", is_list=True, length=2),
        _o("re_value", _to_str, "0", "random erasing fill: a value 0-255, three values 'r,g,b', or random"),
        _o("re_max_attempts", _pos_int, 10, "random erasing attempts to place the box"),
        _o("mixup", _nonneg_float, 0.0, "mixup alpha (0: off)"),
        _o("cutmix", _nonneg_float, 0.0, "cutmix alpha (0: off)"),
        _o("cutmix_prob", _prob, 1.0, "probability that a batch is mixed when mixup/cutmix is on"),
        _o("mixup_off_epoch", _nonneg_int, 0, "epoch from which batches are no longer mixed (0: never)"),
    ]),
    ("optimizer", [
        _o("opt", _to_str, "adam", "optimizer: sgd, momentum, nesterov, adam, adamw, lamb, lars, rmsprop, adagrad"),
        _o("lr", _nonneg_float, 0.001, "peak learning rate (per device batch; scale it yourself for more devices)"),
        _o("momentum", _nonneg_float, 0.9, "momentum of sgd/momentum/nesterov/lars/rmsprop"),
        _o("weight_decay", _nonneg_float, 1e-6, "weight decay"),
        _o("weight_decay_filter", _to_str, "disable", "exempt parameters from weight decay: disable (none), "
           "auto (MindSpore's rule: names with beta/gamma) or norm_and_bias (norm, bias and other 1-D parameters)",
           choices=("disable", "auto", "norm_and_bias")),
        _o("use_nesterov", _to_bool, False, "Nesterov momentum (sgd, momentum, adam, lars)"),
        _o("eps", _pos_float, 1e-10, "epsilon of adam/adamw/lamb/rmsprop/lars"),
        _o("layer_decay", _unit, None, "layer-wise lr decay: the head gets lr, each earlier stage lr times this "
           "factor once more (default: off)"),
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
        _o("num_cycles", _pos_int, 1, "cosine_decay: restarts the schedule this many times over the run"),
        _o("cycle_decay", _pos_float, 1.0, "cosine_decay: each cycle's peak is the previous one's times this"),
    ]),
    ("loss", [
        _o("loss", _to_str, "CE", "loss: CE (softmax cross-entropy) or BCE (per-class binary cross-entropy)"),
        _o("label_smoothing", _bounded(_to_float, 0, 0.999), 0.0, "label smoothing in [0, 1)"),
        _o("aux_factor", _nonneg_float, 0.0, "weight of auxiliary-head logits in the loss (models with aux heads)"),
        _o("reduction", _to_str, "mean", "how per-sample losses are combined", choices=("mean", "sum", "none")),
    ]),
    ("training", [
        _o("epoch_size", _pos_int, 90, "number of epochs"),
        _o("amp_level", _to_str, "O0", "mixed precision O0 (float32), O1, O2, O3 (float16). On CPU keep O0: "
           "float16 runs but is slower and bfloat16 convolutions are unsupported; O1-O3 warn there",
           choices=("O0", "O1", "O2", "O3")),
        _o("val_amp_level", _to_str, "O0", "mixed precision of evaluation (validate.py and validation while "
           "training)", choices=("O0", "O1", "O2", "O3")),
        _o("tta", _to_str, "none", "test-time augmentation of evaluation (validate.py and validation while training): "
           "none, or hflip (average the softmax of each image and its mirror; loss: NLL of the average)",
           choices=("none", "hflip")),
        _o("backend", _to_str, "mindspore", "validate.py, infer.py: run the model with mindspore, or with onnxruntime "
           "on a cached ONNX export checked against MindSpore on the first batch (pip install onnxruntime; faster "
           "on CPU)",
           choices=("mindspore", "onnxruntime")),
        _o("onnx_cache_dir", _to_str, None, "--backend onnxruntime: folder of the cached ONNX exports "
           "(default $MINDCV_HOME/onnx)"),
        _o("amp_cast_list", _to_str, None, "O1: the only cell types cast to float16; O2: the cell types kept in "
           "float32, e.g. '[nn.Conv2d, nn.Dense]' (default: MindSpore's lists)"),
        _o("loss_scale_type", _to_str, "fixed", "fixed, dynamic (skip steps whose gradients overflow) or auto "
           "(dynamic with AMP)", choices=("fixed", "dynamic", "auto")),
        _o("loss_scale", _bounded(_to_float, 1, None), 1.0, "fixed loss scale, or the initial dynamic one"),
        _o("drop_overflow_update", _to_bool, False, "with a fixed loss scale, skip updates whose gradients are not "
           "finite (dynamic loss scaling always skips them)"),
        _o("clip_grad", _to_bool, False, "clip the gradients' global norm to --clip_value"),
        _o("clip_value", _pos_float, 15.0, "maximum global gradient norm"),
        _o("gradient_accumulation_steps", _pos_int, 1, "micro-batches per optimizer update"),
        _o("ema", _to_bool, False, "train: keep an EMA of the weights (evaluated and saved as ema.*); "
           "validate: evaluate the EMA weights of --ckpt_path"),
        _o("ema_decay", _bounded(_to_float, 0, 0.999999999), 0.9999, "EMA decay per update"),
        _o("val_while_train", _to_bool, True, "evaluate on --val_split during training (writes <model>-best.ckpt)"),
        _o("val_interval", _pos_int, 1, "evaluate every N epochs (and after the last)"),
        _o("resume", _to_str, "", "resume from a training checkpoint: PATH, or 'auto' for "
           "<ckpt_save_dir>/<model>-last.ckpt (a fresh start when there is none)"),
        _o("resume_opt", _to_bool, False, "upstream's resume: continue the training checkpoint --ckpt_path with its "
           "optimizer state and epoch (same as --resume PATH)"),
        _o("dataset_sink_mode", _to_bool, None, "accepted for upstream recipes (upstream default true); the trainer "
           "always runs compiled steps without per-step host syncs, which is what sink mode buys"),
    ]),
    ("checkpoint", [
        _o("ckpt_save_dir", _to_str, "./ckpt", "output folder: checkpoints, config.yaml, train.log, summary.csv, "
           "curves.png"),
        _o("ckpt_save_interval", _pos_int, 1, "write <model>-<epoch>_<steps>.ckpt every N epochs and after the last "
           "(<model>-last.ckpt is written every epoch)"),
        _o("keep_checkpoint_max", _nonneg_int, 10, "how many <model>-<epoch>_<steps>.ckpt files to keep (0: none)"),
        _o("ckpt_save_policy", _to_str, "latest_k", "which epoch checkpoints to keep: latest_k or top_k (best "
           "val top-1; needs --val_while_train)", choices=("latest_k", "top_k")),
    ]),
    ("distributed", [
        _o("distribute", _to_bool, False, "data-parallel training; launch with msrun (see the README)"),
    ]),
    ("logging", [
        _o("log_interval", _pos_int, 100, "read the loss back and log every N steps (no host sync in between)"),
        _o("results_file", _to_str, "", "validate.py: write the metrics to this .json or .csv file"),
    ]),
]
# fmt: on

OPTIONS: Dict[str, Option] = {opt.name: opt for _, opts in GROUPS for opt in opts}


def option_names() -> List[str]:
    """Every option (flag, YAML key and attribute name) in parser order."""
    return list(OPTIONS)


#: The flag groups every script shares (``infer.py``, ``export.py`` add them with :func:`mindcv.config.add_options`).
MODEL_FLAGS = ("model", "pretrained", "ckpt_path", "num_classes", "in_channels")
SYSTEM_FLAGS = ("mode", "device_target", "debug")
#: Changes to the model flags for scripts that load a checkpoint (``infer.py``, ``export.py``): the model name and the
#: class count default to the checkpoint's.
CHECKPOINT_MODEL_FLAGS = dict(
    model=dict(default=None, help="registered name; default: the checkpoint's, else res2net50"),
    num_classes=dict(help="classifier outputs; default: the checkpoint's, else 1000"),
)
