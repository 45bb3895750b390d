"""Upstream MindCV's Python names beside ours: mindcv.utils helpers, model-loading keywords, feature wrapper, the root
config.py pair and upstream's checkpoint and result-line formats."""

import io
import os
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest
from httpserver import LocalServer, tls_files

import mindspore as ms
from mindspore import nn

from mindcv.config import load_yaml_config, parse_args
from mindcv.errors import CheckpointError, ConfigError, DownloadError
from mindcv.models import FeatureExtractWrapper, create_model, get_pretrained_cfg_value, has_pretrained_cfg_key
from mindcv.models.helpers import load_model_checkpoint
from mindcv.utils import CheckpointManager, DownLoad, extract_archive, set_seed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _net() -> nn.Cell:
    return nn.Dense(3, 2)


@pytest.mark.parametrize("policy", ["latest_k", "top_k", None])
def test_checkpoint_manager_policies(tmp_path, policy):
    manager = CheckpointManager(ckpt_save_policy=policy)
    metrics = [0.3, 0.9, 0.1, 0.5]
    for i, metric in enumerate(metrics):
        kept = manager.save_ckpoint(_net(), num_ckpt=2, metric=metric, save_path=str(tmp_path / f"net_{i}.ckpt"))
    files = sorted(os.listdir(tmp_path))
    if policy is None:
        assert kept is None and files == [f"net_{i}.ckpt" for i in range(4)]
    elif policy == "latest_k":
        assert kept == [str(tmp_path / "net_2.ckpt"), str(tmp_path / "net_3.ckpt")]
        assert files == ["net_2.ckpt", "net_3.ckpt"]
    else:  # best first; the 0.1 checkpoint was never written
        assert kept == [(str(tmp_path / "net_1.ckpt"), 0.9), (str(tmp_path / "net_3.ckpt"), 0.5)]
        assert files == ["net_1.ckpt", "net_3.ckpt"]


def test_checkpoint_manager_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="ckpt_save_policy"):
        CheckpointManager("best_k")
    with pytest.raises(ConfigError, match="metric"):
        CheckpointManager("top_k").save_ckpoint(_net(), 2, None, str(tmp_path / "a.ckpt"))


def test_set_seed_rank_offsets_the_seed():
    set_seed(5, rank=2)
    a = np.random.rand()
    set_seed(7)
    b = np.random.rand()
    assert a == b


def _archives(tmp_path):
    payload = {"data/Canidae/train/dogs/0.txt": b"woof", "data/Canidae/val/wolves/0.txt": b"howl"}
    zpath = tmp_path / "set.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for name, body in payload.items():
            z.writestr(name, body)
    tpath = tmp_path / "set.tar.gz"
    with tarfile.open(tpath, "w:gz") as t:
        for name, body in payload.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    return payload, zpath, tpath


def test_extract_archive_zip_and_tar(tmp_path):
    payload, zpath, tpath = _archives(tmp_path)
    for archive, dest in ((zpath, tmp_path / "z"), (tpath, tmp_path / "t")):
        assert extract_archive(str(archive), str(dest)) == str(dest)
        for name, body in payload.items():
            assert (dest / name).read_bytes() == body
        assert not [n for n in os.listdir(dest) if n.startswith(".")]  # no staging folder left


def test_extract_archive_refuses_escaping_members(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", b"x")
    with pytest.raises(DownloadError, match="outside"):
        extract_archive(str(evil), str(tmp_path / "dest"))
    assert not (tmp_path / "outside.txt").exists()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="download it again"):
        extract_archive(str(bad), str(tmp_path / "dest"))


def test_download_and_extract_archive_from_a_local_server(tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", tls_files()[0])
    payload, zpath, _ = _archives(tmp_path)
    body = zpath.read_bytes()
    with LocalServer() as server:
        url = server.add("/Canidae_data.zip", body)
        root = tmp_path / "root"
        DownLoad().download_and_extract_archive(url, str(root))
        assert (root / "Canidae_data.zip").read_bytes() == body
        for name, data in payload.items():
            assert (root / name).read_bytes() == data
        assert DownLoad().check_md5(str(root / "Canidae_data.zip"), DownLoad.calculate_md5(str(zpath)))
        DownLoad().download_url(url, str(root))  # present: no second request
        assert server.hits["/Canidae_data.zip"] == 1


def test_create_model_loads_ema_weights_and_auto_maps_names(tmp_path):
    model = create_model("res2net50_48w_2s", num_classes=3)
    params = {p.name: p.asnumpy() for p in model.get_parameters()}
    shifted = {k: v + 1.0 if v.dtype.kind == "f" else v for k, v in params.items()}
    entries = [{"name": k, "data": ms.Tensor(v)} for k, v in params.items()]
    entries += [{"name": f"ema.{k}", "data": ms.Tensor(v)} for k, v in shifted.items()]
    path = str(tmp_path / "with_ema.ckpt")
    ms.save_checkpoint(entries, path)
    ema = create_model("res2net50_48w_2s", num_classes=3, checkpoint_path=path, ema=True)
    np.testing.assert_array_equal(ema.classifier.weight.asnumpy(), shifted["classifier.weight"])

    renamed = str(tmp_path / "renamed.ckpt")
    ms.save_checkpoint([{"name": "backbone." + k, "data": ms.Tensor(v)} for k, v in params.items()], renamed)
    with pytest.raises(CheckpointError, match="missing"):
        create_model("res2net50_48w_2s", num_classes=3, checkpoint_path=renamed)
    mapped = create_model("res2net50_48w_2s", num_classes=3, checkpoint_path=renamed, auto_mapping=True)
    for p in mapped.get_parameters():
        np.testing.assert_array_equal(p.asnumpy(), params[p.name])
    # upstream's positional order: (model, checkpoint_path, ema, auto_mapping)
    load_model_checkpoint(mapped, path, True)
    np.testing.assert_array_equal(mapped.classifier.weight.asnumpy(), shifted["classifier.weight"])
    with pytest.raises(ConfigError, match="checkpoint_path"):
        create_model("res2net50_48w_2s", num_classes=3, ema=True)


def test_pretrained_cfg_values():
    assert get_pretrained_cfg_value("res2net50", "num_classes") == 1000
    assert get_pretrained_cfg_value("res2net50", "no_such_key") is None
    assert get_pretrained_cfg_value("no_such_model", "url") is None
    assert has_pretrained_cfg_key("res2net50", "url") and not has_pretrained_cfg_key("res2net50", "no_such_key")


class _Stack(nn.Cell):
    """A plain Cell with feature_info and no forward_intermediates; block names inside a SequentialCell."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3)
        self.body = nn.SequentialCell([nn.Conv2d(4, 6, 3, stride=2), nn.Conv2d(6, 8, 3, stride=2)])
        self.flatten_sequential = True
        self.feature_info = [
            dict(chs=4, reduction=1, name="stem"),
            dict(chs=6, reduction=2, name="body.0"),
            dict(chs=8, reduction=4, name="body.1"),
        ]

    def construct(self, x):
        return self.body(self.stem(x))


@pytest.mark.parametrize("mode", [0, 1])
def test_feature_extract_wrapper(mode):
    ms.set_context(mode=mode)
    net = _Stack()
    x = ms.Tensor(np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32))
    stem = net.stem(x)
    expected = [stem, net.body[0](stem), net.body[1](net.body[0](stem))]
    wrapped = FeatureExtractWrapper(net, [0, 2])
    out = wrapped(x)
    assert len(out) == 2 and wrapped.out_channels == [4, 8]
    np.testing.assert_allclose(out[0].asnumpy(), expected[0].asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(out[1].asnumpy(), expected[2].asnumpy(), rtol=1e-6)
    model = create_model("res2net50_48w_2s", num_classes=3)
    feats = FeatureExtractWrapper(model, [1, 4])(ms.ops.ones((1, 3, 64, 64), ms.float32))
    assert [f.shape[1] for f in feats] == [256, 2048]
    net.flatten_sequential = False
    with pytest.raises(ConfigError, match="flatten_sequential"):
        FeatureExtractWrapper(net, [1])


def test_root_config_module_is_upstreams():
    """``from config import create_parser, parse_args`` (upstream's root module) from the project root."""
    code = (
        "from config import create_parser, parse_args, _check_cfgs_in_parser\n"
        "pc, p = create_parser()\n"
        "_check_cfgs_in_parser({'mode': 1, 'dataset': 'imagenet'}, p)\n"
        "try:\n    _check_cfgs_in_parser({'valid': False}, p)\nexcept KeyError as e:\n    print(e.args[0])\n"
        "a = parse_args(['--mode=1', '--mean', '123.675', '116.28', '103.53', '--dataset_sink_mode', 'false'])\n"
        "print(a.mode, a.amp_level, a.opt, a.batch_size, [round(m, 3) for m in a.mean])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-2:] == ["valid does not exist in ArgumentParser!", "1 O0 adam 128 [0.485, 0.456, 0.406]"]


# Every option of upstream MindCV's config.py (51b0636), and the defaults that it and this project share.
UPSTREAM_OPTIONS = (
    "mode distribute val_while_train val_interval log_interval seed device_target dataset data_dir train_split "
    "val_split dataset_download num_parallel_workers shuffle num_samples batch_size drop_remainder image_resize scale "
    "ratio hflip vflip color_jitter interpolation auto_augment aug_splits re_prob re_scale re_ratio re_value "
    "re_max_attempts mean std crop_pct mixup cutmix cutmix_prob aug_repeats model num_classes in_channels drop_rate "
    "drop_path_rate pretrained ckpt_path resume_opt keep_checkpoint_max ckpt_save_dir ckpt_save_interval "
    "ckpt_save_policy epoch_size dataset_sink_mode ema ema_decay clip_grad clip_value layer_decay "
    "gradient_accumulation_steps opt momentum weight_decay use_nesterov weight_decay_filter eps scheduler lr min_lr "
    "warmup_epochs warmup_factor decay_epochs decay_rate multi_step_decay_milestones lr_epoch_stair num_cycles "
    "cycle_decay loss label_smoothing aux_factor reduction amp_level val_amp_level amp_cast_list loss_scale_type "
    "loss_scale drop_overflow_update eval_shuffle"
).split()
UPSTREAM_DEFAULTS = dict(
    mode=0, distribute=False, val_interval=1, log_interval=100, seed=42, dataset="imagenet", train_split="train",
    val_split="val", dataset_download=False, shuffle=True, num_samples=None, batch_size=128, drop_remainder=True,
    scale=[0.08, 1.0], ratio=[0.75, 1.333], vflip=0.0, auto_augment=None, aug_splits=0, re_prob=0.0,
    re_scale=[0.02, 0.33], re_ratio=[0.3, 3.3], re_max_attempts=10, mixup=0.0, cutmix=0.0, cutmix_prob=1.0,
    aug_repeats=0, num_classes=None, in_channels=3, drop_rate=None, drop_path_rate=None, pretrained=False,
    ckpt_path="", keep_checkpoint_max=10, ckpt_save_dir="./ckpt", ckpt_save_interval=1, ckpt_save_policy="latest_k",
    epoch_size=90, ema=False, ema_decay=0.9999, clip_grad=False, clip_value=15.0, layer_decay=None,
    gradient_accumulation_steps=1, opt="adam", momentum=0.9, weight_decay=1e-6, use_nesterov=False,
    weight_decay_filter="disable", eps=1e-10, scheduler="cosine_decay", lr=0.001, min_lr=1e-6, warmup_epochs=3,
    warmup_factor=0.0, decay_rate=0.9, lr_epoch_stair=False, num_cycles=1, cycle_decay=1.0, loss="CE",
    label_smoothing=0.0, aux_factor=0.0, reduction="mean", amp_level="O0", val_amp_level="O0", amp_cast_list=None,
    loss_scale_type="fixed", loss_scale=1.0, drop_overflow_update=False, eval_shuffle=False,
)  # fmt: skip


def test_every_upstream_option_is_accepted_with_upstreams_default(tmp_path):
    cfg = parse_args([])
    assert all(hasattr(cfg, name) for name in UPSTREAM_OPTIONS)
    different = {k: (getattr(cfg, k), v) for k, v in UPSTREAM_DEFAULTS.items() if getattr(cfg, k) != v}
    assert not different, different
    assert cfg.device_target in ("CPU", "GPU", "Ascend")
    # upstream recipe keys, including the two every upstream Res2Net recipe holds
    recipe = tmp_path / "upstream.yaml"
    keys = "shuffle: True\ndataset_sink_mode: True\nmean: [123.675, 116.28, 103.53]\nstd: [58.395, 57.12, 57.375]\n"
    recipe.write_text(keys + "re_value: random\naug_repeats: 3\n")
    assert set(load_yaml_config(str(recipe))) == {
        "shuffle",
        "dataset_sink_mode",
        "mean",
        "std",
        "re_value",
        "aug_repeats",
    }
    cfg = parse_args(["-c", str(recipe)])
    np.testing.assert_allclose(cfg.mean, [0.485, 0.456, 0.406])
    np.testing.assert_allclose(cfg.std, [0.229, 0.224, 0.225])
    cfg = parse_args(["--ckpt_path", "run/last.ckpt", "--resume_opt"])
    assert (cfg.resume, cfg.ckpt_path) == ("run/last.ckpt", "")
    with pytest.raises(ConfigError, match="--ckpt_path"):
        parse_args(["--resume_opt"])
    with pytest.raises(ConfigError, match="aug_splits"):
        parse_args(["--aug_splits", "2"])
