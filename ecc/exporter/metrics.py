"""What the exporter counts and shows: event counters, map histograms and gauges.

Counters live in the exporter: each decoded event adds one to the series of
its label values, and a series, once made, stays while its program runs (a
counter must never go back). Histograms and gauges are read from the
program's maps at each scrape, as cloudflare's ebpf_exporter does, so they are
as fresh as the scrape and cost nothing between scrapes.

Histogram buckets. A log2 slot ``i`` counts the integer values from ``2^i``
to ``2^(i+1) - 1`` (slot 0: 0 and 1), which is what libbpf-tools' ``log2l``
computes and ``print_log2_hist`` prints as ``2 -> 3``, ``4 -> 7``. Prometheus
buckets are cumulative, "less than or equal to ``le``", so slot ``i``'s bucket
is ``le = 2^(i+1) - 1``: exact for the integer observations these maps hold
(``le=1, 3, 7, 15, ...``). A linear slot ``i`` (``base``, ``step``) counts
``base + i*step`` to ``base + (i+1)*step - 1``, so ``le = base + (i+1)*step - 1``.
The last slot is where BPF programs clamp larger values
(``if (slot >= MAX_SLOTS) slot = MAX_SLOTS - 1``), so it has no finite bound:
it is counted in ``le="+Inf"`` only. ``_count`` is the total of the slots;
``_sum`` is the value member named by ``sum`` (exact) when there is one, else
an estimate: each observation at the middle of its slot, those of the last
slot at its lower bound.

The series limit (``--max-series``) counts label sets: one per counter
series, one per histogram or gauge series (a histogram's buckets are one).
Event series take from it as they appear and keep their place; map series are
given, at each scrape, what the event series leave. Past the limit a new
series is dropped and counted in ``ecc_exporter_series_dropped_total``: one
per event, or per map entry per scrape, that would have made it. Memory thus
stays bounded whatever the label values.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import EccError
from .config import CounterSpec, GaugeSpec, HistogramSpec, Label, ProgramSpec

LOST_REASONS = ("queue_full", "perf_buffer", "undecodable")


def label_value(value: Any) -> str:
    """A decoded field as a label value: strings as they are, numbers in decimal,
    bools as true/false, arrays and structs as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


class SeriesBudget:
    """How many label sets the exporter holds, against ``--max-series``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.limit:
                return False
            self.used += 1
            return True

    def give_back(self, n: int) -> None:
        with self._lock:
            self.used = max(0, self.used - n)

    def left(self) -> int:
        with self._lock:
            return max(0, self.limit - self.used)


@dataclass
class Allowance:
    """The series one scrape may still add for map metrics."""

    left: int


@dataclass
class _Counter:
    spec: CounterSpec
    fields: tuple[str, ...]
    series: dict[tuple[str, ...], int] = field(default_factory=dict)


class EventCounters:
    """One program's counters, fed with raw events by its worker thread."""

    def __init__(self, spec: ProgramSpec, budget: SeriesBudget) -> None:
        from ..run.decode import Decoder

        self.budget = budget
        self.lock = threading.Lock()
        self.counters = [_Counter(c, tuple(lbl.field or lbl.name for lbl in c.labels))
                         for c in spec.counters]
        self.by_map: dict[str, list[_Counter]] = {}
        for c in self.counters:
            for m in c.spec.maps:
                self.by_map.setdefault(m, []).append(c)
        self.decoders = {m: Decoder(spec.btf, spec.event_types[m]) for m in self.by_map}
        self.dropped: dict[str, int] = {}
        self.handled = 0
        self.undecodable = 0

    def handle(self, map_name: str, data: bytes) -> None:
        """Count one event; runs on the worker thread, so it never raises."""
        decoder = self.decoders.get(map_name)
        if decoder is None:  # a map no counter counts
            self.handled += 1
            return
        try:
            values = decoder.decode(data)
        except EccError:
            self.undecodable += 1
            return
        with self.lock:
            for c in self.by_map[map_name]:
                key = tuple([label_value(values[f]) for f in c.fields])
                series = c.series
                n = series.get(key)
                if n is not None:
                    series[key] = n + 1
                elif self.budget.take():
                    series[key] = 1
                else:
                    self.dropped[c.spec.name] = self.dropped.get(c.spec.name, 0) + 1
            self.handled += 1

    def series_count(self) -> int:
        return sum(len(c.series) for c in self.counters)

    def release(self) -> None:
        """The program stops: its series leave the budget."""
        with self.lock:
            self.budget.give_back(self.series_count())
            for c in self.counters:
                c.series.clear()

    def families(self) -> list[Any]:
        from prometheus_client.core import CounterMetricFamily

        out = []
        with self.lock:
            snapshot = [(c.spec, list(c.series.items())) for c in self.counters]
        for spec, items in snapshot:
            family = CounterMetricFamily(spec.name, spec.description,
                                         labels=[lbl.name for lbl in spec.labels])
            for key, value in items:
                family.add_metric(list(key), value)
            out.append(family)
        return out


# --- maps, read at scrape time ----------------------------------------------------------------


@dataclass
class MapReadStats:
    dropped: dict[str, int] = field(default_factory=dict)  # metric -> map entries dropped
    errors: dict[str, int] = field(default_factory=dict)  # map -> failed reads


def _decoded_entries(btf: Any, m: Any, key_id: int, value_id: int
                     ) -> list[tuple[Any, list[Any]]]:
    """(key, [value per CPU]) of every entry of a libbpf map."""
    from ..run.decode import decode_value

    out = []
    for key, value in m.items():
        parts = m.split_percpu(value) if m.is_percpu else [value]
        out.append((decode_value(btf, key_id, key),
                    [decode_value(btf, value_id, p) for p in parts]))
    return out


def _labels_of(labels: Sequence[Label], key: Any, value: Any) -> tuple[str, ...]:
    out = []
    for lbl in labels:
        part = key if lbl.part == "key" else value
        if lbl.field is not None:
            part = part.get(lbl.field) if isinstance(part, dict) else None
        out.append(label_value(part))
    return tuple(out)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return 0.0  # an enum value with no number form cannot be summed; never for ints


def bucket_bounds(spec: HistogramSpec) -> list[float]:
    """The finite ``le`` of each slot but the last (see the module's docstring)."""
    if spec.kind == "log2_hist":
        return [float((1 << (i + 1)) - 1) for i in range(spec.slots - 1)]
    return [float(spec.base + (i + 1) * spec.step - 1) for i in range(spec.slots - 1)]


def _estimated_sum(spec: HistogramSpec, slots: Sequence[int]) -> float:
    total = 0.0
    last = len(slots) - 1
    for i, count in enumerate(slots):
        if not count:
            continue
        if spec.kind == "log2_hist":
            low = 0 if i == 0 else 1 << i
            high = (1 << (i + 1)) - 1
        else:
            low = spec.base + i * spec.step
            high = low + spec.step - 1
        total += count * (low if i == last else (low + high) / 2)
    return total


def _admit(labels: tuple[str, ...], seen: dict[tuple[str, ...], Any], allowance: Allowance,
           stats: MapReadStats, metric: str) -> bool:
    if labels in seen:
        return True
    if allowance.left <= 0:
        stats.dropped[metric] = stats.dropped.get(metric, 0) + 1
        return False
    allowance.left -= 1
    return True


def histogram_family(spec: HistogramSpec, btf: Any, m: Any, allowance: Allowance,
                     stats: MapReadStats) -> Any:
    from prometheus_client import utils
    from prometheus_client.core import HistogramMetricFamily

    # The library's own le format ("1.0", "+Inf"), as its Histogram writes it.
    go_string: Callable[[float], str] = utils.floatToGoString

    merged: dict[tuple[str, ...], tuple[list[int], float, bool]] = {}
    for key, parts in _decoded_entries(btf, m, spec.key_id, spec.value_id):
        labels = _labels_of(spec.labels, key, parts[0])
        if not _admit(labels, merged, allowance, stats, spec.name):
            continue
        slots, total, exact = merged.get(labels, ([0] * spec.slots, 0.0, True))
        for value in parts:
            array = value.get(spec.slots_field) if spec.slots_field else value
            if not isinstance(array, list):
                continue
            for i, n in enumerate(array[: spec.slots]):
                slots[i] += int(n)
            if spec.sum_field is not None and isinstance(value, dict):
                total += _number(value.get(spec.sum_field))
        merged[labels] = (slots, total, exact and spec.sum_field is not None)
    bounds = [go_string(b) for b in bucket_bounds(spec)] + ["+Inf"]
    family = HistogramMetricFamily(spec.name, spec.description,
                                   labels=[lbl.name for lbl in spec.labels])
    for labels, (slots, total, exact) in merged.items():
        running, buckets = 0, []
        for le, count in zip(bounds, slots, strict=True):
            running += count
            buckets.append((le, float(running)))
        family.add_metric(list(labels), buckets,
                          total if exact else _estimated_sum(spec, slots))
    return family


def gauge_family(spec: GaugeSpec, btf: Any, m: Any, allowance: Allowance,
                 stats: MapReadStats) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    merged: dict[tuple[str, ...], float] = {}
    for key, parts in _decoded_entries(btf, m, spec.key_id, spec.value_id):
        labels = _labels_of(spec.labels, key, parts[0])
        if not _admit(labels, merged, allowance, stats, spec.name):
            continue
        total = merged.get(labels, 0.0)
        for value in parts:
            if spec.value_field is not None:
                value = value.get(spec.value_field) if isinstance(value, dict) else None
            total += _number(value)
        merged[labels] = total
    family = GaugeMetricFamily(spec.name, spec.description,
                               labels=[lbl.name for lbl in spec.labels])
    for labels, value in merged.items():
        family.add_metric(list(labels), value)
    return family


def map_families(spec: ProgramSpec, obj: Any, allowance: Allowance,
                 stats: MapReadStats) -> list[Any]:
    """Histograms and gauges of one program, read from its maps now."""
    from ..errors import LibbpfError

    btf = spec.package.btf
    out = []
    metrics: list[HistogramSpec | GaugeSpec] = [*spec.histograms, *spec.gauges]
    for metric in metrics:
        m = obj.find_map(metric.map)
        if m is None:
            stats.errors[metric.map] = stats.errors.get(metric.map, 0) + 1
            continue
        try:
            if isinstance(metric, HistogramSpec):
                out.append(histogram_family(metric, btf, m, allowance, stats))
            else:
                out.append(gauge_family(metric, btf, m, allowance, stats))
        except (LibbpfError, EccError):
            stats.errors[metric.map] = stats.errors.get(metric.map, 0) + 1
    return out


# --- the exporter's own metrics ----------------------------------------------------------------


@dataclass
class ProgramStats:
    """What one program's pipeline reports about itself."""

    name: str
    handled: int
    lost: Mapping[str, int]  # reason -> events
    queued: int
    dropped: Mapping[str, int]  # metric -> series refused
    map_errors: Mapping[str, int]  # map -> failed reads


def own_families(stats: Iterable[ProgramStats], budget: SeriesBudget,
                 programs: int) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    events = CounterMetricFamily("ecc_exporter_events", "Events counted, by program",
                                 labels=["program"])
    lost = CounterMetricFamily(
        "ecc_exporter_events_lost",
        "Events lost: queue_full (arrived faster than handled), perf_buffer (dropped by "
        "the kernel and reported by the perf buffer), undecodable",
        labels=["program", "reason"])
    queue = GaugeMetricFamily("ecc_exporter_event_queue", "Events waiting to be counted",
                              labels=["program"])
    dropped = CounterMetricFamily(
        "ecc_exporter_series_dropped",
        "Events (or map entries, per scrape) whose new series was dropped at --max-series",
        labels=["program", "metric"])
    errors = CounterMetricFamily("ecc_exporter_map_read_errors", "Failed map reads",
                                 labels=["program", "map"])
    for s in stats:
        events.add_metric([s.name], s.handled)
        for reason in LOST_REASONS:
            lost.add_metric([s.name, reason], s.lost.get(reason, 0))
        queue.add_metric([s.name], s.queued)
        for metric, n in sorted(s.dropped.items()):
            dropped.add_metric([s.name, metric], n)
        for map_name, n in sorted(s.map_errors.items()):
            errors.add_metric([s.name, map_name], n)
    return [
        events, lost, queue, dropped, errors,
        GaugeMetricFamily("ecc_exporter_series", "Event counter series held",
                          value=budget.used),
        GaugeMetricFamily("ecc_exporter_series_limit", "The --max-series limit",
                          value=budget.limit),
        GaugeMetricFamily("ecc_exporter_programs", "Programs running", value=programs),
    ]
