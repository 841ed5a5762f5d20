"""A loaded program's maps as Python mappings, and ``@sample`` histograms as data."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import PackageError
from .values import encode, wrap

if TYPE_CHECKING:
    from ..btf import Btf
    from ..run import libbpf


class Map(MutableMapping[Any, Any]):
    """One BPF map of a loaded program: keys and values decoded and encoded by its BTF.

    ``m[key]``, ``m[key] = value``, ``del m[key]``, ``key in m``, iteration
    and ``len`` all go to the kernel each time (nothing is cached), so they
    see what the programs write and the programs see what is written here.
    Keys and values are ints, strings, lists and :class:`~ecc.api.values.Record`
    (structs) as the map's BTF declares them; a map without BTF types takes and
    gives ``bytes``. A per-CPU map's value is a list with one value per possible
    CPU; writing a single value stores it on every CPU. Array maps cannot
    delete (the kernel says EINVAL, raised as ``LibbpfError``).

    Thread safety: the kernel serialises each element operation, so a map may
    be read and written from any thread while the program runs, until the
    program is closed (then every operation raises ``LibbpfError``).
    """

    def __init__(self, bpf_map: libbpf.Map, btf: Btf | None, key_id: int | None,
                 value_id: int | None) -> None:
        self._map = bpf_map
        self._btf = btf
        self._key_id = key_id if btf is not None else None
        self._value_id = value_id if btf is not None else None
        self.name = bpf_map.name

    def _key(self, key: Any) -> bytes:
        if self._key_id is None or self._btf is None:
            return _raw(key, self.name, "key")
        return encode(self._btf, self._key_id, key)

    def _decode_key(self, data: bytes) -> Any:
        if self._key_id is None or self._btf is None:
            return data
        from ..run.decode import decode_value

        return wrap(decode_value(self._btf, self._key_id, data))

    def _decode_value(self, data: bytes) -> Any:
        if self._value_id is None or self._btf is None:
            return self._map.split_percpu(data) if self._map.is_percpu else data
        from ..run.decode import decode_value

        btf, type_id = self._btf, self._value_id
        if self._map.is_percpu:
            return [wrap(decode_value(btf, type_id, part))
                    for part in self._map.split_percpu(data)]
        return wrap(decode_value(btf, type_id, data))

    def _value(self, value: Any) -> bytes:
        if not self._map.is_percpu:
            if self._value_id is None or self._btf is None:
                return _raw(value, self.name, "value")
            return encode(self._btf, self._value_id, value)
        cpus = len(self._map.split_percpu(bytes(self._map.value_buffer_size)))
        values = list(value) if isinstance(value, list) else [value] * cpus
        if len(values) != cpus:
            raise ValueError(f"map {self.name}: {len(values)} per-CPU values for {cpus} CPUs")
        stride = (self._map.value_size + 7) & ~7
        out = bytearray(self._map.value_buffer_size)
        for cpu, item in enumerate(values):
            data = (_raw(item, self.name, "value") if self._value_id is None or self._btf is None
                    else encode(self._btf, self._value_id, item))
            out[cpu * stride: cpu * stride + len(data)] = data
        return bytes(out)

    def __getitem__(self, key: Any) -> Any:
        data = self._map.lookup(self._key(key))
        if data is None:
            raise KeyError(key)
        return self._decode_value(data)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._map.update(self._key(key), self._value(value))

    def __delitem__(self, key: Any) -> None:
        if not self._map.delete(self._key(key)):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            return self._map.lookup(self._key(key)) is not None
        except (TypeError, ValueError):
            return False

    def __iter__(self) -> Iterator[Any]:
        # A snapshot of the keys: the kernel's order breaks if the map changes under it.
        # (libbpf.Map has keys() and no __iter__.)
        return iter([self._decode_key(k) for k in self._map.keys()])  # noqa: SIM118

    def __len__(self) -> int:
        return sum(1 for _ in self._map.keys())  # noqa: SIM118

    def clear(self) -> None:
        """Empty the map: delete every key; an array map (whose elements cannot be
        deleted) has each value set to zeros, which is what it starts with."""
        from ..run.loader import _clear as clear_map  # ecc run's emptying of sampled maps

        clear_map(self._map)

    def items_raw(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) as the kernel's bytes, for a caller that decodes them itself."""
        return self._map.items()

    def __repr__(self) -> str:
        return f"<ecc.Map {self.name!r}>"


def _raw(data: Any, name: str, what: str) -> bytes:
    # bytes(5) is five zero bytes: an int would silently become another key.
    if isinstance(data, int):
        raise TypeError(f"map {name} has no BTF type for its {what}s: give the {what} as "
                        f"bytes (int.to_bytes or struct.pack), not {data!r}")
    return bytes(data)


@dataclass(frozen=True)
class Histogram:
    """One histogram of a ``@sample`` map (``log2_hist`` or ``linear_hist``) as data.

    ``buckets[i]`` is the inclusive (low, high) range that ``counts[i]``
    counts, in ``unit``; every slot of the map is there, empty ones too.
    ``key`` is the map key it was read under (None when keys were summed);
    ``fields`` the value's other members (a ``comm``, say).
    """

    map: str
    kind: str
    unit: str
    buckets: list[tuple[int, int]]
    counts: list[int]
    key: Any = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts)


HIST_KINDS = ("log2_hist", "linear_hist")


def histograms(m: Map, sample: Mapping[str, Any]) -> dict[Any, Histogram]:
    """Every key's histogram in map ``m``, whose ``@sample`` annotation is ``sample``."""
    kind = sample.get("type")
    if kind not in HIST_KINDS:
        raise PackageError(f"map {m.name}: its @sample type is {kind!r}, not one of "
                           f"{', '.join(HIST_KINDS)}: read it as prog.maps[{m.name!r}]")
    unit = str(sample.get("unit", "value"))
    out: dict[Any, Histogram] = {}
    for key, value in m.items():
        slots, rest = _slots(value, m.name)
        out[key] = Histogram(m.name, kind, unit, _buckets(kind, len(slots), sample),
                             slots, key, rest)
    return out


def merged(name: str, kind: str, unit: str, hists: list[Histogram],
           sample: Mapping[str, Any]) -> Histogram:
    """The sum of ``hists`` slot by slot (an empty histogram when there are none)."""
    width = max((len(h.counts) for h in hists), default=0)
    counts = [sum(h.counts[i] for h in hists if i < len(h.counts)) for i in range(width)]
    return Histogram(name, kind, unit, _buckets(kind, width, sample), counts)


def _slots(value: Any, name: str) -> tuple[list[int], dict[str, Any]]:
    if isinstance(value, Mapping):
        slots, rest = value.get("slots"), {k: v for k, v in value.items() if k != "slots"}
    else:
        slots, rest = value, {}
    if not isinstance(slots, list) or not all(isinstance(s, int) for s in slots):
        raise PackageError(f"map {name}: its values hold no integer array (a 'slots' member, "
                           "or the value itself) to read as a histogram")
    return list(slots), rest


def _buckets(kind: str, n: int, sample: Mapping[str, Any]) -> list[tuple[int, int]]:
    if kind == "log2_hist":
        # libbpf-tools' print_log2_hist: slot 0 is 0..1, slot i is 2^i .. 2^(i+1)-1.
        return [(0, 1) if i == 0 else (1 << i, (1 << (i + 1)) - 1) for i in range(n)]
    base, step = _int(sample, "base", 0), _int(sample, "step", 1)
    return [(base + i * step, base + (i + 1) * step - 1) for i in range(n)]


def _int(sample: Mapping[str, Any], key: str, default: int) -> int:
    value = sample.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default
