"""libbpf's naming rules, re-stated so a package names what libbpf will create.

Each function cites the libbpf behaviour it mirrors; the kernel test that opens
every built object with libbpf and looks each name up is their proof.
"""

from __future__ import annotations

import os
import re

BPF_OBJ_NAME_LEN = 16  # kernel's limit, including the NUL

_NON_IDENT = re.compile(r"[^A-Za-z0-9_]")
_NON_MAP_NAME = re.compile(r"[^A-Za-z0-9_.]")


def stem(source_path: str) -> str:
    """``bootstrap.bpf.c`` -> ``bootstrap``: the file name up to its first dot."""
    base = os.path.basename(source_path)
    return base.split(".", 1)[0] or base


def object_file_name(source_path: str) -> str:
    return f"{stem(source_path)}.bpf.o"


def obj_name(object_file: str) -> str:
    """The ``object_name`` a loader gives libbpf: base name less ``.o``, non-identifiers ``_``.

    Mirrors how libbpf derives an object's name from its path (bpf_object_new),
    made explicit so that a loader opening from memory gets the same name.
    """
    base = os.path.basename(object_file)
    if base.endswith(".o"):
        base = base[:-2]
    return _NON_IDENT.sub("_", base)


def internal_map_name(object_name: str, section: str) -> str:
    """Name libbpf gives the internal map of a global-data section (libbpf's internal_map_name).

    The prefix is cut so the name fits BPF_OBJ_NAME_LEN; a section with a second
    dot (``.rodata.str1.1``, ``.data.cfg``) gets no prefix at all, so that
    distinct custom sections keep distinct names.
    """
    # libbpf copies the object name into a BPF_OBJ_NAME_LEN buffer first.
    object_name = object_name[: BPF_OBJ_NAME_LEN - 1]
    sfx_len = min(max(7, len(section)), BPF_OBJ_NAME_LEN - 1)
    no_prefix = "." in section[1:]
    pfx_len = 0 if no_prefix else min(BPF_OBJ_NAME_LEN - sfx_len - 1, len(object_name))
    name = object_name[:pfx_len] + section[:sfx_len]
    return _NON_MAP_NAME.sub("_", name)


def internal_map_lookup_name(object_name: str, section: str) -> str:
    """The name under which libbpf's bpf_object__find_map_by_name finds a global-data map.

    libbpf (1.x) shows custom ``.data.*``/``.rodata.*`` maps under their full ELF
    section name (map_uses_real_name), and looks any name starting with a dot up
    by that full section name. So every section with a second dot is found by its
    full name, untruncated and unsanitized; the short kernel-side name of
    :func:`internal_map_name` applies to ``.data``, ``.rodata``, ``.bss`` and
    ``.kconfig`` only.
    """
    if "." in section[1:]:
        return section
    return internal_map_name(object_name, section)


def frozen_at_load(section: str) -> bool:
    """Whether libbpf freezes the map of this data section at load (``.rodata`` and
    ``.rodata.*``, the read-only ones): the kernel refuses writes to it afterwards."""
    return section == ".rodata" or section.startswith(".rodata.")


def section_ident(section: str) -> str:
    """``.rodata`` -> ``rodata``, ``.data.cfg`` -> ``data_cfg`` (the skeleton's field name)."""
    return _NON_IDENT.sub("_", section.lstrip("."))
