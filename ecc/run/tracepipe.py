"""``ecc run --printk``: the lines ``bpf_printk`` writes, from the kernel's trace pipe."""

from __future__ import annotations

import os

from ..errors import EccError

TRACE_PIPES = ("/sys/kernel/tracing/trace_pipe", "/sys/kernel/debug/tracing/trace_pipe")
_MAX_TRACE_LINE = 1 << 16


class TracePipe:
    """The kernel's trace pipe, where ``bpf_printk`` writes, read without blocking.

    Reading consumes: a line read here is gone for every other reader, and the
    pipe holds what every program on the machine prints, not only ours."""

    def __init__(self) -> None:
        problems = []
        self._fd = -1
        for path in TRACE_PIPES:
            try:
                self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                break
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror}")
        if self._fd < 0:
            raise EccError(f"--printk: cannot read the trace pipe ({'; '.join(problems)})")
        self._partial = b""

    def lines(self) -> list[str]:
        """The complete lines written since the last call, decoded as text."""
        from .output import decode_text

        chunks = []
        while True:
            try:
                chunk = os.read(self._fd, 1 << 16)
            except InterruptedError:
                continue
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        if not chunks:
            return []
        *complete, self._partial = (self._partial + b"".join(chunks)).split(b"\n")
        if len(self._partial) > _MAX_TRACE_LINE:  # a line never ends: show it, bounded
            complete.append(self._partial)
            self._partial = b""
        return [decode_text(line) for line in complete]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
