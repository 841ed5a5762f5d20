"""TYPE_MATCHES (``bpf_core_type_matches``): does a local type match a target type?

The relation is libbpf's (tools/lib/bpf/relo_core.c, ``__bpf_core_types_match``),
restated: modifiers and typedefs are looked through; names must be equal up to
their ``___flavor`` suffix (an anonymous target only matches an anonymous local);
then by kind:

- integers: the same number of bits and signedness;
- pointers and arrays: the pointee or element matches (arrays: same length); past a
  pointer, a struct or union matches any of the same kind, or a forward declaration
  of it, without looking at members;
- structs and unions: the same kind, and every local member has a target member of
  the same name whose type matches;
- enums (ENUM and ENUM64 alike): the same size, and every local enumerator name is
  a target enumerator name (values are not compared);
- forward declarations: the same kind and the same struct/union flag;
- function prototypes: as many parameters, each matching, and the return type;
- any other kind (floats among them) never matches.

libbpf gives up (and fails the object) past 32 nested members or parameters, or 32
steps along one chain of pointers, arrays and return types; so does this module,
by raising :class:`TooDeep`.
"""

from __future__ import annotations

from ..btf import Btf, skip_mods_and_typedefs
from ..btf.types import Array, Enum, Enum64, FuncProto, Fwd, Int, Ptr, Struct, Union, Void
from .target import essential_name

MAX_LEVEL = 32   # nested members and parameters
MAX_CHAIN = 32   # pointers, arrays and return types followed in one go


class TooDeep(Exception):
    """libbpf would return -EINVAL: the types nest deeper than it looks."""


def types_match(local: Btf, local_id: int, target: Btf, targ_id: int) -> bool:
    """Whether ``local_id`` of ``local`` matches ``targ_id`` of ``target``."""
    return _match(local, local_id, target, targ_id, False, MAX_LEVEL)


def _names_match(local_name: str, targ_name: str) -> bool:
    if not targ_name:
        return not local_name
    return essential_name(local_name) == essential_name(targ_name)


def _match(local: Btf, local_id: int, target: Btf, targ_id: int, behind_ptr: bool,
           level: int) -> bool:
    if level <= 0:
        raise TooDeep
    for _ in range(MAX_CHAIN):
        lt = local[skip_mods_and_typedefs(local, local_id)]
        tt = target[skip_mods_and_typedefs(target, targ_id)]
        if not _names_match(lt.name, tt.name):
            return False
        if isinstance(lt, Ptr):
            if not isinstance(tt, Ptr):
                return False
            behind_ptr = True
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, Array):
            if not isinstance(tt, Array) or lt.nelems != tt.nelems:
                return False
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, FuncProto):
            if not isinstance(tt, FuncProto) or not _params_match(local, lt, target, tt,
                                                                   behind_ptr, level):
                return False
            local_id, targ_id = lt.return_type, tt.return_type
            continue
        return _leaf(local, lt, target, tt, behind_ptr, level)
    raise TooDeep


def _params_match(local: Btf, lt: FuncProto, target: Btf, tt: FuncProto, behind_ptr: bool,
                  level: int) -> bool:
    # A variadic prototype ends in a parameter of type 0 (void), which matches only void.
    lparams = [p.type for p in lt.params] + ([0] if lt.variadic else [])
    tparams = [p.type for p in tt.params] + ([0] if tt.variadic else [])
    if len(lparams) != len(tparams):
        return False
    return all(_match(local, lp, target, tp, behind_ptr, level - 1)
               for lp, tp in zip(lparams, tparams, strict=True))


def _leaf(local: Btf, lt: object, target: Btf, tt: object, behind_ptr: bool,
          level: int) -> bool:
    """The kinds that end a chain: void, integers, enums, forwards, structs, unions."""
    if isinstance(lt, Void):
        return isinstance(tt, Void)
    if isinstance(lt, Int):
        return isinstance(tt, Int) and lt.bits == tt.bits and lt.signed == tt.signed
    if isinstance(lt, Enum | Enum64):
        if not isinstance(tt, Enum | Enum64) or lt.size != tt.size:
            return False
        names = [v.name for v in tt.values]
        return len(lt.values) <= len(names) and all(
            any(_names_match(v.name, n) for n in names) for v in lt.values)
    if isinstance(lt, Fwd):
        if isinstance(tt, Fwd):
            return lt.is_union == tt.is_union
        if behind_ptr:
            return (isinstance(tt, Struct) and not lt.is_union) or (
                isinstance(tt, Union) and lt.is_union)
        return False
    if isinstance(lt, Struct | Union):
        if behind_ptr:
            if isinstance(tt, Fwd):
                return tt.is_union == isinstance(lt, Union)
            return _same_kind(lt, tt)
        if not _same_kind(lt, tt):
            return False
        assert isinstance(tt, Struct | Union)
        return _members_match(local, lt, target, tt, level)
    return False


def _same_kind(lt: Struct | Union, tt: object) -> bool:
    return getattr(tt, "kind", None) == lt.kind


def _members_match(local: Btf, lt: Struct | Union, target: Btf, tt: Struct | Union,
                   level: int) -> bool:
    if len(lt.members) > len(tt.members):
        return False
    for lm in lt.members:
        if not any(_names_match(lm.name, tm.name)
                   and _match(local, lm.type, target, tm.type, False, level - 1)
                   for tm in tt.members):
            return False
    return True

