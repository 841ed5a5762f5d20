"""The release table of ecc/compat/versions.py and the feature checks that use it.

Independent judges of the table: the running kernel's own BTF (its UAPI enums
``bpf_prog_type``, ``bpf_map_type``, ``bpf_attach_type``, ``bpf_func_id`` hold
exactly the names of this release, at exactly the table's enum values), the
enum order (an enum only grows at its end, so releases never go down along
it), libbpf's probes (``bpftool feature probe kernel``) and libbpf's own reading
of section names (the program and expected attach type it gives each).

Then the checks themselves: a package using a helper, a map type and an attach
type newer than a kernel is reported with the item and the release it needs,
from the version in the kernel file's name when its BTF is a minimized one, and
from the BTF's enums when it is whole.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import KERNEL_BTF, ROOT, build_package, ecc_cli, needs, require
from test_check_kernel import rename_string

from ecc.btf import parse_btf
from ecc.btf.types import Enum, Enum64
from ecc.compat import features, versions
from ecc.compat.report import kernel_version

SOURCE = ROOT / "tests" / "data" / "compat" / "features.bpf.c"
TABLES = {  # enum -> (prefix of its names, the table)
    "bpf_prog_type": ("BPF_PROG_TYPE_", versions.PROG_TYPES),
    "bpf_map_type": ("BPF_MAP_TYPE_", versions.MAP_TYPES),
    "bpf_attach_type": ("BPF_", versions.ATTACH_TYPES),
    "bpf_func_id": ("BPF_FUNC_", versions.HELPERS),
}
RUNNING = kernel_version(os.uname().release)


ecc = ecc_cli


def kernel_enum(name: str, prefix: str) -> dict[int, str]:
    """value -> name (prefix cut) of one UAPI enum of the running kernel's BTF, without
    the UNSPEC/MAX markers and the aliases kept for old names."""
    btf = parse_btf(KERNEL_BTF.read_bytes())
    (enum,) = [btf[i] for i in btf.ids_by_name(name) if isinstance(btf[i], Enum | Enum64)]
    assert isinstance(enum, Enum | Enum64)
    out: dict[int, str] = {}
    for value in enum.values:
        short = value.name.removeprefix(prefix)
        if short.startswith("_") or short.upper() == "UNSPEC" or short.endswith("_DEPRECATED"):
            continue
        assert value.value not in out, f"{value.name} aliases {out.get(value.value)}"
        out[value.value] = short
    return out


@needs("kernel-btf")
@pytest.mark.parametrize("enum", sorted(TABLES))
def test_table_is_the_running_kernels_enum(enum: str) -> None:
    prefix, table = TABLES[enum]
    assert RUNNING is not None
    have = kernel_enum(enum, prefix)
    known = {number: name for number, (name, since) in table.items() if since <= RUNNING}
    assert have == known, (set(have.items()) ^ set(known.items()))
    assert len(have) > 30


@pytest.mark.parametrize("enum", sorted(TABLES))
def test_releases_never_go_down_along_an_enum(enum: str) -> None:
    _, table = TABLES[enum]
    numbers = sorted(table)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    releases = [table[n][1] for n in numbers]
    backwards = [(table[a], table[b]) for a, b in zip(numbers, numbers[1:], strict=False)
                 if table[b][1] < table[a][1]]
    assert not backwards and releases == sorted(releases)


def test_known_releases() -> None:
    """A few the sources disagree on, as settled in the module's docstring."""
    helper = {name: since for name, since in versions.HELPERS.values()}
    assert helper["sk_assign"] == (5, 7) and helper["tcp_send_ack"] == (5, 6)
    assert helper["get_prandom_u32"] == (4, 1) and helper["loop"] == (5, 17)
    assert helper["skc_to_mptcp_sock"] == (5, 19)
    prog = {name: since for name, since in versions.PROG_TYPES.values()}
    assert prog["SYSCALL"] == (5, 14) and prog["NETFILTER"] == (6, 4)
    assert versions.ATTACH_BY_NAME["TRACE_UPROBE_SESSION"] == (57, (6, 13))


@needs("bpftool", "kernel")
def test_libbpf_probes_find_nothing_the_table_lacks() -> None:
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    probe = json.loads(subprocess.run([bpftool, "-j", "feature", "probe", "kernel"],
                                      capture_output=True, text=True, check=True).stdout)
    assert RUNNING is not None

    def names(table: dict[int, tuple[str, versions.Version]]) -> dict[str, versions.Version]:
        return {name.lower(): since for name, since in table.values()}

    for key, table, word in (("program_types", versions.PROG_TYPES, "prog_type"),
                             ("map_types", versions.MAP_TYPES, "map_type")):
        known = names(table)
        found = {k.removeprefix("have_").removesuffix(f"_{word}"): v
                 for k, v in probe[key].items()}
        assert set(found) <= set(known), set(found) - set(known)
        available = [name for name, yes in found.items() if yes]
        assert len(available) > 25
        assert all(known[name] <= RUNNING for name in available)
    helpers = names(versions.HELPERS)
    used = {h.removeprefix("bpf_") for lst in probe["helpers"].values() for h in lst}
    assert len(used) > 150 and used <= set(helpers), used - set(helpers)
    assert all(helpers[h] <= RUNNING for h in used)


# --- what libbpf makes of section names ------------------------------------------------

# The part after "/" that a section needs for libbpf to accept it.
_TARGETS = {
    "kprobe": "do_nanosleep", "kretprobe": "do_nanosleep", "ksyscall": "nanosleep",
    "kretsyscall": "nanosleep", "tracepoint": "sched/sched_switch", "tp": "sched/sched_switch",
    "raw_tracepoint": "sched_switch", "raw_tp": "sched_switch",
    "raw_tracepoint.w": "sched_switch", "raw_tp.w": "sched_switch", "tp_btf": "sched_switch",
    "fentry": "do_nanosleep", "fexit": "do_nanosleep", "fmod_ret": "do_nanosleep",
    "fentry.s": "do_nanosleep", "fexit.s": "do_nanosleep", "fmod_ret.s": "do_nanosleep",
    "iter": "task", "iter.s": "task", "freplace": "other", "lsm": "file_open",
    "lsm.s": "file_open", "lsm_cgroup": "file_open", "usdt": "/bin/true:p:n",
    **{p: "do_nano*" for p in ("kprobe.multi", "kretprobe.multi", "kprobe.session")},
    **{p: "/bin/true:main" for p in ("uprobe", "uretprobe", "uprobe.s", "uretprobe.s",
                                      "uprobe.multi", "uretprobe.multi", "uprobe.multi.s",
                                      "uretprobe.multi.s", "uprobe.session")},
}
# libbpf gives these BPF_XDP, which the kernel ignores for XDP programs: not a need.
_OPTIONAL_ATTACH = {"xdp", "xdp.frags"}


@needs("clang", "libbpf")
def test_sections_mean_what_libbpf_makes_of_them(tmp_path: Path, cache_env: Path) -> None:
    from ecc.run.libbpf import BpfObject, load_libbpf

    lines = ['#include "vmlinux.h"', "#include <bpf/bpf_helpers.h>",
             'char LICENSE[] SEC("license") = "GPL";']
    for i, (pattern, *_) in enumerate(features._SECTIONS):
        section = pattern + (f"/{_TARGETS[pattern]}" if pattern in _TARGETS else "")
        lines.append(f'SEC("{section}") int p{i}(void *ctx) {{ return 0; }}')
    (tmp_path / "sections.bpf.c").write_text("\n".join(lines) + "\n")
    result = ecc("build", str(tmp_path / "sections.bpf.c"), "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    load_libbpf()
    unknown, compared = [], 0
    with BpfObject.open_mem((tmp_path / "sections.bpf.o").read_bytes(),
                            object_name="sections") as obj:
        for prog in obj.programs():
            matched = features._section(prog.section_name)
            assert matched is not None, prog.section_name
            pattern, number, attach, _ = matched
            if prog.type == 0:  # a section this libbpf is too old to know
                unknown.append(pattern)
                continue
            want = versions.ATTACH_BY_NAME[attach][0] if attach else 0
            got = 0 if pattern in _OPTIONAL_ATTACH else prog.expected_attach_type
            assert (prog.type, got) == (number, want), prog.section_name
            compared += 1
    assert compared == len(features._SECTIONS) - len(unknown)
    assert set(unknown) <= {"kprobe.session", "uprobe.session"}


# --- the checks -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Path:
    return build_package(tmp_path_factory, SOURCE, "features-pkg")


@pytest.fixture(scope="module")
def kernels(package: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Minimized BTFs named as BTFHub names kernels (the release first), and whole ones."""
    require("kernel-btf", "bpftool")
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    folder = tmp_path_factory.mktemp("feature-kernels")
    whole = KERNEL_BTF.read_bytes()
    out = {}
    for name in ("5.4.0-min.btf", "5.10.0-min.btf", "5.17.0-min.btf", "6.1.0-min.btf"):
        subprocess.run([bpftool, "gen", "min_core_btf", str(KERNEL_BTF), str(folder / name),
                        str(package / "features.bpf.o")], check=True, capture_output=True)
        out[name] = folder / name
    shutil.copyfile(out["5.10.0-min.btf"], folder / "no-release.btf")
    out["no-release.btf"] = folder / "no-release.btf"
    (folder / "6.18.0-whole.btf").write_bytes(whole)
    (folder / "6.18.0-no-loop.btf").write_bytes(rename_string(whole, "BPF_FUNC_loop",
                                                             "BPF_FUNC_lopp"))
    out["6.18.0-whole.btf"] = folder / "6.18.0-whole.btf"
    out["6.18.0-no-loop.btf"] = folder / "6.18.0-no-loop.btf"
    return out


@pytest.fixture(scope="module")
def report(package: Path, kernels: dict[str, Path]) -> dict[str, dict[str, object]]:
    args = [a for path in kernels.values() for a in ("--kernel", str(path))]
    result = ecc("check", str(package / "package.json"), *args, "--json")
    assert result.returncode == 0, result.stderr
    return {Path(str(k["kernel"])).name: k for k in json.loads(result.stdout)["kernels"]}


def failing(verdict: dict[str, object]) -> set[tuple[str, str, str | None]]:
    return {(str(c["what"]), str(c["name"]), c["since"])  # type: ignore[index]
            for c in verdict["features"] if c["outcome"] == "fail"}  # type: ignore[attr-defined]


@needs("clang", "kernel-btf", "bpftool")
def test_newer_items_fail_by_release(report: dict[str, dict[str, object]]) -> None:
    loop, multi = ("helper", "loop", "5.17"), ("attach type", "TRACE_KPROBE_MULTI", "5.18")
    ringbuf = {("map type", "RINGBUF", "5.8"), ("helper", "ringbuf_output", "5.8")}
    # BPF_CORE_READ reads through bpf_probe_read_kernel (5.5)
    read = ("helper", "probe_read_kernel", "5.5")
    assert failing(report["5.4.0-min.btf"]) == {loop, multi, read} | ringbuf
    assert failing(report["5.10.0-min.btf"]) == {loop, multi}
    assert failing(report["5.17.0-min.btf"]) == {multi}
    assert failing(report["6.1.0-min.btf"]) == set() and report["6.1.0-min.btf"]["ok"]
    # the line names the item, its users and both releases
    lines = report["5.10.0-min.btf"]["failures"]
    assert "helper loop (uses_loop): needs 5.17; kernel is 5.10" in lines  # type: ignore[operator]
    assert "attach type TRACE_KPROBE_MULTI (multi): needs 5.18; kernel is 5.10" in lines  # type: ignore[operator]
    # the CO-RE read still resolved there: it is the features that fail
    assert all(not r["failing"] for r in report["5.10.0-min.btf"]["relocations"])  # type: ignore[attr-defined]


@needs("clang", "kernel-btf", "bpftool")
def test_no_release_no_btf_means_unknown_not_failed(
        report: dict[str, dict[str, object]]) -> None:
    verdict = report["no-release.btf"]
    assert verdict["version"] is None and verdict["ok"] is True and failing(verdict) == set()
    checks = {c["name"]: c for c in verdict["features"]}  # type: ignore[attr-defined]
    assert checks["loop"]["outcome"] == "unknown"
    assert checks["loop"]["why"] == ("since 5.17; this kernel's version is unknown and its "
                                     "BTF cannot tell")


@needs("clang", "kernel-btf", "bpftool")
def test_release_from_an_archive_path(package: Path, kernels: dict[str, Path],
                                      tmp_path: Path) -> None:
    folder = tmp_path / "ubuntu" / "20.04" / "x86_64"
    folder.mkdir(parents=True)
    shutil.copyfile(kernels["5.10.0-min.btf"], folder / "5.10.0-1008-aws.btf")
    result = ecc("check", str(package / "package.json"), "--btfhub-archive", str(tmp_path),
                 "--json", "--require-all")
    assert result.returncode == 1
    (verdict,) = json.loads(result.stdout)["kernels"]
    assert verdict["kernel"] == "ubuntu/20.04/x86_64/5.10.0-1008-aws.btf"
    assert verdict["version"] == "5.10"
    assert failing(verdict) == {("helper", "loop", "5.17"),
                                ("attach type", "TRACE_KPROBE_MULTI", "5.18")}


@needs("clang", "kernel-btf", "bpftool")
def test_a_whole_btf_decides_by_its_enums(report: dict[str, dict[str, object]]) -> None:
    assert report["6.18.0-whole.btf"]["ok"] is True
    checks = {c["name"]: c for c in report["6.18.0-whole.btf"]["features"]}  # type: ignore[attr-defined]
    assert checks["loop"]["why"] == "enum bpf_func_id has BPF_FUNC_loop"
    assert checks["TRACE_KPROBE_MULTI"]["outcome"] == "ok"
    no_loop = report["6.18.0-no-loop.btf"]
    assert failing(no_loop) == {("helper", "loop", "5.17")}
    assert no_loop["failures"] == [  # the release in the name does not overrule the BTF
        "helper loop (uses_loop): enum bpf_func_id of this kernel has no BPF_FUNC_loop"]


@needs("clang", "kernel-btf", "bpftool")
def test_matrix_and_require_all(package: Path, kernels: dict[str, Path]) -> None:
    old, new = str(kernels["5.10.0-min.btf"]), str(kernels["6.1.0-min.btf"])
    result = ecc("check", str(package / "package.json"), "--kernel", old, "--kernel", new)
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[2:]
    assert rows[0].startswith(old) and " 5.10     FAIL 2: " in rows[0] and "(+1 more)" in rows[0]
    assert rows[1].startswith(new) and rows[1].endswith(" 6.1      OK")
    strict = ecc("check", str(package / "package.json"), "--kernel", old, "--kernel", new,
                 "--require-all")
    assert strict.returncode == 1
    assert strict.stderr.strip().splitlines()[-1].endswith(
        "1 kernel cannot run the package (--require-all)")
    assert "Traceback" not in strict.stderr
