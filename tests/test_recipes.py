"""The ImageNet recipes resolve to upstream MindCV's published hyperparameters, each written once."""

import glob
import os

import pytest
import yaml
from scriptutil import run_script

from mindcv.config import parse_args

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "res2net")

SHARED = dict(
    dataset="imagenet",
    batch_size=32,
    opt="momentum",
    lr=0.1,
    momentum=0.9,
    weight_decay=0.0001,
    label_smoothing=0.1,
    re_prob=0.5,
    color_jitter=[0.4],
    loss_scale_type="fixed",
    loss_scale=1024.0,
    val_interval=5,
    keep_checkpoint_max=10,
    num_classes=1000,
    distribute=True,
)
ASCEND = {
    "res2net50": dict(epoch_size=200, scheduler="cosine_decay", warmup_epochs=4),
    "res2net101": dict(epoch_size=140, scheduler="step_decay", decay_epochs=30, decay_rate=0.1),
    "res2net50_v1b": dict(epoch_size=300, scheduler="cosine_decay", warmup_epochs=5, mixup=0.2),
    "res2net101_v1b": dict(epoch_size=200, scheduler="cosine_decay", warmup_epochs=4),
}
GPU = dict(amp_level="O2", epoch_size=300, scheduler="cosine_decay", warmup_epochs=5, mixup=0.2)


@pytest.mark.parametrize("model", sorted(ASCEND))
@pytest.mark.parametrize("device", ["ascend", "gpu"])
def test_imagenet_recipe(model, device):
    cfg = parse_args(["-c", os.path.join(ROOT, f"{model}_{device}.yaml")])
    expected = dict(SHARED, model=model, device_target="Ascend" if device == "ascend" else "GPU")
    expected.update(dict(ASCEND[model], amp_level="O3") if device == "ascend" else GPU)
    for key, value in expected.items():
        assert getattr(cfg, key) == (pytest.approx(value) if isinstance(value, float) else value), key


def test_no_hyperparameter_written_twice():
    """A key set in a file is not set again, to the same value, by one of its bases."""
    for path in glob.glob(os.path.join(ROOT, "*.yaml")):
        data = yaml.safe_load(open(path)) or {}
        for base in data.get("_base_", []):
            parent = yaml.safe_load(open(os.path.join(ROOT, base))) or {}
            same = [k for k in data if k in parent and parent[k] == data[k]]
            assert not same, f"{os.path.basename(path)} repeats {same} from {base}"


def test_seed_cifar10_recipe():
    cfg = parse_args(["-c", os.path.join(ROOT, "res2net50_cifar10_finetune.yaml")])
    assert (cfg.model, cfg.pretrained, cfg.opt, cfg.lr, cfg.dataset, cfg.num_classes) == (
        "res2net50",
        True,
        "momentum",
        0.001,
        "cifar10",
        10,
    )
    assert cfg.dataset_download and cfg.image_resize == 224


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["res2net50_ascend.yaml", "res2net50_v1b_gpu.yaml"])
def test_amp_recipe_trains_a_short_epoch_at_32px(recipe, tmp_path, capsys):
    """The recipes' AMP levels (O3 on Ascend, O2 on GPU) on the CPU at CIFAR size. Their loss scale of 1024 overflows
    the float16 gradients of BatchNorms over 8 values at 1x1 maps (the trainer then stops, as it should), so the
    scale is 1 here."""
    out = str(tmp_path / "run")
    overrides = [
        "--device_target", "CPU", "--distribute", "false", "--dataset", "digits", "--num_classes", "10",
        "--image_resize", "32", "--batch_size", "8", "--num_samples", "16", "--epoch_size", "1",
        "--val_while_train", "false", "--ckpt_save_dir", out, "--log_interval", "1", "--loss_scale", "1",
    ]  # fmt: skip
    rc, stdout, stderr = run_script("train", ["-c", os.path.join(ROOT, recipe)] + overrides, capsys)
    assert rc == 0, stderr
    assert "loss is nan" not in stdout + stderr and "epoch 1/1: train loss" in stdout
    model = yaml.safe_load(open(os.path.join(ROOT, recipe)))["model"]
    assert os.path.isfile(os.path.join(out, f"{model}-1_2.ckpt"))  # upstream's name, last epoch always saved
