"""Several programs in one ``ecc build`` (ecc/compiler/batch.py): -j, the status lines,
and the order taken from the last batch's build times (issue 7)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, requires_clang

from ecc.compiler.batch import DURATIONS_FILE, load_durations, longest_first


def test_longest_first_known_by_time_unknown_first_by_size(tmp_path: Path) -> None:
    files = {}
    for name, size in (("a", 10), ("b", 500), ("c", 20), ("d", 3000), ("e", 1)):
        files[name] = tmp_path / f"{name}.bpf.c"
        files[name].write_bytes(b"x" * size)
    last = {str(files["a"]): 0.120, str(files["c"]): 0.035, str(files["d"]): 0.050}
    order = longest_first([str(p) for p in files.values()], last)
    # b and e were never built: first, the bigger source first; then by last time.
    assert [Path(s).stem.split(".")[0] for s in order] == ["b", "e", "a", "d", "c"]


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"a": "slow"}', '{"a": -1}'])
def test_unusable_durations_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        text: str) -> None:
    monkeypatch.setenv("ECC_CACHE_DIR", str(tmp_path))
    (tmp_path / DURATIONS_FILE).write_text(text)
    assert load_durations() == {}


def _ecc(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "ecc", *args],
                          capture_output=True, text=True,
                          env=dict(os.environ, ECC_CACHE_DIR=str(cache)), check=False)


def _shown(result: subprocess.CompletedProcess[str]) -> tuple[bool, list[str]]:
    """Whether click was imported, and the lines for the user, times as N."""
    lines = result.stderr.splitlines()
    click = any(ln.split("|")[-1].strip() == "click" for ln in lines
                if ln.startswith("import time:"))
    return click, [re.sub(r" *\d+(\.\d+)?( m?s)", r" N\2", ln) for ln in lines
                   if not ln.startswith("import time:")]


@requires_clang
def test_batch_records_build_times_for_the_next_order(tmp_path: Path) -> None:
    """Also: `ecc build A B -j 2` builds without importing click, and says the same
    as through the click command."""
    from ecc.compiler.compile import host_arch

    cache = tmp_path / "cache"
    broken = tmp_path / "broken" / "broken.bpf.c"
    broken.parent.mkdir()
    broken.write_text("int x = ;\n")
    sources = [EXAMPLES / "xdp" / "xdp.bpf.c", EXAMPLES / "tc" / "tc.bpf.c", broken]
    run = _ecc("build", *map(str, sources), "-o", str(tmp_path / "out"), "-j", "2",
               cache=cache)
    through_click = _ecc("build", *map(str, sources), "-o", str(tmp_path / "out2"),
                         "-j", "2", "--arch", host_arch(), cache=tmp_path / "cache2")
    assert _shown(run)[0] is False and _shown(through_click)[0] is True
    assert sorted(_shown(run)[1]) == sorted(_shown(through_click)[1])
    assert run.returncode == through_click.returncode == 1
    assert "ecc: built 2 of 3 programs in" in run.stderr and "; 1 failed" in run.stderr
    assert [ln.split()[0] for ln in run.stderr.splitlines() if ln.startswith("  ")
            and ln.split()[0] in ("ok", "FAIL")].count("ok") == 2
    recorded = json.loads((cache / DURATIONS_FILE).read_text())
    # Only the programs that built, by absolute path; a failure says nothing of its time.
    assert set(recorded) == {str(sources[0]), str(sources[1])}
    assert all(0 < v < 60 for v in recorded.values())
    assert (tmp_path / "out" / "xdp" / "package.json").is_file()


def test_two_programs_of_one_stem_into_one_folder_are_an_error(tmp_path: Path) -> None:
    """-o DIR puts each program in DIR/<stem>: two x.bpf.c of different folders would
    overwrite each other there. One line naming both and the fix, nothing built."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.bpf.c").write_text("int x = ;\n")  # never compiled
    (tmp_path / "b" / "y.bpf.c").write_text("int y = ;\n")
    sources = ["a/x.bpf.c", "b/y.bpf.c", "b/x.bpf.c"]
    run = subprocess.run([sys.executable, "-m", "ecc", "build", *sources, "-o", "out"],
                         capture_output=True, text=True, cwd=tmp_path,
                         env=dict(os.environ, ECC_CACHE_DIR=str(tmp_path / "cache"),
                                  PYTHONPATH=str(Path(__file__).resolve().parents[1])),
                         check=False)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "ecc: error: a/x.bpf.c and b/x.bpf.c would both write x.bpf.o and its package to "
        "out/x/; build them in separate runs with their own -o folders, or rename one"]
    assert not (tmp_path / "out").exists()
    # Beside their sources (no -o), each has a folder of its own: no clash.
    from ecc.compiler.batch import check_distinct_outputs
    from ecc.compiler.options import BuildOptions

    check_distinct_outputs([str(tmp_path / s) for s in sources], BuildOptions(source=""))
