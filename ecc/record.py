"""Frozen records without :mod:`dataclasses`: the readers' base class.

``@dataclass`` generates and compiles each class's methods when the module is
imported, and the readers' records (BTF types, the ELF object) are imported by
every ``ecc run`` and ``ecc build`` before they do anything: that compiling
was a large part of their start. :class:`Record` gives what
``@dataclass(frozen=True, slots=True)`` gives, written out once, and
:class:`MutableRecord` what ``@dataclass(slots=True)`` gives.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, ClassVar, NoReturn, TypeVar

# Each record's ``__init__`` sets its fields with this (plain assignment is refused).
set_field = object.__setattr__


class _Fields:
    """What both record kinds share: fields from ``__slots__``, compared (same class
    only), printed and pickled by them, in order."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]]
    _values: ClassVar[attrgetter[tuple[Any, ...]]]

    def __init_subclass__(cls) -> None:
        fields: tuple[str, ...] = cls.__slots__
        if not fields:  # Record and MutableRecord themselves
            return
        cls._fields = fields
        cls._values = attrgetter(fields[0], *fields[1:])  # a tuple: every record has 2+ fields
        setattr(cls, "__match_args__", fields)  # noqa: B010 (mypy refuses the plain assignment)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(self._values(self) == self._values(other))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__qualname__}({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, self._values(self)


class Record(_Fields):
    """Fields are ``__slots__`` set by each class's ``__init__``; instances compare
    (same class only), hash, ``repr``, pickle and ``match`` by them, and refuse
    assignment with ``dataclasses.FrozenInstanceError``. Every record has 2+ fields."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values(self))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")


class MutableRecord(_Fields):
    """What ``@dataclass(slots=True)`` gives: like :class:`Record`, but fields may be
    assigned, and so instances do not hash. Every record has 2+ fields."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]


_R = TypeVar("_R", bound=_Fields)


def replace(record: _R, **changes: Any) -> _R:
    """A copy of ``record`` with ``changes``, as :func:`dataclasses.replace` makes one."""
    values = dict(zip(record._fields, record._values(record), strict=True))
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{record.__class__.__qualname__} has no field {sorted(unknown)[0]!r}")
    return record.__class__(**{**values, **changes})
