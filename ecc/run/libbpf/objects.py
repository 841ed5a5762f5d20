"""A BPF object and its maps.

``BpfObject`` owns the ``bpf_object`` (closed by ``close()``, ``__exit__`` or, as a
last resort, ``__del__``). ``Map`` is a view into it that refuses to work once the
object is closed instead of touching freed memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import struct
from collections.abc import Iterator
from types import TracebackType
from typing import Self

from ...errors import LibbpfError
from .bindings import _PERCPU_MAP_TYPES, _Capture, _ObjectOpenOpts, _opts, load_libbpf
from .diagnosis import _error, _load_error, _ptr_errno
from .programs import Program


class BpfObject:
    """A libbpf bpf_object opened from memory; a context manager that closes it."""

    def __init__(self, ptr: int, data: ctypes.Array[ctypes.c_char], kernel_log_level: int) -> None:
        """Use open_mem(); this takes ownership of `ptr`."""
        self._lib = load_libbpf()
        self._ptr: int | None = ptr
        # libbpf keeps pointing into the ELF image (libelf reads it in place
        # until load), so the buffer must outlive the object.
        self._data = data
        self._kernel_log_level = kernel_log_level
        self._log = ""
        raw = self._lib.bpf_object__name(ptr)
        self.name: str = raw.decode() if raw else ""

    @classmethod
    def open_mem(
        cls,
        data: bytes,
        *,
        object_name: str,
        btf_custom_path: str | None = None,
        kernel_log_level: int = 0,
    ) -> BpfObject:
        """bpf_object__open_mem with `object_name` (which names internal maps).

        `btf_custom_path` replaces vmlinux BTF for CO-RE relocations.
        `kernel_log_level` > 0 asks the verifier for its log even on success;
        libbpf prints it through the callback, so it shows in captured_log().
        """
        lib = load_libbpf()
        if not data:
            raise LibbpfError(f"opening BPF object '{object_name}': empty object", _errno.EINVAL)
        buf = ctypes.create_string_buffer(data, len(data))
        opts = _opts(
            _ObjectOpenOpts,
            object_name=object_name.encode(),
            btf_custom_path=btf_custom_path.encode() if btf_custom_path else None,
            kernel_log_level=kernel_log_level,
        )
        with _Capture(debug=kernel_log_level > 0) as cap:
            ptr = lib.bpf_object__open_mem(buf, len(data), ctypes.byref(opts))
            err = _ptr_errno()
        if not ptr:
            raise _error(f"opening BPF object '{object_name}'", err, cap.text)
        obj = cls(int(ptr), buf, kernel_log_level)
        obj._log = cap.text
        return obj

    # context manager and cleanup

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Last resort only; during interpreter shutdown anything may be gone.
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:
        """bpf_object__close; maps and programs of this object stop working."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            self._lib.bpf_object__close(ptr)

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def _handle(self) -> int:
        if self._ptr is None:
            raise LibbpfError(f"BPF object '{self.name}' is closed", _errno.EBADF)
        return self._ptr

    def captured_log(self) -> str:
        """libbpf's messages during this object's most recent open, load or attach."""
        return self._log

    # contents

    def maps(self) -> list[Map]:
        """All maps, in libbpf's order (.maps first, then internal maps)."""
        handle = self._handle()
        out: list[Map] = []
        ptr = self._lib.bpf_object__next_map(handle, None)
        while ptr:
            out.append(Map(self, int(ptr)))
            ptr = self._lib.bpf_object__next_map(handle, ptr)
        return out

    def programs(self) -> list[Program]:
        """All programs, in libbpf's order (section index, then offset)."""
        handle = self._handle()
        out: list[Program] = []
        ptr = self._lib.bpf_object__next_program(handle, None)
        while ptr:
            out.append(Program(self, int(ptr)))
            ptr = self._lib.bpf_object__next_program(handle, ptr)
        return out

    def find_map(self, name: str) -> Map | None:
        ptr = self._lib.bpf_object__find_map_by_name(self._handle(), name.encode())
        return Map(self, int(ptr)) if ptr else None

    def find_program(self, name: str) -> Program | None:
        ptr = self._lib.bpf_object__find_program_by_name(self._handle(), name.encode())
        return Program(self, int(ptr)) if ptr else None

    @property
    def btf_fd(self) -> int:
        """fd of the object's BTF in the kernel (after load), or -1."""
        fd = int(self._lib.bpf_object__btf_fd(self._handle()))
        return fd if fd >= 0 else -1

    def btf_type(self, type_id: int) -> tuple[int, str, int] | None:
        """(kind, name, vlen) of a type in the object's BTF as libbpf reads it, or None.

        libbpf is the independent judge of the type ids a package names.
        """
        btf = self._lib.bpf_object__btf(self._handle())
        if not btf or type_id <= 0 or type_id >= int(self._lib.btf__type_cnt(btf)):
            return None
        ptr = self._lib.btf__type_by_id(btf, type_id)
        if not ptr:
            return None
        name_off, info, _ = struct.unpack("=III", ctypes.string_at(ptr, 12))
        raw = self._lib.btf__name_by_offset(btf, name_off)
        return (info >> 24) & 0x1F, raw.decode() if raw else "", info & 0xFFFF

    def load(self) -> None:
        """bpf_object__load: create maps, load programs.

        On failure the error names the failing program and quotes the tail of
        the verifier log (full text in captured_log()).
        """
        handle = self._handle()
        sections = {p.name: p.section_name for p in self.programs()}
        with _Capture(debug=self._kernel_log_level > 0) as cap:
            rc = int(self._lib.bpf_object__load(handle))
        self._log = cap.text
        if rc < 0:
            raise _load_error(self.name, rc, cap.text, sections)

    def _note_log(self, text: str) -> None:
        self._log = text

    def __repr__(self) -> str:
        state = "closed" if self._ptr is None else "open"
        return f"<BpfObject {self.name!r} {state}>"


class Map:
    """A map of a BpfObject (a view; valid while the object is open)."""

    def __init__(self, obj: BpfObject, ptr: int) -> None:
        self._obj = obj
        self._lib = obj._lib
        self._ptr = ptr
        raw = self._lib.bpf_map__name(ptr)
        self.name: str = raw.decode() if raw else ""

    def _handle(self) -> int:
        self._obj._handle()
        return self._ptr

    @property
    def type(self) -> int:
        return int(self._lib.bpf_map__type(self._handle()))

    @property
    def key_size(self) -> int:
        return int(self._lib.bpf_map__key_size(self._handle()))

    @property
    def value_size(self) -> int:
        return int(self._lib.bpf_map__value_size(self._handle()))

    @property
    def max_entries(self) -> int:
        return int(self._lib.bpf_map__max_entries(self._handle()))

    def set_max_entries(self, n: int) -> None:
        """Before load only (libbpf returns EBUSY after)."""
        rc = int(self._lib.bpf_map__set_max_entries(self._handle(), n))
        if rc < 0:
            raise _error(f"setting max_entries of map '{self.name}'", rc)

    @property
    def fd(self) -> int:
        """The map's fd; the object must be loaded."""
        fd = int(self._lib.bpf_map__fd(self._handle()))
        if fd < 0:
            raise LibbpfError(
                f"map '{self.name}' has no fd: BPF object '{self._obj.name}' is not loaded",
                _errno.EBADF,
            )
        return fd

    def is_internal(self) -> bool:
        """True for the maps libbpf makes for .data/.rodata/.bss/.kconfig."""
        return bool(self._lib.bpf_map__is_internal(self._handle()))

    @property
    def is_percpu(self) -> bool:
        return self.type in _PERCPU_MAP_TYPES

    def initial_value(self) -> bytes | None:
        """bpf_map__initial_value: the section image of an internal map, else None.

        This is libbpf's copy, the one load() writes into the new map. libbpf
        1.4 does not remap it onto the kernel map at load (only skeletons
        do), so after load read the live values with lookup(key 0) instead.
        """
        size = ctypes.c_size_t(0)
        ptr = self._lib.bpf_map__initial_value(self._handle(), ctypes.byref(size))
        if not ptr:
            return None
        return ctypes.string_at(ptr, size.value)

    def set_initial_value(self, data: bytes) -> None:
        """bpf_map__set_initial_value: before load; `data` must be value_size long."""
        handle = self._handle()
        if len(data) != self.value_size:
            raise ValueError(
                f"initial value of map '{self.name}' must be {self.value_size} bytes, "
                f"got {len(data)}"
            )
        rc = int(self._lib.bpf_map__set_initial_value(handle, data, len(data)))
        if rc < 0:
            raise _error(f"setting the initial value of map '{self.name}'", rc)

    # element access (after load)

    @property
    def value_buffer_size(self) -> int:
        """Bytes a lookup returns: per-CPU maps hold round_up(value_size, 8) per possible CPU."""
        if self.is_percpu:
            return ((self.value_size + 7) & ~7) * num_possible_cpus()
        return self.value_size

    def split_percpu(self, value: bytes) -> list[bytes]:
        """Split a per-CPU lookup result into one value_size slice per CPU."""
        stride = (self.value_size + 7) & ~7
        return [value[i : i + self.value_size] for i in range(0, len(value), stride)]

    def _check_key(self, key: bytes) -> None:
        if len(key) != self.key_size:
            raise ValueError(
                f"key of map '{self.name}' must be {self.key_size} bytes, got {len(key)}"
            )

    def lookup(self, key: bytes) -> bytes | None:
        """The value stored under `key`, or None when there is none."""
        handle = self._handle()
        self._check_key(key)
        size = self.value_buffer_size
        value = ctypes.create_string_buffer(size)
        rc = int(self._lib.bpf_map__lookup_elem(handle, key, len(key), value, size, 0))
        if rc == -_errno.ENOENT:
            return None
        if rc < 0:
            raise _error(f"looking up a key in map '{self.name}'", rc)
        return value.raw

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        """Store `value` (value_buffer_size bytes) under `key`; flags BPF_ANY/NOEXIST/EXIST."""
        handle = self._handle()
        self._check_key(key)
        if len(value) != self.value_buffer_size:
            raise ValueError(
                f"value for map '{self.name}' must be {self.value_buffer_size} bytes, "
                f"got {len(value)}"
            )
        rc = int(self._lib.bpf_map__update_elem(handle, key, len(key), value, len(value), flags))
        if rc < 0:
            raise _error(f"updating map '{self.name}'", rc)

    def delete(self, key: bytes) -> bool:
        """Delete `key`; False if it was not there."""
        handle = self._handle()
        self._check_key(key)
        rc = int(self._lib.bpf_map__delete_elem(handle, key, len(key), 0))
        if rc == -_errno.ENOENT:
            return False
        if rc < 0:
            raise _error(f"deleting from map '{self.name}'", rc)
        return True

    def keys(self) -> Iterator[bytes]:
        """Every key, in the kernel's order (bpf_map__get_next_key)."""
        handle = self._handle()
        size = self.key_size
        cur: ctypes.Array[ctypes.c_char] | None = None
        nxt = ctypes.create_string_buffer(size)
        while True:
            rc = int(self._lib.bpf_map__get_next_key(handle, cur, nxt, size))
            if rc == -_errno.ENOENT:
                return
            if rc < 0:
                raise _error(f"iterating map '{self.name}'", rc)
            yield nxt.raw
            cur = ctypes.create_string_buffer(nxt.raw, size)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs; keys deleted while iterating are skipped."""
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def __repr__(self) -> str:
        return f"<Map {self.name!r}>"


def num_possible_cpus() -> int:
    """libbpf_num_possible_cpus (cached by libbpf)."""
    n = int(load_libbpf().libbpf_num_possible_cpus())
    if n < 0:
        raise _error("reading the number of possible CPUs", n)
    return n

