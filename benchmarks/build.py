#!/usr/bin/env python3
"""Build speed: `ecc build` against the bare toolchain on the same sources, side by side.

Baseline ("bare"): what a hand-written Makefile does, `clang -g -O2 -target bpf`
with the same include folders and vmlinux.h, then `llvm-strip -g`. Against it
(ecc does the same strip in-process, ecc/compiler/strip.py):

- ecc warm:     the precompiled vmlinux.h prefix is in the cache (every build after the first)
- ecc object:   the program's compiled object is in the cache too (a build of unchanged
                files: ecc/compiler/objcache.py); warm, cold and no-cache compile
                (ECC_OBJECT_CACHE=0)
- ecc cold:     no precompiled header yet (the first build of that prefix); the
                generated vmlinux.h itself is kept, since the baseline needs one too.
                The build compiles without the PCH and leaves a detached process
                making it (ecc/compiler/pch.py); the time is until `ecc build` exits,
                and the next run starts when that process is done (also printed:
                cold+pch, until the PCH is there)
- ecc no-cache: `--no-cache`, no precompiled header at all
- floor:        `python -c` that only runs the clang command of a warm build: what
                no Python front end can beat

Runs alternate, so machine noise hits all alike; each time is a median, each
ratio the median of the rounds' ratios (the ratios of the medians are printed too).
Then `ecc --help` against `python -c pass`, and all examples built with -j 2
against -j 1.

    python3 benchmarks/build.py [--runs N]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROGRAMS = {
    "bootstrap": ROOT / "examples" / "bootstrap" / "bootstrap.bpf.c",
    "large": ROOT / "benchmarks" / "large" / "large.bpf.c",
}


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - start


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def paired_ratio(values: list[float], bare: list[float]) -> float:
    """The median of each round's ratio to that round's bare build.

    The runs of one round follow each other within a second or two, so a slow
    spell of this shared machine slows both sides of a ratio; a ratio of the
    two medians can pair a fast bare run with a slow ecc run.
    """
    return statistics.median(v / b for v, b in zip(values, bare, strict=True))


def floor_command(py: str, ecc_cmd: list[str], source: Path, workspace: Path,
                  env: dict[str, str]) -> list[str]:
    """What no Python front end can beat: the interpreter starting, then clang
    run exactly as a warm ``ecc build`` runs it (argv from ``-v``, in its folder)."""
    shown = subprocess.run([*ecc_cmd, "-v", "-w", str(workspace)], env=env, check=True,
                           capture_output=True, text=True).stderr
    line = next(ln for ln in shown.splitlines() if ln.startswith("ecc: + "))
    words = shlex.split(line.removeprefix("ecc: + "))
    # The line starts with the variables ecc adds to clang's environment.
    added = dict(w.split("=", 1) for w in itertools.takewhile(lambda w: "=" in w, words))
    argv = words[len(added):]
    assert "-include-pch" in argv, "the warm build did not use the precompiled header"
    mirrors = sorted(workspace.glob("src-*"))  # where ecc runs clang (ecc/compiler/repro.py)
    cwd = str(mirrors[0] if mirrors else source.parent)
    code = ("import os, subprocess, sys; "
            f"subprocess.run(sys.argv[1:], cwd={cwd!r}, env={{**os.environ, **{added!r}}}, "
            "capture_output=True, check=True)")
    return [py, "-c", code, *argv]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    from ecc.compiler import compile as cc
    from ecc.compiler import pch, tools, vmlinux

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "ecc")], check=True)
    clang = tools.find_tool("clang")
    strip = tools.find_tool("llvm-strip")
    work = Path(tempfile.mkdtemp(prefix="ecc-bench-"))
    cache = work / "cache"
    objects = dict(os.environ, ECC_CACHE_DIR=str(cache))
    env = dict(objects, ECC_OBJECT_CACHE="0")
    os.environ["ECC_CACHE_DIR"] = str(cache)
    vmlinux_dir = vmlinux.generated_header_dir(source_name="benchmark")
    sysinc = cc.system_include_dirs(clang)
    py = sys.executable
    print(f"clang: {clang}; python: {py}; {args.runs} runs each, medians")
    print(f"\n{'program':<11}{'bare':>9}{'warm':>9}{'cold':>9}{'no-cache':>10}{'object':>9}"
          f"{'warm/bare':>11}{'cold/bare':>11}{'no-cache/bare':>15}{'object/bare':>13}")
    notes: list[str] = []
    try:
        for name, source in PROGRAMS.items():
            header = source.with_suffix("").with_suffix(".h")
            out = work / name
            out.mkdir()
            bare = [clang, "-g", "-O2", "-target", "bpf", "-Wno-unknown-attributes",
                    f"-D__TARGET_ARCH_{cc.host_arch()}", f"-I{source.parent}",
                    f"-I{vmlinux_dir}"]
            for d in sysinc:
                bare += ["-idirafter", d]
            bare += ["-c", str(source), "-o", str(out / "bare.o")]
            strip_cmd = [strip, "-g", str(out / "bare.o"), "-o", str(out / "bare.stripped.o")]
            ecc_cmd = [py, "-m", "ecc", "build", str(source),
                       *([str(header)] if header.is_file() else []), "-o", str(out)]
            timed(ecc_cmd, env)  # warms the page cache, makes the PCH
            pch.settle(cache)
            floor = floor_command(py, ecc_cmd, source, work / f"{name}-workspace", env)
            # An object is kept only when its files (and their ctime, which the builds'
            # links change) are 2 s old (objcache.SETTLED_NS).
            time.sleep(2.2)
            timed(ecc_cmd, objects)
            results: dict[str, list[float]] = {"bare": [], "warm": [], "cold": [], "nocache": [],
                                               "coldpch": [], "floor": [], "object": []}
            for _ in range(args.runs):
                results["bare"].append(timed(bare) + timed(strip_cmd))
                results["warm"].append(timed(ecc_cmd, env))
                results["floor"].append(timed(floor))
                shutil.rmtree(cache / "pch", ignore_errors=True)
                start = time.perf_counter()
                results["cold"].append(timed(ecc_cmd, env))
                pch.settle(cache)
                results["coldpch"].append(time.perf_counter() - start)
                results["nocache"].append(timed([*ecc_cmd, "--no-cache"], env))
                results["object"].append(timed(ecc_cmd, objects))
            b, w, c, n, o = (median_ms(results[k])
                             for k in ("bare", "warm", "cold", "nocache", "object"))
            rw, rc, rn, ro = (paired_ratio(results[k], results["bare"])
                              for k in ("warm", "cold", "nocache", "object"))
            print(f"{name:<11}{b:>6.0f} ms{w:>6.0f} ms{c:>6.0f} ms{n:>7.0f} ms{o:>6.0f} ms"
                  f"{rw:>11.2f}{rc:>11.2f}{rn:>15.2f}{ro:>13.2f}")
            notes.append(f"{name}: ratios of the medians: warm {w / b:.2f}, cold {c / b:.2f}, "
                         f"no-cache {n / b:.2f}")
            notes.append(f"{name}: floor {median_ms(results['floor']):.0f} ms "
                         f"({paired_ratio(results['floor'], results['bare']):.2f}x bare): a "
                         f"Python process that only runs the clang command of a warm build")
            cold_pch = median_ms(results["coldpch"])
            notes.append(f"{name}: cold+pch {cold_pch:.0f} ms ({cold_pch / b:.2f}x bare), "
                         f"the PCH made in the background after the cold build")
        print("".join(f"  {note}\n" for note in notes), end="")

        passes, helps = [], []
        for _ in range(args.runs * 2):
            passes.append(timed([py, "-c", "pass"]))
            helps.append(timed([py, "-m", "ecc", "--help"]))
        p, h = median_ms(passes), median_ms(helps)
        print(f"\n{'python -c pass':<20}{p:>7.0f} ms\n{'ecc --help':<20}{h:>7.0f} ms"
              f"\n{'ratio':<20}{h / p:>10.2f}")

        examples = sorted(str(d) for d in (ROOT / "examples").iterdir() if d.is_dir())
        timed([py, "-m", "ecc", "build", *examples, "-o", str(work / "all"), "-j", "2"], env)
        serial, parallel = [], []
        for _ in range(args.runs):
            serial.append(timed([py, "-m", "ecc", "build", *examples, "-o",
                                 str(work / "all"), "-j", "1"], env))
            parallel.append(timed([py, "-m", "ecc", "build", *examples, "-o",
                                   str(work / "all"), "-j", "2"], env))
        s, q = median_ms(serial), median_ms(parallel)
        speedup = 1 / paired_ratio(parallel, serial)
        print(f"\n{len(examples)} examples, -j 1{s:>9.0f} ms\n{len(examples)} examples, -j 2"
              f"{q:>9.0f} ms\n{'speed-up':<19}{speedup:>9.2f}"
              f"  (ratio of the medians {s / q:.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
