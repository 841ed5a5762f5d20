"""The libbpf.so.1 binding proper: constants, option structs, callback types, the
prototype table, loading the library, and the print callback that collects libbpf's
messages (the package's only process-wide state, ``_STATE``).

Every foreign function gets explicit ``argtypes`` and ``restype`` (``_PROTOTYPES``);
opaque pointers are ``c_void_p`` so a 64-bit pointer is never squeezed through a C
``int``. Messages are formatted with libc's ``vsnprintf`` and kept for the call in
progress, so errors can quote them and ``captured_log()`` can show them.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, Final, Self, TypeVar

from ...errors import EccError, ToolNotFoundError


def _logger() -> Any:
    """The ``ecc.libbpf`` logger once :mod:`logging` is imported (by ``-v`` or an
    application), else None: importing logging would slow every ``ecc run`` start."""
    logging = sys.modules.get("logging")
    return logging.getLogger("ecc.libbpf") if logging is not None else None

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
# enum bpf_tc_flags: replace the filter of the same handle and priority
BPF_TC_F_REPLACE: Final = 1 << 0

# size of va_list as va_copy() copies it; see _format_va_list.
_VA_LIST_COPY_SIZE: Final = {"x86_64": 24, "AMD64": 24, "aarch64": 32, "arm64": 32}


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
    CGROUP_SOCK: Final = 9
    LWT_IN: Final = 10
    LWT_OUT: Final = 11
    LWT_XMIT: Final = 12
    SOCK_OPS: Final = 13
    SK_SKB: Final = 14
    CGROUP_DEVICE: Final = 15
    SK_MSG: Final = 16
    RAW_TRACEPOINT: Final = 17
    CGROUP_SOCK_ADDR: Final = 18
    LWT_SEG6LOCAL: Final = 19
    LIRC_MODE2: Final = 20
    SK_REUSEPORT: Final = 21
    FLOW_DISSECTOR: Final = 22
    CGROUP_SYSCTL: Final = 23
    CGROUP_SOCKOPT: Final = 25
    TRACING: Final = 26
    STRUCT_OPS: Final = 27
    EXT: Final = 28
    LSM: Final = 29
    SK_LOOKUP: Final = 30
    SYSCALL: Final = 31
    NETFILTER: Final = 32


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
    "bpf_program__expected_attach_type": (_I, [_P]),
    "bpf_program__fd": (_I, [_P]),
    "bpf_program__autoload": (_B, [_P]),
    "bpf_program__set_autoload": (_I, [_P, _B]),
    "bpf_program__attach": (_P, [_P]),
    "bpf_program__attach_xdp": (_P, [_P, _I]),
    "bpf_program__attach_perf_event": (_P, [_P, _I]),
    "bpf_program__attach_uprobe_opts": (_P, [_P, _I, _S, _SZ, ctypes.POINTER(_UprobeOpts)]),
    "bpf_program__attach_iter": (_P, [_P, _P]),
    "bpf_program__attach_cgroup": (_P, [_P, _I]),
    # links
    "bpf_link__fd": (_I, [_P]),
    "bpf_link__destroy": (_I, [_P]),
    "bpf_iter_create": (_I, [_I]),
    # netlink attachments
    "bpf_xdp_attach": (_I, [_I, _I, _U32, ctypes.POINTER(_XdpAttachOpts)]),
    "bpf_xdp_detach": (_I, [_I, _U32, ctypes.POINTER(_XdpAttachOpts)]),
    "bpf_xdp_query_id": (_I, [_I, _I, ctypes.POINTER(_U32)]),
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


class _State:
    """The cached libraries and the print-callback buffer (the only globals)."""

    __slots__ = ("lib", "lib_path", "libc", "print_cb", "chunks", "want_debug", "last_log")

    def __init__(self) -> None:
        self.lib: ctypes.CDLL | None = None
        self.lib_path: str | None = None
        self.libc: ctypes.CDLL | None = None
        # Kept referenced: libbpf holds the raw function pointer.
        self.print_cb: Any = None
        # Messages of the libbpf call in progress (see _Capture).
        self.chunks: list[str] = []
        # Format LIBBPF_DEBUG messages too (a kernel log was requested).
        self.want_debug = False
        # The text of the most recent captured call (captured_log()).
        self.last_log = ""


_STATE = _State()


def load_libbpf(path: str | None = None) -> ctypes.CDLL:
    """Load libbpf.so.1 once per process, declare its prototypes, install the print hook.

    Without `path`, the dynamic linker's own search for libbpf.so.1 runs first,
    then ctypes.util's, then the usual install directories. One libbpf per
    process: its print callback is process-wide, so asking for a different file
    after the first load is an error.
    """
    if _STATE.lib is not None:
        if path is not None and _STATE.lib_path not in {path, os.path.realpath(path)}:
            raise EccError(
                f"libbpf is already loaded from {_STATE.lib_path}; cannot also load {path}"
            )
        return _STATE.lib
    candidates: Iterable[str] = [path] if path is not None else _candidate_paths()
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
    libc = _load_libc()
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


def _load_libc() -> ctypes.CDLL:
    # By its soname first: ctypes.util.find_library runs `ldconfig -p` in a
    # subprocess, which every `ecc run` would wait for.
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c") or "libc.so.6", use_errno=True)


def _candidate_paths() -> Iterator[str]:
    """Where libbpf may be, each looked up only when the one before did not load: the
    soname (what ctypes.util finds, without its ``ldconfig -p`` subprocess), then
    ctypes.util's answer, then the install directories."""
    yield "libbpf.so.1"
    from ctypes.util import find_library

    found = find_library("bpf")
    # find_library may return libbpf.so.0 on old systems; the version check
    # after loading rejects it with a clear message.
    if found and found != "libbpf.so.1":
        yield found
    yield from (p for p in _SEARCH_PATHS if os.path.exists(p))


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
    copy_size = _VA_LIST_COPY_SIZE.get(os.uname().machine)
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
        log = _logger()
        if level >= LIBBPF_DEBUG and not (_STATE.want_debug or (
                log is not None and log.isEnabledFor(10))):  # logging.DEBUG
            return 0
        text = _format_va_list(fmt, args)
        _STATE.chunks.append(text)
        # libbpf messages end in "\n"; forwarded at DEBUG because every failure
        # that matters is raised with the relevant part of the log attached.
        if log is not None:
            log.debug("%s", text.rstrip("\n"))
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
