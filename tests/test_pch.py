"""The precompiled vmlinux.h cache (issue 7): same program with and without it, never fatal."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import CASES, EXAMPLES, needs, requires_clang

from ecc.btf import Btf, Kind, parse_btf, type_str
from ecc.btf.types import Enum, Struct, Union
from ecc.compiler import BuildOptions, BuildResult, build, pch
from ecc.compiler.pch import prefix_includes
from ecc.elf import read_object
from ecc.errors import EccError

# Tests of the precompiled headers: every build compiles (objcache.py off).
pytestmark = pytest.mark.usefixtures("no_object_cache")

BOOTSTRAP = EXAMPLES / "bootstrap"


@pytest.mark.parametrize(("text", "expected"), [
    ('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nint x;\n',
     ('#include "vmlinux.h"', "#include <bpf/bpf_helpers.h>")),
    ('// c\n/* block\n */\n#include <vmlinux.h>\n\n#include <bpf/bpf_tracing.h>\n#include "x.h"\n',
     ("#include <vmlinux.h>", "#include <bpf/bpf_tracing.h>")),
    ('#define BPF_NO_GLOBAL_DATA\n#include "vmlinux.h"\n', None),
    ('#include <linux/bpf.h>\n#include "vmlinux.h"\n', None),
    ('// #include "vmlinux.h"\nint x;\n', None),
    ('#include "vmlinux.h"\n#include "bpf/local.h"\n', ('#include "vmlinux.h"',)),
])
def test_prefix_eligibility(text: str, expected: tuple[str, ...] | None) -> None:
    assert prefix_includes(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nint x;\n",
     ("#include <linux/bpf.h>", "#include <bpf/bpf_helpers.h>")),
    ('/* c */\n#include <linux/bpf.h>\n#include "event.h"\n#include <stdbool.h>\n',
     ("#include <linux/bpf.h>",)),
    ("#define X 1\n#include <linux/bpf.h>\n", None),
    ('#include "local.h"\n#include <linux/bpf.h>\n', None),
    ("#include <linux/bpf.h>\n#include <vmlinux.h>\n", ("#include <linux/bpf.h>",)),
    ('#include "vmlinux.h"\n', None),
])
def test_system_prefix_eligibility(text: str, expected: tuple[str, ...] | None) -> None:
    assert pch.system_prefix(text) == expected


def test_unguarded_vmlinux_gets_no_pch(tmp_path: Path) -> None:
    from ecc.compiler.compile_object import has_include_guard

    guarded, unguarded, once = (tmp_path / n for n in ("g.h", "u.h", "o.h"))
    guarded.write_text("/* c */\n#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n#endif\n")
    unguarded.write_text("struct x { int a; };\n")
    once.write_text("// c\n#pragma once\nstruct x;\n")
    assert [has_include_guard(str(p)) for p in (guarded, unguarded, once)] == [True, False, True]
    for text, expected in (("#ifndef A /* c */\n// d\n#  define A 1\n", True),
                           ("#ifndef A\n#define B\n", False), ("#ifndef A #define A\n", False),
                           ("int x;\n#pragma once\n", False), ("/* open", False)):
        once.write_text(text)
        assert has_include_guard(str(once)) == expected, text


# A program without vmlinux.h: its entry is of system headers (UAPI, libbpf, stdbool.h).
SYSTEM = CASES / "all_data_sections" / "prog.bpf.c"
SYSTEM_PREFIX = "#include <linux/bpf.h>\n#include <stdbool.h>\n#include <bpf/bpf_helpers.h>\n"


def _build(out: Path, *, cache: bool = True, program: str = "bootstrap") -> BuildResult:
    if program == "system":
        return build(BuildOptions(source=str(SYSTEM), output_dir=str(out), cache=cache))
    return build(BuildOptions(source=str(BOOTSTRAP / "bootstrap.bpf.c"),
                              export_header=str(BOOTSTRAP / "bootstrap.h"),
                              output_dir=str(out), cache=cache))


def _programs(obj: bytes) -> dict[str, bytes]:
    """Instruction bytes of every program section (relocations live elsewhere)."""
    import io

    from elftools.elf.elffile import ELFFile  # test-only use

    elf = ELFFile(io.BytesIO(obj))
    return {s.name: s.data() for s in elf.iter_sections()
            if s["sh_flags"] & 0x4 and s["sh_size"]}


def _layouts(btf: Btf) -> set[Any]:
    """Every named type by kind, name and layout, whatever id clang gave it."""
    out: set[Any] = set()
    for t in btf:
        if not t.name or t.kind in (Kind.DATASEC,):
            continue
        if isinstance(t, (Struct, Union)):
            members = tuple((m.name, m.bit_offset, m.bitfield_size,
                             type_str(btf, m.type, strip_mods=False)) for m in t.members)
            out.add((t.kind, t.name, t.size, members))
        elif isinstance(t, Enum):
            out.add((t.kind, t.name, t.size, tuple((v.name, v.value) for v in t.values)))
        else:
            out.add((t.kind, t.name))
    return out


def _used_pch(result: BuildResult) -> bool:
    return any("-include-pch" in c["argv"] for c in result.commands)


@requires_clang
@pytest.mark.parametrize("program", ["bootstrap", "system"])
def test_cached_and_uncached_objects_are_identical(tmp_path: Path, fresh_cache: Path,
                                                   program: str) -> None:
    """The first build goes without the PCH, the next with it, a third with --no-cache:
    all three objects are the same bytes (BTF in canonical order, btf/canon.py); for a
    vmlinux.h prefix and for one of system headers."""
    cold = _build(tmp_path / "cold", program=program)
    assert not _used_pch(cold)
    made = pch.settle(fresh_cache)
    assert len(made) == 1, "no PCH was made"
    prefix = made[0].with_name("prefix.h").read_text()
    assert (prefix == SYSTEM_PREFIX) == (program == "system")
    warm = _build(tmp_path / "warm", program=program)
    assert _used_pch(warm)
    assert len([c for c in warm.commands if c["what"].startswith("compiling")]) == 1
    plain = _build(tmp_path / "plain", cache=False, program=program)
    assert not _used_pch(plain)
    assert _programs(warm.object_bytes) == _programs(plain.object_bytes)  # the same code
    btf_a = parse_btf(read_object(warm.object_bytes).btf or b"")
    btf_b = parse_btf(read_object(plain.object_bytes).btf or b"")
    assert _layouts(btf_a) == _layouts(btf_b)
    assert warm.object_bytes == plain.object_bytes == cold.object_bytes
    assert warm.meta == plain.meta == cold.meta


@requires_clang
def test_first_build_does_not_wait_for_the_pch(tmp_path: Path, fresh_cache: Path) -> None:
    first = _build(tmp_path / "a")
    folders = list((fresh_cache / "pch").glob("*"))
    assert len(folders) == 1
    # Making a PCH takes half a second; the build returned as soon as clang was done.
    assert not (folders[0] / "prefix.h.pch").exists()
    assert pch.settle(fresh_cache) == [folders[0] / "prefix.h.pch"]
    assert not list(folders[0].glob("*.tmp"))
    assert _build(tmp_path / "b").object_bytes == first.object_bytes


def test_killed_maker_leftovers_go_and_failure_waits_an_hour(tmp_path: Path) -> None:
    folder = tmp_path / "entry"
    folder.mkdir()
    entry = pch.PchEntry(folder, folder / "prefix.h", folder / "prefix.h.pch", ("-x",),
                         ('#include "vmlinux.h"',))
    (folder / "prefix.h.pch.123.tmp").write_bytes(b"half a PCH")
    with pytest.raises(EccError):
        pch.make(str(tmp_path / "no-such-clang"), entry)
    assert not list(folder.glob("*.tmp"))
    assert "no-such-clang" in (folder / pch.FAILED).read_text()
    pch.start_making(str(tmp_path / "no-such-clang"), entry)  # no new attempt
    assert not (folder / "lock").exists()
    old = time.time() - pch.RETRY_SECONDS - 1
    os.utime(folder / pch.FAILED, (old, old))
    pch.start_making(str(tmp_path / "no-such-clang"), entry)
    pch.wait(folder)
    assert (folder / "lock").exists() and (folder / pch.FAILED).stat().st_mtime > old


@requires_clang
def test_corrupt_entry_is_rebuilt(tmp_path: Path, fresh_cache: Path) -> None:
    first = _build(tmp_path / "a")
    entries = pch.settle(fresh_cache)
    assert entries
    for entry in entries:
        entry.write_bytes(b"this is not a precompiled header")
    again = _build(tmp_path / "b")
    assert _used_pch(again)  # tried, refused by clang, compiled again without it
    assert again.object_bytes == first.object_bytes
    assert all(e.stat().st_size > 1_000_000 for e in pch.settle(fresh_cache))
    third = _build(tmp_path / "c")
    assert _used_pch(third) and third.object_bytes == first.object_bytes


@requires_clang
def test_truncated_entry_is_rebuilt(tmp_path: Path, fresh_cache: Path) -> None:
    first = _build(tmp_path / "a")
    for entry in pch.settle(fresh_cache):
        with open(entry, "r+b") as fh:
            fh.truncate(entry.stat().st_size // 2)
    assert _build(tmp_path / "b").object_bytes == first.object_bytes
    assert all(e.stat().st_size > 1_000_000 for e in pch.settle(fresh_cache))
    third = _build(tmp_path / "c")
    assert _used_pch(third) and third.object_bytes == first.object_bytes


@requires_clang
def test_two_builds_make_one_entry_at_once(tmp_path: Path, fresh_cache: Path) -> None:
    cache = fresh_cache
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        _build(tmp_path / f"out{i}").object_bytes)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    assert len(pch.settle(cache)) == 1
    assert not list((cache / "pch").glob("*/*.tmp"))


@requires_clang
def test_pch_builds_are_reproducible(tmp_path: Path, fresh_cache: Path) -> None:
    """clang 19 orders BTF types by heap address when it reads a PCH (address
    randomization is on); the canonical order takes that out."""
    _build(tmp_path / "first")
    pch.settle(fresh_cache)
    results = [_build(tmp_path / f"o{i}") for i in range(6)]
    assert all(_used_pch(r) for r in results)
    assert len({r.object_bytes for r in results}) == 1


def test_background_maker_runs_this_very_ecc(tmp_path: Path) -> None:
    """The maker is this ecc package, loaded from its folder, even when another
    `ecc` comes first on PYTHONPATH (here: one that cannot be imported)."""
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "copy"
    shutil.copytree(Path(pch.__file__).resolve().parents[1], copy / "ecc",
                    ignore=shutil.ignore_patterns("__pycache__"))
    decoy = tmp_path / "decoy" / "ecc"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy ecc')\n")
    record = tmp_path / "maker-argv"
    clang = tmp_path / "fake-clang"
    clang.write_text("#!/bin/sh\n"
                     f"tr '\\0' '\\n' < /proc/$PPID/cmdline > {record}\n"
                     'while [ $# -gt 0 ]; do [ "$1" = -o ] && out="$2"; '
                     '[ "$1" = -MF ] && deps="$2"; shift; done\n'
                     'echo not really a PCH > "$out"\necho "$out: prefix.h" > "$deps"\n')
    clang.chmod(0o755)
    folder = tmp_path / "entry"
    script = (f"import sys; sys.path.insert(0, {str(copy)!r})\n"
              "from pathlib import Path\n"
              "from ecc.compiler import pch\n"
              f"folder = Path({str(folder)!r})\n"
              "entry = pch.PchEntry(folder, folder / 'prefix.h', folder / 'prefix.h.pch', (),"
              " ('#include \"vmlinux.h\"',))\n"
              f"pch.start_making({str(clang)!r}, entry)\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path,
                   env={**os.environ, "PYTHONPATH": str(decoy.parent)})
    pch.wait(folder)
    assert (folder / "prefix.h.pch").read_text() == "not really a PCH\n"
    assert (folder / "prefix.h").read_text() == '#include "vmlinux.h"\n'
    assert str(copy / "ecc") in record.read_text().splitlines()


@requires_clang
def test_library_build_leaves_no_child_behind(tmp_path: Path) -> None:
    """The maker is not the build's child (it is started through a shell that exits):
    a library caller under -X dev gets no 'subprocess still running' warning."""
    import subprocess
    import sys

    script = ("from ecc.compiler import BuildOptions, build\n"
              f"build(BuildOptions(source={str(BOOTSTRAP / 'bootstrap.bpf.c')!r}, "
              f"output_dir={str(tmp_path / 'out')!r}))\n")
    result = subprocess.run([sys.executable, "-X", "dev", "-c", script], capture_output=True,
                            text=True, env={**os.environ, "ECC_CACHE_DIR": str(tmp_path / "c")},
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "ResourceWarning" not in result.stderr
    assert pch.settle(tmp_path / "c")  # and the PCH was made all the same


def test_clang_env_puts_the_users_tunables_last(monkeypatch: pytest.MonkeyPatch) -> None:
    from ecc.compiler.tools import CLANG_TUNABLES, clang_env

    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert clang_env() == {"GLIBC_TUNABLES": CLANG_TUNABLES}
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0")
    # glibc applies them in order, so the user's own setting wins.
    assert clang_env() == {"GLIBC_TUNABLES": f"{CLANG_TUNABLES}:glibc.malloc.hugetlb=0"}


def _spec_command(result: BuildResult, output: Path) -> tuple[list[str], dict[str, str], str]:
    """The build's clang command as the spec gives it (package-format.md section 7):
    without the glibc tunables (tools.clang_env) and ``-gdwarf-4`` (compile.py)."""
    clang = next(c for c in result.commands if c["what"].startswith("compiling"))
    assert clang["env"]["GLIBC_TUNABLES"].startswith("glibc.malloc.hugetlb=1")
    assert "-gdwarf-4" in clang["argv"]
    argv = [a for a in clang["argv"] if a != "-gdwarf-4"]
    argv[argv.index("-o") + 1] = str(output)
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    return argv, env, clang["cwd"]


EXAMPLE_SOURCES = sorted(EXAMPLES.glob("*/*.bpf.c"))


@requires_clang
@pytest.mark.parametrize("source", [*EXAMPLE_SOURCES, "bootstrap", "system"],
                         ids=[*(p.stem.removesuffix(".bpf") for p in EXAMPLE_SOURCES), "pch",
                              "system-pch"])
def test_speed_settings_leave_the_object_unchanged(tmp_path: Path, fresh_cache: Path,
                                                   source: Path | str) -> None:
    """The same command without them gives the same object, once stripped and its
    BTF put in canonical order (a PCH build's raw BTF order varies from run to run:
    test_pch_builds_are_reproducible): only the DWARF differs, and it is stripped."""
    import subprocess

    from ecc.compiler.strip import strip_debug

    warm = isinstance(source, str)
    if warm:  # a first build makes the PCH the second one uses
        _build(tmp_path / "first", program=str(source))
        pch.settle(fresh_cache)
    program = Path(source) if not warm else SYSTEM if source == "system" else \
        BOOTSTRAP / "bootstrap.bpf.c"
    result = build(BuildOptions(source=str(program), output_dir=str(tmp_path / "out"),
                                workspace=str(tmp_path / "ws")))
    assert _used_pch(result) == warm
    argv, env, cwd = _spec_command(result, tmp_path / "spec.o")
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    assert strip_debug((tmp_path / "spec.o").read_bytes(), canonical_btf=True) == \
        result.object_bytes


@requires_clang
@needs("libbpf-dev")
def test_a_system_header_of_the_programs_own_folder_keeps_it_off_the_pch(
        tmp_path: Path, fresh_cache: Path) -> None:
    """linux/bpf.h includes <linux/types.h>; a program whose folder has its own gets that
    one without the PCH (the folder is searched before the system's), so the entry,
    made without that folder, is not for it: it compiles without, and the same as
    --no-cache. A program beside it without such a header uses the entry."""
    import shutil

    own, plain = tmp_path / "own", tmp_path / "plain"
    for folder in (own, plain):
        folder.mkdir()
        shutil.copy(SYSTEM, folder / "prog.bpf.c")
    (own / "linux").mkdir()
    types = Path("/usr/include/linux/types.h").read_text().replace(
        "#define _LINUX_TYPES_H", "#define _LINUX_TYPES_H\n#define OWN_TYPES 0", 1)
    (own / "linux" / "types.h").write_text(types)
    source = own / "prog.bpf.c"
    source.write_text(source.read_text() + "int own_types = OWN_TYPES;\n")

    def one(folder: Path, out: str, cache: bool = True) -> BuildResult:
        return build(BuildOptions(source=str(folder / "prog.bpf.c"),
                                  output_dir=str(tmp_path / out), cache=cache))

    cold = one(own, "cold")
    entries = pch.settle(fresh_cache)
    assert len(entries) == 1
    assert "linux/types.h" in (entries[0].parent / pch.HEADERS).read_text()
    warm = one(own, "warm")
    assert not _used_pch(warm)
    assert warm.object_bytes == cold.object_bytes == one(own, "none", cache=False).object_bytes
    assert _used_pch(one(plain, "beside"))
