"""Several programs in one ``ecc build`` (ecc/build/batch.py): -j, the status lines,
and the order taken from the last batch's build times (issue 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, requires_clang

from ecc.build.batch import DURATIONS_FILE, load_durations, longest_first


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


@requires_clang
def test_batch_records_build_times_for_the_next_order(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    broken = tmp_path / "broken" / "broken.bpf.c"
    broken.parent.mkdir()
    broken.write_text("int x = ;\n")
    sources = [EXAMPLES / "xdp" / "xdp.bpf.c", EXAMPLES / "tc" / "tc.bpf.c", broken]
    run = subprocess.run([sys.executable, "-m", "ecc", "build", *map(str, sources), "-o",
                          str(tmp_path / "out"), "-j", "2"], capture_output=True, text=True,
                         env=dict(os.environ, ECC_CACHE_DIR=str(cache)), check=False)
    assert run.returncode == 1
    assert "ecc: built 2 of 3 programs in" in run.stderr and "; 1 failed" in run.stderr
    assert [ln.split()[0] for ln in run.stderr.splitlines() if ln.startswith("  ")
            and ln.split()[0] in ("ok", "FAIL")].count("ok") == 2
    recorded = json.loads((cache / DURATIONS_FILE).read_text())
    # Only the programs that built, by absolute path; a failure says nothing of its time.
    assert set(recorded) == {str(sources[0]), str(sources[1])}
    assert all(0 < v < 60 for v in recorded.values())
    assert (tmp_path / "out" / "xdp" / "package.json").is_file()
