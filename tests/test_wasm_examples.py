"""The WebAssembly examples (examples/wasm-*), built and run as their READMEs say.

Each example is built with ``python -m ecc build STEM.bpf.c STEM.h --wasm -o TMP``
(the guest is STEM.c beside them; TMP is the test's temp folder, so nothing is left
in the tree) and run with ``python -m ecc run TMP/STEM.wasm ARGS`` against the
running kernel. What the tests exec are copies of /bin/true, /bin/false and
/bin/sleep under names of their own, so the pids, comms and parents in the guests'
lines are known to the test.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import EXAMPLES, needs

pytestmark = [needs("clang", "wasm", "kernel", "bpftool")]

TIMEOUT = 30
# Every BPF program of the three examples is named with one of these prefixes.
PROGRAM_PREFIXES = ("wb_", "wrq_", "wal_")
SLOTS = 26  # examples/wasm-runqlat/wasm-runqlat.h MAX_SLOTS


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> dict[str, Path]:
    """Each example built once: its name -> the .wasm."""
    root = tmp_path_factory.mktemp("wasm-examples")
    out: dict[str, Path] = {}
    for name in ("bootstrap", "runqlat", "allowlist"):
        stem = f"wasm-{name}"
        src = EXAMPLES / stem
        # as the READMEs say: --wasm without a value builds <stem>.c beside the source
        result = subprocess.run(
            [sys.executable, "-m", "ecc", "build", str(src / f"{stem}.bpf.c"),
             str(src / f"{stem}.h"), "--wasm", "-o", str(root / stem)],
            capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stderr
        out[name] = root / stem / f"{stem}.wasm"
        assert out[name].read_bytes()[:4] == b"\0asm"
    return out


def our_programs() -> list[str]:
    progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    return sorted(p["name"] for p in progs if str(p.get("name", "")).startswith(PROGRAM_PREFIXES))


@pytest.fixture
def clean(kernel: None) -> Iterator[None]:
    """No program of these examples in the kernel before the test, nor after it."""
    assert settled_programs() == [], "a previous run left programs behind"
    yield
    assert settled_programs() == []


def settled_programs() -> list[str]:
    """our_programs(), once the kernel is done freeing: it frees a program after its
    last reference goes, through RCU, so one may still be listed for a moment after
    the process that held it exited."""
    deadline = time.monotonic() + 5
    while (found := our_programs()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


class Run:
    """``python -m ecc run APP.wasm ARGS``, its stdout read line by line in a thread (and
    its stderr in another: nothing else reads the pipes)."""

    def __init__(self, wasm: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ecc", "run", str(wasm), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._ended = False
        self._err: list[str] = []
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self._err.append(self.proc.stderr.read())

    def _fail(self, what: str) -> None:
        self.proc.kill()
        self.proc.wait()
        self._err_reader.join(TIMEOUT)
        pytest.fail(f"no {what} from the guest; stdout {self.lines}, stderr {self._err!r}")

    def wait_line(self, predicate: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while not self._ended and time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                self._ended = True
                break
            self.lines.append(line)
            if predicate(line):
                return line
        self._fail(what)
        raise AssertionError  # not reached: pytest.fail raises

    def finish(self, sig: int | None = None) -> tuple[int, list[str], str]:
        """Send ``sig`` (if any), wait for the exit: status, all stdout lines, stderr."""
        if sig is not None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self._fail("exit")
        while not self._ended and (line := self._queue.get(timeout=TIMEOUT)) is not None:
            self.lines.append(line)
        self._ended = True
        self._err_reader.join(TIMEOUT)
        return self.proc.returncode, self.lines, "".join(self._err)


@dataclass
class Program:
    """A copy of a system binary under a name of its own (its comm)."""

    comm: str
    path: Path

    def run(self, *args: str) -> int:
        child = subprocess.Popen([str(self.path), *args])
        child.wait()
        return child.pid


@pytest.fixture
def programs(tmp_path: Path) -> Callable[[str, str], Program]:
    def make(prefix: str, binary: str) -> Program:
        comm = prefix + secrets.token_hex(4)  # under 16 bytes: the whole name is the comm
        path = tmp_path / comm
        shutil.copy(binary, path)
        return Program(comm, path)
    return make


# -- wasm-bootstrap ----------------------------------------------------------------

def bootstrap_lines(lines: list[str], kind: str, comm: str) -> list[list[str]]:
    """The EXEC or EXIT lines of one comm, split into their columns."""
    return [line.split() for line in lines if line.split()[:2] == [kind, comm]]


def test_bootstrap_reports_the_exec_and_exit_of_a_process_the_test_ran(
        apps: dict[str, Path], clean: None, programs: Callable[[str, str], Program]) -> None:
    false = programs("wbf", "/bin/false")
    run = Run(apps["bootstrap"], "-d", "0")
    assert run.wait_line(lambda s: True, "header").split() == [
        "EVENT", "COMM", "PID", "PPID", "FILENAME", "/", "EXIT", "CODE", "(LIFETIME)"]
    pid = false.run()
    run.wait_line(lambda s: s.split()[:2] == ["EXIT", false.comm], f"EXIT of {false.comm}")
    status, lines, err = run.finish(signal.SIGINT)
    # Ctrl-C: the guest's poll returns -EINTR and it ends by itself, status 0.
    assert (status, err) == (0, "")
    me = str(os.getpid())
    assert bootstrap_lines(lines, "EXEC", false.comm) == [
        ["EXEC", false.comm, str(pid), me, str(false.path)]]
    [exit_line] = bootstrap_lines(lines, "EXIT", false.comm)
    assert exit_line[:5] == ["EXIT", false.comm, str(pid), me, "1"]  # /bin/false's status
    assert re.fullmatch(r"\(\d+ms\)", exit_line[5])
    kinds = [s.split()[0] for s in lines if s.split()[1:2] == [false.comm]]
    assert kinds == ["EXEC", "EXIT"]


def test_bootstrap_min_duration_filters_short_exits_in_the_kernel(
        apps: dict[str, Path], clean: None, programs: Callable[[str, str], Program]) -> None:
    short, long = programs("wbs", "/bin/true"), programs("wbl", "/bin/sleep")
    run = Run(apps["bootstrap"], "-d", "300")
    run.wait_line(lambda s: s.startswith("EVENT"), "header")
    short_pid = short.run()
    long_pid = long.run("0.6")
    # The ring buffer keeps the kernel's order: had the short exit been reported, it
    # would be a line before the long one's.
    run.wait_line(lambda s: s.split()[:2] == ["EXIT", long.comm], f"EXIT of {long.comm}")
    status, lines, err = run.finish(signal.SIGINT)
    # Ctrl-C: the guest's poll returns -EINTR and it ends by itself, status 0.
    assert (status, err) == (0, "")
    me = str(os.getpid())
    # execs are still reported; only the exit of the process younger than 300 ms is not
    assert bootstrap_lines(lines, "EXEC", short.comm) == [
        ["EXEC", short.comm, str(short_pid), me, str(short.path)]]
    assert bootstrap_lines(lines, "EXIT", short.comm) == []
    [exit_line] = bootstrap_lines(lines, "EXIT", long.comm)
    assert exit_line[:5] == ["EXIT", long.comm, str(long_pid), me, "0"]
    lived = int(exit_line[5].removeprefix("(").removesuffix("ms)"))
    assert 600 <= lived < 600 + TIMEOUT * 1000


def test_bootstrap_refuses_a_bad_duration(apps: dict[str, Path]) -> None:
    status, lines, err = Run(apps["bootstrap"], "-d", "soon").finish()
    assert (status, lines) == (2, [])
    assert err.startswith("usage: ") and "-d MS" in err


# -- wasm-runqlat ------------------------------------------------------------------

@dataclass
class Histogram:
    slots: list[int]
    total: int


def parse_histograms(lines: list[str]) -> list[Histogram]:
    """The guest's histograms: a ``HH:MM:SS UTC`` line, a header, one line per bucket
    ``LOW -> HIGH : COUNT |bar|``, ``total N``."""
    out: list[Histogram] = []
    slots: list[int] | None = None
    for line in lines:
        if re.fullmatch(r"\d\d:\d\d:\d\d UTC", line):
            slots = [0] * SLOTS
        elif slots is not None and (m := re.fullmatch(
                r"\s*(\d+) -> (\d+)\s*: (\d+)\s+\|[* ]{40}\|", line)):
            low, high, count = map(int, m.groups())
            slot = high.bit_length() - 1
            assert (low, high) == (0 if slot == 0 else 1 << slot, (1 << (slot + 1)) - 1), line
            slots[slot] = count
        elif slots is not None and line.startswith("total "):
            out.append(Histogram(slots, int(line.split()[1])))
            slots = None
    return out


def kernel_histogram() -> list[int]:
    """The guest's map ``hist`` read by bpftool: the one running wrq_switch's."""
    progs = [p for p in json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], check=True,
                                                  capture_output=True, text=True).stdout)
             if p.get("name") == "wrq_switch"]
    assert len(progs) == 1, progs
    for map_id in progs[0]["map_ids"]:
        shown = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "id", str(map_id)],
                                          check=True, capture_output=True, text=True).stdout)
        if shown["name"] == "hist":
            value = json.loads(subprocess.run(
                ["bpftool", "-j", "map", "lookup", "id", str(map_id), "key", "0", "0", "0", "0"],
                check=True, capture_output=True, text=True).stdout)["value"]
            return list(struct.unpack(f"<{SLOTS}I", bytes(int(b, 16) for b in value)))
    raise AssertionError(f"no map hist among {progs[0]['map_ids']}")


def test_runqlat_histogram_grows_between_intervals(apps: dict[str, Path], clean: None) -> None:
    stop = threading.Event()

    def load() -> None:  # wakeups and context switches: short sleeps, short processes
        while not stop.is_set():
            subprocess.run(["/bin/true"], check=True)
            time.sleep(0.001)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        run = Run(apps["runqlat"], "1", "3")
        run.wait_line(lambda s: s.startswith("Tracing run queue latency"), "banner")
        run.wait_line(lambda s: s.startswith("total "), "first histogram")
        between = kernel_histogram()  # before the guest reads the map a third time
        status, lines, err = run.finish()
    finally:
        stop.set()
        loader.join()
    assert (status, err) == (0, "")
    hists = parse_histograms(lines)
    assert len(hists) == 3, lines
    for h in hists:
        assert sum(h.slots) == h.total
    first, second, third = hists
    assert 0 < first.total < second.total < third.total
    # counts since the start: no bucket ever shrinks, and the kernel's own copy read
    # between the first and the third print lies between them
    for before, after in ((first, second), (second, third)):
        assert all(a >= b for a, b in zip(after.slots, before.slots, strict=True))
    assert all(f <= k <= t for f, k, t in zip(first.slots, between, third.slots, strict=True))


def test_runqlat_refuses_a_bad_interval(apps: dict[str, Path]) -> None:
    status, lines, err = Run(apps["runqlat"], "0").finish()
    assert (status, lines) == (2, [])
    assert err.startswith("usage: ")


# -- wasm-allowlist ----------------------------------------------------------------

def test_allowlist_edits_reach_the_kernel(apps: dict[str, Path], clean: None,
                                         programs: Callable[[str, str], Program]) -> None:
    control, target = programs("wac", "/bin/true"), programs("wat", "/bin/true")
    run = Run(apps["allowlist"], "-c", control.comm, f"+{target.comm}", f"-{target.comm}")
    run.wait_line(lambda s: s == "ready", "ready")
    target.run()                            # not in the list yet: in no line below
    first_step = control.run()              # the guest allows the target
    run.wait_line(lambda s: s == f"allow {target.comm}", "allow")
    allowed = target.run()                  # reported
    second_step = control.run()             # the guest removes it
    run.wait_line(lambda s: s.startswith(f"deny {target.comm}"), "deny")
    target.run()                            # removed: in no line below
    last = control.run()                    # no edit left: the guest ends
    status, lines, err = run.finish()
    assert (status, err) == (0, "")
    me = str(os.getpid())
    assert [line.split() for line in lines] == [
        ["allow", control.comm],
        ["ready"],
        ["EXEC", control.comm, str(first_step), me, "#1"],
        ["allow", target.comm],
        ["EXEC", target.comm, str(allowed), me, "#1"],  # the kernel's count for it
        ["EXEC", control.comm, str(second_step), me, "#2"],
        ["deny", target.comm, "after", "1", "execs"],   # read back from the map
        ["EXEC", control.comm, str(last), me, "#3"],
        ["done"],
    ]


def test_allowlist_names_given_at_start_are_reported(
        apps: dict[str, Path], clean: None, programs: Callable[[str, str], Program]) -> None:
    listed, other = programs("wal", "/bin/true"), programs("wao", "/bin/true")
    run = Run(apps["allowlist"], listed.comm)
    run.wait_line(lambda s: s == "ready", "ready")
    other.run()  # not listed: in no line below
    pid = listed.run()
    run.wait_line(lambda s: s.split()[:2] == ["EXEC", listed.comm], "exec")
    status, lines, err = run.finish(signal.SIGINT)
    # Ctrl-C: the guest's poll returns -EINTR and it ends by itself, status 0.
    assert (status, err) == (0, "")
    assert [line.split() for line in lines] == [
        ["allow", listed.comm], ["ready"], ["EXEC", listed.comm, str(pid), str(os.getpid()),
                                            "#1"]]


def test_allowlist_refuses_edits_without_a_control(apps: dict[str, Path]) -> None:
    status, lines, err = Run(apps["allowlist"], "+curl").finish()
    assert (status, lines) == (2, [])
    assert err.startswith("usage: ")


# -- a program written against the upstream guest SDK's API -------------------------------

def _links_of(pid: int) -> set[int]:
    """The ids of the BPF links the process holds (its fds' fdinfo names them)."""
    ids = set()
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            text = info.read_text()
        except OSError:  # the fd was closed meanwhile
            continue
        match = re.search(r"^link_id:\s*(\d+)$", text, re.M)
        if match:
            ids.add(int(match.group(1)))
    return ids


def _live_links() -> set[int]:
    links = json.loads(subprocess.run(["bpftool", "-j", "link", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    return {link["id"] for link in links}


def test_an_upstream_sdk_program_builds_and_runs_against_the_kernel(
        tmp_path: Path, cache_env: Path, kernel: None,
        programs: Callable[[str, str], Program]) -> None:
    """tests/data/wasm_guest/bootstrap.c makes the calls of wasm-bpf's bootstrap example
    (open, skel->rodata, load, attach, bpf_buffer__open, bpf_map__fd, bpf_map_update_elem,
    poll, free, destroy) against examples/bootstrap, built with ecc's skeleton and header;
    here it runs under `ecc run` and reports the exit of a process the test ran."""
    guest = Path(__file__).resolve().parent / "data" / "wasm_guest" / "bootstrap.c"
    src = EXAMPLES / "bootstrap"
    built = subprocess.run(
        [sys.executable, "-m", "ecc", "build", str(src / "bootstrap.bpf.c"),
         str(src / "bootstrap.h"), "--wasm", str(guest), "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stderr
    false = programs("wuf", "/bin/false")
    run = Run(tmp_path / "bootstrap.wasm", "-d", "0")
    deadline = time.monotonic() + TIMEOUT
    while len(links := _links_of(run.proc.pid)) < 2:  # it prints nothing before an event
        assert time.monotonic() < deadline and run.proc.poll() is None, "never attached"
        time.sleep(0.05)
    pid = false.run()
    time.sleep(0.5)  # a poll of 100 ms takes the event in
    status, lines, err = run.finish(signal.SIGINT)
    # The guest's loop ends on the -EINTR of its poll and returns 0, flushing stdout.
    assert (status, err) == (0, "")
    exits = [line for line in lines if f" pid={pid} " in line and f"comm={false.comm} " in line
             and line.endswith("exit_event=1")]
    assert len(exits) == 1, lines
    assert " exit_code=1 " in exits[0] and " size=168 " in exits[0]
    assert links and not links & _live_links()  # its two links went with it
