"""Variable-length events (issue 30): examples/execsnoop sends each exec() as the
40 bytes before its 7680-byte ``args`` buffer plus only the bytes of ``args``
it filled; `ecc run` (plain, JSON, the ``-s`` file) and the exporter decode
those short records as far as they go.

Every exec is of a copy of /bin/true under a name of this run's own, so the
rows asserted are ours whatever else runs on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from builds import Built
from conftest import EXAMPLES, needs
from runner import EccRun
from test_exporter import Exporter, select, spawn

HEADER = 40  # the bytes of struct event before args: six 4-byte ints and comm[16]
SIZE = HEADER + 7680
ARGS = ["alpha", "beta"]


def package(built: dict[str, Built]) -> Path:
    case = built["cases/example-execsnoop"]
    assert case.result is not None, case.error
    return case.package


def probe(tmp: Path, suffix: str) -> Path:
    """A copy of /bin/true whose comm is ours alone (comm keeps 15 characters)."""
    path = tmp / f"xs{os.getpid() % 100000}{suffix}"
    shutil.copy("/bin/true", path)
    return path


def run_probe(path: Path, args: list[str]) -> int:
    proc = subprocess.Popen([str(path), *args])
    assert proc.wait(30) == 0
    return proc.pid


def check_row(row: dict[str, Any], pid: int, path: Path) -> None:
    command_line = " ".join([str(path), *ARGS])
    assert row["pid"] == pid
    assert row["ppid"] == os.getpid()
    assert row["comm"] == path.name
    assert row["retval"] == 0
    assert row["args"] == command_line
    assert row["args_count"] == 3
    # The record held the header and these bytes only (the final NUL included).
    assert row["args_size"] == len(command_line) + 1
    assert HEADER + row["args_size"] < SIZE


def test_the_example_event_is_the_issues() -> None:
    """The layout the constants above assume, from the example's own header."""
    header = (EXAMPLES / "execsnoop" / "execsnoop.h").read_text()
    assert "char args[ARGS_LEN];" in header and "#define ARGS_LEN (MAX_ARGS * ARG_LEN)" in header
    assert "#define EVENT_SIZE(e) (EVENT_HEADER_SIZE + (e)->args_size)" in header


@pytest.mark.kernel
def test_run_json_decodes_short_events(built: dict[str, Built], kernel: None,
                                       tmp_path: Path) -> None:
    true = probe(tmp_path, "j")
    run = EccRun("--json", "--duration", "8", str(package(built)))
    run.wait_ready()
    pid = run_probe(true, ARGS)
    assert run.wait_for(lambda: any(r.get("pid") == pid for r in run.json_rows()))
    assert run.stop() == 0
    rows = [r for r in run.json_rows() if r.get("pid") == pid]
    assert len(rows) == 1
    check_row(rows[0], pid, true)
    # The --json envelope (issue 28) opens the object: type and map, then time.
    assert list(rows[0]) == ["type", "map", "time", "pid", "ppid", "uid", "retval", "args_count",
                             "args_size", "comm", "args"]
    assert (rows[0]["type"], rows[0]["map"]) == ("event", "events")
    assert not [line for line in run.err if "warning" in line], run.err


@pytest.mark.kernel
def test_run_plain_decodes_short_events(built: dict[str, Built], kernel: None,
                                        tmp_path: Path) -> None:
    true = probe(tmp_path, "p")
    run = EccRun("--duration", "8", str(package(built)))
    run.wait_ready()
    pid = run_probe(true, ARGS)
    assert run.wait_for(lambda: any(line.split()[1:2] == [str(pid)] for line in run.out))
    assert run.stop() == 0
    assert run.out[0].split() == ["TIME", "PID", "PPID", "UID", "RETVAL", "ARGS_COUNT",
                                  "ARGS_SIZE", "COMM", "ARGS"]
    rows = [line.split() for line in run.out[1:] if line.split()[1] == str(pid)]
    assert len(rows) == 1
    _, row_pid, ppid, _, retval, count, size, comm, *args = rows[0]
    assert (int(row_pid), int(ppid), int(retval), int(count)) == (pid, os.getpid(), 0, 3)
    assert comm == true.name
    assert args == [str(true), *ARGS]
    assert int(size) == len(" ".join(args)) + 1
    assert not [line for line in run.err if "warning" in line], run.err


@pytest.mark.kernel
@pytest.mark.clang
def test_standalone_decodes_short_events(kernel: None, cache_env: Path, tmp_path: Path) -> None:
    """The `-s` file runs the same decoder: the same row from the same short record."""
    src = EXAMPLES / "execsnoop"
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "ecc", "build", "-s", str(src / "execsnoop.bpf.c"),
         str(src / "execsnoop.h"), "-o", str(out)],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    true = probe(tmp_path, "s")
    run = EccRun(cwd=out, argv=[sys.executable, "-I", "-S", "execsnoop.out", "--json",
                                "--duration", "8"])
    run.wait_ready()
    pid = run_probe(true, ARGS)
    assert run.wait_for(lambda: any(r.get("pid") == pid for r in run.json_rows()))
    assert run.stop() == 0
    rows = [r for r in run.json_rows() if r.get("pid") == pid]
    assert len(rows) == 1
    check_row(rows[0], pid, true)


@pytest.mark.kernel
@needs("prometheus-client")
def test_exporter_counts_short_events(built: dict[str, Built], kernel: None,
                                      tmp_path: Path) -> None:
    """Labels from members that arrived: comm, and the cut args buffer itself."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"programs": [{
        "name": "execsnoop",
        "metrics": {"counters": [{"name": "ecc_test_execs", "description": "execs",
                                  "labels": ["comm", "args"]}]},
        "compiled_ebpf_filename": str(package(built))}]}))
    exporter = Exporter(str(config), "--max-series", "100000")
    try:
        true = probe(tmp_path, "x")
        spawn([str(true), *ARGS], 5)
        spawn([str(true)], 2)
        name = "ecc_test_execs_total"
        with_args = frozenset({("comm", true.name), ("args", " ".join([str(true), *ARGS]))})
        alone = frozenset({("comm", true.name), ("args", str(true))})
        samples = exporter.wait_for(
            lambda s: s.get((name, with_args)) == 5 and s.get((name, alone)) == 2)
        assert select(samples, name, comm=true.name) == {with_args: 5, alone: 2}
        lost = ("ecc_exporter_events_lost_total",
                frozenset({("program", "execsnoop"), ("reason", "undecodable")}))
        assert samples[lost] == 0
    finally:
        assert exporter.stop() == 0, exporter.err
    assert not [line for line in exporter.err if "warning" in line], exporter.err


@pytest.mark.clang
@needs("prometheus-client")
def test_exporter_labels_of_members_that_did_not_arrive(built: dict[str, Built],
                                                        tmp_path: Path) -> None:
    """Records cut at chosen places, through the exporter's own counting: a label
    whose member did not arrive is empty; a record holding no member is
    undecodable; irregular lengths are summed up once per kind."""
    from ecc.exporter.config import parse_program
    from ecc.exporter.metrics import EventCounters, SeriesBudget

    spec = parse_program(
        {"name": "execsnoop", "metrics": {"counters": [
            {"name": "by_comm_args", "labels": ["pid", "comm", "args"]}]},
         "compiled_ebpf_filename": str(package(built))}, "test", str(tmp_path))
    counters = EventCounters(spec, SeriesBudget(100))
    (events,) = spec.event_types

    def record(pid: int, comm: bytes, args: bytes) -> bytes:
        head = struct.pack("<iiIiiI", pid, 1, 0, 0, 1, len(args)) + comm.ljust(16, b"\0")
        assert len(head) == HEADER
        return head + args

    full = record(7, b"sh", b"sh -c x\0")
    counters.handle(events, full)  # as the example sends it
    counters.handle(events, full[:HEADER + 4])  # cut inside args: its first 4 bytes
    counters.handle(events, full[:HEADER])  # args did not arrive
    counters.handle(events, full[:HEADER - 16])  # comm did not arrive either
    counters.handle(events, full[:3])  # not even pid
    counters.handle(events, record(8, b"big", b"x\0".ljust(7680 + 50, b"\0")))  # too long
    counts = {tuple(sorted(s.labels.items())): s.value
              for f in counters.families() for s in f.samples}
    assert counts == {
        (("args", "sh -c x"), ("comm", "sh"), ("pid", "7")): 1,
        (("args", "sh -"), ("comm", "sh"), ("pid", "7")): 1,
        (("args", ""), ("comm", "sh"), ("pid", "7")): 1,
        (("args", ""), ("comm", ""), ("pid", "7")): 1,
        (("args", "x"), ("comm", "big"), ("pid", "8")): 1,
    }
    assert counters.undecodable == 1
    assert counters.tally.summary() == [
        "map events: 1 event shorter than the first member of struct event (4 bytes) skipped "
        "(3 bytes)",
        f"map events: 1 event longer than struct event ({SIZE} bytes) decoded from their "
        f"first {SIZE} bytes ({HEADER + 7680 + 50} bytes)",
    ]


@pytest.mark.clang
def test_run_reports_irregular_records_once_per_kind(built: dict[str, Built]) -> None:
    """`ecc run`'s event handler on records cut at chosen places (no kernel: the
    handler is what libbpf calls): short records print the members that
    arrived; one that holds no member, or is longer than the type, is announced
    once per kind while it runs and counted, and the count comes at exit."""
    import io

    from ecc.package.source import read_package
    from ecc.run.decode import Decoder, EventTally
    from ecc.run.loader import Runner, RunOptions
    from ecc.run.output import EventFormatter

    loaded = read_package(str(package(built)))
    out = io.StringIO()
    said: list[str] = []
    runner = Runner(loaded, RunOptions(json=True), out, said.append)
    assert loaded.btf is not None
    decoder = Decoder(loaded.btf, loaded.meta["export_types"][0]["type_id"])
    runner._tally = EventTally()
    handle = runner._event_handler(
        "events", decoder, EventFormatter(decoder.fields, json=True, time=False))
    head = struct.pack("<iiIiiI", 9, 1, 0, 0, 2, 5) + b"cat".ljust(16, b"\0")
    for data in (head + b"a b\0", head[:24], head[:2], head[:1],
                 head + bytes(7680 + 8), head + bytes(7680 + 9), head + bytes(7680 + 7)):
        handle(data)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"pid": 9, "ppid": 1, "uid": 0, "retval": 0, "args_count": 2, "args_size": 5,
         "comm": "cat", "args": "a b"},
        {"pid": 9, "ppid": 1, "uid": 0, "retval": 0, "args_count": 2, "args_size": 5},
        *[{"pid": 9, "ppid": 1, "uid": 0, "retval": 0, "args_count": 2, "args_size": 5,
           "comm": "cat", "args": ""}] * 3,
    ]
    note = " (further ones are counted; the count is shown at exit)"
    assert said == [
        "ecc: warning: map events: event skipped: event of 2 bytes is shorter than the first "
        "member of struct event (4 bytes)" + note,
        f"ecc: warning: map events: event of {SIZE + 8} bytes is longer than struct event "
        f"({SIZE} bytes); decoded from its first {SIZE} bytes" + note,
    ]
    said.clear()
    runner.close()
    assert said == [
        "ecc: warning: map events: 2 events shorter than the first member of struct event "
        "(4 bytes) skipped (1 to 2 bytes)",
        f"ecc: warning: map events: 2 events longer than struct event ({SIZE} bytes) decoded "
        f"from their first {SIZE} bytes ({SIZE + 8} to {SIZE + 9} bytes)",
    ]
