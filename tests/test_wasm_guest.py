"""The guest side of WebAssembly user space: skel.h, wasm.h, libbpf-wasm.h, the .wasm.

Every layout the generated headers give a wasm32 guest is measured inside the
guest (a program printing offsetof/sizeof, run with wasmtime) and compared
with bpftool's dump of the BPF object's BTF, resolved here without ecc. The
host functions of module ``wasm_bpf`` are stubs that record their calls: the
object handed to ``wasm_load_bpf_object`` is read back with ecc.elf to see
that ``skel->rodata->x = v`` reached its bytes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import needs

from ecc.compiler.wasm import GUEST_INCLUDE_DIR, build_wasm
from ecc.elf import read_object
from ecc.errors import CompileError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = ROOT / "tests" / "data" / "wasm_guest"
# Every example with an export header, and the awkward struct of the test data.
LAYOUT_UNITS = ["bootstrap", "runqlat", "profile", "uprobe", "globals", "opensnoop",
                "perfbuf", "tc", "layout"]
LINUX_EINTR = 4  # what a host on Linux returns; the guest's errno.h is WASI's (EINTR 27)

pytestmark = [needs("clang", "wasm", "bpftool")]


@dataclass(frozen=True)
class Unit:
    name: str
    out: Path
    obj: Path
    meta: dict[str, Any]
    header: Path

    @property
    def export_structs(self) -> list[str]:
        return [t["name"] for t in self.meta["export_types"]]

    def wasm(self, apps: list[Path], out_dir: Path, **kw: Any) -> list[str]:
        return build_wasm(self.obj.read_bytes(), self.meta, None, self.export_structs,
                          [str(a) for a in apps], str(out_dir), self.name,
                          header=self.header.name, **kw)


def _sources(name: str) -> tuple[Path, Path]:
    folder = DATA if name in ("layout", "refused") else EXAMPLES / name
    return folder / f"{name}.bpf.c", folder / f"{name}.h"


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> dict[str, Unit]:
    root = tmp_path_factory.mktemp("wasm-guest-objects")
    out: dict[str, Unit] = {}
    for name in [*LAYOUT_UNITS, "refused"]:
        source, header = _sources(name)
        folder = root / name
        result = subprocess.run([sys.executable, "-m", "ecc", "build", str(source), str(header),
                                 "-o", str(folder)], capture_output=True, text=True,
                                timeout=600, check=False)
        assert result.returncode == 0, result.stderr
        meta = json.loads((folder / "package.json").read_text())["meta"]
        out[name] = Unit(name, folder, folder / f"{name}.bpf.o", meta, header)
    return out


# --- an independent reading of the BTF: bpftool's JSON dump ------------------------

def bpftool_types(obj: Path) -> dict[int, dict[str, Any]]:
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    dump = subprocess.run([bpftool, "-j", "btf", "dump", "file", str(obj)], check=True,
                          capture_output=True, text=True).stdout
    return {t["id"]: t for t in json.loads(dump)["types"]}


def type_size(types: dict[int, dict[str, Any]], tid: int) -> int:
    t = types[tid]
    if t["kind"] in ("INT", "STRUCT", "UNION", "ENUM", "ENUM64", "FLOAT"):
        return int(t["size"])
    if t["kind"] == "PTR":
        return 8
    if t["kind"] == "ARRAY":
        return int(t["nr_elems"]) * type_size(types, t["type_id"])
    return type_size(types, t["type_id"])  # typedef, const, volatile...


def strip_mods(types: dict[int, dict[str, Any]], tid: int) -> dict[str, Any]:
    t = types[tid]
    while t["kind"] in ("CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"):
        t = types[t["type_id"]]
    return t


def by_name(types: dict[int, dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [t for t in types.values() if t["kind"] == kind and t["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def expected_layout(types: dict[int, dict[str, Any]], t: dict[str, Any], c_name: str,
                    prefix: str = "", base: int = 0, top: bool = True
                    ) -> dict[str, tuple[int, int]]:
    """``{"struct x.a.b": (offset, size)}`` of every named byte-aligned member, through
    anonymous members; ``{"struct x": (0, size)}`` for the type itself."""
    out: dict[str, tuple[int, int]] = {c_name: (0, int(t["size"]))} if top else {}
    for m in t["members"]:
        if m.get("bitfield_size"):
            continue
        offset = base + m["bits_offset"] // 8
        inner = strip_mods(types, m["type_id"])
        path = f"{prefix}{m['name']}" if m["name"] != "(anon)" else ""
        if path:
            out[f"{c_name}.{path}"] = (offset, type_size(types, m["type_id"]))
        if inner["kind"] in ("STRUCT", "UNION") and inner["name"] == "(anon)":
            out |= expected_layout(types, inner, c_name, f"{path}." if path else prefix, offset,
                                   top=False)
    return out


def measuring_program(layouts: dict[str, tuple[int, int]], includes: list[str]) -> str:
    lines = [*(f'#include "{h}"' for h in includes), "#include <stdio.h>", "#include <stddef.h>",
             "", "int main(void)", "{"]
    for label, _ in layouts.items():
        c_type, _, path = label.partition(".")
        if path:
            lines.append(f'    printf("%s %zu %zu\\n", "{label}", offsetof({c_type}, {path}), '
                         f"sizeof((({c_type} *)0)->{path}));")
        else:
            lines.append(f'    printf("%s 0 %zu\\n", "{label}", sizeof({c_type}));')
    return "\n".join([*lines, "    return 0;", "}", ""])


# --- running a guest: wasmtime, with the wasm_bpf imports as recording stubs -----

@dataclass
class Host:
    """Stubs of the six host functions; ``events`` are handed to the guest's callback."""

    events: list[bytes] = field(default_factory=list)
    handle: int = 0x1_0000_0007  # above 32 bits: the guest must keep all 64
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    loaded: list[bytes] = field(default_factory=list)
    fds: dict[str, int] = field(default_factory=dict)

    def run(self, wasm: Path, argv: list[str], stdout: Path) -> int:
        import wasmtime
        from wasmtime import FuncType, ValType

        engine = wasmtime.Engine()
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.argv = argv
        wasi.stdout_file = str(stdout)
        wasi.stderr_file = str(stdout) + ".stderr"
        store.set_wasi(wasi)
        i32, i64 = ValType.i32(), ValType.i64()
        stubs: list[tuple[str, list[ValType], list[ValType], Callable[..., int]]] = [
            ("wasm_load_bpf_object", [i32, i32], [i64], self._load),
            ("wasm_attach_bpf_program", [i64, i32, i32], [i32], self._attach),
            ("wasm_bpf_buffer_poll", [i64, i32, i32, i32, i32, i32, i32], [i32], self._poll),
            ("wasm_bpf_map_fd_by_name", [i64, i32], [i32], self._fd_by_name),
            ("wasm_bpf_map_operate", [i32, i32, i32, i32, i32, i64], [i32], self._operate),
            ("wasm_close_bpf_object", [i64], [i32], self._close),
        ]
        for name, params, results, fn in stubs:
            linker.define_func("wasm_bpf", name, FuncType(params, results), fn,
                               access_caller=True)
        instance = linker.instantiate(store, wasmtime.Module.from_file(engine, str(wasm)))
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
        except wasmtime.ExitTrap as exc:
            return int(exc.code)
        return 0

    @staticmethod
    def _read(caller: Any, ptr: int, size: int) -> bytes:
        return bytes(caller.get("memory").read(caller, ptr, ptr + size))

    def _cstr(self, caller: Any, ptr: int) -> str | None:
        if not ptr:
            return None
        raw = self._read(caller, ptr, 256)
        return raw[:raw.index(0)].decode()

    def _load(self, caller: Any, ptr: int, size: int) -> int:
        self.loaded.append(self._read(caller, ptr, size))
        self.calls.append(("load", size))
        return self.handle

    def _attach(self, caller: Any, handle: int, name: int, target: int) -> int:
        self.calls.append(("attach", handle, self._cstr(caller, name), self._cstr(caller, target)))
        return 0

    def _fd_by_name(self, caller: Any, handle: int, name: int) -> int:
        text = self._cstr(caller, name)
        assert text is not None
        self.fds.setdefault(text, 40 + len(self.fds))
        self.calls.append(("fd", handle, text))
        return self.fds[text]

    def _operate(self, caller: Any, fd: int, cmd: int, key: int, value: int, next_key: int,
                 flags: int) -> int:
        self.calls.append(("operate", fd, cmd, self._read(caller, key, 4),
                           self._read(caller, value, 8), next_key, flags))
        return 0

    def _poll(self, caller: Any, handle: int, fd: int, sample_fn: int, ctx: int, data: int,
              max_size: int, timeout_ms: int) -> int:
        self.calls.append(("poll", handle, fd, ctx, max_size, timeout_ms))
        if not self.events:
            return -LINUX_EINTR
        event = self.events.pop(0)
        assert len(event) <= max_size
        caller.get("memory").write(caller, event, data)
        callback = caller.get("__indirect_function_table").get(caller, sample_fn)
        callback(caller, ctx, data, len(event))
        return 1

    def _close(self, caller: Any, handle: int) -> int:
        self.calls.append(("close", handle))
        return 0


# --- the export header's layouts -----------------------------------------------------

@pytest.mark.parametrize("name", LAYOUT_UNITS)
def test_wasm_h_layout_is_the_bpf_sides(name: str, units: dict[str, Unit], tmp_path: Path) -> None:
    unit = units[name]
    types = bpftool_types(unit.obj)
    out_dir = tmp_path / "out"
    # what the export header must give the guest: its structs and every type they use by name
    build_wasm(unit.obj.read_bytes(), unit.meta, None, unit.export_structs, [], str(out_dir),
               name)
    header = (out_dir / f"{name}.wasm.h").read_text()
    defined = re.findall(r"^(struct|union) (\w+) \{", header, re.M)
    assert {n for _, n in defined} >= set(unit.export_structs)
    layouts: dict[str, tuple[int, int]] = {}
    for kind, type_name in defined:
        layouts |= expected_layout(types, by_name(types, kind.upper(), type_name),
                                   f"{kind} {type_name}")
    app = tmp_path / "measure.c"
    app.write_text(measuring_program(layouts, [f"{name}.wasm.h"]))
    build_wasm(unit.obj.read_bytes(), unit.meta, None, unit.export_structs, [str(app)],
               str(out_dir), name)
    stdout = tmp_path / "stdout"
    assert Host().run(out_dir / f"{name}.wasm", ["measure"], stdout) == 0
    measured = {label: (int(off), int(size)) for label, off, size in
                (line.rsplit(" ", 2) for line in stdout.read_text().splitlines())}
    assert measured == layouts


def test_layout_covers_the_awkward_members(units: dict[str, Unit], tmp_path: Path) -> None:
    """The checks above really measured long, unions, anonymous members, the FAM."""
    types = bpftool_types(units["layout"].obj)
    layout = expected_layout(types, by_name(types, "STRUCT", "wg_sample"), "struct wg_sample")
    assert layout["struct wg_sample.l"] == (0, 8)
    assert layout["struct wg_sample.kind"] == (20, 4)
    assert layout["struct wg_sample.inner.id"] == (76, 4)
    assert layout["struct wg_sample.raw"] == (80, 3)
    assert layout["struct wg_sample.trailer"] == (128, 0)
    assert layout["struct wg_sample"] == (0, 128)


def test_bitfields_land_on_the_bpf_sides_bits(units: dict[str, Unit], tmp_path: Path) -> None:
    unit = units["layout"]
    types = bpftool_types(unit.obj)
    flags = by_name(types, "STRUCT", "wg_flags")
    bitfields = [m for m in flags["members"] if m.get("bitfield_size")]
    assert [m["name"] for m in bitfields] == ["a", "b", "c", "d", "f"]
    size = int(flags["size"])
    lines = ['#include "layout.wasm.h"', "#include <stdio.h>", "#include <string.h>",
             "int main(void)", "{", "    struct wg_flags v;", "    unsigned char *p;"]
    for m in bitfields:
        lines += ["    memset(&v, 0, sizeof(v));",
                  f"    v.{m['name']} = ({'uint64_t' if m['bitfield_size'] > 32 else 'uint32_t'})"
                  f"((1ULL << {m['bitfield_size']}) - 1);",
                  f'    printf("{m["name"]}");', "    p = (unsigned char *)&v;",
                  f'    for (unsigned i = 0; i < {size}; i++) printf(" %02x", p[i]);',
                  '    printf("\\n");']
    app = tmp_path / "bits.c"
    app.write_text("\n".join([*lines, "    return 0;", "}", ""]))
    unit.wasm([app], tmp_path / "out")
    stdout = tmp_path / "stdout"
    assert Host().run(tmp_path / "out" / "layout.wasm", ["bits"], stdout) == 0
    expected = []
    for m in bitfields:
        mask = ((1 << m["bitfield_size"]) - 1) << m["bits_offset"]
        expected.append(" ".join([m["name"], *(f"{b:02x}" for b in mask.to_bytes(size,
                                                                                  "little"))]))
    assert stdout.read_text().splitlines() == expected


def test_a_pointer_member_is_refused(units: dict[str, Unit], tmp_path: Path) -> None:
    unit = units["refused"]
    with pytest.raises(CompileError) as info:
        unit.wasm([], tmp_path / "out")
    assert str(info.value) == (
        "refused.h: struct bad, field 'task': a pointer (8 bytes on the BPF side, 4 in wasm32); "
        "declare it __u64 (a kernel address means nothing to the guest)")
    assert not (tmp_path / "out").exists()


# --- the skeleton -------------------------------------------------------------------

def test_upstream_bootstrap_program_runs_against_ecc_skeleton(units: dict[str, Unit],
                                                              tmp_path: Path) -> None:
    unit = units["bootstrap"]
    app = tmp_path / "bootstrap.c"
    shutil.copy(DATA / "bootstrap.c", app)
    written = unit.wasm([app], tmp_path / "out")
    assert written == [str(tmp_path / "out" / n) for n in
                       ("bootstrap.skel.h", "bootstrap.wasm.h", "bootstrap.wasm")]
    types = bpftool_types(unit.obj)
    event_type = by_name(types, "STRUCT", "event")
    offsets = {m["name"]: m["bits_offset"] // 8 for m in event_type["members"]}
    event = bytearray(event_type["size"])
    struct.pack_into("<i", event, offsets["pid"], 4321)
    struct.pack_into("<i", event, offsets["ppid"], 1)
    struct.pack_into("<I", event, offsets["exit_code"], 3)
    struct.pack_into("<Q", event, offsets["duration_ns"], 9_876_543_210)
    event[offsets["comm"]:offsets["comm"] + 4] = b"bash"
    event[offsets["filename"]:offsets["filename"] + 9] = b"/bin/true"
    event[offsets["exit_event"]] = 1
    host = Host(events=[bytes(event)])
    stdout = tmp_path / "stdout"

    assert host.run(tmp_path / "out" / "bootstrap.wasm", ["bootstrap", "-d", "250"], stdout) == 0

    assert stdout.read_text() == (
        f"event ctx=0 size={event_type['size']} pid=4321 ppid=1 exit_code=3 "
        "duration_ns=9876543210 comm=bash filename=/bin/true exit_event=1\n")
    h = host.handle
    assert host.calls == [
        ("load", unit.obj.stat().st_size),
        ("attach", h, "handle_exec", None), ("attach", h, "handle_exit", None),
        ("fd", h, "rb"), ("fd", h, "exec_start"),
        ("operate", host.fds["exec_start"], 2, struct.pack("<i", 1),
         struct.pack("<Q", 0x1122334455667788), 0, 0),
        ("poll", h, host.fds["rb"], 0, 65536, 100), ("poll", h, host.fds["rb"], 0, 65536, 100),
        ("close", h),
    ]
    # The object the host got is the built one, but for min_duration_ns in .rodata.
    original = unit.obj.read_bytes()
    loaded = host.loaded[0]
    obj = read_object(loaded)
    rodata = obj.section(".rodata")
    assert rodata is not None
    symbols = {s.name: s for s in obj.symbols if s.section_index == rodata.index}
    var = symbols["min_duration_ns"]
    assert struct.unpack_from("<Q", obj.data_sections[".rodata"], var.value)[0] == 250_000_000
    assert struct.unpack_from("<i", obj.data_sections[".rodata"],
                              symbols["target_pid"].value)[0] == 0
    start = rodata.offset + var.value
    assert loaded[:start] == original[:start]
    assert loaded[start + 8:] == original[start + 8:]


def test_skeleton_globals_reach_the_object(units: dict[str, Unit], tmp_path: Path) -> None:
    unit = units["layout"]
    unit.wasm([DATA / "layout_globals.c"], tmp_path / "out")
    host = Host()
    assert host.run(tmp_path / "out" / "layout.wasm", ["layout_globals"], tmp_path / "o") == 0
    assert [c[0] for c in host.calls] == ["load", "close"]
    obj = read_object(host.loaded[0])
    types = bpftool_types(unit.obj)

    def value(section: str, name: str, fmt: str) -> Any:
        sec = obj.section(section)
        assert sec is not None
        sym = next(s for s in obj.symbols if s.section_index == sec.index and s.name == name)
        return struct.unpack_from(fmt, obj.data_sections[section], sym.value)

    point = by_name(types, "STRUCT", "wg_point")
    y_offset = next(m["bits_offset"] // 8 for m in point["members"] if m["name"] == "y")
    assert value(".rodata", "verbose", "<B") == (1,)
    assert value(".rodata", "min_len", "<q") == (-123456789012345,)
    assert value(".rodata", "origin", f"<H{y_offset - 2}xQ") == (0xbeef, 0x0102030405060708)
    assert value(".rodata", "label", "<10s") == (b"ecc-wasm\0\0",)
    assert value(".rodata", "level", "<B") == (0x5a,)
    assert value(".rodata", "threshold", "<Q") == (0xfedcba9876543210,)
    assert value(".rodata", "hidden", "<i") == (5,)  # static: not in the struct, kept
    assert value(".data", "calls", "<i") == (-42,)


def test_bss_has_a_struct_but_no_pointer(units: dict[str, Unit], tmp_path: Path) -> None:
    """.bss has no bytes in the object: writing skel->bss would reach nothing."""
    app = tmp_path / "bss.c"
    app.write_text('#include "layout.skel.h"\n'
                   "int main(void) { struct layout_bpf *s = layout_bpf__open();\n"
                   "  struct layout_bpf__bss copy; (void)copy;\n"
                   "  s->bss->hits = 1; return 0; }\n")
    with pytest.raises(CompileError) as info:
        units["layout"].wasm([app], tmp_path / "out")
    assert str(info.value) == ("bss.c: clang (wasm32) reported 1 error; fix the source and "
                               "build again")
    assert "no member named 'bss' in 'struct layout_bpf'" in (info.value.details or "")


# --- compiling the app --------------------------------------------------------------

def test_failed_app_leaves_no_wasm(units: dict[str, Unit], tmp_path: Path) -> None:
    good = tmp_path / "good.c"
    good.write_text("int main(void) { return 0; }\n")
    bad = tmp_path / "bad.c"
    bad.write_text('#include "bootstrap.skel.h"\nint main(void) { return undefined_name; }\n')
    out_dir = tmp_path / "out"
    with pytest.raises(CompileError) as info:
        units["bootstrap"].wasm([good, bad], out_dir)
    assert str(info.value) == "bad.c: clang (wasm32) reported 1 error; fix the source and " \
                              "build again"
    assert "use of undeclared identifier 'undefined_name'" in (info.value.details or "")
    # the headers, whole; no .wasm, not even good.wasm; no temporary files
    assert sorted(os.listdir(out_dir)) == ["bootstrap.skel.h", "bootstrap.wasm.h"]


def test_a_projects_own_libbpf_wasm_h_wins(units: dict[str, Unit], tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "libbpf-wasm.h").write_text(
        "#define PROJECT_HEADER 1\n#include_next \"libbpf-wasm.h\"\n")
    app = project / "app.c"
    app.write_text('#include "bootstrap.skel.h"\n#ifndef PROJECT_HEADER\n#error ecc\'s first\n'
                   "#endif\nint main(void) { return 0; }\n")
    units["bootstrap"].wasm([app], tmp_path / "out")
    assert (tmp_path / "out" / "bootstrap.wasm").read_bytes()[:4] == b"\0asm"
    assert Path(GUEST_INCLUDE_DIR, "libbpf-wasm.h").is_file()


def test_doctor_checks_the_wasm_target(tmp_path: Path) -> None:
    from ecc.doctor import WASM_FIX, check_wasm_target

    assert check_wasm_target(None).line() == (
        "  ok    wasm32 target: clang links wasm32-wasi programs (wasi-libc, wasm-ld)")
    # a clang whose wasm-ld is missing, as where lld-19 is not installed
    fake = tmp_path / "clang"
    fake.write_text("#!/bin/sh\necho 'clang: error: unable to execute command: Executable "
                    "\"wasm-ld\" doesn'\"'\"'t exist!' >&2\nexit 1\n")
    fake.chmod(0o755)
    assert check_wasm_target(str(fake)).line() == (
        f"  warn  wasm32 target: {fake} cannot link a wasm32-wasi program (unable to execute "
        f"command: Executable \"wasm-ld\" doesn't exist!); only --wasm needs it; fix: {WASM_FIX}")
