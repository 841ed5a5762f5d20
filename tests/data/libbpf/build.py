"""Compile the tiny BPF (and one user-space) test programs of this folder.

Nothing compiled is checked in: the tests call these helpers at run time
with a temporary output directory. Sources compile in parallel because
clang spends most of its time parsing vmlinux.h (about 0.4 s each).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLANG = "clang-19"
KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")


class BuildError(RuntimeError):
    """A test program failed to compile; the message carries the tool's output."""


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed ({' '.join(cmd)}):\n{proc.stderr}{proc.stdout}")


def missing_tools() -> list[str]:
    """The tools these helpers need that are not on PATH."""
    need = [CLANG, "gcc", "bpftool"]
    return [tool for tool in need if shutil.which(tool) is None]


def vmlinux_h(include_dir: Path) -> Path:
    """A directory holding vmlinux.h, dumped from the kernel's BTF."""
    include_dir.mkdir(parents=True, exist_ok=True)
    target = include_dir / "vmlinux.h"
    if not target.exists():
        cmd = ["bpftool", "btf", "dump", "file", str(KERNEL_BTF), "format", "c"]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0:
            raise BuildError(f"bpftool failed: {proc.stderr.decode(errors='replace')}")
        target.write_bytes(proc.stdout)
    return include_dir


def compile_bpf(name: str, out_dir: Path, include_dir: Path) -> Path:
    """HERE/<name>.bpf.c -> out_dir/<name>.bpf.o (clang -g -O2 -target bpf)."""
    src = HERE / f"{name}.bpf.c"
    obj = out_dir / f"{name}.bpf.o"
    cmd = [
        CLANG,
        "-g",
        "-O2",
        "-target",
        "bpf",
        "-D__TARGET_ARCH_x86",
        f"-I{include_dir}",
        f"-I{HERE}",
        "-c",
        str(src),
        "-o",
        str(obj),
    ]
    _run(cmd, f"compiling {src.name}")
    return obj


def compile_user(name: str, out_dir: Path) -> Path:
    """HERE/<name>.c -> out_dir/<name>, a user-space program (gcc -O1 -g)."""
    src = HERE / f"{name}.c"
    exe = out_dir / name
    _run(["gcc", "-O1", "-g", "-o", str(exe), str(src)], f"compiling {src.name}")
    return exe


def compile_all(names: Iterable[str], out_dir: Path) -> dict[str, Path]:
    """Compile every <name>.bpf.c in parallel; returns name -> object path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    include_dir = vmlinux_h(out_dir / "include")
    names = list(names)
    with ThreadPoolExecutor(max_workers=4) as pool:
        objs = list(pool.map(lambda n: compile_bpf(n, out_dir, include_dir), names))
    return dict(zip(names, objs, strict=True))


def all_bpf_sources() -> list[str]:
    """Names of every BPF test program in this folder (fails loudly when none)."""
    names = sorted(p.name.removesuffix(".bpf.c") for p in HERE.glob("*.bpf.c"))
    if not names:
        raise BuildError(f"no *.bpf.c in {HERE}")
    return names
