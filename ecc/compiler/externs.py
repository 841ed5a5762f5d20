"""The extern symbols of an object that its BTF leaves out: what a precompiled header loses.

For a BPF target clang writes BTF for an extern (a ``__kconfig`` or ``__ksym``
variable, a kfunc) through a list of extern declarations that Sema keeps beside
the AST, and a precompiled header does not carry that list. So an extern
declared in the precompiled prefix (``LINUX_HAS_BPF_COOKIE`` of usdt.bpf.h, the
kfuncs of bpf_helpers.h or of bpftool's vmlinux.h) and used other than by a
direct call (a read, an address, a cleanup handler) keeps its symbol but loses
its BTF, and libbpf then refuses the object ("failed to find BTF for extern").
A compile without the PCH has it: the build checks, and compiles again.
"""

from __future__ import annotations

from ..btf import Kind, parse_btf
from .strip import undefined_symbols


def externs_without_btf(object_bytes: bytes) -> list[str]:
    """Names of the undefined symbols that no BTF VAR or FUNC describes, sorted."""
    names, btf_bytes = undefined_symbols(object_bytes)
    externs = set(names)
    if not externs:
        return []
    if btf_bytes is None:
        return sorted(externs)
    btf = parse_btf(btf_bytes)
    described = {t.name for t in btf if t.kind in (Kind.VAR, Kind.FUNC)}
    return sorted(externs - described)
