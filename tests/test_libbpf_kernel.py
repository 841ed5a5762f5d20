"""ecc.run.libbpf against the real libbpf.so.1 and the running kernel.

Every test here loads BPF programs, so it needs root, libbpf.so.1, clang-19,
gcc and bpftool (the capabilities of tests/conftest.py; each skip names what is
missing, and ECC_REQUIRE turns it into a failure). The tiny BPF programs live in
tests/data/libbpf/ and are compiled once per session into a temporary
directory. A test that asserts a kernel limitation (no kprobes, no BPF
trampolines) skips with "kernel limit absent: ..." on a kernel without it.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import resource
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import needs

from ecc.errors import KernelLimitError, LibbpfError
from ecc.run import libbpf as L

DATA = Path(__file__).resolve().parent / "data" / "libbpf"
EVENT = struct.Struct("<iii16s")  # struct event in tests/data/libbpf/event.h
Event = tuple[int, int, int, bytes]  # pid, ppid, magic, comm
LO_IFINDEX = 1


def _load_build_helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ecc_test_libbpf_build", DATA / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build_helper()


# Root and a loadable libbpf (kernel), clang-19 and gcc to compile the programs, the
# kernel's BTF dumped as C by bpftool for their vmlinux.h. Probed in tests/conftest.py:
# a skip names what is absent, and anything else that goes wrong while probing fails.
pytestmark = [
    pytest.mark.kernel,
    pytest.mark.clang,
    needs("gcc", "bpftool", "kernel-btf"),
    pytest.mark.usefixtures("kernel"),  # mounts tracefs and bpffs
]


@pytest.fixture(scope="module")
def objs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """name -> object bytes for every tests/data/libbpf/*.bpf.c."""
    out = tmp_path_factory.mktemp("libbpf-objs")
    paths = build.compile_all(build.all_bpf_sources(), out)
    return {name: path.read_bytes() for name, path in paths.items()}


@pytest.fixture
def open_obj(objs: dict[str, bytes]) -> Iterator[Callable[..., L.BpfObject]]:
    """Open a test object by name; every object opened is closed at teardown."""
    opened: list[L.BpfObject] = []

    def _open(name: str, object_name: str | None = None, kernel_log_level: int = 0) -> L.BpfObject:
        obj = L.BpfObject.open_mem(
            objs[name],
            object_name=object_name or f"{name}_bpf",
            kernel_log_level=kernel_log_level,
        )
        opened.append(obj)
        return obj

    yield _open
    for obj in opened:
        obj.close()


def _exec_true() -> int:
    """Run /bin/true as our child (its parent tgid is us); returns its pid."""
    proc = subprocess.Popen(["/bin/true"])
    proc.wait()
    return proc.pid


def _poll_until(poll: Callable[[int], int], done: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        poll(50)


def _internal(obj: L.BpfObject, section: str) -> L.Map | None:
    """The internal map of `section` (libbpf names it <obj_name prefix><section>)."""
    found = [m for m in obj.maps() if m.is_internal() and m.name.endswith(section)]
    return found[0] if len(found) == 1 else None


def _event(data: bytes) -> Event:
    pid, ppid, magic, comm = EVENT.unpack(data[: EVENT.size])
    return int(pid), int(ppid), int(magic), bytes(comm)


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


# --- open, names, layout ---------------------------------------------------------------


def test_open_mem_names_maps_like_libbpf(open_obj: Callable[..., L.BpfObject]) -> None:
    obj = open_obj("ringbuf", "foo_bpf")
    assert obj.name == "foo_bpf"
    names = [m.name for m in obj.maps()]
    assert names == ["events", "foo_bpf.rodata", "foo_bpf.data", "foo_bpf.bss"]
    for name in names:
        found = obj.find_map(name)
        assert found is not None and found.name == name
    assert obj.find_map("nope") is None

    events = obj.find_map("events")
    assert events is not None
    assert events.type == L.MapType.RINGBUF
    assert events.max_entries == 64 * 1024
    assert not events.is_internal()
    assert events.initial_value() is None

    rodata = obj.find_map("foo_bpf.rodata")
    data = obj.find_map("foo_bpf.data")
    assert rodata is not None and data is not None
    assert rodata.is_internal() and rodata.type == L.MapType.ARRAY
    assert (rodata.key_size, rodata.value_size, rodata.max_entries) == (4, 4, 1)
    assert rodata.initial_value() == _u32(0)
    assert data.initial_value() == _u32(42)

    progs = obj.programs()
    assert [(p.name, p.section_name) for p in progs] == [
        ("handle_exec", "tp/sched/sched_process_exec")
    ]
    prog = obj.find_program("handle_exec")
    assert prog is not None and prog.type == L.ProgType.TRACEPOINT and prog.autoload()
    assert obj.find_program("nope") is None


def test_long_object_name_is_truncated_like_libbpf(open_obj: Callable[..., L.BpfObject]) -> None:
    obj = open_obj("ringbuf", "simple_prog_3_bpf")
    assert [m.name for m in obj.maps() if m.is_internal()] == [
        "simple_p.rodata",
        "simple_p.data",
        "simple_p.bss",
    ]


def test_fd_before_load_and_use_after_close_raise(open_obj: Callable[..., L.BpfObject]) -> None:
    obj = open_obj("ringbuf")
    events = obj.find_map("events")
    prog = obj.find_program("handle_exec")
    assert events is not None and prog is not None
    with pytest.raises(LibbpfError, match="not loaded"):
        _ = events.fd
    with pytest.raises(LibbpfError, match="not loaded"):
        _ = prog.fd
    obj.close()
    obj.close()  # idempotent
    with pytest.raises(LibbpfError, match="closed"):
        obj.maps()
    with pytest.raises(LibbpfError, match="closed"):
        _ = events.value_size
    with pytest.raises(LibbpfError, match="closed"):
        prog.attach()


def test_open_garbage_raises_libbpf_error() -> None:
    with pytest.raises(LibbpfError) as info:
        L.BpfObject.open_mem(b"\x7fELF" + b"\0" * 60, object_name="junk")
    assert info.value.errno != 0
    assert "junk" in str(info.value)


def test_set_initial_value_checks_size(open_obj: Callable[..., L.BpfObject]) -> None:
    rodata = _internal(open_obj("ringbuf"), ".rodata")
    assert rodata is not None
    with pytest.raises(ValueError, match="4 bytes"):
        rodata.set_initial_value(b"\0" * 8)


# --- ring buffer, perf buffer, globals -----------------------------------------------


def _ringbuf_events(
    open_obj: Callable[..., L.BpfObject], ppid: int, wait: float
) -> tuple[list[Event], int, L.BpfObject]:
    obj = open_obj("ringbuf")
    rodata = _internal(obj, ".rodata")
    assert rodata is not None
    rodata.set_initial_value(_u32(ppid))
    obj.load()
    seen: list[Event] = []
    events = obj.find_map("events")
    prog = obj.find_program("handle_exec")
    assert events is not None and prog is not None
    with L.RingBuffer(events, lambda data: seen.append(_event(data))) as rb:
        with prog.attach():
            child = _exec_true()
            _poll_until(rb.poll, lambda: any(e[0] == child for e in seen), wait)
        rb.consume()
    return seen, child, obj


def test_ring_buffer_gets_event_filtered_by_rodata(
    open_obj: Callable[..., L.BpfObject],
) -> None:
    seen, child, obj = _ringbuf_events(open_obj, os.getpid(), 2.0)
    mine = [e for e in seen if e[0] == child]
    assert mine, f"no exec event for pid {child}; got {seen}"
    pid, ppid, magic, comm = mine[0]
    assert ppid == os.getpid()
    assert magic == 42  # from .data
    assert comm.rstrip(b"\0") == b"true"
    # the filter is in .rodata: every event is from one of our children
    assert all(e[1] == os.getpid() for e in seen)
    # .bss after load: the kernel's copy is read with a lookup of key 0;
    # libbpf 1.4's initial_value() stays the pre-load image.
    bss = _internal(obj, ".bss")
    assert bss is not None and bss.fd >= 0
    live = bss.lookup(_u32(0))
    assert live is not None and struct.unpack("<i", live)[0] >= 1


def test_ring_buffer_filter_excludes_other_parents(
    open_obj: Callable[..., L.BpfObject],
) -> None:
    seen, child, _ = _ringbuf_events(open_obj, 0x7FFFFFF0, 0.3)  # no such parent
    assert not [e for e in seen if e[0] == child]


def test_ring_buffer_callback_exception_reaches_poll(
    open_obj: Callable[..., L.BpfObject],
) -> None:
    obj = open_obj("ringbuf")
    rodata = _internal(obj, ".rodata")
    events = obj.find_map("events")
    prog = obj.find_program("handle_exec")
    assert rodata is not None and events is not None and prog is not None
    rodata.set_initial_value(_u32(os.getpid()))
    obj.load()

    def boom(data: bytes) -> None:
        raise RuntimeError("callback failed")

    with L.RingBuffer(events, boom) as rb, prog.attach():
        _exec_true()
        with pytest.raises(RuntimeError, match="callback failed"):
            _poll_until(rb.poll, lambda: False, 2.0)


def test_perf_buffer_gets_event(open_obj: Callable[..., L.BpfObject]) -> None:
    obj = open_obj("perfbuf")
    rodata = _internal(obj, ".rodata")
    events = obj.find_map("events")
    prog = obj.find_program("handle_exec")
    assert rodata is not None and events is not None and prog is not None
    assert events.type == L.MapType.PERF_EVENT_ARRAY
    rodata.set_initial_value(_u32(os.getpid()))
    obj.load()
    seen: list[tuple[int, Event]] = []
    lost: list[int] = []

    def on_sample(cpu: int, data: bytes) -> None:
        seen.append((cpu, _event(data)))

    pb = L.PerfBuffer(events, 8, on_sample, lambda cpu, n: lost.append(n))
    with pb, prog.attach():
        child = _exec_true()
        _poll_until(pb.poll, lambda: any(e[0] == child for _, e in seen), 2.0)
    mine = [(cpu, e) for cpu, e in seen if e[0] == child]
    assert mine, f"no perf event for pid {child}; got {seen}"
    cpu, (pid, ppid, magic, comm) = mine[0]
    assert 0 <= cpu < L.num_possible_cpus()
    assert (ppid, magic, comm.rstrip(b"\0")) == (os.getpid(), 7, b"true")
    assert not lost


def test_perf_buffer_page_count_must_be_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        L.PerfBuffer(-1, 3, lambda cpu, data: None)


# --- maps ------------------------------------------------------------------------------


def test_autoload_off_and_map_element_access(open_obj: Callable[..., L.BpfObject]) -> None:
    # bad.bpf.c's program fails verification; with autoload off the object
    # loads anyway and its array map is usable.
    obj = open_obj("bad")
    prog = obj.find_program("out_of_bounds")
    assert prog is not None
    prog.set_autoload(False)
    assert not prog.autoload()
    obj.load()
    arr = obj.find_map("arr")
    assert arr is not None and arr.type == L.MapType.ARRAY
    assert arr.lookup(_u32(0)) == _u32(0)
    assert arr.lookup(_u32(5)) is None  # past max_entries: ENOENT
    arr.update(_u32(0), _u32(0xDEADBEEF))
    assert list(arr.items()) == [(_u32(0), _u32(0xDEADBEEF))]
    assert list(arr.keys()) == [_u32(0)]
    with pytest.raises(ValueError, match="key of map 'arr' must be 4 bytes"):
        arr.lookup(b"\0")
    with pytest.raises(LibbpfError) as info:
        arr.delete(_u32(0))  # arrays cannot delete
    assert info.value.errno == 22
    with pytest.raises(LibbpfError, match="not loaded"):
        _ = prog.fd


# --- load failures ---------------------------------------------------------------------


def test_verifier_failure_names_program_and_log_tail(
    open_obj: Callable[..., L.BpfObject],
) -> None:
    obj = open_obj("bad")
    with pytest.raises(LibbpfError) as info:
        obj.load()
    message = str(info.value)
    details = info.value.details or ""
    assert info.value.errno == 13  # EACCES from the verifier
    assert message == ("loading program 'out_of_bounds' (tp/sched/sched_process_exec) failed: "
                       "Permission denied (EACCES)")
    assert details.startswith("verifier log (tail):\n")
    assert "invalid access to map value" in details
    assert "processed" in details  # the last line of the verifier log
    assert not isinstance(info.value, KernelLimitError)
    assert "BEGIN PROG LOAD LOG" in obj.captured_log()
    assert L.captured_log() == obj.captured_log()


def test_kernel_log_level_captures_verifier_log_of_success(
    open_obj: Callable[..., L.BpfObject],
) -> None:
    obj = open_obj("xdp", kernel_log_level=1)
    obj.load()
    assert "processed" in obj.captured_log()


def test_fentry_load_is_a_kernel_limit(open_obj: Callable[..., L.BpfObject]) -> None:
    obj = open_obj("fentry")
    try:
        obj.load()
    except KernelLimitError as exc:
        message = str(exc)
        assert "program 'on_unlinkat_entry' (fentry/do_unlinkat)" in message
        assert "refuses to load fentry programs" in message
        return
    pytest.skip("kernel limit absent: this kernel loads fentry programs")


# --- attach ------------------------------------------------------------------------------


def test_kprobe_attach_is_a_kernel_limit(open_obj: Callable[..., L.BpfObject]) -> None:
    obj = open_obj("kprobe")
    obj.load()  # kprobe programs load everywhere
    prog = obj.find_program("on_unlinkat")
    assert prog is not None and prog.type == L.ProgType.KPROBE
    try:
        link = prog.attach()
    except KernelLimitError as exc:
        assert str(exc).startswith(
            "program 'on_unlinkat' (kprobe/do_unlinkat): this kernel cannot attach kprobes "
            "(kprobes are not built in)"
        )
        return
    link.destroy()
    pytest.skip("kernel limit absent: this kernel attaches kprobes")


def test_iterator_output(open_obj: Callable[..., L.BpfObject]) -> None:
    obj = open_obj("iter")
    obj.load()
    prog = obj.find_program("dump_task")
    assert prog is not None and prog.section_name == "iter/task"
    with prog.attach_iter() as link:
        assert link.fd >= 0
        first = L.read_iter(link).decode()
        second = L.read_iter(link).decode()  # an iterator link can be read again
    me = f"{os.getpid()} {os.getpid()} "
    assert any(line.startswith(me) for line in first.splitlines()), first[:500]
    assert any(line.startswith(me) for line in second.splitlines())
    assert link.destroyed


def test_uprobe_fires(open_obj: Callable[..., L.BpfObject], tmp_path: Path) -> None:
    exe = build.compile_user("uprobe_target", tmp_path)
    obj = open_obj("uprobe")
    obj.load()
    prog = obj.find_program("on_call")
    bss = _internal(obj, ".bss")
    assert prog is not None and bss is not None
    with prog.attach_uprobe(False, -1, str(exe), func_name="ecc_uprobe_target"):
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "3705"
    live = bss.lookup(_u32(0))
    assert live is not None
    calls, last_arg = struct.unpack("<i4xq", live[:16])
    assert (calls, last_arg) == (3, 1234)


def test_uprobe_on_missing_function_is_libbpf_error(
    open_obj: Callable[..., L.BpfObject],
) -> None:
    obj = open_obj("uprobe")
    obj.load()
    prog = obj.find_program("on_call")
    assert prog is not None
    with pytest.raises(LibbpfError) as info:
        prog.attach_uprobe(False, -1, "/bin/true", func_name="no_such_function_here")
    assert not isinstance(info.value, KernelLimitError)
    assert info.value.errno == 2
    assert "program 'on_call'" in str(info.value)


def _send_udp_to_lo(count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(count):
            s.sendto(b"ecc", ("127.0.0.1", 9))  # discard port; nobody needs to listen


def _packets(obj: L.BpfObject) -> int:
    bss = _internal(obj, ".bss")
    assert bss is not None
    live = bss.lookup(_u32(0))
    assert live is not None
    return int(struct.unpack("<Q", live[:8])[0])


@pytest.mark.parametrize("flags", [0, L.XDP_FLAGS_SKB_MODE], ids=["link", "skb-mode"])
def test_xdp_attach_to_lo(open_obj: Callable[..., L.BpfObject], flags: int) -> None:
    obj = open_obj("xdp")
    obj.load()
    prog = obj.find_program("xdp_pass")
    assert prog is not None and prog.type == L.ProgType.XDP
    link = prog.attach_xdp(LO_IFINDEX, flags)  # not a listed kernel limit: must work
    with link:
        assert (link.fd >= 0) == (flags == 0)
        _send_udp_to_lo(3)
        assert _packets(obj) >= 3
    assert link.destroyed
    before = _packets(obj)
    _send_udp_to_lo(3)
    assert _packets(obj) == before  # detached


def test_tc_attach_to_lo(open_obj: Callable[..., L.BpfObject]) -> None:
    obj = open_obj("tc")
    obj.load()
    prog = obj.find_program("tc_pass")
    assert prog is not None and prog.type == L.ProgType.SCHED_CLS
    link = prog.attach_tc(LO_IFINDEX, L.BPF_TC_INGRESS)  # not a listed kernel limit
    with link:
        _send_udp_to_lo(3)
        assert _packets(obj) >= 3
    before = _packets(obj)
    _send_udp_to_lo(3)
    assert _packets(obj) == before


def test_attach_without_auto_attach_target_is_libbpf_error(
    open_obj: Callable[..., L.BpfObject],
) -> None:
    obj = open_obj("xdp")
    obj.load()
    prog = obj.find_program("xdp_pass")
    assert prog is not None
    with pytest.raises(LibbpfError) as info:
        prog.attach()  # SEC("xdp") has no auto-attach: needs an interface
    assert info.value.errno == 95  # EOPNOTSUPP


# --- misc ---------------------------------------------------------------------------------


def test_num_possible_cpus_matches_sysfs() -> None:
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    assert L.num_possible_cpus() == count


def _may_raise_hard_limits() -> bool:
    """CAP_SYS_RESOURCE (bit 24) in our effective set: root in a container may lack it."""
    status = Path("/proc/self/status").read_text()
    cap_eff = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))
    return bool(int(cap_eff, 16) >> 24 & 1)


def test_bump_memlock_rlimit_raises_a_low_limit() -> None:
    """A 64 KiB soft limit (what kernels before 5.11 charge BPF maps to) becomes
    unlimited when we may raise the hard limit, else the hard limit; a second call
    changes nothing."""
    saved = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    hard = saved[1]
    inf = resource.RLIM_INFINITY
    expected = (inf, inf) if hard == inf or _may_raise_hard_limits() else (hard, hard)
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 * 1024, hard))
        L.bump_memlock_rlimit()
        assert resource.getrlimit(resource.RLIMIT_MEMLOCK) == expected
        L.bump_memlock_rlimit()
        assert resource.getrlimit(resource.RLIMIT_MEMLOCK) == expected
    finally:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, saved)


def test_libbpf_version_and_library_cache() -> None:
    assert L.libbpf_version() >= (1, 0)
    assert L.load_libbpf() is L.load_libbpf()


def test_open_load_attach_time(
    objs: dict[str, bytes], record_property: Callable[[str, object], None]
) -> None:
    # Detaching is timed apart: destroying a tracepoint link waits for an RCU
    # grace period in the kernel (tens of ms here), which is not our cost.
    setup: list[float] = []
    teardown: list[float] = []
    for _ in range(3):
        start = time.perf_counter()
        with L.BpfObject.open_mem(objs["ringbuf"], object_name="ringbuf_bpf") as obj:
            obj.load()
            prog = obj.find_program("handle_exec")
            assert prog is not None
            link = prog.attach()
            attached = time.perf_counter()
            link.destroy()
        setup.append((attached - start) * 1000)
        teardown.append((time.perf_counter() - attached) * 1000)
    record_property("open_load_attach_ms", round(min(setup), 1))
    record_property("detach_close_ms", round(min(teardown), 1))
    print(
        f"ringbuf.bpf.o: open+load+attach best {min(setup):.1f} ms, "
        f"detach+close best {min(teardown):.1f} ms"
    )
    assert min(setup) < 1000


# --- struct layouts against the installed C headers -----------------------------------

_OFFSETS_C = r"""
#include <stdio.h>
#include <stddef.h>
#include <bpf/libbpf.h>
#define F(T, f) printf("%s.%s %zu\n", #T, #f, offsetof(struct T, f))
#define S(T) printf("%s %zu\n", #T, sizeof(struct T))
int main(void)
{
	S(bpf_object_open_opts); F(bpf_object_open_opts, object_name);
	F(bpf_object_open_opts, relaxed_maps); F(bpf_object_open_opts, pin_root_path);
	F(bpf_object_open_opts, kconfig); F(bpf_object_open_opts, btf_custom_path);
	F(bpf_object_open_opts, kernel_log_buf); F(bpf_object_open_opts, kernel_log_size);
	F(bpf_object_open_opts, kernel_log_level); F(bpf_object_open_opts, bpf_token_path);
	S(bpf_uprobe_opts); F(bpf_uprobe_opts, ref_ctr_offset); F(bpf_uprobe_opts, bpf_cookie);
	F(bpf_uprobe_opts, retprobe); F(bpf_uprobe_opts, func_name);
	F(bpf_uprobe_opts, attach_mode);
	S(bpf_xdp_attach_opts); F(bpf_xdp_attach_opts, old_prog_fd);
	S(bpf_tc_hook); F(bpf_tc_hook, ifindex); F(bpf_tc_hook, attach_point);
	F(bpf_tc_hook, parent);
	S(bpf_tc_opts); F(bpf_tc_opts, prog_fd); F(bpf_tc_opts, flags); F(bpf_tc_opts, prog_id);
	F(bpf_tc_opts, handle); F(bpf_tc_opts, priority);
	return 0;
}
"""


@needs("libbpf-dev")
def test_struct_layouts_match_installed_headers(tmp_path: Path) -> None:
    src = tmp_path / "offsets.c"
    src.write_text(_OFFSETS_C)
    exe = tmp_path / "offsets"
    subprocess.run(["gcc", "-o", str(exe), str(src)], check=True, capture_output=True)
    expected = dict(
        line.rsplit(" ", 1)
        for line in subprocess.run(
            [str(exe)], check=True, capture_output=True, text=True
        ).stdout.splitlines()
    )
    structs = {
        "bpf_object_open_opts": L._ObjectOpenOpts,
        "bpf_uprobe_opts": L._UprobeOpts,
        "bpf_xdp_attach_opts": L._XdpAttachOpts,
        "bpf_tc_hook": L._TcHook,
        "bpf_tc_opts": L._TcOpts,
    }
    for key, value in expected.items():
        if "." in key:
            struct_name, field = key.split(".")
            assert getattr(structs[struct_name], field).offset == int(value), key
        else:
            assert ctypes.sizeof(structs[key]) == int(value), key
    assert ctypes.util.find_library("bpf") is not None
