"""What the exporter counts and shows: event counters, map histograms and gauges.

Counters live in the exporter: each decoded event adds one to the series of
its label values. Histograms and gauges are read from the program's maps at
each scrape, as cloudflare's ebpf_exporter does, so they are as fresh as the
scrape and cost nothing between scrapes.

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
Label values such as pids never come back, so a long-running exporter must let
old series go to keep showing new ones:

- a counter series not updated for its TTL (``--series-ttl``, or the metric's
  ``ttl``) is removed (``ecc_exporter_series_expired_total``): at each
  scrape, and when its counter makes a new series;
- a new counter series that finds the limit reached removes the least
  recently updated counter series of any program
  (``ecc_exporter_series_evicted_total``; counted as expired instead when
  that one was past its TTL). Each counter keeps its series in update order
  (an OrderedDict), so an update is O(1) and finding the oldest looks at the
  first series of each counter only;
- map series are read at each scrape, so they are always the most recently
  updated: they come first, and the counter series make room for as many as
  the last scrape showed. Past the limit a map series is dropped and counted
  in ``ecc_exporter_series_dropped_total`` (one per map entry per scrape), as
  is a counter's new series when map series fill the limit alone. A map
  metric with a ``ttl`` hides the series whose value has not changed for that
  long.

A counter series that comes back after being removed starts from zero again,
which Prometheus's ``rate()`` and ``increase()`` read as a counter reset.
Memory stays bounded whatever the label values.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import EccError
from .config import CounterSpec, GaugeSpec, HistogramSpec, Label, ProgramSpec

LOST_REASONS = ("queue_full", "perf_buffer", "undecodable")
DEFAULT_SERIES_TTL = 15 * 60.0


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


class _Series:
    __slots__ = ("value", "updated")

    def __init__(self, value: int, updated: float) -> None:
        self.value = value
        self.updated = updated


@dataclass
class _Counter:
    spec: CounterSpec
    fields: tuple[str, ...]
    ttl: float | None  # None: never expires
    # Least recently updated first: an update moves its series to the end.
    series: OrderedDict[tuple[str, ...], _Series] = field(default_factory=OrderedDict)


class SeriesBudget:
    """The counter series of every program against ``--max-series``, and their removal.

    One lock guards the series of all programs: making room for a new series
    may remove another program's. Methods named ``*_locked`` need it held.
    """

    def __init__(self, limit: int, ttl: float | None = DEFAULT_SERIES_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.ttl = ttl or None  # for counters with labels and no ttl of their own
        self.clock = clock
        self.lock = threading.Lock()
        self.used = 0  # counter series held
        self.for_maps = 0  # series the map metrics showed at the last scrape
        self.created = 0
        self.expired = 0
        self.evicted = 0
        self._counters: list[_Counter] = []

    def take(self) -> bool:
        """One more series if there is room without removing any."""
        with self.lock:
            return self._take_locked()

    def _take_locked(self) -> bool:
        if self.used >= self.limit - self.for_maps:
            return False
        self.used += 1
        return True

    def give_back(self, n: int) -> None:
        with self.lock:
            self.used = max(0, self.used - n)

    def left(self) -> int:
        with self.lock:
            return max(0, self.limit - self.for_maps - self.used)

    def counter_ttl(self, spec: CounterSpec) -> float | None:
        # Without labels a counter has one series: removing it would only reset it.
        ttl = spec.ttl if spec.ttl is not None else (self.ttl if spec.labels else None)
        return ttl if ttl and math.isfinite(ttl) else None

    def add_counters(self, counters: Iterable[_Counter]) -> None:
        with self.lock:
            self._counters.extend(counters)

    def remove_counters_locked(self, counters: Iterable[_Counter]) -> None:
        """A program stops: its series leave the budget (neither expired nor evicted)."""
        for c in counters:
            self.used -= len(c.series)
            c.series.clear()
            self._counters = [x for x in self._counters if x is not c]

    def expire_locked(self, c: _Counter, now: float) -> None:
        if c.ttl is None:
            return
        series, oldest_kept = c.series, now - c.ttl
        while series:
            key, s = next(iter(series.items()))
            if s.updated > oldest_kept:
                return
            del series[key]
            self.used -= 1
            self.expired += 1

    def admit_locked(self, now: float) -> bool:
        """Room for one new counter series, removing the least recently updated ones."""
        while not self._take_locked():
            if not self._remove_oldest_locked(now):
                return False
        self.created += 1
        return True

    def _remove_oldest_locked(self, now: float) -> bool:
        # Each counter's first series is its oldest: the oldest of those is the oldest of all.
        oldest: _Counter | None = None
        when = math.inf
        for c in self._counters:
            if c.series:
                first = next(iter(c.series.values())).updated
                if first < when:
                    oldest, when = c, first
        if oldest is None:
            return False
        oldest.series.popitem(last=False)
        self.used -= 1
        if oldest.ttl is not None and now - when >= oldest.ttl:
            self.expired += 1
        else:
            self.evicted += 1
        return True

    def reserve_for_maps(self, shown: int) -> None:
        """After a scrape: counter series make room for the map series it showed."""
        with self.lock:
            self.for_maps = min(shown, self.limit)
            now = self.clock()
            while self.used > self.limit - self.for_maps and self._remove_oldest_locked(now):
                pass

    def counts(self) -> tuple[int, int, int, int]:
        """(held, created, expired, evicted), read together so that they add up."""
        with self.lock:
            return self.used, self.created, self.expired, self.evicted


@dataclass
class Allowance:
    """The series one scrape may still add for map metrics, and how many it added."""

    left: int
    shown: int = 0


class EventCounters:
    """One program's counters, fed with raw events by its worker thread."""

    def __init__(self, spec: ProgramSpec, budget: SeriesBudget) -> None:
        from ..run.decode import Decoder, EventTally

        self.budget = budget
        self.lock = budget.lock  # see SeriesBudget: one lock for every program's series
        self.counters = [_Counter(c, tuple(lbl.field or lbl.name for lbl in c.labels),
                                  budget.counter_ttl(c))
                         for c in spec.counters]
        budget.add_counters(self.counters)
        self.by_map: dict[str, list[_Counter]] = {}
        for c in self.counters:
            for m in c.spec.maps:
                self.by_map.setdefault(m, []).append(c)
        self.decoders = {m: Decoder(spec.btf, spec.event_types[m]) for m in self.by_map}
        self.dropped: dict[str, int] = {}
        self.handled = 0
        self.undecodable = 0
        # Records shorter than the type's first member or longer than the type,
        # for one line per kind when the program stops.
        self.tally = EventTally()

    def handle(self, map_name: str, data: bytes) -> None:
        """Count one event; runs on the worker thread, so it never raises."""
        decoder = self.decoders.get(map_name)
        if decoder is None:  # a map no counter counts
            self.handled += 1
            return
        try:
            values = decoder.decode(data)
        except EccError:
            self.tally.check(map_name, decoder, len(data))
            self.undecodable += 1
            return
        if len(data) != decoder.size:
            self.tally.check(map_name, decoder, len(data))
        budget = self.budget
        now = budget.clock()
        with self.lock:
            for c in self.by_map[map_name]:
                # A member past the end of a short event: an empty label value,
                # as Prometheus reads an absent label.
                key = tuple([label_value(values[f]) if f in values else "" for f in c.fields])
                series = c.series
                s = series.get(key)
                if s is not None:
                    s.value += 1
                    s.updated = now
                    series.move_to_end(key)
                    continue
                # This counter's idle series go first, rather than another's live one.
                budget.expire_locked(c, now)
                if budget.admit_locked(now):
                    series[key] = _Series(1, now)
                else:
                    self.dropped[c.spec.name] = self.dropped.get(c.spec.name, 0) + 1
            self.handled += 1

    def series_count(self) -> int:
        return sum(len(c.series) for c in self.counters)

    def release(self) -> None:
        """The program stops: its series leave the budget."""
        with self.lock:
            self.budget.remove_counters_locked(self.counters)

    def families(self) -> list[Any]:
        from prometheus_client.core import CounterMetricFamily

        out = []
        with self.lock:
            now = self.budget.clock()
            for c in self.counters:
                self.budget.expire_locked(c, now)
            snapshot = [(c.spec, [(k, s.value) for k, s in c.series.items()])
                        for c in self.counters]
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
    # metric with a ttl -> labels -> (value, when it last changed): only the entries the
    # map held at the last scrape, so this is as bounded as the map.
    changed: dict[str, dict[tuple[str, ...], tuple[Any, float]]] = field(default_factory=dict)


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


def _shown(metric: str, ttl: float | None, values: Mapping[tuple[str, ...], Any],
           entries: Mapping[tuple[str, ...], int], allowance: Allowance,
           stats: MapReadStats) -> list[tuple[str, ...]]:
    """The label sets to show: changed within the ttl, and within the allowance."""
    candidates = list(values)
    if ttl:
        now = time.monotonic()
        before = stats.changed.get(metric, {})
        changed: dict[tuple[str, ...], tuple[Any, float]] = {}
        for labels, value in values.items():
            last = before.get(labels)
            changed[labels] = last if last is not None and last[0] == value else (value, now)
        stats.changed[metric] = changed
        candidates = [labels for labels in candidates if now - changed[labels][1] < ttl]
    out = []
    for labels in candidates:
        if allowance.left <= 0:
            stats.dropped[metric] = stats.dropped.get(metric, 0) + entries[labels]
            continue
        allowance.left -= 1
        allowance.shown += 1
        out.append(labels)
    return out


def histogram_family(spec: HistogramSpec, btf: Any, m: Any, allowance: Allowance,
                     stats: MapReadStats) -> Any:
    from prometheus_client import utils
    from prometheus_client.core import HistogramMetricFamily

    # The library's own le format ("1.0", "+Inf"), as its Histogram writes it.
    go_string: Callable[[float], str] = utils.floatToGoString

    merged: dict[tuple[str, ...], tuple[list[int], float, bool]] = {}
    entries: dict[tuple[str, ...], int] = {}
    for key, parts in _decoded_entries(btf, m, spec.key_id, spec.value_id):
        labels = _labels_of(spec.labels, key, parts[0])
        entries[labels] = entries.get(labels, 0) + 1
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
    for labels in _shown(spec.name, spec.ttl, merged, entries, allowance, stats):
        slots, total, exact = merged[labels]
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
    entries: dict[tuple[str, ...], int] = {}
    for key, parts in _decoded_entries(btf, m, spec.key_id, spec.value_id):
        labels = _labels_of(spec.labels, key, parts[0])
        entries[labels] = entries.get(labels, 0) + 1
        total = merged.get(labels, 0.0)
        for value in parts:
            if spec.value_field is not None:
                value = value.get(spec.value_field) if isinstance(value, dict) else None
            total += _number(value)
        merged[labels] = total
    family = GaugeMetricFamily(spec.name, spec.description,
                               labels=[lbl.name for lbl in spec.labels])
    for labels in _shown(spec.name, spec.ttl, merged, entries, allowance, stats):
        family.add_metric(list(labels), merged[labels])
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
        "Events (or map entries, per scrape) whose new series was dropped at --max-series: "
        "map series alone filled it",
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
    held, created, expired, evicted = budget.counts()
    return [
        events, lost, queue, dropped, errors,
        GaugeMetricFamily("ecc_exporter_series", "Event counter series held", value=held),
        CounterMetricFamily("ecc_exporter_series_created", "Event counter series made",
                            value=created),
        CounterMetricFamily(
            "ecc_exporter_series_expired",
            "Event counter series removed after their TTL without an update", value=expired),
        CounterMetricFamily(
            "ecc_exporter_series_evicted",
            "Event counter series removed, least recently updated first, to make room at "
            "--max-series", value=evicted),
        GaugeMetricFamily("ecc_exporter_series_limit", "The --max-series limit",
                          value=budget.limit),
        GaugeMetricFamily("ecc_exporter_programs", "Programs running", value=programs),
    ]
