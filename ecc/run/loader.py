"""Open a package with libbpf, configure it, load it, attach it, and report what it sends.

Attaching follows libbpf's section rules, plus the eunomia annotations of
spec section 5 for what a section name cannot say (XDP and TC interfaces,
perf_event frequency). A program this kernel cannot attach is reported in one
line and left out; the others keep running, unless ``strict``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..errors import EccError, KernelLimitError, PackageError
from ..package.source import LoadedPackage
from . import libbpf

MAP_TYPE_PERF_EVENT_ARRAY = 4
MAP_TYPE_RINGBUF = 27
# Attach-point names of BPF_TC_* in tchook annotations.
TC_ATTACH_POINTS = {"BPF_TC_INGRESS": libbpf.BPF_TC_INGRESS, "BPF_TC_EGRESS": libbpf.BPF_TC_EGRESS}
DEFAULT_PERF_FREQ = 49
POLL_MS = 100


@dataclass
class RunOptions:
    json: bool = False
    duration: float | None = None
    strict: bool = False
    btf_custom_path: str | None = None
    section_values: dict[str, bytes] = field(default_factory=dict)  # section -> initial bytes
    perf_freq: int = DEFAULT_PERF_FREQ
    max_events: int | None = None
    # Hooks for callers that consume events themselves (ecc exporter): when set, each
    # ring/perf buffer record goes to event_sink(map name, raw bytes) instead of being
    # decoded and printed, and perf buffer losses to lost_sink(map name, cpu, count).
    event_sink: Callable[[str, bytes], None] | None = None
    lost_sink: Callable[[str, int, int], None] | None = None


@dataclass
class Attached:
    name: str
    section: str
    links: list[libbpf.Link]
    note: str = ""


class Runner:
    """One package's life: open -> set values -> load -> attach -> poll -> detach."""

    def __init__(self, package: LoadedPackage, opts: RunOptions, out: TextIO,
                 err: Callable[[str], None]) -> None:
        self.package = package
        self.opts = opts
        self.out = out
        self.say = err
        self.obj: libbpf.BpfObject | None = None
        self.attached: list[Attached] = []
        self.skipped: list[str] = []
        self._buffers: list[Any] = []
        self._stop = False
        self.events = 0

    # -- open and load ----------------------------------------------------------

    def _open(self, disabled: set[str]) -> libbpf.BpfObject:
        obj = libbpf.BpfObject.open_mem(
            self.package.object_bytes, object_name=self.package.obj_name,
            btf_custom_path=self.opts.btf_custom_path)
        try:
            for section, data in self.opts.section_values.items():
                found = _find_section_map(obj, section, self.package.obj_name)
                if found is None:
                    raise EccError(f"{self.package.origin}: libbpf has no map for data section "
                                   f"'{section}'")
                found.set_initial_value(data)
            for prog in obj.programs():
                if prog.name in disabled:
                    prog.set_autoload(False)
        except BaseException:
            obj.close()
            raise
        return obj

    def start(self, nothing_attached: str) -> None:
        """Load, attach and open the event outputs: what ``ecc run`` and the exporter
        both do before polling. ``nothing_attached`` is the error when no program could
        be attached. On any failure nothing of the package stays loaded."""
        try:
            self.load()
            self.attach_all()
            if not self.attached:
                raise EccError(nothing_attached)
            self.open_outputs()
        except BaseException:
            self.close()
            raise

    def load(self) -> None:
        """Load; a program the kernel refuses for a known reason is left out and reported."""
        disabled: set[str] = set()
        while True:
            obj = self._open(disabled)
            try:
                obj.load()
            except KernelLimitError as exc:
                obj.close()
                if self.opts.strict or not exc.program or exc.program in disabled:
                    raise
                disabled.add(exc.program)
                self._skip(str(exc))
                continue
            except BaseException:
                obj.close()
                raise
            self.obj = obj
            return

    def _skip(self, message: str) -> None:
        self.skipped.append(message)
        self.say(f"ecc: skipped: {message}")

    # -- attach -----------------------------------------------------------------

    def attach_all(self) -> None:
        assert self.obj is not None
        mounted = libbpf.ensure_tracefs()
        if mounted:
            self.say(f"ecc: mounted tracefs at {mounted} (tracepoints and probes need it)")
        progs = {p["name"]: p for p in self.package.meta["bpf_skel"].get("progs") or []}
        for prog in self.obj.programs():
            if not prog.autoload():
                continue
            annotations = progs.get(prog.name, {})
            try:
                links = self._attach(prog, annotations)
            except KernelLimitError as exc:
                if self.opts.strict:
                    raise
                self._skip(str(exc))
                continue
            if links:
                self.attached.append(Attached(prog.name, prog.section_name, links))

    def _attach(self, prog: libbpf.Program, ann: Mapping[str, Any]) -> list[libbpf.Link]:
        section = prog.section_name
        kind = section.split("/", 1)[0].split(".", 1)[0]
        where = f"program '{prog.name}' ({section})"
        if kind in ("xdp",):
            ifindex = _int_annotation(ann, "ifindex", where)
            if ifindex is None:
                raise KernelLimitError(f"{where}: no interface to attach to; add "
                                       f"'/// @ifindex N' before the program", program=prog.name)
            return [prog.attach_xdp(ifindex, _int_annotation(ann, "flags", where) or 0)]
        if kind in ("tc", "classifier", "tcx"):
            hook = ann.get("tchook")
            if not isinstance(hook, dict) or not isinstance(hook.get("ifindex"), int):
                raise KernelLimitError(
                    f"{where}: no interface to attach to; add '/// @tchook "
                    '{"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}\' before the program',
                    program=prog.name)
            point = TC_ATTACH_POINTS.get(str(hook.get("attach_point", "BPF_TC_INGRESS")))
            if point is None:
                raise EccError(f"{where}: @tchook attach_point must be BPF_TC_INGRESS or "
                               f"BPF_TC_EGRESS, got {hook.get('attach_point')!r}")
            tcopts = ann.get("tcopts") if isinstance(ann.get("tcopts"), dict) else {}
            assert isinstance(tcopts, dict)
            return [prog.attach_tc(hook["ifindex"], point,
                                   handle=_int_annotation(tcopts, "handle", where) or 0,
                                   priority=_int_annotation(tcopts, "priority", where) or 0)]
        if kind == "perf_event":
            freq = _int_annotation(ann, "freq", where) or self.opts.perf_freq
            links = []
            try:
                for cpu in libbpf.online_cpus():
                    fd = libbpf.open_cpu_clock_event(cpu, freq)
                    try:
                        links.append(prog.attach_perf_event(fd))
                    except BaseException:
                        os.close(fd)
                        raise
            except BaseException:
                for link in links:
                    link.destroy()
                raise
            # The links own the perf event fds now: libbpf closes them on destroy.
            return links
        if kind == "iter":
            link = prog.attach_iter()
            text = libbpf.read_iter(link).decode("utf-8", errors="replace")
            self.out.write(text)
            self.out.flush()
            return [link]
        if kind in ("uprobe", "uretprobe", "usdt") and "/" not in section:
            raise KernelLimitError(f"{where}: the section names no binary and function; "
                                   f"write it as {kind}/BINARY:FUNCTION", program=prog.name)
        return [prog.attach()]

    # -- events and maps --------------------------------------------------------

    def _event_type_id(self, map_meta: Mapping[str, Any]) -> int | None:
        return event_type_id(self.package.meta, map_meta)

    def open_outputs(self) -> None:
        from .decode import Decoder
        from .output import EventFormatter

        assert self.obj is not None
        btf = self.package.btf
        metas = {m["name"]: m for m in self.package.meta["bpf_skel"].get("maps") or []}
        ring: libbpf.RingBuffer | None = None
        for m in self.obj.maps():
            if m.type not in (MAP_TYPE_RINGBUF, MAP_TYPE_PERF_EVENT_ARRAY):
                continue
            meta = metas.get(m.name, {})
            if meta.get("export_config") == "no_export":
                continue
            type_id = self._event_type_id(meta)
            handler: Callable[[bytes], int | None]
            lost: Callable[[int, int], None] = self._lost
            if self.opts.event_sink is not None:
                handler, lost = _sink_handlers(m.name, self.opts.event_sink, self.opts.lost_sink)
            else:
                widths = None
                if type_id is not None and btf is not None:
                    decoder: Decoder | None = Decoder(btf, type_id)
                    assert decoder is not None
                    fields, widths = decoder.fields, decoder.widths
                else:
                    decoder, fields = None, ("data",)
                formatter = EventFormatter(fields, json=self.opts.json, widths=widths)
                handler = self._event_handler(decoder, formatter)
            if m.type == MAP_TYPE_RINGBUF:
                if ring is None:
                    ring = libbpf.RingBuffer(m, handler)
                    self._buffers.append(ring)
                else:
                    ring.add(m, handler)
            else:
                self._buffers.append(libbpf.PerfBuffer(m, 64, _per_cpu(handler), lost))

    def _event_handler(self, decoder: Any, formatter: Any) -> Callable[[bytes], int]:
        printed_header = False

        def handle(data: bytes) -> int:
            nonlocal printed_header
            try:
                values = decoder.decode(data) if decoder is not None else {"data": data.hex()}
            except PackageError as exc:
                # Runs inside libbpf's callback: report and go on, never unwind through C.
                self.say(f"ecc: warning: event skipped: {exc}")
                return 0
            if not printed_header:
                header = formatter.header()
                if header:
                    self.out.write(header + "\n")
                printed_header = True
            self.out.write(formatter.row(values, time.time()) + "\n")
            self.out.flush()
            self.events += 1
            if self.opts.max_events is not None and self.events >= self.opts.max_events:
                self._stop = True
                return 1  # a positive return stops ring_buffer__poll early
            return 0

        return handle

    def _lost(self, cpu: int, count: int) -> None:
        self.say(f"ecc: lost {count} events on CPU {cpu}")

    def sample_maps(self) -> list[tuple[libbpf.Map, dict[str, Any], int | None, int | None]]:
        """Maps with a `sample` annotation, with the BTF ids of their key and value."""
        assert self.obj is not None
        found = []
        defs = _map_defs(self.package)
        for meta in self.package.meta["bpf_skel"].get("maps") or []:
            sample = meta.get("sample")
            if not isinstance(sample, dict):
                continue
            m = self.obj.find_map(meta["name"])
            if m is None:
                continue
            key_id, value_id = defs.get(meta["name"], (None, None))
            found.append((m, sample, key_id, value_id))
        return found

    def print_samples(self, samples: list[tuple[libbpf.Map, dict[str, Any], int | None,
                                                   int | None]]) -> None:
        from .decode import decode_value
        from .output import sample_map_report

        btf = self.package.btf
        for m, sample, key_id, value_id in samples:
            entries = []
            for key, value in m.items():
                k = decode_value(btf, key_id, key) if btf and key_id else key.hex()
                v = decode_value(btf, value_id, value) if btf and value_id else value.hex()
                entries.append((k, v))
            self.out.write(sample_map_report(m.name, entries, sample, json=self.opts.json))
            self.out.flush()
            if sample.get("clear_map"):
                for key in list(m.keys()):
                    m.delete(key)

    # -- the loop ---------------------------------------------------------------

    def poll(self) -> None:
        """Poll until the duration, ``max_events`` or ``stop()``; the caller installs
        ``stop_on_signals`` (before it says the program runs, so no signal is lost)."""
        samples = self.sample_maps()
        deadline = None if self.opts.duration is None else time.monotonic() + self.opts.duration
        next_sample = {id(s[0]): time.monotonic() + _interval(s[1]) for s in samples}
        while not self._stop:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            timeout = POLL_MS
            if deadline is not None:
                timeout = min(timeout, max(0, int((deadline - now) * 1000)))
            self.poll_buffers(timeout)
            now = time.monotonic()
            due = [s for s in samples if now >= next_sample[id(s[0])]]
            if due:
                self.print_samples(due)
                for s in due:
                    next_sample[id(s[0])] = now + _interval(s[1])
        for buf in self._buffers:
            buf.consume()
        if samples and not self.opts.json:
            self.print_samples(samples)

    def poll_buffers(self, timeout_ms: int) -> None:
        """Wait up to ``timeout_ms`` for events and handle them: one step of ``poll``
        for callers that run their own loop (in a thread, where signals cannot be set)."""
        if not self._buffers:
            time.sleep(timeout_ms / 1000)
            return
        for buf in self._buffers:
            buf.poll(timeout_ms if len(self._buffers) == 1 else 0)
        if len(self._buffers) > 1:
            _sleep_on([b.epoll_fd() for b in self._buffers], timeout_ms)

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        """Detach everything and free the object: nothing stays attached or pinned."""
        for buf in self._buffers:
            buf.free()
        self._buffers.clear()
        for att in self.attached:
            for link in att.links:
                link.destroy()
        self.attached.clear()
        if self.obj is not None:
            self.obj.close()
            self.obj = None


def event_type_id(meta: Mapping[str, Any], map_meta: Mapping[str, Any]) -> int | None:
    """The BTF id of the struct a ring/perf buffer map carries: its ``export_config``,
    else the package's first export type; None when it exports nothing."""
    config = map_meta.get("export_config")
    if config == "no_export":
        return None
    if isinstance(config, dict) and isinstance(config.get("btf_type_id"), int):
        return int(config["btf_type_id"])
    exports = meta.get("export_types") or []
    return int(exports[0]["type_id"]) if exports else None


def _sink_handlers(
    name: str, sink: Callable[[str, bytes], None], lost_sink: Callable[[str, int, int], None] | None
) -> tuple[Callable[[bytes], int | None], Callable[[int, int], None]]:
    def handle(data: bytes) -> int:
        sink(name, data)
        return 0

    def lost(cpu: int, count: int) -> None:
        if lost_sink is not None:
            lost_sink(name, cpu, count)

    return handle, lost


def _per_cpu(handler: Callable[[bytes], int | None]) -> Callable[[int, bytes], None]:
    def sample(_cpu: int, data: bytes) -> None:
        handler(data)

    return sample


def _interval(sample: Mapping[str, Any]) -> float:
    value = sample.get("interval", 1000)
    return max(int(value) if isinstance(value, (int, float)) else 1000, 10) / 1000


def _sleep_on(fds: list[int], timeout_ms: int) -> None:
    with contextlib.suppress(InterruptedError, OSError):
        select.select(fds, [], [], timeout_ms / 1000)


def _int_annotation(ann: Mapping[str, Any], key: str, where: str) -> int | None:
    value = ann.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EccError(f"{where}: @{key} must be an integer, got {value!r}")
    return value


def _find_section_map(obj: libbpf.BpfObject, section: str,
                      obj_name: str) -> libbpf.Map | None:
    from ..meta.names import internal_map_lookup_name

    return obj.find_map(internal_map_lookup_name(obj_name, section)) or obj.find_map(section)


def _map_defs(package: LoadedPackage) -> dict[str, tuple[int | None, int | None]]:
    """Key and value type ids of each .maps map, from its BTF definition (__type(key, T))."""
    from ..btf.mapdefs import map_defs

    if package.btf is None:
        return {}
    return {name: (d.key_id, d.value_id) for name, d in map_defs(package.btf).items()}


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``stop`` (``Runner.stop``, or the exporter's) instead of
    raising, so the caller detaches cleanly; the previous handlers come back after."""
    def handler(signum: int, frame: Any) -> None:
        stop()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)
