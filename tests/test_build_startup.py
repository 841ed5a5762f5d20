"""What a warm ``ecc build`` imports: no :mod:`dataclasses` (nor the :mod:`inspect` it
brings); its records are ecc/record.py's. ``ecc run`` is checked by test_run_startup.py.

The build's speed is measured in benchmarks/; here only the shape is pinned, through
``-X importtime``'s list of the modules the process imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = ROOT / "examples" / "bootstrap"
# Modules a build has no use for: dataclasses compiles methods at import and brings inspect.
NOT_ON_THE_WAY = ("dataclasses", "inspect", "elftools")


def imported_by_build(out: Path) -> list[str]:
    """The modules ``ecc build`` of the bootstrap example imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "ecc", "build",
                           str(BOOTSTRAP / "bootstrap.bpf.c"), str(BOOTSTRAP / "bootstrap.h"),
                           "-o", str(out)], capture_output=True, text=True, cwd=ROOT,
                          env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    return [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:")]


def test_warm_build_imports_no_dataclasses(tmp_path: Path, fresh_cache: Path) -> None:
    require("clang")
    cold = imported_by_build(tmp_path / "cold")
    assert any(p.is_file() for p in fresh_cache.rglob("*")), "the cold build cached nothing"
    warm = imported_by_build(tmp_path / "warm")
    # The lists are real: the build's own modules are in them.
    for needed in ("ecc.compiler.result", "ecc.doc_comments.records", "ecc.compiler.strip"):
        assert needed in cold and needed in warm, needed
    assert [m for m in warm if m.split(".")[0] in NOT_ON_THE_WAY] == []
    assert [m for m in cold if m.split(".")[0] in NOT_ON_THE_WAY] == []
    assert ((tmp_path / "warm" / "package.json").read_bytes()
            == (tmp_path / "cold" / "package.json").read_bytes())


@pytest.mark.parametrize("name", NOT_ON_THE_WAY)
def test_the_names_are_modules(name: str) -> None:
    """A typo in NOT_ON_THE_WAY would make the check above pass vacuously."""
    import importlib.util

    assert importlib.util.find_spec(name) is not None
