#!/usr/bin/env python3
"""Start-up of `ecc run` against `bpftool prog loadall`, side by side (needs root).

For `ecc run`: wall time from process start until it reports every program
attached (its "ecc: running" line). For bpftool: wall time of
`bpftool prog loadall OBJ /sys/fs/bpf/DIR` (it loads but does not attach),
then the pins are removed. Same object, alternating runs, medians; each ratio
is the median of the rounds' ratios (the machine is shared: a slow spell hits
both sides of a round).

Two interpreters: this one (with whatever its site-packages `.pth` files
import at every start), and a fresh venv (`python -m venv --without-pip`) with
ecc installed in it (its files and their bytecode, as a wheel installs them), the
dependencies found through a path entry
(not a site directory, so their `.pth` files do not run). `--no-venv` skips
the second.

    sudo python3 benchmarks/run.py [--runs N] [--no-venv]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def time_ecc_run(python: str, package: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([python, "-m", "ecc", "run", str(package)], env=env,
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


def time_python_pass(python: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - start


def make_venv(work: Path) -> str:
    """A venv without pip with ecc in it as a wheel installs it: the package's files
    in site-packages, compiled to bytecode."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True,
                          text=True).stdout.strip()
    shutil.copytree(ROOT / "ecc", Path(site, "ecc"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([python, "-m", "compileall", "-q", str(Path(site, "ecc"))], check=True)
    # click, pyelftools & co. from this interpreter, as a plain path entry.
    Path(site, "ecc-bench-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def measure(label: str, python: str, env: dict[str, str], package: Path, bpftool: str,
            obj: Path, pin: str, runs: int) -> None:
    time_ecc_run(python, package, env)  # warm: page cache, bytecode
    time_bpftool(bpftool, obj, pin)
    ecc_t, tool_t, pass_t = [], [], []
    for _ in range(runs):
        ecc_t.append(time_ecc_run(python, package, env))
        tool_t.append(time_bpftool(bpftool, obj, pin))
        pass_t.append(time_python_pass(python, env))
    ratios = [e / b for e, b in zip(ecc_t, tool_t, strict=True)]
    print(f"{label}: {python}")
    print(f"  {'ecc run: start -> all attached':<40}{statistics.median(ecc_t) * 1000:>8.0f} ms")
    print(f"  {'bpftool prog loadall (load only)':<40}{statistics.median(tool_t) * 1000:>8.0f} ms")
    print(f"  {'python -c pass (the interpreter alone)':<40}"
          f"{statistics.median(pass_t) * 1000:>8.0f} ms")
    print(f"  {'ratio ecc run / bpftool':<40}{statistics.median(ratios):>8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--no-venv", action="store_true", help="Only this interpreter.")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: loading BPF")
    if not os.path.ismount("/sys/fs/bpf"):
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    work = Path(tempfile.mkdtemp(prefix="ecc-bench-run-"))
    env = dict(os.environ, ECC_CACHE_DIR=str(work / "cache"))
    # A user's installed ecc has its bytecode; let the warm-up run write it here too.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        src = ROOT / "examples" / "bootstrap"
        subprocess.run([sys.executable, "-m", "ecc", "build", str(src / "bootstrap.bpf.c"),
                        str(src / "bootstrap.h"), "-o", str(work)], check=True, env=env)
        package, obj = work / "package.json", work / "bootstrap.bpf.o"
        pin = f"/sys/fs/bpf/ecc-bench-{os.getpid()}"
        print(f"runs: {args.runs} (medians), object: bootstrap.bpf.o")
        measure("this interpreter", sys.executable, env, package, bpftool, obj, pin, args.runs)
        if not args.no_venv:
            venv_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
            python = make_venv(work)
            measure("fresh venv", python, venv_env, package, bpftool, obj, pin, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
