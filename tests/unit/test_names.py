"""libbpf's naming rules (spec 3.1, 3.2), table-driven; libbpf checks them in the kernel tests."""

from __future__ import annotations

import pytest

from ecc.meta import names


@pytest.mark.parametrize(("path", "expected"), [
    ("bootstrap.bpf.c", "bootstrap"),
    ("/a/b/x.y.z.c", "x"),
    ("noext", "noext"),
])
def test_stem(path: str, expected: str) -> None:
    assert names.stem(path) == expected


@pytest.mark.parametrize(("object_file", "expected"), [
    ("bootstrap.bpf.o", "bootstrap_bpf"),
    ("/tmp/simple-prog 3.bpf.o", "simple_prog_3_bpf"),
    ("x.o.o", "x_o"),
    ("plain", "plain"),
])
def test_obj_name(object_file: str, expected: str) -> None:
    assert names.obj_name(object_file) == expected


@pytest.mark.parametrize(("obj", "section", "expected"), [
    ("simple_prog_3_bpf", ".rodata", "simple_p.rodata"),
    ("simple_prog_3_bpf", ".bss", "simple_p.bss"),
    ("simple_prog_3_bpf", ".data", "simple_p.data"),
    ("test_bpf", ".rodata", "test_bpf.rodata"),
    ("simple_prog_3_bpf", ".kconfig", "simple_.kconfig"),
    ("ab", ".bss", "ab.bss"),
    ("bootstrap_bpf", ".rodata.str1.1", ".rodata.str1.1"),
    ("bootstrap_bpf", ".data.cfg", ".data.cfg"),
    ("x", ".data.a_very_long_custom_name", ".data.a_very_lo"),
    ("x", ".bss.weird-name", ".bss.weird_name"),
])
def test_internal_map_name(obj: str, section: str, expected: str) -> None:
    assert names.internal_map_name(obj, section) == expected
    assert len(names.internal_map_name(obj, section)) <= 15


@pytest.mark.parametrize(("section", "expected"), [
    (".rodata", "rodata"), (".data.cfg", "data_cfg"), (".rodata.str1.1", "rodata_str1_1"),
    (".kconfig", "kconfig"),
])
def test_section_ident(section: str, expected: str) -> None:
    assert names.section_ident(section) == expected


@pytest.mark.parametrize(("obj", "section", "expected"), [
    ("bootstrap_bpf", ".rodata", "bootstra.rodata"),
    ("bootstrap_bpf", ".data.my-cfg", ".data.my-cfg"),
    ("bootstrap_bpf", ".data.a_long_custom_section", ".data.a_long_custom_section"),
    ("bootstrap_bpf", ".bss.x", ".bss.x"),
    ("simple_prog_3_bpf", ".kconfig", "simple_.kconfig"),
])
def test_internal_map_lookup_name(obj: str, section: str, expected: str) -> None:
    assert names.internal_map_lookup_name(obj, section) == expected
