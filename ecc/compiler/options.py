"""The options of ``ecc build``, written once: click's options (cli.py), their
defaults for the quick start (launch.py), the host paths of ``--docker``
(docker.py) and the :class:`BuildOptions` of a build all come from
:data:`BUILD_OPTIONS`.

A table of NamedTuples, imported before clang starts (see pipeline.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .targets import Target


class BuildOptions(NamedTuple):
    source: str
    export_header: str | None = None
    output_dir: str | None = None
    yaml: bool = False
    header_only: bool = False
    wasm_header: bool = False
    workspace: str | None = None
    cflags: tuple[str, ...] = ()
    clang: str | None = None
    llvm_strip: str | None = None
    bpftool: str | None = None
    no_package_json: bool = False
    arch: str | None = None
    vmlinux: str | None = None
    btf: str | None = None               # a BTF file to generate vmlinux.h from (--btf)
    no_doc: bool = False
    cache: bool = True
    # Take the object of an earlier build of the same bytes (objcache.py); --verify's
    # fresh build compiles. ECC_OBJECT_CACHE=0 turns it off too.
    cached_objects: bool = True
    btfgen: bool = False                 # also write <stem>.tar with tailored BTF (btfgen.py)
    btfhub_archive: str | None = None
    standalone: bool = False             # also write <stem>.out (standalone.py)
    wasm: tuple[str, ...] = ()           # wasm apps to build around it; "": <stem>.c (wasm/)
    py_skel: bool = False                # also write <stem>_skel.py (pyskel.py)


class Option(NamedTuple):
    name: str                   # click's parameter name
    flags: tuple[str, ...]      # how it is spelled, as click lists them
    kind: str                   # "flag", "value", "values" (repeatable), "count" (an int >= 1),
                                # "apps" (repeatable, the value optional: "" when left out)
    help: str
    metavar: str | None = None
    field: str | None = None    # the BuildOptions field it sets as given (others: see below)
    quick: bool = False         # the quick start takes it (launch.py)
    path: str | None = None     # a host path ("path") or "[ARCH=]path" ("arch=path")


# In the order click shows them. ``field``: the BuildOptions field an option sets as
# given; build_options sets the others (inputs, cflags, arch, vmlinux, btf, cache).
BUILD_OPTIONS: tuple[Option, ...] = (
    Option("output_dir", ("-o", "--output-path", "--output-dir"), "value",
           "Where the outputs go (default: the source's folder).", "DIR",
           field="output_dir", quick=True, path="path"),
    Option("verbose", ("-v", "--verbose"), "flag", "Print each command run and timings."),
    Option("yaml_", ("-y", "--yaml"), "flag",
           "Write .skel.yaml and package.yaml instead of JSON.", field="yaml", quick=True),
    Option("header_only", ("--header-only",), "flag",
           "SOURCE is a header: build an object that only carries its types.",
           field="header_only"),
    Option("wasm_header", ("--wasm-header",), "flag", "Also write ewasm-skel.h.",
           field="wasm_header", quick=True),
    Option("workspace", ("-w", "--workspace-path"), "value",
           "Where temporary build files go (default: a private temp folder, removed).", "DIR",
           field="workspace", path="path"),
    Option("cflags", ("-a", "--additional-cflags"), "values",
           "Extra clang flags (split on spaces); may be repeated.", "FLAGS"),
    Option("clang", ("-c", "--clang-bin"), "value", "clang to use.", "PATH", field="clang",
           path="path"),
    Option("llvm_strip", ("-l", "--llvm-strip-bin"), "value",
           "Strip with this llvm-strip (default: in-process, the same result).", "PATH",
           field="llvm_strip", path="path"),
    Option("bpftool", ("--bpftool-bin",), "value",
           "bpftool to use (to generate vmlinux.h, and for --btfgen).", "PATH",
           field="bpftool", path="path"),
    Option("no_package_json", ("-n", "--no-generate-package-json"), "flag",
           "Write only the object and the .skel.json.", field="no_package_json", quick=True),
    Option("arch", ("--arch",), "value",
           "Target architecture(s) for __TARGET_ARCH_* (default: the host's); "
           "several build one package each into <output>/<arch>/.", "ARCH[,ARCH...]"),
    Option("vmlinux", ("--vmlinux",), "values",
           "The vmlinux.h to compile against (per arch: --vmlinux arm64=FILE).", "[ARCH=]FILE",
           path="arch=path"),
    Option("btf", ("--btf",), "values",
           "Generate vmlinux.h from this kernel BTF (per arch: --btf arm64=FILE).",
           "[ARCH=]FILE", path="arch=path"),
    Option("link", ("--link",), "value",
           "Compile every SOURCE and link them (bpftool gen object) into one "
           "package, NAME.bpf.o.", "NAME"),
    Option("verify", ("--verify",), "flag",
           "Build again into a temporary folder and compare with the outputs already "
           "there; exit 1 naming what differs."),
    Option("report", ("--report",), "value",
           "Write a JSON report: inputs, outputs, commands, timings, warnings.", "FILE.json",
           path="path"),
    Option("depfile", ("--depfile",), "value",
           "Write a make rule: the outputs depend on every file the build read.", "FILE",
           path="path"),
    Option("no_doc", ("--no-doc",), "flag", "Ignore doc-comment annotations.", field="no_doc",
           quick=True),
    Option("no_cache", ("--no-cache",), "flag",
           "Do not use (or keep) the precompiled headers and compiled objects in the "
           "cache.", quick=True),
    Option("jobs", ("-j", "--jobs"), "count",
           "With several programs: how many to build at once (default: the cores).", "N",
           quick=True),
    Option("btfgen", ("-b", "--btfgen"), "flag",
           "Also write <stem>.tar: the package plus a minimized BTF per kernel of "
           "--btfhub-archive, for kernels without their own BTF.", field="btfgen"),
    Option("btfhub_archive", ("--btfhub-archive",), "value",
           "A local BTFHub archive folder (<distro>/<version>/<arch>/<kernel>.btf "
           "or .btf.tar.xz) for --btfgen.", "DIR", field="btfhub_archive", path="path"),
    Option("standalone", ("-s", "--standalone"), "flag",
           "Also write <stem>.out: one executable that runs the program like "
           "`ecc run package.json` (needs only Python 3.11+ and libbpf.so.1); with --wasm, "
           "<app>.out runs the WebAssembly program instead (the target also needs `pip install "
           "wasmtime`).",
           field="standalone"),
    Option("wasm", ("--wasm",), "apps",
           "Also build APP.c (default: <stem>.c beside the source; may be repeated) into a "
           "WebAssembly program around this one: writes <stem>.skel.h, <stem>.wasm.h and "
           "<stem>.wasm (clang-19 --target=wasm32-wasi), run with `ecc run <stem>.wasm`.",
           "[APP.c]", field="wasm", path="path"),
    Option("check_kernels", ("--check-kernels",), "values",
           "After the build, say which kernels can run it (as `ecc check --kernel`): a "
           "kernel BTF file or a BTFHub archive folder; may be repeated. Exit 1 when one "
           "cannot (the outputs stay written).", "BTF|DIR", path="path"),
    Option("py_skel", ("--py-skel",), "flag",
           "Also write <stem>_skel.py: a typed Python skeleton (dataclasses for the "
           "exported structs, the options as typed keywords, typed maps) with the package "
           "inside; `from <stem>_skel import <Stem>` is all a user needs.", field="py_skel"),
    Option("docker", ("--docker",), "flag",
           "Build inside the ecc container image, through Docker or podman's Docker "
           "API ($DOCKER_HOST); the image is built on first use."),
)

_EMPTY: dict[str, Any] = {"flag": False, "value": None, "values": (), "count": None,
                          "apps": ()}
# Every parameter of `ecc build` at its default, as click fills them in
# (tests/test_cli.py, test_quick_defaults_are_clicks, checks that these are click's own).
DEFAULTS: dict[str, Any] = {o.name: _EMPTY[o.kind] for o in BUILD_OPTIONS}
# The options that name a file or folder on the host (--docker mounts them).
HOST_PATHS: dict[str, str] = {o.name: o.path for o in BUILD_OPTIONS if o.path is not None}


def build_options(params: Mapping[str, Any], target: Target) -> BuildOptions:
    """The BuildOptions of click's parameters, for one target (targets.py)."""
    import shlex

    inputs = params["inputs"]
    given = {o.field: params[o.name] for o in BUILD_OPTIONS if o.field is not None}
    return BuildOptions(
        source=inputs[0], export_header=inputs[1] if len(inputs) > 1 else None,
        cflags=tuple(f for group in params["cflags"] for f in shlex.split(group)),
        arch=target.arch, vmlinux=target.vmlinux, btf=target.btf,
        cache=not params["no_cache"], **given)
