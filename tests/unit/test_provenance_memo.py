"""A big header's SHA-256 (meta.provenance) kept in the cache for the next `ecc build`
process, under the file's stat: found again unchanged, never for a rewritten file."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from ecc.compiler import provenance


@pytest.fixture()
def settled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache, an empty in-process memo, and every file counted as settled."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ECC_CACHE_DIR", str(cache))
    monkeypatch.setattr(provenance, "_MEMO", {})
    monkeypatch.setattr(provenance, "_SETTLED_NS", -(10**19))
    return cache


def big_file(path: Path, fill: bytes) -> bytes:
    data = fill * (provenance._KEPT_ON_DISK // len(fill) + 1)
    path.write_bytes(data)
    return data


def test_a_second_process_finds_the_digest(settled: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    header = tmp_path / "vmlinux.h"
    data = big_file(header, b"struct a;\n")
    assert provenance.digest(str(header)) == hashlib.sha256(data).hexdigest()
    assert len(list((settled / "digests").iterdir())) == 1

    def no_hashing(data: bytes) -> str:
        raise AssertionError("hashed again")

    monkeypatch.setattr(provenance, "_MEMO", {})  # as a new process starts
    monkeypatch.setattr(provenance, "sha256_hex", no_hashing)
    assert provenance.digest(str(header)) == hashlib.sha256(data).hexdigest()


def test_a_rewritten_file_is_hashed_again(settled: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    header = tmp_path / "vmlinux.h"
    big_file(header, b"struct a;\n")
    os.utime(header, ns=(0, 10**18))
    provenance.digest(str(header))
    monkeypatch.setattr(provenance, "_MEMO", {})
    time.sleep(0.05)  # past the file system clock's tick
    data = big_file(header, b"struct b;\n")  # same size, mtime put back: only the ctime tells
    os.utime(header, ns=(0, 10**18))
    assert provenance.digest(str(header)) == hashlib.sha256(data).hexdigest()


def test_a_damaged_memo_is_not_trusted(settled: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    header = tmp_path / "vmlinux.h"
    data = big_file(header, b"struct a;\n")
    provenance.digest(str(header))
    [memo] = (settled / "digests").iterdir()
    for damage in ("0" * 63, "Z" * 64, "\udcff"):
        memo.write_text(damage, errors="surrogateescape")
        monkeypatch.setattr(provenance, "_MEMO", {})
        assert provenance.digest(str(header)) == hashlib.sha256(data).hexdigest()


def test_unsettled_files_are_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file changed in the last two seconds could change again within the clock's tick."""
    monkeypatch.setenv("ECC_CACHE_DIR", str(tmp_path / "cache"))
    header = tmp_path / "vmlinux.h"
    data = big_file(header, b"struct a;\n")
    assert provenance.digest(str(header)) == hashlib.sha256(data).hexdigest()
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_only_costs_time(settled: Path, tmp_path: Path) -> None:
    settled.write_text("a file where the cache folder should be")
    header = tmp_path / "vmlinux.h"
    data = big_file(header, b"struct a;\n")
    assert provenance.digest(str(header)) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [0, 1, 63, 64, 1000, provenance._KEPT_ON_DISK - 1,
                                  provenance._KEPT_ON_DISK])
def test_both_sha256_implementations_agree(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert provenance.sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert provenance._builtin_sha256(data) == hashlib.sha256(data).hexdigest()
