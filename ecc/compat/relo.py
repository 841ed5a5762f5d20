"""CO-RE relocations resolved against a target kernel's BTF, by libbpf's rules.

The rules are libbpf's (tools/lib/bpf/relo_core.c, libbpf.c ``bpf_core_find_cands``),
restated here so that ``ecc check --kernel`` can say, for a kernel it does not
run, what libbpf would do there:

- candidates are the target types whose *essential* name (``___flavor`` cut off)
  equals the local root type's, of a compatible kind (ENUM and ENUM64 mix);
- a field access matches a candidate when every named member is found by name
  (anonymous structs/unions searched through), array indices are in bounds (a
  trailing ``[0]`` array is flexible) and the field types are compatible
  (any two structs/unions, any two pointers, ints without a bit offset, enums
  or forwards of the same essential name or one anonymous, arrays by element);
- several matching candidates must agree (same bit offset, same value), else
  libbpf refuses the whole object;
- with no match, existence relocations answer 0 and type-based ones 0 (a
  program tests them: the guard), while the others poison their instruction
  (``call unknown#195896080``): harmless if the verifier finds it unreachable,
  a load failure otherwise;
- a poisoned instruction is harmless when no path reaches it once the program's
  other relocations are patched (ecc/compat/flow.py): that is a guarded one;
- a load/store whose field changed size is poisoned unless both are pointers
  or both unsigned integers (libbpf's memory-size adjustment).

Candidate lists are kept per local root type and narrowed by each relocation
that matched, in the order of the records, as libbpf's candidate cache does.

Parsing the access string and matching candidates is in ecc/compat/match.py; here are
the values libbpf patches in, the verdicts and the guards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ..btf import Btf, resolve_size, skip_mods_and_typedefs
from ..btf.types import (
    Array,
    Enum,
    Enum64,
    Int,
    Kind,
    Ptr,
    Struct,
    Union,
)
from ..errors import BtfError
from .btfext import INSN_SIZE, CoreRelo, ProgramCode, ReloKind
from .flow import reachable
from .match import _candidates, _match, _parse_spec, _Refused, _Spec
from .target import TargetBtf, essential_name

SHRT_MAX = 32767
# BPF instruction classes that carry a field offset in insn->off.
_MEM_CLASSES = (0x01, 0x02, 0x03)  # LDX, ST, STX
_INT_SIGNED = 1

OK = "ok"              # resolved; value is what libbpf patches in
ABSENT = "absent"      # an existence test answering 0: the program's guard
ZERO = "zero"          # a type-based relocation with no target type: libbpf patches 0
POISONED = "poisoned"  # instruction replaced by an invalid call: fails unless unreachable
ERROR = "error"        # libbpf refuses the whole object ("failed to resolve CO-RE relocation")


@dataclass(frozen=True)
class Resolution:
    relo: CoreRelo
    kind: str          # ReloKind name, e.g. FIELD_BYTE_OFFSET
    access: str        # rendered: task_struct.__state, pid_type::PIDTYPE_TGID, struct mm_struct
    outcome: str       # OK, ABSENT, ZERO, POISONED or ERROR
    value: int | None  # the patched value when not poisoned
    detail: str = ""
    guarded_by: str | None = None  # the existence test that makes a poisoned one unreachable

    @property
    def failing(self) -> bool:
        return self.outcome == ERROR or (self.outcome == POISONED and self.guarded_by is None)

    def as_dict(self) -> dict[str, object]:
        return {"program": self.relo.program, "section": self.relo.section,
                "insn": self.relo.insn_off // 8, "kind": self.kind, "access": self.access,
                "outcome": self.outcome, "value": self.value, "detail": self.detail,
                "guarded_by": self.guarded_by, "failing": self.failing}


class _Poison(Exception):
    """libbpf would poison the instruction (-EUCLEAN)."""


@dataclass(frozen=True)
class _Result:
    poison: bool
    value: int
    size: int = 0
    type_id: int = 0


def lookup_names(local: Btf, relos: Iterable[CoreRelo]) -> set[str]:
    """The essential names a target must be searched for."""
    names: set[str] = set()
    for relo in relos:
        if relo.kind == ReloKind.TYPE_ID_LOCAL:
            continue
        try:
            names.add(essential_name(local[relo.type_id].name))
        except BtfError:
            continue  # reported when resolved
    return names


def resolve_all(local: Btf, relos: Iterable[CoreRelo], target: TargetBtf,
                programs: Mapping[str, ProgramCode]) -> tuple[Resolution, ...]:
    """Each relocation resolved against ``target``; a poisoned one that its program can
    no longer reach there is marked guarded."""
    cache: dict[int, list[int]] = {}
    out = [_resolve(local, relo, target, cache) for relo in relos]
    return tuple(_mark_guards(out, programs))


def render_access(local: Btf, relo: CoreRelo) -> str:
    """The relocation as C would name it: task_struct.__state, pid_type::PIDTYPE_TGID."""
    try:
        return _render(local, relo)
    except (BtfError, ValueError, IndexError):
        return f"[{relo.type_id}] {relo.access}"


def _render(local: Btf, relo: CoreRelo) -> str:
    root = local[relo.type_id]
    name = root.name or "<anon>"
    kind = _kind(relo.kind)
    if kind is not None and kind.type_based:
        word = {Kind.STRUCT: "struct ", Kind.UNION: "union ", Kind.ENUM: "enum ",
                Kind.ENUM64: "enum "}.get(root.kind, "")
        return word + name
    raw = [int(part) for part in relo.access.split(":")]
    if kind is not None and kind.enumval_based:
        enum = local[skip_mods_and_typedefs(local, relo.type_id)]
        if isinstance(enum, Enum | Enum64):
            return f"{name}::{enum.values[raw[0]].name}"
        return f"{name}::#{raw[0]}"
    text = name if raw[0] == 0 else f"{name}[{raw[0]}]"
    type_id = relo.type_id
    for index in raw[1:]:
        t = local[skip_mods_and_typedefs(local, type_id)]
        if isinstance(t, Struct | Union):
            member = t.members[index]
            if member.name:
                text += f".{member.name}"
            type_id = member.type
        elif isinstance(t, Array):
            text += f"[{index}]"
            type_id = t.type
        else:
            break
    return text


def _kind(kind: int) -> ReloKind | None:
    try:
        return ReloKind(kind)
    except ValueError:
        return None


def _resolve(local: Btf, relo: CoreRelo, target: TargetBtf,
             cache: dict[int, list[int]]) -> Resolution:
    access = render_access(local, relo)
    kind = _kind(relo.kind)
    name = kind.name if kind is not None else f"kind {relo.kind}"

    def done(outcome: str, value: int | None, detail: str = "") -> Resolution:
        return Resolution(relo, name, access, outcome, value, detail)

    if kind is None:
        return done(ERROR, None, f"unrecognized CO-RE relocation kind {relo.kind}")
    try:
        spec = _parse_spec(local, relo, kind)
        if kind == ReloKind.TYPE_ID_LOCAL:
            return done(OK, relo.type_id)
        root = local[relo.type_id]
        if not root.name:
            raise _Refused("candidate search needs a named root type")
        if relo.type_id not in cache:
            cache[relo.type_id] = _candidates(local, root, target)
        cands = cache[relo.type_id]
        chosen: tuple[_Result, _Spec] | None = None
        kept: list[int] = []
        for cand in cands:
            cand_spec = _match(spec, kind, local, target.btf, cand)
            if cand_spec is None:
                continue
            result = _calc(kind, relo, spec, cand_spec)
            if chosen is None:
                chosen = (result, cand_spec)
            elif cand_spec.bit_offset != chosen[1].bit_offset:
                raise _Refused(f"field offset ambiguity: {cand_spec.bit_offset} != "
                               f"{chosen[1].bit_offset} bits")
            elif result.poison != chosen[0].poison or result.value != chosen[0].value:
                raise _Refused("relocation decision ambiguity between candidates")
            kept.append(cand)
        if kept:
            cache[relo.type_id] = kept
        if chosen is None:
            result = _calc(kind, relo, spec, None)
            if result.poison:
                return done(POISONED, None, _no_match(target, local, relo, kind))
            outcome = ABSENT if kind.is_guard else ZERO
            return done(outcome, result.value, _no_match(target, local, relo, kind))
        result = chosen[0]
        if result.poison:
            return done(POISONED, None, "the field's load/store size cannot be adjusted "
                        "(not a pointer or unsigned integer)")
        return done(OK, result.value)
    except _Refused as exc:
        return done(ERROR, None, str(exc))
    except BtfError as exc:
        return done(ERROR, None, f"malformed BTF: {exc}")


def _no_match(target: TargetBtf, local: Btf, relo: CoreRelo, kind: ReloKind) -> str:
    try:
        name = essential_name(local[relo.type_id].name)
    except BtfError:
        return "no matching type"
    if not target.named(name):
        return f"the kernel has no type named {name}"
    if kind.enumval_based:
        return f"no enum {name} has that value name"
    if kind.type_based:
        return f"no {name} of a compatible kind"
    return "no candidate has the field (or its type is incompatible)"


# --- values -----------------------------------------------------------------------


def _calc(kind: ReloKind, relo: CoreRelo, local_spec: _Spec, targ: _Spec | None) -> _Result:
    """bpf_core_calc_relo plus the size check bpf_core_patch_insn makes."""
    if kind.field_based:
        try:
            orig = _field_value(kind, local_spec)
            new = _field_value(kind, targ)
        except _Poison:
            return _Result(True, 0)
        memory = kind == ReloKind.FIELD_BYTE_OFFSET and relo.insn[0] & 0x07 in _MEM_CLASSES
        if memory and new.value > SHRT_MAX:
            raise _Refused(f"field offset {new.value} too large for a load/store")
        if memory and targ is not None and orig.size != new.size:
            if not _size_adjustable(local_spec.btf, orig.type_id, targ.btf, new.type_id):
                return _Result(True, 0)
            if new.size not in (1, 2, 4, 8):
                raise _Refused(f"field size {new.size} cannot be loaded")
        return new
    if kind.type_based:
        if targ is None:
            return _Result(False, 0)
        if kind == ReloKind.TYPE_ID_TARGET:
            return _Result(False, targ.root)
        if kind in (ReloKind.TYPE_EXISTS, ReloKind.TYPE_MATCHES):
            return _Result(False, 1)
        return _Result(False, resolve_size(targ.btf, targ.root))
    if kind == ReloKind.ENUMVAL_EXISTS:
        return _Result(False, int(targ is not None))
    if targ is None:
        return _Result(True, 0)
    type_id, index, _ = targ.acc[0]
    enum = targ.btf[type_id]
    assert isinstance(enum, Enum | Enum64)
    return _Result(False, enum.values[index].value & 0xFFFFFFFF)


def _size_adjustable(local: Btf, local_id: int, tbtf: Btf, targ_id: int) -> bool:
    lt, tt = local[local_id], tbtf[targ_id]
    if isinstance(lt, Ptr) and isinstance(tt, Ptr):
        return True
    return (isinstance(lt, Int) and isinstance(tt, Int) and _encoding(lt) != _INT_SIGNED
            and _encoding(tt) != _INT_SIGNED)


def _encoding(t: Int) -> int:
    return int(t.signed) | int(t.char) << 1 | int(t.bool) << 2


def _field_value(kind: ReloKind, spec: _Spec | None) -> _Result:
    """bpf_core_calc_field_relo: the value, and the field's size and type for loads."""
    if kind == ReloKind.FIELD_EXISTS:
        return _Result(False, int(spec is not None))
    if spec is None:
        raise _Poison
    btf = spec.btf
    type_id, index, name = spec.acc[-1]
    if name is None:  # an array element
        size = resolve_size(btf, type_id)
        if kind == ReloKind.FIELD_BYTE_OFFSET:
            return _Result(False, spec.bit_offset // 8, size, type_id)
        if kind == ReloKind.FIELD_BYTE_SIZE:
            return _Result(False, size)
        raise _Refused(f"{kind.name} cannot apply to an array element")
    owner = btf[type_id]
    assert isinstance(owner, Struct | Union)
    member = owner.members[index]
    field_id = skip_mods_and_typedefs(btf, member.type)
    mt = btf[field_id]
    bit_off = spec.bit_offset
    bit_sz = member.bitfield_size
    bitfield = bit_sz > 0
    if bitfield:
        byte_sz = getattr(mt, "size", 0)
        if byte_sz <= 0:
            raise _Refused(f"bitfield of {btf.describe(field_id)}")
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise _Refused("bitfield cannot be read with a 64-bit load")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = resolve_size(btf, field_id)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    if kind == ReloKind.FIELD_BYTE_OFFSET:
        return (_Result(False, byte_off) if bitfield
                else _Result(False, byte_off, byte_sz, field_id))
    if kind == ReloKind.FIELD_BYTE_SIZE:
        return _Result(False, byte_sz)
    if kind == ReloKind.FIELD_SIGNED:
        signed = isinstance(mt, Enum | Enum64) or (isinstance(mt, Int) and mt.signed)
        return _Result(False, int(signed))
    if kind == ReloKind.FIELD_LSHIFT_U64:
        # BPF objects read here are little-endian (the host's); big-endian differs.
        return _Result(False, 64 - (bit_off + bit_sz - byte_off * 8))
    return _Result(False, 64 - bit_sz)


# --- guards ---------------------------------------------------------------------------


def _mark_guards(results: list[Resolution], programs: Mapping[str, ProgramCode],
                 ) -> list[Resolution]:
    """A poisoned instruction no path reaches, once every relocation of its program is
    patched as libbpf would on this kernel, is guarded: the program tested something
    (``bpf_core_field_exists`` and friends) and branches around it."""
    by_program: dict[str, list[Resolution]] = {}
    for res in results:
        by_program.setdefault(res.relo.program, []).append(res)
    guarded: dict[int, str] = {}
    for name, group in by_program.items():
        program = programs.get(name)
        poisoned = {_insn_index(r, program): r for r in group
                    if r.outcome == POISONED and program is not None}
        if not poisoned or program is None:
            continue
        patched: dict[int, int] = {}
        for r in group:
            if r.value is None or r.outcome == ERROR:
                continue
            index = _insn_index(r, program)
            value = r.value & 0xFFFFFFFF  # libbpf writes a u32 into the s32 immediate
            patched[index] = value - (1 << 32) if value >> 31 else value
            if r.relo.insn[:1] == b"\x18":  # ldimm64: libbpf zeroes the high half
                patched[index + 1] = 0
        reached = reachable(program.code, set(poisoned), patched, set(poisoned))
        if reached is None:
            continue
        tests = [f"{r.kind} {r.access} = {r.value}" for r in group
                 if _kind(r.relo.kind) in _GUARD_KINDS and r.value is not None]
        because = "; ".join(tests) if tests else "no existence test; dead code"
        for index, res in poisoned.items():
            if index not in reached:
                guarded[res.relo.index] = f"unreachable on this kernel ({because})"
    return [replace(r, guarded_by=guarded[r.relo.index]) if r.relo.index in guarded else r
            for r in results]


_GUARD_KINDS = {k for k in ReloKind if k.is_guard} | {ReloKind.TYPE_SIZE}


def _insn_index(res: Resolution, program: ProgramCode | None) -> int:
    start = program.start if program is not None else 0
    return (res.relo.insn_off - start) // INSN_SIZE
