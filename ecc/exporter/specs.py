"""What a checked exporter configuration holds: programs, their metrics and labels
(frozen records; config.py makes them, metrics.py and programs.py read them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..btf import Btf
    from ..package.source import LoadedPackage


@dataclass(frozen=True)
class Label:
    """One Prometheus label and where its value comes from.

    ``part`` is ``event``, ``key`` or ``value``; ``field`` is the member of
    that part, or None when the part is a scalar and the label takes it whole.
    """

    name: str
    part: str
    field: str | None


@dataclass(frozen=True)
class CounterSpec:
    name: str
    description: str
    labels: tuple[Label, ...]
    maps: tuple[str, ...]  # the event maps it counts
    ttl: float | None = None  # None: the exporter's --series-ttl; 0: never expire


@dataclass(frozen=True)
class HistogramSpec:
    name: str
    description: str
    map: str
    labels: tuple[Label, ...]
    kind: str  # log2_hist or linear_hist
    base: int
    step: int
    slots: int  # how many slots the value holds
    slots_field: str | None  # None: the value is the slot array itself
    sum_field: str | None
    key_id: int
    value_id: int
    ttl: float | None = None  # None or 0: shown as long as the map holds it


@dataclass(frozen=True)
class GaugeSpec:
    name: str
    description: str
    map: str
    labels: tuple[Label, ...]
    value_field: str | None  # None: the value itself is the number
    key_id: int
    value_id: int
    ttl: float | None = None  # None or 0: shown as long as the map holds it


@dataclass(frozen=True)
class ProgramSpec:
    """A checked program entry: its package, option values and metrics."""

    name: str
    package: LoadedPackage
    section_values: dict[str, bytes]
    counters: tuple[CounterSpec, ...]
    histograms: tuple[HistogramSpec, ...]
    gauges: tuple[GaugeSpec, ...]
    event_types: dict[str, int] = field(default_factory=dict)  # event map -> struct id
    logs: bool = False  # each event also sent as an OTLP log record

    @property
    def btf(self) -> Btf:
        """The package's BTF: parse_program refuses a package without one."""
        btf = self.package.btf
        assert btf is not None
        return btf

    def exposed_names(self) -> dict[str, str]:
        """Every name this program's metrics put in the exposition -> its metric."""
        names: dict[str, str] = {}
        for c in self.counters:
            for n in (c.name, c.name + "_total", c.name + "_created"):
                names[n] = c.name
        for h in self.histograms:
            for n in (h.name, h.name + "_bucket", h.name + "_count", h.name + "_sum",
                      h.name + "_created"):
                names[n] = h.name
        for g in self.gauges:
            names[g.name] = g.name
        return names
