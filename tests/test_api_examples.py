"""Every example under examples/ driven through the public API only (issue 21, "done
when" 1), as a user's script would: ``ecc.build`` into the test's folder, ``ecc.load``,
``prog.attach(...)``, then ``events()``, ``maps[...]``, ``histogram()`` or
``iterate()`` against the real kernel. Each test starts the activity the example
traces itself (a process, an open, a chdir, UDP datagrams) and asserts that what the
kernel reports is that activity: the pid and comm of the process the test started,
the file it opened, the packets it sent; where an example has options, one that
filters in the kernel; where it has a writable map, a value written from Python that
changes what the kernel reports next.

XDP and TC run in a network namespace of their own, the API script in a child
process under ``ip netns exec`` (its ``lo`` is private: no other test's program on
the host's ``lo`` can collide). A program this kernel cannot attach (kprobes are
compiled out here) is asserted to raise the exact ``ecc.AttachError`` and then
skipped with "kernel limit" as the reason.

The WebAssembly examples (examples/wasm-*) are apps whose guest drives the
programs, not packages for the API: tests/test_wasm_examples.py covers them.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import EXAMPLES, ROOT, kernel_config

import ecc

pytestmark = [pytest.mark.kernel, pytest.mark.clang]

WASM_PREFIX = "wasm-"  # WebAssembly apps: tests/test_wasm_examples.py
COVERED: set[str] = set()  # the examples this file has a test for
F = TypeVar("F", bound=Callable[..., Any])


def covers(name: str) -> Callable[[F], F]:
    """Mark a test as the API test of examples/NAME (see test_every_example_is_covered)."""
    assert (EXAMPLES / name).is_dir(), f"no example {name}"
    COVERED.add(name)
    return lambda fn: fn


Build = Callable[[str], Path]


@pytest.fixture
def build(tmp_path: Path, cache_env: Path) -> Build:
    """examples/NAME built with ``ecc.build`` into the test's folder: its package.json."""
    def run(name: str) -> Path:
        header = EXAMPLES / name / f"{name}.h"
        result = ecc.build(EXAMPLES / name / f"{name}.bpf.c",
                           header if header.exists() else None, output_dir=tmp_path / name)
        assert result.package == tmp_path / name / "package.json"
        return result.package
    return run


def gated(*argv: str) -> subprocess.Popen[bytes]:
    """A shell that execs ``argv`` once a line arrives on its stdin: its pid is known
    and its own exec is over before the test attaches, so what the program sees of
    that pid after attach() is the traced command alone."""
    child = subprocess.Popen(["sh", "-c", 'echo ready; read line; exec "$@"', "sh", *argv],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def release(child: subprocess.Popen[bytes]) -> None:
    child.communicate(b"go\n", timeout=30)


def until(prog: ecc.Program, done: Callable[[ecc.Event], bool],
          timeout: float = 10) -> Iterator[ecc.Event]:
    """Events until one satisfies ``done`` (included) or the timeout."""
    for event in prog.events(timeout=timeout):
        yield event
        if done(event):
            return


def first_of(prog: ecc.Program, pid: int, timeout: float = 10) -> ecc.Event | None:
    """The first event of process ``pid`` within the timeout."""
    return next((e for e in prog.events(timeout=timeout) if e.pid == pid), None)


# -- process tracers ------------------------------------------------------------------

@covers("bootstrap")
def test_bootstrap_exec_exit_and_start_time_written_from_python(build: Build,
                                                                kernel: None) -> None:
    """The exit event's duration is the kernel's clock minus exec_start[pid]: a start
    time moved five seconds back from Python makes the process live five seconds
    longer. target_pid keeps every other process out, in the kernel."""
    child = gated("/bin/sleep", "1")
    with ecc.load(build("bootstrap"), target_pid=child.pid) as prog:
        prog.attach()
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.close()
        exec_event = first_of(prog, child.pid)
        assert exec_event is not None, "no exec event of the started process"
        starts = prog.maps["exec_start"]
        start = starts[child.pid]  # written by the kernel at exec
        assert start <= time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        starts[child.pid] = start - 5_000_000_000
        child.wait(timeout=30)
        exit_event = first_of(prog, child.pid)
        assert exit_event is not None, "no exit event of the started process"
        assert child.pid not in starts  # deleted by the kernel at exit
        release(gated("/bin/true"))
        assert list(prog.events(timeout=0.5)) == []
    assert (exec_event.pid, exec_event.comm, exec_event.filename, exec_event.exit_event,
            exec_event.ppid) == (child.pid, "sleep", "/bin/sleep", False, os.getpid())
    assert (exit_event.pid, exit_event.comm, exit_event.exit_event,
            exit_event.exit_code) == (child.pid, "sleep", True, 0)
    assert 6_000_000_000 <= exit_event.duration_ns < 20_000_000_000


@covers("perfbuf")
def test_perfbuf_exec_event_is_the_started_process(build: Build, kernel: None) -> None:
    child = gated("/bin/true")
    with ecc.load(build("perfbuf")) as prog:
        assert prog.attach() == ["handle_exec"]
        release(child)
        event = first_of(prog, child.pid)
    assert event is not None, "no exec event of the started process"
    assert (event.comm, event.filename, event.ppid, event.uid) == (
        "true", "/bin/true", os.getpid(), os.getuid())
    assert event.map == "events"


@covers("execsnoop")
def test_execsnoop_command_line_and_max_args_in_the_kernel(build: Build,
                                                           kernel: None) -> None:
    """Each record carries only the bytes filled; max_args cuts the arguments read."""
    seen: dict[int, ecc.Event] = {}
    for max_args in (20, 2):
        child = gated("/bin/true", "alpha", "beta")
        with ecc.load(build("execsnoop"), max_args=max_args) as prog:
            prog.attach()
            release(child)
            event = first_of(prog, child.pid)
        assert event is not None, "no exec event of the started process"
        seen[max_args] = event
        assert (event.comm, event.ppid, event.retval) == ("true", os.getpid(), 0)
    full, cut = seen[20], seen[2]
    assert (full.args, full.args_count, full.args_size) == ("/bin/true alpha beta", 3, 21)
    assert len(full.raw) < 7680  # a short record, not the whole buffer
    assert (cut.args, cut.args_count) == ("/bin/true alpha", 2)


@covers("globals")
def test_globals_values_from_load_arrive_in_events(build: Build, kernel: None) -> None:
    """Options of every section (.rodata, .data, .bss, .data.cfg, .rodata.cfg) are
    what the kernel copies into the events; target_pid filters in the kernel."""
    child, other = gated("/bin/true"), gated("/bin/true")
    with ecc.load(build("globals"), target_pid=child.pid, greeting="hi there", tag=77,
                  scale=5, mode=9, seq=100) as prog:
        assert {"target_pid", "greeting", "tag", "scale", "mode", "seq"} <= set(prog.options)
        prog.attach()
        release(other)
        release(child)
        second = gated("/bin/true")
        events = list(until(prog, lambda e: e.pid == child.pid))
        release(second)
        events += list(prog.events(timeout=0.5))
    assert [(e.pid, e.comm, e.greeting, e.tag, e.scale, e.mode, e.seq) for e in events] == [
        (child.pid, "true", "hi there", 77, 5, 9, 101)]


def test_globals_variables_read_and_written_after_attach(build: Build,
                                                         kernel: None) -> None:
    """prog.variables: .bss/.data/.data.cfg written from Python reach the next event,
    seq (which the program bumps) reads back as the kernel counted, .rodata refuses."""
    first, second = gated("/bin/true"), gated("/bin/true")
    with ecc.load(build("globals"), target_pid=first.pid, tag=1) as prog:
        v = prog.variables
        assert set(v) == {"target_pid", "greeting", "scale", "mode", "tag", "seq"}
        assert "dropped" not in v  # static: private to the program, as in a skeleton
        assert (v["target_pid"], v["greeting"], v["scale"], v["mode"], v["tag"], v["seq"]) == (
            first.pid, "hello", 2, 1, 1, 0)
        prog.attach()
        release(first)
        before = list(until(prog, lambda e: e.pid == first.pid))
        assert v["seq"] == 1  # counted by the kernel
        v["tag"], v["greeting"], v["scale"], v["seq"] = 42, "from python", 7, 500
        with pytest.raises(ecc.EccError) as frozen:
            v["target_pid"] = second.pid
        with pytest.raises(KeyError, match="no global variable 'nope'"):
            v["nope"]
        release(second)  # target_pid still filters: only a seq bump would show it
        assert list(prog.events(timeout=0.5)) == []
        assert v["seq"] == 500
    assert [(e.pid, e.tag, e.greeting, e.scale, e.seq) for e in before] == [
        (first.pid, 1, "hello", 2, 1)]
    assert str(frozen.value) == (
        "globals: variable 'target_pid' is in .rodata, which the kernel froze at load "
        "(read-only for the programs and for user space); set it before load: "
        "ecc.load(..., target_pid=VALUE)")


def test_globals_written_variables_reach_the_next_event(build: Build, kernel: None) -> None:
    child = gated("/bin/true")
    with ecc.load(build("globals"), target_pid=child.pid) as prog:
        prog.attach()
        v = prog.variables
        v["tag"], v["greeting"], v["scale"], v["seq"] = 42, "from python", 7, 500
        release(child)
        events = list(until(prog, lambda e: e.pid == child.pid))
        seq = v["seq"]
    assert [(e.pid, e.comm, e.tag, e.greeting, e.scale, e.seq) for e in events] == [
        (child.pid, "true", 42, "from python", 7, 501)]
    assert seq == 501  # the kernel's increment, read back


@covers("opensnoop")
def test_opensnoop_file_the_started_process_opened(build: Build, tmp_path: Path,
                                                   kernel: None) -> None:
    target = tmp_path / "opened-by-the-test"
    target.write_text("x")
    missing = tmp_path / "not-there"
    child, other = gated("cat", str(target)), gated("cat", str(target))
    with ecc.load(build("opensnoop"), pid=child.pid) as prog:
        prog.attach()
        release(other)
        release(child)
        events = list(until(prog, lambda e: e.fname == str(target)))
    assert {e.pid for e in events} == {child.pid}  # target_pid, in the kernel
    mine = events[-1]
    assert (mine.pid, mine.comm, mine.fname, mine.uid) == (
        child.pid, "cat", str(target), os.getuid())
    assert mine.ret >= 0 and mine.flags & os.O_ACCMODE == os.O_RDONLY

    child = gated("cat", str(missing), str(target))
    with ecc.load(build("opensnoop"), pid=child.pid, targ_failed=True) as prog:
        prog.attach()
        release(child)
        failed = list(until(prog, lambda e: e.fname == str(missing), timeout=5))
        failed += list(prog.events(timeout=0.5))
    assert failed and all(e.ret < 0 for e in failed)  # the open of target is left out
    assert [(e.fname, e.ret) for e in failed if e.fname.startswith(str(tmp_path))] == [
        (str(missing), -2)]  # ENOENT


@covers("execlat")
def test_execlat_counts_and_histogram_per_command(build: Build, tmp_path: Path,
                                                  kernel: None) -> None:
    """A command of the test's own name: exactly its execs in the count map and the
    histogram; a count written from Python is what the kernel adds to."""
    comm = f"ecclat{os.getpid() % 100000}"
    program = tmp_path / comm
    shutil.copy("/bin/true", program)
    key = {"comm": comm}
    with ecc.load(build("execlat")) as prog:
        prog.attach()
        for _ in range(3):
            subprocess.run([str(program)], check=True)
        counted = prog.maps["execs"][key]
        hist = prog.histogram("hists", key=key)
        prog.maps["execs"][key] = 1000
        subprocess.run([str(program)], check=True)
        after = prog.maps["execs"][key]
        per_key = prog.histograms("hists")
    assert counted == 3 and after == 1001
    assert (hist.kind, hist.unit, hist.total, hist.key) == ("log2_hist", "usecs", 3, key)
    assert len(hist.counts) == 27 and hist.buckets[1] == (2, 3)
    assert per_key[ecc.Record(key)].total == 4


# -- scheduler and sampling ------------------------------------------------------------

@covers("runqlat")
def test_runqlat_per_process_histogram_of_the_started_process(build: Build,
                                                              kernel: None) -> None:
    code = "import sys, time\nsys.stdin.readline()\nfor _ in range(50): time.sleep(0.002)\n"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    with ecc.load(build("runqlat"), pids=True, targ_tgid=child.pid) as prog:
        prog.attach()
        child.communicate(b"go\n", timeout=30)
        per_process = prog.histograms("hists")
        total = prog.histogram("hists")
    assert set(per_process) == {child.pid}  # targ_tgid and targ_per_process, in the kernel
    hist = per_process[child.pid]
    assert hist.fields["comm"] == "python3" and hist.key == child.pid
    assert hist.total >= 50  # each sleep ends in a wakeup, then a wait on the run queue
    assert total.counts == hist.counts and total.key is None


@covers("profile")
def test_profile_samples_the_busy_process(build: Build, kernel: None) -> None:
    """perf_event: one CPU-clock event per CPU; targ_pid keeps only the test's child,
    and its user stacks are in the stack map (a map without BTF: bytes in and out)."""
    code = ("import sys, time\nsys.stdin.readline()\nend = time.monotonic() + 1\n"
            "while time.monotonic() < end: pass\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    with ecc.load(build("profile"), targ_pid=child.pid) as prog:
        assert prog.attach() == ["do_perf_event"]
        child.communicate(b"go\n", timeout=30)
        counts = dict(prog.maps["counts"])
        stacks = prog.maps["stackmap"]
        with pytest.raises(TypeError, match="no BTF type"):
            stacks[4]  # an int is no key of a map without BTF (bytes(4) would be 0)
        user = [stacks[struct.pack("=I", k.user_stack_id)] for k in counts
                if k.user_stack_id >= 0]
    assert {(k.pid, k.comm) for k in counts} == {(child.pid, "python3")}
    assert sum(counts.values()) >= 10  # about 49 samples a second for one second
    assert user and all(len(raw) == 127 * 8 for raw in user)
    assert all(struct.unpack_from("=Q", raw)[0] != 0 for raw in user)


# -- iterators ---------------------------------------------------------------------------

@covers("iter")
def test_iter_lists_this_process_above_min_pid(build: Build, kernel: None) -> None:
    with ecc.load(build("iter"), min_pid=os.getpid()) as prog:
        text = prog.iterate("dump_task")
    assert isinstance(text, str)  # BPF_SEQ_PRINTF output reads as text
    header, *lines = text.splitlines()
    rows = [line.split(None, 2) for line in lines]
    comm = Path("/proc/self/comm").read_text().strip()
    assert header.split() == ["PID", "PPID", "COMM"]
    assert [str(os.getpid()), str(os.getppid()), comm] in rows
    assert rows and all(int(row[0]) >= os.getpid() for row in rows)  # min_pid, in the kernel


@covers("task_iter")
def test_task_iter_records_of_the_started_process(build: Build, kernel: None) -> None:
    """bpf_seq_write records come back decoded by the struct @export names, and
    raw=True gives the same bytes undecoded."""
    child = gated("/bin/sleep", "30")
    try:
        with ecc.load(build("task_iter"), min_pid=child.pid) as prog:
            records = prog.iterate("dump_task_info")
            data = prog.iterate("dump_task_info", raw=True)
    finally:
        child.kill()
        child.wait()
    assert isinstance(records, list) and records, records
    mine = [(r.tid, r.ppid, r.comm) for r in records if r.pid == child.pid]
    assert mine == [(child.pid, os.getpid(), "sh")]  # waiting in `read`, one thread
    assert all(r.pid >= child.pid for r in records)  # min_pid, in the kernel
    assert all(set(r.to_dict()) == {"pid", "tid", "ppid", "state", "comm"} for r in records)
    assert all(len(r.raw) == struct.calcsize("=iiiI16s") for r in records)
    # The raw pass is another walk over the tasks: the started process is there too.
    assert isinstance(data, bytes) and len(data) % len(records[0].raw) == 0
    assert struct.pack("=iii", child.pid, child.pid, os.getpid()) in data


# -- user-space probes -------------------------------------------------------------------

def interactive_bash(lines: list[bytes]) -> int:
    """An interactive bash on a pseudo-terminal (so it reads with readline) typing
    ``lines`` and exiting; its pid."""
    leader, follower = pty.openpty()
    try:
        shell = subprocess.Popen(["/bin/bash", "--norc", "--noprofile", "-i"],
                                 stdin=follower, stdout=follower, stderr=follower,
                                 start_new_session=True)
        for line in [*lines, b"exit\n"]:
            os.write(leader, line)
            time.sleep(0.2)
        deadline = time.monotonic() + 20
        while shell.poll() is None and time.monotonic() < deadline:
            # keep the terminal drained so bash never blocks writing its echo
            if select.select([leader], [], [], 0.1)[0]:
                try:
                    os.read(leader, 4096)
                except OSError:  # EIO: bash has gone, the terminal with it
                    break
        shell.wait(timeout=10)
    finally:
        os.close(follower)
        os.close(leader)
    return shell.pid


@covers("uprobe")
def test_uprobe_bash_lines_and_libc_chdir(build: Build, tmp_path: Path,
                                          kernel: None) -> None:
    with ecc.load(build("uprobe")) as prog:
        assert prog.attach() == ["bash_readline", "libc_chdir"]
        bash = interactive_bash([b"echo ecc-line-42\n"])
        cd = subprocess.run(["sh", "-c", f"cd {tmp_path}; echo $$"], capture_output=True,
                            text=True, check=True)
        events = list(until(prog, lambda e: e.func == "chdir" and e.str == str(tmp_path)))
    read = [(e.comm, e.str) for e in events if e.pid == bash and e.func == "readline"]
    assert read == [("bash", "echo ecc-line-42"), ("bash", "exit")]
    assert (events[-1].pid, events[-1].comm) == (int(cd.stdout), "sh")

    child = gated("sh", "-c", f"cd {tmp_path}")
    with ecc.load(build("uprobe"), pid=child.pid) as prog:
        prog.attach()
        subprocess.run(["sh", "-c", f"cd {tmp_path}"], check=True)  # filtered out
        release(child)
        events = list(until(prog, lambda e: e.str == str(tmp_path), timeout=5))
        events += list(prog.events(timeout=0.3))
    assert [(e.pid, e.func, e.str) for e in events] == [(child.pid, "chdir", str(tmp_path))]


# -- kprobes -------------------------------------------------------------------------------

@covers("kprobe")
def test_kprobe_unlink(build: Build, tmp_path: Path, kernel: None) -> None:
    """bpf_printk lines in trace_pipe where kprobes exist; here they are compiled out,
    which is an AttachError naming the program and the reason."""
    with ecc.load(build("kprobe")) as prog:
        if not kernel_config("CONFIG_KPROBES"):
            with pytest.raises(ecc.AttachError) as caught:
                prog.attach()
            assert str(caught.value) == (
                "program 'do_unlinkat' (kprobe/do_unlinkat): this kernel cannot attach "
                "kprobes (kprobes are not built in) [ENOENT]")
            with pytest.raises(ecc.AttachError, match="no program could be attached"):
                prog.attach(skip_unattachable=True)
            assert prog.attached == []
            pytest.skip("kernel limit: kprobes are compiled out of this kernel (the example "
                        "loads; attaching raises ecc.AttachError)")
        assert prog.attach() == ["do_unlinkat", "do_unlinkat_exit"]
        victim = tmp_path / "unlinked-by-the-test"
        victim.write_text("x")
        pipe = os.open("/sys/kernel/tracing/trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        try:
            rm = subprocess.Popen(["rm", str(victim)])
            rm.wait(timeout=30)
            want = f"KPROBE ENTRY pid = {rm.pid}, filename = {victim}"
            text, deadline = "", time.monotonic() + 10
            while time.monotonic() < deadline and want not in text:
                try:
                    text += os.read(pipe, 65536).decode(errors="replace")
                except BlockingIOError:
                    time.sleep(0.05)
        finally:
            os.close(pipe)
    assert want in text


# -- XDP and TC, in a network namespace of the test's own -------------------------------

XDP_SCRIPT = """\
import json, socket, sys
import ecc

package, count = sys.argv[1], int(sys.argv[2])
with ecc.load(package) as prog:
    attached = prog.attach(iface="lo")
    counts = prog.maps["proto_count"]
    before = dict(counts)
    counts[socket.IPPROTO_UDP] = 1000
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(count):
        sock.sendto(b"ping", ("127.0.0.1", 9))
    after = dict(counts)
print(json.dumps({"attached": attached, "before": before, "after": after}))
"""

XDP_VETH_SCRIPT = """\
import json, socket, struct, sys, time
import ecc

package, count = sys.argv[1], int(sys.argv[2])
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, socket.IPPROTO_UDP, 0,
                 socket.inet_aton("10.99.0.1"), socket.inet_aton("10.99.0.2"))
frame = b"\\xff" * 6 + b"\\x02\\0\\0\\0\\0\\x01" + struct.pack("!H", 0x0800) + ip + bytes(8)
with ecc.load(package) as prog:
    attached = prog.attach(iface="ecc-b")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind(("ecc-a", 0))
    for _ in range(count):
        sock.send(frame)
    counts = prog.maps["proto_count"]
    deadline = time.monotonic() + 10  # the peer receives in its own softirq, later
    while counts.get(socket.IPPROTO_UDP, 0) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    after = dict(counts)
print(json.dumps({"attached": attached, "after": after}))
"""

TC_SCRIPT = """\
import json, socket, sys
import ecc

package, count = sys.argv[1], int(sys.argv[2])
with ecc.load(package) as prog:
    attached = prog.attach(ifindex=socket.if_nametoindex("lo"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(count):
        sock.sendto(b"ping", ("127.0.0.1", 9))
    udp = []
    for event in prog.events(timeout=10):
        if event.protocol == socket.IPPROTO_UDP:
            udp.append(event.to_dict())
            if len(udp) == count:
                break
    udp += [e.to_dict() for e in prog.events(timeout=0.5) if e.protocol == socket.IPPROTO_UDP]
print(json.dumps({"attached": attached, "udp": udp}))
"""


def script_in(ns: str, script: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    """A user's API script run inside the namespace; what it printed as JSON."""
    path = tmp_path / "script.py"
    path.write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(path), *args],
                            capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@covers("xdp")
def test_xdp_counts_the_datagrams_sent(build: Build, netns: str, tmp_path: Path,
                                       kernel: None) -> None:
    """The per-protocol count on the namespace's lo: nothing before, then the value
    written from Python plus exactly the UDP datagrams the script sent."""
    out = script_in(netns, XDP_SCRIPT, tmp_path, str(build("xdp")), "25")
    assert out["attached"] == ["xdp_count"]
    assert out["before"] == {}
    assert out["after"]["17"] == 1000 + 25  # IPPROTO_UDP (JSON keys are strings)


@covers("xdp")
def test_xdp_on_a_veth_given_by_name(build: Build, netns: str, tmp_path: Path,
                                     kernel: None) -> None:
    """attach(iface=...) puts the program on that interface: the frames sent into the
    other end of a veth pair are counted, by the protocol in their IPv4 header."""
    for argv in (["ip", "link", "add", "ecc-a", "type", "veth", "peer", "name", "ecc-b"],
                 ["ip", "link", "set", "ecc-a", "up"], ["ip", "link", "set", "ecc-b", "up"]):
        subprocess.run(["ip", "netns", "exec", netns, *argv], check=True)
    out = script_in(netns, XDP_VETH_SCRIPT, tmp_path, str(build("xdp")), "12")
    assert out["attached"] == ["xdp_count"]
    assert out["after"]["17"] == 12


@covers("tc")
def test_tc_decodes_the_datagrams_sent(build: Build, netns: str, tmp_path: Path,
                                       kernel: None) -> None:
    out = script_in(netns, TC_SCRIPT, tmp_path, str(build("tc")), "5")
    assert out["attached"] == ["tc_ingress"]
    loopback = 0x7F000001  # 127.0.0.1, in host order as the program sends it
    # 14 (Ethernet) + 20 (IPv4) + 8 (UDP) + 4 (b"ping") bytes, TTL 64 (Linux's default)
    assert [(p["saddr"], p["daddr"], p["len"], p["ttl"]) for p in out["udp"]] == [
        (loopback, loopback, 46, 64)] * 5


# -- the list --------------------------------------------------------------------------------

def test_every_example_is_covered() -> None:
    """A new example without a test here (or, for a WebAssembly app, in
    tests/test_wasm_examples.py) fails this."""
    folders = {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    wasm = {name for name in folders if name.startswith(WASM_PREFIX)}
    assert folders - wasm == COVERED
    wasm_tests = (ROOT / "tests" / "test_wasm_examples.py").read_text()
    assert all(f'"{name.removeprefix(WASM_PREFIX)}"' in wasm_tests or name in wasm_tests
               for name in wasm)
