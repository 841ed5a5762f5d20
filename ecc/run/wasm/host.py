"""The six ``wasm_bpf`` imports of eunomia's wasm-bpf ABI, over ``ecc.run.libbpf``.

The guest SDK's libbpf-wasm.h declares them; in wasm32 (``IMPORTS`` has the types):

* ``u64 wasm_load_bpf_object(const void *obj, int size)``: open and load (CO-RE) an
  ELF object from guest memory; an opaque handle, 0 on failure.
* ``int wasm_attach_bpf_program(u64 obj, const char *name, const char *target)``:
  attach by section like ``ecc run``; ``target`` (may be NULL) names what the section
  cannot: the interface of xdp and tc programs (``IFNAME`` or ``IFNAME:egress``), the
  ``BINARY:FUNCTION`` of a bare ``uprobe``.
* ``int wasm_bpf_buffer_poll(u64 obj, int fd, int cb, void *ctx, char *data, int max,
  int timeout_ms)``: the first call for a map opens a ring or perf buffer on it; each
  sample is copied (at most ``max`` bytes) to ``data`` and ``cb`` (an index into the
  guest's ``__indirect_function_table``) is called with (ctx, data, copied size).
* ``int wasm_bpf_map_fd_by_name(u64 obj, const char *name)``.
* ``int wasm_bpf_map_operate(int fd, int cmd, void *key, void *value, void *next_key,
  u64 flags)``: cmd 1 lookup, 2 update, 3 delete, 4 get_next_key (key NULL: the first).
* ``int wasm_close_bpf_object(u64 obj)``.

Two kinds of failure, as in the upstream runtime where they overlap: what a correct
guest may meet (no such program or map, the verifier or the kernel says no, no such
key) returns a negative errno; what only a broken or hostile guest does (a handle it
was never given, a pointer or length outside its memory, bytes that are not ELF, a
callback that traps or is not in its table) ends the run with a ``WasmError`` naming
the import. Unlike upstream, map operations accept only the fds of the guest's own
maps: the host process's other descriptors are none of its business.
"""

from __future__ import annotations

import errno as _errno
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TextIO

from ...errors import EccError, KernelLimitError, LibbpfError, WasmError
from .. import libbpf
from .guest import Guest, GuestFault, u32

MAP_TYPE_PERF_EVENT_ARRAY = 4
MAP_TYPE_RINGBUF = 27
PERF_BUFFER_PAGES = 64
DEFAULT_PERF_FREQ = 49
# A long or endless poll (timeout -1) is cut into slices this long, so that a signal
# is noticed between them.
POLL_SLICE_MS = 100
ELF_MAGIC = b"\x7fELF"
_MASK64 = 0xFFFFFFFFFFFFFFFF

MAP_LOOKUP, MAP_UPDATE, MAP_DELETE, MAP_GET_NEXT_KEY = 1, 2, 3, 4

# name -> (parameter types, result types), as wasm32 sees libbpf-wasm.h
IMPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "wasm_load_bpf_object": (("i32", "i32"), ("i64",)),
    "wasm_attach_bpf_program": (("i64", "i32", "i32"), ("i32",)),
    "wasm_bpf_buffer_poll": (("i64", "i32", "i32", "i32", "i32", "i32", "i32"), ("i32",)),
    "wasm_bpf_map_fd_by_name": (("i64", "i32"), ("i32",)),
    "wasm_bpf_map_operate": (("i32", "i32", "i32", "i32", "i32", "i64"), ("i32",)),
    "wasm_close_bpf_object": (("i64",), ("i32",)),
}


@dataclass
class _Poll:
    """Where the samples of the current wasm_bpf_buffer_poll go (set per call)."""

    guest: Guest
    callback: int
    ctx: int
    data: int
    max_size: int


@dataclass
class _Buffer:
    buffer: libbpf.RingBuffer | libbpf.PerfBuffer
    target: list[_Poll | None]  # one cell: the callbacks read the current poll from it


@dataclass
class _Object:
    obj: libbpf.BpfObject
    links: list[libbpf.Link] = field(default_factory=list)
    buffers: dict[int, _Buffer] = field(default_factory=dict)
    maps: dict[int, libbpf.Map] = field(default_factory=dict)  # fd -> map

    def close(self) -> None:
        """Free buffers, detach, close; the first error is raised after all ran."""
        first: BaseException | None = None
        for step in ([b.buffer.free for b in self.buffers.values()]
                     + [link.destroy for link in self.links] + [self.obj.close]):
            try:
                step()
            except Exception as exc:  # keep going: nothing may stay attached
                first = first or exc
        self.buffers.clear()
        self.links.clear()
        self.maps.clear()
        if first is not None:
            raise first


def _errno_of(exc: BaseException) -> int:
    """The negative errno a failed libbpf call becomes for the guest."""
    if isinstance(exc, LibbpfError) and exc.errno:
        return -abs(exc.errno)
    if isinstance(exc, KernelLimitError):
        return -_errno.EOPNOTSUPP
    return -_errno.EINVAL


class BpfHost:
    """One guest's BPF objects, and the six imports that reach them.

    ``stop_signal`` says which signal asked the run to stop (None: none did); polls
    check it between slices. ``close_all`` detaches and closes what the guest left.
    """

    def __init__(self, origin: str, stop_signal: Callable[[], int | None],
                 err: TextIO | None = None) -> None:
        self.origin = origin
        self._stop_signal = stop_signal
        self._err = err if err is not None else sys.stderr
        self._objects: dict[int, _Object] = {}
        self._next_handle = 1
        self._polling = False
        self._prepared = False
        self.object_name = _object_name(origin)

    # -- the import boundary --------------------------------------------------

    def functions(self) -> dict[str, Callable[..., int]]:
        """import name -> ``f(guest, *wasm args) -> result``, raising WasmError for a
        broken guest; after a stop signal, polls return -EINTR."""
        impl: dict[str, Callable[..., int]] = {
            "wasm_load_bpf_object": self.load_object,
            "wasm_attach_bpf_program": self.attach_program,
            "wasm_bpf_buffer_poll": self.buffer_poll,
            "wasm_bpf_map_fd_by_name": self.map_fd_by_name,
            "wasm_bpf_map_operate": self.map_operate,
            "wasm_close_bpf_object": self.close_object,
        }
        return {name: self._guarded(name, fn) for name, fn in impl.items()}

    def _guarded(self, name: str, fn: Callable[..., int]) -> Callable[..., int]:
        def call(guest: Guest, *args: int) -> int:
            try:
                return fn(guest, *args)
            except GuestFault as exc:
                raise WasmError(f"{self.origin}: {name}: {exc}") from None
        return call

    def _stopping(self) -> bool:
        # Asked to stop (signals.py): polls answer -EINTR so the guest can end by itself;
        # its other calls (close, map reads) still work while it cleans up.
        return self._stop_signal() is not None

    def _warn(self, name: str, exc: BaseException) -> None:
        # The guest gets only an errno; the user also gets libbpf's reason, in one line.
        self._err.write(f"ecc: warning: {self.origin}: {name}: {exc}\n")
        self._err.flush()

    def _object(self, handle: int) -> _Object:
        handle &= _MASK64  # wasmtime hands i64 over signed
        found = self._objects.get(handle)
        if found is None:
            raise GuestFault(f"no BPF object has handle {handle:#x}")
        return found

    # -- the imports ----------------------------------------------------------

    def load_object(self, guest: Guest, pointer: int, size: int) -> int:
        data = guest.memory.read(u32(pointer), size, "object")
        if not data.startswith(ELF_MAGIC):
            raise GuestFault(f"the object ({size} bytes) is not an ELF "
                             f"file (it starts with {data[:4].hex(' ') or 'nothing'})")
        if not self._prepared:
            libbpf.bump_memlock_rlimit()
            libbpf.ensure_tracefs()
            self._prepared = True
        try:
            obj = libbpf.BpfObject.open_mem(data, object_name=self.object_name)
        except EccError as exc:
            self._warn("wasm_load_bpf_object", exc)
            return 0
        try:
            obj.load()
        except EccError as exc:
            obj.close()
            self._warn("wasm_load_bpf_object", exc)
            return 0
        except BaseException:
            obj.close()
            raise
        record = _Object(obj)
        try:
            record.maps = {m.fd: m for m in obj.maps()}
        except BaseException:
            obj.close()
            raise
        handle = self._next_handle
        self._next_handle += 1
        self._objects[handle] = record
        return handle

    def attach_program(self, guest: Guest, handle: int, name_ptr: int, target_ptr: int) -> int:
        record = self._object(handle)
        name = guest.memory.string(u32(name_ptr), "program name")
        target = guest.memory.string(u32(target_ptr), "attach target") if target_ptr else None
        prog = record.obj.find_program(name)
        if prog is None:
            return -_errno.ENOENT
        try:
            record.links.extend(_attach(prog, target))
        except EccError as exc:
            self._warn("wasm_attach_bpf_program", exc)
            return _errno_of(exc)
        return 0

    def map_fd_by_name(self, guest: Guest, handle: int, name_ptr: int) -> int:
        record = self._object(handle)
        name = guest.memory.string(u32(name_ptr), "map name")
        found = record.obj.find_map(name)
        return -_errno.ENOENT if found is None else found.fd

    def close_object(self, guest: Guest, handle: int) -> int:
        record = self._object(handle)
        if self._polling:
            # libbpf is inside this process's ring or perf buffer right now: freeing
            # any object under it would pull the memory from beneath the poll.
            raise GuestFault("called from a sample callback, while a buffer is polled")
        del self._objects[handle & _MASK64]
        try:
            record.close()
        except EccError as exc:
            self._warn("wasm_close_bpf_object", exc)
            return _errno_of(exc)
        return 0

    def map_operate(self, guest: Guest, fd: int, cmd: int, key_ptr: int, value_ptr: int,
                    next_key_ptr: int, flags: int) -> int:
        found = self._map(fd)
        if found is None:
            return -_errno.EBADF
        memory = guest.memory
        try:
            key_size, value_size = found.key_size, found.value_buffer_size
            if cmd == MAP_LOOKUP:
                key = memory.read(u32(key_ptr), key_size, "key")
                memory.check(u32(value_ptr), value_size, "value")
                value = found.lookup(key)
                if value is None:
                    return -_errno.ENOENT
                memory.write(u32(value_ptr), value, "value")
            elif cmd == MAP_UPDATE:
                key = memory.read(u32(key_ptr), key_size, "key")
                value = memory.read(u32(value_ptr), value_size, "value")
                found.update(key, value, flags & _MASK64)
            elif cmd == MAP_DELETE:
                key = memory.read(u32(key_ptr), key_size, "key")
                if not found.delete(key):
                    return -_errno.ENOENT
            elif cmd == MAP_GET_NEXT_KEY:
                current = memory.read(u32(key_ptr), key_size, "key") if key_ptr else None
                memory.check(u32(next_key_ptr), key_size, "next key")
                following = _next_key(found, current)
                if following is None:
                    return -_errno.ENOENT
                memory.write(u32(next_key_ptr), following, "next key")
            else:
                return -_errno.EINVAL
        except EccError as exc:
            return _errno_of(exc)
        return 0

    def buffer_poll(self, guest: Guest, handle: int, fd: int, callback: int, ctx: int,
                    data: int, max_size: int, timeout_ms: int) -> int:
        record = self._object(handle)
        guest.memory.check(u32(data), max_size, "data buffer")
        if self._polling:
            raise GuestFault("called from a sample callback (polls do not nest)")
        buf = record.buffers.get(fd)
        if buf is None:
            found = record.maps.get(fd)
            if found is None:
                return -_errno.ENOENT
            try:
                opened = self._open_buffer(found)
            except EccError as exc:
                self._warn("wasm_bpf_buffer_poll", exc)
                return _errno_of(exc)
            if opened is None:
                return -_errno.EINVAL
            buf = record.buffers[fd] = opened
        buf.target[0] = _Poll(guest, u32(callback), u32(ctx), u32(data), max_size)
        self._polling = True
        try:
            return self._poll(buf, timeout_ms)
        finally:
            self._polling = False
            buf.target[0] = None

    # -- buffers ----------------------------------------------------------------

    def _open_buffer(self, found: libbpf.Map) -> _Buffer | None:
        target: list[_Poll | None] = [None]

        def deliver(sample: bytes) -> int:
            poll = target[0]
            if poll is None:  # a consume outside a poll: nowhere to put it
                return 0
            size = min(len(sample), poll.max_size)
            poll.guest.memory.write(poll.data, sample[:size], "data buffer")
            return poll.guest.call_sample(poll.callback, poll.ctx, poll.data, size)

        def per_cpu(_cpu: int, sample: bytes) -> None:
            deliver(sample)

        buffer: libbpf.RingBuffer | libbpf.PerfBuffer
        if found.type == MAP_TYPE_RINGBUF:
            buffer = libbpf.RingBuffer(found, deliver)
        elif found.type == MAP_TYPE_PERF_EVENT_ARRAY:
            buffer = libbpf.PerfBuffer(found, PERF_BUFFER_PAGES, per_cpu)
        else:
            return None
        return _Buffer(buffer, target)

    def _poll(self, buf: _Buffer, timeout_ms: int) -> int:
        remaining = None if timeout_ms < 0 else timeout_ms
        while True:
            slice_ms = POLL_SLICE_MS if remaining is None else min(remaining, POLL_SLICE_MS)
            if self._stopping():
                return -_errno.EINTR
            try:
                count = buf.buffer.poll(slice_ms)
            except LibbpfError as exc:
                return -_errno.EINTR if self._stopping() else _errno_of(exc)
            if self._stopping():
                return -_errno.EINTR
            if remaining is not None:
                remaining -= slice_ms
            if count > 0 or (remaining is not None and remaining <= 0):
                return 0

    def _map(self, fd: int) -> libbpf.Map | None:
        for record in self._objects.values():
            found = record.maps.get(fd)
            if found is not None:
                return found
        return None

    # -- the end ----------------------------------------------------------------

    def close_all(self) -> None:
        """Detach and close every object the guest left open (newest first)."""
        first: BaseException | None = None
        for handle in sorted(self._objects, reverse=True):
            try:
                self._objects.pop(handle).close()
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first


def _object_name(origin: str) -> str:
    """libbpf's name for the guest's objects (it prefixes internal map names)."""
    stem = PurePath(origin).stem or "wasm"
    return "".join(c if c.isalnum() or c == "_" else "_" for c in stem)[:15] or "wasm"


def _next_key(found: libbpf.Map, current: bytes | None) -> bytes | None:
    """bpf_map_get_next_key through the binding's key iterator: the key after
    ``current``, the first key when ``current`` is None or not in the map (as the
    kernel answers). Linear in the map's size per call."""
    keys = found.keys()
    first = next(keys, None)
    if current is None or first is None:
        return first
    if first == current:
        return next(keys, None)
    for key in keys:
        if key == current:
            return next(keys, None)
    return first


def _interface(target: str | None, what: str) -> int:
    if not target:
        raise LibbpfError(f"{what}: needs an interface name as attach target", _errno.EINVAL)
    try:
        return socket.if_nametoindex(target)
    except OSError:
        raise LibbpfError(f"{what}: no network interface '{target}'", _errno.ENODEV) from None


def _attach(prog: libbpf.Program, target: str | None) -> list[libbpf.Link]:
    """Attach like ``ecc run`` does, with ``target`` for what the section cannot say."""
    section = prog.section_name
    kind = section.split("/", 1)[0].split(".", 1)[0]
    where = f"program '{prog.name}' ({section})"
    if kind == "xdp":
        return [prog.attach_xdp(_interface(target, where))]
    if kind in ("tc", "classifier", "tcx"):
        name, _, point = (target or "").partition(":")
        points = {"": libbpf.BPF_TC_INGRESS, "ingress": libbpf.BPF_TC_INGRESS,
                  "egress": libbpf.BPF_TC_EGRESS}
        if point not in points:
            raise LibbpfError(f"{where}: attach target '{target}' must be IFNAME, "
                              f"IFNAME:ingress or IFNAME:egress", _errno.EINVAL)
        return [prog.attach_tc(_interface(name, where), points[point])]
    if kind in ("uprobe", "uretprobe") and "/" not in section:
        binary, _, function = (target or "").rpartition(":")
        if not binary or not function:
            raise LibbpfError(f"{where}: attach target must be BINARY:FUNCTION", _errno.EINVAL)
        return [prog.attach_uprobe(kind == "uretprobe", -1, binary, 0, function)]
    if kind in ("sockops", "cgroup", "cgroup_skb", "sk_msg", "sk_skb"):
        raise LibbpfError(f"{where}: attaching to a cgroup or socket map is not supported",
                          _errno.EOPNOTSUPP)
    if kind == "perf_event":
        return prog.attach_cpu_clock(DEFAULT_PERF_FREQ)
    return [prog.attach()]


def describe(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    """A wasm function type as the error lines print it: ``(i64, i32) -> i32``."""
    return f"({', '.join(params)}) -> {', '.join(results) or '()'}"
