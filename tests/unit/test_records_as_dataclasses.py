"""The records that replaced dataclasses on the build and run paths behave as those
dataclasses did: each is checked against a real dataclass of the same fields, defaults
and flags (the oracle), as tests/unit/test_btf_records.py does for the BTF types."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from ecc.btf.canon import Canonical, _ExtInfo
from ecc.compiler.result import BuildResult, Compiled
from ecc.compiler.strip import _Section
from ecc.doc_comments.records import Diagnostic, DocComment
from ecc.elf import BpfObject
from ecc.package.source import LoadedPackage
from ecc.record import MutableRecord, Record, replace
from ecc.run.btfarchive import BtfChoice, Host
from ecc.run.options import OptionSpec
from ecc.run.runoptions import DEFAULT_PERF_FREQ, RunOptions

_NONE = dataclasses.MISSING
Field = tuple[str, Any]  # (name, default); a callable default is a default_factory


def _oracle(name: str, fields: list[Field], frozen: bool,
            unhashed: tuple[str, ...] = ()) -> Any:
    spec = []
    for field_name, default in fields:
        kw: dict[str, Any] = {"hash": False} if field_name in unhashed else {}
        if callable(default):
            kw["default_factory"] = default
        elif default is not _NONE:
            kw["default"] = default
        spec.append((field_name, Any, dataclasses.field(**kw)))
    return dataclasses.make_dataclass(name, spec, frozen=frozen)


def _required(*names: str) -> list[Field]:
    return [(n, _NONE) for n in names]


_OPTION_SPEC = _required("section", "var", "long", "short", "help", "type_name", "type_id",
                         "default", "kind", "choices", "offset", "size") + [
    ("signed", False), ("choice_values", ()), ("byte_order", "little"), ("section_size", 0),
    ("default_bytes", None), ("default_source", "initial")]
_RUN_OPTIONS = [("json", False), ("duration", None), ("strict", False), ("btf_custom_path", None),
                ("section_values", dict), ("perf_freq", DEFAULT_PERF_FREQ), ("max_events", None),
                ("ifindex", None), ("replace", False), ("cgroup", None), ("uprobe_binary", None),
                ("uprobe_function", None), ("uprobe_pid", -1), ("event_sink", None),
                ("lost_sink", None), ("printk", False)]
_BUILD_RESULT = _required("outputs", "meta", "object_bytes") + [
    ("warnings", list), ("diagnostics", ""), ("timings", dict), ("arch", ""),
    ("sources", list), ("inputs", list), ("commands", list)]
_OBJ = BpfObject(True, (), (), None, None)

# (class, its fields as the dataclass had them, frozen, fields left out of the hash,
#  one value per required field)
CASES: list[tuple[type, list[Field], bool, tuple[str, ...], dict[str, Any]]] = [
    (Diagnostic, _required("line", "message"), True, (), {"line": 3, "message": "m"}),
    (DocComment, _required("line", "decl_line", "candidates", "annotations", "keys_lines",
                           "warnings") + [("lines", ())], True, ("annotations", "keys_lines"),
     {"line": 1, "decl_line": 2, "candidates": ("x",), "annotations": {"a": 1},
      "keys_lines": {"a": 1}, "warnings": (Diagnostic(1, "w"),)}),
    (Canonical, _required("btf", "ext", "type_map", "type_id_insns", "_old_starts",
                          "_new_starts", "_old_end"), True, (),
     {"btf": b"b", "ext": None, "type_map": (0, 1), "type_id_insns": (), "_old_starts": (0,),
      "_new_starts": (0,), "_old_end": 16}),
    (_ExtInfo, _required("type_id_offsets", "string_offsets", "type_ids", "core_relos"), True,
     (), {"type_id_offsets": (4,), "string_offsets": (8,), "type_ids": (1,),
          "core_relos": ((0, 8, 0, 4),)}),
    (Host, _required("os_id", "version_id", "machine", "release"), True, (),
     {"os_id": "debian", "version_id": "12", "machine": "x86_64", "release": "6.1"}),
    (BtfChoice, _required("name", "path"), True, (), {"name": None, "path": "/x"}),
    (OptionSpec, _OPTION_SPEC, True, (),
     {"section": ".rodata", "var": "v", "long": "v", "short": None, "help": "", "type_name": "int",
      "type_id": 1, "default": 0, "kind": "int", "choices": (), "offset": 0, "size": 4}),
    (LoadedPackage, _required("origin", "object_bytes", "meta", "elf", "btf")
     + [("btf_archive", None)], True, (),
     {"origin": "p", "object_bytes": b"o", "meta": {"bpf_skel": {"obj_name": "n"}}, "elf": _OBJ,
      "btf": None}),
    (RunOptions, _RUN_OPTIONS, False, (), {}),
    (BuildResult, _BUILD_RESULT, False, (),
     {"outputs": ["a"], "meta": {"m": 1}, "object_bytes": b"o"}),
    (Compiled, _required("object_bytes", "diagnostics", "depends", "flags", "path_map")
     + [("hashing", list)], False, (),
     {"object_bytes": b"o", "diagnostics": "", "depends": ["d"], "flags": ["-O2"],
      "path_map": None}),
    (_Section, _required("index", "name", "fields", "data"), False, (),
     {"index": 1, "name": ".text", "fields": [0] * 10, "data": b"\x00"}),
]
IDS = [c[0].__name__ for c in CASES]


def _hash_or_error(make: Callable[[], Any]) -> Any:
    try:
        return hash(make())
    except TypeError as exc:
        return str(exc).split("'")[1]  # the unhashable type's name


@pytest.mark.parametrize(("cls", "fields", "frozen", "unhashed", "given"), CASES, ids=IDS)
def test_record_is_what_its_dataclass_was(cls: type, fields: list[Field], frozen: bool,
                                          unhashed: tuple[str, ...],
                                          given: dict[str, Any]) -> None:
    like = _oracle(cls.__name__, fields, frozen, unhashed)
    assert issubclass(cls, Record if frozen else MutableRecord)
    ours, theirs = cls(**given), like(**given)
    assert cls._fields == tuple(f.name for f in dataclasses.fields(like))  # type: ignore[attr-defined]
    # Defaults (and fresh containers from factories) as the dataclass gives them.
    for f in dataclasses.fields(like):
        assert getattr(ours, f.name) == getattr(theirs, f.name), f.name
    assert repr(ours).replace(cls.__qualname__, "X") == repr(theirs).replace(like.__qualname__, "X")
    # Positional construction in field order, equality by field, not with another class.
    values = [getattr(theirs, f.name) for f in dataclasses.fields(like)]
    assert cls(*values) == ours and ours != theirs and (ours == theirs) is False
    assert cls.__match_args__ == like.__match_args__
    if frozen:
        assert _hash_or_error(lambda: cls(**given)) == _hash_or_error(lambda: like(**given))
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(ours, cls._fields[0], 1)  # type: ignore[attr-defined]
        assert replace(ours) == ours
    else:
        assert cls.__hash__ is None and like.__hash__ is None
        setattr(ours, cls._fields[0], "changed")  # type: ignore[attr-defined]
        setattr(theirs, cls._fields[0], "changed")
        assert repr(ours).replace(cls.__qualname__, "X") == repr(theirs).replace(
            like.__qualname__, "X")
        assert ours != cls(**given)
    again = pickle.loads(pickle.dumps(ours))
    assert again == ours and copy.copy(ours) == ours and copy.deepcopy(ours) == ours


@pytest.mark.parametrize(("cls", "fields", "frozen", "unhashed", "given"), CASES, ids=IDS)
def test_factory_defaults_are_not_shared(cls: type, fields: list[Field], frozen: bool,
                                         unhashed: tuple[str, ...],
                                         given: dict[str, Any]) -> None:
    for name, default in fields:
        if callable(default):
            assert getattr(cls(**given), name) is not getattr(cls(**given), name), name


def test_doc_comment_hash_leaves_out_its_mappings() -> None:
    one = DocComment(1, 2, ("x",), {"a": 1}, {"a": 1}, ())
    other = DocComment(1, 2, ("x",), {"a": 2}, {"a": 5}, ())
    assert hash(one) == hash(other) and one != other


def test_replace_keeps_the_defaults_given() -> None:
    spec = CASES[IDS.index("OptionSpec")][4]
    changed = replace(OptionSpec(**spec, signed=True), default=7)
    assert (changed.default, changed.signed, changed.default_source) == (7, True, "initial")
    package = LoadedPackage(**CASES[IDS.index("LoadedPackage")][4])
    assert package.obj_name == "n"
    assert replace(package, btf_archive={"a": b""}).btf_archive == {"a": b""}
