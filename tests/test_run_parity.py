"""`ecc run` runs what eunomia's loader runs (issue 22): XDP and TC default to `lo`
(ifindex 1, TC at ingress), programs that need a target wait instead of failing the
run, an occupied hook is reported with --replace offered, and nothing of ecc's is
left on an interface or in the kernel after SIGINT, SIGTERM or a failure.

Each test runs `ecc run` inside a network namespace of its own (`ip netns exec`):
its `lo` is ifindex 1 as on the host, so the defaults are the ones under test, and
no other test's XDP or tc attachment on the host's `lo` can collide with these.
The oracles are `tc`, `ip -d link` and `bpftool`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, ROOT, needs
from runner import EccRun, mounted_bpffs_entries

pytestmark = [pytest.mark.kernel, pytest.mark.clang, needs("bpftool")]

DATA = ROOT / "tests" / "data" / "parity"
PROGRAM_NAMES = {"xdp_count", "tc_ingress", "count_socket", "count_cgroup", "count_uprobe"}


def _build(source_dir: Path, out: Path, *sources: str) -> Path:
    out.mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "ecc", "build", *(str(source_dir / s)
                                                                      for s in sources),
                             "-o", str(out)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return out / "package.json"


def _without_lines(src: Path, dst: Path, *markers: str) -> None:
    lines = src.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not any(m in line for m in markers)]
    assert len(kept) == len(lines) - len(markers), "the example no longer has its annotations"
    dst.write_text("".join(kept))


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory, cache_env: Path,
             kernel: None) -> dict[str, Path]:
    """The xdp and tc examples without their interface annotations, and waits.bpf.c."""
    src = tmp_path_factory.mktemp("parity-src")
    _without_lines(EXAMPLES / "xdp" / "xdp.bpf.c", src / "xdp.bpf.c",
                   "/// @ifindex", "/// @flags", "/// @xdpopts")
    _without_lines(EXAMPLES / "tc" / "tc.bpf.c", src / "tc.bpf.c", "/// @tchook")
    (src / "tc.h").write_text((EXAMPLES / "tc" / "tc.h").read_text())
    out = tmp_path_factory.mktemp("parity-built")
    return {
        "xdp": _build(src, out / "xdp", "xdp.bpf.c"),
        "tc": _build(src, out / "tc", "tc.bpf.c", "tc.h"),
        "waits": _build(DATA, out / "waits", "waits.bpf.c"),
    }


def ecc_in(ns: str, *args: str) -> EccRun:
    return EccRun(argv=["ip", "netns", "exec", ns, sys.executable, "-m", "ecc", "run", *args])


TRACEFS_NOTE = "ecc: mounted tracefs at /sys/kernel/tracing (tracepoints and probes need it)\n"


def ecc_done(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`ecc run ARGS` to its end, its stderr without the line saying it mounted tracefs
    (`ip netns exec` mounts a /sys of its own, where tracefs is not mounted)."""
    result = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "ecc", "run",
                             *args], capture_output=True, text=True, timeout=60, check=False)
    result.stderr = result.stderr.replace(TRACEFS_NOTE, "", 1)
    return result


def in_ns(ns: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          check=True).stdout


def send_udp(ns: str, count: int) -> None:
    in_ns(ns, sys.executable, "-c",
          "import socket\n"
          "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
          f"for _ in range({count}): s.sendto(b'ping', ('127.0.0.1', 9))\n")


def bpftool_json(*args: str) -> Any:
    result = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout or "null")


def ours_in_kernel() -> set[str]:
    """Names of this file's programs that the kernel still has, after up to 5 s (it
    frees a program shortly after its last reference goes)."""
    deadline = time.monotonic() + 5
    while True:
        left = {p.get("name") for p in bpftool_json("prog", "show")} & PROGRAM_NAMES
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def assert_nothing_left(ns: str, pins_before: list[str]) -> None:
    """No filter, qdisc, XDP program, link, program or pin of ecc's."""
    assert in_ns(ns, "tc", "filter", "show", "dev", "lo", "ingress") == ""
    assert in_ns(ns, "tc", "filter", "show", "dev", "lo", "egress") == ""
    assert "clsact" not in in_ns(ns, "tc", "qdisc", "show", "dev", "lo")
    assert "xdp" not in in_ns(ns, "ip", "-d", "link", "show", "lo")
    assert ours_in_kernel() == set()
    progs = {p["id"] for p in bpftool_json("prog", "show") if p.get("name") in PROGRAM_NAMES}
    assert not [link for link in bpftool_json("link", "show") or []
                if link.get("prog_id") in progs]
    assert mounted_bpffs_entries() == pins_before


def test_xdp_defaults_to_lo_and_counts(packages: dict[str, Path], netns: str) -> None:
    pins = mounted_bpffs_entries()
    run = ecc_in(netns, "--json", "--duration", "4", str(packages["xdp"]))
    run.wait_ready()
    assert "ecc: xdp_count: attached to lo (ifindex 1), the default; set @ifindex to choose" \
        in run.err
    assert "prog/xdp" in in_ns(netns, "ip", "-d", "link", "show", "lo")
    send_udp(netns, 20)
    assert run.wait() == 0, run.err
    reports = [r for r in run.json_rows() if r.get("map") == "proto_count"]
    assert reports, run.out
    counts = {json.dumps(e["key"]): e["value"] for e in reports[-1]["entries"]}
    assert counts.get("17", 0) >= 20  # IPPROTO_UDP: our datagrams, seen on lo
    assert_nothing_left(netns, pins)


def test_tc_defaults_to_lo_ingress_and_decodes(packages: dict[str, Path], netns: str) -> None:
    pins = mounted_bpffs_entries()
    run = ecc_in(netns, "--json", "--duration", "8", str(packages["tc"]))
    run.wait_ready()
    assert ("ecc: tc_ingress: attached to lo (ifindex 1) at ingress, the default; set "
            "@tchook to choose") in run.err
    assert "tc_ingress" in in_ns(netns, "tc", "filter", "show", "dev", "lo", "ingress")
    send_udp(netns, 5)
    assert run.wait_for(lambda: any(r.get("protocol") == 17 for r in run.json_rows()))
    assert run.stop() == 0
    row = next(r for r in run.json_rows() if r.get("protocol") == 17)
    assert row["saddr"] == row["daddr"] == 0x7F000001
    assert_nothing_left(netns, pins)


def test_iface_overrides_the_default(packages: dict[str, Path], netns: str) -> None:
    """--iface puts every XDP program on a veth of the namespace, not on lo."""
    in_ns(netns, "ip", "link", "add", "ecc-a", "type", "veth", "peer", "name", "ecc-b")
    in_ns(netns, "ip", "link", "set", "ecc-a", "up")
    run = ecc_in(netns, "--iface", "ecc-a", "--duration", "6", str(packages["xdp"]))
    run.wait_ready()
    assert any(line.startswith("ecc: xdp_count: attached to ecc-a (ifindex ")
               and line.endswith("as --ifindex/--iface asks") for line in run.err), run.err
    assert "prog/xdp" in in_ns(netns, "ip", "-d", "link", "show", "ecc-a")
    assert "xdp" not in in_ns(netns, "ip", "-d", "link", "show", "lo")
    assert run.stop() == 0
    assert "xdp" not in in_ns(netns, "ip", "-d", "link", "show", "ecc-a")


def test_waiting_programs_run_and_their_map_is_read(packages: dict[str, Path],
                                                    netns: str) -> None:
    """Every program of `waits` needs a target: each says what it waits for, the run
    goes on (exit 0), the map is sampled by ecc and readable with bpftool meanwhile."""
    run = ecc_in(netns, "--json", "--duration", "3", str(packages["waits"]))
    run.wait_ready()
    dumped = bpftool_json("map", "dump", "name", "hits")
    assert sorted(int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little")
                  for e in dumped) == [0, 1, 2]
    assert run.wait() == 0, run.err
    # `ip netns exec` mounts a /sys of its own, without tracefs: ecc mounts it and says so.
    said = [line for line in run.err if not line.startswith("ecc: mounted tracefs")]
    assert said[:4] == [
        "ecc: waiting: program 'count_socket' (socket) is loaded and waits for a socket to be "
        "attached to (setsockopt SO_ATTACH_BPF)",
        "ecc: waiting: program 'count_cgroup' (cgroup_skb/egress) is loaded and waits for a "
        "cgroup: pass --cgroup PATH (a cgroup v2 folder, such as /sys/fs/cgroup)",
        "ecc: waiting: program 'count_uprobe' (uprobe) is loaded and waits for a binary and a "
        "function: write the section as uprobe/BINARY:FUNCTION, or pass --uprobe-binary and "
        "--uprobe-function",
        "ecc: running waits: 0 programs attached; 3 waiting (count_socket, count_cgroup, "
        "count_uprobe); Ctrl-C to stop",
    ]
    reports = [r for r in run.json_rows() if r.get("map") == "hits"]
    assert len(reports) >= 2  # sampled every 200 ms while nothing was attached
    assert sorted(e["key"] for e in reports[-1]["entries"]) == [0, 1, 2]
    assert ours_in_kernel() == set()


def test_every_program_waiting_exits_zero(packages: dict[str, Path], netns: str) -> None:
    result = ecc_done(netns, "--duration", "1", str(packages["waits"]))
    assert result.returncode == 0, result.stderr
    assert "3 waiting (count_socket, count_cgroup, count_uprobe)" in result.stderr


@pytest.mark.parametrize("example", ["waits", "xdp-busy", "tc-busy"])
def test_strict_makes_each_fatal(packages: dict[str, Path], netns: str, example: str,
                                 tmp_path: Path) -> None:
    """--strict: a waiting program, or a hook held by another program, is exit 1."""
    pins = mounted_bpffs_entries()
    if example == "waits":
        result = ecc_done(netns, "--strict", "--duration", "1", str(packages["waits"]))
        assert result.returncode == 1
        assert result.stderr == (
            "ecc: error: program 'count_socket' (socket) is loaded and waits for a socket to be "
            "attached to (setsockopt SO_ATTACH_BPF); nothing can attach it (--strict)\n")
    else:
        kind = example.split("-")[0]
        _occupy(netns, kind, packages[kind])
        result = ecc_done(netns, "--strict", "--duration", "1", str(packages[kind]))
        assert result.returncode == 1
        assert result.stderr.startswith("ecc: error: program ")
        assert "already holds" in result.stderr and "pass --replace" in result.stderr
        _release(netns, kind)
    assert_nothing_left(netns, pins)


def _occupy(ns: str, kind: str, package: Path) -> None:
    """Attach the package's own object to lo with iproute2, as another tool would."""
    obj = next(package.parent.glob("*.bpf.o"))
    if kind == "xdp":
        in_ns(ns, "ip", "link", "set", "dev", "lo", "xdp", "obj", str(obj), "sec", "xdp")
    else:
        in_ns(ns, "tc", "qdisc", "add", "dev", "lo", "clsact")
        in_ns(ns, "tc", "filter", "add", "dev", "lo", "ingress", "handle", "1", "prio", "1",
              "bpf", "da", "obj", str(obj), "sec", "tc")


def _release(ns: str, kind: str) -> None:
    if kind == "xdp":
        in_ns(ns, "ip", "link", "set", "dev", "lo", "xdp", "off")
    else:
        in_ns(ns, "tc", "qdisc", "del", "dev", "lo", "clsact")


@pytest.mark.parametrize("kind", ["xdp", "tc"])
def test_busy_hook_is_reported_and_replace_takes_it(packages: dict[str, Path], netns: str,
                                                    kind: str) -> None:
    _occupy(netns, kind, packages[kind])
    result = ecc_done(netns, "--duration", "1", str(packages[kind]))
    assert result.returncode == 1  # nothing else to run
    skipped = [line for line in result.stderr.splitlines() if line.startswith("ecc: skipped:")]
    assert len(skipped) == 1 and "already holds" in skipped[0], result.stderr
    assert skipped[0].endswith("; pass --replace to put this one in its place")
    run = ecc_in(netns, "--replace", "--duration", "6", str(packages[kind]))
    run.wait_ready()
    assert any(line.startswith("ecc: running") for line in run.err), run.err
    assert run.stop() == 0
    if kind == "xdp":
        # Ours replaced the other program; detaching ours leaves the hook empty.
        assert "xdp" not in in_ns(netns, "ip", "-d", "link", "show", "lo")
    else:
        # Ours took the filter's place and is gone with it; the qdisc was not ours.
        assert in_ns(netns, "tc", "filter", "show", "dev", "lo", "ingress") == ""
        assert "clsact" in in_ns(netns, "tc", "qdisc", "show", "dev", "lo")
        _release(netns, kind)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_leave_nothing(packages: dict[str, Path], netns: str, sig: int) -> None:
    pins = mounted_bpffs_entries()
    runs = [ecc_in(netns, str(packages[name])) for name in ("xdp", "tc", "waits")]
    for run in runs:
        run.wait_ready()
    assert "clsact" in in_ns(netns, "tc", "qdisc", "show", "dev", "lo")
    assert {p.get("name") for p in bpftool_json("prog", "show")} >= PROGRAM_NAMES
    for run in runs:
        assert run.stop(sig) == 0
    assert_nothing_left(netns, pins)


def test_failure_after_attaching_leaves_nothing(packages: dict[str, Path], netns: str,
                                                tmp_path: Path) -> None:
    """A tc program attached (with the clsact qdisc it created), then a fatal error in
    the same run: both are gone when ecc exits 1."""
    src = tmp_path / "src"
    src.mkdir()
    tc_source = (EXAMPLES / "tc" / "tc.bpf.c").read_text().replace(
        '/// @tchook {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}\n', "")
    waits = (DATA / "waits.bpf.c").read_text()
    # The tc program first, then the waiting ones: --strict fails on those after tc attached.
    body = waits.split("SEC(\"socket\")", 1)[1]
    (src / "both.bpf.c").write_text(
        tc_source.replace('char LICENSE[] SEC("license") = "Dual BSD/GPL";', "")
        + waits.split("SEC(\"socket\")", 1)[0].split('#include <bpf/bpf_helpers.h>\n', 1)[1]
        + 'SEC("socket")' + body)
    (src / "tc.h").write_text((EXAMPLES / "tc" / "tc.h").read_text())
    package = _build(src, tmp_path / "out", "both.bpf.c", "tc.h")
    pins = mounted_bpffs_entries()
    result = ecc_done(netns, "--strict", "--duration", "1", str(package))
    assert result.returncode == 1
    assert "tc_ingress: attached to lo (ifindex 1) at ingress" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "ecc: error: program 'count_socket' (socket) is loaded and waits for a socket")
    assert_nothing_left(netns, pins)
