"""ecc.btf.types' records behave as the frozen dataclasses they replace (issue 22).

Callers compare, hash, print, copy and pattern-match BTF types; each of those is
checked here against what ``@dataclass(frozen=True, slots=True)`` gives a class of
the same fields, which serves as the oracle.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from ecc.btf import types as t

# One instance per record class, with every field given.
SAMPLES: list[Any] = [
    t.Void(),
    t.Int(1, "int", 4, True, False, False, 32, 0),
    t.Ptr(2, "", 1),
    t.Array(3, "", 1, 1, 16),
    t.Member("x", 1, 32, 0),
    t.Struct(4, "event", 8, (t.Member("a", 1, 0, 0), t.Member("b", 1, 32, 3))),
    t.Union(5, "u", 4, (t.Member("a", 1, 0, 0),)),
    t.EnumValue("A", -1),
    t.Enum(6, "e", 4, True, (t.EnumValue("A", -1),)),
    t.Enum64(7, "e64", 8, False, (t.EnumValue("B", 1 << 40),)),
    t.Fwd(8, "later", True),
    t.Typedef(9, "u32", 1),
    t.Volatile(10, "", 1),
    t.Const(11, "", 1),
    t.Restrict(12, "", 2),
    t.Func(13, "main", 14, 1),
    t.Param("argc", 1),
    t.FuncProto(14, "", 1, (t.Param("argc", 1),), True),
    t.Var(15, "counter", 1, 1),
    t.VarSecinfo(15, 0, 4),
    t.Datasec(16, ".bss", 4, (t.VarSecinfo(15, 0, 4),)),
    t.Float(17, "double", 8),
    t.DeclTag(18, "tag", 4, -1, True),
    t.TypeTag(19, "user", 2, False),
]


def oracle(record: Any) -> Any:
    """The same value as a frozen, slotted dataclass with the record's fields."""
    fields = type(record)._fields
    cls = dataclasses.make_dataclass(type(record).__name__, fields, frozen=True, slots=True)
    return cls(*(getattr(record, name) for name in fields))


def test_every_kind_has_a_sample() -> None:
    records = {c for c in vars(t).values()
               if isinstance(c, type) and issubclass(c, t.Record) and c is not t.Record}
    assert {type(s) for s in SAMPLES} == records


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_record_is_what_a_frozen_dataclass_was(record: Any) -> None:
    like = oracle(record)
    assert repr(record) == repr(like)
    assert hash(record) == hash(like)
    assert type(record).__match_args__ == type(like).__match_args__
    again = type(record)(*(getattr(record, name) for name in type(record)._fields))
    assert again == record and hash(again) == hash(record) and again is not record
    by_name = type(record)(**{name: getattr(record, name) for name in type(record)._fields})
    assert by_name == record
    # Another class with the same values is not equal, as dataclasses compare classes.
    assert record != like and (record == like) is False
    assert pickle.loads(pickle.dumps(record)) == record
    assert copy.copy(record) == record and copy.deepcopy(record) == record
    assert not hasattr(record, "__dict__")


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_record_is_frozen(record: Any) -> None:
    first = type(record)._fields[0]
    with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot assign to field '{first}'"):
        setattr(record, first, 0)
    with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot delete field '{first}'"):
        delattr(record, first)
    with pytest.raises(AttributeError):
        record.not_a_field = 1


def test_fields_change_equality_and_defaults_hold() -> None:
    assert t.Ptr(2, "", 1) != t.Ptr(2, "", 3)
    assert t.Typedef(9, "a", 1) != t.Const(9, "a", 1)  # same values, another kind
    assert t.Void() == t.Void(0, "") and t.Void().kind is t.Kind.UNKN
    assert t.DeclTag(1, "x", 2, -1).attr is False and t.TypeTag(1, "x", 2).attr is False
    assert t.Struct.kind is t.Kind.STRUCT and t.Member("m", 1, 0, 0) in {t.Member("m", 1, 0, 0)}

