"""Downloads against a local HTTPS server: verification, caching, faults, cleanup, locking."""

import hashlib
import os
import socket
import threading
import time

import pytest
from httpserver import LocalServer, client_ssl_context, closed_port_url

from mindcv.errors import DownloadError
from mindcv.utils import download as dl
from mindcv.utils.download import (
    download_url,
    get_cache_dir,
    hash_file,
    sha256_prefix_from_name,
)

BODY = os.urandom(300_000)
SHA = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()
WRONG_SHA = hashlib.sha256(b"something else").hexdigest()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """A proxy from the environment would intercept 127.0.0.1 requests."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def server():
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def ctx():
    return client_ssl_context()


def _get(url, folder, ctx, **kw):
    kw.setdefault("progress", False)
    return download_url(url, root=str(folder), ssl_context=ctx, **kw)


def test_good_file_then_cache_without_network(tmp_path, ctx):
    with LocalServer() as srv:
        url = srv.add("/res2net50-f42cf71b.ckpt", BODY)
        path = _get(url, tmp_path, ctx, sha256=SHA)
        assert path == str(tmp_path / "res2net50-f42cf71b.ckpt")
        with open(path, "rb") as f:
            assert f.read() == BODY
        assert srv.hits["/res2net50-f42cf71b.ckpt"] == 1
    # The server is gone: a verified cached copy must be returned without any connection attempt.
    assert _get(url, tmp_path, ctx, sha256=SHA) == path
    assert sorted(os.listdir(tmp_path)) == ["res2net50-f42cf71b.ckpt"]
    # Same-user-readable permissions, not a 0600 temp-file mode.
    assert os.stat(path).st_mode & 0o600 == 0o600


@pytest.mark.parametrize(
    "kwargs",
    [dict(sha256_prefix=SHA[:8]), dict(sha256_prefix=SHA[:20]), dict(md5=MD5), dict(sha256=SHA, md5=MD5), dict()],
    ids=["prefix8", "prefix20", "md5", "sha256+md5", "nohash"],
)
def test_hash_variants_accept_the_right_file(server, tmp_path, ctx, kwargs):
    url = server.add(f"/ok-{len(kwargs)}-{sorted(kwargs)}.bin".replace(" ", "").replace("'", ""), BODY)
    with open(_get(url, tmp_path, ctx, **kwargs), "rb") as f:
        assert f.read() == BODY


def _failure_cases(server, http_server):
    """(name, url, download kwargs, words the error must contain) for every fault."""
    n = len(BODY)
    plain = http_server.add("/plain.bin", BODY)
    return {
        "sha256": (server.add("/f-sha.bin", BODY), dict(sha256=WRONG_SHA), ["sha256 mismatch", WRONG_SHA, SHA]),
        "prefix": (
            server.add("/f-prefix.bin", BODY),
            dict(sha256_prefix="deadbeef"),
            ["sha256 mismatch", "expected deadbeef", f"got {SHA[:8]}"],
        ),
        "md5": (server.add("/f-md5.bin", BODY), dict(md5="0" * 32), ["md5 mismatch", MD5]),
        "404": (server.add("/f-404.bin", status=404), {}, ["HTTP 404", "check the URL"]),
        "500": (server.add("/f-500.bin", status=500), {}, ["HTTP 500", "retry later"]),
        "cut": (server.add("/f-cut.bin", BODY, cut_after=n // 3), {}, ["connection cut after", f"of {n} bytes"]),
        "stall-headers": (server.add("/f-slow.bin", BODY, delay=6), dict(timeout=1), ["timeout", "1 s"]),
        "stall-body": (
            server.add("/f-stall.bin", BODY, delay=6, delay_after=1000),
            dict(timeout=1),
            ["timeout", "1 s", "after 1000 bytes"],
        ),
        "redirect-http": (server.add("/f-redir.bin", redirect=plain), {}, ["redirects to", plain, "not https"]),
        "http-url": (plain, {}, ["only https", "http://"]),
        "dead": (closed_port_url("/f-dead.bin"), {}, ["unreachable", "offline", "place it at"]),
    }


FAILURES = ["sha256", "prefix", "md5", "404", "500", "cut", "stall-headers", "stall-body", "redirect-http",
            "http-url", "dead"]  # fmt: skip


@pytest.fixture(scope="module")
def http_server():
    with LocalServer(tls=False) as srv:
        yield srv


@pytest.mark.parametrize("case", FAILURES)
def test_failures_leave_nothing_and_a_retry_succeeds(server, http_server, tmp_path, ctx, case):
    url, kwargs, words = _failure_cases(server, http_server)[case]
    name = url.rsplit("/", 1)[1]
    with pytest.raises(DownloadError) as info:
        _get(url, tmp_path, ctx, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    assert url in msg
    for word in words:
        assert word in msg, f"{word!r} missing from: {msg}"
    if case in ("404", "500", "cut", "stall-headers", "stall-body", "dead", "http-url", "redirect-http"):
        # Every error the user can work around by hand says where the file goes.
        assert str(tmp_path / name) in msg
    assert os.listdir(tmp_path) == [], "a failed download left files behind"
    if case == "redirect-http":
        assert http_server.hits["/plain.bin"] == 0, "the client followed the redirect to plain http"

    good = server.add("/good/" + name, BODY)
    path = _get(good, tmp_path, ctx, sha256=SHA)
    assert os.listdir(tmp_path) == [name]
    assert hash_file(path) == SHA


def test_https_redirect_is_followed(server, tmp_path, ctx):
    target = server.add("/redir-target.bin", BODY)
    url = server.add("/redir-source.bin", redirect=target)
    path = _get(url, tmp_path, ctx, sha256=SHA)
    assert os.path.basename(path) == "redir-source.bin" and hash_file(path) == SHA


def test_unresolvable_host_names_url_and_cache_path(tmp_path, ctx, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    url = "https://download.example.invalid/toolkits/res2net50-f42cf71b.ckpt"
    with pytest.raises(DownloadError, match="cannot be resolved") as info:
        _get(url, tmp_path, ctx, sha256_prefix="f42cf71b")
    assert url in str(info.value) and str(tmp_path / "res2net50-f42cf71b.ckpt") in str(info.value)
    assert os.listdir(tmp_path) == []


def test_untrusted_certificate_is_refused(server, tmp_path):
    """The default context does not trust the test CA: verification fails and nothing falls back."""
    url = server.add("/untrusted.bin", BODY)
    with pytest.raises(DownloadError, match="could not be verified"):
        download_url(url, root=str(tmp_path), progress=False)
    assert os.listdir(tmp_path) == []


def test_corrupt_cached_file_is_replaced(server, tmp_path, ctx):
    url = server.add("/cached-corrupt.bin", BODY)
    target = tmp_path / "cached-corrupt.bin"
    target.write_bytes(BODY[:1000])  # e.g. a half file from another tool
    before = server.hits["/cached-corrupt.bin"]
    assert _get(url, tmp_path, ctx, sha256=SHA) == str(target)
    assert target.read_bytes() == BODY and server.hits["/cached-corrupt.bin"] == before + 1


def test_corrupt_cached_file_is_kept_but_never_returned_when_download_fails(tmp_path, ctx):
    target = tmp_path / "f.bin"
    target.write_bytes(b"garbage")
    with pytest.raises(DownloadError, match="unreachable"):
        _get(closed_port_url("/f.bin"), tmp_path, ctx, sha256=SHA)
    assert target.read_bytes() == b"garbage" and os.listdir(tmp_path) == ["f.bin"]


def test_retries_recover_from_a_transient_500(server, tmp_path, ctx, monkeypatch):
    monkeypatch.setattr(dl.time, "sleep", lambda s: None)
    url = server.add("/flaky.bin", BODY, fail_first=1)
    assert hash_file(_get(url, tmp_path, ctx, sha256=SHA, retries=1)) == SHA
    assert server.hits["/flaky.bin"] == 2


def test_404_is_not_retried(server, tmp_path, ctx, monkeypatch):
    monkeypatch.setattr(dl.time, "sleep", lambda s: None)
    url = server.add("/missing-retry.bin", status=404)
    with pytest.raises(DownloadError, match="HTTP 404"):
        _get(url, tmp_path, ctx, retries=3)
    assert server.hits["/missing-retry.bin"] == 1


def test_keyboard_interrupt_removes_the_temporary_file(server, tmp_path, ctx, monkeypatch):
    class Bar:
        def update(self, n):
            assert [e for e in os.listdir(tmp_path) if e.endswith(".part")], "expected a temp file mid-download"
            raise KeyboardInterrupt

        def close(self):
            pass

    monkeypatch.setattr(dl, "_progress_bar", lambda total, name, enabled: Bar())
    url = server.add("/interrupted.bin", BODY)
    with pytest.raises(KeyboardInterrupt):
        _get(url, tmp_path, ctx, progress=True)
    assert os.listdir(tmp_path) == []


def test_stale_temporaries_of_killed_downloads_are_removed(server, tmp_path, ctx):
    url = server.add("/stale.bin", BODY)
    old = tmp_path / ".stale.bin.999.0123abcd.part"
    fresh = tmp_path / ".stale.bin.998.89abcdef.part"  # maybe another process's live download: kept
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    past = time.time() - 2 * 3600
    os.utime(old, (past, past))
    _get(url, tmp_path, ctx, sha256=SHA)
    assert sorted(os.listdir(tmp_path)) == sorted([fresh.name, "stale.bin"])


def test_concurrent_downloads_of_one_file_do_not_corrupt_it(server, tmp_path, ctx):
    url = server.add("/concurrent.bin", BODY, delay=0.2, delay_after=100_000)
    errors, paths = [], []

    def worker():
        try:
            paths.append(_get(url, tmp_path, ctx, sha256=SHA))
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(paths) == 3
    assert os.listdir(tmp_path) == ["concurrent.bin"] and hash_file(paths[0]) == SHA


def test_invalid_arguments(tmp_path, ctx):
    with pytest.raises(ValueError, match="sha256_prefix"):
        _get("https://127.0.0.1/x.bin", tmp_path, ctx, sha256_prefix="abc")
    with pytest.raises(ValueError, match="md5"):
        _get("https://127.0.0.1/x.bin", tmp_path, ctx, md5="xyz")
    with pytest.raises(ValueError, match="file name"):
        _get("https://127.0.0.1/", tmp_path, ctx)
    with pytest.raises(ValueError, match="plain file name"):
        _get("https://127.0.0.1/x.bin", tmp_path, ctx, filename="../x.bin")


def test_cache_dir_follows_mindcv_home(tmp_path, monkeypatch, server, ctx):
    monkeypatch.setenv("MINDCV_HOME", str(tmp_path / "home"))
    assert get_cache_dir() == str(tmp_path / "home")
    assert get_cache_dir("checkpoints") == str(tmp_path / "home" / "checkpoints")
    assert os.path.isdir(tmp_path / "home" / "checkpoints")
    url = server.add("/homed.bin", BODY)
    assert download_url(url, ssl_context=ctx, progress=False) == str(tmp_path / "home" / "homed.bin")
    with pytest.raises(ValueError):
        get_cache_dir("../outside")


def test_cache_dir_default_is_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MINDCV_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_cache_dir() == str(tmp_path / ".cache" / "mindcv")


def test_sha256_prefix_from_name():
    assert sha256_prefix_from_name("res2net50-f42cf71b.ckpt") == "f42cf71b"
    assert sha256_prefix_from_name("https://h/toolkits/res2net101_v1b-7e6db001.ckpt") == "7e6db001"
    assert sha256_prefix_from_name("res2net50.ckpt") is None
    assert sha256_prefix_from_name("res2net50-best.ckpt") is None
