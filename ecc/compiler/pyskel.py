"""``<stem>_skel.py`` (``ecc build --py-skel``): a typed Python skeleton of a package.

The module written holds the package itself (base64), a frozen dataclass per
struct the program exchanges with user space (its export types and the
struct keys and values of its maps), an ``enum.IntEnum`` per enum they use,
and a class named after the program whose ``load()`` takes the program's
options as typed keyword arguments. At run time it needs only ``ecc``'s
public API (``ecc.Skeleton``, ``ecc.TypedMap``), which converts the decoded
values into these classes by reading their annotations: the annotations
written here are the one description of the Python shape of each type.

The Python type of a BTF type follows ``ecc.run.decode``'s rules: ``char``
arrays are ``str``, other arrays tuples (``unsigned char``/``__u8`` arrays
``bytes``), ``_Bool`` is ``bool``, other integers and pointers ``int``,
``float``/``double`` ``float`` (a ``long double`` its bits as a ``str``),
an enum its ``IntEnum`` or an ``int`` (a value no enumerator names), structs
and unions dataclasses, with anonymous struct/union members flattened.

Pure: object bytes, meta and package text in, module text out.
"""

from __future__ import annotations

import base64
import keyword
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ecc.btf import Btf, Kind, parse_btf, skip_mods_and_typedefs
from ecc.btf.mapdefs import map_defs
from ecc.btf.types import Array, Datasec, Enum, Enum64, Float, Int, Ptr, Struct, Union, Var
from ecc.elf import BpfObject, read_object
from ecc.errors import CompileError
from ecc.meta.names import frozen_at_load

# Names the skeleton's own code uses: no generated class may take one.
_RESERVED = frozenset({"ClassVar", "Any", "dataclass", "field", "enum", "ecc", "annotations"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Map types whose values come one per CPU (ecc.Map gives a list).
_PERCPU_MAPS = frozenset({5, 6, 10, 21})
_BUFFER_MAPS = frozenset({4, 27})  # perf event arrays and ring buffers: events(), not maps
_PACKAGE_LINE = 76
DUMMY_PREFIX = "__eunomia_dummy"


def skeleton_path(folder: str, stem: str) -> str:
    import os

    return os.path.join(folder, f"{_module_stem(stem)}_skel.py")


def _module_stem(stem: str) -> str:
    """The stem as the start of a module name (``my-prog`` -> ``my_prog``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    return "p" + name if name[:1].isdigit() else name


def camel(name: str) -> str:
    """``flood_event`` -> ``FloodEvent``; a name that starts with a digit gets ``T``."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "T"
    return "T" + text if text[0].isdigit() else text


def py_name(name: str) -> str:
    """A C member name as a Python attribute: keywords get ``_``, and names that a
    class body would mangle (``__pad``) lose one leading underscore."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) and name == "_":
        return name + "_"
    if name.startswith("__") and not name.endswith("__"):
        return name[1:] + "_"
    return name


class _Types:
    """Python type expressions for BTF types, and the classes they need, in order."""

    def __init__(self, btf: Btf, taken: set[str]) -> None:
        self.btf = btf
        self.taken = taken
        self.names: dict[int, str] = {}       # BTF id of a struct/union/enum -> class name
        self.blocks: list[str] = []           # class definitions, dependencies first

    def _class_name(self, c_name: str, hint: str) -> str:
        base = camel(c_name or hint)
        name, n = base, 2
        while name in self.taken or name in _RESERVED or keyword.iskeyword(name):
            name, n = f"{base}{n}", n + 1
        self.taken.add(name)
        return name

    def expr(self, type_id: int, hint: str) -> str:
        btf = self.btf
        t = btf[skip_mods_and_typedefs(btf, type_id)]
        if isinstance(t, Int):
            return "bool" if t.bool and t.bits == t.size * 8 and not t.offset else "int"
        if isinstance(t, Ptr):
            return "int"
        if isinstance(t, Float):
            return "float" if t.size in (2, 4, 8) else "str"
        if isinstance(t, Enum | Enum64):
            return f"{self.enum(t, hint)} | int"
        if isinstance(t, Array):
            elem = btf[skip_mods_and_typedefs(btf, t.type)]
            if isinstance(elem, Int) and elem.size == 1 and (elem.char or elem.name == "char"):
                return "str"
            if (isinstance(elem, Int) and elem.size == 1 and not elem.signed and not elem.bool
                    and elem.bits == 8 and not elem.offset):
                return "bytes"
            return f"tuple[{self.expr(t.type, hint)}, ...]"
        if isinstance(t, Struct | Union):
            return self.record(t, hint)
        raise CompileError(f"--py-skel: {btf.describe(t.id)} ({hint}) holds no data user "
                           "space can read; leave it out of the exported structs")

    def enum(self, t: Enum | Enum64, hint: str) -> str:
        if t.id in self.names:
            return self.names[t.id]
        name = self.names[t.id] = self._class_name(t.name, hint)
        lines = [f"class {name}(enum.IntEnum):", f'    """enum {t.name or "(anonymous)"}"""', ""]
        seen: set[str] = set()
        for v in t.values:
            member = py_name(v.name)
            if member in seen or member.startswith("_") or not _IDENT.fullmatch(member):
                continue
            seen.add(member)
            lines.append(f"    {member} = {v.value}")
        self.blocks.append("\n".join(lines))
        return name

    def record(self, t: Struct | Union, hint: str) -> str:
        if t.id in self.names:
            return self.names[t.id]
        name = self.names[t.id] = self._class_name(t.name, hint)
        fields = self._fields(t, name)
        kind = "struct" if isinstance(t, Struct) else "union"
        lines = ["@dataclass(frozen=True, slots=True)", f"class {name}:",
                 f'    """{kind} {t.name or "(anonymous)"}"""', ""]
        renamed = {py: c for py, c, _ in fields if py != c}
        if renamed:
            lines.append(f"    _ecc_names: ClassVar[dict[str, str]] = {renamed!r}")
        for py, _, (annotation, default) in fields:
            lines.append(f"    {py}: {annotation} = {default}")
        if not fields:
            lines.append("    pass")
        self.blocks.append("\n".join(lines))
        return name

    def _fields(self, t: Struct | Union, owner: str) -> list[tuple[str, str, tuple[str, str]]]:
        out: list[tuple[str, str, tuple[str, str]]] = []
        seen: set[str] = set()
        for m in t.members:
            target = self.btf[skip_mods_and_typedefs(self.btf, m.type)]
            if not m.name:
                if not m.bitfield_size and isinstance(target, Struct | Union):
                    for item in self._fields(target, owner):
                        if item[0] not in seen:
                            seen.add(item[0])
                            out.append(item)
                continue
            py = py_name(_checked(m.name, f"member of {self.btf.describe(t.id)}"))
            if py in seen:
                continue
            seen.add(py)
            if m.bitfield_size and isinstance(target, Int):
                annotation = "bool" if target.bool else "int"
            else:
                annotation = self.expr(m.type, owner + "_" + m.name)
            out.append((py, m.name, (annotation, _default(annotation))))
        return out


def _checked(name: str, what: str) -> str:
    # Names go into the module's source: only identifiers, so BTF cannot write code there.
    if not _IDENT.fullmatch(name):
        raise CompileError(f"--py-skel: {what} {name!r} is not a C identifier")
    return name


def _default(annotation: str) -> str:
    if annotation.endswith(" | int") or annotation == "int":
        return "0"
    simple = {"bool": "False", "str": '""', "bytes": 'b""', "float": "0.0"}
    if annotation in simple:
        return simple[annotation]
    if annotation.startswith("tuple["):
        return "()"
    return f"field(default_factory={annotation})"


# --- options --------------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _options(meta: Mapping[str, Any], obj: BpfObject, btf: Btf,
             types: _Types) -> list[tuple[str, str, str, str, str]]:
    """(python name, C name, annotation, default literal, help) per settable option."""
    out = []
    for section in meta.get("bpf_skel", {}).get("data_sections") or []:
        name = section.get("name")
        if name == ".kconfig" or not isinstance(name, str):
            continue
        datasec = btf.by_name(name, Kind.DATASEC)
        sec = obj.section(name)
        if not isinstance(datasec, Datasec) or sec is None:
            continue
        offsets = {s.name: s.value for s in obj.symbols if s.section_index == sec.index}
        by_name: dict[str, tuple[Var, int]] = {}
        for info in datasec.vars:
            var = btf[info.type]
            if isinstance(var, Var):
                by_name.setdefault(var.name, (var, offsets.get(var.name, info.offset)))
        for entry in section.get("variables") or []:
            c_name = str(entry.get("name", ""))
            if c_name.startswith(DUMMY_PREFIX) or c_name not in by_name:
                continue
            var, offset = by_name[c_name]
            option = _option(entry, var, offset, obj.data_sections.get(name, b""), btf, types)
            if option is not None:
                out.append(option)
    return out


def _option(entry: Mapping[str, Any], var: Var, offset: int, data: bytes, btf: Btf,
            types: _Types) -> tuple[str, str, str, str, str] | None:
    _checked(var.name, "global variable")
    t = btf[skip_mods_and_typedefs(btf, var.type)]
    cmdarg = entry.get("cmdarg") if isinstance(entry.get("cmdarg"), Mapping) else {}
    assert isinstance(cmdarg, Mapping)
    annotated = cmdarg.get("default")
    if annotated is None:
        annotated = entry.get("value")
    help_text = cmdarg.get("help")
    if help_text is None:
        help_text = entry.get("description") or ""
    if isinstance(t, Int) and t.size <= 16:
        order = btf.byte_order
        raw = int.from_bytes(data[offset:offset + t.size] or bytes(t.size), order,
                             signed=t.signed and not t.bool)
        if t.bool:
            value: Any = _bool(annotated) if annotated is not None else raw != 0
            return py_name(var.name), var.name, "bool", repr(value), str(help_text)
        value = _int(annotated) if annotated is not None else raw
        return py_name(var.name), var.name, "int", repr(value), str(help_text)
    if isinstance(t, Enum | Enum64):
        cls = types.enum(t, var.name)
        raw = int.from_bytes(data[offset:offset + t.size] or bytes(t.size), btf.byte_order,
                             signed=t.signed)
        value = _enum(t, annotated) if annotated is not None else raw
        named = [py_name(v.name) for v in t.values if v.value == value]
        shown = (f"{cls}.{named[0]}" if named and _IDENT.fullmatch(named[0])
                 and not named[0].startswith("_") else repr(value))
        return py_name(var.name), var.name, f"{cls} | int", shown, str(help_text)
    if isinstance(t, Float) and t.size in (4, 8):
        import struct

        code = ("<" if btf.byte_order == "little" else ">") + ("f" if t.size == 4 else "d")
        chunk = data[offset:offset + t.size] or bytes(t.size)
        value = _float(annotated) if annotated is not None else struct.unpack(code, chunk)[0]
        return py_name(var.name), var.name, "float", repr(value), str(help_text)
    if isinstance(t, Array) and t.nelems > 0:
        elem = btf[skip_mods_and_typedefs(btf, t.type)]
        if isinstance(elem, Int) and elem.size == 1 and (elem.char or elem.name == "char"):
            chunk = data[offset:offset + t.nelems]
            text = chunk.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            value = str(annotated) if annotated is not None else text
            return py_name(var.name), var.name, "str", repr(value), str(help_text)
    return None  # structs, pointers, other arrays: not options (ecc run shows them unsettable)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip(), 0)
    except ValueError:
        raise CompileError(f"--py-skel: option default {value!r} is not an integer") from None


def _float(value: Any) -> float:
    try:
        text = str(value).strip()
        return float.fromhex(text) if "0x" in text.lower() else float(text)
    except ValueError:
        raise CompileError(f"--py-skel: option default {value!r} is not a number") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool | int):
        return bool(value)
    word = str(value).strip().lower()
    if word in _TRUE | _FALSE:
        return word in _TRUE
    raise CompileError(f"--py-skel: option default {value!r} is not true or false")


def _enum(t: Enum | Enum64, value: Any) -> int:
    if isinstance(value, str):
        for v in t.values:
            if v.name == value or v.name.lower() == value.lower():
                return v.value
    return _int(value)


# --- the module -------------------------------------------------------------------------

def skeleton_source(object_bytes: bytes, meta: Mapping[str, Any], package_text: str,
                    stem: str) -> str:
    """The text of ``<stem>_skel.py`` for a package whose document is ``package_text``."""
    obj = read_object(object_bytes)
    if obj.btf is None:
        raise CompileError("--py-skel: the object has no BTF to type the skeleton with")
    btf = parse_btf(obj.btf)
    obj_name = stem
    program = camel(stem)
    maps_class = program + "Maps"
    types = _Types(btf, {program, maps_class, program + "Variables"})
    exports = [(str(e["name"]), types.record(_struct(btf, e["type_id"]), str(e["name"])))
               for e in meta.get("export_types") or []]
    maps = _maps(btf, types)
    options = _options(meta, obj, btf, types)
    event_type = " | ".join(_carried(meta, btf, types)) or "ecc.Event"
    body = "\n".join(types.blocks)
    imports = ["import enum\n"] if "(enum.IntEnum)" in body else []
    imports.append("from dataclasses import dataclass, field" if "field(" in body else
                   "from dataclasses import dataclass")
    variables_class = program + "Variables"
    parts = [_header(obj_name, program, options, "".join(imports)), *types.blocks,
             _maps_class(maps_class, obj_name, maps),
             _variables_class(variables_class, obj_name, options, _frozen_names(meta)),
             _program_class(program, maps_class, obj_name, event_type, exports, options,
                            package_text, variables_class)]
    return "\n\n\n".join(parts) + "\n"


def _carried(meta: Mapping[str, Any], btf: Btf, types: _Types) -> list[str]:
    """The classes of what the ring/perf buffers carry, as ``ecc run`` reads them:
    a map's ``export_config`` type, else the package's first export type."""
    defs = map_defs(btf)
    exports = meta.get("export_types") or []
    found: dict[str, None] = {}
    for entry in meta.get("bpf_skel", {}).get("maps") or []:
        d = defs.get(str(entry.get("name")))
        config = entry.get("export_config")
        if d is None or d.type not in _BUFFER_MAPS or config == "no_export":
            continue
        if isinstance(config, dict) and isinstance(config.get("btf_type_id"), int):
            type_id = config["btf_type_id"]
        elif exports:
            type_id = exports[0]["type_id"]
        else:
            found["ecc.Event"] = None
            continue
        found[types.record(_struct(btf, type_id), "event")] = None
    return list(found)


def _struct(btf: Btf, type_id: Any) -> Struct | Union:
    t = btf[skip_mods_and_typedefs(btf, int(type_id))]
    if not isinstance(t, Struct | Union):
        raise CompileError(f"--py-skel: export type {btf.describe(int(type_id))} is not a "
                           "struct or union")
    return t


def _maps(btf: Btf, types: _Types) -> list[tuple[str, str, str]]:
    """(map name, key type, value type) per map a Program exposes."""
    out = []
    for name, d in map_defs(btf).items():
        if d.type in _BUFFER_MAPS or not _IDENT.fullmatch(name):
            continue
        key = "bytes" if d.key_id is None else types.expr(d.key_id, name + "_key")
        value = "bytes" if d.value_id is None else types.expr(d.value_id, name + "_value")
        if d.type in _PERCPU_MAPS:
            value = f"list[{value}]"
        out.append((name, key, value))
    return out


def _header(obj_name: str, program: str, options: Sequence[tuple[str, ...]],
            imports: str) -> str:
    example = ", ".join(f"{py}={default}" for py, _, _, default, _ in options[:1])
    return f'''"""Typed skeleton of the eBPF program {obj_name}, written by ``ecc build --py-skel``.

Do not edit: build again instead. The package is inside; ``ecc`` is all it needs::

    from {_module_stem(obj_name)}_skel import {program}

    with {program}.load({example}) as prog:
        prog.attach()
        for event in prog.events(timeout=5.0):
            print(event)
"""

from __future__ import annotations

{imports}
from typing import ClassVar

import ecc
from ecc.api.skeleton import TypedVariables'''


def _maps_class(name: str, obj_name: str, maps: Sequence[tuple[str, str, str]]) -> str:
    lines = [f"class {name}:", f'    """The maps of {obj_name}, keys and values typed."""', ""]
    lines += [f"    {py_name(m)}: ecc.TypedMap[{k}, {v}]" for m, k, v in maps]
    lines += [""] if maps else []
    lines += ["    def __init__(self, program: ecc.Program) -> None:"]
    lines += [f"        self.{py_name(m)} = ecc.TypedMap(program.maps[{m!r}], {k}, {v})"
              for m, k, v in maps] or ["        pass"]
    return "\n".join(lines)


def _frozen_names(meta: Mapping[str, Any]) -> set[str]:
    """The variables of sections the kernel freezes at load (``.rodata``, ``.rodata.*``)."""
    out = set()
    for section in meta.get("bpf_skel", {}).get("data_sections") or []:
        name = str(section.get("name"))
        if frozen_at_load(name):
            out |= {str(v.get("name")) for v in section.get("variables") or []}
    return out


def _variables_class(name: str, obj_name: str, options: Sequence[tuple[str, ...]],
                     frozen: set[str]) -> str:
    """One property per option variable, typed as ``load()`` takes it; a setter
    only where the section stays writable after load."""
    lines = [f"class {name}(TypedVariables):",
             f'    """The global variables of {obj_name}, live in the kernel '
             '(``skel->bss->var`` in C)."""']
    for py, c_name, annotation, _, help_text in options:
        if py.startswith("_"):
            continue  # the base class's own names start with one
        lines += ["", "    @property", f"    def {py}(self) -> {annotation}:",
                  f'        """{_doc(help_text) or "(no help text)"}"""',
                  f"        value: {annotation} = self._ecc_get({c_name!r}, {annotation})",
                  "        return value"]
        if c_name not in frozen:
            lines += ["", f"    @{py}.setter", f"    def {py}(self, value: {annotation}) -> None:",
                      f"        self._ecc_set({c_name!r}, value)"]
    return "\n".join(lines)


def _program_class(name: str, maps_class: str, obj_name: str, event_type: str,
                   exports: Sequence[tuple[str, str]], options: Sequence[tuple[str, ...]],
                   package_text: str, variables_class: str) -> str:
    encoded = base64.b64encode(package_text.encode()).decode()
    chunks = [encoded[i:i + _PACKAGE_LINE] for i in range(0, len(encoded), _PACKAGE_LINE)]
    package = "\n".join(f'        "{c}"' for c in chunks) or '        ""'
    params = "".join(f"        {py}: {annotation} = {default},\n"
                     for py, _, annotation, default, _ in options)
    docs = "".join(f"        {py}: {_doc(text) or '(no help text)'} (default {_doc(default)})\n"
                   for py, _, _, default, text in options) or "        (no options)\n"
    values = ", ".join(f"{c!r}: {py}" for py, c, *_ in options)
    types = ", ".join(f"{c!r}: {cls}" for c, cls in exports)
    return f'''class {name}(ecc.Skeleton[{event_type}, {maps_class}]):
    """The program {obj_name}: ``load()`` it, ``attach()``, read ``events()`` and ``maps``."""

    PACKAGE: ClassVar[str] = (
{package}
    )
    EVENT_TYPES: ClassVar[dict[str, type]] = {{{types}}}
    MAPS: ClassVar[type] = {maps_class}
    VARIABLES: ClassVar[type[TypedVariables]] = {variables_class}
    variables: {variables_class}

    @classmethod
    def load(
        cls,
        *,
{params}        btf_custom_path: str | None = None,
    ) -> {name}:
        """Load {obj_name} into the kernel with these option values; nothing is attached yet.

{docs}        """
        return cls._open({{{values}}}, btf_custom_path=btf_custom_path)'''


def _doc(text: str) -> str:
    """``text`` inside a docstring: one line, no escapes or quotes that end it."""
    return " ".join(text.replace("\\", "\\\\").replace('"', '\\"').split())


def write_py_skeleton(folder: str, stem: str, object_bytes: bytes, meta: Mapping[str, Any],
                      package_text: str) -> str:
    """Write ``<stem>_skel.py`` into ``folder``; its path."""
    from ..package import write_atomic

    path = skeleton_path(folder, stem)
    write_atomic(path, skeleton_source(object_bytes, meta, package_text, stem))
    return path
