"""Every package the tests build, opened by libbpf itself in the real kernel (issue 3, item 2).

libbpf is the judge of names: it opens the object from memory with
object_name = obj_name, and must find every map and program the package
names, under those names; the programs must load; every export type id must
name a STRUCT of that name with that member count in the object's BTF.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import pytest
from builds import CASES, Built, all_units
from conftest import kernel_config

from ecc.errors import KernelLimitError, LibbpfError

CASE_NAMES = [u.name for u in all_units(CASES)
              if not (CASES / u.name / "expected-error.txt").exists()]
BTF_KIND_STRUCT = 4
# Cases with a typed __ksym variable, and the variable.
NEEDS_KALLSYMS_ALL = {"extern_typed_ksym": "runqueues"}


def _package(case: Built) -> dict[str, Any]:
    assert case.result is not None, case.error
    return json.loads(case.package.read_text())  # type: ignore[no-any-return]


@pytest.mark.kernel
@pytest.mark.parametrize("name", CASE_NAMES)
def test_libbpf_finds_loads_and_agrees(name: str, built: dict[str, Built], kernel: None) -> None:
    from ecc.run.libbpf import BpfObject

    package = _package(built[f"cases/{name}"])
    obj_bytes = zlib.decompress(base64.b64decode(package["bpf_object"]))
    skel = package["meta"]["bpf_skel"]
    with BpfObject.open_mem(obj_bytes, object_name=skel["obj_name"]) as obj:
        assert obj.name == skel["obj_name"][:15]  # libbpf keeps BPF_OBJ_NAME_LEN - 1
        for entry in skel["maps"]:
            found = obj.find_map(entry["name"])
            assert found is not None, f"libbpf finds no map named {entry['name']!r}"
            assert found.is_internal() == ("." in entry["name"])
        # Same maps, same order: nothing libbpf creates is missing from the package.
        assert [m.name for m in obj.maps()] == [
            _libbpf_map_name(e["name"], obj) for e in skel["maps"]]
        assert [(p.name, p.section_name) for p in obj.programs()] == [
            (p["name"], p["attach"]) for p in skel["progs"]]
        for export in package["meta"].get("export_types", []):
            kind, type_name, vlen = obj.btf_type(export["type_id"]) or (0, "", 0)
            assert (kind, type_name, vlen) == (
                BTF_KIND_STRUCT, export["name"], len(export["members"]))
        if name in NEEDS_KALLSYMS_ALL and not kernel_config("CONFIG_KALLSYMS_ALL"):
            # The kernel finds a typed ksym's address only in a full kallsyms.
            with pytest.raises(LibbpfError) as failure:
                obj.load()
            assert ("ldimm64 failed to find the address for kernel symbol "
                    f"'{NEEDS_KALLSYMS_ALL[name]}'") in (failure.value.details or "")
            return
        try:
            obj.load()
        except KernelLimitError as exc:
            pytest.skip(f"kernel limit: this kernel refuses to load it: {exc}")
        for prog in skel["progs"]:
            found_prog = obj.find_program(prog["name"])
            assert found_prog is not None and found_prog.fd >= 0


def _libbpf_map_name(name: str, obj: Any) -> str:
    """bpf_map__name of the map the package names (a long .bss.* shows its kernel name)."""
    found = obj.find_map(name)
    return str(found.name)
