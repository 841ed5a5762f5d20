"""A loaded program's global variables (``.data``, ``.bss``, ``.rodata``, custom
``.data.*``/``.rodata.*`` sections) read and written by name, as a bpftool
skeleton's ``skel->bss->var`` does in C.

Where a variable lives is what the options already know (``OptionSpec``: its
section, offset, size and BTF type); the live bytes are the section's internal
array map, one element at key 0. Writable sections are read and written through
an ``mmap`` of that map, as libbpf skeletons do: a write stores the variable's
own bytes only, so a counter the program bumps meanwhile is not set back. A map
the kernel will not map (no ``BPF_F_MMAPABLE``) falls back to a lookup and an
update of the whole element, which can lose such a concurrent bump.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import EccError
from ..meta.names import frozen_at_load
from .values import encode, wrap

if TYPE_CHECKING:
    from ..btf import Btf
    from ..run import libbpf
    from ..run.options import OptionSpec

KCONFIG = ".kconfig"
_KEY0 = bytes(4)


def read_only(section: str) -> bool:
    """Whether the kernel froze the section at load: ``.rodata`` and ``.rodata.*``
    (libbpf freezes every read-only data map), and ``.kconfig``."""
    return section == KCONFIG or frozen_at_load(section)


class Variables(MutableMapping[str, Any]):
    """The global variables of a loaded program, by name: ``v["tag"]``, ``v["tag"] = 7``.

    Values are decoded and encoded by the variable's BTF type, as map values
    are (ints, bools, floats, enumerator names, ``str`` for ``char`` arrays,
    lists, :class:`~ecc.api.values.Record` for structs). Each access goes to
    the kernel's copy, so reads see what the programs wrote and the programs
    see writes at once. ``.rodata`` and ``.kconfig`` variables read but do
    not write (the kernel froze them at load: give ``.rodata`` ones as load
    options instead); variables cannot be deleted. ``static`` variables are
    private to the program and not here, as in a bpftool skeleton.
    """

    def __init__(self, program: str, specs: Sequence[OptionSpec], btf: Btf | None,
                 find_map: Any, kconfig: Sequence[str] = ()) -> None:
        self._program = program
        self._specs = {spec.var: spec for spec in specs}
        self._btf = btf
        self._find_map = find_map  # section -> libbpf.Map | None
        self._kconfig = tuple(kconfig)
        self._views: dict[str, mmap.mmap | None] = {}
        self._closed = False

    # -- the Mapping ---------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        spec = self._spec(name)
        data = self._read(spec.section, spec.offset, spec.size)
        if self._btf is None:
            return data
        from ..run.decode import decode_value

        return wrap(decode_value(self._btf, spec.type_id, data))

    def __setitem__(self, name: str, value: Any) -> None:
        spec = self._spec(name)
        if read_only(spec.section):
            raise EccError(_frozen(self._program, name, spec.section))
        if self._btf is None:
            data = bytes(value)
            if len(data) != spec.size:
                raise ValueError(f"variable {name}: {len(data)} bytes for a "
                                 f"{spec.size}-byte variable")
        else:
            try:
                data = encode(self._btf, spec.type_id, value)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"variable {name} ({spec.type_name}): {exc}") from None
        self._write(spec.section, spec.offset, data)

    def __delitem__(self, name: str) -> None:
        self._spec(name)
        raise TypeError(f"variable {name} of {self._program} cannot be deleted; "
                        "write a value instead")

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def section(self, name: str) -> str:
        """The data section variable ``name`` lives in (``.bss``, ``.data.cfg``...)."""
        return self._spec(name).section

    def __repr__(self) -> str:
        return f"<ecc.Variables of {self._program!r}: {', '.join(self._specs)}>"

    # -- the kernel's bytes ----------------------------------------------------------------

    def _spec(self, name: str) -> OptionSpec:
        if self._closed:
            raise EccError(f"{self._program}: the program is closed")
        spec = self._specs.get(name)
        if spec is not None:
            return spec
        if name in self._kconfig:
            raise EccError(f"{self._program}: variable '{name}' is a .kconfig extern, which "
                           "libbpf fills from the running kernel's configuration at load and "
                           "lays out itself; it can be neither read nor written here")
        raise KeyError(f"{self._program} has no global variable {name!r}; its variables: "
                       f"{', '.join(self._specs) or 'none'}")

    def _map(self, section: str) -> libbpf.Map:
        found: libbpf.Map | None = self._find_map(section)
        if found is None:
            raise EccError(f"{self._program}: libbpf has no map for data section '{section}'")
        return found

    def _view(self, section: str) -> mmap.mmap | None:
        """The section's map mmapped (read-write), or None when it cannot be."""
        if section in self._views:
            return self._views[section]
        view = None
        if not read_only(section):  # a frozen map refuses a writable mapping
            m = self._map(section)
            try:
                view = mmap.mmap(m.fd, m.value_size, mmap.MAP_SHARED,
                                 mmap.PROT_READ | mmap.PROT_WRITE)
            except (OSError, ValueError):
                view = None  # not BPF_F_MMAPABLE: element lookups and updates
        self._views[section] = view
        return view

    def _read(self, section: str, offset: int, size: int) -> bytes:
        view = self._view(section)
        if view is not None:
            try:
                return view[offset:offset + size]
            except ValueError:  # unmapped by close() in another thread meanwhile
                raise EccError(f"{self._program}: the program is closed") from None
        m = self._map(section)
        whole = m.lookup(_KEY0)
        if whole is None:  # an array always holds key 0; only a broken map has not
            raise EccError(f"{self._program}: the map of section '{section}' holds no value")
        return whole[offset:offset + size]

    def _write(self, section: str, offset: int, data: bytes) -> None:
        view = self._view(section)
        if view is not None:
            try:
                view[offset:offset + len(data)] = data
            except ValueError:
                raise EccError(f"{self._program}: the program is closed") from None
            return
        m = self._map(section)
        whole = bytearray(m.lookup(_KEY0) or bytes(m.value_size))
        whole[offset:offset + len(data)] = data
        m.update(_KEY0, bytes(whole))

    def close(self) -> None:
        """Unmap the sections (before the object is freed); later access raises."""
        self._closed = True
        for view in self._views.values():
            if view is not None:
                view.close()
        self._views.clear()


def _frozen(program: str, name: str, section: str) -> str:
    if section == KCONFIG:
        return (f"{program}: variable '{name}' is in .kconfig, which libbpf fills from the "
                "running kernel's configuration at load; it cannot be written")
    return (f"{program}: variable '{name}' is in {section}, which the kernel froze at load "
            f"(read-only for the programs and for user space); set it before load: "
            f"ecc.load(..., {name}=VALUE)")
