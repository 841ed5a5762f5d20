"""Type id -> C declaration text, the way libbpf's btf_dump writes it.

This is ``btf_dump__emit_type_decl``'s algorithm (see the long comment above
it in libbpf ``src/btf_dump.c``): push the chain of types from the outside
in until a terminal type (int, struct, typedef, ...), then pop and print from
the terminal outwards. Qualifiers go left of base types but right of ``*``;
arrays and function prototypes wrap what is left of the chain in
parentheses. With an empty declarator name this gives spec section 4's
strings: ``char[16]``, ``struct S *``, ``int (*)(void *, int)``.

Two deliberate differences from libbpf: anonymous struct/union/enum print
as the bare keyword (libbpf inlines their whole definition), and names are
never de-duplicated with ``___N`` suffixes (that depends on libbpf's
emission order, which a single declaration does not have).
"""

from __future__ import annotations

from ecc.btf.parse import MAX_RESOLVE_DEPTH, Btf
from ecc.btf.types import (
    MODIFIER_KINDS,
    Array,
    Const,
    Enum,
    Enum64,
    Float,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Ptr,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Void,
    Volatile,
)
from ecc.errors import BtfError

__all__ = ["member_type_str", "type_decl", "type_str"]

#: Types visited for one declaration, all nesting included. Real types need
#: a few dozen; the cap stops hostile BTF (prototypes whose parameters are
#: pointers to prototypes, ...) from costing exponential time.
MAX_DECL_NODES = 1 << 14
#: Active decl/chain calls. Arrays nest one call each, prototypes one per
#: parameter level; both are bounded by MAX_RESOLVE_DEPTH, but their product
#: is not, and Python's stack is. Real declarations nest a handful deep.
MAX_DECL_NESTING = 128


def type_str(btf: Btf, type_id: int, *, strip_mods: bool = True) -> str:
    """Spec section 4 string: the declaration of ``type_id`` with no name.

    ``strip_mods`` drops every const/volatile/restrict (and type tag, as
    libbpf does) anywhere in the chain, function parameters included.
    """
    return type_decl(btf, type_id, "", strip_mods=strip_mods)


def member_type_str(btf: Btf, type_id: int) -> str:
    """Spec section 4 ``export_types`` member rule.

    The member's own type decides, not what a typedef resolves to.
    """
    kind = btf.kind_of(type_id)
    if kind in (Kind.STRUCT, Kind.UNION):
        return "composite"
    if kind in (Kind.ENUM, Kind.ENUM64):
        return "enum"
    return type_str(btf, type_id, strip_mods=False)


def type_decl(btf: Btf, type_id: int, name: str = "", *, strip_mods: bool = False) -> str:
    """Declare ``name`` as ``type_id``: ``type_decl(btf, id, "fp")`` gives
    ``int (*fp)(void *, int)``, as bpftool writes a struct member."""
    out: list[str] = []
    _Emitter(btf, strip_mods, out, type_id).decl(type_id, name, 0)
    return "".join(out)


class _Emitter:
    __slots__ = ("btf", "strip_mods", "out", "root", "visited", "nesting")

    def __init__(self, btf: Btf, strip_mods: bool, out: list[str], root: int) -> None:
        self.btf = btf
        self.strip_mods = strip_mods
        self.out = out
        self.root = root
        self.visited = 0
        self.nesting = 0

    def _fail(self, why: str) -> BtfError:
        return BtfError(f"{self.btf.describe(self.root)}: cannot write as C: {why}")

    def _nest(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_DECL_NESTING:
            raise self._fail(f"declaration nests deeper than {MAX_DECL_NESTING}")

    def decl(self, type_id: int, name: str, depth: int) -> None:
        self._nest()
        try:
            self._decl(type_id, name, depth)
        finally:
            self.nesting -= 1

    def chain(self, decls: list[Type], name: str, depth: int) -> None:
        self._nest()
        try:
            self._chain(decls, name, depth)
        finally:
            self.nesting -= 1

    def _decl(self, type_id: int, name: str, depth: int) -> None:
        """libbpf btf_dump_emit_type_decl: collect the chain, then emit it."""
        if depth > MAX_RESOLVE_DEPTH:
            raise self._fail(f"function prototypes nested deeper than {MAX_RESOLVE_DEPTH}")
        stack: list[Type] = []
        for _ in range(MAX_RESOLVE_DEPTH):
            self.visited += 1
            if self.visited > MAX_DECL_NODES:
                raise self._fail(f"declaration needs more than {MAX_DECL_NODES} types")
            t = self.btf[type_id]
            if not (self.strip_mods and t.kind in MODIFIER_KINDS):
                stack.append(t)
            if isinstance(t, Ptr | Volatile | Const | Restrict | TypeTag | Array):
                type_id = t.type
            elif isinstance(t, FuncProto):
                type_id = t.return_type
            elif isinstance(t, Void | Int | Float | Enum | Enum64 | Fwd | Struct | Union | Typedef):
                break
            elif t.id == self.root:
                raise BtfError(f"{self.btf.describe(t.id)}: a {t.kind.name} is not a C type")
            else:
                raise self._fail(f"it refers to {self.btf.describe(t.id)}, which is not a C type")
        else:
            raise self._fail(f"type chain longer than {MAX_RESOLVE_DEPTH} (reference loop?)")
        self.chain(stack, name, depth)

    def _chain(self, decls: list[Type], name: str, depth: int) -> None:
        """libbpf btf_dump_emit_type_chain: pop from the terminal type outwards."""
        out = self.out
        # No space before the first '*' of a bare pointer chain: `int ***`, `(*)`.
        last_was_ptr = True
        while decls:
            t = decls.pop()
            if isinstance(t, Void):
                self.emit_mods(decls)
                out.append("void")
            elif isinstance(t, Int | Float | Typedef):
                self.emit_mods(decls)
                out.append(t.name)
            elif isinstance(t, Struct | Union):
                self.emit_mods(decls)
                out.append("struct" if isinstance(t, Struct) else "union")
                if t.name:
                    out.append(" " + t.name)
            elif isinstance(t, Enum | Enum64):
                self.emit_mods(decls)
                out.append("enum " + t.name if t.name else "enum")
            elif isinstance(t, Fwd):
                self.emit_mods(decls)
                out.append("union" if t.is_union else "struct")
                if t.name:
                    out.append(" " + t.name)
            elif isinstance(t, Ptr):
                out.append("*" if last_was_ptr else " *")
            elif isinstance(t, Volatile):
                out.append(" volatile")
            elif isinstance(t, Const):
                out.append(" const")
            elif isinstance(t, Restrict):
                out.append(" restrict")
            elif isinstance(t, TypeTag):
                self.emit_mods(decls)
                if t.attr:
                    out.append(f" __attribute__(({t.name}))")
                else:
                    out.append(f' __attribute__((btf_type_tag("{t.name}")))')
            elif isinstance(t, Array):
                # Qualifiers on an array itself mean nothing in C (GCC emits
                # them anyway); libbpf drops them and so do we.
                self.drop_mods(decls)
                if not decls:
                    self.emit_name(name, last_was_ptr)
                    out.append(f"[{t.nelems}]")
                    return
                multidim = isinstance(decls[-1], Array)
                if name and not last_was_ptr:
                    out.append(" ")
                if not multidim:
                    out.append("(")
                self.chain(decls, name, depth)
                if not multidim:
                    out.append(")")
                out.append(f"[{t.nelems}]")
                return
            elif isinstance(t, FuncProto):
                # GCC marks noreturn function pointers volatile; drop it like libbpf.
                self.drop_mods(decls)
                if decls:
                    out.append(" (")
                    self.chain(decls, name, depth)
                    out.append(")")
                else:
                    self.emit_name(name, last_was_ptr)
                self.params(t, depth)
                return
            else:  # pragma: no cover - decl() only pushes the kinds above
                raise self._fail(f"{self.btf.describe(t.id)} is not part of a C type")
            last_was_ptr = isinstance(t, Ptr)
        self.emit_name(name, last_was_ptr)

    def params(self, t: FuncProto, depth: int) -> None:
        out = self.out
        # No parameters and a lone "..." (clang's encoding of `(void)`) both print (void).
        if not t.params:
            out.append("(void)")
            return
        out.append("(")
        for i, p in enumerate(t.params):
            if i:
                out.append(", ")
            self.decl(p.type, p.name, depth + 1)
        if t.variadic:
            out.append(", ...")
        out.append(")")

    def emit_mods(self, decls: list[Type]) -> None:
        """Qualifiers right before a base type print to its left: `const char`."""
        while decls:
            t = decls[-1]
            if isinstance(t, Volatile):
                self.out.append("volatile ")
            elif isinstance(t, Const):
                self.out.append("const ")
            elif isinstance(t, Restrict):
                self.out.append("restrict ")
            else:
                return
            decls.pop()

    def drop_mods(self, decls: list[Type]) -> None:
        while decls and decls[-1].kind in MODIFIER_KINDS:
            decls.pop()

    def emit_name(self, name: str, last_was_ptr: bool) -> None:
        if name and not last_was_ptr:
            self.out.append(" ")
        self.out.append(name)
