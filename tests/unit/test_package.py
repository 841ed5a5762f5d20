"""Package encoding and the checks a loader makes, with their exact messages."""

from __future__ import annotations

import base64
import json
import os
import zlib
from pathlib import Path

import pytest

from ecc.errors import PackageError
from ecc.package import (
    decode_object,
    dumps_json,
    encode_object,
    make_package,
    parse_package,
    wasm_header,
    write_atomic,
)

OBJ = bytes(range(256)) * 8


def test_round_trip() -> None:
    pkg = make_package(OBJ, {"bpf_skel": {"obj_name": "x"}})
    assert pkg["bpf_object_size"] == len(OBJ)
    assert zlib.decompress(base64.b64decode(pkg["bpf_object"])) == OBJ
    assert parse_package(pkg).object_bytes == OBJ


def test_encoding_is_deterministic() -> None:
    """The exact text for a short object (zlib's stream for level 6, standard base64), so
    the same object always gives the same package."""
    assert encode_object(b"ecc") == "eJxLTU4GAAJbASw="
    raw = base64.b64decode(encode_object(OBJ), validate=True)  # one line, no padding breaks
    assert raw[:2] == b"\x78\x9c"  # zlib header: deflate, 32 KiB window, level 6
    assert zlib.decompress(raw) == OBJ


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(("encoded", "size", "message"), [
    ("", 10, "package field 'bpf_object' must be a non-empty base64 string"),
    (b64(zlib.compress(OBJ)), "10",
     "package field 'bpf_object_size' must be a non-negative integer"),
    ("@@@@", 10, "package field 'bpf_object' is not valid base64: Only base64 data is allowed"),
    (b64(b"not zlib at all"), 10, "package field 'bpf_object' is not zlib data: Error -3 while "
     "decompressing data: incorrect header check"),
    (b64(zlib.compress(OBJ)), len(OBJ) - 1,
     f"package field 'bpf_object' inflates to more than {len(OBJ) - 1} bytes, the size "
     "'bpf_object_size' gives"),
    (b64(zlib.compress(OBJ)), len(OBJ) + 5,
     f"package field 'bpf_object' inflates to {len(OBJ)} bytes, but 'bpf_object_size' says "
     f"{len(OBJ) + 5}"),
    (b64(zlib.compress(OBJ)[:-10]), len(OBJ),
     "package field 'bpf_object' is truncated (its zlib stream is cut)"),
    (b64(zlib.compress(OBJ)), 1 << 40,
     "package field 'bpf_object_size' is 1099511627776 bytes, over the 67108864-byte limit"),
])
def test_decode_errors(encoded: str, size: object, message: str) -> None:
    with pytest.raises(PackageError) as err:
        decode_object(encoded, size)
    assert str(err.value).startswith(message)


def test_bomb_is_refused_without_inflating_it() -> None:
    bomb = zlib.compress(b"\0" * (200 * 1024 * 1024), 9)
    with pytest.raises(PackageError, match="inflates to more than 4096 bytes"):
        decode_object(b64(bomb), 4096)


@pytest.mark.parametrize(("value", "message"), [
    ([], "a package must be a JSON object with bpf_object and meta"),
    ({"bpf_object": "x", "bpf_object_size": 1}, "package has no 'meta' field"),
    ({"bpf_object": "x", "bpf_object_size": 1, "meta": {}},
     "package field 'meta.bpf_skel' must be an object"),
])
def test_parse_errors(value: object, message: str) -> None:
    with pytest.raises(PackageError) as err:
        parse_package(value)
    assert str(err.value) == message


def test_wasm_header_holds_the_package_text() -> None:
    text = dumps_json(make_package(OBJ, {"bpf_skel": {}}))
    header = wasm_header(text)
    start = header.index("program_data[] = ") + len("program_data[] = ")
    literal = header[start:header.index(";\n#endif")]
    assert json.loads(json.loads(literal)) == json.loads(text)


def test_write_atomic_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "package.json"
    write_atomic(str(target), "one")
    write_atomic(str(target), b"two")
    assert target.read_text() == "two"
    assert os.listdir(tmp_path) == ["package.json"]
