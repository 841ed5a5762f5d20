"""Object + BTF + doc comments -> the ``meta`` object of a package (spec section 3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..btf import Btf, Kind, member_type_str, type_str
from ..btf.types import Datasec, Struct, Var
from ..elf import SHT_NOBITS, SHT_PROGBITS, STB_LOCAL, STT_FUNC, BpfObject
from ..errors import EccError, ElfError
from . import names
from .exports import ExportSpec, exported_struct_names

# Internal maps libbpf creates, keyed by the section-name test it applies.
_DATA_PREFIXES = (".data", ".rodata")
_BSS_PREFIX = ".bss"
KCONFIG = ".kconfig"
LICENSE_VAR = "LICENSE"
# Keys that a doc comment must not overwrite: they are the entry's identity.
_RESERVED = {
    "prog": {"name", "attach", "link"},
    "map": {"name", "ident", "mmaped"},
    "var": {"name", "type"},
}


def is_internal_map_section(sec_name: str, sec_type: int, size: int) -> bool:
    """libbpf's test (bpf_object__elf_collect) for a section that becomes an internal map."""
    if size == 0:
        return False
    if sec_type == SHT_PROGBITS:
        return any(sec_name == p or sec_name.startswith(p + ".") for p in _DATA_PREFIXES)
    if sec_type == SHT_NOBITS:
        return sec_name == _BSS_PREFIX or sec_name.startswith(_BSS_PREFIX + ".")
    return False


def _datasec(btf: Btf | None, name: str) -> Datasec | None:
    if btf is None:
        return None
    found = btf.by_name(name, Kind.DATASEC)
    return found if isinstance(found, Datasec) else None


def _datasec_vars(btf: Btf, sec: Datasec) -> list[Var]:
    out = []
    for info in sec.vars:
        var = btf[info.type]
        if isinstance(var, Var):
            out.append(var)
    return out


def collect_progs(obj: BpfObject) -> list[dict[str, Any]]:
    """Programs in libbpf's order: section index, then offset in the section."""
    exec_secs = {s.index: s for s in obj.sections if s.executable and s.name != ".text"}
    found = []
    for sym in obj.symbols:
        sec = exec_secs.get(sym.section_index)
        if sec is None or sym.type != STT_FUNC:
            continue
        if sym.bind == STB_LOCAL:
            raise ElfError(
                f"program '{sym.name}' in section '{sec.name}' is static; libbpf only loads "
                f"global programs: remove 'static' from its definition"
            )
        found.append((sec.index, sym.value, sym.name, sec.name))
    found.sort()
    return [{"name": name, "attach": attach, "link": True} for _, _, name, attach in found]


def collect_maps(
    obj: BpfObject, btf: Btf | None, object_name: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(maps, data_sections) in libbpf's order: .maps, then global data sections, then .kconfig."""
    maps: list[dict[str, Any]] = []
    data_sections: list[dict[str, Any]] = []
    if obj.section("maps") is not None:
        raise ElfError(
            "legacy 'maps' section found; libbpf 1.x only accepts BTF-defined maps: "
            "declare them as struct { ... } name SEC(\".maps\")"
        )
    if obj.section(".maps") is not None:
        sec = _datasec(btf, ".maps")
        if sec is None or btf is None:
            raise ElfError("section .maps has no BTF description; compile with -g")
        for var in _datasec_vars(btf, sec):
            maps.append({"name": var.name, "ident": var.name})

    def add_internal(sec_name: str, always_mmaped: bool = False) -> None:
        entry: dict[str, Any] = {
            "name": names.internal_map_lookup_name(object_name, sec_name),
            "ident": names.section_ident(sec_name),
        }
        ds = _datasec(btf, sec_name)
        variables = [v for v in _datasec_vars(btf, ds)] if ds is not None and btf else []
        exported = [v for v in variables if v.linkage != 0]
        if exported or always_mmaped:
            entry["mmaped"] = True
            assert btf is not None
            data_sections.append({
                "name": sec_name,
                "variables": [
                    {"name": v.name, "type": type_str(btf, v.type, strip_mods=True)}
                    for v in exported
                ],
            })
        maps.append(entry)

    for s in obj.sections:
        if is_internal_map_section(s.name, s.type, s.size):
            add_internal(s.name)
    kconfig = _datasec(btf, KCONFIG)
    if kconfig is not None and kconfig.vars:
        add_internal(KCONFIG, always_mmaped=True)
    return maps, data_sections


def collect_export_types(btf: Btf | None, spec: ExportSpec) -> list[dict[str, Any]]:
    out = []
    for struct_name in spec.struct_names:
        found = btf.by_name(struct_name, Kind.STRUCT) if btf is not None else None
        if not isinstance(found, Struct):
            raise EccError(
                f"struct {struct_name} from {spec.header} is not in the compiled object's BTF; "
                f"make sure the program includes {spec.header} and defines struct {struct_name}"
            )
        out.append({
            "name": struct_name,
            "size": found.size,
            "type_id": found.id,
            "members": [
                {"name": m.name, "type": member_type_str(btf, m.type)}  # type: ignore[arg-type]
                for m in found.members
            ],
        })
    return out


def build_meta(
    obj: BpfObject,
    btf: Btf | None,
    *,
    object_name: str,
    version: str,
    export: ExportSpec | None,
) -> dict[str, Any]:
    maps, data_sections = collect_maps(obj, btf, object_name)
    skel: dict[str, Any] = {
        "obj_name": object_name,
        "maps": maps,
        "progs": collect_progs(obj),
        "data_sections": data_sections,
    }
    meta: dict[str, Any] = {"bpf_skel": skel}
    if export is not None:
        meta["export_types"] = collect_export_types(btf, export)
    meta["eunomia_version"] = version
    return meta


def entity_index(meta: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Name -> (kind, the entry annotations go into), for every annotatable entity.

    Programs win over maps, maps over variables, when a name is somehow both.
    Internal maps are not annotatable by name: their names always hold a dot.
    """
    skel = meta["bpf_skel"]
    index: dict[str, tuple[str, dict[str, Any]]] = {}
    for section in skel["data_sections"]:
        for var in section["variables"]:
            index.setdefault(var["name"], ("var", var))
    for m in skel["maps"]:
        if m["name"] == m["ident"]:
            index[m["ident"]] = ("map", m)
    for p in skel["progs"]:
        index[p["name"]] = ("prog", p)
    return index


def reserved_keys(kind: str) -> set[str]:
    return _RESERVED[kind]


__all__: Sequence[str] = (
    "ExportSpec", "build_meta", "collect_export_types", "collect_maps", "collect_progs",
    "entity_index", "exported_struct_names", "is_internal_map_section",
)
