"""Every ```python block of docs/api.md runs, in order, as root against the real kernel,
in a folder holding the example sources it builds."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.clang]

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text())


def test_the_document_has_examples() -> None:
    found = blocks()
    assert len(found) >= 6
    text = "\n".join(found)
    for name in ("ecc.build", "ecc.load", "prog.events", "prog.maps", "prog.histogram",
                 "prog.aevents", "py_skel=True", "_skel import", "prog.iterate",
                 "raw=True", "prog.variables"):
        assert name in text, f"docs/api.md shows no {name}"


def test_examples_run(tmp_path: Path, cache_env: Path, kernel: None,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    for example in ("bootstrap", "runqlat", "task_iter", "globals"):
        for source in (ROOT / "examples" / example).glob(f"{example}.*"):
            shutil.copy(source, tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    path = list(sys.path)
    try:
        for index, code in enumerate(blocks(), 1):
            # Compiled under the document's name, so a failure points at the block.
            exec(compile(code, f"{DOC}:block{index}", "exec"), namespace)  # noqa: S102
    finally:
        sys.path[:] = path  # the skeleton's folder, added by the document
        sys.modules.pop("bootstrap_skel", None)
    assert os.path.isfile(tmp_path / "out" / "package.json")
    assert os.path.isfile(tmp_path / "typed" / "bootstrap_skel.py")
