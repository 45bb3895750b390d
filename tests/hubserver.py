"""A local stand-in for the Hugging Face Hub's file endpoint, for the tests of timm weight tags (127.0.0.1 only).

It answers ``HEAD``/``GET /<repo_id>/resolve/<revision>/<filename>`` the way huggingface_hub expects of the Hub
(``X-Repo-Commit``, ``X-Linked-Etag`` = the file's SHA-256 as for Git LFS files, ``X-Linked-Size``, byte ranges),
and can misbehave per file: serve bytes that do not match the announced SHA-256 (a corrupted transfer), or cut the
connection after N body bytes on the first GET (an interrupted download, which huggingface_hub resumes with a Range
request). Plain HTTP: ``HF_ENDPOINT`` may name any http(s) endpoint.

Usage::

    with HubServer() as hub:
        hub.add("timm/res2net50_26w_4s.in1k", "model.safetensors", data, cut_after=1000)
        ...  # point huggingface_hub at hub.url
        assert hub.gets("timm/res2net50_26w_4s.in1k", "model.safetensors") == 2
"""

import hashlib
import http.server
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

__all__ = ["HubServer"]

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class _File:
    data: bytes
    sha256: str
    corrupt: bool = False
    cut_after: Optional[int] = None  # first GET only
    gets: int = 0
    heads: int = 0
    ranges: List[str] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _file(self) -> Optional[_File]:
        parts = self.path.split("?")[0].lstrip("/").split("/")
        # <org>/<name>/resolve/<revision>/<filename>
        if len(parts) < 5 or parts[2] != "resolve":
            return None
        return self.server.files.get(("/".join(parts[:2]), "/".join(parts[4:])))

    def _headers(self, f: _File, length: int, status: int = 200, extra: Tuple[Tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("X-Linked-Etag", f'"{f.sha256}"')
        self.send_header("ETag", f'"{f.sha256}"')
        self.send_header("X-Linked-Size", str(len(f.data)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()

    def _missing(self) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", "EntryNotFound")
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
        f = self._file()
        if f is None:
            return self._missing()
        f.heads += 1
        self._headers(f, len(f.data))

    def do_GET(self) -> None:  # noqa: N802
        f = self._file()
        if f is None:
            return self._missing()
        f.gets += 1
        body = bytearray(f.data)
        if f.corrupt:
            body[len(body) // 2] ^= 0xFF  # same size, other content
        start, status, extra = 0, 200, ()
        rng = self.headers.get("Range")
        if rng:
            f.ranges.append(rng)
            start = int(rng.split("=")[1].split("-")[0])
            status, extra = 206, (("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}"),)
        payload = bytes(body[start:])
        self._headers(f, len(payload), status, extra)
        if f.cut_after is not None and f.gets == 1:
            self.wfile.write(payload[: f.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    files: Dict[Tuple[str, str], _File]


class HubServer:
    """The stand-in Hub on an ephemeral 127.0.0.1 port (``url``); stops when the ``with`` block ends."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.files = {}
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def add(self, repo_id: str, filename: str, data: bytes, corrupt: bool = False, cut_after: Optional[int] = None):
        """Serve ``data`` as ``filename`` of ``repo_id``; returns its record (``gets``, ``heads``, ``ranges``)."""
        f = _File(data, hashlib.sha256(data).hexdigest(), corrupt=corrupt, cut_after=cut_after)
        self._server.files[(repo_id, filename)] = f
        return f

    def __enter__(self) -> "HubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
