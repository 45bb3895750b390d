"""The grouped parser: YAML + command-line precedence, key=value overrides, bools, lists, bases, errors."""

import importlib.util
import os

import pytest
import yaml

from mindcv.config import (
    BASE_KEY,
    CHECKPOINT_MODEL_FLAGS,
    MODEL_FLAGS,
    SYSTEM_FLAGS,
    config_to_dict,
    create_parser,
    load_yaml_config,
    option_names,
    parse_args,
    save_config,
)
from mindcv.errors import ConfigError

SEED_TRAIN = (
    "--model=res2net50 --pretrained --opt=momentum --lr=0.001 dataset=cifar10 --num_classes=10 --dataset_download"
)
SEED_VALIDATE = "--model=res2net50 --dataset=imagenet --val_split=val --ckpt_path=./ckpt/res2net50-best.ckpt"

# Upstream MindCV flag names the issue requires, plus the additions a timm user expects.
REQUIRED_FLAGS = (
    "model pretrained num_classes in_channels drop_rate drop_path_rate ckpt_path dataset data_dir train_split "
    "val_split dataset_download num_parallel_workers batch_size drop_remainder epoch_size opt lr min_lr momentum "
    "weight_decay weight_decay_filter use_nesterov scheduler warmup_epochs decay_epochs decay_rate "
    "multi_step_decay_milestones loss label_smoothing mixup cutmix auto_augment re_prob amp_level loss_scale_type "
    "loss_scale ema ema_decay clip_grad clip_value gradient_accumulation_steps mode device_target distribute "
    "val_while_train val_interval ckpt_save_dir ckpt_save_interval keep_checkpoint_max ckpt_save_policy seed "
    "log_interval resume debug"
).split()


def _write(path, data) -> str:
    path.write_text(yaml.safe_dump(data) if isinstance(data, dict) else data)
    return str(path)


def test_every_required_flag_exists():
    missing = [f for f in REQUIRED_FLAGS if f not in option_names()]
    assert not missing


def test_seed_train_command_parses_exactly():
    cfg = parse_args(SEED_TRAIN.split())
    assert (cfg.model, cfg.pretrained, cfg.opt, cfg.lr) == ("res2net50", True, "momentum", 0.001)
    assert (cfg.dataset, cfg.num_classes, cfg.dataset_download) == ("cifar10", 10, True)
    # the dashed spelling is the same command
    assert vars(parse_args(SEED_TRAIN.replace("dataset=", "--dataset=").split())) == vars(cfg)


def test_seed_validate_command_parses():
    cfg = parse_args(SEED_VALIDATE.split())
    assert (cfg.dataset, cfg.val_split, cfg.ckpt_path) == ("imagenet", "val", "./ckpt/res2net50-best.ckpt")
    assert cfg.data_dir is None  # resolved to ./data/imagenet by dataset_kwargs


@pytest.mark.parametrize(
    "tokens, expected",
    [
        (["--ema"], True),
        (["--ema", "false"], False),
        (["--ema=0"], False),
        (["--ema", "yes"], True),
        (["--ema", "No"], False),
        (["ema=true"], True),
        ([], False),
    ],
)
def test_booleans(tokens, expected):
    assert parse_args(tokens).ema is expected


def test_bool_flag_followed_by_override_and_flag():
    cfg = parse_args(["--pretrained", "dataset=cifar10", "--ema", "--lr", "0.1"])
    assert cfg.pretrained is True and cfg.ema is True and cfg.dataset == "cifar10" and cfg.lr == 0.1


@pytest.mark.parametrize(
    "tokens", [["--scale", "0.2", "0.9"], ["--scale=0.2,0.9"], ["scale=0.2,0.9"], ["--scale", "0.2,", "0.9"]]
)
def test_lists_from_command_line(tokens):
    assert parse_args(tokens).scale == [0.2, 0.9]


def test_list_values_and_length(tmp_path):
    cfg = parse_args(["--mean", "0.5", "0.4", "0.3", "--std", "0.2", "0.2", "0.2"])
    assert cfg.mean == [0.5, 0.4, 0.3]
    with pytest.raises(ConfigError, match="exactly 2"):
        parse_args(["--scale", "0.1", "0.5", "0.9"])
    path = _write(tmp_path / "l.yaml", {"scale": [0.3, 1.0], "multi_step_decay_milestones": [30, 60]})
    cfg = parse_args(["-c", path])
    assert cfg.scale == [0.3, 1.0] and cfg.multi_step_decay_milestones == [30.0, 60.0]


def test_yaml_then_command_line_precedence(tmp_path):
    path = _write(tmp_path / "c.yaml", {"lr": 0.5, "batch_size": 16, "ema": True, "dataset": "digits"})
    cfg = parse_args(["-c", path, "--lr", "0.01", "batch_size=4"])
    assert (cfg.lr, cfg.batch_size, cfg.ema, cfg.dataset) == (0.01, 4, True, "digits")
    # flag before -c: the command line still wins over the file
    cfg = parse_args(["--lr=0.02", "--config", path])
    assert cfg.lr == 0.02
    # the file wins over the parser defaults
    assert parse_args(["-c", path]).lr == 0.5


def test_none_resets_optional(tmp_path):
    path = _write(tmp_path / "d.yaml", {"drop_rate": 0.2})
    assert parse_args(["-c", path, "--drop_rate", "none"]).drop_rate is None
    with pytest.raises(ConfigError, match="needs a value"):
        parse_args(["--lr", "none"])


def test_base_inheritance(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "base.yaml", {"lr": 0.1, "batch_size": 64, "epoch_size": 90, "opt": "momentum"})
    _write(tmp_path / "sub" / "mid.yaml", {BASE_KEY: "../base.yaml", "batch_size": 32, "ema": True})
    child = _write(tmp_path / "sub" / "child.yaml", {BASE_KEY: ["mid.yaml"], "lr": 0.2})
    cfg = parse_args(["-c", child, "--epoch_size", "3"])
    assert (cfg.lr, cfg.batch_size, cfg.epoch_size, cfg.opt, cfg.ema) == (0.2, 32, 3, "momentum", True)


def test_base_cycle_and_missing_base(tmp_path):
    _write(tmp_path / "a.yaml", {BASE_KEY: "b.yaml"})
    _write(tmp_path / "b.yaml", {BASE_KEY: "a.yaml"})
    with pytest.raises(ConfigError, match="circular"):
        load_yaml_config(str(tmp_path / "a.yaml"))
    _write(tmp_path / "c.yaml", {BASE_KEY: "nope.yaml"})
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        load_yaml_config(str(tmp_path / "c.yaml"))


def test_unknown_yaml_key_names_key_file_and_suggestion(tmp_path):
    path = _write(tmp_path / "bad.yaml", {"lr": 0.1, "warmup_epoch": 2})
    with pytest.raises(ConfigError) as e:
        parse_args(["-c", path])
    msg = str(e.value)
    assert "'warmup_epoch'" in msg and path in msg and "'warmup_epochs'" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "tokens, needle",
    [
        (["--lr", "abc"], "'abc' is not a number"),
        (["--batch_size", "0"], "must be >= 1"),
        (["--batch_size", "-4"], "must be >= 1"),
        (["--epoch_size", "2.5"], "not an integer"),
        (["--mode", "3"], "not one of: 0, 1"),
        (["--device_target", "TPU"], "not one of: CPU, GPU, Ascend"),
        (["--amp_level", "O4"], "did you mean"),
        (["--model", "res2net5O"], "did you mean res2net50"),
        (["--opt", "sgdd"], "choose one of: sgd"),
        (["--scheduler", "cosine"], "cosine_decay"),
        (["--loss", "focal"], "choose one of"),
        (["--dataset", "cifar11"], "cifar10"),
        (["--lrr", "0.1"], "did you mean 'lr'"),
        (["lrr=0.1"], "did you mean 'lr'"),
        (["--ema", "maybe"], "not a boolean"),
        (["--pretrained", "--ckpt_path", "x.ckpt"], "use one"),
        (["--ckpt_save_policy", "top_k", "--val_while_train", "false"], "add --val_while_train"),
        (["stray"], "unexpected argument"),
    ],
)
def test_bad_values_are_one_line_config_errors(tokens, needle):
    with pytest.raises(ConfigError) as e:
        parse_args(tokens)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_yaml_value_type_error_names_file(tmp_path):
    path = _write(tmp_path / "t.yaml", {"batch_size": "many"})
    with pytest.raises(ConfigError, match=r"batch_size: 'many' is not an integer \(in .*t.yaml\)"):
        parse_args(["-c", path])


def test_case_insensitive_choices():
    cfg = parse_args(["--device_target", "cpu", "--amp_level", "o0"])
    assert (cfg.device_target, cfg.amp_level) == ("CPU", "O0")


def test_value_after_flag_is_not_an_override():
    assert parse_args(["--data_dir", "a=b"]).data_dir == "a=b"


def test_saved_config_round_trips(tmp_path):
    cfg = parse_args(["--lr", "0.3", "--scale", "0.5", "1.0", "--ema", "dataset=digits", "--mean", "0.1", "0.2", "0.3"])
    path = save_config(cfg, str(tmp_path / "config.yaml"))
    text = open(path).read()
    # grouped under comment headers in parser order
    assert text.index("# model") < text.index("# data") < text.index("# optimizer") < text.index("# logging")
    again = parse_args(["-c", path])
    assert config_to_dict(again) == config_to_dict(cfg)


def test_help_lists_groups(capsys):
    text = create_parser().format_help()
    for group in ("model:", "data:", "augmentation:", "optimizer:", "schedule:", "loss:", "training:", "checkpoint:"):
        assert group in text
    with pytest.raises(SystemExit) as e:
        parse_args(["--help"])
    assert e.value.code == 0


def test_no_sys_path_or_env_side_effects():
    before = dict(os.environ)
    parse_args(["--lr", "0.1"])
    assert dict(os.environ) == before


@pytest.mark.parametrize("script", ["infer.py", "export.py"])
def test_scripts_share_the_model_and_system_flags(script, capsys):
    """infer.py and export.py read --model/--ckpt_path/--device_target... with train.py's converters and help."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(f"{script[:-3]}_script", os.path.join(root, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    inputs = ["x.jpg"] if script == "infer.py" else []
    args = module.parse_args(inputs + ["--pretrained", "false", "--device_target", "cpu", "--num_classes", "7"])
    assert (args.pretrained, args.device_target, args.num_classes, args.model, args.mode) == (False, "CPU", 7, None, 0)
    with pytest.raises(ConfigError, match="num_classes"):
        module.parse_args(inputs + ["--num_classes", "0"])
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    train_help = {a.dest: a.help for a in create_parser()._actions}
    for name in set(MODEL_FLAGS + SYSTEM_FLAGS) - set(CHECKPOINT_MODEL_FLAGS):
        assert " ".join(train_help[name].split()) in shown, name
