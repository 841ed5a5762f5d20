"""``<stem>.skel.h`` for a wasm32 guest: the object inside, and bpftool's skeleton API.

The guest has no libelf and cannot mmap a map, so the skeleton carries what a
libbpf skeleton would find at run time: the object's bytes (a C array),
the names of its maps and programs, and where each global-data section's
bytes are in the object. ``skel->rodata`` (and ``->data``) point into those
bytes, so what the guest writes there before ``__load`` is in the object the
host hands to libbpf, which copies it into the kernel's map. ``.bss`` has no
bytes in the object: its struct is given (to read the map with
``bpf_map_lookup_elem``) but no pointer, so ``skel->bss->x = 1`` does not
compile instead of writing where no one reads.

The functions and ``struct bpf_object_skeleton`` fields used are those of
the wasm-bpf guest SDK's ``libbpf-wasm.h``, so the skeleton works with that
header or ecc's. Pure: bytes, meta and BTF in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecc.btf import Btf, Kind, resolve_size
from ecc.btf.types import Datasec, Linkage, Member, Var
from ecc.elf import SHT_NOBITS, BpfObject, Section
from ecc.errors import CompileError

from .exportheader import header_guard
from .layout import Wasm32Types

# Variables ecc adds so that the export header's structs reach BTF (compile.py).
ECC_DUMMY_PREFIX = "__eunomia_dummy_"
STT_OBJECT = 1
_MAP_OR_PROG_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")
_NON_IDENT = re.compile(r"[^A-Za-z0-9_]")
_BYTES_PER_LINE = 16


@dataclass(frozen=True)
class DataSection:
    """A global-data section the guest sees as a struct."""

    section: str     # ".rodata"
    ident: str       # "rodata": skel->rodata, struct <obj>__rodata
    offset: int      # of its bytes in the object file (meaningless when in_file is False)
    in_file: bool    # False for .bss: no bytes to point at
    definition: str  # the struct and its assertions


def section_ident(section: str) -> str:
    """``.rodata.cfg`` -> ``rodata_cfg``: the name bpftool gives a section in a skeleton."""
    return _NON_IDENT.sub("_", section.lstrip("."))


def _bpf_skel(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    skel = meta.get("bpf_skel", meta)
    if not isinstance(skel, Mapping):
        raise CompileError("package meta: bpf_skel is not an object; rebuild the package")
    return skel


def _names(skel: Mapping[str, Any], key: str, field: str) -> list[dict[str, str]]:
    entries = skel.get(key, [])
    if not isinstance(entries, list) or not all(
            isinstance(e, Mapping) and isinstance(e.get(field), str) for e in entries):
        raise CompileError(f"package meta: bpf_skel.{key} is not a list of objects with a "
                           f"'{field}'; rebuild the package")
    for e in entries:
        if not _MAP_OR_PROG_NAME.fullmatch(e[field]):
            raise CompileError(f"package meta: bpf_skel.{key}: {e[field]!r} is not a map or "
                               "program name; rebuild the package")
    return [dict(e) for e in entries]


def data_sections(obj: BpfObject, btf: Btf, obj_name: str, origin: str) -> list[DataSection]:
    """Every global-data section with variables, each checked against its DATASEC."""
    out: list[DataSection] = []
    for sec in obj.sections:
        if not sec.name.startswith((".rodata", ".data", ".bss")) or sec.name not in \
                obj.data_sections:
            continue
        found = btf.by_name(sec.name, Kind.DATASEC)
        if not isinstance(found, Datasec):
            continue  # .rodata.str1.1 and the like: no variables to show
        ident = section_ident(sec.name)
        members = _section_members(obj, btf, found, sec, origin)
        if not members:
            continue
        c_name = f"struct {obj_name}__{ident}"
        types = Wasm32Types(btf, origin, pointers_as_u64=True)
        body = types.body(members, sec.size, union=False, where=f"{c_name} ({sec.name})")
        lines = [*types.definitions, f"{c_name} {{", *body.lines,
                 "} __attribute__((packed));",
                 *types.assertions(c_name, sec.size, body.offsets)]
        out.append(DataSection(sec.name, ident, sec.offset, sec.type != SHT_NOBITS,
                               "\n".join(lines)))
    return out


def _section_members(obj: BpfObject, btf: Btf, datasec: Datasec, section: Section,
                     origin: str) -> list[tuple[Member, str]]:
    """The section's variables at their offsets, as libbpf will place them.

    clang leaves a DATASEC's size and offsets 0 and libbpf fills them in from
    the ELF section and symbols (``btf_fixup_datasec``); a linked object has
    them already. So the symbols say where a variable is, and BTF that says
    something else is refused.
    """
    fixed_up = datasec.size != 0
    if fixed_up and datasec.size != section.size:
        raise CompileError(f"{origin}: {datasec.name}: BTF says {datasec.size} bytes, the ELF "
                           f"section has {section.size}; rebuild the object")
    symbols = {sym.name: sym for sym in obj.symbols
               if sym.section_index == section.index and sym.type == STT_OBJECT}
    members: list[tuple[Member, str]] = []
    for info in datasec.vars:
        var = btf[info.type]
        if not isinstance(var, Var):
            continue
        where = f"{datasec.name} variable '{var.name}'"
        size = resolve_size(btf, var.type)
        sym = symbols.get(var.name)
        if sym is None:
            raise CompileError(f"{origin}: {where}: no ELF symbol in {section.name}; rebuild "
                               "the object")
        problem = None
        if info.size != size or sym.size != size:
            problem = f"the DATASEC gives {info.size} bytes, the symbol {sym.size}, its type {size}"
        elif sym.value + size > section.size:
            problem = f"at {sym.value}, {size} bytes, past the section's {section.size}"
        elif (fixed_up or info.offset) and info.offset != sym.value:
            problem = f"the DATASEC puts it at {info.offset}, the symbol at {sym.value}"
        if problem:
            raise CompileError(f"{origin}: {where}: {problem}; rebuild the object")
        if var.linkage == Linkage.STATIC or var.name.startswith(ECC_DUMMY_PREFIX):
            continue  # not the user's to set (bpftool leaves static ones out too)
        members.append((Member(var.name, var.type, 8 * sym.value, 0), where))
    members.sort(key=lambda m: m[0].bit_offset)
    return members


def skeleton_header(object_bytes: bytes, obj: BpfObject, btf: Btf, meta: Mapping[str, Any], *,
                    stem: str, origin: str) -> str:
    """The text of ``<stem>.skel.h``; ``origin`` names the object in errors."""
    if not obj.little_endian:
        raise CompileError(f"{origin}: the object is big-endian and wasm32 is little-endian; "
                           "build it for bpfel (the host's byte order)")
    skel = _bpf_skel(meta)
    obj_name = skel.get("obj_name") or f"{section_ident(stem)}_bpf"
    if not isinstance(obj_name, str) or not obj_name.isidentifier():
        raise CompileError(f"package meta: bpf_skel.obj_name {obj_name!r} is not a C name; "
                           "rebuild the package")
    maps = _names(skel, "maps", "name")
    progs = _names(skel, "progs", "name")
    bad = next((p["name"] for p in progs if not p["name"].isidentifier()), None)
    if bad is not None:
        raise CompileError(f"package meta: program {bad!r} is not a C name; rebuild the package")
    sections = data_sections(obj, btf, obj_name, origin)
    by_ident = {s.ident: s for s in sections}
    guard = header_guard(stem, "SKEL_H")
    o = obj_name
    lines = [
        f"/* {stem}.skel.h: generated by ecc for a wasm32 guest; do not edit.",
        " * The BPF object is inside; skel->rodata points into its .rodata, so values set",
        f" * there before {o}__load() are the ones the kernel gets. */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <errno.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <stdlib.h>",
        '#include "libbpf-wasm.h"',
        "",
        *_struct_lines(o, sections, maps, progs),
        _object_array(o, object_bytes),
        "",
        *_create_lines(o, maps, progs, by_ident),
        *_open_lines(o, sections),
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(lines)


def _struct_lines(o: str, sections: list[DataSection], maps: list[dict[str, str]],
                  progs: list[dict[str, str]]) -> list[str]:
    """The section structs and ``struct <obj>``: maps, programs, the data pointers."""
    return [
        *(s.definition + "\n" for s in sections),
        f"struct {o} {{",
        "    struct bpf_object_skeleton *skeleton;",
        "    struct {",
        *(f"        struct bpf_map *{_ident(m)};" for m in maps),
        "    } maps;",
        "    struct {",
        *(f"        struct bpf_program *{p['name']};" for p in progs),
        "    } progs;",
        *(f"    struct {o}__{s.ident} *{s.ident};" for s in sections if s.in_file),
        "};",
        "",
    ]


def _create_lines(o: str, maps: list[dict[str, str]], progs: list[dict[str, str]],
                  by_ident: Mapping[str, DataSection]) -> list[str]:
    """``__elf_bytes``, ``__destroy`` and ``__create_skeleton``: the object's bytes and names."""
    return [
        f"static inline const void *{o}__elf_bytes(size_t *sz)",
        "{",
        f"    *sz = sizeof({o}__object);",
        f"    return {o}__object;",
        "}",
        "",
        f"static inline void {o}__destroy(struct {o} *obj)",
        "{",
        "    if (!obj)",
        "        return;",
        "    if (obj->skeleton)",
        "        bpf_object__destroy_skeleton(obj->skeleton);",
        "    free(obj);",
        "}",
        "",
        f"static inline int {o}__create_skeleton(struct {o} *obj)",
        "{",
        "    struct bpf_object_skeleton *s = calloc(1, sizeof(*s));",
        "",
        "    if (!s)",
        "        return -ENOMEM;",
        "    obj->skeleton = s;",
        "    s->sz = sizeof(*s);",
        f'    s->name = "{o}";',
        f"    s->data = {o}__object;",
        f"    s->data_sz = sizeof({o}__object);",
        f"    s->rodata_offset = {by_ident['rodata'].offset if 'rodata' in by_ident else 0};",
        "    s->bss_offset = 0; /* .bss has no bytes in the object */",
        f"    s->map_cnt = {len(maps)};",
        "    s->map_skel_sz = sizeof(*s->maps);",
        f"    s->maps = calloc({max(len(maps), 1)}, sizeof(*s->maps));",
        "    if (!s->maps)",
        "        return -ENOMEM;",
        *(line for i, m in enumerate(maps) for line in (
            f'    s->maps[{i}].name = "{m["name"]}";',
            f"    s->maps[{i}].map = &obj->maps.{_ident(m)};")),
        f"    s->prog_cnt = {len(progs)};",
        "    s->prog_skel_sz = sizeof(*s->progs);",
        f"    s->progs = calloc({max(len(progs), 1)}, sizeof(*s->progs));",
        "    if (!s->progs)",
        "        return -ENOMEM;",
        *(line for i, p in enumerate(progs) for line in (
            f'    s->progs[{i}].name = "{p["name"]}";',
            f"    s->progs[{i}].prog = &obj->progs.{p['name']};")),
        "    return 0;",
        "}",
        "",
    ]


def _open_lines(o: str, sections: list[DataSection]) -> list[str]:
    """``__open_opts`` and the lifecycle over it: open, load, attach, detach."""
    return [
        f"static inline struct {o} *{o}__open_opts(const struct bpf_object_open_opts *opts)",
        "{",
        f"    struct {o} *obj = calloc(1, sizeof(*obj));",
        "    int err;",
        "",
        "    if (!obj) {",
        "        errno = ENOMEM;",
        "        return NULL;",
        "    }",
        f"    err = {o}__create_skeleton(obj);",
        "    if (!err)",
        "        err = bpf_object__open_skeleton(obj->skeleton, opts);",
        "    if (err) {",
        f"        {o}__destroy(obj);",
        "        errno = err < 0 ? -err : EINVAL;",
        "        return NULL;",
        "    }",
        *(f"    obj->{s.ident} = (struct {o}__{s.ident} *)((char *)obj->skeleton->data + "
          f"{s.offset});" for s in sections if s.in_file),
        "    return obj;",
        "}",
        "",
        f"static inline struct {o} *{o}__open(void)",
        "{",
        f"    return {o}__open_opts(NULL);",
        "}",
        "",
        f"static inline int {o}__load(struct {o} *obj)",
        "{",
        "    return bpf_object__load_skeleton(obj->skeleton);",
        "}",
        "",
        f"static inline struct {o} *{o}__open_and_load(void)",
        "{",
        f"    struct {o} *obj = {o}__open();",
        "    int err;",
        "",
        "    if (!obj)",
        "        return NULL;",
        f"    err = {o}__load(obj);",
        "    if (err) {",
        f"        {o}__destroy(obj);",
        "        errno = err < 0 ? -err : EINVAL;",
        "        return NULL;",
        "    }",
        "    return obj;",
        "}",
        "",
        f"static inline int {o}__attach(struct {o} *obj)",
        "{",
        "    return bpf_object__attach_skeleton(obj->skeleton);",
        "}",
        "",
        f"static inline void {o}__detach(struct {o} *obj)",
        "{",
        "    bpf_object__detach_skeleton(obj->skeleton);",
        "}",
        "",
    ]



def _ident(entry: Mapping[str, str]) -> str:
    ident = entry.get("ident") or section_ident(entry["name"])
    if not ident.isidentifier():
        raise CompileError(f"package meta: map ident {ident!r} is not a C name; "
                           "rebuild the package")
    return ident


def _object_array(obj_name: str, data: bytes) -> str:
    # Writable: skel->rodata writes into it. Aligned so the section structs sit
    # where the ELF put them relative to an aligned start.
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + _BYTES_PER_LINE])
            for i in range(0, len(data), _BYTES_PER_LINE)]
    body = ",\n    ".join(rows)
    return (f"static unsigned char {obj_name}__object[{len(data)}] "
            f"__attribute__((aligned(8))) = {{\n    {body}\n}};\n"
            f"_Static_assert(sizeof({obj_name}__object) == {len(data)}, "
            f'"{obj_name}: object size");')
