"""timm weight tags: huggingface_hub downloads from a local stand-in Hub (127.0.0.1 only), conversion on load, the
converted file cached beside the download, a corrupted and an interrupted transfer, offline mode, the registry.

The served files are generated with the exact keys, shapes and dtypes of timm's models (built on torch's meta
device, so nothing is downloaded and no real weights are needed). huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE
and HF_HUB_OFFLINE when it is imported; in-process tests set the module constants those variables become, and one
test runs fresh processes with the variables themselves.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hubserver import HubServer

hub = pytest.importorskip("huggingface_hub", reason="pip install -e '.[hub]' to test timm weight tags")
import huggingface_hub.constants  # noqa: E402,F401 (the package loads its submodules lazily)
from safetensors.numpy import load as load_safetensors  # noqa: E402
from safetensors.numpy import save as save_safetensors  # noqa: E402

import mindspore as ms  # noqa: E402

from mindcv.config import parse_args  # noqa: E402
from mindcv.deploy.convert import convert_state_dict  # noqa: E402
from mindcv.errors import ConfigError, DownloadError, UnknownNameError  # noqa: E402
from mindcv.models import create_model, get_pretrained_cfg, helpers, list_models  # noqa: E402
from mindcv.models.helpers import load_params_into_model  # noqa: E402
from mindcv.models.registry import get_model_tags  # noqa: E402
from mindcv.models.torch_weights import TORCH_EQUIVALENTS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "timm_in1k"
SMALL = "res2net50_48w_2s"  # the cheapest model
FILE = "model.safetensors"


def _repo(arch: str) -> str:
    return get_pretrained_cfg(f"{arch}.{TAG}")["hf_hub_id"]


def _timm_file(arch: str, seed: int = 0) -> bytes:
    """A safetensors file with the keys, shapes and dtypes of timm's ``TORCH_EQUIVALENTS[arch]`` state dict."""
    torch = pytest.importorskip("torch", reason="torch and timm give the reference keys: pip install -e '.[test]'")
    timm = pytest.importorskip("timm", reason="torch and timm give the reference keys: pip install -e '.[test]'")
    with torch.device("meta"):
        reference = timm.create_model(TORCH_EQUIVALENTS[arch], pretrained=False).state_dict()
    rng = np.random.default_rng(seed)
    tensors = {}
    for key, t in reference.items():
        shape = tuple(t.shape)
        if key.endswith("num_batches_tracked"):
            tensors[key] = np.zeros(shape, np.int64)
        elif key.endswith("running_var"):
            tensors[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            tensors[key] = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
    return save_safetensors(tensors)


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """huggingface_hub pointed at a fresh cache and (once set) the local Hub; mindcv's cache fresh too."""
    monkeypatch.setenv("MINDCV_HOME", str(tmp_path / "mindcv"))
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", False)

    def point_at(url: str) -> None:  # what HF_ENDPOINT=url does at import
        monkeypatch.setattr(hub.constants, "ENDPOINT", url)
        monkeypatch.setattr(
            hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}"
        )

    return point_at


def _logits(model) -> np.ndarray:
    model.set_train(False)
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    return model(ms.Tensor(x)).asnumpy()


def _converted_files(tmp_path):
    return [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "hf") for f in fs if f.startswith("mindcv-")]


@pytest.mark.parametrize("arch", list(TORCH_EQUIVALENTS))
def test_every_timm_tag_loads_its_weights(arch, hub_env, tmp_path):
    data = _timm_file(arch)
    # Where timm is the only source it is the default; beside upstream MindCV's weights it is taken by tag.
    name = arch if get_model_tags(arch)[0] == TAG else f"{arch}.{TAG}"
    with HubServer() as srv:
        served = srv.add(_repo(arch), FILE, data)
        hub_env(srv.url)
        model = create_model(name, pretrained=True)
    assert served.gets == 1 and model.pretrained_cfg["hf_hub_id"] == _repo(arch)
    # Logits equal those of the direct conversion (python -m mindcv.convert's path) of the same file.
    direct = create_model(arch)
    load_params_into_model(direct, convert_state_dict(load_safetensors(data), arch), source="direct conversion")
    expected = _logits(direct)
    assert np.isfinite(expected).all()
    np.testing.assert_array_equal(_logits(model), expected)
    assert len(_converted_files(tmp_path)) == 1


def test_cache_is_reused_without_converting_or_downloading_again(hub_env, tmp_path, monkeypatch):
    data = _timm_file(SMALL)
    with HubServer() as srv:
        served = srv.add(_repo(SMALL), FILE, data)
        hub_env(srv.url)
        first = create_model(SMALL, pretrained=True, num_classes=10, in_channels=1)  # head dropped, conv adapted
        (converted,) = _converted_files(tmp_path)
        stamp = os.stat(converted).st_mtime_ns

        def no_conversion(*args, **kwargs):
            raise AssertionError("converted again")

        monkeypatch.setattr(helpers, "_convert_hub_weights", no_conversion)
        second = create_model(SMALL, pretrained=True)
    assert served.gets == 1 and os.stat(converted).st_mtime_ns == stamp
    # the converted file sits beside the download, in the snapshot folder of the served commit
    assert os.path.isfile(os.path.join(os.path.dirname(converted), FILE))
    weights = {p.name: p.asnumpy() for p in second.get_parameters()}
    adapted = {p.name: p.asnumpy() for p in first.get_parameters()}
    np.testing.assert_array_equal(adapted["conv1.weight"], weights["conv1.weight"].sum(axis=1, keepdims=True))
    assert adapted["classifier.weight"].shape == (10, 2048) and weights["classifier.weight"].shape == (1000, 2048)
    # offline, the cache alone serves it
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    third = create_model(SMALL, pretrained=True)
    np.testing.assert_array_equal(third.classifier.weight.asnumpy(), weights["classifier.weight"])


def test_corrupted_download_is_rejected_and_deleted(hub_env, tmp_path):
    data = _timm_file(SMALL)
    with HubServer() as srv:
        served = srv.add(_repo(SMALL), FILE, data, corrupt=True)
        hub_env(srv.url)
        with pytest.raises(DownloadError, match="SHA-256") as info:
            create_model(SMALL, pretrained=True)
        assert "\n" not in str(info.value) and _repo(SMALL) in str(info.value)
        blobs = [f for _, _, fs in os.walk(tmp_path / "hf") for f in fs if len(f) == 64]
        assert blobs == [] and _converted_files(tmp_path) == []
        served.corrupt = False  # the next attempt downloads anew and succeeds
        create_model(SMALL, pretrained=True)
    assert served.gets == 2 and len(_converted_files(tmp_path)) == 1


def test_interrupted_download_resumes(hub_env):
    data = _timm_file(SMALL)
    with HubServer() as srv:
        served = srv.add(_repo(SMALL), FILE, data, cut_after=len(data) // 3)
        hub_env(srv.url)
        model = create_model(SMALL, pretrained=True)
    # huggingface_hub asked for the rest with a Range request (from the last whole chunk it wrote); the result
    # passed the SHA-256 check
    assert served.gets == 2 and len(served.ranges) == 1
    assert 0 < int(served.ranges[0][len("bytes=") : -1]) <= len(data) // 3
    assert np.isfinite(_logits(model)).all()


def test_offline_without_cache_is_one_line_naming_the_file_and_where(hub_env, tmp_path, monkeypatch):
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError) as info:
        create_model(f"res2net50.{TAG}", pretrained=True)
    message = str(info.value)
    assert "\n" not in message and "HF_HUB_OFFLINE" in message
    assert f"{FILE} of timm/res2net50_26w_4s.in1k" in message
    assert str(tmp_path / "hf" / "models--timm--res2net50_26w_4s.in1k") in message


def test_env_variables_behave_as_huggingface_hub_documents(tmp_path):
    """Fresh processes: HF_ENDPOINT picks the server and HF_HOME the cache; HF_HUB_OFFLINE=1 uses only the cache."""
    data = _timm_file(SMALL)
    code = (
        "import sys; from mindcv.models import create_model; from mindcv.errors import MindCVError\n"
        "try:\n    m = create_model(sys.argv[1], pretrained=True)\n"
        "except MindCVError as e:\n    print('error:', e); sys.exit(2)\n"
        "print('loaded', m.pretrained_cfg['hf_hub_id'])\n"
    )
    env = dict(os.environ, HF_HOME=str(tmp_path / "hfhome"), MINDCV_HOME=str(tmp_path / "mindcv"), GLOG_v="3")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("HF_HUB_CACHE", None)
    with HubServer() as srv:
        served = srv.add(_repo(SMALL), FILE, data)
        run = dict(env, HF_ENDPOINT=srv.url, HF_HUB_OFFLINE="0")
        online = subprocess.run([sys.executable, "-c", code, SMALL], env=run, capture_output=True, text=True)
        assert online.returncode == 0, online.stdout + online.stderr[-2000:]
        assert served.gets == 1
    offline = dict(env, HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", code, SMALL], env=offline, capture_output=True, text=True)
    assert done.returncode == 0 and f"loaded {_repo(SMALL)}" in done.stdout, done.stdout + done.stderr[-2000:]
    assert os.path.isdir(tmp_path / "hfhome" / "hub" / f"models--timm--{SMALL}.in1k")
    missing = subprocess.run([sys.executable, "-c", code, "res2next50"], env=offline, capture_output=True, text=True)
    lines = [line for line in missing.stdout.splitlines() if line.startswith("error:")]
    assert missing.returncode == 2 and len(lines) == 1 and "timm/res2next50.in1k" in lines[0]


def test_registry_lists_and_checks_tags():
    tagged = list_models(pretrained=True)
    assert {f"{arch}.{TAG}" for arch in TORCH_EQUIVALENTS} <= set(tagged)
    assert {"res2net50.mindcv_in1k", "res2net101_v1b.mindcv_in1k"} <= set(tagged)
    assert get_model_tags("res2net50") == ["mindcv_in1k", TAG]  # upstream MindCV's stays the default
    assert get_model_tags("res2net50_26w_8s") == [TAG] and get_model_tags("res2net152") == []
    assert get_pretrained_cfg("res2net50")["url"] and get_pretrained_cfg(f"res2net50.{TAG}")["license"] == "unknown"
    with pytest.raises(UnknownNameError, match="res2net50.timm_in1k") as info:
        create_model("res2net50.in22k")
    assert "\n" not in str(info.value)
    # the command line takes tagged names too (--model res2net50.timm_in1k) and rejects unknown tags in one line
    assert parse_args(["--model", f"res2net50.{TAG}"]).model == f"res2net50.{TAG}"
    with pytest.raises(ConfigError, match="res2net50.timm_in1k") as info:
        parse_args(["--model", "res2net50.in22k"])
    assert "\n" not in str(info.value)


def test_model_cards_list_every_tag():
    text = open(os.path.join(ROOT, "configs", "res2net", "README.md"), encoding="utf-8").read()
    for name in list_models(pretrained=True):
        cfg = get_pretrained_cfg(name)
        row = next((line for line in text.splitlines() if line.startswith(f"| {name} |")), None)
        assert row is not None, name
        top1, top5 = (float(x) for x in row.strip(" |").split("|")[-1].split("/"))
        assert (top1, top5) == (cfg["top1"], cfg["top5"]), row
        assert cfg.get("hf_hub_id", cfg["url"].split("/")[-1]) in row and cfg.get("license", "none stated") in row
