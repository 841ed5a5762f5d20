"""`ecc run --json` is a contract (issue 28): every stdout line is one JSON object whose
"type" says what it is, naming the map or program it came from; iterator output is
text lines, decoded records or hex, never raw bytes; `--printk` marks trace pipe lines.

The first part checks the renderings without a kernel; the second runs every golden
case and example that loads against the real kernel while events are triggered."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from builds import Built

from ecc.run.output import EventFormatter, hex_dump, iter_report, printk_line, sample_map_json

TYPES = {"event", "hist", "kv", "iter", "iter_record", "iter_bytes", "printk"}


class Pair:
    """A two-int record decoder (``RecordDecoder``), so iter_report is tested alone."""

    size = 8
    fields = ("pid", "type")
    widths = (5, 4)

    def decode(self, data: bytes) -> dict[str, Any]:
        pid, kind = struct.unpack("<ii", data)
        return {"pid": pid, "type": kind}


# --- renderings -------------------------------------------------------------------------


def test_event_envelope_wins_its_keys() -> None:
    """type/map/time always mean the envelope; members of those names get a '_' prefix."""
    f = EventFormatter(("type", "_type", "map", "pid"), json=True,
                       envelope={"type": "event", "map": "rb"})
    line = f.row({"type": 3, "_type": 4, "map": "m", "pid": 7}, 0)
    obj = json.loads(line)
    assert list(obj) == ["type", "map", "time", "__type", "_type", "_map", "pid"]
    assert (obj["type"], obj["map"], obj["__type"], obj["_type"], obj["_map"], obj["pid"]) == (
        "event", "rb", 3, 4, "m", 7)
    timed = EventFormatter(("time",), json=True, envelope={"type": "event", "map": "rb"})
    assert set(json.loads(timed.row({"time": 1}, 0))) == {"type", "map", "time", "_time"}


def test_sample_types() -> None:
    assert json.loads(sample_map_json("h", [(1, [1])], {"type": "linear_hist"}))["type"] == "hist"
    assert json.loads(sample_map_json("h", [(1, 2)], {"type": "default_kv"}))["type"] == "kv"
    assert json.loads(sample_map_json("h", [(1, 2)], {}))["sample"] == "default_kv"


def test_json_lines_are_printable() -> None:
    """Characters json.dumps leaves raw (DEL, NEL, U+2028, astral controls) are \\u escapes."""
    f = EventFormatter(("s",), json=True, time=False)
    line = f.row({"s": "a\x7fb\x85c\u2028d\U000e0001"}, 0)
    assert line.isprintable() and len(line.splitlines()) == 1
    assert json.loads(line) == {"s": "a\x7fb\x85c\u2028d\U000e0001"}


def test_iter_text_lines() -> None:
    data = b"PID\tCOMM\n1\tin\x1b[2Jit\xff\n2\ttail"
    plain, how = iter_report("dump", data, json=False)
    assert how == "text"
    assert plain == "PID     COMM\n1       in\\x1b[2Jit\\xff\n2       tail\n"
    js, _ = iter_report("dump", data, json=True)
    assert [json.loads(line) for line in js.splitlines()] == [
        {"type": "iter", "program": "dump", "text": "PID\tCOMM"},
        {"type": "iter", "program": "dump", "text": "1\tin\x1b[2Jit\\xff"},
        {"type": "iter", "program": "dump", "text": "2\ttail"},
    ]
    assert iter_report("dump", b"", json=True) == ("", "text")


def test_iter_named_struct_decodes_records_and_tail() -> None:
    data = struct.pack("<iiii", 10, 1, 11, 2) + b"\x01\x02\x03"
    js, how = iter_report("it", data, json=True, named=Pair())
    assert how == "records"
    assert [json.loads(line) for line in js.splitlines()] == [
        {"type": "iter_record", "program": "it", "pid": 10, "_type": 1},
        {"type": "iter_record", "program": "it", "pid": 11, "_type": 2},
        {"type": "iter_bytes", "program": "it", "offset": 16, "hex": "010203"},
    ]
    plain, _ = iter_report("it", data, json=False, named=Pair())
    assert plain.splitlines() == [
        "PID   TYPE", "10    1", "11    2",
        "00000010  01 02 03" + " " * 42 + "|...|"]


def test_iter_binary_text_check_comes_before_export_types() -> None:
    """Without @export, text stays text even when its length fits a record; binary
    output goes to the first export type whose size divides it, else to hex."""
    assert iter_report("it", b"abcdefg\n", json=True, candidates=[Pair()])[1] == "text"
    records = struct.pack("<ii", 5, 0)
    assert iter_report("it", records, json=True, candidates=[Pair()])[1] == "records"
    js, how = iter_report("it", bytes(range(70)) + b"\0", json=True, candidates=[Pair()])
    assert how == "bytes"
    chunks = [json.loads(line) for line in js.splitlines()]
    assert [(c["type"], c["offset"]) for c in chunks] == [("iter_bytes", 0), ("iter_bytes", 64)]
    assert bytes.fromhex(chunks[0]["hex"] + chunks[1]["hex"]) == bytes(range(70)) + b"\0"
    plain, _ = iter_report("it", bytes(range(20)), json=False)
    assert plain == hex_dump(bytes(range(20))) + "\n"
    assert plain.splitlines()[0] == (
        "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|")


def test_printk_lines() -> None:
    line = "     python3-4242    [001] d..31  1234.567890: bpf_trace_printk: hello\x07 world"
    assert json.loads(printk_line(line, json=True)) == {
        "type": "printk", "comm": "python3", "pid": 4242, "cpu": 1, "timestamp": 1234.56789,
        "text": "hello\x07 world"}
    odd = "CPU:1 [LOST 3 EVENTS]"
    assert json.loads(printk_line(odd, json=True)) == {"type": "printk", "text": odd}
    assert printk_line(line, json=False) == (
        "printk: python3-4242    [001] d..31  1234.567890: bpf_trace_printk: hello\\x07 world")


# --- the real kernel --------------------------------------------------------------------

# What each case must print (required) and may print (allowed) with events triggered
# for ~3 s; not listed: nothing at all. A case whose program reaches no output map
# prints nothing, and that is checked too.
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    "example-bootstrap": ({"event"}, {"event"}),
    "example-execsnoop": ({"event"}, {"event"}),
    "example-opensnoop": ({"event"}, {"event"}),
    "example-perfbuf": ({"event"}, {"event"}),
    "example-globals": ({"event"}, {"event"}),
    "example-wasm-bootstrap": ({"event"}, {"event"}),
    "example-tc": ({"event"}, {"event"}),
    "example-uprobe": ({"event"}, {"event"}),
    "example-runqlat": ({"hist"}, {"hist"}),
    "example-execlat": ({"hist", "kv"}, {"hist", "kv"}),
    "example-xdp": ({"kv"}, {"kv"}),
    "example-iter": ({"iter"}, {"iter"}),
    "example-task_iter": ({"iter_record"}, {"iter_record"}),
    "doc_maps": ({"hist"}, {"hist"}),
    "no_globals": ({"event"}, {"event"}),
    **{name: ({"event"}, {"event"}) for name in (
        "export_arrays", "export_bitfields", "export_enums", "export_func_ptr",
        "export_nested", "export_qualifiers", "export_typedefs")},
}
# Cases that cannot run here, and the stderr that must say why: the kernel has no
# kprobes (a kernel limit), libc has no USDT notes, no kernel symbol `runqueues` in
# this kernel's BTF, or the package has no program. Should one run, it is checked
# like any other.
CANNOT_RUN = {
    "example-kprobe": "cannot attach kprobes",
    "extern_usdt": "no USDT notes",
    "extern_typed_ksym": "kernel symbol 'runqueues'",
    "header_only": "no program could be attached",
}
DURATION = "3"


@pytest.fixture()
def triggers(tmp_path: Path) -> Iterator[None]:
    """Exec, open, getpid/getppid, chdir in a shell, UDP on lo: every few tens of ms."""
    stop = threading.Event()
    target = tmp_path / "opened"
    target.write_text("x")

    def loop() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            while not stop.is_set():
                subprocess.run(["sh", "-c", f"cd {tmp_path}; cat {target}"],
                               stdout=subprocess.DEVNULL, check=False)
                os.getpid()
                os.getppid()
                udp.sendto(b"ping", ("127.0.0.1", 9))
                stop.wait(0.03)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)


def _problems(name: str, built: Built) -> list[str]:
    """Run one case with --json and say everything wrong with what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "ecc", "run", "--json", "--duration", DURATION,
         str(built.package)], capture_output=True, timeout=120, check=False)
    stderr = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        why = CANNOT_RUN.get(name)
        if why is None or why not in stderr or result.stdout:
            return [f"{name}: exit {result.returncode}, stdout {result.stdout[:200]!r}, "
                    f"stderr {stderr[-400:]!r}"]
        return []
    meta = json.loads(built.package.read_text())["meta"]["bpf_skel"]
    maps = {m["name"] for m in meta.get("maps") or []}
    progs = {p["name"] for p in meta.get("progs") or []}
    problems = []
    seen = set()
    for raw in result.stdout.split(b"\n")[:-1]:
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            problems.append(f"{name}: a line that is not JSON: {raw[:120]!r}")
            continue
        if not isinstance(obj, dict) or obj.get("type") not in TYPES:
            problems.append(f"{name}: no known type: {raw[:120]!r}")
            continue
        kind = obj["type"]
        seen.add(kind)
        source = obj.get("program") if kind.startswith("iter") else obj.get("map")
        if source not in (progs if kind.startswith("iter") else maps):
            problems.append(f"{name}: {kind} from {source!r}, not one of the package's")
    if result.stdout and not result.stdout.endswith(b"\n"):
        problems.append(f"{name}: output does not end with a newline")
    required, allowed = EXPECTED.get(name, (set(), set()))
    if not required <= seen or not seen <= allowed:
        problems.append(f"{name}: types {sorted(seen)}; required {sorted(required)}, "
                        f"allowed {sorted(allowed)}")
    return problems


def test_every_case_prints_only_json(built: dict[str, Built], kernel: None,
                                     triggers: None) -> None:
    cases = {key.split("/", 1)[1]: b for key, b in built.items() if b.result is not None}
    assert set(EXPECTED) <= set(cases), set(EXPECTED) - set(cases)
    with ThreadPoolExecutor(3) as pool:
        found = pool.map(lambda item: _problems(*item), sorted(cases.items()))
        problems = [p for ps in found for p in ps]
    assert problems == []


def _package(built: dict[str, Built], example: str) -> str:
    case = built[f"cases/example-{example}"]
    assert case.result is not None, case.error
    return str(case.package)


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "ecc", "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_binary_iterator_rows_name_known_processes(built: dict[str, Built],
                                                   kernel: None) -> None:
    """task_iter writes struct task_info records with bpf_seq_write; ecc decodes
    them by its `@export "task_info"`: the test's own process and ecc's are there."""
    proc = subprocess.Popen([sys.executable, "-m", "ecc", "run", "--json", "--duration", "0.2",
                             _package(built, "task_iter")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out.decode().splitlines()]
    assert {r["type"] for r in rows} == {"iter_record"}
    assert {r["program"] for r in rows} == {"dump_task_info"}
    me = [r for r in rows if r["pid"] == os.getpid() and r["tid"] == os.getpid()]
    assert me and me[0]["ppid"] == os.getppid()
    with open(f"/proc/{os.getpid()}/comm") as fh:
        assert me[0]["comm"] == fh.read().strip()
    ecc = [r for r in rows if r["pid"] == proc.pid and r["tid"] == proc.pid]
    assert ecc and ecc[0]["ppid"] == os.getpid() and ecc[0]["state"] == 0  # running: it reads


def test_binary_iterator_plain_rows(built: dict[str, Built], kernel: None) -> None:
    result = _run("--duration", "0.2", _package(built, "task_iter"))
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    lines = text.split("\n")
    assert lines.pop() == ""
    assert lines[0].split() == ["PID", "TID", "PPID", "STATE", "COMM"]
    assert [str(os.getpid()), str(os.getpid()), str(os.getppid())] in (
        line.split()[:3] for line in lines[1:])
    assert all(line.isprintable() for line in lines)


def test_text_iterator_json_lines(built: dict[str, Built], kernel: None) -> None:
    result = _run("--json", "--duration", "0.2", _package(built, "iter"))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert {(r["type"], r["program"]) for r in rows} == {("iter", "dump_task")}
    assert rows[0]["text"].split() == ["PID", "PPID", "COMM"]
    mine = [r["text"].split() for r in rows if r["text"].split()[:1] == [str(os.getpid())]]
    assert mine and mine[0][1] == str(os.getppid())


PRINTK_SOURCE = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile int target_pid = 0;

SEC("tp/syscalls/sys_enter_getppid")
int say(void *ctx)
{
	int pid = bpf_get_current_pid_tgid() >> 32;

	if (pid == target_pid)
		bpf_printk("ecc-printk-test pid=%d", pid);
	return 0;
}
"""


def test_printk_lines_are_marked(built: dict[str, Built], kernel: None, tmp_path: Path) -> None:
    """--printk: the program's bpf_printk lines arrive as {"type": "printk"} objects."""
    source = tmp_path / "say.bpf.c"
    source.write_text(PRINTK_SOURCE)
    subprocess.run([sys.executable, "-m", "ecc", "build", str(source), "-o", str(tmp_path)],
                   check=True, capture_output=True)
    from runner import EccRun

    run = EccRun("--json", "--printk", "--duration", "8", str(tmp_path / "package.json"),
                 "--", "--target_pid", str(os.getpid()))
    run.wait_ready()

    def mine() -> list[dict[str, Any]]:
        return [r for r in run.json_rows() if "ecc-printk-test" in r.get("text", "")]

    deadline = time.monotonic() + 10
    while not mine() and time.monotonic() < deadline:
        os.getppid()
        time.sleep(0.05)
    assert run.stop() == 0
    assert all(line.startswith("{") for line in run.out)
    row = mine()[0]
    assert row["type"] == "printk"
    assert (row["pid"], row["text"]) == (os.getpid(), f"ecc-printk-test pid={os.getpid()}")
