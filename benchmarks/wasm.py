#!/usr/bin/env python3
"""WebAssembly user space against JSON packages, side by side (needs root, clang-19, wasm).

Three figures, each a median over alternating runs:

- start -> attached: wall time from process start until the program says its BPF
  programs are attached, for examples/wasm-bootstrap as ``ecc run wasm-bootstrap.wasm``
  (its first stdout line, printed right after ``wasm_bootstrap_bpf__attach``) and as
  ``ecc run package.json`` (its ``ecc: running ... attached`` line, printed right
  after the loader attached everything); same BPF object, built by one ``ecc build``.
- events per second: one BPF program (written below, built once with --wasm)
  submits a ring buffer record per getppid() of one process; that process makes
  EVENTS calls as fast as Python loops, and the time is from its start signal until
  the consumer has seen all EVENTS records: the guest's callback counting them (and
  the same guest printing one line per record), against ``ecc run --json`` whose
  lines this script counts.
- size: bytes of wasm-bootstrap.wasm (the object inside, the guest, wasi-libc) against
  package.json (the object base64'd, plus the metadata) and the bare .bpf.o.

Nothing is asserted about the times.

    sudo python3 benchmarks/wasm.py [--runs N] [--events N]
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120.0

# The event benchmark's program: a record per getppid() of one process.
BENCH_H = """\
#ifndef __WASMBENCH_H
#define __WASMBENCH_H
struct event {
\t__u64 seq;
\t__u32 pid;
\t__u32 cpu;
};
#endif
"""

BENCH_BPF = """\
// SPDX-License-Identifier: MIT
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "wasmbench.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/// @cmdarg {"default": 0, "long": "tgid", "help": "the process whose getppid() calls count"}
const volatile __u32 target_tgid = 0;

__u64 seq = 0;

struct {
\t__uint(type, BPF_MAP_TYPE_RINGBUF);
\t__uint(max_entries, 16 * 1024 * 1024);
} rb SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int wbench_getppid(void *ctx)
{
\tstruct event *e;

\tif ((__u32)(bpf_get_current_pid_tgid() >> 32) != target_tgid)
\t\treturn 0;
\te = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
\tif (!e)
\t\treturn 0;
\te->seq = __sync_fetch_and_add(&seq, 1);
\te->pid = target_tgid;
\te->cpu = bpf_get_smp_processor_id();
\tbpf_ringbuf_submit(e, 0);
\treturn 0;
}
"""

# argv: TGID COUNT [print]. Prints "attached", then (with "print") one line per
# record, then "seen COUNT" once COUNT records have reached the callback.
BENCH_GUEST = """\
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wasmbench.skel.h"
#include "wasmbench.wasm.h"

static long seen, wanted;
static int print_each;

static int on_event(void *ctx, void *data, size_t size)
{
\tconst struct event *e = data;

\t(void)ctx;
\t(void)size;
\tif (print_each)
\t\tprintf("%llu %u %u\\n", (unsigned long long)e->seq, e->pid, e->cpu);
\tseen++;
\treturn 0;
}

int main(int argc, char **argv)
{
\tstruct wasmbench_bpf *skel;
\tstruct bpf_buffer *rb;
\tint err;

\tif (argc < 3)
\t\treturn 2;
\twanted = atol(argv[2]);
\tprint_each = argc > 3 && !strcmp(argv[3], "print");
\tsetvbuf(stdout, NULL, _IOFBF, 1 << 16);
\tskel = wasmbench_bpf__open();
\tif (!skel)
\t\treturn 1;
\tskel->rodata->target_tgid = (uint32_t)atol(argv[1]);
\tif (wasmbench_bpf__load(skel) || wasmbench_bpf__attach(skel))
\t\treturn 1;
\trb = bpf_buffer__open(skel->maps.rb, on_event, NULL);
\tif (!rb)
\t\treturn 1;
\tprintf("attached\\n");
\tfflush(stdout);
\twhile (seen < wanted) {
\t\terr = bpf_buffer__poll(rb, 100);
\t\tif (err < 0)
\t\t\treturn 1;
\t}
\tprintf("seen %ld\\n", seen);
\tfflush(stdout);
\tbpf_buffer__free(rb);
\twasmbench_bpf__destroy(skel);
\treturn 0;
}
"""


def ecc(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecc", *args]


class Lines:
    """A pipe read line by line in a thread, so that waiting for a line has a deadline."""

    def __init__(self, pipe: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line)
        self._queue.put(None)

    def wait(self, predicate: Callable[[str], bool], what: str) -> float:
        """perf_counter() when the first line matching ``predicate`` arrived."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                raise SystemExit(f"the program ended before {what}")
            if line.startswith("ecc: error"):
                raise SystemExit(line.strip())
            if predicate(line):
                return time.perf_counter()
        raise SystemExit(f"no {what} within {TIMEOUT:.0f} s")

    def count(self, n: int, what: str) -> float:
        """perf_counter() when the n-th line arrived."""
        for i in range(n):
            self.wait(lambda s: True, f"{what} (line {i + 1} of {n})")
        return time.perf_counter()


@contextmanager
def started(argv: list[str]) -> Iterator[subprocess.Popen[str]]:
    """A process with its stdout and stderr piped, interrupted and reaped at the end."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def time_attach(argv: list[str], on_stderr: bool, mark: str) -> float:
    """Seconds from starting ``argv`` until its line starting with ``mark``."""
    start = time.perf_counter()
    with started(argv) as proc:
        pipe = proc.stderr if on_stderr else proc.stdout
        assert pipe is not None
        return Lines(pipe).wait(lambda s: s.startswith(mark), f"a line {mark!r}") - start


DRIVER = ("import os, sys\n"
          "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
          "sys.stdin.readline()\n"
          "for _ in range({n}): os.getppid()\n"
          "sys.stdin.readline()\n")


def time_events(consumer: Callable[[int], list[str]], on_stderr: bool, attached: str,
                done: Callable[[Lines], float], n: int) -> float:
    """Events per second: a driver process calls getppid() n times once told to go;
    the consumer (argv for the driver's pid) has seen them all when ``done`` returns."""
    driver = subprocess.Popen([sys.executable, "-c", DRIVER.format(n=n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert driver.stdin is not None and driver.stdout is not None
    try:
        assert driver.stdout.readline() == "ready\n"
        with started(consumer(driver.pid)) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            out = Lines(proc.stdout)
            (Lines(proc.stderr) if on_stderr else out).wait(
                lambda s: s.startswith(attached), "attached")
            start = time.perf_counter()
            driver.stdin.write("go\n")
            driver.stdin.flush()
            end = done(out)
        return n / (end - start)
    finally:
        driver.stdin.close()
        driver.wait(30)


def build(work: Path, env: dict[str, str]) -> tuple[Path, Path]:
    src = ROOT / "examples" / "wasm-bootstrap"
    subprocess.run(ecc("build", str(src / "wasm-bootstrap.bpf.c"), str(src / "wasm-bootstrap.h"),
                       "--wasm", "-o", str(work / "boot")),
                   check=True, env=env, stdout=subprocess.DEVNULL)
    bench = work / "bench-src"
    bench.mkdir()
    (bench / "wasmbench.h").write_text(BENCH_H)
    (bench / "wasmbench.bpf.c").write_text(BENCH_BPF)
    (bench / "wasmbench.c").write_text(BENCH_GUEST)
    subprocess.run(ecc("build", str(bench / "wasmbench.bpf.c"), str(bench / "wasmbench.h"),
                       "--wasm", str(bench / "wasmbench.c"), "-o", str(work / "bench")),
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return work / "boot", work / "bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each start-up (default 7)")
    parser.add_argument("--event-runs", type=int, default=3,
                        help="runs of each event figure (default 3)")
    parser.add_argument("--events", type=int, default=20000,
                        help="records per event run (default 20000)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: loading BPF")
    work = Path(tempfile.mkdtemp(prefix="ecc-bench-wasm-"))
    env = dict(os.environ, ECC_CACHE_DIR=str(work / "cache"))
    os.environ["ECC_CACHE_DIR"] = env["ECC_CACHE_DIR"]
    try:
        boot, bench = build(work, env)
        wasm_app, package = boot / "wasm-bootstrap.wasm", boot / "package.json"

        def attach_wasm() -> float:
            return time_attach(ecc("run", str(wasm_app)), False, "EVENT")

        def attach_json() -> float:
            return time_attach(ecc("run", str(package)), True, "ecc: running")

        attach_wasm(), attach_json()  # warm the page cache
        wasm_t, json_t = [], []
        for _ in range(args.runs):
            wasm_t.append(attach_wasm())
            json_t.append(attach_json())

        n = args.events
        bench_wasm, bench_pkg = str(bench / "wasmbench.wasm"), str(bench / "package.json")

        def guest(print_each: bool) -> float:
            return time_events(
                lambda pid: ecc("run", bench_wasm, str(pid), str(n),
                                *(["print"] if print_each else [])),
                False, "attached", lambda out: out.wait(lambda s: s == f"seen {n}\n",
                                                        f"seen {n}"), n)

        def json_lines() -> float:
            return time_events(lambda pid: ecc("run", "--json", bench_pkg, "--tgid", str(pid)),
                               True, "ecc: running", lambda out: out.count(n, "event"), n)

        counting, printing, json_rate = [], [], []
        for _ in range(args.event_runs):
            counting.append(guest(False))
            printing.append(guest(True))
            json_rate.append(json_lines())

        w, j = statistics.median(wasm_t), statistics.median(json_t)
        print(f"start -> attached: {args.runs} runs (median); "
              f"events: {args.event_runs} runs of {n} (median)")
        print(f"{'ecc run wasm-bootstrap.wasm: start -> attached':<52}{w * 1000:>10.0f} ms")
        print(f"{'ecc run package.json: start -> attached':<52}{j * 1000:>10.0f} ms")
        print(f"{'ratio wasm / json':<52}{w / j:>10.2f}")
        rows = [("guest callback, counting", counting), ("guest callback, printf per event",
                                                          printing),
                ("ecc run --json, lines read here", json_rate)]
        for label, rates in rows:
            print(f"{'events/s, ' + label:<52}{statistics.median(rates):>10.0f}")
        for name, path in (("wasm-bootstrap.wasm", wasm_app), ("package.json", package),
                           ("wasm-bootstrap.bpf.o", boot / "wasm-bootstrap.bpf.o")):
            print(f"{'size of ' + name:<52}{path.stat().st_size:>10} bytes")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
