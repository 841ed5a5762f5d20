#!/usr/bin/env python3
"""`ecc check --btfhub-archive` against `bpftool gen min_core_btf`, per kernel, side by side.

Both read every kernel BTF of the same archive and resolve the same object's CO-RE
relocations against it: bpftool (libbpf's own resolver, in C) to write a minimized
BTF, ecc to judge the kernel. The archive is N copies of this machine's kernel BTF
under BTFHub paths (the time per kernel does not depend on which kernel it is).
ecc runs once over the whole archive (its own worker processes); bpftool once per
kernel, as `ecc build --btfgen` runs it.

    python3 benchmarks/check.py [--kernels N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "data" / "compat" / "core.bpf.c"
VMLINUX = Path("/sys/kernel/btf/vmlinux")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernels", type=int, default=210)
    args = parser.parse_args()
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "pkg")
        subprocess.run([sys.executable, "-m", "ecc", "build", str(SOURCE), "-o", str(out)],
                       check=True, capture_output=True)
        archive = Path(tmp, "archive")
        kernels = []
        for i in range(args.kernels):
            folder = archive / f"distro{i % 7}" / str(i // 7) / "x86_64"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(VMLINUX, folder / f"6.1.{i}-bench.btf")
            kernels.append(folder / f"6.1.{i}-bench.btf")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ecc", "check", str(out / "package.json"),
                        "--btfhub-archive", str(archive)], check=True, capture_output=True)
        ecc_s = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ecc", "check", str(out / "package.json"),
                        "--btfhub-archive", str(archive), "-j", "1"], check=True,
                       capture_output=True)
        ecc1_s = time.perf_counter() - start
        start = time.perf_counter()
        for kernel in kernels:
            subprocess.run([bpftool, "gen", "min_core_btf", str(kernel), str(Path(tmp, "min")),
                            str(out / "core.bpf.o")], check=True, capture_output=True)
        bpftool_s = time.perf_counter() - start
    n = args.kernels
    print(f"{n} kernels ({VMLINUX.stat().st_size} bytes of BTF each)")
    print(f"{'':34} {'total s':>8} {'ms/kernel':>10}")
    for name, seconds in (("ecc check (all CPUs)", ecc_s), ("ecc check -j 1", ecc1_s),
                          ("bpftool gen min_core_btf", bpftool_s)):
        print(f"{name:34} {seconds:8.2f} {seconds / n * 1000:10.1f}")
    print(f"ecc -j 1 / bpftool: {ecc1_s / bpftool_s:.2f}x")


if __name__ == "__main__":
    main()
