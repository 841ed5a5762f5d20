"""ecc.elf's struct reader against pyelftools (tests/elf_oracle.py), on every object
the suite builds, on clang's own unstripped objects, and on the checked-in objects;
and the records it returns (frozen, comparable, picklable, without dataclasses)."""

from __future__ import annotations

import dataclasses
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from builds import CASES, Built, all_units
from conftest import require
from elf_oracle import differences, oracle_read

from ecc.elf import BpfObject, Section, Symbol, read_object
from ecc.errors import ElfError
from ecc.record import replace

ROOT = Path(__file__).resolve().parent.parent
DATA_OBJECTS = sorted((ROOT / "tests" / "data").rglob("*.o"))
assert DATA_OBJECTS, "no objects under tests/data: the glob matched nothing"


def same_as_oracle(data: bytes, what: str) -> BpfObject:
    ours = read_object(data)
    assert differences(ours, oracle_read(data)) == [], what
    return ours


def test_every_built_object(built: dict[str, Built]) -> None:
    """Each case and example as ecc build writes it (stripped), read by both readers."""
    objects = {name: b.result.object_bytes for name, b in built.items() if b.result is not None}
    assert len(objects) > 40, "the built cases are missing"
    for name, data in objects.items():
        obj = same_as_oracle(data, name)
        assert obj.sections and obj.btf is not None, name
    assert any(obj.symbols for obj in map(read_object, objects.values()))


def _raw_objects(tmp_path: Path) -> dict[str, bytes]:
    """Clang's own objects (DWARF, relocations, .llvm_addrsig kept) of the cases that
    need no generated vmlinux.h and no ecc flags."""
    require("clang")
    from ecc.compiler import compile as cc
    from ecc.compiler import tools

    clang = tools.find_tool("clang")
    include = [arg for d in cc.system_include_dirs(clang) for arg in ("-idirafter", d)]
    objects = {}
    for unit in all_units(CASES):
        if unit.flags or not unit.source.name.endswith(".bpf.c") \
                or "vmlinux.h" in unit.source.read_text():
            continue
        out = tmp_path / f"{unit.name}.o"
        done = subprocess.run([clang, "-g", "-O2", "-target", "bpf", *include,
                               f"-I{unit.source.parent}", "-c", str(unit.source), "-o", str(out)],
                              capture_output=True)
        if done.returncode == 0:  # a case may need what only ecc passes (its -I, -D)
            objects[unit.name] = out.read_bytes()
    assert len(objects) > 10, "too few cases compiled with clang alone"
    return objects


def test_clang_objects_unstripped(tmp_path: Path) -> None:
    for name, data in _raw_objects(tmp_path).items():
        obj = same_as_oracle(data, name)
        kinds = {s.type for s in obj.sections}
        assert 9 in kinds or 4 in kinds, f"{name}: no relocation section to compare"
        assert any(s.name.startswith(".debug_") for s in obj.sections), name


@pytest.mark.parametrize("path", DATA_OBJECTS, ids=[str(p.relative_to(ROOT / "tests" / "data"))
                                                    for p in DATA_OBJECTS])
def test_checked_in_objects(path: Path) -> None:
    """Both byte orders (tests/data/btf), the fuzz seeds and the saved crashers: where
    pyelftools reads the object, the records are the same; where it cannot, ours
    raises ElfError."""
    data = path.read_bytes()
    try:
        theirs = oracle_read(data)
    except Exception:  # noqa: BLE001 - any failure of the oracle means "unreadable"
        with pytest.raises(ElfError):
            read_object(data)
        return
    assert differences(read_object(data), theirs) == []


def test_big_endian_is_read() -> None:
    obj = read_object((ROOT / "tests" / "data" / "btf" / "kinds-eb.o").read_bytes())
    assert obj.little_endian is False and obj.btf is not None


def test_records_are_frozen_values() -> None:
    sec = Section(1, ".text", 1, 6, 8, 64)
    sym = Symbol("main", 1, 0, 8, 2, 1)
    obj = BpfObject(True, (sec,), (sym,), None, None)
    assert obj.data_sections == {} and obj.section(".text") is sec and sec.executable
    assert sec == Section(1, ".text", 1, 6, 8, 64) and hash(sym) == hash(replace(sym))
    assert sec != Section(1, ".text", 1, 6, 8, 65)
    assert pickle.loads(pickle.dumps(obj)) == obj
    assert repr(sym) == "Symbol(name='main', section_index=1, value=0, size=8, type=2, bind=1)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        sec.size = 9  # type: ignore[misc]
    assert replace(sym, value=16) == Symbol("main", 1, 16, 8, 2, 1)
    with pytest.raises(TypeError, match="no field 'nope'"):
        replace(sym, nope=1)


def _object_with_names(strtab: bytes, name_offsets: list[int]) -> bytes:
    """A minimal little-endian BPF object: a null section, .shstrtab, .strtab, .symtab."""
    shstrtab = b"\0.shstrtab\0.strtab\0.symtab\0"
    symtab = b"".join(struct.pack("<IBBHQQ", at, 0x12, 0, 1, 0, 0) for at in name_offsets)
    body = shstrtab + strtab + symtab
    shoff = 64 + len(body)
    headers = [bytes(64)]
    at = 64
    for name, sh_type, payload, link, entsize in ((1, 3, shstrtab, 0, 0), (11, 3, strtab, 0, 0),
                                                  (19, 2, symtab, 2, 24)):
        headers.append(struct.pack("<IIQQQQIIQQ", name, sh_type, 0, 0, at, len(payload), link,
                                   0, 1, entsize))
        at += len(payload)
    ehdr = (b"\x7fELF\x02\x01\x01" + bytes(9)
            + struct.pack("<HHIQQQIHHHHHH", 1, 247, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 4, 1))
    return ehdr + body + b"".join(headers)


def test_minimal_object_matches_oracle() -> None:
    data = _object_with_names(b"\0one\0two\0", [1, 5, 6])
    obj = same_as_oracle(data, "minimal")
    assert [s.name for s in obj.symbols] == ["one", "two", "wo"]


def test_overlapping_names_cannot_blow_up() -> None:
    """Every symbol names a different suffix of one long string: the names would add up
    to the square of the file's size. An ElfError instead, at once."""
    long = b"\0" + b"x" * 200_000 + b"\0"
    data = _object_with_names(long, list(range(1, 40_000)))
    with pytest.raises(ElfError, match="names of sections and symbols add up"):
        read_object(data)


def test_build_does_not_import_elftools(tmp_path: Path) -> None:
    """pyelftools is a test oracle only: ``ecc build`` imports no ELF library (``ecc run``
    is checked by test_run_startup.py)."""
    require("clang")
    source = ROOT / "tests" / "cases" / "no_maps" / "prog.bpf.c"
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "ecc", "build",
                           str(source), "-o", str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "ecc.compiler" in done.stderr, "no import times: -X importtime did not work"
    assert "elftools" not in done.stderr
    assert (tmp_path / "package.json").is_file()
