"""Pure parts of ecc.run.libbpf: struct layouts, prototypes, error mapping.

Nothing here loads libbpf.so.1 or touches the kernel; the real-kernel tests
are tests/test_libbpf_kernel.py.
"""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from ecc.errors import EccError, KernelLimitError, LibbpfError, ToolNotFoundError
from ecc.run import libbpf as L
from ecc.run.libbpf import bindings, diagnosis

# (struct, size, {field: offset}) as gcc lays out libbpf 1.4's libbpf.h on
# x86_64 / aarch64 (LP64). tests/test_libbpf_kernel.py re-checks these
# against the installed header with gcc.
LAYOUTS = [
    (
        L._ObjectOpenOpts,
        88,
        {
            "sz": 0,
            "object_name": 8,
            "relaxed_maps": 16,
            "pin_root_path": 24,
            "kconfig": 40,
            "btf_custom_path": 48,
            "kernel_log_buf": 56,
            "kernel_log_size": 64,
            "kernel_log_level": 72,
            "bpf_token_path": 80,
        },
    ),
    (
        L._UprobeOpts,
        48,
        {
            "sz": 0,
            "ref_ctr_offset": 8,
            "bpf_cookie": 16,
            "retprobe": 24,
            "func_name": 32,
            "attach_mode": 40,
        },
    ),
    (L._XdpAttachOpts, 16, {"sz": 0, "old_prog_fd": 8}),
    (L._TcHook, 24, {"sz": 0, "ifindex": 8, "attach_point": 12, "parent": 16}),
    (
        L._TcOpts,
        32,
        {"sz": 0, "prog_fd": 8, "flags": 12, "prog_id": 16, "handle": 20, "priority": 24},
    ),
]


@pytest.mark.parametrize(
    ("struct", "size", "offsets"), LAYOUTS, ids=[s.__name__ for s, _, _ in LAYOUTS]
)
def test_struct_layout(struct: type[ctypes.Structure], size: int, offsets: dict[str, int]) -> None:
    assert ctypes.sizeof(struct) == size
    for name, offset in offsets.items():
        assert getattr(struct, name).offset == offset, name


@pytest.mark.parametrize("struct", [s for s, _, _ in LAYOUTS], ids=lambda s: s.__name__)
def test_opts_sets_sz(struct: type[ctypes.Structure]) -> None:
    opts = L._opts(struct)
    assert opts.sz == ctypes.sizeof(struct)


def test_every_prototype_is_complete() -> None:
    for name, (restype, argtypes) in L._PROTOTYPES.items():
        assert isinstance(argtypes, list), name
        for arg in argtypes:
            # never a bare Python int where C expects a pointer or a size_t
            assert arg is not None, name
        if name.endswith(("__new", "__open_mem")) or "__next_" in name or "__find_" in name:
            assert restype is ctypes.c_void_p, name
        if name.startswith("bpf_program__attach"):
            assert restype is ctypes.c_void_p, name


def test_pointer_results_are_never_c_int() -> None:
    pointer_returning = [
        "bpf_object__open_mem",
        "bpf_object__next_map",
        "bpf_object__next_program",
        "bpf_map__initial_value",
        "ring_buffer__new",
        "perf_buffer__new",
        "libbpf_set_print",
    ]
    for name in pointer_returning:
        assert L._PROTOTYPES[name][0] is ctypes.c_void_p, name


@pytest.mark.parametrize(
    ("section", "kind"),
    [
        ("kprobe/do_unlinkat", "kprobe"),
        ("kretprobe/do_unlinkat", "kretprobe"),
        ("fentry.s/x", "fentry"),
        ("tp/sched/sched_process_exec", "tp"),
        ("xdp", "xdp"),
        ("uprobe//bin/bash:readline", "uprobe"),
        ("", ""),
    ],
)
def test_section_kind(section: str, kind: str) -> None:
    assert L._section_kind(section) == kind


VERIFIER_FAILURE_LOG = """\
libbpf: prog 'out_of_bounds': BPF program load failed: Permission denied
libbpf: prog 'out_of_bounds': -- BEGIN PROG LOAD LOG --
0: R1=ctx() R10=fp0
8: (61) r6 = *(u32 *)(r0 +400)
invalid access to map value, value_size=4 off=400 size=4
R0 min value is outside of the allowed memory range
processed 8 insns (limit 1000000) max_states_per_insn 0 total_states 0
-- END PROG LOAD LOG --
libbpf: prog 'out_of_bounds': failed to load: -13
libbpf: failed to load object 'bad_bpf'
"""

FENTRY_LOG = """\
libbpf: prog 'on_entry': BPF program load failed: Operation not permitted
libbpf: permission error while running as root; try raising 'ulimit -l'? current value: 8.0 MiB
libbpf: prog 'on_entry': failed to load: -1
libbpf: failed to load object 'fentry_bpf'
"""


def test_failed_program_and_verifier_log_are_parsed() -> None:
    assert L._failed_program(VERIFIER_FAILURE_LOG) == "out_of_bounds"
    log = L._verifier_log(VERIFIER_FAILURE_LOG)
    assert log.startswith("0: R1=ctx()")
    assert log.endswith("total_states 0")
    assert L._failed_program("nothing here") is None
    assert L._verifier_log("nothing here") == ""


def test_verifier_log_tail_is_bounded() -> None:
    body = "\n".join(f"{i}: insn" for i in range(500))
    log = f"libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n{body}\n-- END PROG LOAD LOG --\n"
    err = L._load_error("o", -13, log, {"p": "tp/a/b"})
    lines = (err.details or "").splitlines()
    assert lines[-1] == "499: insn"
    assert "480: insn" in lines and "479: insn" not in lines


def test_load_error_names_program_and_quotes_log() -> None:
    err = L._load_error(
        "bad_bpf", -13, VERIFIER_FAILURE_LOG, {"out_of_bounds": "tp/sched/sched_process_exec"}
    )
    assert type(err) is LibbpfError
    assert err.errno == errno.EACCES
    text = str(err) + "\n" + (err.details or "")
    assert text.startswith(
        "loading program 'out_of_bounds' (tp/sched/sched_process_exec) failed: "
        "Permission denied (EACCES)"
    )
    assert "invalid access to map value" in text
    assert "BEGIN PROG LOAD LOG" not in text


def test_load_error_without_program_names_object() -> None:
    err = L._load_error("foo_bpf", -22, "libbpf: map 'm': failed to create: -22\n", {})
    assert isinstance(err, LibbpfError)
    assert "loading BPF object 'foo_bpf' failed" in str(err)
    assert "map 'm': failed to create" in (err.details or "")


def test_fentry_eperm_as_root_is_kernel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    err = L._load_error("fentry_bpf", -1, FENTRY_LOG, {"on_entry": "fentry/do_unlinkat"})
    assert isinstance(err, KernelLimitError)
    text = str(err)
    assert text.startswith("program 'on_entry' (fentry/do_unlinkat): this kernel refuses")
    assert "EPERM" in text and "ulimit" not in text


def test_fentry_eperm_as_user_is_privilege_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    err = L._load_error("fentry_bpf", -1, FENTRY_LOG, {"on_entry": "fentry/do_unlinkat"})
    assert type(err) is LibbpfError
    assert err.errno == errno.EPERM
    assert "needs root" in str(err)


def test_tracepoint_eperm_is_not_a_kernel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    log = FENTRY_LOG.replace("on_entry", "tp_prog")
    err = L._load_error("o", -1, log, {"tp_prog": "tp/sched/sched_switch"})
    assert type(err) is LibbpfError


def test_kprobe_attach_without_kprobes_is_kernel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnosis, "_kernel_has_kprobes", lambda: False)
    err = L._attach_error("p", "kprobe/do_unlinkat", "attaching", -errno.ENOENT, "")
    assert isinstance(err, KernelLimitError)
    assert str(err) == (
        "program 'p' (kprobe/do_unlinkat): this kernel cannot attach kprobes "
        "(kprobes are not built in) [ENOENT]"
    )
    err = L._attach_error("p", "kretprobe/x", "attaching", -L.ENOTSUPP, "")
    assert isinstance(err, KernelLimitError) and "[ENOTSUPP]" in str(err)


def test_kprobe_on_missing_function_is_libbpf_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnosis, "_kernel_has_kprobes", lambda: True)
    log = "libbpf: prog 'p': failed to create kprobe 'nope+0x0' perf event: No such file\n"
    err = L._attach_error("p", "kprobe/nope", "attach", -errno.ENOENT, log)
    assert type(err) is LibbpfError
    assert err.errno == errno.ENOENT
    assert str(err).startswith(
        "program 'p' (kprobe/nope): cannot attach: No such file or directory"
    )
    assert "failed to create kprobe" in (err.details or "")


def test_uprobe_attach_without_uprobes_is_kernel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnosis, "_kernel_has_uprobes", lambda: False)
    err = L._attach_error("p", "uprobe", "attaching", -errno.EOPNOTSUPP, "")
    assert isinstance(err, KernelLimitError) and "uprobes are not built in" in str(err)


def test_tracepoint_without_tracefs_says_mount(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnosis, "_tracefs_events_dir", lambda: None)
    err = L._attach_error("p", "tp/sched/x", "attaching", -errno.ENOENT, "")
    assert isinstance(err, KernelLimitError)
    assert "mount -t tracefs nodev /sys/kernel/tracing" in str(err)
    monkeypatch.setattr(diagnosis, "_tracefs_events_dir", lambda: "/sys/kernel/tracing")
    assert type(L._attach_error("p", "tp/sched/x", "a", -errno.ENOENT, "")) is LibbpfError


def test_error_message_and_errno() -> None:
    err = L._error("opening BPF object 'x'", -errno.ENOENT)
    assert isinstance(err, EccError)
    assert err.errno == errno.ENOENT
    assert str(err) == "opening BPF object 'x': No such file or directory"
    assert L._error("w", 0).errno == errno.EINVAL  # no errno left: EINVAL, never 0


def test_strerror_knows_enotsupp() -> None:
    assert L.libbpf_strerror(-524) == "Operation not supported (ENOTSUPP)"
    assert L.libbpf_strerror(errno.EPERM) == "Operation not permitted"
    assert L._errno_name(524) == "ENOTSUPP"
    assert L._errno_name(errno.EACCES) == "EACCES"


def test_tail_drops_blank_lines() -> None:
    assert L._tail("a\n\nb\n \nc\n", 2) == "b\nc"


def test_missing_library_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bindings, "_STATE", bindings._State())  # as if nothing were loaded yet
    with pytest.raises(ToolNotFoundError) as info:
        L.load_libbpf("/nonexistent/libbpf.so.1")
    assert "libbpf1" in str(info.value)
    assert "/nonexistent/libbpf.so.1" in str(info.value)
