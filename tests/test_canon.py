"""The canonical BTF order (ecc/btf/canon.py, ecc/compiler/btforder.py).

clang numbers BTF types one way with the precompiled vmlinux.h and another
without (test_pch.py shows the two builds now give the same bytes). Here: the
canonical form does not depend on the numbering it starts from (every example's
BTF, its types and strings shuffled), it is a fixed point, it names in
``.BTF.ext`` and ``.rel.BTF`` what it named before, a CO-RE type-id
relocation's instruction follows its type (checked by libbpf and the kernel),
and hostile bytes give only ``BtfError``.
"""

from __future__ import annotations

import io
import os
import random
import struct
from array import array
from pathlib import Path

import pytest
from conftest import requires_clang
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc.btf import Kind, canon, parse_btf
from ecc.compiler import BuildOptions, build
from ecc.elf import read_object
from ecc.errors import BtfError

# Tests of the precompiled headers: every build compiles (objcache.py off).
pytestmark = pytest.mark.usefixtures("no_object_cache")

EXAMPLES = ["bootstrap", "execlat", "globals", "iter", "kprobe", "opensnoop", "perfbuf",
            "profile", "runqlat", "tc", "uprobe", "xdp"]


def sections(obj: bytes) -> dict[str, bytes]:
    return {s.name: s.data() for s in ELFFile(io.BytesIO(obj)).iter_sections()}


def shuffled(btf: bytes, ext: bytes, seed: int) -> tuple[bytes, bytes]:
    """The same BTF with its types renumbered and its strings laid out at random."""
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        "<HBBIIIII", btf, 0)
    words = array("I", btf[hdr_len + type_off:hdr_len + type_off + type_len])
    strings = btf[hdr_len + str_off:hdr_len + str_off + str_len]
    starts, type_slots, str_slots = canon._index(words)
    count = len(starts) - 2
    rng = random.Random(seed)
    order = list(range(1, count + 1))
    rng.shuffle(order)
    new_id = [0] * (count + 1)
    for new, old in enumerate(order, 1):
        new_id[old] = new
    info = canon._ExtInfo.read(ext, "little")

    def text(offset: int) -> bytes:
        return strings[offset:strings.index(b"\0", offset)]

    used = {text(words[p]) for slots in str_slots for p in slots}
    used |= {text(struct.unpack_from("<I", ext, at)[0]) for at in info.string_offsets}
    layout = sorted(used - {b""})
    rng.shuffle(layout)
    table, where = bytearray(b"\0"), {b"": 0}
    for s in layout:
        where[s] = len(table)
        table += s + b"\0"
    out = array("I")
    for old in order:
        record = words[starts[old]:starts[old + 1]]
        for p in str_slots[old]:
            record[p - starts[old]] = where[text(words[p])]
        for p in type_slots[old]:
            record[p - starts[old]] = new_id[words[p]]
        out.extend(record)
    new_btf = struct.pack("<HBBIIIII", magic, version, flags, 24, 0, len(out) * 4,
                          len(out) * 4, len(table)) + out.tobytes() + bytes(table)
    new_ext = bytearray(ext)
    for at in info.string_offsets:
        struct.pack_into("<I", new_ext, at, where[text(struct.unpack_from("<I", ext, at)[0])])
    for at in info.type_id_offsets:
        struct.pack_into("<I", new_ext, at, new_id[struct.unpack_from("<I", ext, at)[0]])
    return new_btf, bytes(new_ext)


@pytest.mark.parametrize("example", EXAMPLES)
def test_order_does_not_depend_on_the_numbering(example: str, built: dict[str, object]) -> None:
    result = built[f"cases/example-{example}"].result  # type: ignore[attr-defined]
    secs = sections(result.object_bytes)
    btf, ext = secs[".BTF"], secs[".BTF.ext"]
    first = canon.canonicalize(btf, ext)
    assert (first.btf, first.ext) == (btf, ext)  # the build's BTF is canonical already
    for seed in range(3):
        other_btf, other_ext = shuffled(btf, ext, seed)
        assert other_btf != btf
        again = canon.canonicalize(other_btf, other_ext)
        assert (again.btf, again.ext) == (btf, ext), f"seed {seed}"


def test_ids_strings_and_relocations_keep_their_meaning(built: dict[str, object]) -> None:
    """Shuffled, then made canonical: every DATASEC variable keeps its name and
    type, and each .rel.BTF offset moves to the same variable's offset field."""
    result = built["cases/example-bootstrap"].result  # type: ignore[attr-defined]
    secs = sections(result.object_bytes)
    btf, ext = shuffled(secs[".BTF"], secs[".BTF.ext"], 7)
    before, done = parse_btf(btf), canon.canonicalize(btf, ext)
    after = parse_btf(done.btf)
    for old_id in range(1, len(before)):
        old_t, new_t = before[old_id], after[done.type_map[old_id]]
        assert (old_t.kind, old_t.name) == (new_t.kind, new_t.name)
    datasecs = [t for t in before if t.kind == Kind.DATASEC]
    assert datasecs
    for sec in datasecs:
        assert sec.name is not None
        moved = after.by_name(sec.name, Kind.DATASEC)
        assert moved is not None
        assert [after[v.type].name for v in moved.vars] == [before[v.type].name for v in sec.vars]
    # Each variable's offset field in a .rel.BTF relocation is where `moved` says.
    elf = ELFFile(io.BytesIO(result.object_bytes))
    rel = elf.get_section_by_name(".rel.BTF")
    assert isinstance(rel, RelocationSection)
    symtab = elf.get_section(rel["sh_link"])
    built_btf = parse_btf(secs[".BTF"])
    for r in rel.iter_relocations():
        name = symtab.get_symbol(r["r_info_sym"]).name
        # In the build's (canonical) .BTF, a var_secinfo's offset field: its type
        # (the VAR) is 4 bytes before it.
        var_id = struct.unpack_from("<I", secs[".BTF"], r["r_offset"] - 4)[0]
        assert built_btf[var_id].name == name


TYPE_ID_PROGRAM = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

__u32 local_id, kernel_id, hits;

SEC("tp/syscalls/sys_enter_getppid")
int probe(void *ctx)
{
	local_id = bpf_core_type_id_local(struct task_struct);
	kernel_id = bpf_core_type_id_kernel(struct task_struct);
	hits++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@requires_clang
def test_type_id_relocation_follows_its_type(tmp_path: Path, kernel: None) -> None:
    """bpf_core_type_id_local() compiles to an instruction holding the type's id,
    which libbpf checks before patching: it must hold the new id."""
    from ecc.run import libbpf as L

    src = tmp_path / "typeid.bpf.c"
    src.write_text(TYPE_ID_PROGRAM)
    objects = [build(BuildOptions(source=str(src), output_dir=str(tmp_path / f"o{cache}"),
                                  cache=cache)).object_bytes for cache in (False, True)]
    obj = objects[0]
    btf = parse_btf(read_object(obj).btf or b"")
    (task_struct,) = btf.ids_by_name("task_struct", Kind.STRUCT)
    relos = canon._ExtInfo.read(sections(obj)[".BTF.ext"], "little").core_relos
    code = sections(obj)["tp/syscalls/sys_enter_getppid"]
    immediates = [struct.unpack_from("<i", code, insn_off + 4)[0]
                  for _sec, insn_off, kind, _at in relos if kind in canon.TYPE_ID_RELO_KINDS]
    assert immediates == [task_struct, task_struct]

    with L.BpfObject.open_mem(obj, object_name="typeid") as loaded:
        loaded.load()
        prog = loaded.find_program("probe")
        assert prog is not None
        with prog.attach():
            os.getppid()
        bss = next(m for m in loaded.maps() if m.is_internal() and m.name.endswith(".bss"))
        value = bss.lookup(bytes(4))
        assert value is not None
        local_id, kernel_id, hits = struct.unpack_from("<III", value)
    assert hits >= 1
    assert local_id == task_struct
    vmlinux = parse_btf(Path("/sys/kernel/btf/vmlinux").read_bytes())
    assert kernel_id == vmlinux.ids_by_name("task_struct", Kind.STRUCT)[0]


SEED = sections((Path(__file__).resolve().parent / "data" / "elf" / "bootstrap.o").read_bytes())


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.booleans(), st.integers(0, 1 << 20), st.integers(0, 255)),
                      min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 1 << 20)))
def test_hostile_bytes_give_btf_error(edits: list[tuple[bool, int, int]], cut: int | None
                                      ) -> None:
    parts = [bytearray(SEED[".BTF"]), bytearray(SEED[".BTF.ext"])]
    for in_ext, pos, value in edits:
        part = parts[in_ext]
        part[pos % len(part)] = value
    if cut is not None:
        del parts[cut % 2][cut % len(parts[cut % 2]):]
    try:
        done = canon.canonicalize(bytes(parts[0]), bytes(parts[1]))
    except BtfError:
        return
    assert len(done.btf) >= 24


def test_relocation_outside_a_type_record_is_refused() -> None:
    first = canon.canonicalize(SEED[".BTF"], SEED[".BTF.ext"])
    done = canon.canonicalize(first.btf, first.ext)
    assert done.moved(24) == 24 and done.moved(40) == 40  # canonical already: nothing moves
    for offset in (0, 23, 24 + struct.unpack_from("<I", first.btf, 12)[0]):
        with pytest.raises(BtfError, match=rf"^offset {offset} in \.BTF is not inside a type "
                                           r"record$"):
            done.moved(offset)


TAGS_PROGRAM = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __ttag(x) __attribute__((btf_type_tag(x)))

enum big { BIG_ONE = 1, BIG_HUGE = 0x1ffffffffULL };

struct tagged {
	int a __tag("member_a");
	int __ttag("user") *p;
	enum big e;
} __tag("struct_tagged");

struct tagged holder __tag("var_holder");
__u64 seen __tag("var_seen");

static __noinline int helper(int x __tag("param_x")) __tag("func_helper")
{
	return x + 1;
}

SEC("tp/syscalls/sys_enter_getppid")
int probe(void *ctx)
{
	seen = helper(holder.a) + holder.e;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@requires_clang
def test_tags_and_enum64_with_and_without_the_pch(tmp_path: Path, kernel: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """DECL_TAG (last, by target), TYPE_TAG and ENUM64 go through the canonical order:
    the cold, warm and --no-cache builds agree, and libbpf loads the result."""
    from ecc.compiler import pch
    from ecc.run import libbpf as L

    monkeypatch.setenv("ECC_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "tags.bpf.c"
    src.write_text(TAGS_PROGRAM)

    def one(name: str, cache: bool = True) -> tuple[bytes, bool]:
        result = build(BuildOptions(source=str(src), output_dir=str(tmp_path / name),
                                    cache=cache))
        return result.object_bytes, any("-include-pch" in c["argv"] for c in result.commands)

    cold = one("cold")
    pch.settle(tmp_path / "cache")
    warm, plain = one("warm"), one("plain", cache=False)
    assert (cold[1], warm[1], plain[1]) == (False, True, False)
    assert cold[0] == warm[0] == plain[0]
    btf = parse_btf(read_object(cold[0]).btf or b"")
    kinds = [t.kind for t in btf]
    tags = [(t.name, btf[t.type].name, t.component_idx) for t in btf if t.kind == Kind.DECL_TAG]
    assert Kind.TYPE_TAG in kinds and Kind.ENUM64 in kinds
    assert kinds.index(Kind.DECL_TAG) == len(kinds) - len(tags)  # the tags come last
    assert sorted(tags) == sorted([
        ("var_holder", "holder", -1), ("struct_tagged", "tagged", -1),
        ("member_a", "tagged", 0), ("var_seen", "seen", -1), ("func_helper", "helper", -1),
        ("param_x", "helper", 0)])
    with L.BpfObject.open_mem(cold[0], object_name="tags") as loaded:
        loaded.load()
