"""How a package runs (:class:`RunOptions`): what ``ecc run``'s options, the API and
the exporter hand to the loader (loader.py, which re-exports it).

A record (ecc/record.py) that behaves as the ``@dataclass`` it was, without
importing :mod:`dataclasses` on every run.
"""

from __future__ import annotations

from collections.abc import Callable

from ..record import MutableRecord

DEFAULT_PERF_FREQ = 49


class RunOptions(MutableRecord):
    """How a package runs: output, duration, attach targets, and hooks for callers."""

    __slots__ = ("json", "duration", "strict", "btf_custom_path", "section_values", "perf_freq",
                 "max_events", "ifindex", "replace", "cgroup", "uprobe_binary", "uprobe_function",
                 "uprobe_pid", "event_sink", "lost_sink", "printk")
    json: bool
    duration: float | None
    strict: bool
    btf_custom_path: str | None
    section_values: dict[str, bytes]    # section -> initial bytes
    perf_freq: int
    max_events: int | None
    # Attach targets given on the command line: every XDP and TC program goes to
    # `ifindex` (over its annotation); `replace` takes an XDP/tc hook that holds
    # another program; `cgroup` is where cgroup programs attach; a uprobe whose
    # section names no target attaches to `uprobe_function` in `uprobe_binary`.
    ifindex: int | None
    replace: bool
    cgroup: str | None
    uprobe_binary: str | None
    uprobe_function: str | None
    uprobe_pid: int
    # Hooks for callers that consume events themselves (ecc.Program): when set, each
    # ring/perf buffer map's records go, as raw bytes, to the callable event_sink(map
    # name) returns for it (asked once per map, so a C method such as a deque's append
    # takes them with no Python frame between), instead of being decoded and printed;
    # perf buffer losses go to lost_sink(map name, cpu, count).
    event_sink: Callable[[str], Callable[[bytes], object]] | None
    lost_sink: Callable[[str, int, int], None] | None
    # Also print what bpf_printk writes: the kernel's trace pipe, shared by the machine.
    printk: bool

    def __init__(self, json: bool = False, duration: float | None = None, strict: bool = False,
                 btf_custom_path: str | None = None,
                 section_values: dict[str, bytes] | None = None,
                 perf_freq: int = DEFAULT_PERF_FREQ, max_events: int | None = None,
                 ifindex: int | None = None, replace: bool = False, cgroup: str | None = None,
                 uprobe_binary: str | None = None, uprobe_function: str | None = None,
                 uprobe_pid: int = -1,
                 event_sink: Callable[[str], Callable[[bytes], object]] | None = None,
                 lost_sink: Callable[[str, int, int], None] | None = None,
                 printk: bool = False) -> None:
        self.json = json
        self.duration = duration
        self.strict = strict
        self.btf_custom_path = btf_custom_path
        self.section_values = {} if section_values is None else section_values
        self.perf_freq = perf_freq
        self.max_events = max_events
        self.ifindex = ifindex
        self.replace = replace
        self.cgroup = cgroup
        self.uprobe_binary = uprobe_binary
        self.uprobe_function = uprobe_function
        self.uprobe_pid = uprobe_pid
        self.event_sink = event_sink
        self.lost_sink = lost_sink
        self.printk = printk
