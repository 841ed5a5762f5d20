"""What a typed skeleton (``ecc build --py-skel``, ecc/compiler/pyskel.py) runs on.

A skeleton module declares its types (frozen dataclasses, ``IntEnum``s) and a
subclass of :class:`Skeleton`; the conversions between those classes and the
values ``ecc`` decodes are derived here from the annotations, once per class,
so the generated module stays declarations only.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import types
import typing
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from typing import Any, ClassVar, Generic, Self, TypeVar

from .maps import Histogram, Map
from .program import Program, load
from .values import Maker

K = TypeVar("K")
V = TypeVar("V")
E = TypeVar("E")
M = TypeVar("M")

Convert = Callable[[Any], Any]
_PLAIN = (int, bool, float, str, object, Any)


def from_value(tp: Any) -> Convert | None:
    """How a decoded value (a Record, list, enumerator name...) becomes a ``tp``;
    None when it already is one."""
    if tp in _PLAIN:
        return None
    if tp is bytes:
        return lambda v: v if isinstance(v, bytes) else bytes(v)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, list):
        inner = from_value(args[0])
        if inner is None:
            return origin  # type: ignore[no-any-return]
        return lambda v: origin(inner(x) for x in v)
    if origin in (typing.Union, types.UnionType):
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.IntEnum)]
        return _enum(enums[0]) if enums else None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return record_maker(tp)
    return None


def _enum(cls: type[enum.IntEnum]) -> Convert:
    names = dict(cls.__members__)
    names.update({name[:-1]: m for name, m in cls.__members__.items() if name.endswith("_")})

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            return names.get(value, value)
        try:
            return cls(value)
        except ValueError:
            return value  # no enumerator has it (a set of flags): the number stays

    return convert


def _fields(cls: type) -> list[tuple[str, str, Convert | None]]:
    """(Python name, C name, conversion) per field of a skeleton dataclass."""
    hints = typing.get_type_hints(cls)
    renamed: Mapping[str, str] = getattr(cls, "_ecc_names", {})
    return [(f.name, renamed.get(f.name, f.name), from_value(hints[f.name]))
            for f in dataclasses.fields(cls)]


def record_maker(cls: type, keys: tuple[str, ...] | None = None) -> Convert:
    """Mapping of C field names -> ``cls``; fields the mapping lacks (a short event)
    keep their defaults. With ``keys`` (what the decoder always gives) equal to
    the fields, values that need no conversion go straight in."""
    fields = _fields(cls)
    if keys is not None and all(c is None and py == cn for py, cn, c in fields) and \
            tuple(cn for _, cn, _ in fields) == keys:
        return lambda values: cls(**values)

    def make(values: Mapping[str, Any]) -> Any:
        return cls(**{py: value if c is None else c(value) for py, cn, c in fields
                      if (value := values.get(cn, _MISSING)) is not _MISSING})

    return make


_MISSING = object()


def to_value(tp: Any) -> Convert | None:
    """How a ``tp`` becomes what :func:`ecc.api.values.encode` takes; None: as it is."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, list):
        inner = to_value(args[0])
        return None if inner is None else (lambda v: [inner(x) for x in v])
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        renamed: Mapping[str, str] = getattr(tp, "_ecc_names", {})
        fields = [(f.name, renamed.get(f.name, f.name), to_value(hints[f.name]))
                  for f in dataclasses.fields(tp)]

        def to_dict(obj: Any) -> Any:
            if isinstance(obj, Mapping):
                return obj
            return {cn: getattr(obj, py) if c is None else c(getattr(obj, py))
                    for py, cn, c in fields}

        return to_dict
    return None


def _or_same(convert: Convert | None) -> Convert:
    return convert if convert is not None else (lambda v: v)


class TypedMap(MutableMapping[K, V]):
    """An :class:`ecc.Map` whose keys and values are a skeleton's types.

    ``m[key]``, ``m[key] = value``, ``del``, ``in``, iteration, ``len`` and
    ``clear()`` go to the kernel each time, as :class:`ecc.Map`'s do.
    """

    def __init__(self, bpf_map: Map, key: Any, value: Any) -> None:
        self.map = bpf_map
        self._key_in, self._key_out = _or_same(to_value(key)), _or_same(from_value(key))
        self._value_in, self._value_out = _or_same(to_value(value)), _or_same(from_value(value))

    def __getitem__(self, key: K) -> V:
        value: V = self._value_out(self.map[self._key_in(key)])
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self.map[self._key_in(key)] = self._value_in(value)

    def __delitem__(self, key: K) -> None:
        del self.map[self._key_in(key)]

    def __contains__(self, key: object) -> bool:
        return self._key_in(key) in self.map

    def __iter__(self) -> Iterator[K]:
        return iter([self._key_out(k) for k in self.map])

    def __len__(self) -> int:
        return len(self.map)

    def clear(self) -> None:
        self.map.clear()

    def __repr__(self) -> str:
        return f"<ecc.TypedMap {self.map.name!r}>"


class TypedVariables:
    """The base of a skeleton's variables class: the generated subclass has one
    typed property per global variable that is an option (ints, bools, floats,
    enums, ``char`` arrays), live through :attr:`ecc.Program.variables`; those of
    frozen sections (``.rodata``) have no setter, so writing one is a type error."""

    def __init__(self, program: Program) -> None:
        self._ecc_variables = program.variables
        self._ecc_converts: dict[str, Convert | None] = {}

    def _ecc_get(self, name: str, tp: Any) -> Any:
        value = self._ecc_variables[name]
        if name not in self._ecc_converts:
            self._ecc_converts[name] = from_value(tp)
        convert = self._ecc_converts[name]
        return value if convert is None else convert(value)

    def _ecc_set(self, name: str, value: Any) -> None:
        self._ecc_variables[name] = value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {dict(self._ecc_variables)!r}>"


class Skeleton(Generic[E, M]):
    """The base of a skeleton's program class: ``E`` its event dataclasses, ``M`` its maps.

    The subclass (generated) gives ``PACKAGE`` (the package, base64), ``EVENT_TYPES``
    (export struct name -> dataclass), ``MAPS``, ``VARIABLES`` and a typed ``load()``. Everything
    else is the :class:`ecc.Program` in ``program``; threads as there.
    """

    PACKAGE: ClassVar[str] = ""
    EVENT_TYPES: ClassVar[dict[str, type]] = {}
    MAPS: ClassVar[type] = object
    VARIABLES: ClassVar[type[TypedVariables]] = TypedVariables
    #: The global variables, typed (the subclass narrows this to its own class).
    variables: TypedVariables

    def __init__(self, program: Program) -> None:
        self.program = program
        self._makers: dict[str, Maker] = {}
        try:
            self.maps: M = self.MAPS(program)
            self.variables = self.VARIABLES(program)
        except BaseException:
            program.close()
            raise

    @classmethod
    def _open(cls, values: Mapping[str, Any], *, btf_custom_path: str | None = None) -> Self:
        package = base64.b64decode(cls.PACKAGE)
        return cls(load(package, options=values, btf_custom_path=btf_custom_path))

    def attach(self, *, skip_unattachable: bool = False, ifindex: int | None = None,
               iface: str | None = None, replace: bool = False, cgroup: str | None = None,
               uprobe_binary: str | None = None, uprobe_function: str | None = None,
               uprobe_pid: int = -1) -> list[str]:
        """:meth:`ecc.Program.attach`: the programs attached, by name."""
        return self.program.attach(
            skip_unattachable=skip_unattachable, ifindex=ifindex, iface=iface, replace=replace,
            cgroup=cgroup, uprobe_binary=uprobe_binary, uprobe_function=uprobe_function,
            uprobe_pid=uprobe_pid)

    def detach(self) -> None:
        self.program.detach()

    def events(self, timeout: float | None = None) -> Iterator[E]:
        """The records the programs send, as the skeleton's dataclasses
        (:meth:`ecc.Program.events`' timing)."""
        return self.program._decoded(timeout, self._makers.get, self._maker)

    async def aevents(self, timeout: float | None = None) -> AsyncIterator[E]:
        """``events()`` for asyncio (:meth:`ecc.Program.aevents`)."""
        async for source, data in self.program.arecords(timeout):
            # The skeleton's dataclass (Maker is typed for ecc.Event, the default).
            make: Callable[[bytes], Any] = (self._makers.get(source) or self._maker(source)).make
            yield make(data)

    def _maker(self, source: str) -> Maker:
        made = self._makers[source] = Maker(self._converter(source), None, 0)
        return made

    def _converter(self, source: str) -> Callable[[bytes], Any]:
        from ..btf import skip_mods_and_typedefs
        from ..errors import PackageError
        from ..run.decode import Decoder
        from ..run.loader import event_type_id

        package = self.program.package
        metas = {m.get("name"): m for m in package.meta["bpf_skel"].get("maps") or []}
        type_id = event_type_id(package.meta, metas.get(source, {}))
        btf = package.btf
        cls = None if btf is None or type_id is None else self.EVENT_TYPES.get(
            btf[skip_mods_and_typedefs(btf, type_id)].name)
        if cls is None or btf is None or type_id is None:
            convert = self.program._maker(source).make  # no dataclass for it: an ecc.Event
        else:
            decoder = Decoder(btf, type_id)
            make, decode = record_maker(cls, decoder.fields), decoder.decode
            whole, size = decoder.whole, decoder.size

            def convert(data: bytes) -> Any:
                if len(data) >= size:
                    return make(whole(data, 0))
                try:
                    return make(decode(data))
                except PackageError:
                    return make({})  # shorter than any member

        return convert

    def histogram(self, map_name: str, key: Any = None) -> Histogram:
        return self.program.histogram(map_name, key)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.program.options)

    @property
    def notes(self) -> list[str]:
        return self.program.notes

    def close(self) -> None:
        self.program.close()

    @property
    def closed(self) -> bool:
        return self.program.closed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.program!r}>"
