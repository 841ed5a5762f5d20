"""Open a package with libbpf, configure it, load it, attach it, and report what it sends.

Attaching follows libbpf's section rules, plus the eunomia annotations of
spec section 5 for what a section name cannot say (XDP and TC interfaces,
perf_event frequency), with the defaults of eunomia's loader: XDP and TC on
ifindex 1 (``lo``), TC at ingress. A program this kernel cannot attach is
reported in one line and left out; one that needs a target ecc cannot guess (a
socket, a cgroup without ``cgroup``, a uprobe without a binary) stays loaded and
waits, also reported in one line; the others keep running, unless ``strict``.
"""

from __future__ import annotations

import contextlib
import select
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, TextIO

from ..errors import EccError, KernelLimitError, PackageError
from ..package.source import LoadedPackage
from . import libbpf
from .attach import (
    CGROUP_TYPES,
    CGROUP_WANTS,
    NETWORK_KINDS,
    TC_ATTACH_POINTS,
    UPROBE_KINDS,
    WAITS_FOR,
    int_annotation,
    interface_name,
    section_kind,
)
from .attach import interface_index as interface_index  # where cli and launch import it
from .iterators import print_iter
from .runoptions import RunOptions as RunOptions
from .tracepipe import TracePipe

MAP_TYPE_PERF_EVENT_ARRAY = 4
MAP_TYPE_RINGBUF = 27
_ARRAY_MAP_TYPES = (2, 6)  # BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY
POLL_MS = 100


class Attached(NamedTuple):
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
        self.waiting: list[str] = []  # loaded, left unattached: they need a target
        self._buffers: list[Any] = []
        self._stop = False
        self.events = 0
        self._tally: Any = None  # decode.EventTally, made with the first decoder
        self._trace_pipe: TracePipe | None = None  # with --printk, while polling

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
            if not self.attached and not self.waiting:
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
            wants = self._wanted_target(prog)
            if wants is not None:
                self._wait(prog, wants)
                continue
            try:
                links = self._attach(prog, annotations)
            except libbpf.HookBusy as exc:
                message = (f"{exc}; pass --replace to put this one in its place"
                           if not self.opts.replace else
                           f"{exc}, attached by a link that cannot be replaced")
                if self.opts.strict:
                    raise EccError(message) from None
                self._skip(message)
                continue
            except KernelLimitError as exc:
                if self.opts.strict:
                    raise
                self._skip(str(exc))
                continue
            if links:
                self.attached.append(Attached(prog.name, prog.section_name, links))

    def _wanted_target(self, prog: libbpf.Program) -> str | None:
        """What ``prog`` waits for when it needs a target it was not given; else None."""
        kind = section_kind(prog.section_name)
        if kind in UPROBE_KINDS and "/" not in prog.section_name:
            if kind != "usdt" and self.opts.uprobe_binary and self.opts.uprobe_function:
                return None
            return ("a binary and a function: write the section as "
                    f"{kind}/BINARY:FUNCTION" + ("" if kind == "usdt" else
                                                 ", or pass --uprobe-binary and "
                                                 "--uprobe-function"))
        if kind in NETWORK_KINDS:
            return None
        wants = WAITS_FOR.get(prog.type)
        if wants == CGROUP_WANTS and self.opts.cgroup:
            return None
        return wants

    def _wait(self, prog: libbpf.Program, wants: str) -> None:
        message = f"program '{prog.name}' ({prog.section_name}) is loaded and waits for {wants}"
        if self.opts.strict:
            raise EccError(f"{message}; nothing can attach it (--strict)")
        self.waiting.append(prog.name)
        self.say(f"ecc: waiting: {message}")

    def _interface(self, annotated: int | None, what: str) -> tuple[int, str | None]:
        """The ifindex an XDP/TC program attaches to: the command line's, else its
        annotation's, else 1 (``lo``, the default of eunomia's loader); and, when not
        its annotation's, why, for the line that announces it."""
        if self.opts.ifindex is not None:
            return self.opts.ifindex, "as --ifindex/--iface asks"
        if annotated is not None:
            return annotated, None
        return 1, f"the default; set {what} to choose"

    def _announce(self, prog: libbpf.Program, ifindex: int, why: str | None,
                  at: str = "") -> None:
        if why is not None:
            self.say(f"ecc: {prog.name}: attached to {interface_name(ifindex)}{at}, {why}")

    def _attach(self, prog: libbpf.Program, ann: Mapping[str, Any]) -> list[libbpf.Link]:
        section = prog.section_name
        kind = section_kind(section)
        where = f"program '{prog.name}' ({section})"
        if kind in ("xdp",):
            ifindex, why = self._interface(int_annotation(ann, "ifindex", where), "@ifindex")
            link = prog.attach_xdp(ifindex, int_annotation(ann, "flags", where) or 0,
                                   replace=self.opts.replace)
            self._announce(prog, ifindex, why)
            return [link]
        if kind in ("tc", "classifier", "tcx"):
            hook = ann.get("tchook")
            hook = hook if isinstance(hook, dict) else {}
            annotated = hook.get("ifindex")
            if annotated is not None and (isinstance(annotated, bool)
                                          or not isinstance(annotated, int)):
                raise EccError(f"{where}: @tchook ifindex must be an integer, got {annotated!r}")
            point = TC_ATTACH_POINTS.get(str(hook.get("attach_point", "BPF_TC_INGRESS")))
            if point is None:
                raise EccError(f"{where}: @tchook attach_point must be BPF_TC_INGRESS or "
                               f"BPF_TC_EGRESS, got {hook.get('attach_point')!r}")
            ifindex, why = self._interface(annotated, "@tchook")
            tcopts = ann.get("tcopts") if isinstance(ann.get("tcopts"), dict) else {}
            assert isinstance(tcopts, dict)
            link = prog.attach_tc(ifindex, point,
                                  handle=int_annotation(tcopts, "handle", where) or 0,
                                  priority=int_annotation(tcopts, "priority", where) or 0,
                                  replace=self.opts.replace)
            self._announce(prog, ifindex, why,
                           " at egress" if point == libbpf.BPF_TC_EGRESS else " at ingress")
            return [link]
        if prog.type in CGROUP_TYPES and self.opts.cgroup:
            return [prog.attach_cgroup(self.opts.cgroup)]
        if kind in ("uprobe", "uretprobe") and "/" not in section:
            assert self.opts.uprobe_binary and self.opts.uprobe_function  # else it waits
            return [prog.attach_uprobe(kind == "uretprobe", self.opts.uprobe_pid,
                                       self.opts.uprobe_binary,
                                       func_name=self.opts.uprobe_function)]
        if kind == "perf_event":
            freq = int_annotation(ann, "freq", where) or self.opts.perf_freq
            return prog.attach_cpu_clock(freq)
        if kind == "iter":
            link = prog.attach_iter()
            try:
                print_iter(self.package, prog.name, ann, libbpf.read_iter(link),
                           json=self.opts.json, out=self.out, say=self.say)
            except BaseException:
                link.destroy()
                raise
            return [link]
        return [prog.attach()]

    def _print_printk(self) -> None:
        if self._trace_pipe is None:
            return
        from .output import printk_line

        lines = self._trace_pipe.lines()
        if lines:
            self.out.write("".join(printk_line(line, json=self.opts.json) + "\n"
                                   for line in lines))
            self.out.flush()

    # -- events and maps --------------------------------------------------------

    def _event_type_id(self, map_meta: Mapping[str, Any]) -> int | None:
        return event_type_id(self.package.meta, map_meta)

    def open_outputs(self) -> None:
        from .decode import Decoder, EventTally
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
                formatter = EventFormatter(fields, json=self.opts.json, widths=widths,
                                           envelope={"type": "event", "map": m.name})
                if self._tally is None:
                    self._tally = EventTally()
                handler = self._event_handler(m.name, decoder, formatter)
            if m.type == MAP_TYPE_RINGBUF:
                if ring is None:
                    ring = libbpf.RingBuffer(m, handler)
                    self._buffers.append(ring)
                else:
                    ring.add(m, handler)
            else:
                self._buffers.append(libbpf.PerfBuffer(m, 64, _per_cpu(handler), lost))

    def _event_handler(self, source: str, decoder: Any,
                       formatter: Any) -> Callable[[bytes], int]:
        from .decode import PADDING_SLACK

        printed_header = False
        size = decoder.size if decoder is not None else 0

        def handle(data: bytes) -> int:
            nonlocal printed_header
            try:
                values = decoder.decode(data) if decoder is not None else {"data": data.hex()}
            except PackageError as exc:
                # Runs inside libbpf's callback: report and go on, never unwind through C.
                self._irregular(source, decoder, len(data), f"event skipped: {exc}")
                return 0
            if decoder is not None and len(data) >= size + PADDING_SLACK:
                # A short event that decoded is what a variable-length sender
                # means; a record longer than its type likely is a wrong type.
                self._irregular(source, decoder, len(data),
                                f"event of {len(data)} bytes is longer than {decoder.what} "
                                f"({size} bytes); decoded from its first {size} bytes")
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

    def _irregular(self, source: str, decoder: Any, n: int, message: str) -> None:
        # One line for the first of each kind, so the user learns of it while
        # it runs; the rest are counted and summed up by close().
        if self._tally is not None and self._tally.check(source, decoder, n):
            self.say(f"ecc: warning: map {source}: {message} (further ones are counted; "
                     f"the count is shown at exit)")

    def _lost(self, cpu: int, count: int) -> None:
        self.say(f"ecc: lost {count} events on CPU {cpu}")

    def sample_maps(self) -> list[tuple[libbpf.Map, dict[str, Any], int | None, int | None]]:
        """Maps with a `sample` annotation, with the BTF ids of their key and value."""
        assert self.obj is not None
        found = []
        defs = None  # read from the BTF for the first sampled map: most packages have none
        for meta in self.package.meta["bpf_skel"].get("maps") or []:
            sample = meta.get("sample")
            m = self.obj.find_map(meta["name"]) if isinstance(sample, dict) else None
            if m is None:
                continue
            defs = _map_defs(self.package) if defs is None else defs
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
                _clear(m)

    # -- the loop ---------------------------------------------------------------

    def poll(self) -> None:
        """Poll until the duration, ``max_events`` or ``stop()``; the caller installs
        ``stop_on_signals`` (before it says the program runs, so no signal is lost)."""
        samples = self.sample_maps()
        if self.opts.printk and self._trace_pipe is None:
            self._trace_pipe = TracePipe()
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
            self._print_printk()
            now = time.monotonic()
            due = [s for s in samples if now >= next_sample[id(s[0])]]
            if due:
                self.print_samples(due)
                for s in due:
                    next_sample[id(s[0])] = now + _interval(s[1])
        for buf in self._buffers:
            buf.consume()
        self._print_printk()
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
        """Detach everything and free the object: nothing stays attached or pinned.
        Events that did not fit their type are reported here, one line per kind."""
        if self._tally is not None:
            for line in self._tally.summary():
                self.say(f"ecc: warning: {line}")
        if self._trace_pipe is not None:
            self._trace_pipe.close()
            self._trace_pipe = None
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
    name: str, sink: Callable[[str], Callable[[bytes], object]],
    lost_sink: Callable[[str, int, int], None] | None,
) -> tuple[Callable[[bytes], int | None], Callable[[int, int], None]]:
    handle: Callable[[bytes], Any] = sink(name)

    def lost(cpu: int, count: int) -> None:
        if lost_sink is not None:
            lost_sink(name, cpu, count)

    return handle, lost


def _per_cpu(handler: Callable[[bytes], int | None]) -> Callable[[int, bytes], None]:
    def sample(_cpu: int, data: bytes) -> None:
        handler(data)

    return sample


def _clear(m: libbpf.Map) -> None:
    """Empty a sampled map for the next interval. Array elements cannot be
    deleted (EINVAL), so they are set to zeros, which is what they start as."""
    if m.type in _ARRAY_MAP_TYPES:
        zero = bytes(m.value_buffer_size)
        for key in list(m.keys()):
            m.update(key, zero)
        return
    for key in list(m.keys()):
        m.delete(key)


def _interval(sample: Mapping[str, Any]) -> float:
    value = sample.get("interval", 1000)
    return max(int(value) if isinstance(value, (int, float)) else 1000, 10) / 1000


def _sleep_on(fds: list[int], timeout_ms: int) -> None:
    with contextlib.suppress(InterruptedError, OSError):
        select.select(fds, [], [], timeout_ms / 1000)


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


def program_name(package: LoadedPackage) -> str:
    """How ``ecc run`` names a package's program: its object name without ``_bpf``."""
    name = package.obj_name
    return name[: -len("_bpf")] if name.endswith("_bpf") else name


def run_package(package: LoadedPackage, opts: RunOptions, out: TextIO,
                say: Callable[[str], None]) -> None:
    """``ecc run`` once the package and its options are known: start, say what runs,
    poll until stopped (SIGINT, SIGTERM, the duration), detach everything."""
    libbpf.bump_memlock_rlimit()
    runner = Runner(package, opts, out, say)
    try:
        runner.start(f"{package.origin}: no program could be attached; nothing to run")
        count = len(runner.attached)
        waiting = (f"; {len(runner.waiting)} waiting ({', '.join(runner.waiting)})"
                   if runner.waiting else "")
        names = f" ({', '.join(a.name for a in runner.attached)})" if count else ""
        # Handlers first: whoever reads "running" may signal us at once.
        with stop_on_signals(runner.stop):
            say(f"ecc: running {program_name(package)}: {count} program"
                f"{'s' if count != 1 else ''} attached{names}{waiting}; Ctrl-C to stop")
            runner.poll()
    finally:
        runner.close()


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
