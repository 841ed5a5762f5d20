"""Independent oracles for what ecc puts into a package (tests/test_oracles.py).

- ``LIBBPF_ORACLE_C``: a small C program linked against the system libbpf
  that opens an object the way a loader does (``bpf_object__open_mem`` with
  the package's object name) and prints what libbpf makes of it: every map
  with its flags, every DATASEC after libbpf's fix-up (variable offsets come
  from the symbol table only then), and the types asked for, each
  declaration rendered by libbpf's own ``btf_dump__emit_type_decl``.
- ``clang_rerun``: the build's clang command run again by hand, to an object
  that never went through ecc's strip and BTF renumbering.
- ``isomorphic``: whether two ``bpftool -j btf dump`` listings hold the same
  types, up to numbering, and the numbering that shows it.
- ``libbpf_loads_with_btf``: whether libbpf loads one program of an object into
  the running kernel with another BTF standing for the kernel's (CO-RE against
  that BTF), as ``ecc check --kernel`` predicts.
"""

from __future__ import annotations

import os
import subprocess
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LIBBPF_ORACLE_C = r"""
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

static char decl[1 << 16];
static size_t decl_len;

static void emit(void *ctx, const char *fmt, va_list args)
{
    if (decl_len < sizeof(decl))
        decl_len += vsnprintf(decl + decl_len, sizeof(decl) - decl_len, fmt, args);
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
    return 0;
}

/* One line per record: declarations may hold newlines and tabs (inlined
 * anonymous types), which would break the tab-separated output. */
static const char *render(struct btf_dump *d, __u32 id, int strip)
{
    LIBBPF_OPTS(btf_dump_emit_type_decl_opts, opts, .field_name = "", .strip_mods = strip);
    decl_len = 0;
    decl[0] = 0;
    btf_dump__emit_type_decl(d, id, &opts);
    decl[decl_len < sizeof(decl) ? decl_len : sizeof(decl) - 1] = 0;
    for (char *p = decl; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    return decl;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s OBJ OBJECT_NAME [m:MAP_NAME...] [t:TYPE_ID...]\n", argv[0]);
        return 2;
    }
    libbpf_set_print(quiet);
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return 2;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(size);
    if (!buf || fread(buf, 1, size, f) != (size_t)size)
        return 2;
    fclose(f);
    LIBBPF_OPTS(bpf_object_open_opts, open_opts, .object_name = argv[2]);
    struct bpf_object *obj = bpf_object__open_mem(buf, size, &open_opts);
    if (!obj) {
        fprintf(stderr, "bpf_object__open_mem: %s\n", strerror(errno));
        return 1;
    }
    printf("version\t%u.%u\n", libbpf_major_version(), libbpf_minor_version());
    struct btf *btf = bpf_object__btf(obj);
    struct bpf_map *map;
    bpf_object__for_each_map(map, obj) {
        /* An internal map's value type is its section's DATASEC: that names the section. */
        const char *section = "";
        __u32 value_id = bpf_map__btf_value_type_id(map);
        if (btf && value_id && btf_is_datasec(btf__type_by_id(btf, value_id)))
            section = btf__name_by_offset(btf, btf__type_by_id(btf, value_id)->name_off);
        printf("map\t%s\t%u\t%d\t%d\t%u\t%s\n", bpf_map__name(map), bpf_map__map_flags(map),
               bpf_map__is_internal(map), bpf_map__type(map), BPF_F_MMAPABLE, section);
    }
    if (!btf)
        return 0;
    struct btf_dump *d = btf_dump__new(btf, emit, NULL, NULL);
    if (!d)
        return 1;
    for (__u32 id = 1; id < btf__type_cnt(btf); id++) {
        const struct btf_type *t = btf__type_by_id(btf, id);
        if (!btf_is_datasec(t))
            continue;
        printf("datasec\t%s\t%u\n", btf__name_by_offset(btf, t->name_off), t->size);
        const struct btf_var_secinfo *vsi = btf_var_secinfos(t);
        for (int i = 0; i < btf_vlen(t); i++, vsi++) {
            const struct btf_type *v = btf__type_by_id(btf, vsi->type);
            if (!btf_is_var(v)) {
                printf("entry\t%s\t%u\t%u\t%d\n", btf__name_by_offset(btf, v->name_off),
                       vsi->offset, vsi->size, btf_kind(v));
                continue;
            }
            printf("var\t%s\t%u\t%u\t%u\t%s\n", btf__name_by_offset(btf, v->name_off),
                   vsi->offset, vsi->size, btf_var(v)->linkage, render(d, v->type, 1));
        }
    }
    for (int a = 3; a < argc; a++) {
        if (strncmp(argv[a], "m:", 2) != 0)
            continue;
        const struct bpf_map *found = bpf_object__find_map_by_name(obj, argv[a] + 2);
        int index = -1, i = 0;
        bpf_object__for_each_map(map, obj) {
            if (map == found)
                index = i;
            i++;
        }
        printf("found\t%s\t%d\n", argv[a] + 2, index);
    }
    for (int a = 3; a < argc; a++) {
        if (strncmp(argv[a], "t:", 2) != 0)
            continue;
        __u32 id = strtoul(argv[a] + 2, NULL, 10);
        const struct btf_type *t = id < btf__type_cnt(btf) ? btf__type_by_id(btf, id) : NULL;
        if (!t) {
            printf("type\t%u\tmissing\n", id);
            continue;
        }
        printf("type\t%u\t%d\t%s\t%u\t%u\n", id, btf_kind(t),
               btf__name_by_offset(btf, t->name_off), t->size, btf_vlen(t));
        if (!btf_is_composite(t))
            continue;
        const struct btf_member *m = btf_members(t);
        for (int i = 0; i < btf_vlen(t); i++, m++) {
            const struct btf_type *mt = btf__type_by_id(btf, m->type);
            printf("member\t%s\t%u\t%u\t%d\t%s\n", btf__name_by_offset(btf, m->name_off),
                   btf_member_bit_offset(t, i), btf_member_bitfield_size(t, i),
                   btf_kind(mt), render(d, m->type, 0));
        }
    }
    btf_dump__free(d);
    bpf_object__close(obj);
    return 0;
}
"""


def build_libbpf_oracle(folder: Path, cc: str) -> Path:
    """Compile LIBBPF_ORACLE_C with ``cc`` against the system libbpf, into ``folder``."""
    src = folder / "libbpf_oracle.c"
    exe = folder / "libbpf_oracle"
    src.write_text(LIBBPF_ORACLE_C)
    proc = subprocess.run([cc, "-O1", "-Wall", "-o", str(exe), str(src), "-lbpf"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"cannot build the libbpf oracle: {proc.stderr}"
    return exe


@dataclass(frozen=True)
class LibbpfMap:
    name: str
    flags: int
    internal: bool
    type: int
    mmapable: bool     # BPF_F_MMAPABLE in bpf_map__map_flags
    datasec: str       # the DATASEC that is its value type ("" for none)


@dataclass(frozen=True)
class LibbpfVar:
    name: str
    offset: int
    size: int
    linkage: int
    decl: str          # btf_dump__emit_type_decl, no name, modifiers stripped


@dataclass(frozen=True)
class LibbpfMember:
    name: str
    bit_offset: int
    bitfield_size: int
    kind: int          # BTF kind of the member's own type (not resolved)
    decl: str          # btf_dump__emit_type_decl, no name, modifiers kept


@dataclass(frozen=True)
class LibbpfType:
    id: int
    kind: int
    name: str
    size: int
    vlen: int
    members: tuple[LibbpfMember, ...]


@dataclass
class LibbpfView:
    version: tuple[int, int] = (0, 0)
    maps: list[LibbpfMap] = field(default_factory=list)
    # DATASEC name -> (size, variables); entries that are not VARs are left out
    datasecs: dict[str, tuple[int, list[LibbpfVar]]] = field(default_factory=dict)
    types: dict[int, LibbpfType | None] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)


def libbpf_view(oracle: Path, obj: Path, object_name: str, *, map_names: Sequence[str] = (),
                type_ids: Sequence[int] = ()) -> LibbpfView:
    """What libbpf makes of ``obj`` opened as ``object_name``.

    ``map_names`` are looked up with ``bpf_object__find_map_by_name``
    (``LibbpfView.found``: the index of the map found in libbpf's order, or
    -1); ``type_ids`` are read with ``btf__type_by_id``.
    """
    argv = [str(oracle), str(obj), object_name, *[f"m:{n}" for n in map_names],
            *[f"t:{i}" for i in type_ids]]
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode:
        raise AssertionError(f"libbpf cannot open {obj}: {proc.stderr.strip()}")
    view = LibbpfView()
    variables: list[LibbpfVar] = []
    members: list[LibbpfMember] = []
    # (id, kind, name, size, vlen, members): members are read after their type's line
    read_types: list[tuple[int, int, str, int, int, list[LibbpfMember]]] = []
    for line in proc.stdout.splitlines():
        tag, *f = line.split("\t")
        if tag == "version":
            major, minor = f[0].split(".")
            view.version = (int(major), int(minor))
        elif tag == "map":
            flags, mmapable_bit = int(f[1]), int(f[4])
            view.maps.append(LibbpfMap(f[0], flags, f[2] == "1", int(f[3]),
                                       bool(flags & mmapable_bit), f[5]))
        elif tag == "found":
            view.found[f[0]] = int(f[1])
        elif tag == "datasec":
            variables = []
            view.datasecs[f[0]] = (int(f[1]), variables)
        elif tag == "var":
            variables.append(LibbpfVar(f[0], int(f[1]), int(f[2]), int(f[3]), f[4]))
        elif tag == "type":
            if f[1] == "missing":
                view.types[int(f[0])] = None
                continue
            members = []
            read_types.append((int(f[0]), int(f[1]), f[2], int(f[3]), int(f[4]), members))
        elif tag == "member":
            members.append(LibbpfMember(f[0], int(f[1]), int(f[2]), int(f[3]), f[4]))
    for type_id, kind, name, size, vlen, mems in read_types:
        view.types[type_id] = LibbpfType(type_id, kind, name, size, vlen, tuple(mems))
    return view


# --- clang, without ecc ----------------------------------------------------------------------

def compile_command(commands: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The clang compile that made a build's object: the last one recorded.

    A build compiles twice when the precompiled header lost an extern's BTF
    (ecc/compiler/externs.py); the second compile, without it, is the object.
    """
    found = [c for c in commands if "-c" in c["argv"] and "-target" in c["argv"]]
    if not found:
        raise AssertionError(f"no clang compile among {[c['what'] for c in commands]}")
    return found[-1]


def clang_rerun(command: Mapping[str, Any], wrapper_text: str, source_dir: Path,
                out: Path) -> Path:
    """Run the build's clang command again, by hand, to ``out``: an object straight from clang.

    The build's private workspace is gone by now, so what pointed into it is
    replaced: the wrapper translation unit (``-c``) by ``wrapper_text``
    written beside ``out``, the workspace's mirror of the program's folder
    (``-I`` and the working directory) by the folder itself. The depfile and
    a precompiled header are left out: neither may change the object, and a
    compile without the cache is the plain truth to compare with. The
    ``-ffile-prefix-map`` flags stay: they only rename paths in DWARF.
    """
    argv = list(command["argv"])
    wrapper = argv[argv.index("-c") + 1]
    workspace = os.path.dirname(wrapper) + os.sep
    new_wrapper = out.with_suffix(".wrapper.c")
    new_wrapper.write_text(wrapper_text)
    rebuilt: list[str] = []
    skip = 0
    for i, arg in enumerate(argv):
        if skip:
            skip -= 1
            continue
        if arg in ("-include-pch", "-MF"):
            skip = 1
            continue
        if arg == "-MD":
            continue
        if arg == "-c":
            rebuilt += ["-c", str(new_wrapper)]
            skip = 1
        elif arg == "-o" and i > 0:
            rebuilt += ["-o", str(out)]
            skip = 1
        elif arg.startswith("-I" + workspace):
            rebuilt.append(f"-I{source_dir}")
        else:
            rebuilt.append(arg)
    cwd = command.get("cwd")
    if not cwd or cwd.startswith(workspace) or not os.path.isdir(cwd):
        cwd = str(source_dir)
    proc = subprocess.run(rebuilt, cwd=cwd, env={**os.environ, **command.get("env", {})},
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise AssertionError(f"clang failed when run again by hand:\n{' '.join(rebuilt)}\n"
                             f"{proc.stderr[-2000:]}")
    return out


# --- the same types, up to numbering ---------------------------------------------------------

# bpftool's JSON keys that hold a type id; "id" is the record's own number.
_ID_KEYS = frozenset({"type_id", "index_type_id", "ret_type_id"})
_VOID = -1


def _split(record: Mapping[str, Any]) -> tuple[str, tuple[int, ...]]:
    """A bpftool JSON record -> (its text with every type id blanked, the ids in order)."""
    refs: list[int] = []

    def blank(value: Any) -> Any:
        if isinstance(value, Mapping):
            out = {}
            for key in sorted(value):
                if key in _ID_KEYS:
                    refs.append(int(value[key]))
                    out[key] = "#"
                elif key != "id":
                    out[key] = blank(value[key])
            return out
        if isinstance(value, list):
            return [blank(v) for v in value]
        return value

    return repr(blank(record)), tuple(refs)


@dataclass(frozen=True)
class Matching:
    mapping: dict[int, int]          # id in the first listing -> id in the second
    problems: list[str]


def isomorphic(first: Sequence[Mapping[str, Any]], second: Sequence[Mapping[str, Any]]) -> Matching:
    """Match the types of two bpftool listings and check the match is exact.

    Types are told apart by colour refinement: a type starts with its kind,
    name and every value but the ids it refers to, then repeatedly takes on
    the classes of the types it refers to (in order) and of those referring to
    it (with the place they refer from), until no class splits. Types of one
    class are paired in id order, and the pairing is then checked record by
    record: same text, and every id referred to maps to the id the other
    record refers to. The check, not the refinement, is what the test trusts.
    """
    graphs = [{int(r["id"]): _split(r) for r in listing} for listing in (first, second)]
    interned: dict[Any, int] = {}

    def intern(key: Any) -> int:
        return interned.setdefault(key, len(interned))

    colour = {(g, i): intern(("shape", shape))
              for g, types in enumerate(graphs) for i, (shape, _) in types.items()}
    classes = len(set(colour.values()))
    for _ in range(len(colour) + 1):
        incoming: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        for g, types in enumerate(graphs):
            for i, (_, refs) in types.items():
                for place, r in enumerate(refs):
                    if r:
                        incoming[(g, r)].append((place, colour[(g, i)]))
        new = {
            (g, i): intern((colour[(g, i)],
                            tuple(colour[(g, r)] if r else _VOID for r in refs),
                            tuple(sorted(incoming[(g, i)]))))
            for g, types in enumerate(graphs) for i, (_, refs) in types.items()
        }
        new_classes = len(set(new.values()))
        colour = new
        if new_classes == classes:
            break
        classes = new_classes

    members: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for (g, i), c in colour.items():
        members[c][g].append(i)
    problems: list[str] = []
    mapping: dict[int, int] = {0: 0}
    for ours, theirs in members.values():
        if len(ours) != len(theirs):
            sample = graphs[0 if ours else 1][(ours or theirs)[0]][0]
            problems.append(f"{len(ours)} type(s) in the first, {len(theirs)} in the second "
                            f"like {sample}")
            continue
        mapping.update(zip(sorted(ours), sorted(theirs), strict=True))
    if problems:
        return Matching(mapping, problems)
    for a, (shape, refs) in sorted(graphs[0].items()):
        b = mapping[a]
        other_shape, other_refs = graphs[1][b]
        if shape != other_shape or tuple(mapping[r] for r in refs) != other_refs:
            problems.append(f"type {a} ({shape}, refs {refs}) paired with {b} "
                            f"({other_shape}, refs {other_refs})")
    return Matching(mapping, problems)


def libbpf_loads_with_btf(object_bytes: bytes, program: str, btf: Path, object_name: str,
                          refusals: Sequence[str]) -> bool:
    """Load ``program`` alone with ``btf`` as the kernel's BTF for CO-RE: True when it
    loads, False when libbpf or the verifier refuses it with one of ``refusals`` (any
    other failure fails the test)."""
    from ecc.errors import EccError
    from ecc.run.libbpf import BpfObject

    with BpfObject.open_mem(object_bytes, object_name=object_name,
                            btf_custom_path=str(btf)) as obj:
        for prog in obj.programs():
            prog.set_autoload(prog.name == program)
        try:
            obj.load()
        except EccError as exc:
            text = f"{exc}\n{exc.details or ''}\n{obj.captured_log()}"
            assert any(r in text for r in refusals), f"{program} failed otherwise: {text}"
            return False
        return True
