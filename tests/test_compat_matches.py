"""TYPE_MATCHES (``bpf_core_type_matches``), ecc's answer against libbpf's, per program.

tests/data/compat/matches.bpf.c holds one program per case; each loads only when
libbpf's answer for its relocation is 1 (otherwise the verifier meets a load
through an unknown scalar). Every program is loaded alone into the running kernel
with ``btf_custom_path`` set to each target (this kernel's BTF and variants of it
made by tests/test_check_kernel.py), and ecc must have computed the same answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import KERNEL_BTF, ROOT, build_package, ecc_cli, needs, require
from oracle_tools import libbpf_loads_with_btf
from test_check_kernel import variants

SOURCE = ROOT / "tests" / "data" / "compat" / "matches.bpf.c"
TARGETS = ("6.18.0-same.btf", "6.18.0-no-mm_struct.btf", "6.18.0-tgid-renamed.btf")
REFUSED = "invalid mem access 'scalar'"


ecc = ecc_cli


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Path:
    return build_package(tmp_path_factory, SOURCE, "matches-pkg")


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require("kernel-btf")
    folder = tmp_path_factory.mktemp("matches-kernels")
    made = variants(KERNEL_BTF.read_bytes())
    for name in TARGETS:
        (folder / name).write_bytes(made[name])
    return {name: folder / name for name in TARGETS}


def ecc_answers(package: Path, targets: dict[str, Path]) -> dict[tuple[str, str], int | None]:
    args = [a for path in targets.values() for a in ("--kernel", str(path))]
    result = ecc("check", str(package / "package.json"), *args, "--json")
    assert result.returncode == 0, result.stderr
    out = {}
    for kernel in json.loads(result.stdout)["kernels"]:
        for relo in kernel["relocations"]:
            assert relo["kind"] == "TYPE_MATCHES"
            out[Path(kernel["kernel"]).name, relo["program"]] = relo["value"]
    return out


def libbpf_answer(object_bytes: bytes, program: str, btf: Path) -> int:
    """1 if ``program`` loads with ``btf`` as the kernel's BTF for CO-RE, else 0."""
    return int(libbpf_loads_with_btf(object_bytes, program, btf, "matches", (REFUSED,)))


@needs("kernel", "clang", "kernel-btf")
def test_type_matches_as_libbpf_decides(built: Path, targets: dict[str, Path]) -> None:
    answers = ecc_answers(built, targets)
    object_bytes = (built / "matches.bpf.o").read_bytes()
    programs = sorted({program for _, program in answers})
    assert len(programs) == 19
    table = {(kernel, program): (answers[kernel, program],
                                 libbpf_answer(object_bytes, program, targets[kernel]))
             for kernel in TARGETS for program in programs}
    wrong = {key: v for key, v in table.items() if v[0] != v[1]}
    assert not wrong, f"(ecc, libbpf): {wrong}"
    # Not vacuous: both answers occur, and the variants change some.
    matching = sorted(p for (k, p), (_, lib) in table.items() if lib and k == TARGETS[0])
    assert matching == ["anon_member", "behind_pointer", "enum_names", "fds", "func_proto",
                        "fwd_pointer", "ints"]
    assert {p for (k, p), (_, lib) in table.items() if lib and k == TARGETS[1]} == {
        "enum_names", "fds", "func_proto", "ints"}
    assert {p for (k, p), (_, lib) in table.items() if lib and k == TARGETS[2]} == {
        "anon_member", "behind_pointer", "fds", "func_proto", "fwd_pointer", "ints"}
