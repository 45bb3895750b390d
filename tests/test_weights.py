"""Pretrained download and checkpoint loading through the one build path (offline: 127.0.0.1 only)."""

import os

import numpy as np
import pytest
from httpserver import LocalServer, closed_port_url, tls_files

import mindspore as ms

from mindcv.errors import CheckpointError, DownloadError
from mindcv.models import create_model, load_model_checkpoint, res2net
from mindcv.models.helpers import adapt_input_conv
from mindcv.utils import hash_file, save_checkpoint_atomic

NAME = "res2net50"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A 'published' res2net50 checkpoint named like upstream MindCV's: <name>-<sha256[:8]>.ckpt."""
    folder = tmp_path_factory.mktemp("published")
    ms.set_seed(3)
    model = create_model(NAME)
    tmp = str(folder / "tmp.ckpt")
    save_checkpoint_atomic(model, tmp)
    data = open(tmp, "rb").read()
    params = {p.name: p.asnumpy() for p in model.get_parameters()}
    return data, hash_file(tmp)[:8], params


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINDCV_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SSL_CERT_FILE", tls_files()[0])  # the default context trusts the test CA
    return tmp_path / "cache" / "models"


def _serve(monkeypatch, srv, data, prefix):
    url = srv.add(f"/res2net/{NAME}-{prefix}.ckpt", body=data)
    monkeypatch.setitem(res2net.default_cfgs[f"{NAME}.mindcv_in1k"], "url", url)
    return url


def test_pretrained_download_and_load(published, cache, monkeypatch):
    data, prefix, params = published
    with LocalServer() as srv:
        _serve(monkeypatch, srv, data, prefix)
        model = create_model(NAME, pretrained=True)
        assert srv.hits[f"/res2net/{NAME}-{prefix}.ckpt"] == 1
    for p in model.get_parameters():
        assert np.array_equal(p.asnumpy(), params[p.name]), p.name
    assert sorted(os.listdir(cache)) == [f"{NAME}-{prefix}.ckpt"]
    # cached: a second build works with the server gone
    model = create_model(NAME, pretrained=True, num_classes=10, in_channels=1)
    weights = {p.name: p.asnumpy() for p in model.get_parameters()}
    assert weights["classifier.weight"].shape == (10, 2048)  # head dropped, fresh
    assert np.allclose(weights["conv1.weight"], params["conv1.weight"].sum(axis=1, keepdims=True))
    assert np.array_equal(weights["layer4.2.bn3.gamma"], params["layer4.2.bn3.gamma"])


def test_pretrained_bad_hash_leaves_nothing(published, cache, monkeypatch):
    data, prefix, _ = published
    wrong = "0" * 8 if prefix != "0" * 8 else "1" * 8
    with LocalServer() as srv:
        _serve(monkeypatch, srv, data, wrong)
        with pytest.raises(DownloadError, match="(?i)sha256") as e:
            create_model(NAME, pretrained=True)
    assert "--ckpt_path" in str(e.value)
    assert not cache.exists() or os.listdir(cache) == []


def test_pretrained_offline_names_url_cache_and_alternative(cache, monkeypatch):
    url = closed_port_url(f"/res2net/{NAME}-f42cf71b.ckpt")
    monkeypatch.setitem(res2net.default_cfgs[f"{NAME}.mindcv_in1k"], "url", url)
    with pytest.raises(DownloadError) as e:
        create_model(NAME, pretrained=True)
    msg = str(e.value)
    assert url in msg and str(cache) in msg and "--ckpt_path" in msg and "\n" not in msg


def test_checkpoint_roundtrip_and_training_state_ignored(tmp_path):
    ms.set_seed(5)
    src = create_model("res2next50", num_classes=3)
    path = str(tmp_path / "m.ckpt")
    extra = [{"name": "moments." + p.name, "data": p} for p in src.trainable_params()[:3]]
    save_obj = [{"name": p.name, "data": p} for p in src.get_parameters()] + extra
    save_checkpoint_atomic(save_obj, path, append_dict={"epoch": 3, "arch": "res2next50"})
    dst = create_model("res2next50", num_classes=3, checkpoint_path=path)
    for a, b in zip(src.get_parameters(), dst.get_parameters()):
        assert np.array_equal(a.asnumpy(), b.asnumpy())


def test_checkpoint_errors(tmp_path):
    model = create_model("res2net50", num_classes=3)
    with pytest.raises(CheckpointError, match="does not exist"):
        create_model("res2net50", checkpoint_path=str(tmp_path / "missing.ckpt"))
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_model_checkpoint(model, str(empty))
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model_checkpoint(model, str(garbage))
    good = str(tmp_path / "r50_3.ckpt")
    save_checkpoint_atomic(model, good)
    truncated = tmp_path / "trunc.ckpt"
    truncated.write_bytes(open(good, "rb").read()[: os.path.getsize(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model_checkpoint(model, str(truncated))
    # another class count: refused (no silent head drop for local checkpoints)
    with pytest.raises(CheckpointError, match="shape mismatch for classifier.weight"):
        create_model("res2net50", num_classes=5, checkpoint_path=good)
    # another architecture: refused with the differences named
    with pytest.raises(CheckpointError, match="missing .* weights") as e:
        create_model("res2net101", num_classes=3, checkpoint_path=good)
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="shape mismatch|unexpected"):
        create_model("res2net50_v1b", num_classes=3, checkpoint_path=good)
    with pytest.raises(CheckpointError, match="no EMA weights"):
        load_model_checkpoint(model, good, ema=True)
    before = model.conv1.weight.asnumpy().copy()
    with pytest.raises(CheckpointError):
        load_model_checkpoint(model, str(garbage))
    assert np.array_equal(before, model.conv1.weight.asnumpy())  # nothing changed on failure


def test_features_only_loads_full_checkpoint(tmp_path):
    model = create_model("res2net50_v1b", num_classes=3)
    path = str(tmp_path / "v1b.ckpt")
    save_checkpoint_atomic(model, path)
    feats = create_model("res2net50_v1b", num_classes=3, features_only=True, checkpoint_path=path)
    assert np.array_equal(feats.model.conv1[0].weight.asnumpy(), model.conv1[0].weight.asnumpy())


def test_adapt_input_conv():
    w = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32)
    assert np.allclose(adapt_input_conv(1, w), w.sum(1, keepdims=True))
    w5 = adapt_input_conv(5, w)
    assert w5.shape == (8, 5, 3, 3)
    assert np.allclose(w5[:, :3], w * 0.6) and np.allclose(w5[:, 3:], w[:, :2] * 0.6)
    assert adapt_input_conv(3, w) is w
    with pytest.raises(CheckpointError):
        adapt_input_conv(4, w[:, :2])


def test_weights_mirror_env(published, cache, monkeypatch):
    """$MINDCV_WEIGHTS_MIRROR serves the same file name from another host; the SHA-256 prefix is still checked."""
    data, prefix, params = published
    name = f"{NAME}-{prefix}.ckpt"
    monkeypatch.setitem(
        res2net.default_cfgs[f"{NAME}.mindcv_in1k"], "url", f"https://download.mindspore.cn/toolkits/x/{name}"
    )
    with LocalServer() as srv:
        srv.add(f"/mirror/{name}", body=data)
        monkeypatch.setenv("MINDCV_WEIGHTS_MIRROR", srv.url("/mirror/"))
        model = create_model(NAME, pretrained=True)
        assert srv.hits[f"/mirror/{name}"] == 1
    assert np.array_equal(model.conv1.weight.asnumpy(), params["conv1.weight"])


def test_download_timeout_env(monkeypatch):
    from mindcv.utils.download import _default_timeout

    monkeypatch.setenv("MINDCV_DOWNLOAD_TIMEOUT", "2.5")
    assert _default_timeout() == 2.5
    monkeypatch.setenv("MINDCV_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(DownloadError, match="MINDCV_DOWNLOAD_TIMEOUT"):
        _default_timeout()
