"""Programs of a BPF object and their attachments.

``Program`` is a view into its ``BpfObject`` (valid while the object is open).
``Link`` owns its attachment, a libbpf ``bpf_link`` or a netlink XDP/tc attachment,
and detaches it on ``destroy()``, ``__exit__`` or, as a last resort, ``__del__``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

from ...errors import LibbpfError
from .bindings import (
    _U32,
    _XDP_FLAGS_MODES,
    BPF_TC_EGRESS,
    BPF_TC_F_REPLACE,
    BPF_TC_INGRESS,
    XDP_FLAGS_UPDATE_IF_NOEXIST,
    _Capture,
    _opts,
    _TcHook,
    _TcOpts,
    _UprobeOpts,
    _XdpAttachOpts,
    load_libbpf,
)
from .diagnosis import _attach_error, _error, _ptr_errno
from .kernel import online_cpus, open_cpu_clock_event

if TYPE_CHECKING:
    from .objects import BpfObject


class HookBusy(LibbpfError):
    """The XDP or tc hook already holds another program (``holder``: its id, 0 when
    the kernel does not say); attaching again with ``replace=True`` takes its place."""

    def __init__(self, message: str, errno: int, holder: int = 0) -> None:
        super().__init__(message, errno)
        self.holder = holder


def xdp_program_id(ifindex: int) -> int:
    """The id of the XDP program attached to ``ifindex`` in any mode; 0 for none."""
    prog_id = _U32(0)
    rc = int(load_libbpf().bpf_xdp_query_id(ifindex, 0, ctypes.byref(prog_id)))
    if rc < 0:
        raise _error(f"querying the XDP program of ifindex {ifindex}", rc)
    return int(prog_id.value)


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
    def expected_attach_type(self) -> int:
        """enum bpf_attach_type libbpf gives the program from its section name."""
        return int(self._lib.bpf_program__expected_attach_type(self._handle()))

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

    def attach_xdp(self, ifindex: int, flags: int = 0, *, replace: bool = False) -> Link:
        """Attach to network interface `ifindex`.

        flags == 0: a bpf_link (bpf_program__attach_xdp); the kernel picks the
        mode and the attachment goes away when the link is destroyed or the
        process exits. flags != 0 (XDP_FLAGS_SKB_MODE, _DRV_MODE, ...): the
        netlink attachment bpf_xdp_attach, because links take no mode flags;
        Link.destroy() detaches with bpf_xdp_detach, only if our program is
        still the one attached. A netlink attachment outlives the process if
        never destroyed; its Link has fd -1.

        A hook that already holds a program raises :class:`HookBusy`. With
        ``replace``, a program attached there through netlink is replaced (a
        netlink attachment of ours, flags without UPDATE_IF_NOEXIST); one held
        by another process's link cannot be, and stays ``HookBusy``.
        """
        handle = self._handle()
        if flags == 0 and not replace:
            try:
                return self._link(
                    f"attach to ifindex {ifindex}",
                    lambda: self._lib.bpf_program__attach_xdp(handle, ifindex),
                )
            except LibbpfError as exc:
                raise self._busy_xdp(ifindex, exc) from None
        prog_fd = self.fd
        if replace:
            flags &= ~XDP_FLAGS_UPDATE_IF_NOEXIST
        with _Capture() as cap:
            rc = int(self._lib.bpf_xdp_attach(ifindex, prog_fd, flags, None))
        self._obj._note_log(cap.text)
        if rc < 0:
            error = _attach_error(
                self.name,
                self.section_name,
                f"attach to ifindex {ifindex} with XDP flags {flags:#x}",
                rc,
                cap.text,
            )
            if isinstance(error, LibbpfError):
                raise self._busy_xdp(ifindex, error) from None
            raise error
        lib = self._lib
        detach_flags = flags & _XDP_FLAGS_MODES

        def detach() -> None:
            opts = _opts(_XdpAttachOpts, old_prog_fd=prog_fd)
            rc = int(lib.bpf_xdp_detach(ifindex, detach_flags, ctypes.byref(opts)))
            if rc < 0 and rc != -_errno.EEXIST:
                raise _error(f"detaching XDP program from ifindex {ifindex}", rc)

        return Link(None, f"{self.name} (xdp on ifindex {ifindex})", detach=detach)

    def _busy_xdp(self, ifindex: int, exc: LibbpfError) -> LibbpfError:
        """``exc`` as HookBusy when the hook holds another program (the kernel
        says EBUSY or EEXIST), else as it is."""
        if exc.errno not in (_errno.EBUSY, _errno.EEXIST):
            return exc
        try:
            holder = xdp_program_id(ifindex)
        except LibbpfError:
            holder = 0
        held = f"program id {holder}" if holder else "another program"
        return HookBusy(f"program '{self.name}' ({self.section_name}): the XDP hook of "
                        f"ifindex {ifindex} already holds {held}", exc.errno, holder)

    def attach_cgroup(self, cgroup_path: str) -> Link:
        """bpf_program__attach_cgroup to the cgroup (v2) folder ``cgroup_path``."""
        try:
            cgroup_fd = os.open(cgroup_path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise LibbpfError(f"program '{self.name}' ({self.section_name}): cannot open "
                              f"cgroup {cgroup_path}: {exc.strerror}", exc.errno or 0) from None
        handle = self._handle()
        try:
            # The link keeps its own reference to the cgroup: the fd is ours to close.
            return self._link(f"attach to cgroup {cgroup_path}",
                              lambda: self._lib.bpf_program__attach_cgroup(handle, cgroup_fd))
        finally:
            os.close(cgroup_fd)

    def attach_perf_event(self, pfd: int) -> Link:
        """Attach to an open perf event fd (perf_event_open)."""
        handle = self._handle()
        return self._link(
            "attach to a perf event",
            lambda: self._lib.bpf_program__attach_perf_event(handle, pfd),
        )

    def attach_cpu_clock(self, freq: int) -> list[Link]:
        """Attach to a CPU-clock perf event of ``freq`` Hz on every online CPU (how a
        ``perf_event`` program samples); all or none: a failure detaches the others.
        The links own the event fds: libbpf closes them when a link is destroyed."""
        links: list[Link] = []
        try:
            for cpu in online_cpus():
                fd = open_cpu_clock_event(cpu, freq)
                try:
                    links.append(self.attach_perf_event(fd))
                except BaseException:
                    os.close(fd)
                    raise
        except BaseException:
            for link in links:
                link.destroy()
            raise
        return links

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
        replace: bool = False,
    ) -> Link:
        """Attach a SCHED_CLS program as a direct-action cls_bpf filter (netlink).

        Creates the clsact qdisc when it is missing (bpf_tc_hook_create) and
        then the filter (bpf_tc_attach). handle/priority 0 let the kernel pick.
        Link.destroy() removes the filter, and the qdisc too if we created it.
        attach_point is BPF_TC_INGRESS, BPF_TC_EGRESS or BPF_TC_CUSTOM (with `parent`).
        A filter of the same handle and priority already there raises
        :class:`HookBusy`, unless ``replace`` (then ours takes its place).
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
        opts = _opts(_TcOpts, prog_fd=prog_fd, handle=handle, priority=priority,
                     flags=BPF_TC_F_REPLACE if replace else 0)
        with _Capture() as cap:
            rc = int(lib.bpf_tc_attach(ctypes.byref(hook), ctypes.byref(opts)))
        self._obj._note_log(cap.text)
        if rc < 0:
            if created:
                _destroy_tc_hook(lib, ifindex)
            if rc == -_errno.EEXIST:
                point = {BPF_TC_INGRESS: "ingress", BPF_TC_EGRESS: "egress"}.get(
                    attach_point, f"{attach_point:#x}")
                raise HookBusy(f"program '{self.name}' ({self.section_name}): the tc {point} "
                               f"hook of ifindex {ifindex} already holds a filter with handle "
                               f"{handle} and priority {priority}", _errno.EEXIST)
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
