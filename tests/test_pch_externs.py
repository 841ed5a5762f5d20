"""Externs and the precompiled header (issue 27): a warm build is the cold build, byte for byte.

clang writes no BTF for an extern declared in the precompiled prefix unless a
direct call emits it (ecc/compiler/externs.py). The build notices, compiles again
without the PCH and marks the source, so these tests check: the loss is real
with clang's own output, the shipped object is the cold one, the mark spares
later builds the wasted compile, and the warm objects load into the kernel.
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from builds import CASES, Unit, all_units
from conftest import kernel_config, requires_clang

from ecc.cli import parse_build_args
from ecc.compiler import BuildOptions, BuildResult, build, pch
from ecc.compiler.externs import externs_without_btf
from ecc.compiler.strip import strip_debug

# Tests of the precompiled headers: every build compiles (objcache.py off).
pytestmark = pytest.mark.usefixtures("no_object_cache")

# Every extern each case's object names, written by hand from the sources (not by
# running ecc), and the ones a compile with the PCH leaves without BTF.
EXTERNS = {
    # <bpf/usdt.bpf.h> is not in the precompiled prefix (it stops at bpf_helpers.h), so its
    # kconfig extern keeps its BTF; the kfuncs below still come from the prefix.
    "extern_usdt": ({"LINUX_HAS_BPF_COOKIE"}, set()),
    "extern_prefix_kfuncs": (
        {"bpf_iter_num_new", "bpf_iter_num_next", "bpf_iter_num_destroy", "bpf_rdonly_cast",
         "bpf_task_from_pid", "bpf_task_release", "bpf_cgroup_from_id"},
        # Called directly, a kfunc gets its BTF from the call; these two are not.
        {"bpf_iter_num_destroy", "bpf_cgroup_from_id"}),
    "extern_program_decls": (
        {"LINUX_KERNEL_VERSION", "CONFIG_BPF_SYSCALL", "bpf_prog_put", "bpf_task_from_pid",
         "bpf_task_release"},
        set()),
    "extern_typed_ksym": ({"runqueues"}, set()),
}


def _build(case: str, out: Path, **kw: Any) -> BuildResult:
    return build(BuildOptions(source=str(CASES / case / "prog.bpf.c"), output_dir=str(out),
                              **kw))


def _clang_runs(result: BuildResult) -> list[dict[str, Any]]:
    return [c for c in result.commands if c["what"].startswith("compiling")]


def _extern_btf(obj: Path) -> set[str]:
    """The names bpftool shows with extern linkage: the oracle outside ecc."""
    dump = subprocess.run(["bpftool", "btf", "dump", "file", str(obj)], capture_output=True,
                          text=True, check=True).stdout
    return {line.split("'")[1] for line in dump.splitlines()
            if line.startswith("[") and "linkage=extern" in line}


@requires_clang
@pytest.mark.parametrize("case", sorted(EXTERNS))
def test_warm_build_keeps_every_extern(case: str, tmp_path: Path, fresh_cache: Path) -> None:
    names, lost = EXTERNS[case]
    cold = _build(case, tmp_path / "cold")
    assert len(_clang_runs(cold)) == 1 and "-include-pch" not in _clang_runs(cold)[0]["argv"]
    assert _extern_btf(tmp_path / "cold" / "prog.bpf.o") == names
    assert pch.settle(fresh_cache), "no PCH was made"

    warm = _build(case, tmp_path / "warm", workspace=str(tmp_path / "ws"))
    runs = _clang_runs(warm)
    assert "-include-pch" in runs[0]["argv"]
    # What clang made with the PCH, stripped as a build strips it: the loss is real.
    argv = list(runs[0]["argv"])
    argv[argv.index("-o") + 1] = str(tmp_path / "with-pch.o")
    subprocess.run(argv, cwd=runs[0]["cwd"], env={**os.environ, **runs[0]["env"]},
                   check=True, capture_output=True)
    with_pch = strip_debug((tmp_path / "with-pch.o").read_bytes(), canonical_btf=True)
    assert set(externs_without_btf(with_pch)) == lost
    # The build shipped the cold object: compiled once more without the PCH when lost.
    assert len(runs) == (2 if lost else 1)
    assert warm.object_bytes == cold.object_bytes
    assert warm.meta == cold.meta
    assert _extern_btf(tmp_path / "warm" / "prog.bpf.o") == names

    third = _build(case, tmp_path / "third")
    runs = _clang_runs(third)
    assert len(runs) == 1  # a source that lost externs goes without the PCH at once
    assert ("-include-pch" in runs[0]["argv"]) == (not lost)
    assert third.object_bytes == cold.object_bytes
    marks = list((fresh_cache / "pch").glob("*/loses-externs/*"))
    assert len(marks) == (1 if lost else 0)


@requires_clang
@pytest.mark.kernel
@pytest.mark.parametrize("case", sorted(EXTERNS))
def test_warm_build_loads(case: str, tmp_path: Path, fresh_cache: Path, kernel: None) -> None:
    """libbpf resolves every extern of the warm object (kconfig, kallsyms, kernel BTF)
    and the kernel verifies its programs."""
    from ecc.errors import LibbpfError
    from ecc.run.libbpf import BpfObject

    _build(case, tmp_path / "cold")
    pch.settle(fresh_cache)
    warm = _build(case, tmp_path / "warm")
    with BpfObject.open_mem(warm.object_bytes, object_name="prog_bpf") as obj:
        if case == "extern_typed_ksym" and not kernel_config("CONFIG_KALLSYMS_ALL"):
            # libbpf resolved the extern through the kernel's BTF (else it would say
            # "failed to find BTF for extern"); the kernel has no address for it.
            with pytest.raises(LibbpfError) as failure:
                obj.load()
            assert ("ldimm64 failed to find the address for kernel symbol 'runqueues'"
                    in (failure.value.details or ""))
            return
        obj.load()
        assert all(p.fd >= 0 for p in obj.programs())


def _cold_and_warm(unit: Unit, out: Path) -> tuple[str, bytes | None, bytes | None, bool]:
    args = [str(unit.source), *([str(unit.header)] if unit.header else []), *unit.flags]
    cold_opts = parse_build_args([*args, "--no-cache", "-o", str(out / "cold")])
    warm_opts = parse_build_args([*args, "-o", str(out / "warm")])
    try:
        cold = build(cold_opts).object_bytes
    except Exception:  # noqa: BLE001 - a case that must fail fails the same way warm
        cold = None
    try:
        result = build(warm_opts)
        return unit.name, cold, result.object_bytes, any(
            "-include-pch" in c["argv"] for c in _clang_runs(result))
    except Exception:  # noqa: BLE001
        return unit.name, cold, None, False


@requires_clang
def test_every_case_and_example_is_the_same_cold_and_warm(tmp_path: Path,
                                                         fresh_cache: Path) -> None:
    """The README's promise, on everything the repository has: each golden case and
    example (cases named example-* build the examples) built without the cache and
    with a ready PCH gives the same bytes."""
    units = all_units(CASES)
    with ThreadPoolExecutor(2) as pool:  # the first round makes every PCH entry
        list(pool.map(lambda u: _cold_and_warm(u, tmp_path / "prime" / u.name), units))
    pch.settle(fresh_cache)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda u: _cold_and_warm(u, tmp_path / u.name), units))
    differ = [name for name, cold, warm, _ in results if cold != warm]
    assert differ == []
    failing = {u.name for u in units if (u.folder / "expected-error.txt").exists()}
    assert {name for name, cold, *_ in results if cold is None} == failing
    # Not a vacuous pass: every program that starts with vmlinux.h used the PCH (those
    # whose externs it loses may have tried it, or gone without it when marked).
    starts = {u.name for u in units if re.match(r'(?:\s|//[^\n]*|/\*.*?\*/)*#include "vmlinux.h"',
                                                 u.source.read_text(), re.S)}
    # And every program that starts with <linux/bpf.h> used its entry of system headers.
    system = {u.name for u in units if u.name not in failing and re.match(
        r"(?:\s|//[^\n]*|/\*.*?\*/)*#include <linux/bpf.h>", u.source.read_text(), re.S)}
    losing = {name for name, (_, lost) in EXTERNS.items() if lost}
    assert {name for name, *_, used in results if used} - losing == (starts | system) - losing
    assert len(starts) >= 15 and len(system) >= 15
    assert {"extern_usdt", "extern_prefix_kfuncs", "extern_program_decls",
            "example-bootstrap"} <= {name for name, *_ in results}


SYSTEM_KFUNCS = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 sum = 0;

SEC("tp/syscalls/sys_enter_getpid")
int count(void *ctx)
{
	int i;

	bpf_for(i, 0, 4)
		sum += i;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@requires_clang
def test_an_entry_of_system_headers_keeps_every_extern(tmp_path: Path,
                                                       fresh_cache: Path) -> None:
    """The fallback holds for an entry of system headers too: bpf_for's kfuncs come from
    <bpf/bpf_helpers.h> in the PCH, and bpf_iter_num_destroy, used by a cleanup handler
    only, loses its BTF there; the build notices, ships the cold object and marks the source."""
    (tmp_path / "prog").mkdir()
    source = tmp_path / "prog" / "prog.bpf.c"
    source.write_text(SYSTEM_KFUNCS)

    def one(out: str, cache: bool = True) -> BuildResult:
        return build(BuildOptions(source=str(source), output_dir=str(tmp_path / out),
                                  cache=cache))

    cold = one("cold")
    names = {"bpf_iter_num_new", "bpf_iter_num_next", "bpf_iter_num_destroy"}
    assert _extern_btf(tmp_path / "cold" / "prog.bpf.o") == names
    entries = pch.settle(fresh_cache)
    assert len(entries) == 1
    assert (entries[0].parent / "prefix.h").read_text() == \
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
    warm = one("warm")
    runs = _clang_runs(warm)
    assert len(runs) == 2 and "-include-pch" in runs[0]["argv"]
    assert "-include-pch" not in runs[1]["argv"]
    assert warm.object_bytes == cold.object_bytes == one("none", cache=False).object_bytes
    assert _extern_btf(tmp_path / "warm" / "prog.bpf.o") == names
    third = one("third")
    assert len(_clang_runs(third)) == 1 and "-include-pch" not in _clang_runs(third)[0]["argv"]
    assert third.object_bytes == cold.object_bytes
    assert len(list((fresh_cache / "pch").glob("*/loses-externs/*"))) == 1


@requires_clang
@pytest.mark.kernel
def test_an_entry_of_system_headers_gives_an_object_that_loads(
        tmp_path: Path, fresh_cache: Path, kernel: None) -> None:
    from ecc.run.libbpf import BpfObject

    source = tmp_path / "prog.bpf.c"
    source.write_text(SYSTEM_KFUNCS)
    build(BuildOptions(source=str(source), output_dir=str(tmp_path / "cold")))
    pch.settle(fresh_cache)
    warm = build(BuildOptions(source=str(source), output_dir=str(tmp_path / "warm")))
    assert "-include-pch" in _clang_runs(warm)[0]["argv"]
    with BpfObject.open_mem(warm.object_bytes, object_name="prog_bpf") as obj:
        obj.load()  # libbpf finds every kfunc's BTF in the kernel's
        assert all(p.fd >= 0 for p in obj.programs())
