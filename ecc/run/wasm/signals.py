"""SIGINT and SIGTERM stop a guest wherever it is, even in code that never returns.

The first signal asks the guest to end: its poll returns -EINTR, as the wasm-bpf
runtime's does, so that a guest written for it leaves its loop, frees what it
loaded and flushes its output (its stdout is buffered in its own memory, lost if
it is cut short). A guest that has not ended ``GRACE_SECONDS`` later, or a second
signal, interrupts it where it is.

Python runs its signal handlers only between bytecodes of the main thread, and a
guest spinning in WebAssembly (in ``_start`` or in a sample callback called from
libbpf) gives it none. What does run at once is the C-level handler, which writes
the signal number to the wakeup fd (``signal.set_wakeup_fd``): a watcher thread
reads it and calls ``interrupt`` (wasmtime's epoch increment), which makes the
guest trap at its next loop or call. The watcher blocks the two signals itself, so
the kernel delivers them to the main thread and its blocking calls (epoll_wait in
libbpf) return EINTR.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 1.0


class StopOnSignals:
    """A context manager: while inside, SIGINT/SIGTERM set ``signum`` and call
    ``interrupt`` instead of raising or killing. Outside the main thread (where
    handlers cannot be set) it does nothing."""

    def __init__(self, interrupt: Callable[[], None]) -> None:
        self._interrupt = interrupt
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        self._old_wakeup = -1
        self._pair: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    def _stop(self, signum: int) -> None:
        if self.signum is not None:  # a second signal: no more grace
            self._interrupt()
            return
        self.signum = signum
        self._timer = threading.Timer(GRACE_SECONDS, self._interrupt)
        self._timer.daemon = True
        self._timer.start()

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        # Only replaces the default (KeyboardInterrupt, death): the watcher thread acts,
        # once per signal, from the wakeup fd that the C-level handler wrote to.
        pass

    def _watch(self, reader: socket.socket) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:
                return
            for number in data:
                if number in STOP_SIGNALS:
                    self._stop(number)

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        self._pair = (reader, writer)
        self._thread = threading.Thread(target=self._watch, args=(reader,),
                                        name="ecc-wasm-signals", daemon=True)
        self._thread.start()
        self._old_wakeup = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._old = {sig: signal.signal(sig, self._handler) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._pair is None:
            return
        for sig, previous in self._old.items():
            signal.signal(sig, previous)
        signal.set_wakeup_fd(self._old_wakeup)
        reader, writer = self._pair
        self._pair = None
        with contextlib.suppress(OSError):
            writer.shutdown(socket.SHUT_RDWR)  # wakes the watcher's recv with EOF
        writer.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        reader.close()
