"""``ecc.load``: a package loaded into the kernel, driven from Python.

Built on ``ecc.run.loader.Runner`` (the same load and attach rules as ``ecc
run``), with the ring and perf buffer records handed to Python instead of
printed.
"""

from __future__ import annotations

import collections
import io
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

from ..errors import AttachError, EccError, LoadError, PackageError
from .maps import Histogram, Map, histograms, merged
from .values import Event, Maker, Record, event_maker, holds_structs
from .variables import Variables

if TYPE_CHECKING:
    from ..package.source import LoadedPackage
    from ..run.loader import Runner
    from ..run.options import OptionSpec

# How long one wait for events lasts: the longest close() from another thread
# waits for an events() loop to let go of the buffers.
POLL_MS = 100
_RINGBUF, _PERF_EVENT_ARRAY = 27, 4

PackageSource = str | os.PathLike[str] | bytes | Mapping[str, Any]
#: What ``Program.iterate`` returns: records, text, or bytes no struct decodes.
IterOutput = list[Event] | str | bytes


class OptionInfo(NamedTuple):
    """A program option (a global variable of a data section): its C type, its
    default (the annotation's, else the compiled-in value) and its help text."""

    type: str
    default: Any
    help: str


def open_package(source: PackageSource | LoadedPackage, *, plain_http: bool = False,
                 ) -> LoadedPackage:
    """A checked package from a path, an http(s) URL, an OCI reference, the bytes
    of a package file, or a package document (a dict as ``package.json`` holds)."""
    from ..package.source import LoadedPackage, read_package_data

    if isinstance(source, LoadedPackage):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return read_package_data("<bytes>", bytes(source))
    if isinstance(source, Mapping):
        try:
            data = json.dumps(source).encode()
        except (TypeError, ValueError) as exc:
            raise PackageError(f"<dict>: not a package document ({exc})") from exc
        return read_package_data("<dict>", data)
    from ..run.fetch import open_package as fetch

    return fetch(os.fspath(source), plain_http=plain_http)


def load(source: PackageSource | LoadedPackage, *, options: Mapping[str, Any] | None = None,
         btf_custom_path: str | None = None, plain_http: bool = False,
         **values: Any) -> Program:
    """Open a package, give its options their values, and load it into the kernel.

    ``values`` (and ``options``, for names that are no Python identifier) set
    the program's options by variable or long option name, as
    ``ecc run PACKAGE -- --NAME VALUE`` would: ints, bools, floats, strings.
    Nothing is attached yet: call :meth:`Program.attach`, after writing any
    map the programs must find filled. Raises ``PackageError``/``FetchError``
    for the package, ``TypeError`` for an option it does not have, ``EccError``
    for a value that does not fit, ``LoadError`` when the kernel refuses it.
    """
    package = open_package(source, plain_http=plain_http)
    return Program(package, {**(options or {}), **values}, btf_custom_path=btf_custom_path)


class Program:
    """A loaded package: its options, maps, events and histograms; a context manager.

    Thread safety: one thread drives a Program (attach, events, histogram);
    its maps may be read and written from other threads while it runs, and
    ``close()`` may be called from any thread: it stops an ``events()`` loop
    (within ``POLL_MS``) and waits for it to let go before freeing anything.
    """

    def __init__(self, package: LoadedPackage, values: Mapping[str, Any], *,
                 btf_custom_path: str | None = None) -> None:
        from ..run import libbpf
        from ..run.loader import Runner, RunOptions
        from ..run.sections import section_overrides

        self.package = package
        self._specs = _option_specs(package)
        self._lock = threading.Lock()
        self._closed = False
        #: Each buffer map's records waiting to be read, by map (in the object's order).
        self._queues: dict[str, collections.deque[bytes]] = {}
        self._makers: dict[str, Maker] = {}
        self.lost = 0  #: perf buffer records the kernel dropped (the reader was too slow)
        self.notes: list[str] = []  #: what ecc run would print on stderr: skips, waits
        overrides = section_overrides(package, _by_long(self._specs, values), self._specs)
        opts = RunOptions(section_values=overrides, strict=True,
                          btf_custom_path=btf_custom_path,
                          event_sink=self._sink, lost_sink=self._lost)
        libbpf.bump_memlock_rlimit()
        self._runner: Runner = Runner(package, opts, io.StringIO(), self.notes.append)
        try:
            self._runner.load()
        except EccError as exc:
            log = libbpf.captured_log() or (exc.details or "")
            raise LoadError(str(exc), exc.details, log) from exc
        try:
            # Before attaching: a perf buffer drops what arrives while nobody reads it.
            self._runner.open_outputs()
            self.maps: Mapping[str, Map] = self._make_maps()
            #: The global variables, live: ``prog.variables["tag"] = 7`` (skel->bss->tag).
            self.variables = Variables(self.name, self._specs, package.btf, self._section_map,
                                       _kconfig_names(package))
        except BaseException:
            self._runner.close()
            raise

    # -- what the package offers ----------------------------------------------------

    @property
    def name(self) -> str:
        from ..run.loader import program_name

        return program_name(self.package)

    @property
    def options(self) -> dict[str, OptionInfo]:
        """The options the package's data sections offer: variable name -> OptionInfo."""
        return {spec.var: OptionInfo(spec.type_name, spec.default, spec.help)
                for spec in self._specs}

    def _make_maps(self) -> dict[str, Map]:
        from ..btf.mapdefs import map_defs

        obj = self._runner.obj
        assert obj is not None
        btf = self.package.btf
        defs = map_defs(btf) if btf is not None else {}
        found = {}
        for m in obj.maps():
            if m.is_internal() or m.type in (_RINGBUF, _PERF_EVENT_ARRAY):
                continue  # data sections are options; buffers are events()
            d = defs.get(m.name)
            found[m.name] = Map(m, btf, d.key_id if d else None, d.value_id if d else None)
        return found

    def _section_map(self, section: str) -> Any:
        from ..meta.names import internal_map_lookup_name

        obj = self._runner.obj
        assert obj is not None
        return (obj.find_map(internal_map_lookup_name(self.package.obj_name, section))
                or obj.find_map(section))

    # -- attach -----------------------------------------------------------------------

    @property
    def attached(self) -> list[str]:
        """The names of the programs attached now."""
        return [a.name for a in self._runner.attached]

    def attach(self, *, skip_unattachable: bool = False, ifindex: int | None = None,
               iface: str | None = None, replace: bool = False, cgroup: str | None = None,
               uprobe_binary: str | None = None, uprobe_function: str | None = None,
               uprobe_pid: int = -1) -> list[str]:
        """Attach every program, by ``ecc run``'s rules; the names attached.

        The targets are ``ecc run``'s options: every XDP/TC program goes to
        ``ifindex`` (or the interface named ``iface``) instead of its annotation
        (``replace`` takes a hook another program holds); cgroup programs attach
        to the cgroup v2 folder ``cgroup``; a uprobe whose section names no
        target to ``uprobe_function`` in ``uprobe_binary`` (``uprobe_pid``: -1 all).

        A program the kernel cannot attach (a kernel limit, a busy hook) or one
        that needs a target nobody gave raises :class:`AttachError`, with
        nothing left attached; with ``skip_unattachable`` those are left out
        (the reasons in ``notes``) and only having none attached raises.
        """
        from ..run.attach import interface_index

        with self._lock:
            self._check_open()
            if self._runner.attached:
                raise AttachError(f"{self.name}: already attached")
            opts = self._runner.opts
            try:
                opts.ifindex = interface_index(ifindex, iface)
            except EccError as exc:
                raise AttachError(str(exc)) from None
            opts.replace, opts.cgroup, opts.uprobe_pid = replace, cgroup, uprobe_pid
            opts.uprobe_binary, opts.uprobe_function = uprobe_binary, uprobe_function
            opts.strict = not skip_unattachable
            self._runner.waiting.clear()
            try:
                self._runner.attach_all()
            except EccError as exc:
                self._detach()
                raise AttachError(str(exc), exc.details) from exc
            if not self._runner.attached and not self._runner.waiting:
                raise AttachError(f"{self.package.origin}: no program could be attached"
                                  + (f" ({'; '.join(self.notes)})" if self.notes else ""))
            return self.attached

    def detach(self) -> None:
        """Detach every program; maps and buffers stay, ``attach()`` may be called again."""
        with self._lock:
            self._detach()

    def _detach(self) -> None:
        for att in self._runner.attached:
            for link in att.links:
                link.destroy()
        self._runner.attached.clear()

    # -- events -------------------------------------------------------------------------

    def _sink(self, map_name: str) -> Callable[[bytes], None]:
        # A queue per map, fed by its append: the buffer's callback calls C, no frame.
        queue = self._queues[map_name] = collections.deque()
        return queue.append

    def _lost(self, map_name: str, cpu: int, count: int) -> None:
        self.lost += count

    def _waiting(self) -> list[tuple[str, collections.deque[bytes]]]:
        return [(source, queue) for source, queue in self._queues.items() if queue]

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """The records the programs send, decoded by the package's export types.

        Waits for records and yields them as they come; ends after ``timeout``
        seconds in all (None: never), or once the program is closed. Breaking
        out of the loop loses nothing: the next ``events()`` goes on from there.
        One buffer map's records come in the order the kernel wrote them; of
        several maps, what one wait brought comes map by map.
        """
        return self._decoded(timeout, self._makers.get, self._maker)

    def _decoded(self, timeout: float | None, known: Callable[[str], Maker | None],
                 make_for: Callable[[str], Maker]) -> Iterator[Any]:
        """``events()`` with the records of each map made by ``known(map)`` or else
        ``make_for(map)`` (a typed skeleton's dataclasses go through here too)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            waiting = self._waiting()
            if not waiting:
                wait = _wait_ms(deadline)
                if wait is None:
                    return
                self._poll(wait)
                continue
            for source, queue in waiting:
                make, read, size = known(source) or make_for(source)
                if read is None:
                    size = sys.maxsize
                popleft = queue.popleft
                try:  # _drain's loop, inlined and decoding: the hot path
                    while queue:
                        data = popleft()
                        if len(data) >= size:  # Maker.make's usual case inline: a call less
                            yield read(data, 0)  # type: ignore[misc]  # (size says it is set)
                        else:
                            yield make(data)
                except IndexError:  # close() from another thread emptied the queue
                    return

    async def aevents(self, timeout: float | None = None) -> AsyncIterator[Event]:
        """``events()`` for asyncio: ``async for event in prog.aevents(): ...``.

        The waits for the kernel run in a worker thread (``asyncio.to_thread``),
        so the event loop goes on serving other tasks meanwhile; the records
        are decoded and yielded on the loop's own thread.
        """
        async for source, data in self.arecords(timeout):
            yield (self._makers.get(source) or self._maker(source)).make(data)

    def records(self, timeout: float | None = None) -> Iterator[tuple[str, bytes]]:
        """Like ``events()``, undecoded: (buffer map name, the record's bytes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            waiting = self._waiting()
            if waiting:
                yield from self._drain(waiting)
                continue
            wait = _wait_ms(deadline)
            if wait is None:
                return
            self._poll(wait)

    async def arecords(self, timeout: float | None = None,
                       ) -> AsyncIterator[tuple[str, bytes]]:
        """``records()`` for asyncio, waiting as ``aevents()`` does."""
        import asyncio

        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            waiting = self._waiting()
            if waiting:
                for record in self._drain(waiting):
                    yield record
                continue
            wait = _wait_ms(deadline)
            if wait is None:
                return
            await asyncio.to_thread(self._poll, wait)

    @staticmethod
    def _drain(waiting: list[tuple[str, collections.deque[bytes]]],
               ) -> Iterator[tuple[str, bytes]]:
        """The records of the ``waiting`` queues, map by map; each taken off its queue
        before it is yielded, so a loop left early leaves the rest for the next one."""
        for source, queue in waiting:
            popleft = queue.popleft
            try:
                while queue:
                    yield source, popleft()
            except IndexError:  # close() from another thread emptied the queue
                return

    def _poll(self, wait_ms: int) -> None:
        with self._lock:
            if not self.closed:  # closed by another thread while this one waited
                self._runner.poll_buffers(wait_ms)

    def _maker(self, source: str) -> Maker:
        from ..run.decode import Decoder
        from ..run.loader import event_type_id

        btf = self.package.btf
        metas = {m.get("name"): m for m in self.package.meta["bpf_skel"].get("maps") or []}
        type_id = event_type_id(self.package.meta, metas.get(source, {}))
        if btf is None or type_id is None:
            make = event_maker(source)
        else:
            make = event_maker(source, Decoder(btf, type_id), holds_structs(btf, type_id))
        self._makers[source] = make
        return make

    # -- iterators -----------------------------------------------------------------------

    @overload
    def iterate(self, program: str, *, raw: Literal[False] = False) -> IterOutput: ...

    @overload
    def iterate(self, program: str, *, raw: Literal[True]) -> bytes: ...

    @overload
    def iterate(self, program: str, *, raw: bool) -> IterOutput | bytes: ...

    def iterate(self, program: str, *, raw: bool = False) -> IterOutput | bytes:
        """Run the iterator program ``program`` (``SEC("iter/...")``) once and read
        what it wrote to the end, as ``ecc run`` reads it: a list of
        :class:`~ecc.api.values.Event` records (``bpf_seq_write`` of the struct
        the program names with ``@export``, else of an export type whose size
        divides the output), ``str`` for ``BPF_SEQ_PRINTF`` text, and ``bytes``
        when neither fits (the reason in ``notes``). ``raw=True``: the bytes as
        written, undecoded. Needs no ``attach()``; each call is a fresh pass
        over the kernel's objects."""
        from ..run import libbpf

        with self._lock:
            self._check_open()
            assert self._runner.obj is not None
            found = self._runner.obj.find_program(program)
            if found is None or not found.section_name.startswith("iter"):
                raise KeyError(f"{self.name} has no iterator program {program!r}")
            try:
                link = found.attach_iter()
            except EccError as exc:
                raise AttachError(str(exc), exc.details) from exc
            try:
                data = libbpf.read_iter(link)
            finally:
                link.destroy()
        return data if raw else self._iter_output(program, data)

    def _iter_output(self, program: str, data: bytes) -> IterOutput:
        from ..run.hexdump import decode_text
        from ..run.iterators import iter_reading_of

        how, decoder = iter_reading_of(self.package, program, data, self.notes.append)
        if how == "text":
            return decode_text(data)
        if decoder is None:
            self.notes.append(f"ecc: iterator {program}: {len(data)} bytes of binary output "
                              "and no struct to decode them with (name one with @export)")
            return data
        # nested=True: wrap whatever holds structs (the type id is not at hand; not hot).
        make = event_maker(program, decoder, True).make
        size = decoder.size
        # A tail shorter than one record holds the members that arrived, as events do.
        return [make(data[off:off + size]) for off in range(0, len(data), size)]

    # -- histograms ----------------------------------------------------------------------

    def histograms(self, map_name: str) -> dict[Any, Histogram]:
        """Each key's histogram in the ``@sample`` map ``map_name`` (log2 or linear)."""
        return histograms(self._map(map_name), self._sample(map_name))

    def histogram(self, map_name: str, key: Any = None) -> Histogram:
        """The histogram of ``map_name`` under ``key``; without a key, every key's
        summed slot by slot (what a map with one key, the usual case, holds)."""
        sample = self._sample(map_name)
        found = histograms(self._map(map_name), sample)
        if key is not None:
            if isinstance(key, Mapping) and not isinstance(key, Record):
                key = Record(key)  # a struct key given as a dict, as maps[...] takes it
            if key not in found:
                raise KeyError(key)
            return found[key]
        return merged(map_name, str(sample.get("type")), str(sample.get("unit", "value")),
                      list(found.values()), sample)

    def _map(self, name: str) -> Map:
        self._check_open()
        try:
            return self.maps[name]
        except KeyError:
            raise KeyError(f"{self.name} has no map {name!r}; maps: "
                           f"{', '.join(self.maps)}") from None

    def _sample(self, name: str) -> Mapping[str, Any]:
        for meta in self.package.meta["bpf_skel"].get("maps") or []:
            if meta.get("name") == name and isinstance(meta.get("sample"), dict):
                return dict(meta["sample"])
        raise PackageError(f"map {name} has no @sample annotation: read it as "
                           f"prog.maps[{name!r}]")

    # -- the end -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise EccError(f"{self.name}: the program is closed")

    def close(self) -> None:
        """Detach everything and free the object, buffers and maps; safe to call twice,
        and from another thread than the one reading ``events()``."""
        self._closed = True  # seen by an events() loop between two polls
        with self._lock:
            self.variables.close()  # unmapped first: a mapping would keep the maps alive
            self._runner.close()
        for queue in self._queues.values():
            queue.clear()

    @property
    def closed(self) -> bool:
        # A property, not the field: mypy would take the field as still false
        # after the loop's own check, and another thread may have set it since.
        return self._closed

    def __enter__(self) -> Program:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.attached)} attached"
        return f"<ecc.Program {self.name!r} {state}>"


_NO_MAKER = Maker(lambda data: Event({}, data, ""), None, 0)


def _wait_ms(deadline: float | None) -> int | None:
    """How long the next wait for records may last; None once the deadline has passed."""
    if deadline is None:
        return POLL_MS
    left = deadline - time.monotonic()
    return None if left <= 0 else min(POLL_MS, max(1, int(left * 1000)))


def _option_specs(package: LoadedPackage) -> list[OptionSpec]:
    from ..run.options import option_specs

    if package.btf is None:
        return []
    return option_specs(package.meta, package.elf, package.btf, package.elf.data_sections)


def _kconfig_names(package: LoadedPackage) -> list[str]:
    sections = package.meta["bpf_skel"].get("data_sections") or []
    return [str(v.get("name")) for sec in sections if isinstance(sec, Mapping)
            and sec.get("name") == ".kconfig" for v in sec.get("variables") or []
            if isinstance(v, Mapping)]


def _by_long(specs: list[OptionSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` by variable or long option name -> by long option name."""
    longs = {spec.long: spec.long for spec in specs} | {spec.var: spec.long for spec in specs}
    out = {}
    for name, value in values.items():
        if name not in longs:
            known = ", ".join(spec.var for spec in specs) or "none"
            raise TypeError(f"the package has no option {name!r}; its options: {known}")
        out[longs[name]] = value
    return out
