"""Builds at scale (issue 25): one cache entry per content, bounded, shared by a batch
without background makers, and never the reason a build fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from builds import CASES, EXAMPLES, Unit, all_units
from conftest import needs, requires_clang

from ecc.cli import parse_build_args
from ecc.compiler import BuildOptions, BuildResult, build, objcache, pch
from ecc.compiler.batch import build_many
from ecc.compiler.cache import disk_usage, parse_size

# Tests of the precompiled headers: every build compiles (objcache.py off).
pytestmark = pytest.mark.usefixtures("no_object_cache")

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = EXAMPLES / "bootstrap"

# A vmlinux.h of a few types: enough for bpf_helpers.h, and its PCH takes a blink.
SMALL_VMLINUX = """#ifndef __VMLINUX_H__
#define __VMLINUX_H__
typedef unsigned char __u8;
typedef short unsigned int __u16;
typedef unsigned int __u32;
typedef long long unsigned int __u64;
typedef int __s32;
typedef long long int __s64;
typedef __u32 __be32;
typedef __u16 __be16;
typedef __u32 __wsum;
typedef _Bool bool;
enum bpf_map_type { BPF_MAP_TYPE_HASH = 1, BPF_MAP_TYPE_ARRAY = 2 };
struct task_struct { int pid; int tgid; };
/* variant %d */
#endif
"""
PROGRAM = """#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int count_%s(void *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&counts, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def _folder(parent: Path, name: str, variant: int = 0) -> Path:
    """A project folder with its own small vmlinux.h (``variant`` changes its bytes)."""
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "vmlinux.h").write_text(SMALL_VMLINUX % variant)
    (folder / f"{name}.bpf.c").write_text(PROGRAM % name)
    return folder


def _build(folder: Path, *, cache: bool = True) -> BuildResult:
    name = folder.name
    out = folder / ("out" if cache else "out-no-cache")
    return build(BuildOptions(source=str(folder / f"{name}.bpf.c"), output_dir=str(out),
                              cache=cache))


def _used_pch(result: BuildResult) -> bool:
    return any("-include-pch" in c["argv"] for c in result.commands)


def _entries(cache: Path) -> list[Path]:
    return sorted(p.parent for p in pch.settle(cache))


@requires_clang
def test_two_folders_with_the_same_vmlinux_use_one_entry(tmp_path: Path,
                                                        fresh_cache: Path) -> None:
    a, b = _folder(tmp_path, "alpha"), _folder(tmp_path, "beta")
    other = _folder(tmp_path, "gamma", variant=1)  # other bytes: an entry of its own
    first = _build(a)
    assert not _used_pch(first)
    assert len(_entries(fresh_cache)) == 1
    second = _build(b)
    assert _used_pch(second), "beta's vmlinux.h has alpha's bytes: its PCH applies"
    assert len(_entries(fresh_cache)) == 1
    assert second.object_bytes == _build(b, cache=False).object_bytes
    assert first.object_bytes == _build(a, cache=False).object_bytes
    # The entry is its own: it names neither folder, so it outlives them.
    entry = _entries(fresh_cache)[0]
    assert (entry / "prefix.h").read_text() == \
        '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
    assert (entry / "vmlinux.h").read_bytes() == (a / "vmlinux.h").read_bytes()
    shutil.rmtree(a)
    assert _used_pch(third := _build(b)) and third.object_bytes == second.object_bytes
    _build(other)
    assert len(_entries(fresh_cache)) == 2


@pytest.mark.parametrize(("includes", "shareable", "expected"), [
    (('#include "vmlinux.h"', "#include <bpf/bpf_helpers.h>", "#include <bpf/bpf_tracing.h>"),
     True, ('#include "vmlinux.h"', "#include <bpf/bpf_helpers.h>")),
    (("#include <vmlinux.h>", "#include <bpf/bpf_helpers.h>"), True,
     ('#include "vmlinux.h"', "#include <bpf/bpf_helpers.h>")),
    # bpf_tracing.h first: the PCH must not declare bpf_helpers.h's names earlier
    (('#include "vmlinux.h"', "#include <bpf/bpf_tracing.h>", "#include <bpf/bpf_helpers.h>"),
     True, ('#include "vmlinux.h"',)),
    (('#include "vmlinux.h"', "#include <bpf/bpf_helpers.h>"), False, ('#include "vmlinux.h"',)),
    (('#include "vmlinux.h"',), True, ('#include "vmlinux.h"',)),
])
def test_the_shared_prefix_is_a_leading_part_of_the_programs(
        includes: tuple[str, ...], shareable: bool, expected: tuple[str, ...]) -> None:
    assert pch.shared_prefix(includes, shareable) == expected


@requires_clang
@needs("libbpf-dev")
def test_own_bpf_headers_are_not_shared(tmp_path: Path, fresh_cache: Path) -> None:
    """A folder with its own bpf/bpf_helpers.h: the entry holds vmlinux.h only, and the
    program gets its own helpers (here: one that defines a macro the system's has not)."""
    folder = _folder(tmp_path, "own")
    (folder / "bpf").mkdir()
    own = Path("/usr/include/bpf/bpf_helpers.h").read_text().replace(
        "#define __BPF_HELPERS__", "#define __BPF_HELPERS__\n#define OWN_HELPERS 7", 1)
    (folder / "bpf" / "bpf_helpers.h").write_text(own)
    shutil.copy("/usr/include/bpf/bpf_helper_defs.h", folder / "bpf")
    source = folder / "own.bpf.c"
    source.write_text(source.read_text().replace("__u32 zero = 0;",
                                                 "__u32 zero = OWN_HELPERS - 7;"))
    cold = _build(folder)
    entries = _entries(fresh_cache)
    assert len(entries) == 1
    assert (entries[0] / "prefix.h").read_text() == '#include "vmlinux.h"\n'
    warm = _build(folder)
    assert _used_pch(warm) and warm.object_bytes == cold.object_bytes


def _copy_unit(unit: Unit, parent: Path, vmlinux_h: Path) -> Unit:
    """The unit in a folder of its own, with its own copy of vmlinux.h."""
    folder = parent / unit.name
    shutil.copytree(unit.source.parent, folder,
                    ignore=shutil.ignore_patterns("expected*", "from-example", "*.md"))
    shutil.copy(vmlinux_h, folder / "vmlinux.h")
    return Unit(unit.name, folder, folder / unit.source.name,
                folder / unit.header.name if unit.header else None, unit.flags)


def _args(unit: Unit, out: Path, *extra: str) -> BuildOptions:
    return parse_build_args([str(unit.source), *([str(unit.header)] if unit.header else []),
                             *unit.flags, *extra, "-o", str(out)])


@requires_clang
@needs("bpftool", "kernel-btf")
def test_every_example_and_case_is_the_same_cold_warm_and_uncached(
        tmp_path: Path, fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each in a folder of its own with its own vmlinux.h copy: a cold batch (which makes
    the entries in the foreground), warm single builds and --no-cache builds give the
    same object and package. The whole corpus needs two entries for vmlinux.h (with and
    without bpf_helpers.h) and a few for the programs on system headers only (one per
    leading include list)."""
    from ecc.compiler.vmlinux import generated_header_dir

    vmlinux_h = Path(generated_header_dir(source_name="corpus")) / "vmlinux.h"
    units = [_copy_unit(u, tmp_path / "corpus", vmlinux_h) for u in all_units(CASES)
             if not (u.folder / "expected-error.txt").exists()]
    units += [_copy_unit(Unit(f"example-{d.name}", d, s, None, ()), tmp_path / "examples",
                         vmlinux_h)
              for d in sorted(EXAMPLES.iterdir()) for s in sorted(d.glob("*.bpf.c"))[:1]]
    shutil.rmtree(fresh_cache)  # the generated header's own folder is not the subject

    def cold(unit: Unit) -> BuildResult:
        return build(_args(unit, unit.folder / "cold"))

    with pch.batch(), ThreadPoolExecutor(2) as pool:
        colds = list(pool.map(cold, units))
    entries = pch.settle(fresh_cache)
    kinds = [(e.parent / "vmlinux.h").exists() for e in entries]
    assert 1 <= kinds.count(True) <= 2 and 1 <= kinds.count(False) <= 4, entries
    with ThreadPoolExecutor(2) as pool:
        warms = list(pool.map(lambda u: build(_args(u, u.folder / "warm")), units))
        plains = list(pool.map(lambda u: build(_args(u, u.folder / "plain", "--no-cache")),
                               units))
    differ = [u.name for u, c, w, p in zip(units, colds, warms, plains, strict=True)
              if not c.object_bytes == w.object_bytes == p.object_bytes]
    assert differ == []
    assert [u.name for u, w, p in zip(units, warms, plains, strict=True)
            if w.meta != p.meta] == []
    starts = {u.name for u in units if pch.prefix_includes(u.source.read_text())
              or pch.system_prefix(u.source.read_text())}
    assert len(starts) >= 40
    losing = {"extern_prefix_kfuncs"}  # its warm build compiled again without the PCH
    assert {u.name for u, w in zip(units, warms, strict=True) if _used_pch(w)} - losing \
        == starts - losing
    assert len(_entries(fresh_cache)) == len(entries)

    # The compiled objects (objcache.py) on the same corpus: a build keeps each, the next
    # takes it without clang, and what it writes is what the plain compile wrote.
    monkeypatch.setenv("ECC_OBJECT_CACHE", "1")
    monkeypatch.setattr(objcache, "SETTLED_NS", 0)  # just copied: the rule has its own test
    with ThreadPoolExecutor(2) as pool:
        kept = list(pool.map(lambda u: build(_args(u, u.folder / "kept")), units))
        taken = list(pool.map(lambda u: build(_args(u, u.folder / "taken")), units))
    assert [u.name for u, t, p in zip(units, taken, plains, strict=True)
            if t.object_bytes != p.object_bytes or t.meta != p.meta
            or t.diagnostics != p.diagnostics] == []
    hits = {i for i, t in enumerate(taken) if "cached" in t.timings}
    assert hits == {i for i, t in enumerate(taken)
                    if not any("clang" in os.path.basename(c["argv"][0]) for c in t.commands)}
    # Not kept: builds whose files preprocess by more than their bytes.
    unseen = {i for i, k in enumerate(kept)
              if any(objcache._depends_on_more(Path(f.path).read_bytes()) for f in k.inputs)}
    assert hits == set(range(len(units))) - unseen
    assert len(unseen) <= 0.1 * len(units), sorted(units[i].name for i in unseen)


@requires_clang
def test_a_batch_makes_each_entry_once_in_the_foreground(
        tmp_path: Path, fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_detach(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a batch left a maker behind")

    monkeypatch.setattr(pch.tools, "detach", no_detach)
    folders = [_folder(tmp_path, f"p{i}") for i in range(5)]
    template = BuildOptions(source="", output_dir=str(tmp_path / "out"))
    outcomes = build_many([str(f / f"{f.name}.bpf.c") for f in folders], template, 2,
                          lambda o: None)
    assert all(o.error is None for o in outcomes)
    entry = next((fresh_cache / "pch").iterdir())
    assert (entry / "prefix.h.pch").is_file()  # made by the batch itself, already there
    assert sum(_used_pch(o.result) for o in outcomes if o.result) >= 3
    # one made it; the others waited for it or compiled without it (never a second make)
    assert (fresh_cache / "stats" / "misses").stat().st_size + \
        (fresh_cache / "stats" / "hits").stat().st_size == 5


def _fake_entry(tmp_path: Path) -> pch.PchEntry:
    folder = tmp_path / "entry"
    folder.mkdir()
    return pch.PchEntry.at(folder, (), ('#include "vmlinux.h"',))


@pytest.mark.parametrize(("elapsed", "waits"), [(0.1, False), (6.0, True), (25.0, False)])
def test_a_build_waits_for_a_maker_only_when_that_is_faster(
        tmp_path: Path, fresh_cache: Path, elapsed: float, waits: bool) -> None:
    """The usual make takes 10 s here: a maker just started is not waited for (a compile
    without the PCH ends sooner), one past half-way is, one past twice the usual is stuck."""
    import fcntl

    (fresh_cache / "stats").mkdir(parents=True)
    (fresh_cache / "stats" / pch.MAKE_SECONDS).write_text("10")
    entry = _fake_entry(tmp_path)
    holder = os.open(entry.folder / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    stamp = time.time() - elapsed
    (entry.folder / pch.MAKING).touch()
    os.utime(entry.folder / pch.MAKING, (stamp, stamp))

    def finish() -> None:
        time.sleep(0.3)
        entry.pch.write_bytes(b"made")
        os.close(holder)  # releases the lock

    maker = threading.Thread(target=finish)
    maker.start()
    start = time.perf_counter()
    decision = pch.decide("clang", entry, "int x;")
    took = time.perf_counter() - start
    maker.join()
    assert decision == pch.Decision(waits, False)
    assert (took >= 0.25) == waits


def test_sizes_parse() -> None:
    assert [parse_size(t) for t in ("500M", "1G", "1.5GiB", "2048", "10k", "3MB")] == [
        500 << 20, 1 << 30, 3 << 29, 2048, 10 << 10, 3 << 20]
    assert parse_size("lots") is None and parse_size("-1M") is None


@requires_clang
def test_eviction_keeps_the_cache_under_its_limit(tmp_path: Path, fresh_cache: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = (_folder(tmp_path, n, variant=i) for i, n in enumerate(("a", "b", "c")))
    _build(a)
    entry_a = _entries(fresh_cache)[0]
    _build(b)
    entry_b = next(e for e in _entries(fresh_cache) if e != entry_a)
    two = disk_usage(fresh_cache)
    limit = two + disk_usage(entry_b) // 2  # room for two entries, not three
    monkeypatch.setenv("ECC_CACHE_MAX", str(limit))
    time.sleep(0.02)
    assert _used_pch(_build(a))  # a used last: b is the least recently used
    _build(c)
    entries = _entries(fresh_cache)
    assert entry_b not in entries and entry_a in entries and len(entries) == 2
    assert disk_usage(fresh_cache) <= limit
    assert _used_pch(_build(c)) and _used_pch(_build(a))


def _cli(*args: str, env: dict[str, str], cwd: Path | None = None,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=cwd,
                          check=False)


@requires_clang
def test_an_unusable_cache_folder_builds_with_one_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be\n")
    env = {"ECC_CACHE_DIR": str(blocker / "cache")}
    folders = [_folder(tmp_path, n) for n in ("one", "two", "three")]
    single = _cli("build", str(folders[0] / "one.bpf.c"), "-o", str(tmp_path / "single"),
                  env=env)
    assert single.returncode == 0, single.stderr
    warnings = [ln for ln in single.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "cannot be used" in warnings[0] and str(blocker) in warnings[0]
    several = _cli("build", "-j", "2", *(str(f / f"{f.name}.bpf.c") for f in folders),
                   env=env)
    assert several.returncode == 0, several.stderr
    assert len([ln for ln in several.stderr.splitlines() if "warning" in ln]) == 1
    plain = _cli("build", str(folders[0] / "one.bpf.c"), "--no-cache", "-o",
                 str(tmp_path / "plain"), env=env)
    assert plain.returncode == 0 and "warning" not in plain.stderr
    assert (tmp_path / "single" / "one.bpf.o").read_bytes() == \
        (tmp_path / "plain" / "one.bpf.o").read_bytes()


@requires_clang
def test_cache_info_and_clean(tmp_path: Path) -> None:
    env = {"ECC_CACHE_DIR": str(tmp_path / "cache"), "ECC_CACHE_MAX": "300M"}
    empty = _cli("cache", "info", env=env)
    assert empty.returncode == 0
    assert empty.stdout.splitlines() == [
        f"folder:   {tmp_path / 'cache'}",
        "size:     0.0M of 300.0M (ECC_CACHE_MAX)",
        "entries:  0 precompiled headers (0.0M), 0 generated vmlinux.h",
        "hit rate: none yet (0 hits, 0 misses)",
        "objects:  0 compiled objects (0.0M), reused 0 times, compiled 0 times"]
    folder = _folder(tmp_path, "prog")
    for _ in range(2):
        assert _cli("build", str(folder / "prog.bpf.c"), env=env).returncode == 0
        pch.settle(tmp_path / "cache")
    lines = _cli("cache", env=env).stdout.splitlines()  # info is the default
    assert lines[2].startswith("entries:  1 precompiled header (")
    assert lines[3] == "hit rate: 50% (1 hits, 1 misses)"
    size = float(lines[1].split()[1].removesuffix("M"))
    assert 0 < size <= 300
    cleaned = _cli("cache", "clean", env=env)
    assert cleaned.returncode == 0
    assert cleaned.stdout.startswith("ecc: removed 1 precompiled header, freed ")
    assert _cli("cache", "info", env=env).stdout.splitlines()[1:] == \
        empty.stdout.splitlines()[1:]
    assert list((tmp_path / "cache").iterdir()) == [tmp_path / "cache" / "pch"]
