"""A thin, typed binding to libbpf.so.1: the only package in ecc that uses ctypes.

Conventions, all taken from libbpf 1.x:

* Functions returning a pointer return NULL and set ``errno`` on failure;
  functions returning ``int`` return ``-errno``. Both become
  ``LibbpfError(f"{what}: {strerror}", errno)`` here, or ``KernelLimitError``
  when the errno and the program kind identify a known kernel limitation (see
  ``_load_error`` and ``_attach_error`` in ``diagnosis``).
* Every foreign function gets explicit ``argtypes`` and ``restype``
  (``bindings._PROTOTYPES``).
* libbpf reports details (verifier logs, why an attach failed) only through
  its print callback; ``bindings`` installs one that collects the messages of
  the current call, so errors can quote them and ``captured_log()`` can show them.

The modules, each importing only those above it:

* ``bindings``: constants, option structs, callback types, prototypes, loading
  the library, the print callback and the process-wide state (``_STATE``).
* ``kernel``: what the kernel offers, read without libbpf (tracefs, kprobe and
  uprobe support, online CPUs, perf_event_open, the memlock limit).
* ``diagnosis``: libbpf errors as EccErrors, and what a failed load or attach means.
* ``programs``: ``Program`` and ``Link`` (attaching); ``objects``: ``BpfObject``, ``Map``.
* ``buffers``: ``RingBuffer``, ``PerfBuffer`` and ``read_iter``.

Importing from the package itself (``from ecc.run.libbpf import BpfObject``) is
the interface; the private names re-exported below are for the tests.
"""

from __future__ import annotations

from .bindings import _PROTOTYPES as _PROTOTYPES
from .bindings import (
    BPF_TC_CUSTOM,
    BPF_TC_EGRESS,
    BPF_TC_INGRESS,
    XDP_FLAGS_DRV_MODE,
    XDP_FLAGS_HW_MODE,
    XDP_FLAGS_SKB_MODE,
    XDP_FLAGS_UPDATE_IF_NOEXIST,
    MapType,
    ProgType,
    captured_log,
    libbpf_version,
    load_libbpf,
)
from .bindings import _ObjectOpenOpts as _ObjectOpenOpts
from .bindings import _opts as _opts
from .bindings import _TcHook as _TcHook
from .bindings import _TcOpts as _TcOpts
from .bindings import _UprobeOpts as _UprobeOpts
from .bindings import _XdpAttachOpts as _XdpAttachOpts
from .buffers import PerfBuffer, RingBuffer, read_iter
from .diagnosis import ENOTSUPP as ENOTSUPP
from .diagnosis import _attach_error as _attach_error
from .diagnosis import _errno_name as _errno_name
from .diagnosis import _error as _error
from .diagnosis import _failed_program as _failed_program
from .diagnosis import _load_error as _load_error
from .diagnosis import _section_kind as _section_kind
from .diagnosis import _tail as _tail
from .diagnosis import _verifier_log as _verifier_log
from .diagnosis import libbpf_strerror
from .kernel import bump_memlock_rlimit, ensure_tracefs, online_cpus, open_cpu_clock_event
from .objects import BpfObject, Map, num_possible_cpus
from .programs import HookBusy, Link, Program, xdp_program_id

__all__ = [
    "BPF_TC_CUSTOM",
    "BPF_TC_EGRESS",
    "BPF_TC_INGRESS",
    "XDP_FLAGS_DRV_MODE",
    "XDP_FLAGS_HW_MODE",
    "XDP_FLAGS_SKB_MODE",
    "XDP_FLAGS_UPDATE_IF_NOEXIST",
    "BpfObject",
    "HookBusy",
    "Link",
    "Map",
    "MapType",
    "PerfBuffer",
    "ProgType",
    "Program",
    "RingBuffer",
    "bump_memlock_rlimit",
    "captured_log",
    "ensure_tracefs",
    "libbpf_strerror",
    "libbpf_version",
    "load_libbpf",
    "num_possible_cpus",
    "online_cpus",
    "open_cpu_clock_event",
    "read_iter",
    "xdp_program_id",
]
