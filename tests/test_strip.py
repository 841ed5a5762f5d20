"""The in-process ``strip -g`` (ecc/compiler/strip.py) against the real llvm-strip.

Every example is compiled (real clang, the build's own flags, kept in a
workspace), stripped by both, and the two objects compared section by
section: names, types, flags, contents, every symbol (by name and section) and
every relocation (by offset, type and symbol name), and ``.llvm_addrsig``.
Only the layout may differ (and the string table, which llvm-strip packs),
and ``.llvm_addrsig``: llvm-strip 19 copies it as it is, its symbol indices
gone stale (llvm-readelf then warns "invalid symbol index"); ours renumbers
them, so they name the symbols they named before.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc.compiler import compile as cc
from ecc.compiler.strip import StripUnsupported, strip_debug
from ecc.elf import read_object
from ecc.errors import ElfError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (ROOT / "examples").iterdir() if p.is_dir())
LLVM_STRIP = shutil.which("llvm-strip-19") or "llvm-strip"


def uleb128s(data: bytes) -> list[int]:
    out, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            out.append(value)
            value = shift = 0
    return out


def describe(data: bytes) -> list[tuple[Any, ...]]:
    """What an ELF object means, without its layout or how its strings are packed."""
    elf = ELFFile(io.BytesIO(data))
    names = [s.name for s in elf.iter_sections()]
    symtab = elf.get_section_by_name(".symtab")

    def sym(index: int) -> tuple[Any, ...]:
        s = symtab.get_symbol(index)
        shndx = s["st_shndx"]
        return (s.name, s["st_info"]["type"], s["st_info"]["bind"], s["st_other"]["visibility"],
                names[shndx] if isinstance(shndx, int) else shndx, s["st_value"], s["st_size"])

    out: list[tuple[Any, ...]] = []
    for sec in elf.iter_sections():
        h = sec.header
        row: tuple[Any, ...] = (sec.name, h.sh_type, h.sh_flags, h.sh_addralign, h.sh_entsize)
        if h.sh_type == "SHT_SYMTAB":
            row += (tuple(sym(i) for i in range(sec.num_symbols())), names[h.sh_link],
                    h.sh_info)
        elif isinstance(sec, RelocationSection):
            row += (tuple((r["r_offset"], r["r_info_type"], sym(r["r_info_sym"]))
                          for r in sec.iter_relocations()), names[h.sh_info])
        elif h.sh_type == "SHT_NOBITS":
            row += (h.sh_size,)
        elif h.sh_type != "SHT_STRTAB" and sec.name != ".llvm_addrsig":
            row += (sec.data(),)
        out.append(row)
    return out


def addrsig(data: bytes) -> list[str]:
    """The names of the symbols .llvm_addrsig lists."""
    elf = ELFFile(io.BytesIO(data))
    symtab = elf.get_section_by_name(".symtab")
    section = elf.get_section_by_name(".llvm_addrsig")
    return [symtab.get_symbol(i).name for i in uleb128s(section.data())]


@pytest.fixture(scope="module")
def unstripped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every example compiled by ecc, its clang output kept in the workspace."""
    tmp = tmp_path_factory.mktemp("strip")
    workspace = tmp / "ws"
    subprocess.run([sys.executable, "-m", "ecc", "build",
                    *(str(ROOT / "examples" / e) for e in EXAMPLES),
                    "-o", str(tmp / "out"), "-w", str(workspace), "-n"],
                   check=True, capture_output=True)
    return {e: (workspace / f"{e}.unstripped.o").read_bytes() for e in EXAMPLES}


def links(data: bytes) -> dict[str, str]:
    """Each section that links to another, by the names of both."""
    elf = ELFFile(io.BytesIO(data))
    names = [s.name for s in elf.iter_sections()]
    return {sec.name: names[sec["sh_link"]] for sec in elf.iter_sections()
            if sec["sh_link"] and not sec.name.startswith((".debug", ".rel.debug"))}


def llvm_strip(data: bytes, tmp: Path) -> bytes:
    (tmp / "in.o").write_bytes(data)
    subprocess.run([LLVM_STRIP, "-g", str(tmp / "in.o"), "-o", str(tmp / "out.o")], check=True)
    return (tmp / "out.o").read_bytes()


@pytest.mark.parametrize("example", EXAMPLES)
def test_same_object_as_llvm_strip(example: str, unstripped: dict[str, bytes],
                                   tmp_path: Path) -> None:
    raw = unstripped[example]
    assert any(n.startswith(".debug") for n in (s.name for s in read_object(raw).sections))
    ours, theirs = strip_debug(raw), llvm_strip(raw, tmp_path)
    assert describe(ours) == describe(theirs)
    assert addrsig(ours) == addrsig(raw) and addrsig(raw)
    # Every sh_link names the same section as in clang's object (llvm-strip 19
    # zeroes .llvm_addrsig's; a stale index would point past the last section).
    assert links(ours) == links(raw)
    # No bigger than llvm-strip's, but for a string table it does not pack.
    assert len(ours) <= len(theirs) + 256
    names = [s.name for s in read_object(ours).sections]
    assert not [n for n in names if n.startswith((".debug", ".rel.debug"))]
    assert ".BTF" in names and ".BTF.ext" in names


def test_big_endian_object(tmp_path: Path) -> None:
    """clang's bpfeb output (an s390x target's object): the other byte order."""
    src = tmp_path / "prog.c"
    src.write_text(
        "struct { int type; int max_entries; } m __attribute__((section(\".maps\")));\n"
        "int counter = 1;\n"
        "__attribute__((section(\"xdp\"))) int prog(void *ctx) { return counter + 2; }\n"
        "char LICENSE[] __attribute__((section(\"license\"))) = \"GPL\";\n")
    clang = shutil.which("clang-19") or "clang"
    subprocess.run([clang, "-g", "-O2", "-target", "bpfeb", "-c", str(src), "-o",
                    str(tmp_path / "prog.o")], check=True)
    raw = (tmp_path / "prog.o").read_bytes()
    assert raw[5] == 2  # ELFDATA2MSB
    assert describe(strip_debug(raw)) == describe(llvm_strip(raw, tmp_path))


def test_what_it_leaves_to_llvm_strip(tmp_path: Path) -> None:
    """A 32-bit object is not clang's BPF output: the build hands it to llvm-strip,
    and the result is llvm-strip's own."""
    src = tmp_path / "x.c"
    src.write_text("int x = 1;\n")
    clang = shutil.which("clang-19") or "clang"
    subprocess.run([clang, "-g", "-target", "i386-linux-gnu", "-c", str(src), "-o",
                    str(tmp_path / "x.o")], check=True)
    raw = (tmp_path / "x.o").read_bytes()
    with pytest.raises(StripUnsupported, match=r"^not a 64-bit ELF$"):
        strip_debug(raw)
    data = cc.strip_debug(None, str(tmp_path / "x.o"), str(tmp_path / "x.stripped.o"))
    assert data == llvm_strip(raw, tmp_path)


def test_named_llvm_strip_is_used(tmp_path: Path) -> None:
    """--llvm-strip-bin still runs that tool (the report lists the commands run)."""
    example = ROOT / "examples" / "globals"
    for named in (False, True):
        out = tmp_path / str(named)
        subprocess.run([sys.executable, "-m", "ecc", "build", str(example / "globals.bpf.c"),
                        "-o", str(out), "--report", str(out / "r.json"),
                        *(["--llvm-strip-bin", LLVM_STRIP] if named else [])],
                       check=True, capture_output=True)
        report = json.loads((out / "r.json").read_text())
        ran = [c["what"] for b in report["builds"] for c in b["commands"]]
        assert ("stripping DWARF (llvm-strip -g)" in ran) is named, ran
    # Either way the BTF is then put in canonical order: the same BTF (only the layout
    # and .llvm_addrsig differ, see above).
    btf = [{s.name: s.data() for s in ELFFile(io.BytesIO(
        (tmp_path / str(named) / "globals.bpf.o").read_bytes())).iter_sections()
        if s.name.startswith((".BTF", ".rel.BTF"))} for named in (False, True)]
    assert btf[0] == btf[1] and len(btf[0]) == 4


def test_not_elf() -> None:
    with pytest.raises(ElfError, match=r"^not an ELF object$"):
        strip_debug(b"hello, world")


SEEDS = sorted((ROOT / "tests" / "data" / "elf").glob("*.o"))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), edits=st.lists(
    st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 1 << 20)), canonical=st.booleans())
def test_hostile_bytes(seed: Path, edits: list[tuple[int, int]], cut: int | None,
                       canonical: bool) -> None:
    """Bytes changed and cut: an ElfError, or an object our reader reads (or refuses);
    also with the BTF put in canonical order (btforder.py)."""
    data = bytearray(seed.read_bytes())
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut is not None:
        del data[cut % len(data):]
    try:
        out = strip_debug(bytes(data), canonical_btf=canonical)
    except ElfError:
        return
    with contextlib.suppress(ElfError):
        read_object(out)
