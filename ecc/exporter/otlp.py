"""OTLP push: the exporter's metrics (and, per program, its events as logs) to a collector.

The only module of ecc that imports ``opentelemetry`` (the ``otel`` extra:
``opentelemetry-sdk`` and ``opentelemetry-exporter-otlp-proto-http``).

Metrics. Every ``interval`` a thread collects the same families ``/metrics``
shows (``Exporter.collect()``, plus this module's own), converts them to the
SDK's metric data and hands them to the SDK's ``OTLPMetricExporter``, which
encodes and posts them. Counters become monotonic cumulative sums named
without ``_total`` (a collector's Prometheus exporter adds it back),
histograms explicit-bucket histograms with the same bounds, gauges gauges;
labels become attributes. Every push carries the whole cumulative state, so a
failed push is simply not retried: the next one makes up for it, and nothing
piles up however long the endpoint is away.

Logs. With ``logs: true`` a program's worker thread hands each raw event to
:meth:`OtlpPusher.offer_event` after counting it: one append to a bounded
buffer (``max_queue`` records), or, when full, one more in
``ecc_exporter_otlp_dropped_total``. Another thread decodes, batches and
posts them; a failed batch is dropped and counted, so memory is bounded by
the buffer plus one batch.

Failures never reach the counting threads. The SDK retries a post with
exponential backoff within ``timeout``; after a failed push this module waits
longer before the next (doubling, up to 8 intervals) and counts it in
``ecc_exporter_otlp_failures_total{signal,kind}``. The SDK logs each attempt;
those lines are caught here (printed only with ``--verbose``): they tell the
kind of failure (``connection``, ``timeout``, ``tls``, ``http_503``...), and
the first failure of each kind prints one warning line.
"""

from __future__ import annotations

import contextlib
import functools
import http
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..errors import EccError
from .otlp_settings import (
    INSTALL,
    LOG_BATCH,
    LOG_FLUSH_SECONDS,
    MAX_BACKOFF_INTERVALS,
    SDK_LOGGER,
    SIGNALS,
    OtlpSettings,
    check_logs,
    parse_settings,
)

if TYPE_CHECKING:
    from .config import ProgramSpec
    from .programs import Exporter

# --- failures: what the SDK's log lines say ------------------------------------------------------

_PHRASES = {s.phrase: s.value for s in http.HTTPStatus}


def failure_kind(args: Iterable[Any]) -> str | None:
    """The kind of failure one of the SDK's export log records tells, from its arguments
    (status codes, HTTP reason phrases, the transport's exceptions); None if none."""
    for arg in args:
        if isinstance(arg, BaseException):
            names = [c.__name__ for c in type(arg).__mro__]
            if any("Timeout" in n for n in names):
                return "timeout"
            if any(n.startswith("SSL") for n in names):
                return "tls"
            return "connection"
        if isinstance(arg, int) and not isinstance(arg, bool) and 100 <= arg <= 599:
            return f"http_{arg}"
        if isinstance(arg, str) and arg in _PHRASES:
            return f"http_{_PHRASES[arg]}"
    return None


class _SdkLogs(logging.Handler):
    """Catches the SDK exporters' per-attempt log lines, remembering the last failure kind
    per signal (the metric and log exporters log under their own module names)."""

    def __init__(self, echo: Callable[[str], None] | None) -> None:
        super().__init__(logging.DEBUG)
        self.echo = echo
        self.last: dict[str, str | None] = dict.fromkeys(SIGNALS)
        self._lock_kinds = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if self.echo is not None:
            # A log line must not break an export.
            with contextlib.suppress(Exception):
                self.echo(f"ecc: otlp: {record.getMessage()}")
        args = record.args if isinstance(record.args, tuple) else ()
        kind = failure_kind(args)
        if kind is None:
            return
        signal = "logs" if "_log_exporter" in record.name or "logs" in args else "metrics"
        with self._lock_kinds:
            self.last[signal] = kind

    def take(self, signal: str) -> str | None:
        with self._lock_kinds:
            kind, self.last[signal] = self.last[signal], None
            return kind


# --- metrics: the exposition's families as the SDK's metric data ---------------------------------


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() and abs(value) < 2 ** 63 else float(value)


class _Starts:
    """Start times of cumulative points: when the exporter started, or when the point's
    value last went down (a series expired and came back, a program restarted).
    Rebuilt at each push from the points it had, so it holds no more than they do."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self._seen: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, float]] = {}
        self._next: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[int, float]] = {}

    def of(self, name: str, labels: tuple[tuple[str, str], ...], value: float, now: int) -> int:
        key = (name, labels)
        before = self._seen.get(key)
        start = before[0] if before is not None and value >= before[1] else (
            self.start_ns if before is None else now - 1)
        self._next[key] = (start, value)
        return start

    def done(self) -> None:
        self._seen, self._next = self._next, {}


def metrics_data(families: Iterable[Any], resource: Any, scope: Any, starts: _Starts,
                 now: int) -> Any:
    """prometheus_client metric families -> the SDK's MetricsData."""
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Gauge,
        Histogram,
        HistogramDataPoint,
        Metric,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )

    cumulative = AggregationTemporality.CUMULATIVE
    metrics: list[Metric] = []
    for family in families:
        if family.type == "counter":
            points = []
            for s in family.samples:
                if s.name != family.name + "_total":
                    continue  # _created: the start time says it
                labels = tuple(sorted(s.labels.items()))
                start = starts.of(family.name, labels, s.value, now)
                points.append(NumberDataPoint(dict(labels), start, now, _number(s.value)))
            metrics.append(Metric(family.name, family.documentation, "",
                                  Sum(points, cumulative, True)))
        elif family.type == "gauge":
            points = [NumberDataPoint(dict(s.labels), 0, now, _number(s.value))
                      for s in family.samples]
            metrics.append(Metric(family.name, family.documentation, "", Gauge(points)))
        elif family.type == "histogram":
            series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
            for s in family.samples:
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                one = series.setdefault(labels, {"buckets": [], "sum": 0.0, "count": 0})
                if s.name == family.name + "_bucket":
                    one["buckets"].append((float(s.labels["le"]), s.value))
                elif s.name == family.name + "_sum":
                    one["sum"] = s.value
                elif s.name == family.name + "_count":
                    one["count"] = s.value
            hist_points = []
            for labels, one in series.items():
                cumulative_counts = [n for _, n in one["buckets"]]
                counts = [int(n - (cumulative_counts[i - 1] if i else 0))
                          for i, n in enumerate(cumulative_counts)]
                bounds = [le for le, _ in one["buckets"] if le != math.inf]
                count = int(one["count"] or (cumulative_counts[-1] if cumulative_counts else 0))
                start = starts.of(family.name, labels, count, now)
                # min and max are unknown (the maps hold slots, not observations): None
                # leaves them out of the request, which the SDK's encoder allows.
                unknown = cast(float, None)
                hist_points.append(HistogramDataPoint(dict(labels), start, now, count,
                                                      _number(one["sum"]), counts, bounds,
                                                      unknown, unknown))
            metrics.append(Metric(family.name, family.documentation, "",
                                  Histogram(hist_points, cumulative)))
    starts.done()
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(scope, metrics, "")], "")])


# --- logs ----------------------------------------------------------------------------------------


def attribute_value(value: Any) -> Any:
    """A decoded field as an OTLP attribute value: strings, bools, 64-bit signed ints and
    floats as they are, bigger ints in decimal, arrays and structs as compact JSON."""
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return value if -(2 ** 63) <= value < 2 ** 63 else str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass
class _Event:
    program: ProgramSpec
    map_name: str
    data: bytes
    when_ns: int


# --- the pusher ----------------------------------------------------------------------------------


class OtlpPusher:
    """Two threads posting to the OTLP endpoint: metrics every interval, logs as they come."""

    def __init__(self, settings: OtlpSettings, exporter: Exporter,
                 say: Callable[[str], None], verbose: bool = False) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        except ImportError as exc:
            raise EccError(f"OTLP export needs the OpenTelemetry SDK ({exc.name} is missing): "
                           f"{INSTALL}") from None
        from .. import __version__

        self.settings = settings
        self.exporter = exporter
        self.say = say
        self.started_ns = time.time_ns()
        attributes: dict[str, str] = {
            "service.name": settings.service_name,
            "service.version": __version__,
            "host.name": socket.gethostname(),
            "telemetry.distro.name": "ecc-bpf",
            "telemetry.distro.version": __version__,
        }
        attributes.update(dict(settings.resource))
        # Resource.create adds the SDK's own telemetry.sdk.* attributes (and
        # OTEL_RESOURCE_ATTRIBUTES, which ours override).
        self.resource = Resource.create(attributes)
        self.scope = InstrumentationScope("ecc.exporter", __version__)
        self._sdk_logs = _SdkLogs(say if verbose else None)
        sdk_logger = logging.getLogger(SDK_LOGGER)
        sdk_logger.handlers[:] = [self._sdk_logs]
        sdk_logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
        sdk_logger.propagate = False
        # The log exporter's logger drops repeated lines (DuplicateFilter); each one tells
        # a failure's kind here, and _SdkLogs prints one line per kind anyway.
        logging.getLogger(OTLPLogExporter.__module__).filters.clear()
        cert: dict[str, Any] = {"certificate_file": settings.ca_file,
                                "client_certificate_file": settings.client_cert,
                                "client_key_file": settings.client_key}
        headers = dict(settings.headers)
        self._metric_exporter = OTLPMetricExporter(endpoint=settings.endpoint, headers=headers,
                                                   timeout=settings.timeout, **cert)
        self._log_exporter = (OTLPLogExporter(endpoint=settings.logs_endpoint, headers=headers,
                                              timeout=settings.timeout, **cert)
                              if settings.logs_endpoint else None)
        self._starts = _Starts(self.started_ns)
        self._lock = threading.Lock()  # the counts and the log buffer
        self.exports = dict.fromkeys(SIGNALS, 0)
        self.failures: dict[tuple[str, str], int] = {}
        self.dropped: dict[str, int] = {}  # program -> log records dropped
        self._warned: set[tuple[str, str]] = set()
        self._events: list[_Event] = []
        self._wake = threading.Condition(self._lock)
        self._decoders: dict[tuple[str, str], Any] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- the counting side: never blocks, never raises --------------------------------------------

    def offer_event(self, program: ProgramSpec, map_name: str, data: bytes) -> None:
        with self._lock:
            if len(self._events) >= self.settings.max_queue:
                self.dropped[program.name] = self.dropped.get(program.name, 0) + 1
                return
            self._events.append(_Event(program, map_name, data, time.time_ns()))
            if len(self._events) >= LOG_BATCH:
                self._wake.notify()

    # -- life -------------------------------------------------------------------------------------

    def start(self) -> None:
        targets: list[tuple[Callable[[], None], str]] = [(self._push_metrics, "metrics")]
        if self._log_exporter is not None:
            targets.append((self._push_logs, "logs"))
        for target, name in targets:
            t = threading.Thread(target=target, name=f"ecc-otlp-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """One last push of each signal (within the timeout), then the threads end."""
        self._stop.set()
        with self._lock:
            self._wake.notify_all()
        for t in self._threads:
            t.join(self.settings.timeout * 2 + 5)
        self._metric_exporter.shutdown()
        if self._log_exporter is not None:
            self._log_exporter.shutdown()  # type: ignore[no-untyped-call]

    # -- metrics ----------------------------------------------------------------------------------

    def push_metrics_once(self) -> bool:
        families = self.exporter.collect() + self.families()
        data = metrics_data(families, self.resource, self.scope, self._starts, time.time_ns())
        from opentelemetry.sdk.metrics.export import MetricExportResult

        self._sdk_logs.take("metrics")
        began = time.monotonic()
        result = self._metric_exporter.export(data, timeout_millis=self.settings.timeout * 1000)
        return self._outcome("metrics", result == MetricExportResult.SUCCESS, began)

    def _push_metrics(self) -> None:
        failed = 0
        while not self._stop.wait(self._delay(failed)):
            failed = 0 if self._guarded(self.push_metrics_once, "metrics") else failed + 1
        self._guarded(self.push_metrics_once, "metrics")

    def _delay(self, failed: int) -> float:
        return float(self.settings.interval * min(2 ** failed, MAX_BACKOFF_INTERVALS))

    def _guarded(self, push: Callable[[], bool], signal: str) -> bool:
        try:
            return push()
        except Exception as exc:  # noqa: BLE001 -- the pushing thread must go on
            self._count_failure(signal, "error", str(exc))
            return False

    def _outcome(self, signal: str, ok: bool, began: float) -> bool:
        if ok:
            with self._lock:
                self.exports[signal] += 1
            return True
        kind = self._sdk_logs.take(signal)
        if kind is None:
            # The SDK gives up silently when the deadline leaves no room for a retry: an
            # attempt that used up the time is a slow endpoint.
            slow = time.monotonic() - began >= 0.9 * self.settings.timeout
            kind = "timeout" if slow else "other"
        self._count_failure(signal, kind, "")
        return False

    def _count_failure(self, signal: str, kind: str, detail: str) -> None:
        with self._lock:
            self.failures[(signal, kind)] = self.failures.get((signal, kind), 0) + 1
            first = (signal, kind) not in self._warned
            self._warned.add((signal, kind))
        if first:
            url = self.settings.endpoint if signal == "metrics" else self.settings.logs_endpoint
            self.say(f"ecc: warning: OTLP {signal} export to {url} failed ({kind}"
                     f"{': ' + detail if detail else ''}); retrying with backoff, counted in "
                     f"ecc_exporter_otlp_failures_total (this line is printed once per kind)")

    # -- logs -------------------------------------------------------------------------------------

    def _push_logs(self) -> None:
        failed = 0
        while True:
            with self._lock:
                if not self._stop.is_set() and len(self._events) < LOG_BATCH:
                    self._wake.wait(LOG_FLUSH_SECONDS)
                batch = self._events[:LOG_BATCH]
                del self._events[:LOG_BATCH]
                stopping = self._stop.is_set()
            if batch:
                ok = self._guarded(functools.partial(self._post_logs, batch), "logs")
                if not ok:
                    with self._lock:
                        for e in batch:
                            self.dropped[e.program.name] = self.dropped.get(e.program.name,
                                                                            0) + 1
                    failed += 1
                    if not stopping:
                        self._stop.wait(self._delay(failed - 1) if failed > 1 else 0)
                else:
                    failed = 0
            if stopping:
                return

    def _post_logs(self, batch: list[_Event]) -> bool:
        from opentelemetry._logs import LogRecord
        from opentelemetry.sdk._logs import ReadableLogRecord
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        from ..run.decode import Decoder

        records = []
        for e in batch:
            key = (e.program.name, e.map_name)
            decoder = self._decoders.get(key)
            if decoder is None:
                decoder = self._decoders[key] = Decoder(e.program.btf,
                                                        e.program.event_types[e.map_name])
            try:
                values = decoder.decode(e.data)
            except EccError:
                continue  # the counter counted it as undecodable
            attributes = {name: attribute_value(v) for name, v in values.items()}
            attributes["ecc.program"] = e.program.name
            attributes["ecc.map"] = e.map_name
            record = LogRecord(timestamp=e.when_ns, observed_timestamp=e.when_ns,
                               body=f"{e.program.name} event", attributes=attributes)
            records.append(ReadableLogRecord(record, self.resource, self.scope))
        if not records:
            return True
        assert self._log_exporter is not None
        self._sdk_logs.take("logs")
        began = time.monotonic()
        result = self._log_exporter.export(records)
        return self._outcome("logs", result == LogRecordExportResult.SUCCESS, began)

    # -- its own metrics --------------------------------------------------------------------------

    def families(self) -> list[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self._lock:
            exports = dict(self.exports)
            failures = dict(self.failures)
            dropped = dict(self.dropped)
            queued = len(self._events)
        done = CounterMetricFamily("ecc_exporter_otlp_exports", "OTLP exports that succeeded",
                                   labels=["signal"])
        for signal in SIGNALS:
            done.add_metric([signal], exports[signal])
        failed = CounterMetricFamily(
            "ecc_exporter_otlp_failures",
            "OTLP exports that failed after the SDK's retries, by signal and kind (connection, "
            "timeout, tls, http_CODE, other)", labels=["signal", "kind"])
        for (signal, kind), n in sorted(failures.items()):
            failed.add_metric([signal, kind], n)
        lost = CounterMetricFamily(
            "ecc_exporter_otlp_logs_dropped",
            "Events not sent as OTLP logs: the log buffer was full, or their batch failed",
            labels=["program"])
        for name, n in sorted(dropped.items()):
            lost.add_metric([name], n)
        return [done, failed, lost,
                GaugeMetricFamily("ecc_exporter_otlp_logs_queue",
                                  "Events waiting to be sent as OTLP logs", value=queued),
                GaugeMetricFamily("ecc_exporter_otlp_logs_queue_limit",
                                  "The otlp max_queue limit", value=self.settings.max_queue)]

    def collect(self) -> list[Any]:
        """prometheus_client's Collector protocol: this module's metrics on /metrics."""
        return self.families()


def describe(settings: OtlpSettings) -> str:
    return f"OTLP to {settings.endpoint} every {settings.interval:g}s"


__all__ = ["OtlpPusher", "OtlpSettings", "check_logs", "failure_kind", "parse_settings"]
