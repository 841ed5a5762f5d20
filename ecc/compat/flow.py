"""Is a poisoned instruction reachable? Constant propagation over one program's code.

libbpf does not refuse a relocation it cannot resolve: it turns the instruction
into ``call unknown#195896080`` and leaves the verdict to the verifier, which
only complains if some path reaches it. ``if (bpf_core_field_exists(f))``
compiles to a register loaded with the relocated answer and a conditional jump
on it; with the answer known (0 or 1 on a given kernel) only one side is
followed, as the verifier's own constant tracking does. So walking every path,
with registers that hold known constants tracked through moves and ALU
operations and jumps decided when both sides are known, finds what the
verifier would reach. Anything not understood makes a register unknown, and a
jump on an unknown register follows both sides: the walk can only find more
reachable code than the verifier, never less.

Calls to subprograms (``bpf-to-bpf``) are not followed; their code is checked
as its own function.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

INSN = 8
# A path walk that long is not worth finishing; the answer is then "reachable".
MAX_STATES = 200_000
_MASK = (1 << 64) - 1
_MASK32 = (1 << 32) - 1

_LD, _LDX, _ST, _STX, _ALU, _JMP, _JMP32, _ALU64 = range(8)
_CALL, _EXIT, _JA = 0x80, 0x90, 0x00
_ATOMIC = 0xC0
_INSN = struct.Struct("<BBhi")

Regs = tuple[int | None, ...]


def reachable(code: bytes, targets: set[int], patched: Mapping[int, int],
              poisoned: set[int]) -> set[int] | None:
    """Which instruction indices of ``targets`` some path from instruction 0 reaches.

    ``patched`` gives the value libbpf writes into an instruction's immediate,
    ``poisoned`` the instructions it replaces by an invalid call (a path that
    reaches one ends there). None when the walk gave up (too many paths).
    """
    count = len(code) // INSN
    decoded = [_INSN.unpack_from(code, i * INSN) for i in range(count)]
    found: set[int] = set()
    seen: set[tuple[int, Regs]] = set()
    start: Regs = (None,) * 10 + (None,)
    stack: list[tuple[int, Regs]] = [(0, start)]
    while stack:
        pc, regs = stack.pop()
        if not 0 <= pc < count or (pc, regs) in seen:
            continue
        seen.add((pc, regs))
        if len(seen) > MAX_STATES:
            return None
        if pc in targets:
            found.add(pc)
        if pc in poisoned:
            continue  # the verifier stops here: that is the failure
        code_byte, reg_byte, off, imm = decoded[pc]
        imm = patched.get(pc, imm)
        dst, src = reg_byte & 0x0F, reg_byte >> 4
        cls = code_byte & 0x07
        op = code_byte & 0xF0
        from_reg = bool(code_byte & 0x08)
        if dst > 10 or src > 10:
            continue  # the verifier rejects the instruction: nothing after it runs
        if cls in (_ALU, _ALU64):
            stack.append((pc + 1, _alu(regs, cls, op, from_reg, dst, src, imm)))
        elif cls == _LD:
            if code_byte == 0x18:  # ldimm64 takes two slots
                high = patched.get(pc + 1, decoded[pc + 1][3] if pc + 1 < count else 0)
                value = None if src else ((imm & _MASK32) | (high & _MASK32) << 32)
                stack.append((pc + 2, _set(regs, dst, value)))
            else:  # legacy packet loads write r0
                stack.append((pc + 1, _set(regs, 0, None)))
        elif cls == _LDX:
            stack.append((pc + 1, _set(regs, dst, None)))
        elif cls == _STX and code_byte & 0xE0 == _ATOMIC:
            stack.append((pc + 1, _set(_set(regs, src, None), 0, None)))
        elif cls in (_ST, _STX):
            stack.append((pc + 1, regs))
        else:
            stack.extend(_jump(regs, pc, cls, op, from_reg, dst, src, off, imm))
    return found


def _set(regs: Regs, reg: int, value: int | None) -> Regs:
    if regs[reg] == value:
        return regs
    out = list(regs)
    out[reg] = value
    return tuple(out)


def _alu(regs: Regs, cls: int, op: int, from_reg: bool, dst: int, src: int, imm: int) -> Regs:
    wide = cls == _ALU64
    operand = regs[src] if from_reg else (imm & _MASK if wide else imm & _MASK32)
    value = operand if op == 0xB0 else _arith(op, regs[dst], operand)  # 0xB0: mov
    if value is not None:
        value &= _MASK if wide else _MASK32
    return _set(regs, dst, value)


def _arith(op: int, a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return None
    if op == 0x00:
        return a + b
    if op == 0x10:
        return a - b
    if op == 0x20:
        return a * b
    if op == 0x40:
        return a | b
    if op == 0x50:
        return a & b
    if op == 0xA0:
        return a ^ b
    if op == 0x60:
        return a << (b & 63)
    if op == 0x70:
        return a >> (b & 63)
    return None  # division, negation, byte swaps...: not needed to decide a guard


def _jump(regs: Regs, pc: int, cls: int, op: int, from_reg: bool, dst: int, src: int,
          off: int, imm: int) -> list[tuple[int, Regs]]:
    if op == _EXIT:
        return []
    if op == _CALL:
        cleared = regs
        for reg in range(6):
            cleared = _set(cleared, reg, None)
        return [(pc + 1, cleared)]
    if op == _JA:
        return [(pc + 1 + (imm if cls == _JMP32 else off), regs)]
    a = regs[dst]
    b = regs[src] if from_reg else imm & _MASK
    taken = (pc + 1 + off, regs)
    fall = (pc + 1, regs)
    if a is None or b is None:
        return [fall, taken]
    bits = 32 if cls == _JMP32 else 64
    mask = (1 << bits) - 1
    ua, ub = a & mask, b & mask
    sa = ua - (1 << bits) if ua >> (bits - 1) else ua
    sb = ub - (1 << bits) if ub >> (bits - 1) else ub
    decide = {0x10: ua == ub, 0x50: ua != ub, 0x20: ua > ub, 0x30: ua >= ub,
              0xA0: ua < ub, 0xB0: ua <= ub, 0x40: bool(ua & ub), 0x60: sa > sb,
              0x70: sa >= sb, 0xC0: sa < sb, 0xD0: sa <= sb}.get(op)
    if decide is None:
        return [fall, taken]
    return [taken] if decide else [fall]
