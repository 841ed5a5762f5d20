"""`ecc exporter` pushing over OTLP/HTTP to a real receiver (issue 24).

The receiver is an HTTP server on 127.0.0.1 written here: it decodes each
request with opentelemetry-proto's ExportMetricsServiceRequest and
ExportLogsServiceRequest, answers as a collector does (200 with an empty
response, or 503 when told), and can go away and come back on the same port.
The exporter is the real command against the real kernel; the workloads are
the binaries tests/test_exporter.py copies under names of this run's own, so
the counts are exactly ours.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from builds import Built
from conftest import needs, require
from test_exporter import (
    ISSUE_CONFIG,
    Exporter,
    free_port,
    package,
    probe,
    select,
    spawn,
)

pytestmark = needs("otel", "prometheus-client")


# --- the receiver ---------------------------------------------------------------------------------


class Receiver:
    """An OTLP/HTTP endpoint on 127.0.0.1: keeps every decoded request."""

    def __init__(self, port: int = 0) -> None:
        self.metrics: list[Any] = []  # ExportMetricsServiceRequest
        self.logs: list[Any] = []  # ExportLogsServiceRequest
        self.headers: list[dict[str, str]] = []
        self.status = 200
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.port = port
        self.start()

    def start(self) -> None:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
            ExportLogsServiceResponse,
        )
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
            ExportMetricsServiceResponse,
        )

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.status != 200:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == "/v1/metrics":
                    request: Any = ExportMetricsServiceRequest()
                    reply: Any = ExportMetricsServiceResponse()
                    kept = receiver.metrics
                elif self.path == "/v1/logs":
                    request, reply, kept = (ExportLogsServiceRequest(),
                                            ExportLogsServiceResponse(), receiver.logs)
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                assert self.headers["Content-Type"] == "application/x-protobuf"
                request.ParseFromString(body)
                with receiver.lock:
                    kept.append(request)
                    receiver.headers.append(dict(self.headers.items()))
                data = reply.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Gone: the port refuses connections until start()."""
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/metrics"

    def last_metrics(self) -> dict[str, Any]:
        """The metrics of the latest request, by name."""
        with self.lock:
            if not self.metrics:
                return {}
            request = self.metrics[-1]
        return {m.name: m for rm in request.resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics}

    def count(self) -> int:
        with self.lock:
            return len(self.metrics)

    def wait(self, predicate: Callable[[], Any], timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.2)


def attrs(kvs: Any) -> dict[str, Any]:
    """OTLP KeyValues -> a dict of their values."""
    out = {}
    for kv in kvs:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def points(metric: Any, **labels: str) -> list[tuple[dict[str, Any], Any]]:
    """(attributes, point) of a metric's data points whose attributes include `labels`."""
    data = getattr(metric, metric.WhichOneof("data"))
    return [(a, p) for p in data.data_points
            if set(labels.items()) <= set((a := attrs(p.attributes)).items())]


# --- one exporter, Prometheus and OTLP together ---------------------------------------------------


@pytest.fixture(scope="module")
def pushing(built: dict[str, Built], kernel: None, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Exporter, Receiver, Path]]:
    """The issue-11 opensnoop config, execlat's histogram and gauge, and bootstrap with
    `logs: true`, served on /metrics and pushed every 0.5 s."""
    require("prometheus-client", "otel")
    tmp = tmp_path_factory.mktemp("otlp")
    receiver = Receiver()
    shutil.copy(package(built, "opensnoop"), tmp / "package.json")
    (tmp / "config.yaml").write_text(ISSUE_CONFIG + f"""\
- name: execlat
  compiled_ebpf_filename: {package(built, "execlat")}
  metrics:
    histograms:
    - {{name: ecc_test_exec_duration_usecs, map: hists, description: execve() durations,
        labels: [comm]}}
    gauges:
    - {{name: ecc_test_execs, map: execs, description: execs by comm}}
- name: bootstrap
  compiled_ebpf_filename: {package(built, "bootstrap")}
  logs: true
otlp:
  endpoint: {receiver.url}
  interval: 0.5
  timeout: 5
  headers: {{authorization: Bearer otlp-token}}
  resource: {{deployment.environment.name: ecc-tests}}
""")
    exporter = Exporter(str(tmp / "config.yaml"), "--max-series", "1000000")
    yield exporter, receiver, tmp
    assert exporter.stop() == 0, exporter.err
    receiver.stop()


def test_counter_equals_the_files_opened(pushing: tuple[Exporter, Receiver, Path]) -> None:
    exporter, receiver, tmp = pushing
    assert exporter.err[-1].startswith(f"ecc: exporter listening on {exporter.url}/metrics; "
                                       f"3 programs running (opensnoop, execlat, bootstrap); "
                                       f"OTLP to {receiver.url} every 0.5s")
    marker = tmp / "otlp-marker.txt"
    marker.write_text("x")
    cat = probe(tmp, "/bin/cat", "o")
    pids = spawn([str(cat), str(marker)], 6)

    def ours() -> list[tuple[dict[str, Any], Any]]:
        metric = receiver.last_metrics().get("eunomia_file_open_counter")
        if metric is None:
            return []
        found = points(metric, comm=cat.name, filename=str(marker))
        return found if len(found) >= 6 else []

    found = receiver.wait(ours)
    assert sorted(int(a["pid"]) for a, _ in found) == sorted(pids)
    assert {p.as_int for _, p in found} == {1}
    metric = receiver.last_metrics()["eunomia_file_open_counter"]
    assert metric.description == "test"
    assert metric.sum.is_monotonic
    assert metric.sum.aggregation_temporality == 2  # AGGREGATION_TEMPORALITY_CUMULATIVE
    assert all(p.start_time_unix_nano < p.time_unix_nano for _, p in found)
    # the same series on /metrics, at the same time
    on_prometheus = select(exporter.samples(), "eunomia_file_open_counter_total", comm=cat.name,
                           filename=str(marker))
    assert sorted(int(dict(lbls)["pid"]) for lbls in on_prometheus) == sorted(pids)
    assert receiver.headers[-1].get("authorization") == "Bearer otlp-token"


def test_histogram_count_equals_execs(pushing: tuple[Exporter, Receiver, Path]) -> None:
    exporter, receiver, tmp = pushing
    true = probe(tmp, "/bin/true", "q")
    spawn([str(true)], 9)

    def ours() -> Any:
        metric = receiver.last_metrics().get("ecc_test_exec_duration_usecs")
        found = points(metric, comm=true.name) if metric is not None else []
        return found if found and found[0][1].count == 9 else None

    found = receiver.wait(ours)
    assert found, "the histogram never reached 9 observations"
    [(labels, point)] = found
    assert labels == {"comm": true.name}
    assert sum(point.bucket_counts) == 9
    assert list(point.explicit_bounds)[:4] == [1.0, 3.0, 7.0, 15.0]
    assert len(point.bucket_counts) == len(point.explicit_bounds) + 1 == 27
    assert point.sum > 0
    assert not point.HasField("min") and not point.HasField("max")
    metric = receiver.last_metrics()["ecc_test_exec_duration_usecs"]
    assert metric.description == "execve() durations"
    assert metric.histogram.aggregation_temporality == 2
    [(_, gauge)] = points(receiver.last_metrics()["ecc_test_execs"], comm=true.name)
    assert gauge.as_int == 9


def test_resource_attributes(pushing: tuple[Exporter, Receiver, Path]) -> None:
    import socket

    from ecc import __version__

    _, receiver, _ = pushing
    receiver.wait(receiver.count)
    with receiver.lock:
        resource = attrs(receiver.metrics[-1].resource_metrics[0].resource.attributes)
    assert resource["service.name"] == "ecc"
    assert resource["host.name"] == socket.gethostname()
    assert resource["telemetry.distro.name"] == "ecc-bpf"
    assert resource["service.version"] == __version__
    assert resource["deployment.environment.name"] == "ecc-tests"
    assert resource["telemetry.sdk.name"] == "opentelemetry"


def test_events_as_logs(pushing: tuple[Exporter, Receiver, Path]) -> None:
    exporter, receiver, tmp = pushing
    true = probe(tmp, "/bin/true", "l")
    pids = spawn([str(true)], 4)

    def ours() -> list[dict[str, Any]]:
        with receiver.lock:
            requests = list(receiver.logs)
        found = [attrs(r.attributes) for req in requests for rl in req.resource_logs
                 for sl in rl.scope_logs for r in sl.log_records]
        found = [a for a in found if a.get("comm") == true.name]
        return found if len(found) >= 8 else []

    found = receiver.wait(ours)
    assert len(found) == 8  # one exec and one exit event per run
    assert sorted(int(a["pid"]) for a in found if not a["exit_event"]) == sorted(pids)
    assert sorted(int(a["pid"]) for a in found if a["exit_event"]) == sorted(pids)
    assert all(a["ecc.program"] == "bootstrap" and a["ecc.map"] == "rb" for a in found)
    assert {a["exit_code"] for a in found if a["exit_event"]} == {0}
    samples = exporter.samples()
    assert samples[("ecc_exporter_otlp_exports_total", frozenset({("signal", "logs")}))] > 0
    assert not select(samples, "ecc_exporter_otlp_logs_dropped_total")
    assert not select(samples, "ecc_exporter_otlp_failures_total")


# --- a failing endpoint ------------------------------------------------------------------------


def failures(exporter: Exporter, kind: str, signal: str = "metrics") -> float:
    return exporter.samples().get(("ecc_exporter_otlp_failures_total",
                                   frozenset({("signal", signal), ("kind", kind)})), 0.0)


def test_endpoint_down_503_and_back(built: dict[str, Built], kernel: None,
                                    tmp_path: Path) -> None:
    """Counting never waits for the endpoint; failures are counted by kind, one warning
    line each; the log buffer stays at its limit; pushes resume when it comes back."""
    require("prometheus-client", "otel")
    port = free_port()  # nothing listens there yet
    url = f"http://127.0.0.1:{port}/v1/metrics"
    config = tmp_path / "config.yaml"
    config.write_text(f"""\
programs:
- name: bootstrap
  compiled_ebpf_filename: {package(built, "bootstrap")}
  logs: true
  metrics:
    counters:
    - {{name: ecc_test_otlp_events, labels: [comm]}}
otlp: {{endpoint: {url}, interval: 0.3, timeout: 2, max_queue: 20}}
""")
    exporter = Exporter(str(config))
    true = probe(tmp_path, "/bin/true", "d")
    key = ("ecc_test_otlp_events_total", frozenset({("comm", true.name)}))
    receiver: Receiver | None = None
    try:
        # down from the start
        spawn([str(true)], 15)  # 30 events, past max_queue
        samples = exporter.wait_for(lambda s: s.get(key) == 30)
        assert samples[key] == 30
        assert exporter.wait_for(lambda s: failures(exporter, "connection") >= 2)
        samples = exporter.samples()
        assert samples[("ecc_exporter_otlp_logs_queue", frozenset())] <= 20
        assert samples[("ecc_exporter_otlp_logs_queue_limit", frozenset())] == 20
        dropped = ("ecc_exporter_otlp_logs_dropped_total", frozenset({("program",
                                                                       "bootstrap")}))
        # Nothing gets through, so every event ends up counted as dropped: at once when
        # the buffer is full, or when the batch holding it fails.
        assert exporter.wait_for(lambda s: s.get(dropped, 0) >= 30)[dropped] >= 30
        rss = samples[("process_resident_memory_bytes", frozenset())]

        # a burst while down: counted, the buffer and memory stay bounded
        spawn([str(true)], 60)
        samples = exporter.wait_for(lambda s: s.get(key) == 150)
        assert samples[key] == 150
        assert samples[("ecc_exporter_otlp_logs_queue", frozenset())] <= 20
        assert exporter.wait_for(lambda s: s.get(dropped, 0) >= 150)[dropped] >= 150
        assert samples[("process_resident_memory_bytes", frozenset())] - rss < 16 << 20

        # it comes up: pushes resume, with the whole count
        receiver = Receiver(port)

        def pushed(n: int) -> Callable[[], bool]:
            def check() -> bool:
                metric = receiver.last_metrics().get("ecc_test_otlp_events") \
                    if receiver else None
                found = points(metric, comm=true.name) if metric is not None else []
                return bool(found) and found[0][1].as_int == n
            return check

        assert receiver.wait(pushed(150), timeout=30), "pushes did not resume"

        # it answers 503: still counting, failures of that kind
        receiver.status = 503
        spawn([str(true)], 5)
        assert exporter.wait_for(lambda s: s.get(key) == 160)[key] == 160
        assert exporter.wait_for(lambda s: failures(exporter, "http_503") >= 1,
                                 timeout=30)
        receiver.status = 200
        assert receiver.wait(pushed(160), timeout=30), "pushes did not resume after 503"

        # it goes away during the run, then comes back
        before = failures(exporter, "connection")
        receiver.stop()
        spawn([str(true)], 5)
        assert exporter.wait_for(lambda s: s.get(key) == 170)[key] == 170
        assert exporter.wait_for(lambda s: failures(exporter, "connection") > before,
                                 timeout=30)
        receiver.start()
        assert receiver.wait(pushed(170), timeout=30), "pushes did not resume after the outage"
    finally:
        assert exporter.stop() == 0, exporter.err
        if receiver is not None and receiver.server is not None:
            receiver.stop()
    warnings = [line for line in exporter.err if "OTLP" in line and "warning" in line]
    kinds = [re.findall(r"OTLP (\w+) export .* failed \((\w+)", line)[0] for line in warnings]
    assert len(kinds) == len(set(kinds)), warnings  # one line per signal and kind
    assert {("metrics", "connection"), ("metrics", "http_503"),
            ("logs", "connection")} <= set(kinds), warnings


# --- OTLP alone --------------------------------------------------------------------------------


def test_listen_none_pushes_only(built: dict[str, Built], kernel: None, tmp_path: Path) -> None:
    """--listen none with --otlp-endpoint: no listener, the counter arrives over OTLP."""
    require("otel")
    receiver = Receiver()
    config = tmp_path / "config.yaml"
    shutil.copy(package(built, "opensnoop"), tmp_path / "package.json")
    config.write_text(ISSUE_CONFIG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecc", "exporter", str(config), "--listen", "none",
         "--otlp-endpoint", receiver.url, "--otlp-interval", "0.5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("ecc: exporter not listening (--listen none); 1 program "
                               f"running (opensnoop); OTLP to {receiver.url} every 0.5s"), line
        marker = tmp_path / "alone.txt"
        marker.write_text("x")
        cat = probe(tmp_path, "/bin/cat", "n")
        pids = spawn([str(cat), str(marker)], 3)

        def ours() -> list[Any]:
            metric = receiver.last_metrics().get("eunomia_file_open_counter")
            found = (points(metric, comm=cat.name, filename=str(marker))
                     if metric is not None else [])
            return found if len(found) >= 3 else []

        found = receiver.wait(ours)
        assert sorted(int(a["pid"]) for a, _ in found) == sorted(pids)
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        receiver.stop()


def test_listen_none_needs_otlp(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("programs: []\n")
    result = subprocess.run([sys.executable, "-m", "ecc", "exporter", str(config), "--listen",
                             "none"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--listen none turns /metrics off" in result.stderr


@pytest.mark.parametrize(("block", "message"), [
    ({"endpoint": "ftp://x/v1/metrics"}, "is no http:// or https:// URL"),
    ({"endpoint": "http://x:4318/v1/metrics", "protocol": "grpc"}, "grpc is not supported"),
    ({"endpoint": "http://x:4318/v1/metrics", "interval": 0}, "positive number of seconds"),
    ({"endpoint": "http://x:4318/v1/metrics", "verify": False}, "unknown key 'verify'"),
    ({"interval": 3}, "no 'endpoint'"),
    ({"endpoint": "http://x:4318/v1/metrics", "timeout": 1}, "at least 2 seconds"),
])
def test_otlp_block_is_checked(block: dict[str, Any], message: str) -> None:
    from ecc.exporter.config import ConfigError
    from ecc.exporter.otlp import parse_settings

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_settings(block, "c.yaml")


def test_otlp_settings_defaults_and_command_line() -> None:
    from ecc.exporter.otlp import parse_settings

    assert parse_settings(None, "c.yaml") is None
    s = parse_settings({"endpoint": "https://c:4318/v1/metrics", "interval": 5}, "c.yaml",
                       endpoint="http://other:4318/v1/metrics", interval=2.0)
    assert s is not None
    assert (s.endpoint, s.logs_endpoint, s.interval) == (
        "http://other:4318/v1/metrics", "http://other:4318/v1/logs", 2.0)
    assert (s.service_name, s.protocol, s.ca_file) == ("ecc", "http/protobuf", None)
    custom = parse_settings({"endpoint": "http://c/ingest"}, "c.yaml")
    assert custom is not None and custom.logs_endpoint is None


def test_failure_kinds_from_the_sdk_records() -> None:
    from ecc.exporter.otlp import failure_kind

    class ConnectTimeout(OSError):
        pass

    class ConnectionError(OSError):  # noqa: A001 -- named as requests names it
        pass

    assert failure_kind(("metrics", 503, "Service Unavailable")) == "http_503"
    assert failure_kind(("Service Unavailable", "metrics", 1.0)) == "http_503"
    assert failure_kind((ConnectTimeout(), "metrics", 1.0)) == "timeout"
    assert failure_kind((ConnectionError(), "logs", 1.0)) == "connection"
    assert failure_kind(("metrics", 1.5)) is None
