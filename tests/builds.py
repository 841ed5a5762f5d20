"""Building the golden cases and examples, once per test run, for every test that needs them."""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ecc.cli import parse_build_args
from ecc.compiler import BuildResult, build
from ecc.errors import EccError

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "cases"
EXAMPLES = ROOT / "examples"
FLAGS_PREFIX = "// ecc-flags:"


@dataclass(frozen=True)
class Unit:
    """One buildable folder: a golden case or an example."""

    name: str
    folder: Path
    source: Path
    header: Path | None
    flags: tuple[str, ...]


def discover(folder: Path) -> Unit:
    """A case folder holds its source, or a file `from-example` naming an example to build."""
    pointer = folder / "from-example"
    if pointer.is_file():
        example = discover(EXAMPLES / pointer.read_text().strip())
        return dataclasses.replace(example, name=folder.name, folder=folder)
    sources = sorted(folder.glob("*.bpf.c"))
    headers = sorted(p for p in folder.glob("*.h") if p.name != "vmlinux.h")
    first = (sources or headers)[0]
    flags: tuple[str, ...] = ()
    first_line = first.read_text().splitlines()[0] if first.read_text() else ""
    if first_line.startswith(FLAGS_PREFIX):
        flags = tuple(shlex.split(first_line[len(FLAGS_PREFIX):]))
    if not sources:  # --header-only: the header is the source
        return Unit(folder.name, folder, headers[0], None, flags)
    header = headers[0] if headers else None
    return Unit(folder.name, folder, sources[0], header, flags)


def all_units(parent: Path) -> list[Unit]:
    folders = sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise AssertionError(f"no cases under {parent}: the glob matched nothing")
    return [discover(f) for f in folders]


def build_unit(unit: Unit, out_dir: Path) -> BuildResult:
    args = [str(unit.source)]
    if unit.header is not None:
        args.append(str(unit.header))
    args += [*unit.flags, "-o", str(out_dir)]
    opts = parse_build_args(args)
    return build(opts)


@dataclass(frozen=True)
class Built:
    unit: Unit
    out_dir: Path
    result: BuildResult | None
    error: EccError | None

    @property
    def package(self) -> Path:
        return self.out_dir / "package.json"


def build_all(units: Iterable[Unit], out_root: Path, jobs: int | None = None) -> dict[str, Built]:
    def one(unit: Unit) -> Built:
        out = out_root / unit.folder.parent.name / unit.name
        out.mkdir(parents=True, exist_ok=True)
        try:
            return Built(unit, out, build_unit(unit, out), None)
        except EccError as exc:
            return Built(unit, out, None, exc)

    with ThreadPoolExecutor(jobs or os.cpu_count() or 2) as pool:
        return {b.unit.folder.parent.name + "/" + b.unit.name: b
                for b in pool.map(one, list(units))}
