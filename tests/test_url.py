"""`ecc run URL`: a package served by a real HTTP server on 127.0.0.1 (issue 10).

Runs by URL, and each way a URL fails is one asserted line: HTTP status, a body
that is not a package, a body over the size limit (announced, or streamed),
a package that fails the checks any package gets, a refused connection, and a
TLS certificate that is not trusted.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from builds import Built
from conftest import require
from runner import EccRun, exec_row

from ecc.run.fetch import MAX_DOWNLOAD_BYTES


class Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes]] = {}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet tests
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path
        try:
            if path == "/announced-too-big.json":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(MAX_DOWNLOAD_BYTES + 1))
                self.end_headers()
                self.wfile.write(b"{")
                return
            if path == "/streamed-too-big.json":
                # No Content-Length: the body ends when the connection closes.
                self.protocol_version = "HTTP/1.0"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                chunk = b"{" + b" " * ((1 << 20) - 1)
                for _ in range(MAX_DOWNLOAD_BYTES // len(chunk) + 2):
                    self.wfile.write(chunk)
                return
            status, ctype, body = self.routes.get(path, (404, "text/plain", b"no such page"))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should past the limit


def _serve(server: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def package_bytes(built: dict[str, Built]) -> bytes:
    case = built["cases/example-bootstrap"]
    assert case.result is not None, case.error
    return case.package.read_bytes()


@pytest.fixture(scope="module")
def server(package_bytes: bytes) -> Iterator[str]:
    broken = json.loads(package_bytes)
    broken["bpf_object_size"] += 8
    Handler.routes = {
        "/bootstrap/package.json": (200, "application/json", package_bytes),
        "/index.html": (200, "text/html", b"<!DOCTYPE html><html><body>hello</body></html>"),
        "/broken/package.json": (200, "application/json", json.dumps(broken).encode()),
    }
    yield from _serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler))


def ecc_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", "run", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_url_package_lists_its_options(server: str, package_bytes: bytes,
                                       tmp_path: Path) -> None:
    """Fetched and checked like a file: the same --help as the file gives."""
    by_url = ecc_run(f"http://{server}/bootstrap/package.json", "--help")
    local = tmp_path / "package.json"
    local.write_bytes(package_bytes)
    by_file = ecc_run(str(local), "--help")
    assert by_url.returncode == 0, by_url.stderr
    assert by_url.stdout == by_file.stdout
    assert by_url.stdout.startswith("Usage: bootstrap [OPTIONS]")


@pytest.mark.kernel
def test_runs_by_url(server: str, kernel: None) -> None:
    run = EccRun("--json", "--duration", "6", f"http://{server}/bootstrap/package.json")
    run.wait_ready()
    row = exec_row(run)
    assert row["comm"] == "true" and row["filename"] == "/bin/true"


@pytest.mark.parametrize(("path", "message"), [
    ("/nothing.json", "HTTP 404 Not Found; check the URL"),
    ("/index.html", "not a package (the server sent text/html, starting "
                    "'<!DOCTYPE html><html><body>hello</body><'); give the URL of a package.json"),
    ("/announced-too-big.json", f"the server sends {MAX_DOWNLOAD_BYTES + 1} bytes, over the "
                                f"{MAX_DOWNLOAD_BYTES}-byte limit for a package; not a package"),
    ("/streamed-too-big.json", f"larger than the {MAX_DOWNLOAD_BYTES}-byte limit for a "
                               f"package; not a package"),
], ids=["404", "not-a-package", "announced-too-big", "streamed-too-big"])
def test_url_errors_are_one_line(server: str, path: str, message: str) -> None:
    url = f"http://{server}{path}"
    result = ecc_run(url)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"ecc: error: {url}: {message}"]


def test_url_package_is_checked_like_a_file(server: str, package_bytes: bytes) -> None:
    url = f"http://{server}/broken/package.json"
    size = json.loads(package_bytes)["bpf_object_size"]
    result = ecc_run(url)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {url}: package field 'bpf_object' inflates to {size} bytes, but "
        f"'bpf_object_size' says {size + 8}"]


def test_refused_connection() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/package.json"
    result = ecc_run(url)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {url}: connection refused by 127.0.0.1:{port}; is the server running?"]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, package_bytes: bytes) -> Iterator[str]:
    """HTTPS with a self-signed certificate, which nothing here trusts."""
    require("openssl")  # to make a self-signed certificate
    openssl = shutil.which("openssl")
    assert openssl is not None
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    Handler.routes.setdefault("/bootstrap/package.json",
                              (200, "application/json", package_bytes))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    yield from _serve(httpd)


def test_untrusted_tls_certificate(tls_server: str) -> None:
    url = f"https://{tls_server}/bootstrap/package.json"
    result = ecc_run(url)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ecc: error: {url}: TLS certificate of '127.0.0.1' not trusted (self-signed "
        f"certificate); fix the server's certificate or use its http URL"]
