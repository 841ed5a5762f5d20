"""What else a kernel must have for an object to load: program types, attach points,
map types, helpers and kfuncs; and the first kernel version that has each.

Where the target's BTF can tell, it decides: a full kernel BTF carries the UAPI
enums (``enum bpf_prog_type``, ``bpf_map_type``, ``bpf_func_id``), every kfunc
as a FUNC, every BTF-attachable function as a FUNC, and a ``btf_trace_<event>``
typedef per raw tracepoint. A minimized BTF (``--btfgen``, ``bpftool gen
min_core_btf``) has none of these; then the version table below is checked
against the kernel's version, when that is known.

Version table source: the "BPF Features by Linux Kernel Version" list kept with
BCC (github.com/iovisor/bcc, docs/kernel-versions.md), which gives for each
program type, map type and helper the kernel release that added it; the
numbering is the kernel's own (include/uapi/linux/bpf.h, whose enums only ever
grow at the end). The kernel's Documentation/bpf/ does not list versions. The
table is partial: the common items only (see the counts in the README); an
item not in it is checked by BTF alone.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from ..btf import Btf
from ..btf.mapdefs import map_defs
from ..btf.types import Datasec, Enum, Enum64, Func, Kind
from ..elf import STB_LOCAL, BpfObject
from .btfext import ProgramCode
from .target import TargetBtf

Version = tuple[int, int]

# enum bpf_prog_type: number -> (name, first version)
PROG_TYPES: dict[int, tuple[str, Version]] = {
    1: ("SOCKET_FILTER", (3, 19)), 2: ("KPROBE", (4, 1)), 3: ("SCHED_CLS", (4, 1)),
    4: ("SCHED_ACT", (4, 1)), 5: ("TRACEPOINT", (4, 7)), 6: ("XDP", (4, 8)),
    7: ("PERF_EVENT", (4, 9)), 8: ("CGROUP_SKB", (4, 10)), 9: ("CGROUP_SOCK", (4, 10)),
    10: ("LWT_IN", (4, 10)), 11: ("LWT_OUT", (4, 10)), 12: ("LWT_XMIT", (4, 10)),
    13: ("SOCK_OPS", (4, 13)), 14: ("SK_SKB", (4, 14)), 15: ("CGROUP_DEVICE", (4, 15)),
    16: ("SK_MSG", (4, 17)), 17: ("RAW_TRACEPOINT", (4, 17)),
    18: ("CGROUP_SOCK_ADDR", (4, 17)), 19: ("LWT_SEG6LOCAL", (4, 18)),
    20: ("LIRC_MODE2", (4, 18)), 21: ("SK_REUSEPORT", (4, 19)),
    22: ("FLOW_DISSECTOR", (4, 20)), 23: ("CGROUP_SYSCTL", (5, 2)),
    24: ("RAW_TRACEPOINT_WRITABLE", (5, 2)), 25: ("CGROUP_SOCKOPT", (5, 3)),
    26: ("TRACING", (5, 5)), 27: ("STRUCT_OPS", (5, 6)), 28: ("EXT", (5, 6)),
    29: ("LSM", (5, 7)), 30: ("SK_LOOKUP", (5, 9)), 31: ("SYSCALL", (5, 14)),
    32: ("NETFILTER", (6, 4)),
}

# enum bpf_map_type: number -> (name, first version)
MAP_TYPES: dict[int, tuple[str, Version]] = {
    1: ("HASH", (3, 19)), 2: ("ARRAY", (3, 19)), 3: ("PROG_ARRAY", (4, 2)),
    4: ("PERF_EVENT_ARRAY", (4, 3)), 5: ("PERCPU_HASH", (4, 6)),
    6: ("PERCPU_ARRAY", (4, 6)), 7: ("STACK_TRACE", (4, 6)), 8: ("CGROUP_ARRAY", (4, 8)),
    9: ("LRU_HASH", (4, 10)), 10: ("LRU_PERCPU_HASH", (4, 10)), 11: ("LPM_TRIE", (4, 11)),
    12: ("ARRAY_OF_MAPS", (4, 12)), 13: ("HASH_OF_MAPS", (4, 12)), 14: ("DEVMAP", (4, 14)),
    15: ("SOCKMAP", (4, 14)), 16: ("CPUMAP", (4, 15)), 17: ("XSKMAP", (4, 18)),
    18: ("SOCKHASH", (4, 18)), 19: ("CGROUP_STORAGE", (4, 19)),
    20: ("REUSEPORT_SOCKARRAY", (4, 19)), 21: ("PERCPU_CGROUP_STORAGE", (4, 20)),
    22: ("QUEUE", (4, 20)), 23: ("STACK", (4, 20)), 24: ("SK_STORAGE", (5, 2)),
    25: ("DEVMAP_HASH", (5, 4)), 26: ("STRUCT_OPS", (5, 6)), 27: ("RINGBUF", (5, 8)),
    28: ("INODE_STORAGE", (5, 10)), 29: ("TASK_STORAGE", (5, 11)),
    30: ("BLOOM_FILTER", (5, 16)), 31: ("USER_RINGBUF", (6, 1)),
    32: ("CGRP_STORAGE", (6, 2)), 33: ("ARENA", (6, 9)),
}

# enum bpf_func_id: number -> (name without BPF_FUNC_, first version); the common ones.
HELPERS: dict[int, tuple[str, Version]] = {
    1: ("map_lookup_elem", (3, 19)), 2: ("map_update_elem", (3, 19)),
    3: ("map_delete_elem", (3, 19)), 4: ("probe_read", (4, 1)),
    5: ("ktime_get_ns", (4, 1)), 6: ("trace_printk", (4, 1)),
    7: ("get_prandom_u32", (4, 1)), 8: ("get_smp_processor_id", (4, 1)),
    12: ("tail_call", (4, 2)), 14: ("get_current_pid_tgid", (4, 2)),
    15: ("get_current_uid_gid", (4, 2)), 16: ("get_current_comm", (4, 2)),
    25: ("perf_event_output", (4, 4)), 27: ("get_stackid", (4, 6)),
    35: ("get_current_task", (4, 8)), 45: ("probe_read_str", (4, 11)),
    51: ("redirect_map", (4, 14)), 67: ("get_stack", (4, 18)),
    80: ("get_current_cgroup_id", (4, 18)), 112: ("probe_read_user", (5, 5)),
    113: ("probe_read_kernel", (5, 5)), 114: ("probe_read_user_str", (5, 5)),
    115: ("probe_read_kernel_str", (5, 5)), 125: ("ktime_get_boot_ns", (5, 8)),
    130: ("ringbuf_output", (5, 8)), 131: ("ringbuf_reserve", (5, 8)),
    132: ("ringbuf_submit", (5, 8)), 133: ("ringbuf_discard", (5, 8)),
    134: ("ringbuf_query", (5, 8)), 158: ("get_current_task_btf", (5, 11)),
    164: ("for_each_map_elem", (5, 13)), 165: ("snprintf", (5, 13)),
    181: ("loop", (5, 17)),
}

# Program section prefixes (libbpf's section_defs) -> prog type number, and how the
# rest of the section name names an attach point that BTF can confirm.
_SECTIONS: tuple[tuple[str, int, str], ...] = (
    ("kprobe.multi", 2, ""), ("kretprobe.multi", 2, ""), ("uprobe", 2, ""),
    ("uretprobe", 2, ""), ("kprobe/", 2, "func?"), ("kretprobe/", 2, "func?"),
    ("ksyscall/", 2, ""), ("kretsyscall/", 2, ""),
    ("tracepoint/", 5, "event?"), ("tp/", 5, "event?"),
    ("raw_tracepoint/", 17, "raw_tp"), ("raw_tp/", 17, "raw_tp"),
    ("tp_btf/", 26, "raw_tp"), ("fentry/", 26, "func"), ("fexit/", 26, "func"),
    ("fmod_ret/", 26, "func"), ("iter/", 26, ""), ("lsm/", 29, "lsm"),
    ("xdp", 6, ""), ("tc", 3, ""), ("classifier", 3, ""), ("action", 4, ""),
    ("perf_event", 7, ""), ("socket", 1, ""), ("cgroup_skb/", 8, ""),
    ("sockops", 13, ""), ("sk_skb", 14, ""), ("sk_msg", 16, ""), ("struct_ops", 27, ""),
    ("syscall", 31, ""), ("netfilter", 32, ""), ("sk_lookup", 30, ""),
    ("flow_dissector", 22, ""), ("cgroup/", 9, ""),
)
OK, FAIL, UNKNOWN = "ok", "fail", "unknown"


@dataclass(frozen=True)
class Feature:
    """One thing the object needs from a kernel."""

    what: str           # "program type", "attach point", "map type", "helper", "kfunc"
    name: str           # KPROBE, fentry do_unlinkat, RINGBUF, probe_read_kernel, bpf_task_acquire
    users: tuple[str, ...]  # programs (or maps) that need it
    number: int | None = None   # the UAPI enum value
    since: Version | None = None
    btf_name: str = ""  # the BTF name that proves it: a FUNC, a typedef, an enumerator
    btf_enum: str = ""  # the UAPI enum holding btf_name, for enumerators
    optional: bool = False  # a __weak kfunc: the program tests bpf_ksym_exists itself
    soft: bool = False      # missing from BTF need not mean missing (a kprobe target)


@dataclass(frozen=True)
class FeatureCheck:
    feature: Feature
    outcome: str  # OK, FAIL, UNKNOWN
    why: str

    def as_dict(self) -> dict[str, object]:
        f = self.feature
        return {"what": f.what, "name": f.name, "users": list(f.users), "number": f.number,
                "since": ".".join(map(str, f.since)) if f.since else None,
                "outcome": self.outcome, "why": self.why}


def object_features(obj: BpfObject, btf: Btf, programs: dict[str, ProgramCode],
                    ) -> tuple[Feature, ...]:
    """Everything of the object that a kernel might lack, in a stable order."""
    out: list[Feature] = []
    users: dict[tuple[str, str], list[str]] = {}
    seen: dict[tuple[str, str], Feature] = {}

    def need(feature: Feature, user: str) -> None:
        key = (feature.what, feature.name)
        seen.setdefault(key, feature)
        users.setdefault(key, [])
        if user not in users[key]:
            users[key].append(user)

    global_funcs = {s.name for s in obj.symbols if s.bind != STB_LOCAL}
    for prog in sorted(programs.values(), key=lambda p: (p.section, p.start)):
        if prog.section == ".text" or prog.name not in global_funcs:
            continue  # subprograms: their helpers count for whoever calls them
        for prefix, number, attach in _SECTIONS:
            if prog.section.startswith(prefix):
                name, since = PROG_TYPES.get(number, (str(number), None))
                need(Feature("program type", name, (), number, since, "BPF_PROG_TYPE_" + name,
                             "bpf_prog_type"), prog.name)
                target = prog.section[len(prefix):]
                if attach and target:
                    need(_attach(attach, prefix, target), prog.name)
                break
        for helper in sorted(_helper_calls(prog.code)):
            name, since = HELPERS.get(helper, (f"#{helper}", None))
            need(Feature("helper", name, (), helper, since,
                         f"BPF_FUNC_{name}" if since else "", "bpf_func_id"), prog.name)
    for map_name, definition in sorted(map_defs(btf).items()):
        if definition.type is None:
            continue
        name, since = MAP_TYPES.get(definition.type, (str(definition.type), None))
        need(Feature("map type", name, (), definition.type, since, "BPF_MAP_TYPE_" + name,
                     "bpf_map_type"), map_name)
    weak = {s.name for s in obj.symbols if s.bind == 2}  # STB_WEAK
    ksyms = btf.by_name(".ksyms", Kind.DATASEC)
    if isinstance(ksyms, Datasec):
        for info in ksyms.vars:
            func = btf[info.type]
            if isinstance(func, Func):
                need(Feature("kfunc", func.name, (), btf_name=func.name,
                             optional=func.name in weak), "object")
    for key, feature in seen.items():
        out.append(Feature(feature.what, feature.name, tuple(users[key]), feature.number,
                           feature.since, feature.btf_name, feature.btf_enum,
                           feature.optional, feature.soft))
    return tuple(out)


def _attach(how: str, prefix: str, target: str) -> Feature:
    if how == "lsm":
        return Feature("attach point", f"lsm {target}", (), btf_name=f"bpf_lsm_{target}")
    if how == "raw_tp":
        return Feature("attach point", f"{prefix.rstrip('/')} {target}", (),
                       btf_name=f"btf_trace_{target}", soft=prefix.startswith("raw"))
    if how == "event?":
        event = target.rpartition("/")[2]
        return Feature("attach point", f"tracepoint {target}", (),
                       btf_name=f"trace_event_raw_{event}", soft=True)
    return Feature("attach point", f"{prefix.rstrip('/')} {target}", (), btf_name=target,
                   soft=how.endswith("?"))


def _helper_calls(code: bytes) -> set[int]:
    """Helper ids of the ``call`` instructions (src_reg 0) of a program."""
    found: set[int] = set()
    for off in range(0, len(code) - 7, 8):
        opcode, regs, _, imm = struct.unpack_from("<BBhi", code, off)
        if opcode == 0x85 and regs >> 4 == 0:
            found.add(imm)
    return found


def lookup_names(features: Iterable[Feature]) -> set[str]:
    """The BTF names a target must be searched for to check these features."""
    names = {"bpf_func_id", "bpf_map_type", "bpf_prog_type"}
    names.update(f.btf_name for f in features if f.btf_name and not f.btf_enum)
    return names


def check_features(features: Iterable[Feature], target: TargetBtf,
                   version: Version | None) -> tuple[FeatureCheck, ...]:
    """Each feature against a kernel: its BTF first, then its version."""
    btf = target.btf
    enums: dict[str, set[str]] = {}
    for enum_name in ("bpf_func_id", "bpf_map_type", "bpf_prog_type"):
        for type_id in target.named(enum_name):
            t = btf[type_id]
            if isinstance(t, Enum | Enum64):
                enums.setdefault(enum_name, set()).update(v.name for v in t.values)
    full = "bpf_func_id" in enums  # a whole kernel BTF, not a minimized one
    out = []
    for f in features:
        out.append(_check(f, target, enums, full, version))
    return tuple(out)


def _check(f: Feature, target: TargetBtf, enums: dict[str, set[str]], full: bool,
           version: Version | None) -> FeatureCheck:
    shown = ".".join(map(str, version)) if version else ""
    if full and f.btf_enum and f.btf_name:
        if f.btf_name in enums.get(f.btf_enum, set()):
            return FeatureCheck(f, OK, f"enum {f.btf_enum} has {f.btf_name}")
        return FeatureCheck(f, FAIL, f"enum {f.btf_enum} of this kernel has no {f.btf_name}")
    if full and f.btf_name and not f.btf_enum:
        if target.named(f.btf_name):
            return FeatureCheck(f, OK, f"BTF has {f.btf_name}")
        if f.optional:
            return FeatureCheck(f, OK, f"BTF has no {f.btf_name}; declared __weak, so the "
                                "program tests bpf_ksym_exists")
        if f.soft:
            return FeatureCheck(f, UNKNOWN, f"BTF has no {f.btf_name} (it may still exist "
                                "outside BTF)")
        return FeatureCheck(f, FAIL, f"BTF of this kernel has no {f.btf_name}")
    if f.since is not None and version is not None:
        if version >= f.since:
            return FeatureCheck(f, OK, f"since {f.since[0]}.{f.since[1]}; kernel is {shown}")
        return FeatureCheck(f, FAIL, f"needs {f.since[0]}.{f.since[1]}; kernel is {shown}")
    if f.since is None:
        return FeatureCheck(f, UNKNOWN, "not in ecc's version table and the BTF cannot tell")
    return FeatureCheck(f, UNKNOWN, f"since {f.since[0]}.{f.since[1]}; this kernel's version "
                        "is unknown and its BTF cannot tell")
