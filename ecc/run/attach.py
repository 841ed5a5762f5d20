"""Where a program attaches when its section does not say: eunomia's defaults and
annotations (spec section 5), and the targets that only the command line can give.

The program types listed in ``WAITS_FOR`` cannot be attached from their section
alone; ``Runner`` loads them and reports what each waits for instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import EccError
from . import libbpf

# Attach-point names of BPF_TC_* in tchook annotations.
TC_ATTACH_POINTS = {"BPF_TC_INGRESS": libbpf.BPF_TC_INGRESS, "BPF_TC_EGRESS": libbpf.BPF_TC_EGRESS}

UPROBE_KINDS = ("uprobe", "uretprobe", "usdt")
NETWORK_KINDS = ("xdp", "tc", "classifier", "tcx")
CGROUP_WANTS = "a cgroup: pass --cgroup PATH (a cgroup v2 folder, such as /sys/fs/cgroup)"
CGROUP_TYPES = frozenset({
    libbpf.ProgType.CGROUP_SKB, libbpf.ProgType.CGROUP_SOCK, libbpf.ProgType.SOCK_OPS,
    libbpf.ProgType.CGROUP_DEVICE, libbpf.ProgType.CGROUP_SOCK_ADDR,
    libbpf.ProgType.CGROUP_SYSCTL, libbpf.ProgType.CGROUP_SOCKOPT})
# Program types libbpf cannot attach from the section alone, and what they need;
# the run goes on without them (their maps and the other programs still work).
WAITS_FOR: dict[int, str] = {
    **{t: CGROUP_WANTS for t in CGROUP_TYPES},
    libbpf.ProgType.SOCKET_FILTER: "a socket to be attached to (setsockopt SO_ATTACH_BPF)",
    libbpf.ProgType.SK_SKB: "a sockmap or sockhash to be attached to",
    libbpf.ProgType.SK_MSG: "a sockmap or sockhash to be attached to",
    libbpf.ProgType.SK_REUSEPORT: "a reuseport socket group to be attached to",
    libbpf.ProgType.SCHED_ACT: "a tc action to run it (tc action ... bpf)",
    libbpf.ProgType.LWT_IN: "a route to run it (ip route ... encap bpf)",
    libbpf.ProgType.LWT_OUT: "a route to run it (ip route ... encap bpf)",
    libbpf.ProgType.LWT_XMIT: "a route to run it (ip route ... encap bpf)",
    libbpf.ProgType.LWT_SEG6LOCAL: "a seg6local route to run it",
    libbpf.ProgType.FLOW_DISSECTOR: "a network namespace to be attached to",
    libbpf.ProgType.SK_LOOKUP: "a network namespace to be attached to",
    libbpf.ProgType.LIRC_MODE2: "a lirc device to be attached to",
}


def section_kind(section: str) -> str:
    return section.split("/", 1)[0].split(".", 1)[0]


def interface_name(ifindex: int) -> str:
    import socket  # only for XDP and TC programs

    try:
        return f"{socket.if_indextoname(ifindex)} (ifindex {ifindex})"
    except OSError:
        return f"ifindex {ifindex}"


def int_annotation(ann: Mapping[str, Any], key: str, where: str) -> int | None:
    value = ann.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EccError(f"{where}: @{key} must be an integer, got {value!r}")
    return value


def interface_index(ifindex: int | None, iface: str | None) -> int | None:
    """``--ifindex N`` or ``--iface NAME`` as an ifindex; None when neither is given."""
    if iface is None:
        return ifindex
    if ifindex is not None:
        raise EccError("--ifindex and --iface both name an interface; give one")
    import socket

    try:
        return socket.if_nametoindex(iface)
    except OSError:
        raise EccError(f"--iface {iface}: no such network interface here") from None
