"""Hostile package metadata: `ecc run` checks it and says what is wrong, never crashes.

Starting from a real package (the bootstrap example, checked in as an object
under tests/data/elf/ and given its real meta here by a build), random parts of
`meta` are replaced by values of the wrong shape; reading the package and
deriving the program's options must give the package or one of our errors.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecc.errors import EccError
from ecc.package.source import check_package
from ecc.run.options import option_specs

OBJECT = Path(__file__).resolve().parent.parent / "data" / "elf" / "bootstrap.o"
WRONG = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=5), st.booleans(),
                  st.floats(allow_nan=False), st.just([]), st.just({}), st.just([1]),
                  st.just([{}]), st.just({"name": 3}), st.just([None]))


@pytest.fixture(scope="module")
def meta() -> dict[str, Any]:
    from ecc.btf import parse_btf
    from ecc.elf import read_object
    from ecc.meta.exports import ExportSpec
    from ecc.meta.skel import build_meta

    obj = read_object(OBJECT.read_bytes())
    return build_meta(obj, parse_btf(obj.btf or b""), object_name="bootstrap_bpf",
                      version="0", export=ExportSpec("bootstrap.h", ("event",)))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@settings(max_examples=400, deadline=2000,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_wrong_shapes_give_our_errors(meta: dict[str, Any], data: st.DataObject) -> None:
    bad = copy.deepcopy(meta)
    paths = [p for p in _paths(bad) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        target: Any = bad
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = data.draw(WRONG)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this path
    try:
        loaded = check_package("fuzz", OBJECT.read_bytes(), bad)
        assert loaded.btf is not None
        option_specs(loaded.meta, loaded.elf, loaded.btf, loaded.elf.data_sections)
    except EccError:
        pass
