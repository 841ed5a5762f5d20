"""The host side of WebAssembly user space (``ecc run APP.wasm``, eunomia's wasm-bpf ABI).

Real everything: guests in C (tests/data/wasm/) built with clang-19 for wasm32-wasi at
test time, the BPF object they embed built with ``ecc build``, run by wasmtime through
``python -m ecc run`` and loaded by libbpf into the running kernel. Each hostile guest
must end the run with exactly one ``ecc: error:`` line, exit status 1, and nothing of it
left in the kernel (bpftool is asked by program name: every program here is wasmh_*).
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, needs, require

from ecc.run.wasm.guest import MAX_STRING, GuestFault, GuestMemory

DATA = ROOT / "tests" / "data" / "wasm"
ERR = "ecc: error: "
TIMEOUT = 30


# -- the guest memory accessor, without wasmtime -----------------------------------


def _memory(size: int) -> tuple[GuestMemory, bytearray]:
    mem = bytearray(size)

    def write(start: int, data: bytes) -> None:
        mem[start:start + len(data)] = data

    return GuestMemory(lambda: len(mem), lambda s, n: bytes(mem[s:s + n]), write), mem


def test_memory_refuses_what_a_32_bit_sum_would_wrap() -> None:
    memory, _ = _memory(65536)
    # 0xffffff00 + 0x200 is 0x100 in 32 bits: inside memory, had the check wrapped.
    with pytest.raises(GuestFault) as caught:
        memory.read(0xFFFFFF00, 0x200, "key")
    assert str(caught.value) == ("key pointer 0xffffff00 + 512 bytes is past the guest's "
                                 "memory (65536 bytes)")
    with pytest.raises(GuestFault, match=r"^value length -1 is negative$"):
        memory.check(0, -1, "value")


def test_memory_reads_and_writes_up_to_the_last_byte() -> None:
    memory, mem = _memory(64)
    memory.write(60, b"abcd", "value")
    assert memory.read(60, 4, "key") == b"abcd" and mem[60:64] == b"abcd"
    with pytest.raises(GuestFault, match=r"^value pointer 0x3d \+ 4 bytes is past"):
        memory.write(61, b"abcd", "value")
    assert memory.read(64, 0, "key") == b""  # an empty read at the very end is fine


def test_memory_strings_need_a_nul_in_bounds() -> None:
    memory, mem = _memory(MAX_STRING * 2 + 16)
    mem[8:12] = b"lo\0x"
    assert memory.string(8, "name") == "lo"
    mem[16:16 + MAX_STRING + 1] = b"a" * (MAX_STRING + 1)
    with pytest.raises(GuestFault, match=rf"^name at 0x10 is longer than {MAX_STRING} bytes$"):
        memory.string(16, "name")
    mem[-4:] = b"abcd"
    with pytest.raises(GuestFault, match=r"runs past the guest's memory \(8208 bytes\) "
                                         r"without a NUL$"):
        memory.string(len(mem) - 4, "name")
    with pytest.raises(GuestFault, match=r"^name pointer 0x2010 is past"):
        memory.string(len(mem), "name")


# -- building the guests --------------------------------------------------------


@dataclass
class Guests:
    dir: Path
    guest: Path
    badsig: Path


def _clang_wasm(source: Path, out: Path, include: Path) -> None:
    subprocess.run(["clang-19", "--target=wasm32-wasi", "-O2", f"-I{include}", f"-I{DATA}",
                    "-Wl,--allow-undefined,--export-table", str(source), "-o", str(out)],
                   check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def guests(tmp_path_factory: pytest.TempPathFactory) -> Guests:
    require("wasm", "clang")
    out = tmp_path_factory.mktemp("wasm")
    subprocess.run([sys.executable, "-m", "ecc", "build", str(DATA / "wasmh.bpf.c"), "-o",
                    str(out)], check=True, capture_output=True, text=True)
    data = (out / "wasmh.bpf.o").read_bytes()
    # WASI gives the guest no file system by default: the object is compiled in.
    (out / "wasmh_obj.h").write_text(
        "static const unsigned char wasmh_obj[] = {" + ",".join(map(str, data)) + "};\n")
    _clang_wasm(DATA / "guest.c", out / "guest.wasm", out)
    _clang_wasm(DATA / "badsig.c", out / "badsig.wasm", out)
    return Guests(out, out / "guest.wasm", out / "badsig.wasm")


# -- running them ---------------------------------------------------------------


class Run:
    """``python -m ecc run NAME ARGS`` in the guests' folder, its stdout read line by
    line in a thread so that the test can wait for a line with a deadline."""

    def __init__(self, cwd: Path, name: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ecc", "run", name, *args],
                                     cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_line(self, predicate: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if predicate(line):
                return line
        self.proc.kill()
        _, err = self.proc.communicate()
        pytest.fail(f"no {what} line from the guest; stdout {self.lines}, stderr {err!r}")

    def value(self, key: str) -> int:
        """N of the guest's line ``KEY N``."""
        return int(self.wait_line(lambda s: s.startswith(key + " "), key).split()[1])

    def finish(self, poke: Callable[[], None] | None = None) -> tuple[int, list[str], str]:
        """Wait for the exit (running ``poke`` meanwhile, to make events); the exit
        status, all stdout lines, stderr."""
        deadline = time.monotonic() + TIMEOUT
        while self.proc.poll() is None and time.monotonic() < deadline:
            if poke is not None:
                poke()
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate(timeout=TIMEOUT)
        while (line := self._queue.get(timeout=TIMEOUT)) is not None:
            self.lines.append(line)
        return self.proc.returncode, self.lines, err


def _bpftool(*args: str) -> object:
    result = subprocess.run(["bpftool", "-j", *args], check=True, capture_output=True, text=True)
    return json.loads(result.stdout or "null")


def leftovers() -> list[str]:
    """Everything of the test guests still in the kernel: their programs, links to
    them, an XDP program on lo."""
    progs = _bpftool("prog", "show")
    assert isinstance(progs, list)
    ours = {p["id"]: p["name"] for p in progs if str(p.get("name", "")).startswith("wasmh_")}
    found = [f"prog {name}" for name in ours.values()]
    links = _bpftool("link", "show") or []
    assert isinstance(links, list)
    found += [f"link {link['id']} of {ours[link['prog_id']]}" for link in links
              if link.get("prog_id") in ours]
    net = subprocess.run(["ip", "-d", "link", "show", "lo"], capture_output=True, text=True)
    if "prog/xdp" in net.stdout:
        found.append("xdp on lo")
    return found


@pytest.fixture
def clean_kernel(kernel: None) -> None:
    require("bpftool")
    assert leftovers() == [], "a previous run left programs behind"


@dataclass
class Trigger:
    """A copy of /bin/true under a name of its own: the guests filter execs by comm, so
    only the test's own execs reach their callbacks."""

    comm: str
    binary: Path

    def __call__(self) -> int:
        child = subprocess.Popen([str(self.binary)])
        child.wait()
        return child.pid


@pytest.fixture
def trigger(tmp_path: Path) -> Trigger:
    comm = "whx" + secrets.token_hex(4)  # 11 bytes: the whole name fits in comm
    shutil.copy("/bin/true", tmp_path / comm)
    return Trigger(comm, tmp_path / comm)


# -- a well-behaved guest ---------------------------------------------------------


@pytest.mark.parametrize(("buffer", "code"), [("ring", 3), ("perf", 7)])
def test_guest_sees_the_exec_and_works_the_map(guests: Guests, clean_kernel: None,
                                               trigger: Trigger, buffer: str, code: int) -> None:
    comm = trigger.comm
    run = Run(guests.dir, "guest.wasm", "events", buffer, comm, str(code))
    run.wait_line(lambda s: s == "ready", "ready")
    assert leftovers() != []  # the check below can see the guest's programs
    pid = trigger()
    status, lines, err = run.finish()
    assert status == code, (lines, err)
    program = "wasmh_exec_perf" if buffer == "perf" else "wasmh_exec"
    assert lines == [
        f"attach {program} rc=0",
        "missing program rc=-2",   # -ENOENT
        "missing map rc=-2",
        "ready",
        f"event pid={pid} comm={comm} size=20 ctx=1234",
        "update rc=0",
        f"lookup rc=0 value={pid}",
        "first key rc=0 key=7",
        "after last rc=-2",
        "lookup missing rc=-2",
        "delete rc=0",
        "delete again rc=-2",
        "bad cmd rc=-22",          # -EINVAL
        "foreign fd rc=-9",        # -EBADF: not one of the guest's maps
        "close rc=0",
    ]
    assert err == ""
    assert leftovers() == []


def test_attach_target_errors_are_errnos(guests: Guests, clean_kernel: None) -> None:
    status, lines, err = Run(guests.dir, "guest.wasm", "xdp-nowhere").finish()
    assert status == 0
    assert lines == ["attach wasmh_xdp rc=-19", "attach wasmh_xdp rc=-22"]  # ENODEV, EINVAL
    assert err.splitlines() == [
        "ecc: warning: guest.wasm: wasm_attach_bpf_program: program 'wasmh_xdp' (xdp): "
        "no network interface 'wasmh_nosuchif'",
        "ecc: warning: guest.wasm: wasm_attach_bpf_program: program 'wasmh_xdp' (xdp): "
        "needs an interface name as attach target",
    ]
    assert leftovers() == []


def test_exit_inside_a_callback_is_the_exit_status(guests: Guests, clean_kernel: None,
                                                   trigger: Trigger) -> None:
    run = Run(guests.dir, "guest.wasm", "exit-inside", trigger.comm)
    run.wait_line(lambda s: s == "ready", "ready")
    assert "xdp on lo" in leftovers()
    status, _, err = run.finish(poke=trigger)
    assert (status, err) == (5, "")
    assert leftovers() == []


# -- hostile guests: one line, exit 1, nothing left --------------------------------

WHERE = "guest.wasm: "
HOSTILE: dict[str, tuple[bool, Callable[[Run], str]]] = {
    # mode: (needs an exec to reach its callback, the expected error line from the run)
    "badhandle": (False, lambda r: "wasm_attach_bpf_program: no BPF object has handle 0x1234"),
    "closed": (False, lambda r: "wasm_bpf_map_fd_by_name: no BPF object has handle 0x1"),
    "keyptr": (False, lambda r: (lambda m: f"wasm_bpf_map_operate: key pointer {m - 2:#x} + 4 "
                                           f"bytes is past the guest's memory ({m} bytes)")(
        r.value("memory"))),
    "overflow": (False, lambda r: "wasm_load_bpf_object: object pointer 0xffffff00 + 512 bytes "
                                  f"is past the guest's memory ({r.value('memory')} bytes)"),
    "negative": (False, lambda r: "wasm_bpf_buffer_poll: data buffer length -1 is negative"),
    "longname": (False, lambda r: f"wasm_attach_bpf_program: program name at "
                                  f"{r.value('name'):#x} is longer than {MAX_STRING} bytes"),
    "notelf": (False, lambda r: "wasm_load_bpf_object: the object (17 bytes) is not an ELF "
                                "file (it starts with 68 65 6c 6c)"),
    "trap": (True, lambda r: f"wasm_bpf_buffer_poll: sample callback {r.value('callback')} "
                             f"trapped: wasm trap: wasm `unreachable` instruction executed"),
    "wrong-type": (True, lambda r: f"wasm_bpf_buffer_poll: sample callback "
                                   f"{r.value('callback')} has type () -> (), not "
                                   f"(i32, i32, i32) -> i32"),
    "close-inside": (True, lambda r: "wasm_close_bpf_object: called from a sample callback, "
                                     "while a buffer is polled"),
}


@pytest.mark.parametrize("mode", sorted(HOSTILE))
def test_hostile_guest_ends_in_one_line(guests: Guests, clean_kernel: None, trigger: Trigger,
                                       mode: str) -> None:
    needs_exec, expected = HOSTILE[mode]
    run = Run(guests.dir, "guest.wasm", mode, *([trigger.comm] if needs_exec else []))
    line = ERR + WHERE + expected(run)
    if needs_exec:
        run.wait_line(lambda s: s == "ready", "ready")
        assert "xdp on lo" in leftovers()
    status, lines, err = run.finish(poke=trigger if needs_exec else None)
    assert (status, err.splitlines()) == (1, [line]), lines
    assert leftovers() == []


@pytest.mark.parametrize("mode", ["keyptr", "trap"])
def test_hostile_guest_in_process_leaves_nothing(guests: Guests, clean_kernel: None,
                                                 trigger: Trigger, mode: str,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    """run_module in this process: a process that lives on proves that the host
    itself detached and closed everything (an exiting process would anyway)."""
    from ecc.errors import WasmError
    from ecc.run.wasm import run_module

    done = threading.Event()

    def poke() -> None:
        while not done.wait(0.1):
            trigger()

    poker = threading.Thread(target=poke, daemon=True)
    poker.start()
    try:
        with pytest.raises(WasmError) as caught:
            run_module(guests.guest.read_bytes(), "app.wasm", ["app.wasm", mode, trigger.comm])
    finally:
        done.set()
        poker.join()
    values = dict(line.split(" ", 1) for line in capfd.readouterr().out.splitlines()
                  if line.startswith(("memory ", "callback ")))
    if mode == "keyptr":
        size = int(values["memory"])
        assert str(caught.value) == (f"app.wasm: wasm_bpf_map_operate: key pointer "
                                     f"{size - 2:#x} + 4 bytes is past the guest's memory "
                                     f"({size} bytes)")
    else:
        assert str(caught.value) == (f"app.wasm: wasm_bpf_buffer_poll: sample callback "
                                     f"{values['callback']} trapped: wasm trap: wasm "
                                     f"`unreachable` instruction executed")
    assert leftovers() == []


def test_wrong_import_type_is_refused_before_it_runs(guests: Guests) -> None:
    status, lines, err = Run(guests.dir, "badsig.wasm").finish()
    assert (status, lines) == (1, [])  # main never ran: "linked" is not printed
    assert err.splitlines() == [
        "ecc: error: badsig.wasm: imports wasm_bpf.wasm_bpf_map_fd_by_name with type "
        "(i32) -> i32; the host's is (i64, i32) -> i32"]


@needs("wasm")
@pytest.mark.parametrize("name", ["junk.wasm", "junk.bin"])
def test_a_module_that_is_not_wasm_is_one_line(tmp_path: Path, name: str) -> None:
    # junk.bin: no .wasm suffix, so it is the \0asm magic that sends it to wasmtime.
    (tmp_path / name).write_bytes(b"\0asm" + b"not a module")
    run = Run(tmp_path, name)
    status, lines, err = run.finish()
    assert status == 1 and lines == []
    [only] = err.splitlines()
    assert only.startswith(f"ecc: error: {name}: not a valid WebAssembly module: "), only


# -- signals --------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_a_callback_that_never_returns(guests: Guests, clean_kernel: None,
                                                    trigger: Trigger, sig: int,
                                                    status: int) -> None:
    run = Run(guests.dir, "guest.wasm", "hang", "lo", trigger.comm)
    run.wait_line(lambda s: s == "ready", "ready")
    trigger()
    run.wait_line(lambda s: s == "in callback", "in callback")
    time.sleep(0.3)
    assert run.proc.poll() is None, "the callback returned"
    assert "xdp on lo" in leftovers()
    run.proc.send_signal(sig)
    got, _, err = run.finish()
    assert (got, err) == (status, "")
    assert leftovers() == []


def test_sigint_ends_a_poll_with_eintr_and_the_guest_exits_itself(
        guests: Guests, clean_kernel: None) -> None:
    """As the wasm-bpf runtime does: the guest's poll (timeout -1) returns -EINTR, the
    guest ends by itself (flushing its output), and its own exit code is ecc's."""
    run = Run(guests.dir, "guest.wasm", "events", "ring", "whx-never-seen", "0")
    run.wait_line(lambda s: s == "ready", "ready")
    time.sleep(0.3)
    run.proc.send_signal(signal.SIGINT)
    got, lines, err = run.finish()
    assert (got, err) == (23, "")  # guest.c's status for a failed poll
    assert lines[-1] == "poll rc=-4"  # Linux's EINTR, as the ABI passes errnos
    assert leftovers() == []


def test_sigterm_stops_a_guest_spinning_in_main(guests: Guests) -> None:
    run = Run(guests.dir, "guest.wasm", "spin")
    run.wait_line(lambda s: s == "spinning", "spinning")
    time.sleep(0.3)
    assert run.proc.poll() is None
    run.proc.send_signal(signal.SIGTERM)
    got, _, err = run.finish()
    assert (got, err) == (143, "")


# -- the library entry point: argv, environment, directories ------------------------


def test_run_module_passes_argv_and_only_the_given_environment(
        guests: Guests, capfd: pytest.CaptureFixture[str]) -> None:
    from ecc.run.wasm import run_module

    os.environ["WASMH"] = "from the host"  # never seen by the guest: env is explicit
    try:
        status = run_module(guests.guest.read_bytes(), "app.wasm", ["app.wasm", "args", "x y"])
        assert status == 9
        assert capfd.readouterr().out.splitlines() == [
            "argv[0]=app.wasm", "argv[1]=args", "argv[2]=x y", "WASMH=(unset)"]
        status = run_module(guests.guest.read_bytes(), "app.wasm", ["app.wasm", "args"],
                            env={"WASMH": "given"})
        assert capfd.readouterr().out.splitlines()[-1] == "WASMH=given"
    finally:
        del os.environ["WASMH"]


def test_files_only_through_dirs(guests: Guests, tmp_path: Path,
                                 capfd: pytest.CaptureFixture[str]) -> None:
    from ecc.run.wasm import run_module

    (tmp_path / "note.txt").write_text("hello from the host\n")
    wasm = guests.guest.read_bytes()
    assert run_module(wasm, "app.wasm", ["app.wasm", "read", "/data/note.txt"]) == 4
    assert capfd.readouterr().out == "cannot open /data/note.txt\n"
    assert run_module(wasm, "app.wasm", ["app.wasm", "read", "/data/note.txt"],
                      dirs=[(str(tmp_path), "/data")]) == 0
    assert capfd.readouterr().out == "read hello from the host\n\n"


def test_cli_passes_the_arguments_after_the_module(guests: Guests) -> None:
    status, lines, err = Run(guests.dir, "guest.wasm", "args", "--json", "-x").finish()
    assert (status, err) == (9, "")
    assert lines == ["argv[0]=guest.wasm", "argv[1]=args", "argv[2]=--json", "argv[3]=-x",
                     "WASMH=(unset)"]
