"""A thin, typed binding to libbpf.so.1: the only module in ecc that uses ctypes.

Conventions, all taken from libbpf 1.x:

* Functions returning a pointer return NULL and set ``errno`` on failure;
  functions returning ``int`` return ``-errno``. Both become
  ``LibbpfError(f"{what}: {strerror}", errno)`` here, or ``KernelLimitError``
  when the errno and the program kind identify a known kernel limitation (see
  ``_load_error`` and ``_attach_error`` for the mapping).
* Every foreign function gets explicit ``argtypes`` and ``restype``
  (``_PROTOTYPES``); opaque pointers are ``c_void_p`` so a 64-bit pointer is
  never squeezed through a C ``int``.
* libbpf reports details (verifier logs, why an attach failed) only through
  its print callback. We install one (``_on_libbpf_print``) that formats each
  message with libc's ``vsnprintf`` and collects the messages of the current
  call, so errors can quote them and ``captured_log()`` can show them.

Object lifetime: ``BpfObject`` owns the ``bpf_object`` (closed by ``close()``,
``__exit__`` or, as a last resort, ``__del__``). ``Map`` and ``Program`` are
views into it and refuse to work once it is closed instead of touching freed
memory. ``Link``, ``RingBuffer`` and ``PerfBuffer`` own their own libbpf
objects and free them the same way.

Process-wide state is limited to the cached ``CDLL`` (with libc, for
``vsnprintf``) and the print-callback buffer, both in ``_STATE``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno as _errno
import logging
import os
import platform
import re
import resource
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from ecc.errors import EccError, KernelLimitError, LibbpfError, ToolNotFoundError

__all__ = [
    "BPF_TC_CUSTOM",
    "BPF_TC_EGRESS",
    "BPF_TC_INGRESS",
    "XDP_FLAGS_DRV_MODE",
    "XDP_FLAGS_HW_MODE",
    "XDP_FLAGS_SKB_MODE",
    "XDP_FLAGS_UPDATE_IF_NOEXIST",
    "BpfObject",
    "Link",
    "Map",
    "MapType",
    "PerfBuffer",
    "ProgType",
    "Program",
    "RingBuffer",
    "bump_memlock_rlimit",
    "captured_log",
    "libbpf_strerror",
    "libbpf_version",
    "load_libbpf",
    "num_possible_cpus",
    "read_iter",
]

_log = logging.getLogger("ecc.libbpf")

# --- constants from the kernel uapi and libbpf headers -----------------------

# enum libbpf_print_level
LIBBPF_WARN: Final = 0
LIBBPF_INFO: Final = 1
LIBBPF_DEBUG: Final = 2

# <linux/if_link.h>
XDP_FLAGS_UPDATE_IF_NOEXIST: Final = 1 << 0
XDP_FLAGS_SKB_MODE: Final = 1 << 1
XDP_FLAGS_DRV_MODE: Final = 1 << 2
XDP_FLAGS_HW_MODE: Final = 1 << 3
XDP_FLAGS_REPLACE: Final = 1 << 4
_XDP_FLAGS_MODES: Final = XDP_FLAGS_SKB_MODE | XDP_FLAGS_DRV_MODE | XDP_FLAGS_HW_MODE

# enum bpf_tc_attach_point (libbpf.h)
BPF_TC_INGRESS: Final = 1 << 0
BPF_TC_EGRESS: Final = 1 << 1
BPF_TC_CUSTOM: Final = 1 << 2

# The kernel-internal "not supported" errno that leaks out of bpf(2); Python's
# errno module does not know it and strerror() calls it "Unknown error 524".
ENOTSUPP: Final = 524
# libbpf's own error codes start here (enum libbpf_errno).
_LIBBPF_ERRNO_START: Final = 4000

# size of va_list as va_copy() copies it; see _format_va_list.
_VA_LIST_COPY_SIZE: Final = {"x86_64": 24, "AMD64": 24, "aarch64": 32, "arm64": 32}

# Lines of verifier / libbpf log quoted in an error message.
_LOG_TAIL_LINES: Final = 20


class ProgType:
    """enum bpf_prog_type values ecc needs by name (<linux/bpf.h>)."""

    SOCKET_FILTER: Final = 1
    KPROBE: Final = 2
    SCHED_CLS: Final = 3
    SCHED_ACT: Final = 4
    TRACEPOINT: Final = 5
    XDP: Final = 6
    PERF_EVENT: Final = 7
    CGROUP_SKB: Final = 8
    RAW_TRACEPOINT: Final = 17
    TRACING: Final = 26
    STRUCT_OPS: Final = 27
    EXT: Final = 28
    LSM: Final = 29
    SYSCALL: Final = 31


class MapType:
    """enum bpf_map_type values ecc needs by name (<linux/bpf.h>)."""

    HASH: Final = 1
    ARRAY: Final = 2
    PROG_ARRAY: Final = 3
    PERF_EVENT_ARRAY: Final = 4
    PERCPU_HASH: Final = 5
    PERCPU_ARRAY: Final = 6
    STACK_TRACE: Final = 7
    LRU_HASH: Final = 9
    LRU_PERCPU_HASH: Final = 10
    PERCPU_CGROUP_STORAGE: Final = 21
    RINGBUF: Final = 27


# Lookups on these return one value slot per possible CPU.
_PERCPU_MAP_TYPES: Final = frozenset(
    {
        MapType.PERCPU_HASH,
        MapType.PERCPU_ARRAY,
        MapType.LRU_PERCPU_HASH,
        MapType.PERCPU_CGROUP_STORAGE,
    }
)

# --- option structs, laid out exactly as libbpf 1.4's libbpf.h --------------
# libbpf reads only the first `sz` bytes of each, so a struct from an older
# header stays valid with a newer libbpf; `sz` must always be set.
# tests/unit/test_libbpf_binding.py checks sizes and offsets against gcc.


class _ObjectOpenOpts(ctypes.Structure):
    """struct bpf_object_open_opts (88 bytes)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
        # `__u32 :32;` — the removed attach_prog_fd; keeps kconfig at offset 40.
        ("_unused_attach_prog_fd", ctypes.c_uint32),
        ("kconfig", ctypes.c_char_p),
        ("btf_custom_path", ctypes.c_char_p),
        ("kernel_log_buf", ctypes.c_void_p),
        ("kernel_log_size", ctypes.c_size_t),
        ("kernel_log_level", ctypes.c_uint32),
        ("bpf_token_path", ctypes.c_char_p),
    ]


class _UprobeOpts(ctypes.Structure):
    """struct bpf_uprobe_opts (48 bytes)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("ref_ctr_offset", ctypes.c_size_t),
        ("bpf_cookie", ctypes.c_uint64),
        ("retprobe", ctypes.c_bool),
        ("func_name", ctypes.c_char_p),
        ("attach_mode", ctypes.c_int),  # enum probe_attach_mode; 0 = default
    ]


class _XdpAttachOpts(ctypes.Structure):
    """struct bpf_xdp_attach_opts (16 bytes)."""

    _fields_ = [("sz", ctypes.c_size_t), ("old_prog_fd", ctypes.c_int)]


class _TcHook(ctypes.Structure):
    """struct bpf_tc_hook (24 bytes)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("ifindex", ctypes.c_int),
        ("attach_point", ctypes.c_int),  # enum bpf_tc_attach_point
        ("parent", ctypes.c_uint32),
    ]


class _TcOpts(ctypes.Structure):
    """struct bpf_tc_opts (32 bytes)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("prog_fd", ctypes.c_int),
        ("flags", ctypes.c_uint32),
        ("prog_id", ctypes.c_uint32),
        ("handle", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
    ]


_StructT = TypeVar("_StructT", bound=ctypes.Structure)


def _opts(cls: type[_StructT], **values: Any) -> _StructT:
    """An options struct with `sz` set, as LIBBPF_OPTS() does in C."""
    return cls(sz=ctypes.sizeof(cls), **values)


# --- callbacks ----------------------------------------------------------------

# int (*libbpf_print_fn_t)(enum libbpf_print_level, const char *fmt, va_list)
# va_list is an array type on x86_64 (a pointer when passed) and a large
# struct passed by reference on aarch64: a c_void_p either way.
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
# int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)
_RB_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
# void (*perf_buffer_sample_fn)(void *ctx, int cpu, void *data, __u32 size)
_PB_SAMPLE_FN = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32
)
# void (*perf_buffer_lost_fn)(void *ctx, int cpu, __u64 cnt)
_PB_LOST_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64)

# --- prototypes ---------------------------------------------------------------

_P = ctypes.c_void_p
_I = ctypes.c_int
_U32 = ctypes.c_uint32
_U64 = ctypes.c_uint64
_SZ = ctypes.c_size_t
_S = ctypes.c_char_p
_B = ctypes.c_bool

# name: (restype, argtypes)
_PROTOTYPES: Final[dict[str, tuple[Any, list[Any]]]] = {
    "libbpf_major_version": (_U32, []),
    "libbpf_minor_version": (_U32, []),
    "libbpf_strerror": (_I, [_I, _P, _SZ]),
    "libbpf_set_print": (_P, [_PRINT_FN]),
    "libbpf_num_possible_cpus": (_I, []),
    # objects
    "bpf_object__open_mem": (_P, [_P, _SZ, ctypes.POINTER(_ObjectOpenOpts)]),
    "bpf_object__load": (_I, [_P]),
    "bpf_object__close": (None, [_P]),
    "bpf_object__name": (_S, [_P]),
    "bpf_object__btf_fd": (_I, [_P]),
    "bpf_object__btf": (_P, [_P]),
    "btf__type_cnt": (_U32, [_P]),
    "btf__type_by_id": (_P, [_P, _U32]),
    "btf__name_by_offset": (_S, [_P, _U32]),
    "bpf_object__next_map": (_P, [_P, _P]),
    "bpf_object__next_program": (_P, [_P, _P]),
    "bpf_object__find_map_by_name": (_P, [_P, _S]),
    "bpf_object__find_program_by_name": (_P, [_P, _S]),
    # maps
    "bpf_map__name": (_S, [_P]),
    "bpf_map__type": (_I, [_P]),
    "bpf_map__key_size": (_U32, [_P]),
    "bpf_map__value_size": (_U32, [_P]),
    "bpf_map__max_entries": (_U32, [_P]),
    "bpf_map__set_max_entries": (_I, [_P, _U32]),
    "bpf_map__fd": (_I, [_P]),
    "bpf_map__is_internal": (_B, [_P]),
    "bpf_map__initial_value": (_P, [_P, ctypes.POINTER(_SZ)]),
    "bpf_map__set_initial_value": (_I, [_P, _P, _SZ]),
    "bpf_map__lookup_elem": (_I, [_P, _P, _SZ, _P, _SZ, _U64]),
    "bpf_map__update_elem": (_I, [_P, _P, _SZ, _P, _SZ, _U64]),
    "bpf_map__delete_elem": (_I, [_P, _P, _SZ, _U64]),
    "bpf_map__get_next_key": (_I, [_P, _P, _P, _SZ]),
    # programs
    "bpf_program__name": (_S, [_P]),
    "bpf_program__section_name": (_S, [_P]),
    "bpf_program__type": (_I, [_P]),
    "bpf_program__fd": (_I, [_P]),
    "bpf_program__autoload": (_B, [_P]),
    "bpf_program__set_autoload": (_I, [_P, _B]),
    "bpf_program__attach": (_P, [_P]),
    "bpf_program__attach_xdp": (_P, [_P, _I]),
    "bpf_program__attach_perf_event": (_P, [_P, _I]),
    "bpf_program__attach_uprobe_opts": (_P, [_P, _I, _S, _SZ, ctypes.POINTER(_UprobeOpts)]),
    "bpf_program__attach_iter": (_P, [_P, _P]),
    # links
    "bpf_link__fd": (_I, [_P]),
    "bpf_link__destroy": (_I, [_P]),
    "bpf_iter_create": (_I, [_I]),
    # netlink attachments
    "bpf_xdp_attach": (_I, [_I, _I, _U32, ctypes.POINTER(_XdpAttachOpts)]),
    "bpf_xdp_detach": (_I, [_I, _U32, ctypes.POINTER(_XdpAttachOpts)]),
    "bpf_tc_hook_create": (_I, [ctypes.POINTER(_TcHook)]),
    "bpf_tc_hook_destroy": (_I, [ctypes.POINTER(_TcHook)]),
    "bpf_tc_attach": (_I, [ctypes.POINTER(_TcHook), ctypes.POINTER(_TcOpts)]),
    "bpf_tc_detach": (_I, [ctypes.POINTER(_TcHook), ctypes.POINTER(_TcOpts)]),
    # ring and perf buffers
    "ring_buffer__new": (_P, [_I, _RB_SAMPLE_FN, _P, _P]),
    "ring_buffer__add": (_I, [_P, _I, _RB_SAMPLE_FN, _P]),
    "ring_buffer__poll": (_I, [_P, _I]),
    "ring_buffer__consume": (_I, [_P]),
    "ring_buffer__epoll_fd": (_I, [_P]),
    "ring_buffer__free": (None, [_P]),
    "perf_buffer__new": (_P, [_I, _SZ, _PB_SAMPLE_FN, _PB_LOST_FN, _P, _P]),
    "perf_buffer__poll": (_I, [_P, _I]),
    "perf_buffer__consume": (_I, [_P]),
    "perf_buffer__epoll_fd": (_I, [_P]),
    "perf_buffer__free": (None, [_P]),
}

# Where Debian, Fedora and source installs put the library, after ctypes.util.
_SEARCH_PATHS: Final = (
    "/usr/lib/x86_64-linux-gnu/libbpf.so.1",
    "/usr/lib/aarch64-linux-gnu/libbpf.so.1",
    "/usr/lib64/libbpf.so.1",
    "/usr/lib/libbpf.so.1",
    "/usr/local/lib64/libbpf.so.1",
    "/usr/local/lib/libbpf.so.1",
)


# --- process-wide state ---------------------------------------------------------


@dataclass
class _State:
    """The cached libraries and the print-callback buffer (the only globals)."""

    lib: ctypes.CDLL | None = None
    lib_path: str | None = None
    libc: ctypes.CDLL | None = None
    # Kept referenced: libbpf holds the raw function pointer.
    print_cb: Any = None
    # Messages of the libbpf call in progress (see _Capture).
    chunks: list[str] = field(default_factory=list)
    # Format LIBBPF_DEBUG messages too (a kernel log was requested).
    want_debug: bool = False
    # The text of the most recent captured call (captured_log()).
    last_log: str = ""


_STATE = _State()


def load_libbpf(path: str | None = None) -> ctypes.CDLL:
    """Load libbpf.so.1 once per process, declare its prototypes, install the print hook.

    Without `path`, ctypes.util's search runs first, then the usual install
    directories. One libbpf per process: its print callback is process-wide,
    so asking for a different file after the first load is an error.
    """
    if _STATE.lib is not None:
        if path is not None and _STATE.lib_path not in {path, os.path.realpath(path)}:
            raise EccError(
                f"libbpf is already loaded from {_STATE.lib_path}; cannot also load {path}"
            )
        return _STATE.lib
    candidates = [path] if path is not None else _candidate_paths()
    lib: ctypes.CDLL | None = None
    tried: list[str] = []
    for cand in candidates:
        try:
            lib = ctypes.CDLL(cand, use_errno=True)
        except OSError as exc:
            tried.append(f"{cand} ({exc})")
            continue
        path = cand
        break
    if lib is None or path is None:
        raise ToolNotFoundError(
            "libbpf.so.1 not found (tried: "
            + ", ".join(tried or ["nothing"])
            + "); install the Debian package libbpf1: apt-get install libbpf1"
        )
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise EccError(
                f"{path} lacks {name}: ecc needs libbpf 1.x (Debian package libbpf1)"
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes
    major, minor = int(lib.libbpf_major_version()), int(lib.libbpf_minor_version())
    if major < 1:
        raise EccError(f"{path} is libbpf {major}.{minor}; ecc needs libbpf 1.x (package libbpf1)")
    libc_name = ctypes.util.find_library("c") or "libc.so.6"
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.vsnprintf.restype = ctypes.c_int
    libc.vsnprintf.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p]
    _STATE.libc = libc
    _STATE.print_cb = _PRINT_FN(_on_libbpf_print)
    lib.libbpf_set_print(_STATE.print_cb)
    _STATE.lib = lib
    # The file actually mapped, so a later request by another name for the
    # same file is accepted.
    _STATE.lib_path = _mapped_path(lib, libc) or path
    return lib


class _DlInfo(ctypes.Structure):
    """Dl_info of <dlfcn.h>, filled by dladdr()."""

    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def _mapped_path(lib: ctypes.CDLL, libc: ctypes.CDLL) -> str | None:
    """The real file the dynamic linker mapped for `lib` (dladdr on one of its symbols)."""
    dladdr = libc.dladdr
    dladdr.restype = ctypes.c_int
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    info = _DlInfo()
    address = ctypes.cast(lib.libbpf_major_version, ctypes.c_void_p)
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.path.realpath(os.fsdecode(info.dli_fname))


def _candidate_paths() -> list[str]:
    found = ctypes.util.find_library("bpf")
    # find_library may return libbpf.so.0 on old systems; the version check
    # after loading rejects it with a clear message.
    first = [found] if found else []
    return first + ["libbpf.so.1", *(p for p in _SEARCH_PATHS if os.path.exists(p))]


def libbpf_version() -> tuple[int, int]:
    """(major, minor) of the loaded libbpf."""
    lib = load_libbpf()
    return int(lib.libbpf_major_version()), int(lib.libbpf_minor_version())


# --- the print callback -----------------------------------------------------------


def _format_va_list(fmt: int, args: int) -> str:
    """printf-format libbpf's message with libc's vsnprintf.

    vsnprintf consumes `args`, so it can only be called once with it. To size
    the buffer exactly (verifier logs reach megabytes), we first format from a
    copy: on x86_64 and aarch64 va_copy() is a plain copy of the va_list
    object, which `args` points to. Elsewhere we format once into a fixed
    buffer and accept truncation.
    """
    libc = _STATE.libc
    if libc is None:  # pragma: no cover - the callback is installed after libc
        return ""
    copy_size = _VA_LIST_COPY_SIZE.get(platform.machine())
    if copy_size is not None:
        copy = ctypes.create_string_buffer(copy_size)
        ctypes.memmove(copy, args, copy_size)
        need = int(libc.vsnprintf(None, 0, fmt, copy))
        if need < 0:
            return ""
    else:
        need = 64 * 1024 - 1
    buf = ctypes.create_string_buffer(need + 1)
    libc.vsnprintf(buf, need + 1, fmt, args)
    return buf.value.decode("utf-8", "replace")


def _on_libbpf_print(level: int, fmt: int | None, args: int | None) -> int:
    """libbpf_print_fn_t: collect the message; never let an exception reach C."""
    try:
        if fmt is None or args is None:
            return 0
        # Debug messages are many (one per relocation); format them only when
        # someone will read them.
        if level >= LIBBPF_DEBUG and not (_STATE.want_debug or _log.isEnabledFor(logging.DEBUG)):
            return 0
        text = _format_va_list(fmt, args)
        _STATE.chunks.append(text)
        # libbpf messages end in "\n"; forwarded at DEBUG because every failure
        # that matters is raised with the relevant part of the log attached.
        _log.debug("%s", text.rstrip("\n"))
    except Exception:  # an exception must not unwind into libbpf
        return 0
    return 0


class _Capture:
    """Collect libbpf's messages for the duration of one libbpf call."""

    def __init__(self, *, debug: bool = False) -> None:
        self.text = ""
        self._debug = debug

    def __enter__(self) -> Self:
        _STATE.chunks.clear()
        _STATE.want_debug = self._debug
        return self

    def __exit__(self, *exc: object) -> None:
        self.text = "".join(_STATE.chunks)
        _STATE.chunks.clear()
        _STATE.want_debug = False
        _STATE.last_log = self.text


def captured_log() -> str:
    """libbpf's messages during the most recent libbpf call made by this module."""
    return _STATE.last_log


# --- errors ---------------------------------------------------------------------------


def libbpf_strerror(err: int) -> str:
    """Text for an errno or libbpf error code (sign ignored)."""
    err = abs(err)
    if err == ENOTSUPP:
        return "Operation not supported (ENOTSUPP)"
    if err >= _LIBBPF_ERRNO_START:
        lib = load_libbpf()
        buf = ctypes.create_string_buffer(256)
        lib.libbpf_strerror(err, buf, len(buf))
        return buf.value.decode("utf-8", "replace")
    return os.strerror(err)


def _errno_name(err: int) -> str:
    if err == ENOTSUPP:
        return "ENOTSUPP"
    return _errno.errorcode.get(err, str(err))


def _error(what: str, err: int, log: str = "") -> LibbpfError:
    err = abs(err) or _errno.EINVAL
    tail = _tail(log, 5)
    # The message stays one line; what libbpf printed goes above it as details.
    return LibbpfError(f"{what}: {libbpf_strerror(err)}", err,
                       details=f"libbpf said:\n{tail}" if tail else None)


def _ptr_errno() -> int:
    """errno after a NULL-returning libbpf 1.x call (EINVAL if it left none)."""
    return ctypes.get_errno() or _errno.EINVAL


def _tail(text: str, lines: int) -> str:
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


_BEGIN_LOG = "-- BEGIN PROG LOAD LOG --"
_END_LOG = "-- END PROG LOAD LOG --"
_FAILED_PROG_RES: Final = (
    re.compile(r"prog '([^']+)': failed to load"),
    re.compile(r"prog '([^']+)': BPF program load failed"),
    re.compile(r"prog '([^']+)': -- BEGIN PROG LOAD LOG --"),
)


def _verifier_log(text: str) -> str:
    """The last verifier log libbpf printed, without its markers."""
    end = text.rfind(_END_LOG)
    start = text.rfind(_BEGIN_LOG, 0, end if end >= 0 else len(text))
    if start < 0:
        return ""
    body = text[start + len(_BEGIN_LOG) : end if end >= 0 else len(text)]
    return body.strip("\n")


def _failed_program(text: str) -> str | None:
    for pattern in _FAILED_PROG_RES:
        found = pattern.findall(text)
        if found:
            return str(found[-1])
    return None


# Section prefixes of programs that need BPF trampolines (ftrace direct calls).
_TRAMPOLINE_SECTIONS: Final = (
    "fentry",
    "fexit",
    "fmod_ret",
    "lsm",
    "freplace",
    "struct_ops",
)
_KPROBE_SECTIONS: Final = ("kprobe", "kretprobe", "ksyscall", "kretsyscall")
_UPROBE_SECTIONS: Final = ("uprobe", "uretprobe")
_TRACEPOINT_SECTIONS: Final = ("tp", "tracepoint")
_NOT_SUPPORTED: Final = frozenset({_errno.EOPNOTSUPP, ENOTSUPP, _errno.ENOENT})


def _section_kind(section: str) -> str:
    """'kprobe' for 'kprobe/do_unlinkat', 'fentry' for 'fentry.s/x', ..."""
    return section.split("/", 1)[0].split(".", 1)[0]


def _tracefs_events_dir() -> str | None:
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.isdir(os.path.join(root, "events")):
            return root
    return None


def ensure_tracefs() -> str | None:
    """Mount tracefs at /sys/kernel/tracing when no tracefs is there and we are root.

    libbpf finds tracepoint ids and (legacy) probe events through tracefs, and a
    fresh machine may not have it mounted. Returns what was mounted, or None.
    """
    if _tracefs_events_dir() is not None or os.geteuid() != 0:
        return None
    target = "/sys/kernel/tracing"
    if not os.path.isdir(target):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_void_p]
    if libc.mount(b"nodev", target.encode(), b"tracefs", 0, None) != 0:
        return None
    return target


def _kernel_has_kprobes() -> bool:
    """Either the kprobe PMU (perf_event_open) or legacy tracefs kprobe_events."""
    if os.path.exists("/sys/bus/event_source/devices/kprobe/type"):
        return True
    root = _tracefs_events_dir()
    return root is not None and os.path.exists(os.path.join(root, "kprobe_events"))


def _kernel_has_uprobes() -> bool:
    if os.path.exists("/sys/bus/event_source/devices/uprobe/type"):
        return True
    root = _tracefs_events_dir()
    return root is not None and os.path.exists(os.path.join(root, "uprobe_events"))


def _load_error(obj_name: str, err: int, log: str, sections: dict[str, str]) -> EccError:
    """Turn a failed bpf_object__load into an error naming the program and the log.

    Kernel-limit mapping (root only; as non-root EPERM means "no privilege"):
      EPERM, ENOTSUPP or EOPNOTSUPP on a fentry/fexit/fmod_ret/lsm/freplace/
      struct_ops program -> KernelLimitError: no BPF trampoline support
      (observed on kernel 6.18 here: EPERM with an empty verifier log, while
      tp_btf programs of the same BPF_PROG_TYPE_TRACING load fine).
    Everything else is a LibbpfError carrying the errno.
    """
    err = abs(err) or _errno.EINVAL
    prog = _failed_program(log)
    section = sections.get(prog, "") if prog else ""
    where = f"program '{prog}' ({section})" if prog else f"BPF object '{obj_name}'"
    kind = _section_kind(section)
    if (
        prog
        and kind in _TRAMPOLINE_SECTIONS
        and err in {_errno.EPERM, ENOTSUPP, _errno.EOPNOTSUPP}
        and os.geteuid() == 0
    ):
        return KernelLimitError(
            f"{where}: this kernel refuses to load {kind} programs "
            f"({_errno_name(err)}: {libbpf_strerror(err)}, before verification); "
            "fentry/fexit/lsm programs need BPF trampoline support, which this kernel "
            "appears to lack. Use a kprobe, tracepoint or tp_btf program instead.",
            program=prog,
        )
    message = f"loading {where} failed: {libbpf_strerror(err)} ({_errno_name(err)})"
    if err == _errno.EPERM and os.geteuid() != 0:
        message += "; loading BPF needs root (or CAP_BPF with CAP_PERFMON/CAP_NET_ADMIN)"
    verifier = _verifier_log(log)
    details = None
    if verifier:
        details = "verifier log (tail):\n" + _tail(verifier, _LOG_TAIL_LINES)
    elif log.strip():
        details = "libbpf said:\n" + _tail(log, _LOG_TAIL_LINES)
    return LibbpfError(message, err, details=details)


def _attach_error(prog_name: str, section: str, what: str, err: int, log: str) -> EccError:
    """Turn a failed attach into an error; kernel limits become KernelLimitError.

    Mapping (decided from errno, section kind and what the kernel exposes):
      kprobe/kretprobe/ksyscall + ENOENT/EOPNOTSUPP/ENOTSUPP, with neither the
        kprobe PMU nor tracefs kprobe_events present -> "kprobes are not built
        in" (observed here: ENOENT from libbpf's legacy kprobe_events fallback).
      uprobe/uretprobe + the same errnos without uprobe support -> same for uprobes.
      tp/tracepoint + ENOENT with no tracefs events directory -> tracefs not mounted.
      fentry & co. + EPERM/ENOTSUPP/EOPNOTSUPP (as root) -> no BPF trampolines.
    Otherwise LibbpfError (e.g. ENOENT for a kprobe on a missing function).
    """
    err = abs(err) or _errno.EINVAL
    kind = _section_kind(section)
    where = f"program '{prog_name}' ({section or 'no section'})"
    limit: str | None = None
    if kind in _KPROBE_SECTIONS and err in _NOT_SUPPORTED and not _kernel_has_kprobes():
        limit = "this kernel cannot attach kprobes (kprobes are not built in)"
    elif kind in _UPROBE_SECTIONS and err in _NOT_SUPPORTED and not _kernel_has_uprobes():
        limit = "this kernel cannot attach uprobes (uprobes are not built in)"
    elif kind in _TRACEPOINT_SECTIONS and err == _errno.ENOENT and _tracefs_events_dir() is None:
        limit = (
            "tracefs is not mounted, so tracepoint ids cannot be read "
            "(mount -t tracefs nodev /sys/kernel/tracing)"
        )
    elif (
        kind in _TRAMPOLINE_SECTIONS
        and err in {_errno.EPERM, ENOTSUPP, _errno.EOPNOTSUPP}
        and os.geteuid() == 0
    ):
        limit = f"this kernel cannot attach {kind} programs (no BPF trampolines)"
    if limit is not None:
        return KernelLimitError(f"{where}: {limit} [{_errno_name(err)}]", program=prog_name)
    return _error(f"{where}: cannot {what}", err, log)


# --- objects ----------------------------------------------------------------------------


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


class Program:
    """A program of a BpfObject (a view; valid while the object is open)."""

    def __init__(self, obj: BpfObject, ptr: int) -> None:
        self._obj = obj
        self._lib = obj._lib
        self._ptr = ptr
        raw = self._lib.bpf_program__name(ptr)
        self.name: str = raw.decode() if raw else ""
        raw = self._lib.bpf_program__section_name(ptr)
        self.section_name: str = raw.decode() if raw else ""

    def _handle(self) -> int:
        self._obj._handle()
        return self._ptr

    @property
    def type(self) -> int:
        """enum bpf_prog_type (see ProgType)."""
        return int(self._lib.bpf_program__type(self._handle()))

    @property
    def fd(self) -> int:
        """The program's fd; the object must be loaded and the program autoloaded."""
        fd = int(self._lib.bpf_program__fd(self._handle()))
        if fd < 0:
            raise LibbpfError(f"program '{self.name}' is not loaded", _errno.EBADF)
        return fd

    def autoload(self) -> bool:
        return bool(self._lib.bpf_program__autoload(self._handle()))

    def set_autoload(self, on: bool) -> None:
        """Before load only: skip (or include) this program when the object loads."""
        rc = int(self._lib.bpf_program__set_autoload(self._handle(), on))
        if rc < 0:
            raise _error(f"setting autoload of program '{self.name}'", rc)

    def _link(self, what: str, call: Callable[[], int | None]) -> Link:
        """Run a bpf_program__attach_* call and wrap its bpf_link."""
        with _Capture() as cap:
            ptr = call()
            err = _ptr_errno()
        self._obj._note_log(cap.text)
        if not ptr:
            raise _attach_error(self.name, self.section_name, what, err, cap.text)
        return Link(int(ptr), f"{self.name} ({self.section_name})")

    def attach(self) -> Link:
        """bpf_program__attach: attach as the section name says (tp/..., uprobe/PATH:FN)."""
        handle = self._handle()
        return self._link("attach", lambda: self._lib.bpf_program__attach(handle))

    def attach_xdp(self, ifindex: int, flags: int = 0) -> Link:
        """Attach to network interface `ifindex`.

        flags == 0: a bpf_link (bpf_program__attach_xdp); the kernel picks the
        mode and the attachment goes away when the link is destroyed or the
        process exits. flags != 0 (XDP_FLAGS_SKB_MODE, _DRV_MODE, ...): the
        netlink attachment bpf_xdp_attach, because links take no mode flags;
        Link.destroy() detaches with bpf_xdp_detach, only if our program is
        still the one attached. A netlink attachment outlives the process if
        never destroyed; its Link has fd -1.
        """
        handle = self._handle()
        if flags == 0:
            return self._link(
                f"attach to ifindex {ifindex}",
                lambda: self._lib.bpf_program__attach_xdp(handle, ifindex),
            )
        prog_fd = self.fd
        with _Capture() as cap:
            rc = int(self._lib.bpf_xdp_attach(ifindex, prog_fd, flags, None))
        self._obj._note_log(cap.text)
        if rc < 0:
            raise _attach_error(
                self.name,
                self.section_name,
                f"attach to ifindex {ifindex} with XDP flags {flags:#x}",
                rc,
                cap.text,
            )
        lib = self._lib
        detach_flags = flags & _XDP_FLAGS_MODES

        def detach() -> None:
            opts = _opts(_XdpAttachOpts, old_prog_fd=prog_fd)
            rc = int(lib.bpf_xdp_detach(ifindex, detach_flags, ctypes.byref(opts)))
            if rc < 0 and rc != -_errno.EEXIST:
                raise _error(f"detaching XDP program from ifindex {ifindex}", rc)

        return Link(None, f"{self.name} (xdp on ifindex {ifindex})", detach=detach)

    def attach_perf_event(self, pfd: int) -> Link:
        """Attach to an open perf event fd (perf_event_open)."""
        handle = self._handle()
        return self._link(
            "attach to a perf event",
            lambda: self._lib.bpf_program__attach_perf_event(handle, pfd),
        )

    def attach_uprobe(
        self,
        retprobe: bool,
        pid: int,
        binary_path: str,
        func_offset: int = 0,
        func_name: str | None = None,
    ) -> Link:
        """bpf_program__attach_uprobe_opts.

        pid -1 traces every process, 0 this one. With `func_name`, libbpf
        resolves the symbol in `binary_path` and `func_offset` is relative to
        it; without, `func_offset` is a file offset.
        """
        handle = self._handle()
        opts = _opts(
            _UprobeOpts,
            retprobe=retprobe,
            func_name=func_name.encode() if func_name else None,
        )
        target = f"{binary_path}:{func_name or hex(func_offset)}"
        return self._link(
            f"attach {'uretprobe' if retprobe else 'uprobe'} to {target}",
            lambda: self._lib.bpf_program__attach_uprobe_opts(
                handle, pid, binary_path.encode(), func_offset, ctypes.byref(opts)
            ),
        )

    def attach_iter(self) -> Link:
        """Create the link of an iterator program; read it with read_iter()."""
        handle = self._handle()
        return self._link(
            "attach iterator", lambda: self._lib.bpf_program__attach_iter(handle, None)
        )

    def attach_tc(
        self,
        ifindex: int,
        attach_point: int = BPF_TC_INGRESS,
        *,
        parent: int = 0,
        handle: int = 0,
        priority: int = 0,
    ) -> Link:
        """Attach a SCHED_CLS program as a direct-action cls_bpf filter (netlink).

        Creates the clsact qdisc when it is missing (bpf_tc_hook_create) and
        then the filter (bpf_tc_attach). handle/priority 0 let the kernel pick.
        Link.destroy() removes the filter, and the qdisc too if we created it.
        attach_point is BPF_TC_INGRESS, BPF_TC_EGRESS or BPF_TC_CUSTOM (with `parent`).
        """
        prog_fd = self.fd
        lib = self._lib
        hook = _opts(_TcHook, ifindex=ifindex, attach_point=attach_point, parent=parent)
        where = f"tc hook {attach_point:#x} of ifindex {ifindex}"
        with _Capture() as cap:
            rc = int(lib.bpf_tc_hook_create(ctypes.byref(hook)))
        if rc < 0 and rc != -_errno.EEXIST:
            raise _attach_error(self.name, self.section_name, f"create {where}", rc, cap.text)
        created = rc == 0
        opts = _opts(_TcOpts, prog_fd=prog_fd, handle=handle, priority=priority)
        with _Capture() as cap:
            rc = int(lib.bpf_tc_attach(ctypes.byref(hook), ctypes.byref(opts)))
        self._obj._note_log(cap.text)
        if rc < 0:
            if created:
                _destroy_tc_hook(lib, ifindex)
            raise _attach_error(self.name, self.section_name, f"attach to {where}", rc, cap.text)
        # bpf_tc_detach wants exactly handle and priority, with the rest zero.
        got_handle, got_priority = int(opts.handle), int(opts.priority)

        def detach() -> None:
            detach_opts = _opts(_TcOpts, handle=got_handle, priority=got_priority)
            rc = int(lib.bpf_tc_detach(ctypes.byref(hook), ctypes.byref(detach_opts)))
            if created:
                _destroy_tc_hook(lib, ifindex)
            if rc < 0 and rc != -_errno.ENOENT:
                raise _error(f"detaching tc filter from {where}", rc)

        return Link(None, f"{self.name} (tc on ifindex {ifindex})", detach=detach)

    def __repr__(self) -> str:
        return f"<Program {self.name!r} ({self.section_name})>"


def _destroy_tc_hook(lib: ctypes.CDLL, ifindex: int) -> None:
    # Destroying needs both points set: it deletes the whole clsact qdisc.
    hook = _opts(_TcHook, ifindex=ifindex, attach_point=BPF_TC_INGRESS | BPF_TC_EGRESS)
    lib.bpf_tc_hook_destroy(ctypes.byref(hook))


class Link:
    """An attachment: a libbpf bpf_link, or a netlink (XDP/tc) attachment.

    destroy() detaches; it also runs from __exit__ and, as a last resort,
    __del__, so dropping the last reference detaches the program.
    """

    def __init__(
        self, ptr: int | None, description: str, *, detach: Callable[[], None] | None = None
    ) -> None:
        self._lib = load_libbpf()
        self._ptr = ptr
        self._detach = detach
        self.description = description

    @property
    def fd(self) -> int:
        """The link fd; -1 for a netlink attachment (no link object)."""
        if self._ptr is None:
            if self._detach is None:
                raise LibbpfError(f"link of {self.description} is destroyed", _errno.EBADF)
            return -1
        return int(self._lib.bpf_link__fd(self._ptr))

    @property
    def destroyed(self) -> bool:
        return self._ptr is None and self._detach is None

    def destroy(self) -> None:
        """Detach and free; idempotent."""
        ptr, self._ptr = self._ptr, None
        detach, self._detach = self._detach, None
        if ptr is not None:
            rc = int(self._lib.bpf_link__destroy(ptr))
            if rc < 0:
                raise _error(f"destroying link of {self.description}", rc)
        if detach is not None:
            detach()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.destroy()

    def __repr__(self) -> str:
        return f"<Link {self.description}{' destroyed' if self.destroyed else ''}>"


# perf_event_open(2), for perf_event programs: libbpf cannot attach them from
# a section name, a loader opens the events itself.
_PERF_EVENT_OPEN_NR: Final = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "ppc64le": 319,
                              "s390x": 331, "loongarch64": 241}
_PERF_TYPE_SOFTWARE: Final = 1
_PERF_COUNT_SW_CPU_CLOCK: Final = 0
_PERF_ATTR_FREQ_BIT: Final = 1 << 10
_PERF_FLAG_FD_CLOEXEC: Final = 1 << 3


class _PerfEventAttr(ctypes.Structure):
    # The leading fields of struct perf_event_attr; the rest stays zero, and
    # `size` says which version of the struct we speak (PERF_ATTR_SIZE_VER5).
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_freq", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("_rest", ctypes.c_uint8 * 64),
    ]


def online_cpus() -> list[int]:
    """CPUs listed in /sys/devices/system/cpu/online (e.g. "0-3,6")."""
    try:
        with open("/sys/devices/system/cpu/online") as fh:
            text = fh.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def open_cpu_clock_event(cpu: int, freq: int) -> int:
    """A software CPU-clock perf event on `cpu` sampling `freq` times a second; its fd."""
    nr = _PERF_EVENT_OPEN_NR.get(platform.machine())
    if nr is None:
        raise LibbpfError(f"perf_event_open: unknown syscall number on {platform.machine()}",
                          _errno.ENOSYS)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    attr = _PerfEventAttr(type=_PERF_TYPE_SOFTWARE, size=112, config=_PERF_COUNT_SW_CPU_CLOCK,
                          sample_freq=freq, flags=_PERF_ATTR_FREQ_BIT)
    fd = int(libc.syscall(ctypes.c_long(nr), ctypes.byref(attr), ctypes.c_int(-1),
                          ctypes.c_int(cpu), ctypes.c_int(-1),
                          ctypes.c_ulong(_PERF_FLAG_FD_CLOEXEC)))
    if fd < 0:
        err = ctypes.get_errno()
        raise LibbpfError(f"perf_event_open on CPU {cpu}: {os.strerror(err)}", err)
    return fd


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


# --- misc -------------------------------------------------------------------------------


def num_possible_cpus() -> int:
    """libbpf_num_possible_cpus (cached by libbpf)."""
    n = int(load_libbpf().libbpf_num_possible_cpus())
    if n < 0:
        raise _error("reading the number of possible CPUs", n)
    return n


def bump_memlock_rlimit() -> None:
    """Raise RLIMIT_MEMLOCK for kernels before 5.11, which charge BPF memory to it.

    Harmless (and unneeded) on kernels with memcg accounting; libbpf 1.x also
    does this itself when needed. Raises to unlimited when allowed, else to
    the hard limit; never fails, because on a modern kernel the limit does
    not matter and an error here would only hide the real one at load time.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY:
        return
    try:
        resource.setrlimit(
            resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        )
    except (OSError, ValueError):
        if hard != soft:
            try:
                resource.setrlimit(resource.RLIMIT_MEMLOCK, (hard, hard))
            except (OSError, ValueError) as exc:
                _log.debug("cannot raise RLIMIT_MEMLOCK: %s", exc)
