"""The command line as a user meets it: exit codes, one-line errors, files left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import import_or_skip, requires_clang

ROOT = Path(__file__).resolve().parent.parent
MINI_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "{header}"

struct {{
\t__uint(type, BPF_MAP_TYPE_RINGBUF);
\t__uint(max_entries, 4096);
}} rb SEC(".maps");

const volatile int target_pid = 0;

SEC("tp/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{{
\tstruct {struct} *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
\tif (!e)
\t\treturn 0;
\te->pid = bpf_get_current_pid_tgid() >> 32;
\tbpf_ringbuf_submit(e, 0);
\treturn 0;
}}

char LICENSE[] SEC("license") = "GPL";
"""
MINI_HEADER = "#pragma once\nstruct {struct} {{ int pid; char comm[16]; }};\n"


def ecc(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, check=False)


def write_program(folder: Path, stem: str = "mini", struct: str = "event") -> tuple[Path, Path]:
    source = folder / f"{stem}.bpf.c"
    header = folder / f"{stem}.h"
    source.write_text(MINI_SOURCE.format(header=header.name, struct=struct))
    header.write_text(MINI_HEADER.format(struct=struct))
    return source, header


def test_help_lists_build() -> None:
    result = ecc("--help")
    assert result.returncode == 0
    assert "build" in result.stdout


def test_missing_source_is_one_line(tmp_path: Path) -> None:
    result = ecc("build", str(tmp_path / "nope.bpf.c"))
    assert result.returncode == 1
    assert result.stderr == f"ecc: error: source file {tmp_path / 'nope.bpf.c'}: no such file\n"


def test_missing_header_is_one_line(tmp_path: Path) -> None:
    source, _ = write_program(tmp_path)
    result = ecc(str(source), str(tmp_path / "nope.h"))
    assert result.returncode == 1
    assert result.stderr == f"ecc: error: export header {tmp_path / 'nope.h'}: no such file\n"


def test_usage_error_exits_2() -> None:
    result = ecc("build", "--no-such-flag", "x.bpf.c")
    assert result.returncode == 2
    assert "No such option '--no-such-flag'" in result.stderr


def test_missing_clang_names_the_package(tmp_path: Path) -> None:
    source, header = write_program(tmp_path)
    env = dict(os.environ, PATH=str(tmp_path / "empty-bin"))
    result = subprocess.run([sys.executable, "-m", "ecc", str(source)], capture_output=True,
                            text=True, env=env, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        "ecc: error: clang not found on PATH; install it (Debian: apt-get install clang-19) "
        "or name it with the option for it\n")
    assert "Traceback" not in result.stderr


def test_explicit_missing_clang(tmp_path: Path) -> None:
    source, _ = write_program(tmp_path)
    result = ecc(str(source), "-c", "/nonexistent/clang")
    assert result.returncode == 1
    assert result.stderr == (
        "ecc: error: clang not found at '/nonexistent/clang'; check the path given\n")


@requires_clang
def test_bare_form_and_outputs(tmp_path: Path, cache_env: Path) -> None:
    source, header = write_program(tmp_path)
    result = ecc(str(source), str(header))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["mini.bpf.c", "mini.h", "mini.bpf.o", "mini.skel.json", "package.json"])
    package = json.loads((tmp_path / "package.json").read_text())
    assert package["meta"]["export_types"][0]["name"] == "event"


@requires_clang
def test_compile_error_names_user_file_and_line(tmp_path: Path, cache_env: Path) -> None:
    source, header = write_program(tmp_path)
    text = source.read_text().replace("return 0;\n}}", "return 0;\n}").replace(
        "e->pid = ", "e->pid = undeclared_thing + ")
    source.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "undeclared_thing" in ln)
    result = ecc("build", str(source), str(header))
    assert result.returncode == 1
    assert f"{source}:{line}:" in result.stderr
    assert "use of undeclared identifier 'undeclared_thing'" in result.stderr
    assert ".ecc.c" not in result.stderr  # our wrapper never shows
    assert result.stderr.rstrip().splitlines()[-1] == (
        "ecc: error: mini.bpf.c: clang reported 1 error; fix the source and build again")
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini.bpf.c", "mini.h"]


@requires_clang
def test_failed_build_keeps_previous_outputs(tmp_path: Path, cache_env: Path) -> None:
    source, header = write_program(tmp_path)
    assert ecc(str(source), str(header)).returncode == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    source.write_text(source.read_text() + "\nthis is not C;\n")
    assert ecc(str(source), str(header)).returncode == 1
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        **before, "mini.bpf.c": source.read_bytes()}


@requires_clang
def test_struct_missing_from_btf(tmp_path: Path, cache_env: Path) -> None:
    source, header = write_program(tmp_path)
    other = tmp_path / "other.h"
    other.write_text("struct not_used_anywhere { int x; };\n")
    result = ecc(str(source), str(other))
    assert result.returncode == 1
    assert result.stderr == (
        "ecc: error: struct not_used_anywhere from other.h is not in the compiled object's BTF; "
        "make sure the program includes other.h and defines struct not_used_anywhere\n")


@requires_clang
def test_malformed_object_from_a_broken_clang(tmp_path: Path, cache_env: Path) -> None:
    """A toolchain that writes garbage gives our ELF error, not a traceback."""
    source, header = write_program(tmp_path)
    fake = tmp_path / "bin" / "clang"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nfor a; do out="$a"; done\n'
                    'while [ $# -gt 1 ]; do [ "$1" = -o ] && out="$2"; shift; done\n'
                    'printf "\\177ELF garbage" > "$out"\n')
    fake.chmod(0o755)
    copy = tmp_path / "bin" / "strip"
    copy.write_text('#!/bin/sh\ncp "$2" "$4"\n')  # llvm-strip -g SRC -o DST
    copy.chmod(0o755)
    result = ecc(str(source), str(header), "-c", str(fake), "-l", str(copy),
                 "-o", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.startswith("ecc: error: ")
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ecc: error: mini.bpf.o: malformed ELF: ")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out" / "package.json").exists()


@requires_clang
def test_verbose_prints_commands_and_traceback(tmp_path: Path, cache_env: Path) -> None:
    source, header = write_program(tmp_path)
    result = ecc(str(source), str(header), "-v")
    assert result.returncode == 0
    assert "ecc: + " in result.stderr and "-target bpf" in result.stderr
    # Stripping is in-process (no llvm-strip command); its time is in the summary.
    assert "llvm-strip" not in result.stderr and ", strip " in result.stderr
    bad = ecc(str(tmp_path / "missing.bpf.c"), "-v")
    assert "Traceback" in bad.stderr


@requires_clang
def test_two_programs_in_one_folder_at_once(tmp_path: Path, cache_env: Path) -> None:
    """Concurrent builds write through private temp files: each output is whole."""
    sources = [write_program(tmp_path, stem, struct) for stem, struct in
               (("one", "ev_one"), ("two", "ev_two"))]
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda s=s: results.append(ecc(str(s[0]), str(s[1]))))
               for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0]
    for stem in ("one", "two"):
        skel = json.loads((tmp_path / f"{stem}.skel.json").read_text())
        assert skel["export_types"][0]["name"] == f"ev_{stem}"
    package = json.loads((tmp_path / "package.json").read_text())
    assert package["meta"]["export_types"][0]["name"] in ("ev_one", "ev_two")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@requires_clang
def test_yaml_wasm_header_and_no_package(tmp_path: Path, cache_env: Path) -> None:
    yaml = import_or_skip("yaml", "yaml")
    source, header = write_program(tmp_path)
    out = tmp_path / "out"
    assert ecc(str(source), str(header), "-y", "--wasm-header", "-o", str(out)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "ewasm-skel.h", "mini.bpf.o", "mini.skel.yaml", "package.yaml"]
    package = yaml.safe_load((out / "package.yaml").read_text())
    assert package["meta"]["bpf_skel"]["obj_name"] == "mini_bpf"
    out2 = tmp_path / "out2"
    assert ecc(str(source), str(header), "-n", "-o", str(out2)).returncode == 0
    assert sorted(p.name for p in out2.iterdir()) == ["mini.bpf.o", "mini.skel.json"]


@requires_clang
def test_workspace_keeps_temporary_files(tmp_path: Path, cache_env: Path) -> None:
    source, header = write_program(tmp_path)
    ws = tmp_path / "ws"
    assert ecc(str(source), str(header), "-w", str(ws), "-o", str(tmp_path / "o")).returncode == 0
    assert (ws / "mini.ecc.c").is_file() and (ws / "mini.bpf.o").is_file()


@requires_clang
def test_no_temp_dirs_leak(tmp_path: Path, cache_env: Path) -> None:
    source, header = write_program(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    assert ecc(str(source), str(header), "-o", str(tmp_path / "o"), env=env).returncode == 0
    assert list(tmp.iterdir()) == []


@requires_clang
def test_vmlinux_missing_everywhere(tmp_path: Path, cache_env: Path) -> None:
    source = tmp_path / "v.bpf.c"
    source.write_text('#include "vmlinux.h"\nchar LICENSE[] SEC("license") = "GPL";\n')
    env = dict(os.environ, ECC_CACHE_DIR=str(tmp_path / "cache"))
    result = ecc(str(source), "--vmlinux", str(tmp_path / "none.h"), env=env)
    assert result.returncode == 1
    assert result.stderr == f"ecc: error: --vmlinux {tmp_path / 'none.h'}: no such file\n"


@requires_clang
def test_vmlinux_given_by_file(tmp_path: Path, cache_env: Path) -> None:
    """--vmlinux names any file; the program's #include "vmlinux.h" finds it."""
    tiny = tmp_path / "tiny-vmlinux.h"
    tiny.write_text("typedef unsigned int u32;\nstruct tiny_marker { u32 x; };\n")
    source = tmp_path / "v.bpf.c"
    source.write_text('#include "vmlinux.h"\nstruct tiny_marker m;\n'
                      'char LICENSE[] __attribute__((section("license"), used)) = "GPL";\n')
    result = ecc(str(source), "--vmlinux", str(tiny), "-o", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    skel = json.loads((tmp_path / "o" / "v.skel.json").read_text())
    assert skel["bpf_skel"]["data_sections"][0]["variables"][0] == {
        "name": "m", "type": "struct tiny_marker"}


# --- the quick start: `ecc build SOURCE [HEADER] [-o DIR]` without click (ecc/buildcmd.py)

def _click_params(args: list[str]) -> dict[str, object]:
    from ecc.cli import command

    rest = args[1:] if args[:1] == ["build"] else args
    return command("build").make_context("build", rest).params


def test_quick_defaults_are_clicks() -> None:
    from ecc.compiler.options import DEFAULTS

    params = _click_params(["build", "x.bpf.c"])
    assert {k: v for k, v in params.items() if k != "inputs"} == DEFAULTS


@pytest.mark.parametrize("args", [
    ["build", "p.bpf.c"], ["p.bpf.c"], ["build", "p.bpf.c", "p.h"], ["p.bpf.c", "p.h"],
    ["build", "p.bpf.c", "-o", "out"], ["build", "-o", "out", "p.bpf.c", "p.h"],
    ["p.bpf.c", "--output-dir", "out"], ["p.bpf.c", "--output-path=out"], ["p.bpf.c", "-oout"],
    ["p.bpf.c", "-o=out"], ["build", "p.bpf.c", "p.h", "--output-dir=out"],
    ["build", "p.bpf.c", "--no-cache"], ["build", "--no-doc", "-y", "p.bpf.c", "p.h"],
    ["p.bpf.c", "-n", "--wasm-header", "--yaml", "-o", "o"],
    ["p.bpf.c", "--no-cache", "--no-cache"],
    ["build", "p.bpf.c", "--no-generate-package-json"],
    ["build", "a.bpf.c", "b.bpf.c"], ["build", "."], ["build", "p.bpf.c", "p.h", "x.h"],
    ["build", "a.bpf.c", "b.bpf.c", "-j", "2"], ["build", "-j2", "."], ["p.bpf.c", "-j", "1"],
    ["build", "--jobs=3", "a.bpf.c", "b.bpf.c", "-o", "out"], ["build", "x", "--jobs", "12"],
])
def test_quick_params_are_clicks(args: list[str]) -> None:
    from ecc.launch import quick_params

    assert quick_params(args) == _click_params(args)


@pytest.mark.parametrize("args", [
    [], ["--help"], ["build"], ["build", "--help"], ["run", "package.json"], ["doctor"],
    ["build", "-v", "p.bpf.c"], ["build", "p.bpf.c", "--arch", "arm64"],
    ["build", "-yn", "p.bpf.c"],
    ["build", "p.bpf.c", "--no-cache=1"], ["build", "p.bpf.c", "-o"],
    ["build", "p.bpf.c", "-o", "a", "-o", "b"], ["build", "p.bpf.c", "--", "p.h"],
    ["build", "p.bpf.c", "-o", "-v"],
    ["build", "p.bpf.c", "--output-dir="], ["prog.bpf.o"], [".", "-j", "2"],
    ["build", ".", "-j", "0"], ["build", ".", "-j", "two"], ["build", ".", "-j"],
    ["build", ".", "-j", "1", "-j", "2"], ["build", ".", "--jobs="], ["build", ".", "-j", "-1"],
    ["build", ".", "--link", "x"],
])
def test_quick_params_leave_the_rest_to_click(args: list[str]) -> None:
    from ecc.launch import quick_params

    assert quick_params(args) is None


def _imports_click(*args: str, cwd: Path) -> tuple[bool, subprocess.CompletedProcess[str]]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "ecc", *args],
                            capture_output=True, text=True, cwd=cwd, check=False)
    imported = any(line.split("|")[-1].strip() == "click" for line in result.stderr.splitlines()
                   if line.startswith("import time:"))
    return imported, result


@requires_clang
def test_quick_build_needs_no_click_and_fails_alike(tmp_path: Path, cache_env: Path) -> None:
    source, header = write_program(tmp_path)
    imported, result = _imports_click("build", source.name, header.name, "-o", "out",
                                      cwd=tmp_path)
    assert result.returncode == 0 and not imported
    assert (tmp_path / "out" / "package.json").is_file()
    imported, _ = _imports_click("build", source.name, "-a", "-DX=1", cwd=tmp_path)
    assert imported  # any other option: the click command
    # A failure reads the same either way: clang's diagnostics, then the one line.
    source.write_text(source.read_text().replace("e->pid = ", "e->pid = undeclared_thing + "))
    quick = ecc("build", source.name, header.name, cwd=tmp_path)
    through_click = ecc("build", "-a", "-DX=1", source.name, header.name, cwd=tmp_path)
    assert quick.returncode == through_click.returncode == 1
    assert quick.stderr == through_click.stderr
    assert "use of undeclared identifier 'undeclared_thing'" in quick.stderr
