"""What `ecc run` imports before it says "running": what a run uses, nothing else (issue 22).

The start of a run is measured in benchmarks/run.py; here its shape is pinned: the
process is started without site-packages (``-S``, ecc found through PYTHONPATH), so
every module ``-X importtime`` lists before the "running" line was imported by the
run itself, and a third-party package or a stdlib module only some other path needs
(a writer's temp files, a tar or zip reader, the CLI) shows up by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from builds import Built

pytestmark = [pytest.mark.kernel, pytest.mark.clang]

ROOT = Path(__file__).resolve().parent.parent

# Imported by other paths, never needed to start a package: click (options go through
# the quick start), pyelftools (the run reads section headers itself), a writer's
# tempfile/shutil, archive readers (tar for --btfgen packages, zip for -s files),
# datetime (imported with the first event), the URL and registry clients, wasmtime,
# YAML, the compiler and command layers, and dataclasses (records are ecc/record.py's).
NOT_ON_THE_WAY = ("click", "elftools", "tempfile", "shutil", "random", "tarfile", "zipfile",
                  "bz2", "lzma", "datetime", "pathlib", "urllib", "http", "ssl", "wasmtime",
                  "yaml", "ecc.cli", "ecc.compiler", "ecc.oci", "ecc.api", "ecc.exporter",
                  "ecc.btf.mapdefs", "ecc.run.wasm", "ecc.run.btfarchive", "dataclasses")


def started_imports(package: str) -> tuple[list[str], list[str]]:
    """The modules ``ecc run PACKAGE`` imported until "ecc: running", and its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-S", "-X", "importtime", "-m", "ecc", "run",
                             "--duration", "30", package], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    modules: list[str] = []
    said: list[str] = []
    try:
        for line in proc.stderr:
            if line.startswith("import time:"):
                name = line.rsplit("|", 1)[-1].strip()
                if name != "imported package":
                    modules.append(name)
                continue
            said.append(line.rstrip("\n"))
            if line.startswith("ecc: running"):
                break
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert any(s.startswith("ecc: running") for s in said), said
    assert code == 0, said
    return modules, said


def test_run_starts_with_what_it_uses(built: dict[str, Built], kernel: None) -> None:
    case = built["cases/example-bootstrap"]
    assert case.result is not None, case.error
    modules, said = started_imports(str(case.package))
    # It did run: the package, libbpf, the event decoder and the printer were all loaded.
    for needed in ("ecc.package.source", "ecc.run.libbpf", "ecc.run.decode", "ecc.run.output",
                   "ctypes", "json", "zlib"):
        assert needed in modules, (needed, said)
    unexpected = [m for m in modules
                  if any(m == name or m.startswith(name + ".") for name in NOT_ON_THE_WAY)]
    assert unexpected == []
