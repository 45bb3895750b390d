"""Verified HTTPS downloads into the mindcv cache.

A download streams into a hidden temporary file in the target folder, is hashed while it is written,
checked against the advertised length and the expected hash, flushed to disk and only then renamed
onto the target. A failed, interrupted or mismatching transfer therefore never leaves a file that a
later call would take for the real one, and two processes fetching the same file cannot corrupt
each other (each writes its own temporary file; the rename is atomic).

Only ``https://`` is accepted, redirects included: a checkpoint or dataset fetched over plain http
could be replaced in transit, and there is deliberately no fallback to http or to unverified TLS.
"""

import hashlib
import http.client
import logging
import os
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import List, Optional, Tuple

from ..errors import DownloadError
from .archive import extract_archive
from .fs import atomic_write

__all__ = [
    "get_cache_dir",
    "get_default_download_root",
    "set_default_download_root",
    "download_url",
    "hash_file",
    "sha256_prefix_from_name",
    "DownLoad",
]

#: Environment variable overriding the default per-read timeout of downloads (seconds).
TIMEOUT_ENV = "MINDCV_DOWNLOAD_TIMEOUT"

_logger = logging.getLogger(__name__)

_CACHE_ENV = "MINDCV_HOME"
_root_override: Optional[str] = None  # set_default_download_root(); wins over MINDCV_HOME
_CHUNK = 1 << 20
# A live download rewrites its temporary file at least once per `timeout` seconds; one an hour old
# belongs to a process that was killed (SIGKILL, power loss) and is safe to delete.
_STALE_PART_AGE_S = 3600.0
_HEX = re.compile(r"^[0-9a-f]+$")
# Upstream MindCV (and torch.hub) names files `<name>-<first 8+ hex digits of the SHA-256>.<ext>`.
_NAME_HASH = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


class _RetryableDownloadError(DownloadError):
    """A failure worth retrying (timeout, cut connection, 5xx); callers see it as a DownloadError."""


def get_cache_dir(subdir: str = "") -> str:
    """Return (and create) mindcv's cache folder, or a sub-folder of it.

    The cache lives in ``~/.cache/mindcv`` unless the environment variable ``MINDCV_HOME`` names
    another folder, which is the way to share one cache between users or to move it off a small
    home partition; :func:`set_default_download_root` (upstream MindCV's call) overrides both.

    Args:
        subdir: Relative sub-folder, e.g. ``"checkpoints"`` or ``"datasets"``.

    Returns:
        The absolute path of the existing folder.

    Raises:
        DownloadError: The folder cannot be created.
    """
    base = _root_override or os.environ.get(_CACHE_ENV) or os.path.join("~", ".cache", "mindcv")
    base = os.path.abspath(os.path.expanduser(base))
    if subdir:
        if os.path.isabs(subdir) or ".." in subdir.replace("\\", "/").split("/"):
            raise ValueError(f"get_cache_dir: subdir must be a relative path inside the cache, got {subdir!r}")
        base = os.path.join(base, subdir)
    try:
        os.makedirs(base, exist_ok=True)
    except OSError as e:
        raise DownloadError(
            f"cannot create the cache folder {base}: {e.strerror or e}; set {_CACHE_ENV} to a writable folder"
        ) from e
    return base


def get_default_download_root() -> str:
    """The cache root (upstream MindCV's name); datasets go to its ``datasets``, weights to its ``models`` folder."""
    return get_cache_dir()


def set_default_download_root(path: str) -> None:
    """Make ``path`` the cache root for this process (upstream MindCV's call), over ``MINDCV_HOME``."""
    global _root_override
    _root_override = os.path.abspath(os.path.expanduser(path))


def hash_file(path: str, algo: str = "sha256") -> str:
    """Return the hex digest of a file, read in 1 MiB chunks.

    Args:
        path: File to hash.
        algo: Any name :func:`hashlib.new` accepts (``"sha256"``, ``"md5"``...).

    Returns:
        The lowercase hex digest.
    """
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_prefix_from_name(name: str) -> Optional[str]:
    """Return the SHA-256 prefix embedded in a file name such as ``res2net50-f42cf71b.ckpt``, or None.

    Args:
        name: A file name or URL.

    Returns:
        The hex digits after the last ``-`` (8 to 64 of them), or None when the name carries none.
    """
    m = _NAME_HASH.search(os.path.basename(urllib.parse.urlparse(name).path or name))
    return m.group(1) if m else None


def _expected_hashes(sha256: Optional[str], sha256_prefix: Optional[str], md5: Optional[str]) -> List[Tuple[str, str]]:
    """Validate the caller's hashes; return (algo, expected hex or prefix) pairs."""
    checks = []
    for arg, algo, value, lengths, wanted in (
        ("sha256", "sha256", sha256, (64,), "64"),
        ("sha256_prefix", "sha256", sha256_prefix, range(8, 65), "8 to 64"),
        ("md5", "md5", md5, (32,), "32"),
    ):
        if value is None:
            continue
        value = value.strip().lower()
        if not _HEX.match(value) or len(value) not in lengths:
            raise ValueError(f"download_url: {arg}={value!r} must be {wanted} hex digits")
        checks.append((algo, value))
    return checks


def _mismatch(digests: dict, checks: List[Tuple[str, str]]) -> Optional[str]:
    """Return a description of the first failed check, or None when all pass."""
    for algo, expected in checks:
        got = digests[algo]
        if not got.startswith(expected):
            return f"{algo} mismatch (expected {expected}, got {got[:len(expected)]})"
    return None


def _file_mismatch(path: str, checks: List[Tuple[str, str]]) -> Optional[str]:
    digests = {algo: hash_file(path, algo) for algo in {a for a, _ in checks}}
    return _mismatch(digests, checks)


def _filename_from_url(url: str) -> str:
    name = urllib.parse.unquote(os.path.basename(urllib.parse.urlparse(url).path))
    if not name:
        raise ValueError(f"download_url: cannot take a file name from {url}; pass filename=")
    return name


def _check_filename(name: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"download_url: filename must be a plain file name, got {name!r}")


def _remove_stale_parts(folder: str, filename: str) -> None:
    """Delete temporary files of this name left by a killed downloader (an active one stays fresh)."""
    prefix = f".{filename}."
    now = time.time()
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if entry.startswith(prefix) and entry.endswith(".part"):
            full = os.path.join(folder, entry)
            try:
                if now - os.path.getmtime(full) > _STALE_PART_AGE_S:
                    os.unlink(full)
            except OSError:
                pass  # another process removed or renamed it first


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but refuse any that leaves https."""

    def __init__(self, url: str, dest: str) -> None:
        super().__init__()
        self._url = url
        self._dest = dest

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 (urllib hook)
        if urllib.parse.urlparse(newurl).scheme.lower() != "https":
            fp.close()
            raise DownloadError(
                f"refusing to download {self._url}: the server redirects to {newurl}, which is not https "
                f"(no fallback to plain http); download the file by hand and place it at {self._dest}"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _describe_unreachable(url: str, dest: str, reason: object, timeout: float) -> DownloadError:
    """Turn a connection-level failure into a one-line error naming the URL and the manual path."""
    host = urllib.parse.urlparse(url).hostname or url
    hand = f"if this machine is offline, download the file elsewhere and place it at {dest}"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return _RetryableDownloadError(
            f"download of {url} failed: no response from {host} within {timeout:g} s (timeout); "
            f"retry later, raise the timeout, or {hand}"
        )
    if isinstance(reason, ssl.SSLCertVerificationError):
        return DownloadError(
            f"download of {url} failed: the TLS certificate of {host} could not be verified "
            f"({reason.verify_message}); fix the system CA certificates (there is no fallback to unverified "
            f"TLS), or {hand}"
        )
    if isinstance(reason, socket.gaierror):
        return _RetryableDownloadError(
            f"cannot download {url}: the host name {host} cannot be resolved (offline or DNS failure); {hand}"
        )
    text = getattr(reason, "strerror", None) or str(reason)
    return _RetryableDownloadError(f"cannot download {url}: {host} is unreachable ({text}); {hand}")


def _open(url: str, dest: str, timeout: float, ssl_context: Optional[ssl.SSLContext]) -> http.client.HTTPResponse:
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl_context), _HttpsOnlyRedirects(url, dest)
    )
    # identity: the Content-Length check and the hash must see the bytes of the file itself.
    request = urllib.request.Request(url, headers={"User-Agent": "mindcv", "Accept-Encoding": "identity"})
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        cls = _RetryableDownloadError if e.code >= 500 or e.code == 429 else DownloadError
        fix = "the server failed, retry later" if cls is _RetryableDownloadError else "check the URL"
        raise cls(
            f"download of {url} failed: HTTP {e.code} {e.reason}; {fix}, or download the file by hand and "
            f"place it at {dest}"
        ) from e
    except urllib.error.URLError as e:
        raise _describe_unreachable(url, dest, e.reason, timeout) from e
    except (socket.timeout, TimeoutError, ConnectionError) as e:
        raise _describe_unreachable(url, dest, e, timeout) from e
    final = response.geturl()
    if urllib.parse.urlparse(final).scheme.lower() != "https":  # redirect handler already refuses; belt and braces
        response.close()
        raise DownloadError(f"refusing to download {url}: it ended at {final}, which is not https")
    return response


def _progress_bar(total: Optional[int], filename: str, enabled: bool):
    """A tqdm bar on an interactive terminal; None in logs, pipes and CI, where bars are noise."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a missing bar must not break a download
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=filename, file=sys.stderr)


def _download_once(
    url: str,
    dest: str,
    checks: List[Tuple[str, str]],
    progress: bool,
    timeout: float,
    ssl_context: Optional[ssl.SSLContext],
) -> None:
    """One attempt: stream into a unique temporary file, verify, fsync and rename onto ``dest``."""
    filename = os.path.basename(dest)
    bar = None
    try:
        # ".part": the ending that _remove_stale_parts looks for, and that users know as an unfinished download.
        with atomic_write(dest, "wb", suffix=".part") as out:
            with _open(url, dest, timeout, ssl_context) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                hashers = {algo: hashlib.new(algo) for algo in {a for a, _ in checks}}
                bar = _progress_bar(total, filename, progress)
                if bar is None and progress:
                    _logger.info("Downloading %s to %s", url, dest)
                received = 0
                while True:
                    try:
                        # read1: return what has arrived, so the byte count in an error is exact.
                        chunk = response.read1(_CHUNK)
                    except http.client.IncompleteRead as e:
                        received += len(e.partial)
                        chunk = b""
                    except (socket.timeout, TimeoutError) as e:
                        raise _RetryableDownloadError(
                            f"download of {url} failed: the server sent nothing for {timeout:g} s after "
                            f"{received} bytes (timeout); retry later, raise the timeout, or download the file "
                            f"by hand and place it at {dest}"
                        ) from e
                    except (OSError, http.client.HTTPException) as e:
                        reason = f" ({e})" if str(e) else ""
                        raise _RetryableDownloadError(
                            f"download of {url} failed: connection cut after {received} of "
                            f"{total if total is not None else 'unknown'} bytes{reason}; retry, or download the "
                            f"file by hand and place it at {dest}"
                        ) from e
                    if not chunk:
                        break
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            if total is not None and received != total:
                raise _RetryableDownloadError(
                    f"download of {url} failed: connection cut after {received} of {total} bytes; retry, or "
                    f"download the file by hand and place it at {dest}"
                )
            problem = _mismatch({a: h.hexdigest() for a, h in hashers.items()}, checks)
            if problem:
                raise DownloadError(
                    f"download of {url} failed: {problem}; the file on the server is corrupt or was replaced, "
                    f"nothing was saved: retry later, or place a verified copy at {dest}"
                )
    finally:
        if bar is not None:
            bar.close()


def _default_timeout() -> float:
    value = os.environ.get(TIMEOUT_ENV, "")
    try:
        timeout = float(value) if value else 30.0
    except ValueError:
        raise DownloadError(f"${TIMEOUT_ENV}={value!r} is not a number of seconds; unset it or set e.g. 60") from None
    if timeout <= 0:
        raise DownloadError(f"${TIMEOUT_ENV}={value!r} must be a positive number of seconds")
    return timeout


def download_url(
    url: str,
    *,
    root: Optional[str] = None,
    filename: Optional[str] = None,
    sha256: Optional[str] = None,
    sha256_prefix: Optional[str] = None,
    md5: Optional[str] = None,
    progress: bool = True,
    timeout: Optional[float] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    retries: int = 0,
) -> str:
    """Download ``url`` into a folder unless a verified copy is already there; return the local path.

    An existing file that passes the given hashes is returned without touching the network (an
    existing file is trusted as is when no hash is given). One that fails them is never returned: a
    fresh copy is downloaded and replaces it only once that copy is verified.

    Args:
        url: An ``https://`` URL. Plain http, and redirects to it, are refused.
        root: Destination folder; defaults to :func:`get_cache_dir`. Created when missing.
        filename: Local file name; defaults to the last segment of the URL path.
        sha256: Full expected SHA-256 (64 hex digits).
        sha256_prefix: Leading 8+ hex digits of the SHA-256, the convention of upstream MindCV
            checkpoint names such as ``res2net50-f42cf71b.ckpt`` (see :func:`sha256_prefix_from_name`).
        md5: Expected MD5 (32 hex digits), as published for e.g. the CIFAR archives.
        progress: Show a tqdm bar when stderr is a terminal; otherwise log one INFO line.
        timeout: Seconds to wait for the connection and for each read before giving up; default
            ``$MINDCV_DOWNLOAD_TIMEOUT`` or 30.
        ssl_context: TLS context; defaults to the system's verified context (tests pass one trusting
            their own certificate).
        retries: Extra attempts after a transient failure (timeout, cut connection, HTTP 5xx/429),
            with 1, 2, 4... s pauses. 404s, refusals and hash mismatches are not retried.

    Returns:
        The absolute path of the verified local file.

    Raises:
        DownloadError: One line naming the URL, the reason and the fix; when the server cannot be
            reached it names the path where the file can be placed by hand.
    """
    if timeout is None:
        timeout = _default_timeout()
    checks = _expected_hashes(sha256, sha256_prefix, md5)
    filename = filename or _filename_from_url(url)
    _check_filename(filename)
    folder = os.path.abspath(os.path.expanduser(root)) if root else get_cache_dir()
    dest = os.path.join(folder, filename)

    if os.path.isfile(dest):
        problem = _file_mismatch(dest, checks) if checks else None
        if problem is None:
            return dest
        _logger.warning("Cached %s fails its check (%s); downloading it again.", dest, problem)

    if urllib.parse.urlparse(url).scheme.lower() != "https":
        raise DownloadError(
            f"refusing to download {url}: only https URLs are allowed (plain http can be tampered with in "
            f"transit); use the https URL, or download the file yourself and place it at {dest}"
        )
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DownloadError(
            f"cannot download {url}: the folder {folder} cannot be created ({e.strerror or e}); choose a writable "
            f"folder or set {_CACHE_ENV}"
        ) from e
    _remove_stale_parts(folder, filename)

    attempt = 0
    while True:
        try:
            _download_once(url, dest, checks, progress, timeout, ssl_context)
            return dest
        except _RetryableDownloadError as e:
            if attempt >= retries:
                raise
            pause = float(2**attempt)
            _logger.warning("%s (attempt %d of %d; retrying in %g s)", e, attempt + 1, retries + 1, pause)
            time.sleep(pause)
            attempt += 1
        except OSError as e:
            if isinstance(e, DownloadError):
                raise
            # Writing the temporary file failed: full disk, read-only or vanished folder.
            raise DownloadError(
                f"cannot download {url}: writing into {folder} failed ({e.strerror or e}); free space or choose "
                f"another folder (set {_CACHE_ENV})"
            ) from e


class DownLoad:
    """Upstream MindCV's download helper, over :func:`mindcv.utils.download_url` (HTTPS only, verified, atomic).

    Files go to ``path``/``download_path`` or, by default, the mindcv cache (:func:`get_default_download_root`).
    """

    @staticmethod
    def calculate_md5(file_path: str, chunk_size: int = 1024 * 1024) -> str:
        """MD5 hex digest of a file."""
        digest = hashlib.md5()
        with open(file_path, "rb") as f:
            for chunk in iter(lambda: f.read(chunk_size), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def check_md5(self, file_path: str, md5: Optional[str] = None) -> bool:
        """Whether the file's MD5 equals ``md5``."""
        return md5 is not None and hash_file(file_path, "md5") == md5.lower()

    @staticmethod
    def extract_tar(from_path: str, to_path: Optional[str] = None, compression: Optional[str] = None) -> None:
        """Extract a tar archive (the compression is detected from the file)."""
        extract_archive(from_path, to_path)

    @staticmethod
    def extract_zip(from_path: str, to_path: Optional[str] = None, compression: Optional[str] = None) -> None:
        """Extract a zip archive."""
        extract_archive(from_path, to_path)

    def extract_archive(self, from_path: str, to_path: Optional[str] = None) -> str:
        """Extract any supported archive; returns the destination folder."""
        return extract_archive(from_path, to_path)

    def download_file(self, url: str, file_path: str, chunk_size: int = 1024) -> None:
        """Download ``url`` to exactly ``file_path``."""
        download_url(url, root=os.path.dirname(os.path.abspath(file_path)), filename=os.path.basename(file_path))

    def download_url(
        self, url: str, path: Optional[str] = None, filename: Optional[str] = None, md5: Optional[str] = None
    ) -> str:
        """Download ``url`` into ``path`` unless a copy (matching ``md5`` when given) is there; returns the file."""
        return download_url(url, root=path or get_cache_dir(), filename=filename, md5=md5)

    def download_and_extract_archive(
        self,
        url: str,
        download_path: Optional[str] = None,
        extract_path: Optional[str] = None,
        filename: Optional[str] = None,
        md5: Optional[str] = None,
        remove_finished: bool = False,
    ) -> None:
        """Download an archive into ``download_path`` and extract it into ``extract_path`` (default the same)."""
        archive = self.download_url(url, download_path, filename, md5)
        extract_archive(archive, extract_path or os.path.dirname(archive))
        if remove_finished:
            os.unlink(archive)
