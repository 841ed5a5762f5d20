"""Errors of libbpf calls: errno text, the one-line error with libbpf's messages as
details, and what a failed load or attach means (a kernel limit, a missing privilege,
or the verifier's verdict, quoted from its log).
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import re
from typing import Final

from ...errors import EccError, KernelLimitError, LibbpfError
from .bindings import load_libbpf
from .kernel import _kernel_has_kprobes, _kernel_has_uprobes, _tracefs_events_dir

# The kernel-internal "not supported" errno that leaks out of bpf(2); Python's
# errno module does not know it and strerror() calls it "Unknown error 524".
ENOTSUPP: Final = 524
# libbpf's own error codes start here (enum libbpf_errno).
_LIBBPF_ERRNO_START: Final = 4000

# Lines of verifier / libbpf log quoted in an error message.
_LOG_TAIL_LINES: Final = 20


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
# Compiled (and cached) by re when a load fails, not at every start.
_FAILED_PROG_RES: Final = (
    r"prog '([^']+)': failed to load",
    r"prog '([^']+)': BPF program load failed",
    r"prog '([^']+)': -- BEGIN PROG LOAD LOG --",
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
        found = re.findall(pattern, text)
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

