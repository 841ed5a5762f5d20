"""What loaded programs hand to user space: ring buffers, perf buffers, and the
output of BPF iterators.

``RingBuffer`` and ``PerfBuffer`` own their libbpf objects and free them on
``free()``, ``__exit__`` or, as a last resort, ``__del__``; an exception raised by a
callback is kept and re-raised by ``poll()`` rather than unwinding through libbpf.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import os
from collections.abc import Callable
from typing import Any, Self

from ...errors import LibbpfError
from .bindings import _PB_LOST_FN, _PB_SAMPLE_FN, _RB_SAMPLE_FN, _Capture, load_libbpf
from .diagnosis import _error, _ptr_errno
from .objects import Map
from .programs import Link


def read_iter(link: Link, *, max_bytes: int = 64 << 20) -> bytes:
    """Run a BPF iterator once: bpf_iter_create(link fd), read to EOF.

    `max_bytes` guards against an iterator that never ends.
    """
    lib = load_libbpf()
    fd = int(lib.bpf_iter_create(link.fd))
    if fd < 0:
        raise _error(f"creating an iterator from {link.description}", fd)
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            try:
                chunk = os.read(fd, 64 * 1024)
            except OSError as exc:
                err = exc.errno or _errno.EIO
                raise _error(f"reading iterator {link.description}", err) from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise LibbpfError(
                    f"iterator {link.description} produced more than {max_bytes} bytes",
                    _errno.EFBIG,
                )
    finally:
        os.close(fd)
    return b"".join(chunks)


# --- ring and perf buffers -----------------------------------------------------------


def _map_fd(target: Map | int) -> tuple[int, str]:
    if isinstance(target, Map):
        return target.fd, f"map '{target.name}'"
    return target, f"map fd {target}"


class _EventBuffer:
    """What ring and perf buffers share: polling, errors from callbacks, freeing.

    ``_API`` is libbpf's function prefix (``ring_buffer__``/``perf_buffer__``).
    """

    _API = ""
    _WHAT = ""

    def __init__(self) -> None:
        self._lib = load_libbpf()
        self._ptr: int | None = None
        self._error: BaseException | None = None
        self._keep: list[object] = []

    def _call(self, name: str, *args: Any) -> Any:
        return getattr(self._lib, self._API + name)(*args)

    def _handle(self) -> int:
        if self._ptr is None:
            raise LibbpfError(f"{self._WHAT} is freed", _errno.EBADF)
        return self._ptr

    def _check(self, rc: int, what: str) -> int:
        error, self._error = self._error, None
        if error is not None:
            raise error
        if rc == -_errno.EINTR:
            return 0  # a signal; Python runs its handler right after we return
        if rc < 0:
            raise _error(what, rc)
        return rc

    def poll(self, timeout_ms: int) -> int:
        """Wait up to `timeout_ms` (-1: forever) and consume what arrived."""
        return self._check(int(self._call("poll", self._handle(), timeout_ms)),
                           f"polling {self._WHAT}")

    def consume(self) -> int:
        """Consume what is available without waiting."""
        return self._check(int(self._call("consume", self._handle())),
                           f"consuming {self._WHAT}")

    def epoll_fd(self) -> int:
        return int(self._call("epoll_fd", self._handle()))

    def free(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            self._call("free", ptr)
        self._keep.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.free()


class RingBuffer(_EventBuffer):
    """ring_buffer__new/__add/__poll over BPF_MAP_TYPE_RINGBUF maps.

    The callback gets a copy of each record (bytes) and may return a negative
    int to stop the current poll. If it raises, polling stops and poll()
    re-raises the exception.
    """

    _API = "ring_buffer__"
    _WHAT = "ring buffer"

    def __init__(self, target: Map | int, callback: Callable[[bytes], int | None]) -> None:
        super().__init__()
        fd, what = _map_fd(target)
        cb = self._trampoline(callback)
        with _Capture() as cap:
            ptr = self._lib.ring_buffer__new(fd, cb, None, None)
            err = _ptr_errno()
        if not ptr:
            raise _error(f"creating a ring buffer on {what}", err, cap.text)
        self._ptr = int(ptr)
        # The trampolines and maps must stay referenced while libbpf may call them.
        self._keep += [cb, target]

    def _trampoline(self, callback: Callable[[bytes], int | None]) -> Any:
        def sample(_ctx: int | None, data: int | None, size: int) -> int:
            try:
                rc = callback(ctypes.string_at(data, size) if data else b"")
            except BaseException as exc:  # re-raised by poll()
                self._error = exc
                return -1
            return rc if isinstance(rc, int) else 0

        return _RB_SAMPLE_FN(sample)

    def add(self, target: Map | int, callback: Callable[[bytes], int | None]) -> None:
        """Poll one more ring buffer map through this manager."""
        handle = self._handle()
        fd, what = _map_fd(target)
        cb = self._trampoline(callback)
        rc = int(self._lib.ring_buffer__add(handle, fd, cb, None))
        if rc < 0:
            raise _error(f"adding {what} to a ring buffer", rc)
        self._keep += [cb, target]


class PerfBuffer(_EventBuffer):
    """perf_buffer__new over a BPF_MAP_TYPE_PERF_EVENT_ARRAY map.

    sample_cb(cpu, data) gets a copy of each record; lost_cb(cpu, count) is
    told about dropped records. page_cnt (pages per CPU) must be a power of
    two. An exception in a callback is re-raised by poll()/consume().
    """

    _API = "perf_buffer__"
    _WHAT = "perf buffer"

    def __init__(
        self,
        target: Map | int,
        page_cnt: int,
        sample_cb: Callable[[int, bytes], None],
        lost_cb: Callable[[int, int], None] | None = None,
    ) -> None:
        super().__init__()
        fd, what = _map_fd(target)
        if page_cnt <= 0 or page_cnt & (page_cnt - 1):
            raise ValueError(f"perf buffer page count must be a power of two, got {page_cnt}")

        def sample(_ctx: int | None, cpu: int, data: int | None, size: int) -> None:
            if self._error is not None:
                return  # already failing: drop the rest of this poll's records
            try:
                sample_cb(cpu, ctypes.string_at(data, size) if data else b"")
            except BaseException as exc:  # re-raised by poll()
                self._error = exc

        def lost(_ctx: int | None, cpu: int, count: int) -> None:
            if lost_cb is None or self._error is not None:
                return
            try:
                lost_cb(cpu, count)
            except BaseException as exc:
                self._error = exc

        sample_fn = _PB_SAMPLE_FN(sample)
        lost_fn = _PB_LOST_FN(lost)
        with _Capture() as cap:
            ptr = self._lib.perf_buffer__new(fd, page_cnt, sample_fn, lost_fn, None, None)
            err = _ptr_errno()
        if not ptr:
            raise _error(f"creating a perf buffer on {what}", err, cap.text)
        self._ptr = int(ptr)
        self._keep += [sample_fn, lost_fn, target]


