"""Download faults end to end, at the level users meet them: pretrained weights and the CIFAR-10 archive.

``tests/test_download.py`` covers :func:`mindcv.utils.download.download_url` itself. Here the same faults
are injected under ``create_model(..., pretrained=True)`` and ``create_dataset("cifar10", download=True)``,
with everything served by a local HTTPS server on 127.0.0.1 (``tests/httpserver.py``). For each fault:
one clear line naming the URL and what to do, no partial file left in the cache or the data folder, and a
later download, once the server is fixed, succeeds and gives usable weights or data.

The client side is configured only the way a user can: ``SSL_CERT_FILE`` makes the default TLS context
trust the test CA, ``MINDCV_HOME`` is the cache, ``MINDCV_DATASET_MIRROR`` points CIFAR at the server.
Two things have no user-facing setting and are patched: the weight URL (``default_cfgs``) and the download
timeout (``download_url``'s default of 30 s, which the pretrained and CIFAR paths do not expose).
"""

import contextlib
import dataclasses
import hashlib
import io
import os
import shutil
import tarfile

import numpy as np
import pytest
from badinput_util import assert_one_line_error, run_command
from httpserver import LocalServer, tls_files

import mindspore as ms

from mindcv.data import cifar, create_dataset
from mindcv.errors import DownloadError
from mindcv.models import create_model, res2net
from mindcv.utils import download
from mindcv.utils.checkpoint import save_checkpoint_atomic

MODEL = "res2net50"
C10 = cifar.CIFAR_SPECS["cifar10"]
TIMEOUT = 2.0  # seconds, for the failing attempts only; the stalled routes wait far longer
STALL = 30.0
# Faults that download_url retries (HTTP 5xx, cut connection, timeout); CIFAR retries them, pretrained does not.
TRANSIENT = ("http-500", "cut-mid-file", "slow-server", "stall-mid-file")


def _fault_route(fault, body, http_url):
    """The LocalServer route arguments that produce ``fault`` for a file whose good bytes are ``body``."""
    half = len(body) // 2
    return {
        # Same length, different bytes: a corrupted or replaced file on the server.
        "wrong-hash": dict(body=body[:half] + bytes(len(body) - half)),
        "http-404": dict(status=404),
        "http-500": dict(status=500),
        "cut-mid-file": dict(body=body, cut_after=half),
        "slow-server": dict(body=body, delay=STALL),  # no status line within the timeout
        "stall-mid-file": dict(body=body, delay=STALL, delay_after=half),
        "redirect-to-http": dict(redirect=http_url),
    }[fault]


# The words each error must hold, besides the URL; every message also names the manual fix.
FAULT_WORDS = {
    "wrong-hash": ["mismatch", "nothing was saved"],
    "http-404": ["HTTP 404", "check the URL"],
    "http-500": ["HTTP 500", "retry later"],
    "cut-mid-file": ["connection cut after"],
    "slow-server": [f"within {TIMEOUT:g} s (timeout)"],
    "stall-mid-file": [f"sent nothing for {TIMEOUT:g} s", "(timeout)"],
    "redirect-to-http": ["redirects to http://", "not https"],
}
FAULTS = list(FAULT_WORDS)


@pytest.fixture(autouse=True)
def _user_environment(monkeypatch, tmp_path):
    """A private cache, the test CA trusted by the default context, no proxy."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(cifar.MIRROR_ENV, raising=False)
    monkeypatch.setenv("MINDCV_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SSL_CERT_FILE", tls_files()[0])


@contextlib.contextmanager
def _short_timeout():
    """No option sets the timeout of these downloads (see the module docstring): shorten its default.

    Only around the failing attempt: the later good download keeps the default, so a loaded machine cannot
    turn it into a timeout.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(download.download_url.__kwdefaults__, "timeout", TIMEOUT)
        yield


@pytest.fixture(scope="module")
def servers():
    """The HTTPS server, and a plain-HTTP one that redirects point at (it must never be asked)."""
    with LocalServer(max_lifetime=900) as https, LocalServer(tls=False, max_lifetime=900) as http:
        yield https, http


def _files_under(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files)


def _one_line(error, url, words):
    message = str(error)
    assert "\n" not in message and url in message, message
    missing = [w for w in words if w not in message]
    assert not missing, f"{missing} not in: {message}"


# ----------------------------------------------------------------------------------------------------------------------
# pretrained weights


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A res2net50 checkpoint named as upstream publishes it (``<name>-<sha256[:8]>.ckpt``), and its weights."""
    folder = tmp_path_factory.mktemp("published")
    ms.set_seed(7)
    model = create_model(MODEL)
    path = save_checkpoint_atomic(model, str(folder / "w.ckpt"))
    with open(path, "rb") as f:
        data = f.read()
    weights = {p.name: p.asnumpy() for p in model.get_parameters()}
    shutil.rmtree(folder)
    return data, hashlib.sha256(data).hexdigest()[:8], weights


@pytest.mark.parametrize("fault", FAULTS)
def test_pretrained_weights(fault, servers, published, monkeypatch, tmp_path):
    https, http = servers
    data, prefix, weights = published
    path = f"/weights-{fault}/{MODEL}-{prefix}.ckpt"
    http.add(path, data)
    url = https.add(path, **_fault_route(fault, data, http.url(path)))
    monkeypatch.setitem(res2net.default_cfgs[f"{MODEL}.mindcv_in1k"], "url", url)
    cache = tmp_path / "home" / "models"

    with _short_timeout(), pytest.raises(DownloadError) as err:
        create_model(MODEL, pretrained=True)
    _one_line(err.value, url, FAULT_WORDS[fault] + ["--ckpt_path", str(cache)])
    assert _files_under(str(tmp_path / "home")) == []  # no partial, temporary or unverified file
    assert https.hits[path] == 1 and http.hits[path] == 0

    https.add(path, data)  # the server is fixed
    model = create_model(MODEL, pretrained=True)
    assert _files_under(str(cache)) == [f"{MODEL}-{prefix}.ckpt"]
    for p in model.get_parameters():
        assert np.array_equal(p.asnumpy(), weights[p.name]), p.name


# ----------------------------------------------------------------------------------------------------------------------
# CIFAR-10


def _cifar10_archive():
    """The official cifar-10-binary.tar.gz layout at full size (MindSpore reads only the official record counts).

    Record ``i`` (over all files in order) has label ``i % 10`` and its index in the red channel of pixels
    (0, 0) and (0, 1), the rest zero, so the archive compresses to a few MB.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        start = 0
        for name in C10.train_files + C10.test_files:
            count = C10.records(name)
            index = np.arange(start, start + count)
            records = np.zeros((count, C10.record_bytes), dtype=np.uint8)
            records[:, 0] = index % 10
            records[:, 1] = index & 0xFF
            records[:, 2] = index >> 8
            info = tarfile.TarInfo(f"{C10.folder}/{name}")
            info.size = records.nbytes
            tar.addfile(info, io.BytesIO(records.tobytes()))
            start += count
    return buf.getvalue()


@pytest.fixture(scope="module")
def cifar_archive():
    return _cifar10_archive()


@pytest.fixture
def cifar_mirror(servers, cifar_archive, monkeypatch, request):
    """Serve the CIFAR archive under a per-test prefix, expected with the archive's MD5; returns a route setter."""
    https, http = servers
    prefix = f"/cifar-{request.node.name}".replace("[", "-").replace("]", "")
    monkeypatch.setitem(
        cifar.CIFAR_SPECS, "cifar10", dataclasses.replace(C10, md5=hashlib.md5(cifar_archive).hexdigest())
    )
    monkeypatch.setenv(cifar.MIRROR_ENV, https.url(prefix))
    path = f"{prefix}/{C10.archive}"
    http.add(path, cifar_archive)
    return path


def _read_test_rows(root, count):
    dataset = create_dataset("cifar10", root, "test", shuffle=False, num_samples=count, download=True)
    rows = list(dataset.create_dict_iterator(num_epochs=1, output_numpy=True))
    return [(int(r["image"][0, 0, 0]) + 256 * int(r["image"][0, 1, 0]), int(r["label"])) for r in rows]


@pytest.mark.parametrize("fault", FAULTS)
def test_cifar10_download(fault, servers, cifar_archive, cifar_mirror, tmp_path):
    https, http = servers
    path = cifar_mirror
    url = https.add(path, **_fault_route(fault, cifar_archive, http.url(path)))
    root = tmp_path / "data"

    with _short_timeout(), pytest.raises(DownloadError) as err:
        create_dataset("cifar10", str(root), "train", download=True)
    _one_line(err.value, url, FAULT_WORDS[fault] + [str(root / C10.archive)])
    # Only the inter-process lock file (kept by design, see download.file_lock): no archive, part or folder.
    assert _files_under(str(root)) == [".cifar-10-batches-bin.lock"]
    attempts = 1 + cifar._DOWNLOAD_RETRIES if fault in TRANSIENT else 1
    assert https.hits[path] == attempts and http.hits[path] == 0

    https.add(path, cifar_archive)  # the server is fixed
    assert _read_test_rows(str(root), 3) == [(50000, 0), (50001, 1), (50002, 2)]
    assert create_dataset("cifar10", str(root), "train").get_dataset_size() == 50000
    assert sorted(os.listdir(root / C10.folder)) == sorted(C10.train_files + C10.test_files)
    assert https.hits[path] == attempts + 1
    shutil.rmtree(root)  # 184 MB


def test_cifar10_download_fault_from_the_command_line(servers, cifar_mirror, tmp_path):
    """What a user of ``train.py --dataset_download`` sees when the mirror answers 404: one line, status 2."""
    https, _ = servers
    url = https.add(cifar_mirror, status=404)
    root, home = tmp_path / "data", tmp_path / "home"
    args = ["train.py", "--model", "res2net50_48w_2s", "--dataset", "cifar10", "--dataset_download", "--data_dir",
            str(root), "--image_resize", "32", "--batch_size", "4", "--num_samples", "8", "--mode", "1",
            "--ckpt_save_dir", str(tmp_path / "out")]  # fmt: skip
    result = run_command(
        args, str(home), {cifar.MIRROR_ENV: os.environ[cifar.MIRROR_ENV], "SSL_CERT_FILE": tls_files()[0]}
    )
    assert_one_line_error(result, [url, "HTTP 404", str(root / C10.archive)])
    assert _files_under(str(root)) == [".cifar-10-batches-bin.lock"]
