"""--arch for another machine: arm64 from x86, several arches at once, and run refusing (issue 9).

The arm64 vmlinux.h is hand-written (tests/data/arch/arm64-vmlinux.h): no arm64
kernel BTF exists on this machine. The arm64 BTF given to --btf is made here
from that header by clang and llvm-objcopy, as a stand-in for an arm64 kernel's.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs, require, requires_clang

from ecc.btf import Btf, parse_btf
from ecc.elf import read_object

pytestmark = requires_clang

DATA = Path(__file__).resolve().parent / "data" / "arch"
ARM64_HEADER = DATA / "arm64-vmlinux.h"
PROGRAM = "kprobe_args.bpf.c"
SECTION = "kprobe/do_unlinkat"
BPF_LDX_MEM_DW = 0x79
X86_PT_REGS_DI = 112  # struct pt_regs: r15 ... si (13), di (14) * 8

on_x86 = needs("x86_64")


def ecc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True, text=True,
                          check=False)


def core_relocations(obj: bytes) -> list[tuple[str, int, str, str, int]]:
    """(section, insn offset, type name, access string, kind) from .BTF.ext, libbpf's layout."""
    elf = read_object(obj)
    assert elf.btf is not None and elf.btf_ext is not None
    btf: Btf = parse_btf(elf.btf)
    ext = elf.btf_ext
    hdr_len = struct.unpack_from("<I", ext, 4)[0]
    relo_off, relo_len = struct.unpack_from("<II", ext, 24)
    pos = hdr_len + relo_off
    end = pos + relo_len
    rec_size = struct.unpack_from("<I", ext, pos)[0]
    pos += 4
    out = []
    while pos < end:
        sec_off, count = struct.unpack_from("<II", ext, pos)
        pos += 8
        for _ in range(count):
            insn_off, type_id, access_off, kind = struct.unpack_from("<IIII", ext, pos)
            out.append((btf.string_at(sec_off), insn_off, btf[type_id].name or "",
                        btf.string_at(access_off), kind))
            pos += rec_size
    return out


def first_ctx_load(obj: bytes) -> tuple[int, int]:
    """(byte offset, field offset) of the program's first 8-byte load from its context (r1)."""
    elf = read_object(obj)
    section = next(s for s in elf.sections if s.name == SECTION)
    code = obj[section.offset:section.offset + section.size]
    for pos in range(0, len(code), 8):
        op, regs, off = code[pos], code[pos + 1], struct.unpack_from("<h", code, pos + 2)[0]
        if op == BPF_LDX_MEM_DW and regs >> 4 == 1:  # src register r1: ctx
            return pos, off
    raise AssertionError("no load from the context")


@pytest.fixture(scope="module")
def arm64_build(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Path:
    out = tmp_path_factory.mktemp("arm64")
    result = ecc("build", str(DATA / PROGRAM), "--arch", "arm64", "--vmlinux", str(ARM64_HEADER),
                 "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_arm64_kprobe_reads_regs0(arm64_build: Path) -> None:
    """PT_REGS_PARM1 on arm64 is user_pt_regs.regs[0]: offset 0, a CO-RE field relocation."""
    obj = (arm64_build / "kprobe_args.bpf.o").read_bytes()
    pos, off = first_ctx_load(obj)
    assert off == 0
    assert (SECTION, pos, "user_pt_regs", "0:0:0", 0) in core_relocations(obj)


@on_x86
def test_x86_build_of_the_same_program_reads_di(tmp_path: Path, cache_env: Path) -> None:
    """The contrast: the host's arch, with the kernel's own vmlinux.h, reads pt_regs.di."""
    result = ecc("build", str(DATA / PROGRAM), "--arch", "x86", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    obj = (tmp_path / "kprobe_args.bpf.o").read_bytes()
    pos, off = first_ctx_load(obj)
    assert off == X86_PT_REGS_DI
    assert (SECTION, pos, "pt_regs", "0:14", 0) in core_relocations(obj)


def test_arm64_provenance(arm64_build: Path) -> None:
    record = json.loads((arm64_build / "package.json").read_text())["meta"]["provenance"]
    assert record["arch"] == "arm64"
    assert "-D__TARGET_ARCH_arm64" in record["flags"] and "-I<vmlinux>" in record["flags"]
    assert {"path": "<vmlinux>/vmlinux.h",
            "sha256": __import__("hashlib").sha256(ARM64_HEADER.read_bytes()).hexdigest()
            } in record["headers"]


@on_x86
def test_run_refuses_another_arch(arm64_build: Path) -> None:
    package = arm64_build / "package.json"
    result = ecc("run", str(package))
    assert result.returncode == 1
    assert result.stderr == (
        f"ecc: error: {package}: built for arm64 (meta.provenance.arch), but this machine is "
        f"x86; rebuild it with --arch x86, or pass --force to load it anyway\n")
    skel = arm64_build / "kprobe_args.skel.json"
    assert ecc("run", str(skel)).stderr.startswith(f"ecc: error: {skel}: built for arm64")


@on_x86
@pytest.mark.kernel
def test_force_loads_it_anyway(arm64_build: Path, kernel: None) -> None:
    """--force (before or after PACKAGE) skips the check, and libbpf then shows why it
    exists: this kernel has no struct user_pt_regs to relocate the arm64 code against."""
    package = str(arm64_build / "package.json")
    for args in (("--force", "--duration", "1", package),
                 ("--duration", "1", package, "--force")):
        result = ecc("run", *args)
        lines = result.stderr.splitlines()
        assert lines[0] == (f"ecc: warning: {package}: built for arm64, loading it on x86 "
                            f"anyway (--force)")
        assert "struct user_pt_regs.regs[0] (0:0:0 @ offset 0)" in result.stderr
        assert result.returncode == 1


@on_x86
def test_several_arches_into_subfolders(tmp_path: Path, cache_env: Path) -> None:
    result = ecc("build", str(DATA / PROGRAM), "--arch", "x86,arm64",
                 "--vmlinux", f"arm64={ARM64_HEADER}", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for arch, offset in (("x86", X86_PT_REGS_DI), ("arm64", 0)):
        folder = tmp_path / arch
        assert sorted(p.name for p in folder.iterdir()) == [
            "kprobe_args.bpf.o", "kprobe_args.skel.json", "package.json"]
        meta = json.loads((folder / "package.json").read_text())["meta"]
        assert meta["provenance"]["arch"] == arch
        assert first_ctx_load((folder / "kprobe_args.bpf.o").read_bytes())[1] == offset


def test_btf_file_makes_the_vmlinux_h(tmp_path: Path, cache_env: Path) -> None:
    """--btf arm64=FILE: ecc makes vmlinux.h from a BTF blob with bpftool, as from a kernel's."""
    require("llvm-objcopy")
    objcopy = shutil.which("llvm-objcopy-19") or shutil.which("llvm-objcopy")
    assert objcopy is not None
    types = tmp_path / "types.c"
    # Every type the program and libbpf's headers use, kept in BTF by a variable.
    types.write_text(f'#include "{ARM64_HEADER}"\n'
                     "struct pt_regs regs; struct filename f; struct user_pt_regs user_regs;\n"
                     "struct { __s8 a; __u8 b; __s16 c; __u16 d; __s32 e; __u32 f; __s64 g; "
                     "__u64 h; __be16 i; __be32 j; __wsum k; bool l; } all;\n")
    obj, btf = tmp_path / "types.o", tmp_path / "arm64.btf"
    subprocess.run(["clang-19", "-g", "-target", "bpf", "-c", str(types), "-o", str(obj)],
                   check=True)
    subprocess.run([objcopy, f"--dump-section=.BTF={btf}", str(obj)], check=True)
    out = tmp_path / "out"
    result = ecc("build", str(DATA / PROGRAM), "--arch", "arm64", "--btf", f"arm64={btf}",
                 "-o", str(out))
    assert result.returncode == 0, result.stderr
    built = (out / "kprobe_args.bpf.o").read_bytes()
    pos, off = first_ctx_load(built)
    assert off == 0 and (SECTION, pos, "user_pt_regs", "0:0:0", 0) in core_relocations(built)


@on_x86
@pytest.mark.parametrize(("args", "message"), [
    (["--arch", "arm64"],
     "kprobe_args.bpf.c includes vmlinux.h, but the one ecc makes from this machine's kernel "
     "is for x86, not arm64; give an arm64 one with --vmlinux FILE, or --btf FILE (the BTF of "
     "an arm64 kernel)"),
    (["--arch", "x86,arm64", "--vmlinux", "v.h"],
     "--vmlinux v.h: with several --arch values, say which arch it is for "
     "(--vmlinux ARCH=FILE)"),
    (["--arch", "x86", "--vmlinux", "arm64=v.h"],
     "--vmlinux arm64=v.h: arm64 is not one of --arch x86"),
    (["--arch", "sparc"],
     "--arch sparc: unknown; use one of x86, arm64, powerpc, mips, riscv, s390, loongarch, arm "
     "(several: --arch x86,arm64)"),
    (["--arch", "arm64,arm64"], "--arch arm64,arm64: arm64 is given twice"),
    (["--arch", "arm64", "--vmlinux", "v.h", "--btf", "b.btf"],
     "--vmlinux and --btf both given for arm64; give one"),
    (["--arch", "arm64", "--btf", "nope.btf"], "--btf nope.btf: no such file"),
])
def test_arch_errors(args: list[str], message: str, tmp_path: Path, cache_env: Path) -> None:
    result = ecc("build", str(DATA / PROGRAM), "-o", str(tmp_path), *args)
    assert (result.returncode, result.stderr) == (1, f"ecc: error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_vmlinux_beside_the_source_would_shadow_the_one_named(tmp_path: Path,
                                                              cache_env: Path) -> None:
    shutil.copy(DATA / PROGRAM, tmp_path / PROGRAM)
    (tmp_path / "vmlinux.h").write_text("#error not this one\n")
    result = ecc("build", str(tmp_path / PROGRAM), "--arch", "arm64", "--vmlinux",
                 str(ARM64_HEADER))
    assert result.returncode == 1
    assert result.stderr == (
        f"ecc: error: {tmp_path / 'vmlinux.h'} would be included instead of the vmlinux.h of "
        f"--vmlinux (the program's folder and -I folders come first); move it away or drop "
        f"--vmlinux\n")
