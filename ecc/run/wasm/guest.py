"""What the host functions see of a guest: its linear memory, bounds-checked, and a
way to call back into it.

Every pointer and length a guest passes is untrusted: ``GuestMemory`` checks each
access against the memory's size *at the time of the access* (the guest may have
grown it since the last call), with Python integers so that ``pointer + length``
cannot wrap around as it would in 32 bits. A bad access raises ``GuestFault``,
which the host turns into one line naming the import that was called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# A C string from the guest (program, map or interface name) longer than this is
# refused rather than read to the end of memory.
MAX_STRING = 4096
_MASK32 = 0xFFFFFFFF


class GuestFault(Exception):
    """The guest broke the ABI (bad pointer, length, handle, callback); the message
    says how, the host prefixes the module and the import."""


class GuestStopped(BaseException):
    """SIGINT or SIGTERM arrived: unwind everything, through libbpf callbacks too.

    A BaseException so that no ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def u32(value: int) -> int:
    """A wasm i32 (wasmtime hands them over signed) as the guest's unsigned pointer."""
    return value & _MASK32


class GuestMemory:
    """Bounds-checked reads and writes of one guest's linear memory."""

    def __init__(self, size: Callable[[], int], read: Callable[[int, int], bytes],
                 write: Callable[[int, bytes], None]) -> None:
        self._size = size
        self._read = read
        self._write = write

    @property
    def size(self) -> int:
        return self._size()

    def check(self, pointer: int, length: int, what: str) -> None:
        """Raise GuestFault unless ``length`` bytes at ``pointer`` are all in memory."""
        if length < 0:
            raise GuestFault(f"{what} length {length} is negative")
        size = self._size()
        if pointer < 0 or pointer + length > size:
            raise GuestFault(f"{what} pointer {pointer:#x} + {length} bytes is past the "
                             f"guest's memory ({size} bytes)")

    def read(self, pointer: int, length: int, what: str) -> bytes:
        self.check(pointer, length, what)
        return self._read(pointer, length) if length else b""

    def write(self, pointer: int, data: bytes, what: str) -> None:
        self.check(pointer, len(data), what)
        if data:
            self._write(pointer, data)

    def string(self, pointer: int, what: str) -> str:
        """The NUL-terminated string at ``pointer`` (at most MAX_STRING bytes)."""
        size = self._size()
        if pointer < 0 or pointer >= size:
            raise GuestFault(f"{what} pointer {pointer:#x} is past the guest's memory "
                             f"({size} bytes)")
        chunk = bytes(self._read(pointer, min(MAX_STRING + 1, size - pointer)))
        end = chunk.find(b"\0")
        if end < 0:
            if len(chunk) > MAX_STRING:
                raise GuestFault(f"{what} at {pointer:#x} is longer than {MAX_STRING} bytes")
            raise GuestFault(f"{what} at {pointer:#x} runs past the guest's memory "
                             f"({size} bytes) without a NUL")
        return chunk[:end].decode("utf-8", errors="replace")


class Guest(Protocol):
    """The running guest as one host call sees it (valid during that call only)."""

    @property
    def memory(self) -> GuestMemory: ...

    def call_sample(self, index: int, ctx: int, data: int, size: int) -> int:
        """Call ``int cb(void *ctx, void *data, size_t size)`` at ``index`` of the
        guest's function table; GuestFault when there is no such function or it traps,
        GuestStopped when a signal interrupted it."""
        ...
