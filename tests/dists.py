"""The sdist and wheel of this checkout, built as the release workflow builds them.

`python -m build`: the sdist, then the wheel from the unpacked sdist, so a file the
sdist lacks is missing from the wheel too. Built from a copy of the checkout, so
the build's egg-info never lands in the working tree.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ecc import __version__

ROOT = Path(__file__).resolve().parent.parent
# What the distributions are built from.
SOURCES = ("pyproject.toml", "README.md", "ecc", "templates", "docker")
WHEEL = f"ecc_bpf-{__version__}-py3-none-any.whl"
SDIST = f"ecc_bpf-{__version__}.tar.gz"


@dataclass(frozen=True)
class Dists:
    src: Path  # the copy of the checkout they were built from
    wheel: Path
    sdist: Path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment less PYTHONPATH (tests/conftest.py points it at the checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, **extra}


def build_dists(src: Path, out: Path) -> Dists:
    """Copy the checkout's SOURCES to the empty folder src and build them into out."""
    if importlib.util.find_spec("build") is None:
        raise AssertionError("python -m build is not installed: scripts/install.sh --dev "
                             "installs it (the dev extra of pyproject.toml)")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(ROOT / name, src / name)
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(src)],
                            cwd=out, capture_output=True, text=True, timeout=600,
                            env=clean_env(), check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [WHEEL, SDIST]
    return Dists(src, out / WHEEL, out / SDIST)
