#!/usr/bin/env python3
"""Start-up of `ecc run` against `bpftool prog loadall`, side by side (needs root).

For `ecc run`: wall time from process start until it reports every program
attached (its "ecc: running" line). For bpftool: wall time of
`bpftool prog loadall OBJ /sys/fs/bpf/DIR` (it loads but does not attach),
then the pins are removed. Same object, alternating runs, medians.

    sudo python3 benchmarks/run.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def time_ecc_run(package: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ecc", "run", str(package)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("ecc: running"):
            elapsed = time.perf_counter() - start
            break
        if line.startswith("ecc: error"):
            raise SystemExit(line.strip())
    else:
        raise SystemExit("ecc run exited before attaching")
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    return elapsed


def time_bpftool(bpftool: str, obj: Path, pin: str) -> float:
    start = time.perf_counter()
    subprocess.run([bpftool, "prog", "loadall", str(obj), pin], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    shutil.rmtree(pin)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: loading BPF")
    if not os.path.ismount("/sys/fs/bpf"):
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    work = Path(tempfile.mkdtemp(prefix="ecc-bench-run-"))
    env = dict(os.environ, ECC_CACHE_DIR=str(work / "cache"))
    try:
        src = ROOT / "examples" / "bootstrap"
        subprocess.run([sys.executable, "-m", "ecc", "build", str(src / "bootstrap.bpf.c"),
                        str(src / "bootstrap.h"), "-o", str(work)], check=True, env=env)
        package, obj = work / "package.json", work / "bootstrap.bpf.o"
        pin = f"/sys/fs/bpf/ecc-bench-{os.getpid()}"
        time_ecc_run(package)
        time_bpftool(bpftool, obj, pin)
        ecc_t, tool_t = [], []
        for _ in range(args.runs):
            ecc_t.append(time_ecc_run(package))
            tool_t.append(time_bpftool(bpftool, obj, pin))
        e, b = statistics.median(ecc_t), statistics.median(tool_t)
        print(f"runs: {args.runs} (median), object: bootstrap.bpf.o")
        print(f"{'ecc run: start -> all attached':<40}{e * 1000:>8.0f} ms")
        print(f"{'bpftool prog loadall (load only)':<40}{b * 1000:>8.0f} ms")
        print(f"{'ratio':<40}{e / b:>8.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
