"""``ecc.build``: one ``ecc build`` from Python, the command line's options as keywords."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compiler.options import BuildOptions
from ..errors import BuildError, EccError

# The command line's long spellings that differ from BuildOptions' field names.
_ALIASES = {
    "output_path": "output_dir",
    "additional_cflags": "cflags",
    "workspace_path": "workspace",
    "clang_bin": "clang",
    "llvm_strip_bin": "llvm_strip",
    "bpftool_bin": "bpftool",
    "no_generate_package_json": "no_package_json",
}
_PATHS = ("output_dir", "workspace", "clang", "llvm_strip", "bpftool", "vmlinux", "btf",
          "btfhub_archive")
_FLAGS = ("yaml", "header_only", "wasm_header", "no_package_json", "no_doc", "btfgen",
          "standalone", "py_skel")


@dataclass(frozen=True)
class BuildResult:
    """What one build wrote.

    ``package`` is the ``package.json`` (or ``package.yaml``), None with
    ``no_generate_package_json``; ``outputs`` every file written; ``warnings``
    what the command line would print as warnings; ``diagnostics`` clang's.
    """

    package: Path | None
    object: Path | None
    outputs: list[Path]
    meta: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    diagnostics: str = ""


def build(source: str | os.PathLike[str], header: str | os.PathLike[str] | None = None,
          **options: Any) -> BuildResult:
    """Build ``source`` (and the event structs of ``header``) like ``ecc build``.

    Keywords are the command line's long options with ``_`` for ``-``:
    ``output_dir`` (or ``output_path``), ``yaml``, ``header_only``,
    ``wasm_header``, ``workspace``, ``cflags`` (a string split like a shell
    would, or a list), ``clang``, ``llvm_strip``, ``bpftool``,
    ``no_generate_package_json``, ``arch`` (one), ``vmlinux``, ``btf``,
    ``no_doc``, ``no_cache``, ``btfgen``, ``btfhub_archive``, ``standalone``,
    ``wasm`` (a list of app sources), ``py_skel`` (also write the typed skeleton
    ``<stem>_skel.py``, docs/api.md). An unknown keyword is a ``TypeError``;
    any failure of the build is a :class:`~ecc.errors.BuildError` whose
    ``__cause__`` is the precise error (``CompileError``, ``ToolNotFoundError``).

    Thread safety: builds of different outputs may run in parallel threads;
    each build runs clang as a child process.
    """
    given: dict[str, Any] = {}
    for name, value in options.items():
        if name == "no_cache":
            given["cache"] = not value
            continue
        target = _ALIASES.get(name, name)
        if target in ("source", "export_header", "cache") or target not in BuildOptions._fields:
            raise TypeError(f"ecc.build() got an unknown option {name!r}")
        if target in given:
            raise TypeError(f"ecc.build() got option {target!r} twice (as {name!r})")
        given[target] = _normalize(target, value)
    opts = BuildOptions(source=os.fspath(source),
                        export_header=None if header is None else os.fspath(header), **given)
    from ..compiler.pipeline import build as run_build

    try:
        result = run_build(opts)
    except BuildError:
        raise
    except EccError as exc:
        raise BuildError(str(exc), exc.details) from exc
    outputs = [Path(p) for p in result.outputs]
    package = next((p for p in outputs if p.name in ("package.json", "package.yaml")), None)
    obj = next((p for p in outputs if p.name.endswith(".bpf.o")), None)
    return BuildResult(package, obj, outputs, result.meta, list(result.warnings),
                       result.diagnostics)


def _normalize(name: str, value: Any) -> Any:
    if name == "cflags":
        groups = [value] if isinstance(value, str) else list(value)
        return tuple(flag for group in groups for flag in shlex.split(str(group)))
    if name == "wasm":
        items: Iterable[Any] = [value] if isinstance(value, (str, os.PathLike)) else value
        return tuple(os.fspath(v) for v in items)
    if name in _PATHS and value is not None:
        return os.fspath(value)
    if name in _FLAGS:
        return bool(value)
    return value
