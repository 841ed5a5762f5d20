"""``ecc exporter``: the HTTP server and the command's life from start to signal.

One listener (``--listen``, default ``127.0.0.1:8526``) serves ``/metrics``
in the Prometheus text format (or OpenMetrics, when the scraper asks for it)
through the official ``prometheus_client`` library, and, with ``--api``, the
control API of :mod:`ecc.exporter.api`. ``--listen none`` serves nothing:
then the metrics only go out over OTLP (:mod:`ecc.exporter.otlp`, an ``otlp``
block in the configuration or ``--otlp-endpoint``), which can also run beside
the listener. Programs are loaded after the port is
bound (a busy port fails before anything touches the kernel) and before the
"listening" line is printed. SIGINT or SIGTERM stop the server, then every
program: nothing stays attached.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import EccError
from . import api, otlp
from .config import ConfigError, load_config_and_otlp
from .metrics import DEFAULT_SERIES_TTL
from .programs import DEFAULT_QUEUE_EVENTS, Exporter

DEFAULT_LISTEN = "127.0.0.1:8526"
DEFAULT_MAX_SERIES = 10000
NO_LISTENER = "none"


@dataclass(frozen=True)
class ServerOptions:
    config: str | None
    listen: str = DEFAULT_LISTEN
    api: bool = False
    api_token_file: str | None = None
    max_series: int = DEFAULT_MAX_SERIES
    series_ttl: float = DEFAULT_SERIES_TTL  # 0: never
    queue_size: int = DEFAULT_QUEUE_EVENTS
    verbose: bool = False
    otlp_endpoint: str | None = None  # over the config's otlp.endpoint
    otlp_interval: float | None = None  # over the config's otlp.interval


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port); ValueError says why not."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:8526)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return host, int(port)


def read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
    except FileNotFoundError:
        raise EccError(f"--api-token-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EccError(f"--api-token-file {path}: cannot read it ({exc})") from exc
    if not token or any(c.isspace() for c in token):
        raise EccError(f"--api-token-file {path}: must hold one token: one line, no spaces")
    return token


def make_handler(registry: Any, exporter: Exporter, token: str | None,
                 log: Callable[[str], None] | None) -> type[BaseHTTPRequestHandler]:
    from prometheus_client.exposition import choose_encoder

    class Handler(BaseHTTPRequestHandler):
        server_version = "ecc-exporter"

        def log_message(self, format: str, *args: Any) -> None:
            if log is not None:
                log("ecc: http: " + format % args)

        def _send(self, status: int, body: bytes, content_type: str,
                  headers: tuple[tuple[str, str], ...] = ()) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _reply(self, reply: api.Reply) -> None:
            self._send(reply.status, reply.body(), "application/json", reply.headers)

        def _path(self) -> str:
            return self.path.split("?", 1)[0]

        def do_GET(self) -> None:
            path = self._path()
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                try:
                    body = encoder(registry)
                except Exception as exc:  # a scrape must not kill the server
                    self._send(500, f"collecting metrics failed: {exc}\n".encode(),
                               "text/plain; charset=utf-8")
                    return
                self._send(200, body, content_type)
            elif path == "/":
                self._send(200, b'<html><body><a href="/metrics">/metrics</a></body></html>\n',
                           "text/html; charset=utf-8")
            else:
                self._api("GET", path)

        do_HEAD = do_GET

        def do_POST(self) -> None:
            self._api("POST", self._path())

        def _api(self, method: str, path: str) -> None:
            if token is None or not api.is_api_path(path):
                self._reply(api.error(404, f"no such path {path}; metrics are at /metrics"
                                      + ("" if token is not None else
                                         " (the control API is off; see --api)")))
                return
            header = self.headers.get("Authorization")
            if not api.authorized(header, token):
                self._reply(api.unauthorized(header))
                return
            body = None
            if method == "POST":
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    self._reply(api.error(411, "send the body with a Content-Length"))
                    return
                if int(length) > api.MAX_BODY_BYTES:
                    self._reply(api.error(413, f"the body is larger than {api.MAX_BODY_BYTES} "
                                               f"bytes"))
                    return
                body = self.rfile.read(int(length))
            self._reply(api.handle(exporter, method, path, body))

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def bind(listen: str, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    host, port = parse_listen(listen)
    cls = _Server6 if ":" in host else _Server
    try:
        return cls((host, port), handler)
    except OSError as exc:
        raise EccError(f"--listen {listen}: cannot listen there ({exc.strerror or exc}); "
                       f"pick another address or port") from exc


def url_of(server: ThreadingHTTPServer) -> str:
    address = server.server_address
    host = address[0] if isinstance(address[0], str) else address[0].decode()
    port = address[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(opts: ServerOptions, say: Callable[[str], None],
          ready: Callable[[str], None] | None = None) -> None:
    """Run the exporter until SIGINT or SIGTERM (main thread only)."""
    try:
        from prometheus_client import CollectorRegistry, ProcessCollector
    except ImportError:
        raise EccError("ecc exporter needs the prometheus-client library: pip install "
                       "prometheus-client (or scripts/install.sh)") from None

    from ..run.libbpf import bump_memlock_rlimit
    from ..run.loader import stop_on_signals

    token = None
    if opts.api:
        if not opts.api_token_file:
            raise EccError("--api needs --api-token-file FILE, a file holding the bearer "
                           "token that API requests must send")
        token = read_token(opts.api_token_file)
    specs, otlp_block = load_config_and_otlp(opts.config) if opts.config else ([], None)
    origin = opts.config or "the command line"
    settings = otlp.parse_settings(otlp_block, origin,
                                   os.path.dirname(os.path.abspath(opts.config or ".")),
                                   opts.otlp_endpoint, opts.otlp_interval)
    otlp.check_logs(settings, specs, origin)
    listening = opts.listen != NO_LISTENER
    if not listening and settings is None:
        raise EccError("--listen none turns /metrics off: give an otlp block in the "
                       "configuration or --otlp-endpoint URL, or the metrics go nowhere")
    if not listening and token is not None:
        raise EccError("--api is served by the listener: it needs --listen HOST:PORT, not none")
    exporter = Exporter(opts.max_series, opts.queue_size, say, opts.series_ttl)
    pusher = otlp.OtlpPusher(settings, exporter, say, opts.verbose) if settings else None
    registry = CollectorRegistry()
    registry.register(exporter)
    if pusher is not None:
        registry.register(pusher)
        if settings is not None and settings.logs_endpoint is not None:
            exporter.log_sink = pusher.offer_event
    ProcessCollector(registry=registry)
    server = (bind(opts.listen, make_handler(registry, exporter, token,
                                             say if opts.verbose else None))
              if listening else None)
    stop = threading.Event()
    thread: threading.Thread | None = None
    with stop_on_signals(stop.set):
        try:
            bump_memlock_rlimit()
            exporter.start_all(specs, opts.config or "")
            if server is not None:
                thread = threading.Thread(target=server.serve_forever, name="ecc-http",
                                          daemon=True)
                thread.start()
            if pusher is not None:
                pusher.start()
            names = ", ".join(p.spec.name for p in exporter.running())
            count = len(exporter.running())
            where = (f"listening on {url_of(server)}/metrics" if server is not None
                     else "not listening (--listen none)")
            line = (f"ecc: exporter {where}; {count} program"
                    f"{'s' if count != 1 else ''} running{f' ({names})' if names else ''}"
                    f"{'; control API on' if token is not None else ''}"
                    f"{'; ' + otlp.describe(settings) if settings is not None else ''}"
                    f"; Ctrl-C to stop")
            say(line)
            if ready is not None:
                ready(url_of(server) if server is not None else "")
            while not stop.wait(0.5):
                pass
        finally:
            if thread is not None and server is not None:
                server.shutdown()
            if server is not None:
                server.server_close()
            if pusher is not None:
                pusher.stop()
            exporter.stop_all()


__all__ = ["ConfigError", "ServerOptions", "parse_listen", "serve"]
