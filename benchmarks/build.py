#!/usr/bin/env python3
"""Wall time of `ecc build` against the bare toolchain on the same source, side by side.

The baseline is what a hand-written Makefile does: `clang -g -O2 -target bpf`
with the same include directories, then `llvm-strip -g`. Both run in this one
process, alternating, so machine noise hits them alike; the median of several
runs is printed with the ratio.

    python3 benchmarks/build.py [--runs N] [--example bootstrap]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--example", action="append", default=None,
                        help="example folder name (default: bootstrap)")
    args = parser.parse_args()

    from ecc.build import compile as cc
    from ecc.build import tools, vmlinux

    clang = tools.find_tool("clang")
    strip = tools.find_tool("llvm-strip")
    work = Path(tempfile.mkdtemp(prefix="ecc-bench-"))
    env = dict(os.environ, ECC_CACHE_DIR=str(work / "cache"))
    os.environ["ECC_CACHE_DIR"] = env["ECC_CACHE_DIR"]
    vmlinux_dir = vmlinux.generated_header_dir(source_name="benchmark")
    sysinc = cc.system_include_dirs(clang)
    print(f"clang: {clang}; runs: {args.runs} (median); cache: {work / 'cache'}")
    print(f"{'program':<14}{'bare clang+strip':>18}{'ecc build':>12}{'ratio':>8}")
    try:
        for name in args.example or ["bootstrap"]:
            folder = ROOT / "examples" / name
            source = folder / f"{name}.bpf.c"
            header = folder / f"{name}.h"
            out = work / name
            out.mkdir()
            bare = [clang, "-g", "-O2", "-target", "bpf", "-Wno-unknown-attributes",
                    f"-D__TARGET_ARCH_{cc.host_arch()}", f"-I{folder}", f"-I{vmlinux_dir}"]
            for d in sysinc:
                bare += ["-idirafter", d]
            bare += ["-c", str(source), "-o", str(out / "bare.o")]
            strip_cmd = [strip, "-g", str(out / "bare.o"), "-o", str(out / "bare.stripped.o")]
            ecc_cmd = [sys.executable, "-m", "ecc", "build", str(source),
                       *([str(header)] if header.is_file() else []), "-o", str(out)]
            timed(ecc_cmd, env)  # warm the OS page cache and ecc's own caches alike
            bare_t, ecc_t = [], []
            for _ in range(args.runs):
                bare_t.append(timed(bare) + timed(strip_cmd))
                ecc_t.append(timed(ecc_cmd, env))
            b, e = statistics.median(bare_t), statistics.median(ecc_t)
            print(f"{name:<14}{b * 1000:>15.0f} ms{e * 1000:>9.0f} ms{e / b:>8.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
