#!/usr/bin/env python3
"""Events per second through ``ecc.Program.events()`` (decoded into ``ecc.Event``) and
through a typed skeleton's ``events()`` (``--py-skel`` dataclasses), against a raw ring
buffer callback that only counts the bytes (needs root); and the memory that 100k
events held in a list take, each way.

A child process calls getppid() N times while the program (tests/data/api/flood.bpf.c)
is attached; each call is one 40-byte ring buffer record. The records wait in a
64 MiB ring buffer, then each side drains them and is timed: what is measured is
the reading, not the producing. Time is this thread's CPU time (user and kernel),
so other work on a shared machine does not count against either side. Rounds
alternate the sides; medians of the rates and of each round's ratio. The memory is
measured apart (tracemalloc slows what it watches): what stays allocated once
100k events (or raw records) are in a list, per 100k.

    sudo python3 benchmarks/api.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

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


def drain(events: Iterable[Any], pid: int, n: int, held: list[Any] | None) -> float:
    """Seconds to read ``n`` events of ``pid``, each field read once as a user would."""
    count, start = 0, time.thread_time()
    if held is None:  # the timed loop: nothing but the reading
        for event in events:
            count += event.pid == pid
            if count == n:
                break
    else:
        for event in events:
            count += event.pid == pid
            held.append(event)
            if count == n:
                break
    elapsed = time.thread_time() - start
    assert count == n, f"read {count} of {n} events"
    return elapsed


def decoded(package: Path, n: int, held: list[Any] | None = None) -> float:
    child = waiting_producer(n)
    with ecc.load(package, target_pid=child.pid) as prog:
        prog.attach()
        produce(child)
        prog.detach()
        return n / drain(prog.events(timeout=60), child.pid, n, held)


def typed(skeleton: Any, n: int, held: list[Any] | None = None) -> float:
    child = waiting_producer(n)
    with skeleton.load(target_pid=child.pid) as prog:
        prog.attach()
        produce(child)
        prog.detach()
        return n / drain(prog.events(timeout=60), child.pid, n, held)


def raw(package: Path, n: int, held: list[Any] | None = None) -> float:
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

        def keep(data: bytes) -> int:
            got[0] += 1
            assert held is not None
            held.append(data)
            return 0

        start = time.thread_time()
        with libbpf.RingBuffer(events, count if held is None else keep) as ring:
            while got[0] < n:
                ring.poll(100)
        elapsed = time.thread_time() - start
    finally:
        obj.close()
    return n / elapsed


def held_bytes(read: Callable[[list[Any]], float], n: int) -> float:
    """What ``n`` events kept in a list take, per 100k: tracemalloc's count of what is
    still allocated once they are read, less what was before."""
    held: list[Any] = []
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        read(held)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(held) >= n
    return (after - before) * 100_000 / len(held)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp:
        result = ecc.build(DATA / "flood.bpf.c", DATA / "flood.h", output_dir=tmp, py_skel=True)
        package = result.package
        assert package is not None
        sys.path.insert(0, tmp)
        skeleton = importlib.import_module("flood_skel").Flood
        sides: dict[str, Callable[..., float]] = {
            "prog.events() (decoded)": lambda held=None: decoded(package, n, held),
            "skeleton events() (typed)": lambda held=None: typed(skeleton, n, held),
            "raw ring buffer callback": lambda held=None: raw(package, n, held),
        }
        rates: dict[str, list[float]] = {name: [] for name in sides}
        ratios: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, side in sides.items():
                rates[name].append(side())
            for name in sides:  # paired within the round: drift between rounds cancels
                ratios[name].append(rates["raw ring buffer callback"][-1] / rates[name][-1])
        memory = {name: held_bytes(lambda held, side=side: side(held), n)
                  for name, side in sides.items()}
    medians = {name: statistics.median(r) for name, r in rates.items()}
    ratio = {name: statistics.median(r) for name, r in ratios.items()}
    print(f"{n} events, {args.rounds} rounds, medians (CPU time); "
          "memory: 100k events held in a list")
    print(f"  {'':28}{'events/s':>12}{'raw/this':>10}{'MB per 100k':>13}")
    for name in sides:
        print(f"  {name:28}{medians[name]:>12,.0f}{ratio[name]:>9.2f}x"
              f"{memory[name] / 1e6:>13.1f}")
    print(f"  decoding costs {ratio['prog.events() (decoded)']:.2f}x the raw path "
          "(target: under 2x)")


if __name__ == "__main__":
    main()
