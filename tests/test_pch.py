"""The precompiled vmlinux.h cache (issue 7): same program with and without it, never fatal."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, requires_clang

from ecc.btf import Btf, Kind, parse_btf, type_str
from ecc.btf.types import Enum, Struct, Union
from ecc.build import BuildOptions, BuildResult, build
from ecc.build.pch import prefix_includes
from ecc.elf import read_object

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


def test_unguarded_vmlinux_gets_no_pch(tmp_path: Path) -> None:
    from ecc.build.pch import has_include_guard

    guarded, unguarded, once = (tmp_path / n for n in ("g.h", "u.h", "o.h"))
    guarded.write_text("/* c */\n#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n#endif\n")
    unguarded.write_text("struct x { int a; };\n")
    once.write_text("// c\n#pragma once\nstruct x;\n")
    assert [has_include_guard(str(p)) for p in (guarded, unguarded, once)] == [True, False, True]


def _build(out: Path, *, cache: bool = True) -> BuildResult:
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


@requires_clang
def test_cached_and_uncached_objects_are_equivalent(tmp_path: Path, cache_env: Path) -> None:
    cached = _build(tmp_path / "cached")
    plain = _build(tmp_path / "plain", cache=False)
    assert any((cache_env / "pch").glob("*/prefix.h.pch")), "no PCH was made"
    assert _programs(cached.object_bytes) == _programs(plain.object_bytes)
    btf_a = parse_btf(read_object(cached.object_bytes).btf or b"")
    btf_b = parse_btf(read_object(plain.object_bytes).btf or b"")
    assert len(btf_a) == len(btf_b)
    assert _layouts(btf_a) == _layouts(btf_b)
    # Same package but for the numbering of types.
    meta_a, meta_b = cached.meta, plain.meta
    for export in meta_a.get("export_types", []) + meta_b.get("export_types", []):
        export.pop("type_id")
    assert meta_a == meta_b


@pytest.fixture()
def fresh_cache(tmp_path: Path) -> Any:
    """A cache of this test's own, so entries of other tests are out of the picture."""
    cache = tmp_path / "fresh-cache"
    old = os.environ.get("ECC_CACHE_DIR")
    os.environ["ECC_CACHE_DIR"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("ECC_CACHE_DIR")
    else:
        os.environ["ECC_CACHE_DIR"] = old


@requires_clang
def test_corrupt_entry_is_rebuilt(tmp_path: Path, fresh_cache: Path) -> None:
    cache_env = fresh_cache
    first = _build(tmp_path / "a")
    entries = list((cache_env / "pch").glob("*/prefix.h.pch"))
    assert entries
    for entry in entries:
        entry.write_bytes(b"this is not a precompiled header")
    again = _build(tmp_path / "b")
    assert again.object_bytes == first.object_bytes
    assert all(e.stat().st_size > 1_000_000 for e in entries)


@requires_clang
def test_truncated_entry_is_rebuilt(tmp_path: Path, fresh_cache: Path) -> None:
    cache_env = fresh_cache
    first = _build(tmp_path / "a")
    for entry in (cache_env / "pch").glob("*/prefix.h.pch"):
        with open(entry, "r+b") as fh:
            fh.truncate(entry.stat().st_size // 2)
    assert _build(tmp_path / "b").object_bytes == first.object_bytes


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
    assert len(list((cache / "pch").glob("*/prefix.h.pch"))) == 1
    assert not list((cache / "pch").glob("*/*.tmp"))


@requires_clang
def test_pch_builds_are_reproducible(tmp_path: Path, fresh_cache: Path) -> None:
    """clang 19 orders BTF types by heap address when it reads a PCH; ecc pins that down."""
    objects = {_build(tmp_path / f"o{i}").object_bytes for i in range(8)}
    assert len(objects) == 1
