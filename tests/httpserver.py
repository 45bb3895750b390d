"""A local HTTPS (or plain HTTP) file server for download tests, with switches for the usual faults.

Usage::

    from httpserver import LocalServer, client_ssl_context

    with LocalServer() as srv:                         # https://127.0.0.1:<ephemeral port>
        url = srv.add("/w.ckpt", body=b"...")          # a good file
        bad = srv.add("/cut.ckpt", body=data, cut_after=100)
        download_url(url, ssl_context=client_ssl_context(), ...)
        assert srv.hits["/w.ckpt"] == 1

Each route can answer with an HTTP error, cut the connection after N body bytes while advertising
the full Content-Length, stall (before the headers or after N body bytes), redirect, or fail its
first N requests with a 500. Everything runs on daemon threads bound to 127.0.0.1; the server stops
when the ``with`` block ends, or by itself after ``max_lifetime`` seconds so a broken test cannot
leave it running.

TLS uses a throw-away CA and a server certificate for 127.0.0.1/localhost, generated once per
process with the ``cryptography`` package (``openssl`` on the PATH is the fallback); the client side
trusts it through :func:`client_ssl_context`, never by disabling verification.
"""

import atexit
import collections
import datetime
import http.server
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

__all__ = ["LocalServer", "Route", "client_ssl_context", "closed_port_url", "tls_files"]

_TLS: Optional[Tuple[str, str, str]] = None
_TLS_LOCK = threading.Lock()


def _generate_with_cryptography(folder: str) -> Tuple[str, str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mindcv test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign + cRLSign
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )  # digitalSignature
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tuple(os.path.join(folder, n) for n in ("ca.pem", "server.pem", "server.key"))
    with open(paths[0], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return paths  # type: ignore[return-value]


def _generate_with_openssl(folder: str) -> Tuple[str, str, str]:
    """Fallback: one self-signed certificate, which is then its own trust anchor."""
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    cert, key = os.path.join(folder, "server.pem"), os.path.join(folder, "server.key")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, cert, key


def tls_files() -> Tuple[str, str, str]:
    """Return ``(ca_pem, server_cert_pem, server_key_pem)``, generated once per process."""
    global _TLS
    with _TLS_LOCK:
        if _TLS is None:
            folder = tempfile.mkdtemp(prefix="mindcv-test-tls-")
            atexit.register(shutil.rmtree, folder, True)
            try:
                _TLS = _generate_with_cryptography(folder)
            except ImportError:
                _TLS = _generate_with_openssl(folder)
        return _TLS


def client_ssl_context() -> ssl.SSLContext:
    """A verifying client context (hostname and chain checked) that trusts only the test CA."""
    return ssl.create_default_context(cafile=tls_files()[0])


def closed_port_url(path: str = "/file.bin") -> str:
    """An https URL on 127.0.0.1 where nothing listens (connection refused), for offline tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"https://127.0.0.1:{port}{path}"


@dataclass
class Route:
    """What the server does for one path.

    Attributes:
        body: The file's bytes.
        status: HTTP status; anything but 200 answers with that status and a short text body.
        cut_after: Send the headers (full Content-Length), then only this many body bytes, then drop
            the connection without a TLS close_notify, as a network cut does.
        delay: Seconds to stall.
        delay_after: None stalls before the status line; N stalls after N body bytes.
        redirect: Answer ``302`` with this ``Location``.
        fail_first: Answer 500 to this many requests before serving normally (retry tests).
        headers: Extra response headers.
    """

    body: bytes = b""
    status: int = 200
    cut_after: Optional[int] = None
    delay: float = 0.0
    delay_after: Optional[int] = None
    redirect: Optional[str] = None
    fail_first: int = 0
    headers: Dict[str, str] = field(default_factory=dict)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection keeps cuts and stalls simple

    def log_message(self, format, *args):  # noqa: A002 - silence per-request logging in test output
        pass

    def _send_status(self, status: int, extra: Optional[Dict[str, str]] = None) -> None:
        text = f"{status} {http.HTTPStatus(status).phrase}\n".encode()
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner: "LocalServer" = self.server.owner  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        with owner._lock:
            owner.hits[path] += 1
            count = owner.hits[path]
            route = owner.routes.get(path)
        if route is None:
            self._send_status(404)
            return
        if count <= route.fail_first:
            self._send_status(500)
            return
        if route.redirect is not None:
            self._send_status(302, {"Location": route.redirect})
            return
        if route.status != 200:
            self._send_status(route.status, route.headers)
            return
        if route.delay and route.delay_after is None:
            owner._stopped.wait(route.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(route.body)))
        for k, v in route.headers.items():
            self.send_header(k, v)
        self.end_headers()
        data = route.body if route.cut_after is None else route.body[: route.cut_after]
        if route.delay and route.delay_after is not None:
            self.wfile.write(data[: route.delay_after])
            self.wfile.flush()
            owner._stopped.wait(route.delay)
            data = data[route.delay_after :]
        self.wfile.write(data)
        self.wfile.flush()
        if route.cut_after is not None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)  # FIN without close_notify: an abrupt cut
            except OSError:
                pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: "LocalServer", tls: Optional[ssl.SSLContext]) -> None:
        self.owner = owner
        self.tls = tls
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the per-connection thread, so that one silent client
        # cannot block the accept loop.
        request.settimeout(10)
        conn = request
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(request, server_side=True)
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError):
            pass  # the client gave up (timeout test) or refused our certificate
        finally:
            if conn is not request:
                conn.close()


class LocalServer:
    """Serve test-generated bytes on ``127.0.0.1:<ephemeral port>`` over HTTPS (default) or HTTP.

    Args:
        tls: Serve HTTPS with the test CA's certificate; False serves plain HTTP.
        max_lifetime: Seconds after which the server stops by itself.
    """

    def __init__(self, tls: bool = True, max_lifetime: float = 60.0) -> None:
        self.routes: Dict[str, Route] = {}
        self.hits: Dict[str, int] = collections.Counter()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        context = None
        if tls:
            _, cert, key = tls_files()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
        self._server = _Server(self, context)
        self.port = self._server.server_address[1]
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(max_lifetime, self.stop)
        self._timer.daemon = True

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes = b"", **kwargs) -> str:
        """Register ``path`` with a :class:`Route` built from ``body`` and ``kwargs``; return its URL."""
        with self._lock:
            self.routes[path] = Route(body=body, **kwargs)
        return self.url(path)

    def start(self) -> "LocalServer":
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; stalled handlers wake up and finish."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
