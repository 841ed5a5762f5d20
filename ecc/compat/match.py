"""The candidate side of :mod:`ecc.compat.relo`: a relocation's access string walked
through the local types (its spec), and libbpf's rules for which target types match it.

The rules are libbpf's (tools/lib/bpf/relo_core.c): ``bpf_core_parse_spec``,
``bpf_core_spec_match`` and the type-compatibility checks it calls; the module docstring
of :mod:`ecc.compat.relo` sums them up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..btf import Btf, resolve_size, skip_mods_and_typedefs
from ..btf.types import Array, Enum, Enum64, FuncProto, Fwd, Int, Kind, Ptr, Struct, Type, Union
from .btfext import CoreRelo, ReloKind
from .target import TargetBtf, essential_name
from .typematch import TooDeep, types_match

# libbpf's BPF_CORE_SPEC_MAX_LEN: deepest access string it accepts.
SPEC_MAX_LEN = 64


class _Refused(Exception):
    """libbpf would return an error for this relocation (and fail the object)."""


@dataclass
class _Spec:
    btf: Btf
    root: int
    raw: list[int] = field(default_factory=list)
    acc: list[tuple[int, int, str | None]] = field(default_factory=list)  # type id, idx, name
    bit_offset: int = 0


def _candidates(local: Btf, root: Type, target: TargetBtf) -> list[int]:
    """bpf_core_find_cands: same essential name, compatible kind, in id order."""
    tbtf = target.btf
    return [i for i in target.named(essential_name(root.name))
            if _kinds_compat(root.kind, tbtf.kind_of(i))]


def _kinds_compat(a: Kind, b: Kind) -> bool:
    enums = (Kind.ENUM, Kind.ENUM64)
    return a == b or (a in enums and b in enums)


# --- the local side -----------------------------------------------------------------


def _parse_spec(btf: Btf, relo: CoreRelo, kind: ReloKind) -> _Spec:
    """bpf_core_parse_spec: the access string walked through the local types."""
    spec = _Spec(btf, relo.type_id)
    text = relo.access
    if not text or text.startswith(":"):
        raise _Refused(f"bad access string '{text}'")
    if kind.type_based:
        if text != "0":
            raise _Refused(f"type relocation with access string '{text}'")
        return spec
    try:
        spec.raw = [int(part) for part in text.split(":")]
    except ValueError:
        raise _Refused(f"bad access string '{text}'") from None
    if len(spec.raw) > SPEC_MAX_LEN:
        raise _Refused(f"access string '{text}' deeper than {SPEC_MAX_LEN}")
    type_id = skip_mods_and_typedefs(btf, relo.type_id)
    first = spec.raw[0]
    if kind.enumval_based:
        t = btf[type_id]
        if not isinstance(t, Enum | Enum64) or len(spec.raw) > 1 or not 0 <= first < len(
                t.values):
            raise _Refused(f"enum value relocation '{text}' on {btf.describe(type_id)}")
        spec.acc.append((type_id, first, t.values[first].name))
        return spec
    spec.acc.append((type_id, first, None))
    spec.bit_offset = first * resolve_size(btf, type_id) * 8
    for index in spec.raw[1:]:
        t = btf[skip_mods_and_typedefs(btf, type_id)]
        if isinstance(t, Struct | Union):
            if not 0 <= index < len(t.members):
                raise _Refused(f"member {index} of {btf.describe(t.id)} does not exist")
            member = t.members[index]
            spec.bit_offset += member.bit_offset
            if member.name:
                spec.acc.append((t.id, index, member.name))
            type_id = member.type
        elif isinstance(t, Array):
            elem = skip_mods_and_typedefs(btf, t.type)
            if not _is_flex(btf, spec.acc[-1], t) and not 0 <= index < t.nelems:
                raise _Refused(f"index {index} outside {btf.describe(t.id)}")
            spec.acc.append((elem, index, None))
            spec.bit_offset += index * resolve_size(btf, elem) * 8
            type_id = elem
        else:
            raise _Refused(f"access '{text}' goes through {btf.describe(t.id)}")
    return spec


def _is_flex(btf: Btf, acc: tuple[int, int, str | None], arr: Array) -> bool:
    """A zero-length array that is the last member of its struct."""
    type_id, index, name = acc
    if name is None or arr.nelems > 0:
        return False
    t = btf[type_id]
    return isinstance(t, Struct | Union) and index == len(t.members) - 1


# --- matching a candidate -------------------------------------------------------------


def _match(local_spec: _Spec, kind: ReloKind, local: Btf, tbtf: Btf, cand: int,
           ) -> _Spec | None:
    """bpf_core_spec_match: the target spec, or None when this candidate does not fit."""
    spec = _Spec(tbtf, cand)
    if kind.type_based:
        if kind == ReloKind.TYPE_MATCHES:
            try:
                ok = types_match(local, local_spec.root, tbtf, cand)
            except TooDeep:
                raise _Refused("types nest deeper than libbpf matches") from None
        else:
            ok = _types_compat(local, local_spec.root, tbtf, cand, 2)
        return spec if ok else None
    if kind.enumval_based:
        t = tbtf[skip_mods_and_typedefs(tbtf, cand)]
        if not isinstance(t, Enum | Enum64):
            return None
        want = essential_name(local_spec.acc[0][2] or "")
        for index, value in enumerate(t.values):
            if essential_name(value.name) == want:
                spec.acc.append((t.id, index, value.name))
                spec.raw.append(index)
                return spec
        return None
    targ_id = cand
    for i, (local_type, local_idx, local_name) in enumerate(local_spec.acc):
        targ_id = skip_mods_and_typedefs(tbtf, targ_id)
        if local_name is not None:
            found = _match_member(local, local_type, local_idx, tbtf, targ_id, spec)
            if found is None:
                return None
            targ_id = found
            continue
        if i > 0:
            arr = tbtf[targ_id]
            if not isinstance(arr, Array):
                return None
            if not _is_flex(tbtf, spec.acc[-1], arr) and local_idx >= arr.nelems:
                return None
            targ_id = skip_mods_and_typedefs(tbtf, arr.type)
        if len(spec.raw) >= SPEC_MAX_LEN:
            raise _Refused("target access deeper than libbpf allows")
        spec.acc.append((targ_id, local_idx, None))
        spec.raw.append(local_idx)
        spec.bit_offset += local_idx * resolve_size(tbtf, targ_id) * 8
    return spec


def _match_member(local: Btf, local_type: int, local_idx: int, tbtf: Btf, targ_id: int,
                  spec: _Spec, depth: int = 0) -> int | None:
    """bpf_core_match_member: the matched member's type id, the spec extended; or None."""
    t = tbtf[skip_mods_and_typedefs(tbtf, targ_id)]
    if not isinstance(t, Struct | Union):
        return None
    owner = local[local_type]
    assert isinstance(owner, Struct | Union)
    local_member = owner.members[local_idx]
    for i, member in enumerate(t.members):
        if len(spec.raw) >= SPEC_MAX_LEN or depth > SPEC_MAX_LEN:
            raise _Refused("struct nesting deeper than libbpf allows")
        spec.bit_offset += member.bit_offset
        spec.raw.append(i)
        if not member.name:
            found = _match_member(local, local_type, local_idx, tbtf, member.type, spec,
                                  depth + 1)
            if found is not None:
                return found
        elif member.name == local_member.name:
            if not _fields_compat(local, local_member.type, tbtf, member.type):
                return None
            spec.acc.append((t.id, i, member.name))
            return member.type
        spec.bit_offset -= member.bit_offset
        spec.raw.pop()
    return None


def _fields_compat(local: Btf, local_id: int, tbtf: Btf, targ_id: int) -> bool:
    """bpf_core_fields_are_compat."""
    for _ in range(SPEC_MAX_LEN):
        lt = local[skip_mods_and_typedefs(local, local_id)]
        tt = tbtf[skip_mods_and_typedefs(tbtf, targ_id)]
        if isinstance(lt, Struct | Union) and isinstance(tt, Struct | Union):
            return True
        if not _kinds_compat(lt.kind, tt.kind):
            return False
        if lt.kind in (Kind.PTR, Kind.FLOAT):
            return True
        if isinstance(lt, Fwd | Enum | Enum64):
            a, b = essential_name(lt.name), essential_name(tt.name)
            return not a or not b or a == b
        if isinstance(lt, Int) and isinstance(tt, Int):
            return lt.offset == 0 and tt.offset == 0
        if isinstance(lt, Array) and isinstance(tt, Array):
            local_id, targ_id = lt.type, tt.type
            continue
        return False
    raise _Refused("field types nest too deep")


def _types_compat(local: Btf, local_id: int, tbtf: Btf, targ_id: int, level: int) -> bool:
    """__bpf_core_types_are_compat (type existence, size, target id)."""
    if not _kinds_compat(local.kind_of(local_id), tbtf.kind_of(targ_id)):
        return False
    for _ in range(32):
        lt = local[skip_mods_and_typedefs(local, local_id)]
        tt = tbtf[skip_mods_and_typedefs(tbtf, targ_id)]
        if not _kinds_compat(lt.kind, tt.kind):
            return False
        if lt.kind in (Kind.UNKN, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.FWD, Kind.ENUM64):
            return True
        if isinstance(lt, Int) and isinstance(tt, Int):
            return lt.offset == 0 and tt.offset == 0
        if isinstance(lt, Ptr) and isinstance(tt, Ptr):
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, Array) and isinstance(tt, Array):
            local_id, targ_id = lt.type, tt.type
            continue
        if isinstance(lt, FuncProto) and isinstance(tt, FuncProto):
            lparams = [*lt.params] + ([None] if lt.variadic else [])
            tparams = [*tt.params] + ([None] if tt.variadic else [])
            if len(lparams) != len(tparams):
                return False
            for lp, tp in zip(lparams, tparams, strict=True):
                if level <= 0:
                    raise _Refused("function prototypes nest too deep")
                if not _types_compat(local, skip_mods_and_typedefs(local, lp.type if lp else 0),
                                     tbtf, skip_mods_and_typedefs(tbtf, tp.type if tp else 0),
                                     level - 1):
                    return False
            local_id, targ_id = lt.return_type, tt.return_type
            continue
        return False
    raise _Refused("types nest too deep")
