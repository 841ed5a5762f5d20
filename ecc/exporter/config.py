"""The exporter's configuration: which packages to load and which metrics to make of them.

The format is eunomia-exporter's, accepted as it is, in YAML or JSON::

    programs:
    - name: opensnoop
      metrics:
        counters:
        - name: eunomia_file_open_counter
          description: test
          labels:
          - name: pid
          - name: comm
          - name: filename
            from: fname
      compiled_ebpf_filename: package.json

A counter counts the program's events (ring buffer or perf event array
records, decoded with the package's export type); each label takes the event
field named by its ``from``, or by its own name. ``compiled_ebpf_filename``
is relative to the configuration file's folder; ``ebpf_data`` holds the
package itself instead (its JSON or YAML text, or the object). Added here,
in the manner of cloudflare's ebpf_exporter:

- ``metrics.histograms``: ``{name, description, map, labels}``: a map whose
  value is a log2 or linear histogram (a ``slots`` integer array member, or
  the value itself an integer array), one Prometheus histogram per key; the
  kind, ``base`` and ``step`` come from the map's ``@sample`` annotation or
  from the entry (``type``, ``base``, ``step``); ``sum`` names a value
  member holding the exact sum of the observations (default: a member
  called ``sum``, if any).
- ``metrics.gauges``: ``{name, description, map, labels, value}``: one gauge
  per key of a hash or array map; ``value`` names the value member to show
  (default: the value itself when it is a number).
- Map labels take key fields (a scalar key is the field ``key``), or
  members of the value other than the histogram's slots; without
  ``labels``, every key field is a label.
- ``options``: the program's own options (``ecc run package.json --help``),
  by long name: ``{pid: 42}``.
- ``ttl``, on any metric: seconds after which a series that has not changed
  leaves the exposition (0: never). A counter with labels takes
  ``--series-ttl`` without one; a counter without labels (one series) and
  map metrics, which show what the map holds at each scrape, keep their
  series without one.
- ``logs: true``, on a program: each of its events is also sent as an OTLP log
  record; the top-level ``otlp`` block says where (ecc.exporter.otlp checks it).

Everything is checked here, before anything is loaded: field names against
the package's BTF, map names and kinds, metric and label names; every error
is one line naming the place in the configuration.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..btf import Btf
from ..btf.mapdefs import MapDef, map_defs
from ..errors import BtfError, EccError
from ..package import MAX_OBJECT_BYTES
from ..run.decode import Decoder, field_names, int_array_length, is_number, member_type
from .specs import CounterSpec as CounterSpec
from .specs import GaugeSpec as GaugeSpec
from .specs import HistogramSpec as HistogramSpec
from .specs import Label as Label
from .specs import ProgramSpec as ProgramSpec

if TYPE_CHECKING:
    from ..package.source import LoadedPackage

# Inline packages make configurations large; this still stops a runaway file.
MAX_CONFIG_BYTES = 256 * 1024 * 1024

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# BPF map types (uapi enum bpf_map_type) the exporter reads or listens to.
MAP_HASH, MAP_ARRAY, MAP_PERCPU_HASH, MAP_PERCPU_ARRAY = 1, 2, 5, 6
MAP_LRU_HASH, MAP_LRU_PERCPU_HASH = 9, 10
MAP_PERF_EVENT_ARRAY, MAP_RINGBUF = 4, 27
READABLE_MAPS = {MAP_HASH, MAP_ARRAY, MAP_PERCPU_HASH, MAP_PERCPU_ARRAY, MAP_LRU_HASH,
                 MAP_LRU_PERCPU_HASH}
EVENT_MAPS = {MAP_PERF_EVENT_ARRAY, MAP_RINGBUF}
HISTOGRAM_KINDS = ("log2_hist", "linear_hist")
# Prefixes of the exporter's own metrics (and of prometheus_client's process collector):
# no configured metric may use them.
OWN_PREFIXES = ("ecc_exporter_", "process_")

PROGRAM_KEYS = ("name", "metrics", "compiled_ebpf_filename", "ebpf_data", "options", "logs")
# Top-level keys; ``otlp`` is checked by ecc.exporter.otlp (parse_settings).
CONFIG_KEYS = ("programs", "otlp")
METRIC_KINDS = ("counters", "histograms", "gauges")
COUNTER_KEYS = ("name", "description", "labels", "map", "ttl")
HISTOGRAM_KEYS = ("name", "description", "labels", "map", "type", "base", "step", "sum", "ttl")
GAUGE_KEYS = ("name", "description", "labels", "map", "value", "ttl")


class ConfigError(EccError):
    """The exporter configuration (or an API request's program config) is wrong."""


# --- reading files --------------------------------------------------------------------------


def parse_text(origin: str, text: str, yaml_first: bool) -> Any:
    """JSON or YAML text -> its value; which one is tried first depends on the file name."""
    from ..fileio import parse_json_or_yaml

    return parse_json_or_yaml(origin, text, yaml_first, ConfigError)


def load_config(path: str) -> list[ProgramSpec]:
    """Read, parse and check the configuration file; every program's package is read too."""
    return load_config_and_otlp(path)[0]


def load_config_and_otlp(path: str) -> tuple[list[ProgramSpec], Any]:
    """:func:`load_config`, and the ``otlp`` block as written (None when absent)."""
    from ..fileio import read_limited

    data = read_limited(path, label=path, limit=MAX_CONFIG_BYTES, error=ConfigError,
                        directory_hint="; give the configuration file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    document = parse_text(path, text, yaml_first=not path.endswith(".json"))
    specs = parse_config(document, path, os.path.dirname(os.path.abspath(path)))
    return specs, document.get("otlp")


def parse_config(document: Any, origin: str, base_dir: str) -> list[ProgramSpec]:
    if not isinstance(document, dict):
        raise ConfigError(f"{origin}: the configuration must be a mapping with a "
                          f"'programs' list")
    _no_unknown(document, CONFIG_KEYS, origin)
    programs = document.get("programs")
    if not isinstance(programs, list):
        raise ConfigError(f"{origin}: 'programs' must be a list of programs")
    specs: list[ProgramSpec] = []
    for index, entry in enumerate(programs):
        specs.append(parse_program(entry, f"{origin}: programs[{index}]", base_dir))
    check_together(specs, [], origin)
    return specs


def check_together(new: Sequence[ProgramSpec], running: Sequence[ProgramSpec],
                   where: str) -> None:
    """Program names and exposed metric names must be unique across the exporter."""
    names = {p.name: "running" for p in running}
    exposed = {n: (p.name, metric) for p in running for n, metric in p.exposed_names().items()}
    for spec in new:
        if spec.name in names:
            raise ConfigError(f"{where}: a program named '{spec.name}' is already "
                              f"{names[spec.name]}; give each program its own name")
        names[spec.name] = "configured"
        mine = spec.exposed_names()
        for n, metric in mine.items():
            if n.startswith(OWN_PREFIXES):
                raise ConfigError(
                    f"{where} ({spec.name}): metric '{metric}': names starting with "
                    f"{' or '.join(OWN_PREFIXES)} are the exporter's own; rename it")
            if n in exposed:
                owner, theirs = exposed[n]
                raise ConfigError(
                    f"{where} ({spec.name}): metric '{metric}' clashes with metric "
                    f"'{theirs}' of program {owner} (both expose '{n}'); rename one")
        for n, metric in mine.items():
            exposed[n] = (spec.name, metric)


# --- one program ----------------------------------------------------------------------------


def parse_program(entry: Any, where: str, base_dir: str) -> ProgramSpec:
    """Check one program entry and read its package. ``where`` prefixes every message."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: a program must be a mapping with 'name', 'metrics' and "
                          f"'compiled_ebpf_filename' or 'ebpf_data'")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: 'name' must be a non-empty string")
    where = f"{where} ({name})"
    _no_unknown(entry, PROGRAM_KEYS, where)
    package = _package(entry, where, base_dir)
    btf = package.btf
    if btf is None:
        raise ConfigError(f"{where}: the package's object has no BTF; rebuild it with ecc")
    defs = map_defs(btf)
    section_values = _options(entry.get("options"), package, where)
    event_types = _event_types(package, defs)
    metrics = entry.get("metrics", {})
    if metrics is None:
        metrics = {}
    if not isinstance(metrics, dict):
        raise ConfigError(f"{where}: 'metrics' must be a mapping of counters, histograms "
                          f"and gauges")
    _no_unknown(metrics, METRIC_KINDS, f"{where}: metrics")
    lists = {}
    for kind in METRIC_KINDS:
        items = metrics.get(kind) or []
        if not isinstance(items, list):
            raise ConfigError(f"{where}: metrics.{kind} must be a list")
        lists[kind] = items
    counters = tuple(_counter(c, f"{where}: metrics.counters[{i}]", name, btf, event_types)
                     for i, c in enumerate(lists["counters"]))
    histograms = tuple(_histogram(h, f"{where}: metrics.histograms[{i}]", name, package, btf,
                                  defs)
                       for i, h in enumerate(lists["histograms"]))
    gauges = tuple(_gauge(g, f"{where}: metrics.gauges[{i}]", name, btf, defs)
                   for i, g in enumerate(lists["gauges"]))
    logs = entry.get("logs", False)
    if not isinstance(logs, bool):
        raise ConfigError(f"{where}: 'logs' must be true or false")
    if logs and not event_types:
        raise ConfigError(f"{where}: 'logs: true' but the program sends no events (no ring "
                          f"buffer or perf event array with an export type)")
    spec = ProgramSpec(name, package, section_values, counters, histograms, gauges, event_types,
                       logs)
    seen: dict[str, str] = {}
    for n, metric in spec.exposed_names().items():
        if n in seen and seen[n] != metric:
            raise ConfigError(f"{where}: metrics '{seen[n]}' and '{metric}' both expose "
                              f"'{n}'; rename one")
        seen[n] = metric
    declared = [c.name for c in counters] + [h.name for h in histograms] + [
        g.name for g in gauges]
    for n in declared:
        if declared.count(n) > 1:
            raise ConfigError(f"{where}: two metrics are named '{n}'")
    return spec


def _no_unknown(entry: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in entry:
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(known)})")


def _package(entry: Mapping[str, Any], where: str, base_dir: str) -> LoadedPackage:
    from ..errors import PackageError
    from ..package import parse_package
    from ..package.source import check_package, read_package

    filename, data = entry.get("compiled_ebpf_filename"), entry.get("ebpf_data")
    if filename not in (None, "") and data not in (None, ""):
        raise ConfigError(f"{where}: give either 'compiled_ebpf_filename' or 'ebpf_data', "
                          f"not both")
    if filename not in (None, ""):
        if not isinstance(filename, str):
            raise ConfigError(f"{where}: 'compiled_ebpf_filename' must be a file name")
        path = filename if os.path.isabs(filename) else os.path.join(base_dir, filename)
        try:
            return read_package(os.path.normpath(path))
        except PackageError as exc:
            raise ConfigError(f"{where}: compiled_ebpf_filename: {exc}") from exc
    if data in (None, ""):
        raise ConfigError(f"{where}: no package: give 'compiled_ebpf_filename' (a "
                          f"package.json) or 'ebpf_data' (the package itself)")
    document = data
    if isinstance(data, str):
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{where}: ebpf_data is larger than {MAX_CONFIG_BYTES} bytes")
        document = parse_text(f"{where}: ebpf_data", data, yaml_first=False)
    try:
        package = parse_package(document, limit=MAX_OBJECT_BYTES)
        return check_package(f"{where}: ebpf_data", package.object_bytes, package.meta)
    except PackageError as exc:
        message = str(exc)
        if not message.startswith(where):
            message = f"{where}: ebpf_data: {message}"
        raise ConfigError(message) from exc


def _options(options: Any, package: LoadedPackage, where: str) -> dict[str, bytes]:
    """The program's own options (by long name) -> initial bytes of the sections they change."""
    from ..run.sections import section_overrides

    if options in (None, {}):
        options = {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: 'options' must be a mapping of option names to values")
    for key, value in options.items():
        if not isinstance(value, bool | int | float | str):
            raise ConfigError(f"{where}: options.{key} must be a number, a string or a bool")
    try:
        return section_overrides(package, {str(key): value for key, value in options.items()})
    except EccError as exc:
        raise ConfigError(f"{where}: options: {exc}") from exc


# --- BTF: maps and their types --------------------------------------------------------------


def _event_types(package: LoadedPackage, defs: Mapping[str, MapDef]) -> dict[str, int]:
    from ..run.loader import event_type_id

    metas = {m.get("name"): m for m in package.meta["bpf_skel"].get("maps") or []
             if isinstance(m, dict)}
    out: dict[str, int] = {}
    for name, d in defs.items():
        if d.type not in EVENT_MAPS:
            continue
        type_id = event_type_id(package.meta, metas.get(name, {}))
        if type_id is not None:
            out[name] = type_id
    return out


# --- metrics --------------------------------------------------------------------------------


def _metric_head(entry: Any, where: str, keys: Sequence[str], program: str,
                 what: str) -> tuple[str, str]:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping with at least a 'name'")
    _no_unknown(entry, keys, where)
    name = entry.get("name")
    if not isinstance(name, str) or not METRIC_NAME.match(name):
        raise ConfigError(f"{where}: 'name' must be a Prometheus metric name "
                          f"([a-zA-Z_:][a-zA-Z0-9_:]*), got {name!r}")
    description = entry.get("description")
    if description is None:
        description = f"{what} of program {program}"
    if not isinstance(description, str):
        raise ConfigError(f"{where}: 'description' must be a string")
    return name, description


def _ttl(entry: Mapping[str, Any], where: str) -> float | None:
    value = entry.get("ttl")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0 <= value < float("inf")):
        raise ConfigError(f"{where}: 'ttl' must be a number of seconds (0: never expire), "
                          f"got {value!r}")
    return float(value)


def _label_entries(entry: Mapping[str, Any], where: str) -> list[tuple[str, str]] | None:
    """(label name, field) pairs as written; None when the entry has no 'labels'."""
    labels = entry.get("labels")
    if labels is None:
        return None
    if not isinstance(labels, list):
        raise ConfigError(f"{where}: 'labels' must be a list")
    out: list[tuple[str, str]] = []
    for i, label in enumerate(labels):
        at = f"{where}.labels[{i}]"
        if isinstance(label, str):
            label = {"name": label}
        if not isinstance(label, dict):
            raise ConfigError(f"{at}: a label is a mapping with 'name' and an optional 'from'")
        _no_unknown(label, ("name", "from"), at)
        name = label.get("name")
        if not isinstance(name, str) or not LABEL_NAME.match(name) or name.startswith("__"):
            raise ConfigError(f"{at}: 'name' must be a Prometheus label name "
                              f"([a-zA-Z_][a-zA-Z0-9_]*, not starting with __), got {name!r}")
        source = label.get("from", name)
        if source in (None, "", "*"):
            source = name  # eunomia-exporter's default for `from` is "*": the label's own name
        if not isinstance(source, str):
            raise ConfigError(f"{at}: 'from' must be a field name")
        if any(name == n for n, _ in out):
            raise ConfigError(f"{at}: label '{name}' is given twice")
        out.append((name, source))
    return out


def _counter(entry: Any, where: str, program: str, btf: Btf,
             event_types: Mapping[str, int]) -> CounterSpec:
    name, description = _metric_head(entry, where, COUNTER_KEYS, program, "events")
    if name.endswith("_total"):
        name = name[: -len("_total")]  # the exposition adds it back, as for any counter
    wanted = entry.get("map")
    if wanted is not None:
        if wanted not in event_types:
            raise ConfigError(f"{where}: map '{wanted}' is not a ring buffer or perf event "
                              f"array with an export type (event maps: "
                              f"{', '.join(sorted(event_types)) or 'none'})")
        maps: tuple[str, ...] = (str(wanted),)
    else:
        maps = tuple(sorted(event_types))
    if not maps:
        raise ConfigError(f"{where}: the program sends no events to count (no ring buffer or "
                          f"perf event array with an export type); build it with its event "
                          f"header")
    labels: list[Label] = []
    for label_name, source in _label_entries(entry, where) or []:
        for m in maps:
            try:
                fields = Decoder(btf, event_types[m]).fields
            except BtfError as exc:
                raise ConfigError(f"{where}: events of map '{m}' cannot be decoded: "
                                  f"{exc}") from exc
            if source not in fields:
                raise ConfigError(f"{where}: label '{label_name}': the events of map '{m}' "
                                  f"have no field '{source}' (fields: {', '.join(fields)})")
        labels.append(Label(label_name, "event", source))
    return CounterSpec(name, description, tuple(labels), maps, _ttl(entry, where))


def _map_of(entry: Mapping[str, Any], where: str,
            defs: Mapping[str, MapDef]) -> tuple[str, MapDef, int, int]:
    map_name = entry.get("map")
    if not isinstance(map_name, str) or not map_name:
        raise ConfigError(f"{where}: 'map' must name one of the program's maps")
    d = defs.get(map_name)
    if d is None:
        readable = [n for n, x in defs.items() if x.type in READABLE_MAPS]
        raise ConfigError(f"{where}: the program has no map '{map_name}' (hash and array "
                          f"maps: {', '.join(readable) or 'none'})")
    if d.type not in READABLE_MAPS:
        raise ConfigError(f"{where}: map '{map_name}' is of type {d.type}; only hash and "
                          f"array maps (types {sorted(READABLE_MAPS)}) can be read")
    if d.key_id is None or d.value_id is None:
        raise ConfigError(f"{where}: map '{map_name}' has no BTF key or value type; declare "
                          f"it with __type(key, ...) and __type(value, ...)")
    return map_name, d, d.key_id, d.value_id


def _map_labels(entry: Mapping[str, Any], where: str, btf: Btf, map_name: str, key_id: int,
                value_id: int, exclude: set[str]) -> tuple[Label, ...]:
    key_fields = field_names(btf, key_id)
    value_fields = field_names(btf, value_id)
    written = _label_entries(entry, where)
    if written is None:  # default: every key field
        if key_fields is None:
            return (Label("key", "key", None),)
        out = []
        for f in key_fields:
            if not LABEL_NAME.match(f) or f.startswith("__"):
                raise ConfigError(f"{where}: key field '{f}' is no label name; list the "
                                  f"labels with 'labels'")
            out.append(Label(f, "key", f))
        return tuple(out)
    labels: list[Label] = []
    for label_name, source in written:
        if key_fields is None and source == "key":
            labels.append(Label(label_name, "key", None))
        elif key_fields is not None and source in key_fields:
            labels.append(Label(label_name, "key", source))
        elif value_fields is not None and source in value_fields and source not in exclude:
            labels.append(Label(label_name, "value", source))
        else:
            known = list(key_fields) if key_fields is not None else ["key"]
            if value_fields is not None:
                known += [f for f in value_fields if f not in exclude]
            raise ConfigError(f"{where}: label '{label_name}': map '{map_name}' has no key or "
                              f"value field '{source}' (fields: {', '.join(known)})")
    return tuple(labels)


def _histogram(entry: Any, where: str, program: str, package: LoadedPackage, btf: Btf,
               defs: Mapping[str, MapDef]) -> HistogramSpec:
    name, description = _metric_head(entry, where, HISTOGRAM_KEYS, program, "histogram")
    map_name, _, key_id, value_id = _map_of(entry, where, defs)
    sample: dict[str, Any] = {}
    for m in package.meta["bpf_skel"].get("maps") or []:
        if isinstance(m, dict) and m.get("name") == map_name and isinstance(m.get("sample"), dict):
            sample = m["sample"]
    kind = entry.get("type", sample.get("type"))
    if kind not in HISTOGRAM_KINDS:
        raise ConfigError(f"{where}: map '{map_name}' is no histogram: its @sample type is "
                          f"{sample.get('type')!r}; set 'type' to log2_hist or linear_hist")
    base = _int_setting(entry, sample, "base", 0, where)
    step = _int_setting(entry, sample, "step", 1, where)
    if step < 1:
        raise ConfigError(f"{where}: 'step' must be at least 1, got {step}")
    slots = int_array_length(btf, value_id)
    slots_field: str | None = None
    if slots is None:
        member = member_type(btf, value_id, "slots")
        slots = int_array_length(btf, member) if member is not None else None
        slots_field = "slots"
    if not slots:
        raise ConfigError(f"{where}: the values of map '{map_name}' hold no histogram: they "
                          f"must be an integer array or have an integer array member 'slots'")
    sum_field = entry.get("sum")
    if sum_field is not None:
        member = member_type(btf, value_id, str(sum_field)) if slots_field else None
        if member is None or not is_number(btf, member):
            raise ConfigError(f"{where}: 'sum': the values of map '{map_name}' have no number "
                              f"member '{sum_field}'")
    elif slots_field is not None:
        member = member_type(btf, value_id, "sum")
        sum_field = "sum" if member is not None and is_number(btf, member) else None
    exclude = {"slots"} | ({str(sum_field)} if sum_field else set())
    if any(lbl == "le" for lbl, _ in _label_entries(entry, where) or []):
        raise ConfigError(f"{where}: 'le' is the bucket label of histograms; name it otherwise")
    labels = _map_labels(entry, where, btf, map_name, key_id, value_id, exclude)
    if any(label.name == "le" for label in labels):
        raise ConfigError(f"{where}: a key field is called 'le', the bucket label of "
                          f"histograms; list the labels with 'labels'")
    return HistogramSpec(name, description, map_name, labels, str(kind), base, step, slots,
                         slots_field, str(sum_field) if sum_field else None, key_id, value_id,
                         _ttl(entry, where))


def _int_setting(entry: Mapping[str, Any], sample: Mapping[str, Any], key: str, default: int,
                 where: str) -> int:
    value = entry.get(key, sample.get(key, default))
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
    return value


def _gauge(entry: Any, where: str, program: str, btf: Btf,
           defs: Mapping[str, MapDef]) -> GaugeSpec:
    name, description = _metric_head(entry, where, GAUGE_KEYS, program, "values")
    map_name, _, key_id, value_id = _map_of(entry, where, defs)
    value_field = entry.get("value")
    fields = field_names(btf, value_id)
    if value_field is None:
        if fields is None:
            if not is_number(btf, value_id):
                raise ConfigError(f"{where}: the values of map '{map_name}' are no numbers")
        else:
            numbers = [f for f in fields
                       if (t := member_type(btf, value_id, f)) is not None and is_number(btf, t)]
            if len(numbers) != 1:
                raise ConfigError(f"{where}: the values of map '{map_name}' are structs; name "
                                  f"the member to show with 'value' (numbers: "
                                  f"{', '.join(numbers) or 'none'})")
            value_field = numbers[0]
    else:
        member = member_type(btf, value_id, str(value_field))
        if member is None or not is_number(btf, member):
            raise ConfigError(f"{where}: 'value': the values of map '{map_name}' have no number "
                              f"member '{value_field}'")
    exclude = {str(value_field)} if value_field else set()
    labels = _map_labels(entry, where, btf, map_name, key_id, value_id, exclude)
    return GaugeSpec(name, description, map_name, labels,
                     str(value_field) if value_field else None, key_id, value_id,
                     _ttl(entry, where))
