#!/usr/bin/env python3
"""Events per second through ``ecc.Program.events()`` (decoded into ``ecc.Event``)
against a raw ring buffer callback that only counts the bytes (needs root).

A child process calls getppid() N times while the program (tests/data/api/flood.bpf.c)
is attached; each call is one 40-byte ring buffer record. The records wait in a
64 MiB ring buffer, then each side drains them and is timed: what is measured is
the reading, not the producing. Rounds alternate the two sides; medians.

    sudo python3 benchmarks/api.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ecc  # noqa: E402

DATA = ROOT / "tests" / "data" / "api"
PRODUCER = "import os, sys\nsys.stdin.readline()\nfor _ in range({n}): os.getppid()\n"


def produce(child: subprocess.Popen[str]) -> None:
    """Let the waiting producer run, and wait until its records are all in the buffer."""
    child.communicate("go\n", timeout=120)


def waiting_producer(n: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", PRODUCER.format(n=n)],
                            stdin=subprocess.PIPE, text=True)


def decoded(package: Path, n: int) -> float:
    child = waiting_producer(n)
    with ecc.load(package, target_pid=child.pid) as prog:
        prog.attach()
        produce(child)
        prog.detach()
        count, start = 0, time.perf_counter()
        for event in prog.events(timeout=60):
            count += event.pid == child.pid
            if count == n:
                break
        elapsed = time.perf_counter() - start
    assert count == n, f"decoded {count} of {n} events"
    return n / elapsed


def raw(package: Path, n: int) -> float:
    # The libbpf binding directly: what a caller that wants no decoding would write.
    from ecc.meta.names import internal_map_lookup_name
    from ecc.package.source import read_package
    from ecc.run import libbpf
    from ecc.run.sections import section_overrides

    loaded = read_package(str(package))
    child = waiting_producer(n)
    obj = libbpf.BpfObject.open_mem(loaded.object_bytes, object_name=loaded.obj_name)
    try:
        for name, data in section_overrides(loaded, {"target_pid": child.pid}).items():
            found = obj.find_map(internal_map_lookup_name(loaded.obj_name, name))
            assert found is not None, name
            found.set_initial_value(data)
        obj.load()
        prog = obj.find_program("on_getppid")
        assert prog is not None
        link = prog.attach()
        produce(child)
        link.destroy()
        events = obj.find_map("events")
        assert events is not None
        got = [0]

        def count(data: bytes) -> int:
            got[0] += 1
            return 0

        start = time.perf_counter()
        with libbpf.RingBuffer(events, count) as ring:
            while got[0] < n:
                ring.poll(100)
        elapsed = time.perf_counter() - start
    finally:
        obj.close()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        package = ecc.build(DATA / "flood.bpf.c", DATA / "flood.h", output_dir=tmp).package
        assert package is not None
        rates: dict[str, list[float]] = {"events()": [], "raw callback": []}
        for _ in range(args.rounds):
            rates["events()"].append(decoded(package, args.events))
            rates["raw callback"].append(raw(package, args.events))
    api, base = (statistics.median(rates[k]) for k in ("events()", "raw callback"))
    print(f"{args.events} events, {args.rounds} rounds, medians")
    print(f"  prog.events() (decoded):   {api:>12,.0f} events/s")
    print(f"  raw ring buffer callback:  {base:>12,.0f} events/s")
    print(f"  ratio events()/raw:        {api / base:>12.2f}")


if __name__ == "__main__":
    main()
