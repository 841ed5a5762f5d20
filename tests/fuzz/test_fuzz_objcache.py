"""Fuzz the compiled-object cache's entries (ecc/compiler/objcache.py): whatever a
manifest or an object file holds (a damaged disk, another version, a hand edit),
looking it up is a miss or a hit on the true bytes, never an exception."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc.compiler import objcache
from ecc.compiler.cache import bytes_digest

EXAMPLES = int(os.environ.get("ECC_FUZZ_EXAMPLES", "300"))
KEY = "0" * 32

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12)
paths = st.sampled_from(["/etc/hostname", "/", "/nonexistent/x.h", "rel.h", "/tmp/a\0b",
                         "/proc/self/mem", ""])
manifests = st.fixed_dictionaries({
    "format": st.sampled_from([1, 2, "1", None]),
    "object": st.text(max_size=64) | json_values,
    "diagnostics": st.text(max_size=30) | json_values,
    "depends": st.lists(paths, max_size=3) | json_values,
    "inputs": st.dictionaries(paths, st.text(max_size=64), max_size=3) | json_values,
})

# Well formed but for what the paths and digests say: past every shape check.
shaped = st.lists(st.tuples(paths, st.text(alphabet="0123456789abcdef", max_size=64)),
                  max_size=3).map(lambda pairs: {
                      "format": 1, "object": "", "diagnostics": "",
                      "depends": [p for p, _ in pairs], "inputs": dict(pairs)})


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ECC_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / objcache.FOLDER / KEY
    folder.mkdir(parents=True)
    return folder


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=shaped | manifests | json_values, obj=st.binary(max_size=64), true_digest=st.booleans())
def test_any_manifest_is_a_miss_or_a_true_hit(cache: Path, doc: object, obj: bytes,
                                              true_digest: bool) -> None:
    if isinstance(doc, dict) and true_digest:  # past the object check, to the inputs
        doc["object"] = bytes_digest(obj)
    (cache / objcache.MANIFEST).write_text(json.dumps(doc))
    (cache / objcache.OBJECT).write_bytes(obj)
    hit = objcache.find(KEY, ["/usr/include"], "/tmp/ws")
    assert hit is None or hit.object_bytes == obj


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_any_bytes_as_a_manifest_are_a_miss(cache: Path, raw: bytes) -> None:
    (cache / objcache.MANIFEST).write_bytes(raw)
    (cache / objcache.OBJECT).write_bytes(b"x")
    assert objcache.find(KEY, [], "/tmp/ws") is None
