"""`ecc doctor`, and the same toolchain checks after a build fails for a toolchain reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, needs, require, requires_clang

from ecc.doctor import check_kernel_btf, check_mount, libbpf_version

CLANG_FIX = "apt-get install clang-19 (Debian), or name one with --clang-bin"
CHECKS = ["clang", "BPF target", "CO-RE builtins", "llvm-strip", "libbpf headers", "bpftool",
          "wasm32 target", "kernel BTF", "bpffs", "tracefs"]
# A clang built without the BPF target, as some distributions ship it. No such
# clang exists on this machine, so this script stands in for it: it answers
# --version and -print-targets like one, and fails like one on -target bpf.
FAKE_CLANG = "\n".join([
    "#!/bin/sh",
    'case "$1" in',
    '  --version) echo "clang version 19.1.7"; echo "Target: x86_64-pc-linux-gnu"; exit 0 ;;',
    "  -print-targets) printf '  Registered Targets:\\n    x86    - 32-bit X86\\n'; exit 0 ;;",
    "esac",
    "echo \"error: unable to create target: 'No available targets are compatible with triple "
    "\\\"bpf\\\"'\" >&2",
    "exit 1",
    "",
])


def ecc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True, text=True,
                          env=env, check=False)


def statuses(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        status, rest = line.split(None, 1)
        out[rest.split(":", 1)[0]] = status
    return out


@pytest.fixture()
def fake_clang(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "clang"
    path.parent.mkdir()
    path.write_text(FAKE_CLANG)
    path.chmod(0o755)
    return path


@requires_clang
@pytest.mark.kernel
@needs("kernel-btf")
def test_doctor_passes_here(cache_env: Path, kernel: None) -> None:
    # the kernel fixture mounts bpffs and tracefs, which doctor checks
    result = ecc("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(statuses(result.stdout)) == CHECKS
    assert set(statuses(result.stdout).values()) <= {"ok", "warn"}
    assert result.stderr == "ecc: all 10 checks passed\n"


def test_doctor_without_clang_on_path(tmp_path: Path, cache_env: Path) -> None:
    """PATH holds every other tool, but no clang."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("llvm-strip-19",):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    env = {**os.environ, "PATH": str(bin_dir)}
    result = ecc("doctor", env=env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"  FAIL  clang: not found on PATH; fix: {CLANG_FIX}"
    assert lines[1] == "  skip  BPF target: not checked: no usable clang"
    assert lines[2] == "  skip  CO-RE builtins: not checked: no usable clang"
    # Builds strip in-process: llvm-strip is only needed for --llvm-strip-bin.
    assert statuses(result.stdout)["llvm-strip"] == ("ok" if shutil.which("llvm-strip-19")
                                                     else "warn")
    failed = [name for name, status in statuses(result.stdout).items() if status == "FAIL"]
    assert result.stderr == (
        f"ecc: error: {len(failed)} of 10 checks failed ({', '.join(failed)}); each FAIL line "
        f"above says the fix\n")


@requires_clang
def test_doctor_without_llvm_strip_only_warns(tmp_path: Path, cache_env: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    require("clang")
    clang = shutil.which("clang-19")
    assert clang is not None
    (bin_dir / "clang-19").symlink_to(clang)
    result = ecc("doctor", env={**os.environ, "PATH": str(bin_dir)})
    line = next(x for x in result.stdout.splitlines() if " llvm-strip: " in x)
    assert line == ("  warn  llvm-strip: not found on PATH; builds strip in-process, only "
                    "--llvm-strip-bin needs it; fix: apt-get install llvm-19 (Debian)")


def test_doctor_names_a_clang_without_bpf_target(fake_clang: Path, cache_env: Path) -> None:
    result = ecc("doctor", "--clang-bin", str(fake_clang))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"  ok    clang: {fake_clang}, clang version 19.1.7"
    assert lines[1] == (
        f"  FAIL  BPF target: {fake_clang} has no BPF target (clang -print-targets does not "
        f"list bpf); fix: install a clang built with the BPF target: {CLANG_FIX}")
    assert lines[2] == "  skip  CO-RE builtins: not checked: no BPF target"


def test_failed_build_runs_the_checks_quietly(fake_clang: Path, tmp_path: Path,
                                              cache_env: Path) -> None:
    """A build that fails for no reason in the program says what is wrong with the toolchain."""
    out = tmp_path / "out"
    result = ecc("build", "-c", str(fake_clang), str(EXAMPLES / "kprobe" / "kprobe.bpf.c"),
                 "-o", str(out))
    assert result.returncode == 1
    assert result.stderr == (
        "error: unable to create target: 'No available targets are compatible with triple "
        "\"bpf\"'\n"
        "ecc doctor:\n"
        f"  FAIL  BPF target: {fake_clang} has no BPF target (clang -print-targets does not "
        f"list bpf); fix: install a clang built with the BPF target: {CLANG_FIX}\n"
        "ecc: error: asking clang for its include directories failed (exit 1)\n")
    assert not out.exists() or list(out.iterdir()) == []


@requires_clang
def test_a_program_error_runs_no_checks(tmp_path: Path, cache_env: Path) -> None:
    source = tmp_path / "bad.bpf.c"
    source.write_text("int x = ;\n")
    result = ecc("build", str(source))
    assert result.returncode == 1
    assert "ecc doctor:" not in result.stderr


def test_libbpf_version_parse() -> None:
    text = "#define LIBBPF_MAJOR_VERSION 1\n#define LIBBPF_MINOR_VERSION 4\n"
    assert libbpf_version(text) == (1, 4)
    assert libbpf_version("/* nothing */") is None


def test_mount_and_btf_checks_say_the_fix(tmp_path: Path) -> None:
    assert check_mount("nosuchfs", "/mnt/x", "nosuchfs").line() == (
        "  FAIL  nosuchfs: no nosuchfs file system is mounted; fix: mount -t nosuchfs "
        "nosuchfs /mnt/x")
    not_btf = tmp_path / "vmlinux"
    not_btf.write_bytes(b"\x7fELF")
    assert check_kernel_btf(str(not_btf)).line() == (
        f"  FAIL  kernel BTF: {not_btf} is not BTF (bad magic); fix: a kernel built with "
        f"CONFIG_DEBUG_INFO_BTF=y; meanwhile build with --vmlinux FILE or --btf FILE, and run "
        f"with ecc run --btf FILE")
