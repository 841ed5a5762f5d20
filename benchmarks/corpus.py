#!/usr/bin/env python3
"""Builds at scale: a corpus of many programs, bare toolchain against `ecc build`, two at a time.

The corpus, in a temporary folder:

- every example and golden case (tests/cases; a case that must fail and the
  --header-only one are left out: they have no bare equivalent), each copied
  into a folder of its own with its own copy of one vmlinux.h (generated once:
  `bpftool btf dump file /sys/kernel/btf/vmlinux format c`), as projects keep it;
- a libbpf-tools-like folder: --tools programs (default 24) beside one shared
  vmlinux.h and shared local headers (bits.bpf.h, maps.bpf.h), with the include
  orders and <bpf/...> subsets such tools use.

Each pass builds every program, two at a time:

- bare:        `clang -g -O2 -target bpf` with the same include folders, then
               `llvm-strip -g` (what a Makefile does);
- cold / warm: one `ecc build` process per program (as a CI job runs them),
               with the cache emptied first / with what the cold pass left
               (warm builds of unchanged programs take their compiled objects
               from the cache: ecc/compiler/objcache.py);
- warm compile: the warm pass with the cached objects removed first, so that
               every program compiles, with the shared precompiled headers;
- warm venv:   the warm pass again, with ecc run from a fresh venv
               (`python -m venv --without-pip`, ecc installed in it, its
               dependencies on a plain path entry so that this interpreter's
               site-packages `.pth` files do not run): a user's clean install,
               printed beside this interpreter's numbers (`--no-venv` skips it);
- batch cold / batch warm: one `ecc build -j 2` of the whole corpus, each
               program's time from its status line.

Rounds repeat the passes; each program's time is its median, its ratio the
median of the rounds' ratios to that round's bare build. CPU is the whole
machine's (from /proc/stat) during a pass, and a pass ends only when no
precompiled header is being made: background work is counted where it was
caused. Then the cache's size and entries.

    python3 benchmarks/corpus.py [--rounds N] [--tools N] [--no-venv]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from run import make_venv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {"cold": 1.1, "warm": 0.6, "warm compile": 0.6, "warm venv": 0.6, "batch cold": 1.1,
           "batch warm": 0.6}
CACHE_TARGET = 100 << 20


@dataclass(frozen=True)
class Program:
    name: str
    source: Path
    header: Path | None     # the export header: <stem>.h beside the source


# --- the corpus ---------------------------------------------------------------------

def repository_programs(corpus: Path, vmlinux_h: Path) -> list[Program]:
    """Every example and buildable golden case, each in a folder of its own."""
    folders = [d for d in sorted((ROOT / "examples").iterdir()) if list(d.glob("*.bpf.c"))]
    for case in sorted((ROOT / "tests" / "cases").iterdir()):
        if (case / "expected-error.txt").exists() or not case.is_dir():
            continue
        pointer = case / "from-example"
        source_folder = ROOT / "examples" / pointer.read_text().strip() \
            if pointer.is_file() else case
        if list(source_folder.glob("*.bpf.c")):
            folders.append(case)
    programs = []
    for folder in folders:
        pointer = folder / "from-example"
        source_folder = ROOT / "examples" / pointer.read_text().strip() \
            if pointer.is_file() else folder
        kind = "example" if folder.parent.name == "examples" else "case"
        target = corpus / f"{kind}-{folder.name}"
        target.mkdir()
        for path in source_folder.iterdir():
            if path.suffix in (".c", ".h") and path.name != "vmlinux.h":
                shutil.copy(path, target / path.name)
        shutil.copy(vmlinux_h, target / "vmlinux.h")
        for source in sorted(target.glob("*.bpf.c")):
            programs.append(_program(f"{kind}-{folder.name}", source))
    return programs


def _program(name: str, source: Path) -> Program:
    header = source.with_name(source.name.removesuffix(".bpf.c") + ".h")
    return Program(name, source, header if header.is_file() else None)


BITS = """#ifndef __BITS_BPF_H
#define __BITS_BPF_H
static __always_inline u64 log2(u32 v)
{
	u32 shift, r;
	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}
static __always_inline u64 log2l(u64 v)
{
	u32 hi = v >> 32;
	return hi ? log2(hi) + 32 : log2(v);
}
#endif
"""

MAPS = """#ifndef __MAPS_BPF_H
#define __MAPS_BPF_H
#include <bpf/bpf_helpers.h>
#include <asm-generic/errno.h>
static __always_inline void *
bpf_map_lookup_or_try_init(void *map, const void *key, const void *init)
{
	void *val;
	long err;
	val = bpf_map_lookup_elem(map, key);
	if (val)
		return val;
	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	if (err && err != -EEXIST)
		return 0;
	return bpf_map_lookup_elem(map, key);
}
#endif
"""

# What each kind of tool uses: <bpf/...> headers it needs (in one of the orders
# tools write them), local headers, and its body ({n}: the tool's number).
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "lat": (("bpf_helpers.h", "bpf_core_read.h", "bpf_tracing.h"), ("bits.bpf.h", "maps.bpf.h"), """
#define MAX_SLOTS 27
struct hist {{ __u32 slots[MAX_SLOTS]; }};
const volatile pid_t targ_tgid{n} = 0;
struct {{ __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240);
	__type(key, u32); __type(value, u64); }} start SEC(".maps");
struct {{ __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
	__type(key, u32); __type(value, struct hist); }} hists SEC(".maps");
static struct hist zero;
SEC("kprobe/blk_account_io_start")
int BPF_KPROBE(io_start{n}, struct request *rq)
{{
	u32 tid = bpf_get_current_pid_tgid();
	u64 ts = bpf_ktime_get_ns();
	if (targ_tgid{n} && targ_tgid{n} != bpf_get_current_pid_tgid() >> 32)
		return 0;
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}}
SEC("kprobe/blk_account_io_done")
int BPF_KPROBE(io_done{n}, struct request *rq)
{{
	u32 tid = bpf_get_current_pid_tgid(), key = BPF_CORE_READ(rq, cmd_flags) & 0xff;
	u64 *tsp = bpf_map_lookup_elem(&start, &tid), slot;
	struct hist *h;
	if (!tsp)
		return 0;
	h = bpf_map_lookup_or_try_init(&hists, &key, &zero);
	if (!h)
		return 0;
	slot = log2l((bpf_ktime_get_ns() - *tsp) / 1000);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	bpf_map_delete_elem(&start, &tid);
	return 0;
}}
"""),
    "count": (("bpf_helpers.h",), ("maps.bpf.h",), """
struct {{ __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024);
	__type(key, u32); __type(value, u64); }} counts SEC(".maps");
static const u64 one = 0;
SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter{n}(struct trace_event_raw_sys_enter *args)
{{
	u32 key = args->id;
	u64 *val = bpf_map_lookup_or_try_init(&counts, &key, &one);
	if (val)
		__sync_fetch_and_add(val, 1);
	return 0;
}}
"""),
    "snoop": (("bpf_helpers.h", "bpf_core_read.h"), (), """
struct event{n} {{ pid_t pid; pid_t ppid; char comm[16]; }};
struct {{ __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 256 * 1024); }} rb SEC(".maps");
struct event{n} *unused_event{n} __attribute__((unused));
SEC("tp/sched/sched_process_exec")
int handle_exec{n}(struct trace_event_raw_sched_process_exec *ctx)
{{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct event{n} *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}}
"""),
    "tcp": (("bpf_helpers.h", "bpf_tracing.h", "bpf_core_read.h", "bpf_endian.h"), ("bits.bpf.h",),
            """
struct {{ __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096);
	__type(key, u16); __type(value, u64); }} ports SEC(".maps");
SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(tcp_connect{n}, struct sock *sk)
{{
	u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	u64 init = 1, *val = bpf_map_lookup_elem(&ports, &dport);
	if (val)
		__sync_fetch_and_add(val, log2(1 + dport));
	else
		bpf_map_update_elem(&ports, &dport, &init, BPF_ANY);
	return 0;
}}
"""),
    "sched": (("bpf_helpers.h", "bpf_tracing.h"), (), """
struct {{ __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1);
	__type(key, u32); __type(value, u64); }} switches SEC(".maps");
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch{n}, bool preempt, struct task_struct *prev, struct task_struct *next)
{{
	u32 zero = 0;
	u64 *val = bpf_map_lookup_elem(&switches, &zero);
	if (val && prev->pid != next->pid)
		*val += 1;
	return 0;
}}
"""),
    "func": (("bpf_helpers.h", "bpf_tracing.h"), ("bits.bpf.h",), """
const volatile __u64 units{n} = 1000;
__u32 hist{n}[32] = {{}};
struct {{ __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024);
	__type(key, u32); __type(value, u64); }} starts SEC(".maps");
SEC("kprobe/vfs_read")
int BPF_KPROBE(entry{n})
{{
	u32 tid = bpf_get_current_pid_tgid();
	u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY);
	return 0;
}}
SEC("kretprobe/vfs_read")
int BPF_KRETPROBE(exit{n}, long ret)
{{
	u32 tid = bpf_get_current_pid_tgid();
	u64 *tsp = bpf_map_lookup_elem(&starts, &tid), slot;
	if (!tsp)
		return 0;
	slot = log2l((bpf_ktime_get_ns() - *tsp) / units{n});
	if (slot < 32)
		__sync_fetch_and_add(&hist{n}[slot], 1);
	bpf_map_delete_elem(&starts, &tid);
	return 0;
}}
"""),
}


def tools_folder(corpus: Path, vmlinux_h: Path, count: int) -> list[Program]:
    """Programs as libbpf-tools writes them, in one folder with one vmlinux.h."""
    folder = corpus / "libbpf-tools"
    folder.mkdir()
    shutil.copy(vmlinux_h, folder / "vmlinux.h")
    (folder / "bits.bpf.h").write_text(BITS)
    (folder / "maps.bpf.h").write_text(MAPS)
    kinds = list(KINDS.items())
    programs = []
    for n in range(count):
        kind, (bpf_headers, local, body) = kinds[n % len(kinds)]
        variant = n // len(kinds)
        headers = list(bpf_headers)
        if variant % 2 and len(headers) > 2:  # the other order tools write them in
            headers[1], headers[2] = headers[2], headers[1]
        name = f"{kind}{n}"
        (folder / f"{name}.h").write_text(
            f"#ifndef __{name.upper()}_H\n#define __{name.upper()}_H\n"
            f"#define TASK_COMM_LEN_{n} 16\nstruct {name}_event {{ __u32 pid; "
            f"char comm[TASK_COMM_LEN_{n}]; }};\n#endif\n")
        vmlinux_line = "#include <vmlinux.h>" if variant % 3 == 0 else '#include "vmlinux.h"'
        lines = ["// SPDX-License-Identifier: GPL-2.0", vmlinux_line,
                 *(f"#include <bpf/{h}>" for h in headers), f'#include "{name}.h"',
                 *(f'#include "{h}"' for h in local), body.format(n=n),
                 'char LICENSE[] SEC("license") = "GPL";', ""]
        source = folder / f"{name}.bpf.c"
        source.write_text("\n".join(lines))
        programs.append(_program(f"libbpf-tools/{name}", source))
    return programs


# --- passes ---------------------------------------------------------------------------

def cpu_seconds() -> float:
    """Busy CPU time of the whole machine (user, nice, system, irq): background work too."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / os.sysconf("SC_CLK_TCK")


def two_at_a_time(programs: list[Program], command: Callable[[Program], list[list[str]]],
                  env: dict[str, str]) -> dict[str, float]:
    def one(program: Program) -> tuple[str, float]:
        start = time.perf_counter()
        for argv in command(program):
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=env, cwd=program.source.parent)
        return str(program.source), time.perf_counter() - start

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(one, programs))


_STATUS = re.compile(r"\bok\s+(\S+\.bpf\.c)\s+(\d+) ms")


def batch(py: str, programs: list[Program], env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run([py, "-m", "ecc", "build", "-j", "2", *(str(p.source) for p in programs)],
                          check=True, capture_output=True, text=True, env=env,
                          cwd=programs[0].source.parent)  # not an ecc folder: PYTHONPATH's ecc
    times = {}
    for match in _STATUS.finditer(done.stderr):
        times[match.group(1)] = int(match.group(2)) / 1000
    missing = [p for p in programs if str(p.source) not in times]
    if missing:
        said = [ln for ln in done.stderr.splitlines()
                if any(p.source.name in ln for p in missing)]
        raise SystemExit(f"no status line for {[p.name for p in missing]}: {said}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tools", type=int, default=24)
    parser.add_argument("--no-venv", action="store_true",
                        help="Only this interpreter (no warm pass from a fresh venv).")
    args = parser.parse_args()

    from ecc.compiler import compile as cc
    from ecc.compiler import pch, tools
    from ecc.compiler.cache import disk_usage

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "ecc")], check=True)
    clang = tools.find_tool("clang")
    strip = tools.find_tool("llvm-strip")
    bpftool = tools.find_tool("bpftool")
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="ecc-corpus-"))
    cache = work / "cache"
    env = dict(os.environ, ECC_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    env.pop("ECC_CACHE_MAX", None)
    try:
        vmlinux_h = work / "vmlinux.h"
        vmlinux_h.write_text(subprocess.run(
            [bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
            check=True, capture_output=True, text=True).stdout)
        corpus = work / "corpus"
        corpus.mkdir()
        programs = repository_programs(corpus, vmlinux_h) + tools_folder(corpus, vmlinux_h,
                                                                         args.tools)
        sysinc = cc.system_include_dirs(clang)

        def bare(p: Program) -> list[list[str]]:
            obj = p.source.with_suffix(".bare.o")
            argv = [clang, "-g", "-O2", "-target", "bpf", "-Wno-unknown-attributes",
                    f"-D__TARGET_ARCH_{cc.host_arch()}", f"-I{p.source.parent}"]
            for d in sysinc:
                argv += ["-idirafter", d]
            return [[*argv, "-c", str(p.source), "-o", str(obj)],
                    [strip, "-g", str(obj), "-o", str(obj.with_suffix(".stripped.o"))]]

        def ecc(p: Program, python: str = py) -> list[list[str]]:
            return [[python, "-m", "ecc", "build", str(p.source),
                     *([str(p.header)] if p.header else [])]]

        venv_py = None if args.no_venv else make_venv(work)
        venv_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}

        def ecc_venv(p: Program) -> list[list[str]]:
            return ecc(p, venv_py or py)

        folders = len({p.source.parent for p in programs})
        print(f"corpus: {len(programs)} programs in {folders} folders, each with its own "
              f"vmlinux.h ({vmlinux_h.stat().st_size >> 20} MB); {args.rounds} rounds, "
              f"two builds at a time")
        passes: tuple[str, ...] = ("bare", "cold", "warm", "warm compile", "warm venv",
                                   "batch cold", "batch warm")
        if venv_py is None:
            passes = tuple(k for k in passes if k != "warm venv")
        times: dict[str, list[dict[str, float]]] = {k: [] for k in passes}
        cpu: dict[str, list[float]] = {k: [] for k in passes}
        two_at_a_time(programs, bare, env)  # the page cache, for every pass alike
        sizes = []
        for _ in range(args.rounds):
            for name in passes:
                if name in ("cold", "batch cold"):
                    shutil.rmtree(cache, ignore_errors=True)
                if name == "warm compile":
                    shutil.rmtree(cache / "objects", ignore_errors=True)
                before = cpu_seconds()
                if name.startswith("batch"):
                    times[name].append(batch(py, programs, env))
                elif name == "warm venv":
                    times[name].append(two_at_a_time(programs, ecc_venv, venv_env))
                else:  # the warm passes all leave the objects they compiled in the cache
                    times[name].append(two_at_a_time(programs, bare if name == "bare" else ecc,
                                                     env))
                pch.settle(cache)  # background work belongs to the pass that caused it
                cpu[name].append(cpu_seconds() - before)
                if name == "warm":
                    sizes.append(disk_usage(cache))
        entries = len(pch.settle(cache))
        report(programs, times, cpu, passes)
        size = max(sizes)
        print(f"\ncache after cold + warm: {size / (1 << 20):.1f} MB, {entries} precompiled "
              f"header entr{'y' if entries == 1 else 'ies'} (target <= "
              f"{CACHE_TARGET >> 20} MB: {'met' if size <= CACHE_TARGET else 'NOT met'})")
        info = subprocess.run([py, "-m", "ecc", "cache", "info"], env=env, check=True, cwd=work,
                              capture_output=True, text=True).stdout
        print("ecc cache info (after the last pass):\n" + "".join(f"  {ln}\n"
                                                                for ln in info.splitlines()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(programs: list[Program], times: dict[str, list[dict[str, float]]],
           cpu: dict[str, list[float]], passes: tuple[str, ...]) -> None:
    ecc_passes = passes[1:]
    width = max(len(p.name) for p in programs) + 2
    print(f"\n{'program':<{width}}" + "".join(f"{k:>12}" for k in passes)
          + "".join(f"{k + '/bare':>17}" for k in ecc_passes))
    ratios: dict[str, list[float]] = {k: [] for k in ecc_passes}
    for p in programs:
        key = str(p.source)
        medians = [statistics.median(r[key] for r in times[k]) * 1000 for k in passes]
        row = f"{p.name:<{width}}" + "".join(f"{m:>9.0f} ms" for m in medians)
        for k in ecc_passes:
            ratio = statistics.median(r[key] / b[key]
                                      for r, b in zip(times[k], times["bare"], strict=True))
            ratios[k].append(ratio)
            row += f"{ratio:>17.2f}"
        print(row)
    print(f"\n{'pass':<12}{'median ratio':>14}{'target':>9}{'':>9}{'worst':>8}"
          f"{'CPU (machine)':>16}{'CPU/bare':>10}")
    bare_cpu = statistics.median(cpu["bare"])
    print(f"{'bare':<12}{'':>14}{'':>9}{'':>9}{'':>8}{bare_cpu:>14.1f} s{1:>10.2f}")
    for k in ecc_passes:
        median = statistics.median(ratios[k])
        verdict = "met" if median <= TARGETS[k] else "NOT met"
        seconds = statistics.median(cpu[k])
        print(f"{k:<12}{median:>14.2f}{'<= ' + str(TARGETS[k]):>9}{verdict:>9}"
              f"{max(ratios[k]):>8.2f}{seconds:>14.1f} s{seconds / bare_cpu:>10.2f}")
    for group, test in (("using vmlinux.h", True), ("not using it", False)):
        chosen = [i for i, p in enumerate(programs) if _uses_vmlinux(p) == test]
        if chosen:
            print(f"  programs {group} ({len(chosen)}): median ratio "
                  + ", ".join(f"{k} {statistics.median(ratios[k][i] for i in chosen):.2f}"
                              for k in ecc_passes))


def _uses_vmlinux(program: Program) -> bool:
    return "vmlinux.h" in program.source.read_text()


if __name__ == "__main__":
    raise SystemExit(main())
