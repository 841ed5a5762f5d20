"""What the running kernel offers, read from sysfs and tracefs or asked by syscall,
without libbpf: tracefs (mounted when missing), kprobe and uprobe support, online
CPUs, CPU-clock perf events, the memlock limit.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import resource
from typing import Final

from ... import log
from ...errors import LibbpfError


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
    nr = _PERF_EVENT_OPEN_NR.get(os.uname().machine)
    if nr is None:
        raise LibbpfError(f"perf_event_open: unknown syscall number on {os.uname().machine}",
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
                log.info("cannot raise RLIMIT_MEMLOCK: %s", exc)
