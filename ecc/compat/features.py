"""What else a kernel must have for an object to load: program types, attach types and
points, map types, helpers and kfuncs; and the first kernel release that has each.

Where the target's BTF can tell, it decides: a full kernel BTF carries the UAPI
enums (``enum bpf_prog_type``, ``bpf_attach_type``, ``bpf_map_type``,
``bpf_func_id``), every kfunc as a FUNC, every BTF-attachable function as a FUNC,
and a ``btf_trace_<event>`` typedef per raw tracepoint. A minimized BTF
(``--btfgen``, ``bpftool gen min_core_btf``) has none of these; then the release
table (ecc/compat/versions.py, where its sources are cited) is checked against
the kernel's version, when that is known.

Which program and attach type a section means is libbpf's (its ``section_defs``).
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
from .versions import ATTACH_BY_NAME, HELPERS, MAP_TYPES, PROG_TYPES, Version

UAPI_ENUMS = ("bpf_attach_type", "bpf_func_id", "bpf_map_type", "bpf_prog_type")

# libbpf section name (exact, or followed by "/...") -> program type number, the
# expected attach type it implies ("" for none), and how the rest of the name names an
# attach point that BTF can confirm.
_SECTIONS: tuple[tuple[str, int, str, str], ...] = (
    ("kprobe", 2, "", "func?"), ("kretprobe", 2, "", "func?"), ("ksyscall", 2, "", ""),
    ("kretsyscall", 2, "", ""), ("uprobe", 2, "", ""), ("uretprobe", 2, "", ""),
    ("uprobe.s", 2, "", ""), ("uretprobe.s", 2, "", ""), ("usdt", 2, "", ""),
    ("kprobe.multi", 2, "TRACE_KPROBE_MULTI", ""), ("kretprobe.multi", 2, "TRACE_KPROBE_MULTI", ""),
    ("kprobe.session", 2, "TRACE_KPROBE_SESSION", ""),
    ("uprobe.multi", 2, "TRACE_UPROBE_MULTI", ""), ("uretprobe.multi", 2, "TRACE_UPROBE_MULTI", ""),
    ("uprobe.multi.s", 2, "TRACE_UPROBE_MULTI", ""),
    ("uretprobe.multi.s", 2, "TRACE_UPROBE_MULTI", ""),
    ("uprobe.session", 2, "TRACE_UPROBE_SESSION", ""),
    ("tracepoint", 5, "", "event?"), ("tp", 5, "", "event?"),
    ("raw_tracepoint", 17, "", "raw_tp"), ("raw_tp", 17, "", "raw_tp"),
    ("raw_tracepoint.w", 24, "", "raw_tp"), ("raw_tp.w", 24, "", "raw_tp"),
    ("tp_btf", 26, "TRACE_RAW_TP", "raw_tp"), ("fentry", 26, "TRACE_FENTRY", "func"),
    ("fexit", 26, "TRACE_FEXIT", "func"), ("fmod_ret", 26, "MODIFY_RETURN", "func"),
    ("fentry.s", 26, "TRACE_FENTRY", "func"), ("fexit.s", 26, "TRACE_FEXIT", "func"),
    ("fmod_ret.s", 26, "MODIFY_RETURN", "func"), ("iter", 26, "TRACE_ITER", ""),
    ("iter.s", 26, "TRACE_ITER", ""), ("freplace", 28, "", ""),
    ("lsm", 29, "LSM_MAC", "lsm"), ("lsm.s", 29, "LSM_MAC", "lsm"),
    ("lsm_cgroup", 29, "LSM_CGROUP", "lsm"),
    ("socket", 1, "", ""), ("sk_reuseport", 21, "SK_REUSEPORT_SELECT", ""),
    ("sk_reuseport/migrate", 21, "SK_REUSEPORT_SELECT_OR_MIGRATE", ""),
    ("tc", 3, "", ""), ("classifier", 3, "", ""), ("action", 4, "", ""),
    ("tc/ingress", 3, "TCX_INGRESS", ""), ("tc/egress", 3, "TCX_EGRESS", ""),
    ("tcx/ingress", 3, "TCX_INGRESS", ""), ("tcx/egress", 3, "TCX_EGRESS", ""),
    ("netkit/primary", 3, "NETKIT_PRIMARY", ""), ("netkit/peer", 3, "NETKIT_PEER", ""),
    ("xdp", 6, "", ""), ("xdp.frags", 6, "", ""), ("xdp/devmap", 6, "XDP_DEVMAP", ""),
    ("xdp.frags/devmap", 6, "XDP_DEVMAP", ""), ("xdp/cpumap", 6, "XDP_CPUMAP", ""),
    ("xdp.frags/cpumap", 6, "XDP_CPUMAP", ""), ("perf_event", 7, "", ""),
    ("lwt_in", 10, "", ""), ("lwt_out", 11, "", ""), ("lwt_xmit", 12, "", ""),
    ("lwt_seg6local", 19, "", ""), ("sockops", 13, "CGROUP_SOCK_OPS", ""),
    ("sk_skb", 14, "", ""), ("sk_skb/stream_parser", 14, "SK_SKB_STREAM_PARSER", ""),
    ("sk_skb/stream_verdict", 14, "SK_SKB_STREAM_VERDICT", ""),
    ("sk_skb/verdict", 14, "SK_SKB_VERDICT", ""), ("sk_msg", 16, "SK_MSG_VERDICT", ""),
    ("lirc_mode2", 20, "LIRC_MODE2", ""), ("flow_dissector", 22, "FLOW_DISSECTOR", ""),
    ("cgroup_skb/ingress", 8, "CGROUP_INET_INGRESS", ""),
    ("cgroup_skb/egress", 8, "CGROUP_INET_EGRESS", ""), ("cgroup/skb", 8, "", ""),
    ("cgroup/sock_create", 9, "CGROUP_INET_SOCK_CREATE", ""),
    ("cgroup/sock_release", 9, "CGROUP_INET_SOCK_RELEASE", ""),
    ("cgroup/sock", 9, "CGROUP_INET_SOCK_CREATE", ""),
    ("cgroup/post_bind4", 9, "CGROUP_INET4_POST_BIND", ""),
    ("cgroup/post_bind6", 9, "CGROUP_INET6_POST_BIND", ""),
    ("cgroup/dev", 15, "CGROUP_DEVICE", ""), ("cgroup/sysctl", 23, "CGROUP_SYSCTL", ""),
    ("cgroup/getsockopt", 25, "CGROUP_GETSOCKOPT", ""),
    ("cgroup/setsockopt", 25, "CGROUP_SETSOCKOPT", ""),
    *((f"cgroup/{hook}{family}", 18, f"CGROUP_{prefix}{family.upper()}_{suffix}", "")
      for hook, prefix, suffix in (("bind", "INET", "BIND"), ("connect", "INET", "CONNECT"),
                                   ("getpeername", "INET", "GETPEERNAME"),
                                   ("getsockname", "INET", "GETSOCKNAME"),
                                   ("sendmsg", "UDP", "SENDMSG"), ("recvmsg", "UDP", "RECVMSG"))
      for family in ("4", "6")),
    *((f"cgroup/{hook}_unix", 18, f"CGROUP_UNIX_{hook.upper()}", "")
      for hook in ("connect", "sendmsg", "recvmsg", "getpeername", "getsockname")),
    ("struct_ops", 27, "", ""), ("struct_ops.s", 27, "", ""), ("syscall", 31, "", ""),
    ("sk_lookup", 30, "SK_LOOKUP", ""), ("netfilter", 32, "NETFILTER", ""),
)
OK, FAIL, UNKNOWN = "ok", "fail", "unknown"


@dataclass(frozen=True)
class Feature:
    """One thing the object needs from a kernel."""

    what: str  # "program type", "attach type", "attach point", "map type", "helper", "kfunc"
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
        matched = _section(prog.section)
        if matched is not None:
            prefix, number, attach_type, attach = matched
            name, since = PROG_TYPES.get(number, (str(number), None))
            need(Feature("program type", name, (), number, since, "BPF_PROG_TYPE_" + name,
                         "bpf_prog_type"), prog.name)
            if attach_type:
                type_number, since = ATTACH_BY_NAME[attach_type]
                need(Feature("attach type", attach_type, (), type_number, since,
                             "BPF_" + attach_type, "bpf_attach_type"), prog.name)
            target = prog.section[len(prefix) + 1:]
            if attach and target:
                need(_attach(attach, prefix, target), prog.name)
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


def _section(section: str) -> tuple[str, int, str, str] | None:
    """The most specific libbpf section definition that ``section`` falls under."""
    best = None
    for entry in _SECTIONS:
        pattern = entry[0]
        fits = section == pattern or section.startswith(pattern + "/")
        if fits and (best is None or len(pattern) > len(best[0])):
            best = entry
    return best


def _attach(how: str, prefix: str, target: str) -> Feature:
    if how == "lsm":
        return Feature("attach point", f"lsm {target}", (), btf_name=f"bpf_lsm_{target}")
    if how == "raw_tp":
        return Feature("attach point", f"{prefix} {target}", (),
                       btf_name=f"btf_trace_{target}", soft=prefix.startswith("raw"))
    if how == "event?":
        event = target.rpartition("/")[2]
        return Feature("attach point", f"tracepoint {target}", (),
                       btf_name=f"trace_event_raw_{event}", soft=True)
    return Feature("attach point", f"{prefix} {target}", (), btf_name=target,
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
    names = set(UAPI_ENUMS)
    names.update(f.btf_name for f in features if f.btf_name and not f.btf_enum)
    return names


def check_features(features: Iterable[Feature], target: TargetBtf,
                   version: Version | None) -> tuple[FeatureCheck, ...]:
    """Each feature against a kernel: its BTF first, then its version."""
    btf = target.btf
    enums: dict[str, set[str]] = {}
    for enum_name in UAPI_ENUMS:
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
