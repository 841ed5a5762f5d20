"""``ecc doctor``: is this machine able to build (and run) eBPF packages?

Each check is one line; a failed one says what to do. The toolchain checks
also run quietly after a build fails for a reason that is not in the
program's source (no located diagnostic), so that "clang has no BPF target"
is said in those words instead of as clang's own puzzling error.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import CompileError, EccError

# CO-RE type-existence and enum-value relocations (bpf_core_type_exists,
# bpf_core_enum_value in libbpf's bpf_core_read.h) arrived in LLVM 12.
MIN_CLANG = 12
# BPF_UPROBE/BPF_URETPROBE (examples/uprobe) arrived in libbpf 1.2.0.
MIN_LIBBPF = (1, 2)
CLANG_FIX = "apt-get install clang-19 (Debian), or name one with --clang-bin"
LIBBPF_FIX = "apt-get install -t bookworm-backports libbpf-dev (Debian 12)"

# A program that only compiles, and only yields a CO-RE relocation, when clang
# knows the BPF target and its CO-RE builtins.
CORE_PROBE = b"""\
struct probe { int a; int b; } __attribute__((preserve_access_index));
int read_b(struct probe *p) { return __builtin_preserve_access_index(p->b); }
"""


@dataclass(frozen=True)
class Check:
    name: str
    status: str        # "ok", "FAIL", "warn", "skip"
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def line(self) -> str:
        text = f"  {self.status:<5} {self.name}: {self.detail}"
        return f"{text}; fix: {self.fix}" if self.fix else text


@dataclass
class _State:
    clang: str | None = None
    clang_major: int | None = None
    bpf_target: bool = False


def _tool_output(argv: Sequence[str]) -> tuple[int, str]:
    from .compiler import tools

    try:
        result = tools.run(argv, what=f"running {os.path.basename(argv[0])}", check=False)
    except EccError as exc:
        return 127, str(exc)
    text = (result.stdout + result.stderr).decode(errors="replace")
    return result.returncode, text


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def check_clang(state: _State, explicit: str | None) -> Check:
    from .compiler import tools
    from .errors import ToolNotFoundError

    try:
        clang = tools.find_tool("clang", explicit)
    except ToolNotFoundError:
        where = f"not found at '{explicit}'" if explicit else "not found on PATH"
        return Check("clang", "FAIL", where, CLANG_FIX)
    code, text = _tool_output([clang, "--version"])
    match = re.search(r"version (\d+)\.(\d+)", text)
    if code != 0 or match is None:
        return Check("clang", "FAIL", f"{clang} --version did not answer with a version "
                     f"({_first_line(text) or f'exit {code}'})", CLANG_FIX)
    state.clang, state.clang_major = clang, int(match.group(1))
    version = _first_line(text)
    if state.clang_major < MIN_CLANG:
        return Check("clang", "FAIL", f"{clang} is {version}, older than clang {MIN_CLANG} "
                     f"(CO-RE type and enum relocations)", CLANG_FIX)
    return Check("clang", "ok", f"{clang}, {version}")


def check_bpf_target(state: _State) -> Check:
    if state.clang is None:
        return Check("BPF target", "skip", "not checked: no usable clang")
    code, text = _tool_output([state.clang, "-print-targets"])
    if code == 0 and re.search(r"^\s*bpf\s", text, re.M):
        state.bpf_target = True
        return Check("BPF target", "ok", "registered (clang -print-targets lists bpf)")
    return Check("BPF target", "FAIL",
                 f"{state.clang} has no BPF target (clang -print-targets does not list bpf)",
                 "install a clang built with the BPF target: " + CLANG_FIX)


def check_core(state: _State) -> Check:
    if state.clang is None or not state.bpf_target:
        return Check("CO-RE builtins", "skip",
                     "not checked: " + ("no usable clang" if state.clang is None
                                        else "no BPF target"))
    with tempfile.TemporaryDirectory(prefix="ecc-doctor-") as tmp:
        src = os.path.join(tmp, "probe.c")
        obj = os.path.join(tmp, "probe.o")
        with open(src, "wb") as fh:
            fh.write(CORE_PROBE)
        code, text = _tool_output([state.clang, "-g", "-O2", "-target", "bpf", "-c", src,
                                   "-o", obj])
        if code != 0:
            error = next((line.split("error: ", 1)[1] for line in text.splitlines()
                          if "error: " in line), _first_line(text))
            return Check("CO-RE builtins", "FAIL",
                         f"__builtin_preserve_access_index does not compile ({error})",
                         CLANG_FIX)
        with open(obj, "rb") as fh:
            relocations = core_relocation_bytes(fh.read())
    if not relocations:
        return Check("CO-RE builtins", "FAIL",
                     "__builtin_preserve_access_index compiled, but without a CO-RE "
                     "relocation in .BTF.ext", CLANG_FIX)
    return Check("CO-RE builtins", "ok", "__builtin_preserve_access_index gives a CO-RE "
                 "relocation")


def core_relocation_bytes(obj: bytes) -> int:
    """Length of the CO-RE relocation part of an object's .BTF.ext (0 when none)."""
    import struct

    from .elf import read_object
    from .errors import ElfError

    try:
        ext = read_object(obj).btf_ext
    except ElfError:
        return 0
    if ext is None or len(ext) < 32:
        return 0
    hdr_len = struct.unpack_from("<I", ext, 4)[0]
    if hdr_len < 32:
        return 0
    return int(struct.unpack_from("<I", ext, 28)[0])


def check_llvm_strip(explicit: str | None) -> Check:
    from .compiler import tools
    from .errors import ToolNotFoundError

    try:
        strip = tools.find_tool("llvm-strip", explicit)
    except ToolNotFoundError:
        if not explicit:  # builds strip in-process: only --llvm-strip-bin needs the tool
            return Check("llvm-strip", "warn", "not found on PATH; builds strip in-process, "
                         "only --llvm-strip-bin needs it", "apt-get install llvm-19 (Debian)")
        return Check("llvm-strip", "FAIL", f"not found at '{explicit}'",
                     "apt-get install llvm-19 (Debian), or name one with --llvm-strip-bin")
    code, text = _tool_output([strip, "--version"])
    if code != 0:
        return Check("llvm-strip", "FAIL", f"{strip} --version failed (exit {code})",
                     "apt-get install llvm-19 (Debian), or name one with --llvm-strip-bin")
    version = next((line.strip() for line in text.splitlines() if "version" in line), "")
    return Check("llvm-strip", "ok", f"{strip}" + (f", {version}" if version else ""))


def check_bpftool(explicit: str | None) -> Check:
    from .compiler import tools
    from .errors import ToolNotFoundError

    try:
        bpftool = tools.find_tool("bpftool", explicit)
    except ToolNotFoundError:
        return Check("bpftool", "FAIL", "not found (it makes vmlinux.h, and links --link "
                     "builds)", "apt-get install -t bookworm-backports bpftool (Debian 12)")
    code, text = _tool_output([bpftool, "version"])
    return Check("bpftool", "ok" if code == 0 else "FAIL",
                 f"{bpftool}, {_first_line(text)}" if code == 0 else
                 f"{bpftool} version failed (exit {code})",
                 "" if code == 0 else "apt-get install -t bookworm-backports bpftool")


WASM_FIX = ("apt-get install wasi-libc lld-19 libclang-rt-19-dev-wasm32 (Debian 12); "
            "scripts/install.sh does")


def check_wasm_target(explicit: str | None) -> Check:
    """Whether clang links a wasm32-wasi program: its C library, wasm-ld, compiler runtime.

    A warning, not a failure: only `ecc build --wasm` needs it.
    """
    from .compiler import tools
    from .errors import ToolNotFoundError

    try:
        clang = tools.find_tool("clang", explicit)
    except ToolNotFoundError:
        return Check("wasm32 target", "skip", "not checked: no clang")
    with tempfile.TemporaryDirectory(prefix="ecc-doctor-") as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write("#include <stdio.h>\nint main(void) { return puts(\"\") < 0; }\n")
        code, text = _tool_output([clang, "--target=wasm32-wasi", "-O2", src, "-o",
                                   os.path.join(tmp, "probe.wasm")])
    if code != 0:
        error = next((line.split("error: ", 1)[1] for line in text.splitlines()
                      if "error: " in line), _first_line(text) or f"exit {code}")
        return Check("wasm32 target", "warn", f"{clang} cannot link a wasm32-wasi program "
                     f"({error}); only --wasm needs it", WASM_FIX)
    return Check("wasm32 target", "ok", "clang links wasm32-wasi programs (wasi-libc, wasm-ld)")


def _include_dirs(state: _State) -> list[str]:
    if state.clang is not None:
        from .compiler.compile import system_include_dirs

        try:
            return system_include_dirs(state.clang)
        except EccError:
            pass
    return ["/usr/local/include", "/usr/include"]


def libbpf_version(header_text: str) -> tuple[int, int] | None:
    major = re.search(r"#\s*define\s+LIBBPF_MAJOR_VERSION\s+(\d+)", header_text)
    minor = re.search(r"#\s*define\s+LIBBPF_MINOR_VERSION\s+(\d+)", header_text)
    if major is None or minor is None:
        return None
    return int(major.group(1)), int(minor.group(1))


def check_libbpf_headers(state: _State) -> Check:
    dirs = _include_dirs(state)
    found = next((d for d in dirs if os.path.isfile(os.path.join(d, "bpf", "bpf_helpers.h"))),
                 None)
    if found is None:
        return Check("libbpf headers", "FAIL",
                     f"bpf/bpf_helpers.h is in none of {', '.join(dirs)}", LIBBPF_FIX)
    try:
        with open(os.path.join(found, "bpf", "libbpf_version.h")) as fh:
            version = libbpf_version(fh.read())
    except OSError:
        version = None
    where = os.path.join(found, "bpf")
    if version is None:
        return Check("libbpf headers", "FAIL",
                     f"{where} has no readable libbpf_version.h (libbpf older than 0.6?)",
                     LIBBPF_FIX)
    text = f"{version[0]}.{version[1]}"
    if version < MIN_LIBBPF:
        return Check("libbpf headers", "FAIL",
                     f"{where} is libbpf {text}, older than "
                     f"{MIN_LIBBPF[0]}.{MIN_LIBBPF[1]} (BPF_UPROBE, BPF_URETPROBE)", LIBBPF_FIX)
    return Check("libbpf headers", "ok", f"{where}, libbpf {text}")


def check_kernel_btf(path: str = "/sys/kernel/btf/vmlinux") -> Check:
    fix = ("a kernel built with CONFIG_DEBUG_INFO_BTF=y; meanwhile build with --vmlinux FILE "
           "or --btf FILE, and run with ecc run --btf FILE")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        return Check("kernel BTF", "FAIL", f"{path} cannot be read ({exc.strerror})", fix)
    if head[:2] not in (b"\x9f\xeb", b"\xeb\x9f"):
        return Check("kernel BTF", "FAIL", f"{path} is not BTF (bad magic)", fix)
    return Check("kernel BTF", "ok", f"{path}, {os.path.getsize(path)} bytes")


def _mounts(table: str = "/proc/self/mounts") -> list[tuple[str, str]]:
    try:
        with open(table) as fh:
            rows = [line.split() for line in fh]
    except OSError:
        return []
    return [(r[1], r[2]) for r in rows if len(r) >= 3]


def check_mount(fstype: str, where: str, name: str) -> Check:
    points = [point for point, kind in _mounts() if kind == fstype]
    if points:
        return Check(name, "ok", f"mounted at {', '.join(points)}")
    return Check(name, "FAIL", f"no {fstype} file system is mounted",
                 f"mount -t {fstype} {fstype} {where}")


def toolchain_checks(clang: str | None = None,
                     llvm_strip: str | None = None) -> list[Check]:
    """What a build needs: clang, its BPF target and CO-RE, llvm-strip, libbpf headers."""
    state = _State()
    steps: list[Callable[[], Check]] = [
        lambda: check_clang(state, clang),
        lambda: check_bpf_target(state),
        lambda: check_core(state),
        lambda: check_llvm_strip(llvm_strip),
        lambda: check_libbpf_headers(state),
    ]
    return [step() for step in steps]


def all_checks(clang: str | None = None, llvm_strip: str | None = None,
               bpftool: str | None = None) -> list[Check]:
    return [
        *toolchain_checks(clang, llvm_strip),
        check_bpftool(bpftool),
        check_wasm_target(clang),
        check_kernel_btf(),
        check_mount("bpf", "/sys/fs/bpf", "bpffs"),
        check_mount("tracefs", "/sys/kernel/tracing", "tracefs"),
    ]


_LOCATED = re.compile(r"^\S.*:\d+:\d+: (?:fatal )?error: ", re.M)


def explain_build_failure(exc: EccError, clang: str | None = None,
                          llvm_strip: str | None = None) -> EccError:
    """``exc``, with the failed toolchain checks added to its details when the
    failure is not the program's own (no diagnostic points into a file)."""
    if not isinstance(exc, CompileError) or _LOCATED.search(exc.details or ""):
        return exc
    failed = [c.line() for c in toolchain_checks(clang, llvm_strip) if c.failed]
    if not failed:
        return exc
    details = "\n".join(filter(None, [exc.details, "ecc doctor:", *failed]))
    return type(exc)(str(exc), details=details)
