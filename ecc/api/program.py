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
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import AttachError, EccError, LoadError, PackageError
from .maps import Histogram, Map, histograms, merged
from .values import Event

if TYPE_CHECKING:
    from ..package.source import LoadedPackage
    from ..run.decode import Decoder
    from ..run.loader import Runner
    from ..run.options import OptionSpec

# How long one wait for events lasts: the longest close() from another thread
# waits for an events() loop to let go of the buffers.
POLL_MS = 100
_RINGBUF, _PERF_EVENT_ARRAY = 27, 4

PackageSource = str | os.PathLike[str] | bytes | Mapping[str, Any]


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
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self._decoders: dict[str, Decoder | None] = {}
        self.lost = 0  #: perf buffer records the kernel dropped (the reader was too slow)
        self.notes: list[str] = []  #: what ecc run would print on stderr: skips, waits
        overrides = section_overrides(package, _by_long(self._specs, values), self._specs)
        opts = RunOptions(section_values=overrides, strict=True,
                          btf_custom_path=btf_custom_path,
                          event_sink=self._receive, lost_sink=self._lost)
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

    # -- attach -----------------------------------------------------------------------

    @property
    def attached(self) -> list[str]:
        """The names of the programs attached now."""
        return [a.name for a in self._runner.attached]

    def attach(self, *, skip_unattachable: bool = False) -> list[str]:
        """Attach every program, by ``ecc run``'s rules; the names attached.

        A program the kernel cannot attach (a kernel limit, a busy hook) or one
        that needs a target nobody gave raises :class:`AttachError`, with
        nothing left attached; with ``skip_unattachable`` those are left out
        (the reasons in ``notes``) and only having none attached raises.
        """
        with self._lock:
            self._check_open()
            if self._runner.attached:
                raise AttachError(f"{self.name}: already attached")
            self._runner.opts.strict = not skip_unattachable
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

    def _receive(self, map_name: str, data: bytes) -> None:
        self._queue.append((map_name, data))

    def _lost(self, map_name: str, cpu: int, count: int) -> None:
        self.lost += count

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """The records the programs send, decoded by the package's export types.

        Waits for records and yields them as they come; ends after ``timeout``
        seconds in all (None: never), or once the program is closed. Breaking
        out of the loop loses nothing: the next ``events()`` goes on from there.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            if self._queue:
                source, data = self._queue.popleft()
                yield self._event(source, data)
                continue
            wait = POLL_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = min(wait, max(1, int(left * 1000)))
            with self._lock:
                if self.closed:  # closed by another thread while this one waited
                    return
                self._runner.poll_buffers(wait)

    def _event(self, source: str, data: bytes) -> Event:
        if source not in self._decoders:
            self._decoders[source] = self._decoder(source)
        decoder = self._decoders[source]
        values: dict[str, Any] = {}
        if decoder is not None:
            try:
                values = decoder.decode(data)
            except PackageError:
                values = {}  # shorter than any member: only .raw tells what came
        return Event(values, data, source)

    def _decoder(self, source: str) -> Decoder | None:
        from ..run.decode import Decoder
        from ..run.loader import event_type_id

        btf = self.package.btf
        metas = {m.get("name"): m for m in self.package.meta["bpf_skel"].get("maps") or []}
        type_id = event_type_id(self.package.meta, metas.get(source, {}))
        if btf is None or type_id is None:
            return None
        return Decoder(btf, type_id)

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
            self._runner.close()
        self._queue.clear()

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


def _option_specs(package: LoadedPackage) -> list[OptionSpec]:
    from ..run.options import option_specs

    if package.btf is None:
        return []
    return option_specs(package.meta, package.elf, package.btf, package.elf.data_sections)


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
