"""`ecc check PACKAGE --kernel BTF / --btfhub-archive DIR` (issue 23), judged by libbpf.

The target kernels are this machine's BTF and variants of it made here by editing
its bytes: a field renamed, a struct made anonymous (gone by name), an enum value
renamed, an enum value changed. For each variant and each program of
tests/data/compat/core.bpf.c, libbpf loads that program alone into the running
kernel with ``btf_custom_path`` set to the variant: it either loads or fails on a
poisoned CO-RE relocation, and ecc must have predicted which. A WebAssembly app
(``ecc build --wasm``) is judged by the object it embeds, with the same verdicts
as its package.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import KERNEL_BTF, ROOT, build_package, ecc_cli, needs, require
from oracle_tools import libbpf_loads_with_btf

from ecc.btf import raw

SOURCE = ROOT / "tests" / "data" / "compat" / "core.bpf.c"
PROGRAMS = ("read_state", "guarded_state", "state_either_name", "read_bitfield", "read_mm",
            "guarded_mm", "mm_size", "enum_value", "guarded_enum")
POISON = ("failed to resolve CO-RE relocation", "unknown#195896080")
KIND_STRUCT, KIND_ENUM = 4, 6


ecc = ecc_cli


# --- editing a kernel BTF's bytes ---------------------------------------------------------


def _sections(data: bytes) -> tuple[raw.Header, int, int]:
    hdr = raw.Header(*raw.LITTLE.header.unpack_from(data, 0))
    return hdr, hdr.hdr_len + hdr.type_off, hdr.hdr_len + hdr.str_off


def rename_string(data: bytes, old: str, new: str) -> bytes:
    """Every name that is exactly ``old`` becomes ``new`` (no longer than it)."""
    assert len(new) <= len(old)
    hdr, _, str_start = _sections(data)
    strings = data[str_start:str_start + hdr.str_len]
    needle = b"\0" + old.encode() + b"\0"
    pos = strings.find(needle)
    assert pos >= 0 and strings.find(needle, pos + 1) < 0, old
    at = str_start + pos + 1
    return data[:at] + new.encode().ljust(len(old), b"\0") + data[at + len(old):]


def records(data: bytes) -> list[tuple[int, str, int, int]]:
    """(offset, name, kind, vlen) of every type record."""
    hdr, type_start, str_start = _sections(data)
    out = []
    pos = type_start
    while pos < type_start + hdr.type_len:
        name_off, info, _ = raw.LITTLE.type.unpack_from(data, pos)
        kind, vlen = raw.info_kind(info), raw.info_vlen(info)
        end = data.index(b"\0", str_start + name_off)
        out.append((pos, data[str_start + name_off:end].decode(), kind, vlen))
        pos += raw.record_size(kind, vlen) or 0
    return out


def anonymize(data: bytes, name: str, kind: int) -> bytes:
    """The named struct loses its name: for CO-RE, the kernel no longer has it."""
    buf = bytearray(data)
    hits = [off for off, n, k, _ in records(data) if n == name and k == kind]
    assert hits, name
    for off in hits:
        buf[off:off + 4] = b"\0\0\0\0"
    return bytes(buf)


def set_enum_value(data: bytes, enum: str, value_name: str, value: int) -> bytes:
    hdr, _, str_start = _sections(data)
    buf = bytearray(data)
    for off, name, kind, vlen in records(data):
        if name != enum or kind != KIND_ENUM:
            continue
        for i in range(vlen):
            entry = off + raw.TYPE_SIZE + 8 * i
            name_off, _ = raw.LITTLE.enum.unpack_from(data, entry)
            if data[str_start + name_off:].startswith(value_name.encode() + b"\0"):
                raw.LITTLE.u32.pack_into(buf, entry + 4, value)
                return bytes(buf)
    raise AssertionError(f"{enum}::{value_name} not found")


def variants(vmlinux: bytes) -> dict[str, bytes]:
    """File name -> BTF; the names start with the release, as BTFHub's do."""
    return {
        "6.18.0-same.btf": vmlinux,
        "6.18.0-state-renamed.btf": rename_string(vmlinux, "__state", "__statX"),
        "5.13.0-old-state.btf": rename_string(vmlinux, "__state", "state"),
        "6.18.0-no-mm_struct.btf": anonymize(vmlinux, "mm_struct", KIND_STRUCT),
        "6.18.0-tgid-renamed.btf": rename_string(vmlinux, "PIDTYPE_TGID", "PIDTYPE_TGIX"),
        "6.18.0-tgid-changed.btf": set_enum_value(vmlinux, "pid_type", "PIDTYPE_TGID", 7),
    }


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require("kernel-btf")
    folder = tmp_path_factory.mktemp("kernels")
    out = {}
    for name, data in variants(KERNEL_BTF.read_bytes()).items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Path:
    return build_package(tmp_path_factory, SOURCE, "compat-pkg")


@pytest.fixture(scope="module")
def verdicts(package: Path, targets: dict[str, Path]) -> dict[str, dict[str, object]]:
    args = [a for path in targets.values() for a in ("--kernel", str(path))]
    result = ecc("check", str(package / "package.json"), *args, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    return {Path(str(k["kernel"])).name: k for k in report["kernels"]}


def predicted_failing(verdict: dict[str, object]) -> set[str]:
    return {str(r["program"]) for r in verdict["relocations"]  # type: ignore[attr-defined]
            if r["failing"]}


def libbpf_loads(object_bytes: bytes, program: str, btf: Path) -> bool:
    """Load ``program`` alone with ``btf`` as the kernel's BTF for CO-RE."""
    return libbpf_loads_with_btf(object_bytes, program, btf, "core", POISON)


# --- the oracle -------------------------------------------------------------------------


@needs("kernel", "clang", "kernel-btf")
def test_every_program_on_every_variant_as_libbpf_decides(
        package: Path, targets: dict[str, Path], verdicts: dict[str, dict[str, object]]) -> None:
    object_bytes = (package / "core.bpf.o").read_bytes()
    table = {}
    for name, path in targets.items():
        failing = predicted_failing(verdicts[name])
        for program in PROGRAMS:
            table[name, program] = (program not in failing, libbpf_loads(object_bytes, program,
                                                                          path))
    wrong = {key: v for key, v in table.items() if v[0] != v[1]}
    assert not wrong, f"ecc (predicted, libbpf loaded): {wrong}"
    # The variants really do break what they should: the oracle is not vacuous.
    broken = sorted(key for key, (_, loaded) in table.items() if not loaded)
    assert broken == sorted([
        ("6.18.0-state-renamed.btf", "read_state"),
        ("6.18.0-state-renamed.btf", "state_either_name"),
        ("5.13.0-old-state.btf", "read_state"),  # state_either_name falls back to `state`
        ("6.18.0-no-mm_struct.btf", "read_mm"),
        ("6.18.0-tgid-renamed.btf", "enum_value"),
    ])


@needs("kernel", "clang", "kernel-btf")
def test_guarded_relocation_is_reported_guarded_and_loads(
        package: Path, targets: dict[str, Path], verdicts: dict[str, dict[str, object]]) -> None:
    verdict = verdicts["6.18.0-state-renamed.btf"]
    relos = [r for r in verdict["relocations"]  # type: ignore[attr-defined]
             if r["program"] == "guarded_state"]
    offset = [r for r in relos if r["kind"] == "FIELD_BYTE_OFFSET"]
    exists = [r for r in relos if r["kind"] == "FIELD_EXISTS"]
    assert [(r["access"], r["outcome"], r["failing"]) for r in offset] == [
        ("task_struct.__state", "poisoned", False)]
    assert "FIELD_EXISTS task_struct.__state = 0" in offset[0]["guarded_by"]
    assert [(r["outcome"], r["value"]) for r in exists] == [("absent", 0)]
    assert libbpf_loads((package / "core.bpf.o").read_bytes(), "guarded_state",
                        targets["6.18.0-state-renamed.btf"])
    # the unguarded read of the same field is the failure the matrix names first
    assert verdict["failures"][0].startswith(  # type: ignore[index]
        "read_state: task_struct.__state (FIELD_BYTE_OFFSET, unresolved")


@needs("clang", "kernel-btf")
def test_values_follow_the_target(verdicts: dict[str, dict[str, object]]) -> None:
    def value(kernel: str, program: str, kind: str) -> object:
        return next(r["value"] for r in verdicts[kernel]["relocations"]  # type: ignore[attr-defined]
                    if r["program"] == program and r["kind"] == kind)

    assert value("6.18.0-same.btf", "enum_value", "ENUMVAL_VALUE") == 1
    assert value("6.18.0-tgid-changed.btf", "enum_value", "ENUMVAL_VALUE") == 7
    # a missing type's size is 0, not a failure (libbpf patches 0 for type relocations)
    assert value("6.18.0-no-mm_struct.btf", "mm_size", "TYPE_SIZE") == 0
    assert verdicts["6.18.0-same.btf"]["ok"] is True
    assert verdicts["5.13.0-old-state.btf"]["version"] == "5.13"


@needs("clang", "kernel-btf")
def test_matrix_and_require_all(package: Path, targets: dict[str, Path]) -> None:
    same, renamed = targets["6.18.0-same.btf"], targets["6.18.0-state-renamed.btf"]
    result = ecc("check", str(package / "package.json"), "--kernel", str(same), "--kernel",
                 str(renamed))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"{same}" in lines[2] and lines[2].endswith(" 6.18     OK (1 guarded)")
    assert f"{renamed}" in lines[3] and " FAIL 2: read_state: task_struct.__state" in lines[3]
    assert "(+1 more)" in lines[3]
    strict = ecc("check", str(package / "package.json"), "--kernel", str(renamed),
                 "--require-all")
    assert strict.returncode == 1
    assert "1 kernel cannot run the package" in strict.stderr


def test_build_check_kernels_judges_the_built_object(tmp_path: Path,
                                                     targets: dict[str, Path]) -> None:
    """`ecc build --check-kernels`: the same matrix as `ecc check --kernel`, for a BTF file
    and for an archive folder; exit 1 when a kernel cannot run it, the outputs written."""
    require("clang")
    same, renamed = targets["6.18.0-same.btf"], targets["6.18.0-state-renamed.btf"]
    archive = tmp_path / "archive" / "ubuntu" / "24.04" / "x86_64"
    archive.mkdir(parents=True)
    shutil.copy(same, archive / same.name)
    ok = ecc("build", str(SOURCE), "-o", str(tmp_path / "ok"), "--check-kernels", str(same),
             "--check-kernels", str(tmp_path / "archive"))
    assert ok.returncode == 0, ok.stderr
    lines = ok.stderr.splitlines()
    shown = os.path.relpath(tmp_path / "ok" / "package.json")  # relative when under the cwd
    shown = str(tmp_path / "ok" / "package.json") if shown.startswith("..") else shown
    summary = f"{shown}: 2 kernels, 0 failing ("
    head = next(i for i, line in enumerate(lines) if line.startswith(summary))
    assert lines[head + 1].split() == ["KERNEL", "VERSION", "RESULT"]
    assert lines[head + 2].endswith(" 6.18     OK (1 guarded)") and str(same) in lines[head + 2]
    assert lines[head + 3].startswith("ubuntu/24.04/x86_64/6.18.0-same.btf ")
    bad = ecc("build", str(SOURCE), "-o", str(tmp_path / "bad"), "--check-kernels", str(renamed))
    assert bad.returncode == 1
    assert " FAIL 2: read_state: task_struct.__state" in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == (
        "ecc: error: --check-kernels: 1 kernel cannot run what was built (see the lines "
        "above; the outputs are written)")
    assert (tmp_path / "bad" / "package.json").is_file()
    missing = ecc("build", str(SOURCE), "-o", str(tmp_path / "m"), "--check-kernels",
                  str(tmp_path / "nope.btf"))
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        f"ecc: error: --check-kernels {tmp_path / 'nope.btf'}: no such file or folder; give a "
        "kernel BTF file (such as /sys/kernel/btf/vmlinux) or a BTFHub archive folder")


# --- a BTFHub archive of many kernels ----------------------------------------------------

ARCHIVE_KERNELS = 210
COMPRESSED = 4


@needs("clang", "kernel-btf")
def test_archive_of_210_kernels_under_10_seconds(
        package: Path, targets: dict[str, Path], verdicts: dict[str, dict[str, object]],
        tmp_path: Path) -> None:
    names = sorted(targets)
    expected = {}
    for i in range(ARCHIVE_KERNELS):
        variant = names[i % len(names)]
        rel = f"distro{i % 7}/{i // 7}/x86_64/{variant.removesuffix('.btf')}-{i}"
        folder = tmp_path / rel.rsplit("/", 1)[0]
        folder.mkdir(parents=True, exist_ok=True)
        if i < COMPRESSED:
            data = targets[variant].read_bytes()
            member = tarfile.TarInfo(Path(rel).name + ".btf")
            member.size = len(data)
            with tarfile.open(tmp_path / (rel + ".btf.tar.xz"), "w:xz", preset=0) as tar:
                tar.addfile(member, io.BytesIO(data))
        else:
            shutil.copyfile(targets[variant], tmp_path / (rel + ".btf"))
        expected[rel + ".btf"] = (verdicts[variant]["ok"], verdicts[variant]["failures"])
    result = ecc("check", str(package / "package.json"), "--btfhub-archive", str(tmp_path),
                 "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    got = {k["kernel"]: (k["ok"], k["failures"]) for k in report["kernels"]}
    assert got == expected
    # How long it takes is benchmarks/check.py's to say, side by side with bpftool.


# --- a WebAssembly app -------------------------------------------------------------------

WASM_EXAMPLE = ROOT / "examples" / "wasm-bootstrap"


@needs("clang", "wasm", "kernel-btf")
def test_wasm_app_is_judged_by_its_embedded_object(tmp_path: Path, cache_env: Path) -> None:
    from ecc.compat.wasmobj import embedded_objects

    stem = "wasm-bootstrap"
    built = ecc("build", str(WASM_EXAMPLE / f"{stem}.bpf.c"), str(WASM_EXAMPLE / f"{stem}.h"),
                "--wasm", "-o", str(tmp_path))
    assert built.returncode == 0, built.stderr
    app = tmp_path / f"{stem}.wasm"
    # the object found in the module is, byte for byte, the one the build linked in
    assert embedded_objects(app.read_bytes()) == ((tmp_path / f"{stem}.bpf.o").read_bytes(),)
    vmlinux = KERNEL_BTF.read_bytes()
    (tmp_path / "6.18.0-same.btf").write_bytes(vmlinux)
    (tmp_path / "6.18.0-exit.btf").write_bytes(rename_string(vmlinux, "exit_code", "exit_codX"))
    kernels = ["--kernel", str(tmp_path / "6.18.0-same.btf"),
               "--kernel", str(tmp_path / "6.18.0-exit.btf")]
    from_app = ecc("check", str(app), *kernels, "--json")
    from_package = ecc("check", str(tmp_path / "package.json"), *kernels, "--json")
    assert from_app.returncode == 0 and from_package.returncode == 0, from_app.stderr
    app_report, package_report = json.loads(from_app.stdout), json.loads(from_package.stdout)
    assert app_report["package"] == str(app)
    assert app_report["kernels"] == package_report["kernels"]
    same, renamed = app_report["kernels"]
    assert same["ok"] is True and len(same["relocations"]) == 6
    assert renamed["failures"][0].startswith("wb_exit: task_struct.exit_code (FIELD_BYTE_OFFSET")


def test_wasm_module_without_an_object_is_one_line(tmp_path: Path) -> None:
    module = tmp_path / "empty.wasm"
    module.write_bytes(b"\0asm\x01\0\0\0")
    result = ecc("check", str(module), "--kernel", "/sys/kernel/btf/vmlinux")
    assert result.returncode == 1
    assert result.stderr.strip() == (f"ecc: error: {module}: no BPF object inside this "
                                     "WebAssembly module; ecc build --wasm embeds one (through "
                                     "its .skel.h)")
