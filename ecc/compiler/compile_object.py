"""One translation unit: clang (with the PCH when it applies), then strip -g: source ->
object bytes. A build compiles one; a --link build one per source.

Imported by the pipeline just before clang starts: what it imports at the top is
what starting clang needs; the rest (provenance's hashing, the result records)
is imported while clang runs or after.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from .. import log
from ..errors import CompileError
from ..meta import names
from . import compile as cc
from . import pch, vmlinux
from .cache import cache_dir
from .report import depfile_flags, parse_depfile
from .repro import PathMap, mirror_folder, unalias

if TYPE_CHECKING:
    from . import objcache
    from .pipeline import BuildOptions, Timer
    from .provenance import Hashing
    from .result import Compiled
    from .tools import Running


class CompileJob(NamedTuple):
    """One translation unit: a build compiles one, a --link build one per source."""

    source: str
    source_text: str
    header_text: str | None
    struct_names: tuple[str, ...]   # exported structs that get a dummy pointer here
    arch: str
    source_root: str                # the folder the object names "." (repro.PathMap)


class _Unit(NamedTuple):
    """The files of one compile in the workspace, and how clang is asked for it."""

    source_dir: str
    alias: str                      # the source folder as clang reads it (repro.py)
    wrapper: str
    wrapper_text: str               # what ``wrapper`` holds
    raw_obj: str
    final_obj: str
    depfile: str
    cache: str
    path_map: PathMap
    req: cc.CompileRequest


def compile_object(opts: BuildOptions, job: CompileJob, clang: str, llvm_strip: str | None,
                   workspace: str, timer: Timer,
                   while_compiling: Callable[[], None] | None = None,
                   deferred: list[Callable[[], None]] | None = None) -> Compiled:
    """clang (with the PCH when it applies), then strip -g: source -> object bytes.

    Work for later builds (making the PCH) is appended to ``deferred`` when given,
    for the caller to start once its build is done; else it starts at once."""
    wants_vmlinux, vmlinux_dir = vmlinux.choose(opts, job.source, job.source_text,
                                                job.header_text, job.arch, workspace)
    include_dirs = [vmlinux_dir] if vmlinux_dir is not None else []
    timer.lap("prepare")
    before = _ObjectCache.look(job.source) if opts.cache and opts.cached_objects else None
    unit = _prepare(opts, job, workspace, vmlinux_dir, include_dirs)
    cached = _ObjectCache.open(clang, llvm_strip, unit, workspace, before) if before else None
    if cached is not None:
        hit = cached.find()
        if hit is not None:
            if while_compiling is not None:
                while_compiling()
            timer.lap("cached")
            return cached.compiled(hit)
    req, entry, make_later, tried = unit.req, None, False, False
    if opts.cache:
        entry = _pch_entry(clang, req, job.source_text, unit.source_dir, opts.cflags,
                           include_dirs, wants_vmlinux)
        if entry is not None:
            tried, make_later = pch.decide(clang, entry, job.source_text)
            if tried:
                req = req._replace(pch=str(entry.pch))
        timer.lap("pch")
    run = _Clang(clang, unit, os.path.basename(job.source))
    req, diagnostics, prehashed = _compile(run, req, entry, job.source, vmlinux_dir,
                                           while_compiling)
    if entry is not None and (make_later or tried) and req.pch is None:
        # Made after clang is done (after the whole build, given ``deferred``), so that
        # it does not slow this build down: the next build gets it, and this one's
        # object is the same as with it. Also when clang refused the entry (it is gone).
        start = functools.partial(pch.start_making, clang, entry)
        if deferred is None:
            start()
        else:
            deferred.append(start)
    timer.lap("clang")
    obj_bytes = cc.strip_debug(llvm_strip, unit.raw_obj, unit.final_obj)
    if req.pch and entry:
        from .externs import externs_without_btf

        lost = externs_without_btf(obj_bytes)
        if lost:
            # clang said nothing, but the object differs from one built without the
            # PCH and libbpf would refuse it: that one is the object (externs.py).
            log.info("the precompiled header lost the BTF of extern %s; compiling without it",
                     ", ".join(lost))
            pch.mark_loses_externs(entry, job.source_text)
            req = req._replace(pch=None)
            diagnostics = run.finish(run.start(req), req)
            obj_bytes = cc.strip_debug(llvm_strip, unit.raw_obj, unit.final_obj)
    depends = _depends(unit)
    from .provenance import Hashing
    from .result import Compiled

    hashing = [prehashed, Hashing(prehashed.missing(depends))]
    compiled = Compiled(obj_bytes, diagnostics, depends,
                        cc.compile_flags(req, cc.system_include_dirs(clang)), unit.path_map,
                        hashing)
    if cached is not None:
        keep = functools.partial(cached.store, compiled)
        if deferred is None:
            keep()
        else:
            deferred.append(keep)
    timer.lap("strip")
    return compiled


class _ObjectCache(NamedTuple):
    """This compile's entry in the object cache (objcache.py)."""

    key: str
    searched: list[str]
    flags: list[str]
    path_map: PathMap
    workspace: str
    before: tuple[int, dict[str, tuple[int, int, int]]]

    @staticmethod
    def look(source: str) -> tuple[int, dict[str, tuple[int, int, int]]] | None:
        """The time, and the program folder's files as they were, before the build
        touched them (objcache.snapshot); None when the object cache is off."""
        import time

        from . import objcache

        if not objcache.enabled():
            return None
        return time.time_ns(), objcache.snapshot(os.path.dirname(os.path.abspath(source)))

    @classmethod
    def open(cls, clang: str, llvm_strip: str | None, unit: _Unit, workspace: str,
             before: tuple[int, dict[str, tuple[int, int, int]]]) -> _ObjectCache | None:
        from . import objcache

        sysinc = cc.system_include_dirs(clang)
        req = unit.req
        key = objcache.key_for(clang, llvm_strip, cc.clang_argv(clang, req, sysinc),
                               unit.wrapper_text, req.cwd, workspace)
        if key is None:
            return None
        flags = cc.compile_flags(req, sysinc)
        searched = objcache.search_order(flags, req.cwd or os.getcwd(), unit.alias,
                                         unit.source_dir)
        return cls(key, searched, flags, unit.path_map, workspace, before)

    def find(self) -> objcache.Hit | None:
        from . import objcache

        return objcache.find(self.key, self.searched, self.workspace)

    def compiled(self, hit: objcache.Hit) -> Compiled:
        from .result import Compiled

        return Compiled(hit.object_bytes, hit.diagnostics, hit.depends, self.flags,
                        self.path_map, [hit.to_hashing()])

    def store(self, compiled: Compiled) -> None:
        from . import objcache

        objcache.store(self.key, compiled.object_bytes, compiled.diagnostics, compiled.depends,
                       compiled.digests(), workspace=self.workspace, started=self.before[0],
                       before=self.before[1])


def _prepare(opts: BuildOptions, job: CompileJob, workspace: str, vmlinux_dir: str | None,
             include_dirs: list[str]) -> _Unit:
    source = job.source
    source_dir = os.path.dirname(os.path.abspath(source))
    stem = names.stem(source)
    # clang reads the program's folder through a path of fixed length (repro.py).
    alias = mirror_folder(source_dir, workspace) or source_dir
    wrapper = os.path.join(workspace, f"{stem}.ecc.c")
    wrapper_text = cc.wrapper_source(os.path.join(alias, os.path.basename(source)),
                                     job.struct_names)
    with open(wrapper, "w") as out:
        out.write(wrapper_text)
    raw_obj = os.path.join(workspace, f"{stem}.unstripped.o")
    depfile = os.path.join(workspace, f"{stem}.d")
    cache = os.path.abspath(cache_dir())
    path_map = PathMap.for_build(job.source_root, workspace=workspace, cache=cache,
                                 vmlinux_dir=vmlinux_dir, aliases={alias: source_dir})
    req = cc.CompileRequest(
        wrapper=wrapper, output=raw_obj, source_dir=alias, arch=job.arch,
        include_dirs=tuple(include_dirs), cflags=tuple(opts.cflags),
        extra_flags=(*path_map.debug_flags(), *depfile_flags(depfile)),
        cwd=path_map.line_root(),
    )
    return _Unit(source_dir, alias, wrapper, wrapper_text, raw_obj,
                 os.path.join(workspace, names.object_file_name(source)), depfile, cache,
                 path_map, req)


class _Clang:
    """Starts and finishes clang for one unit, naming the user's paths in what it says."""

    def __init__(self, clang: str, unit: _Unit, display: str) -> None:
        self.clang, self.unit, self.display = clang, unit, display

    def start(self, req: cc.CompileRequest) -> Running:
        return cc.start_compile(self.clang, req, display_name=self.display)

    def finish(self, running: Running, req: cc.CompileRequest) -> str:
        alias, source_dir = self.unit.alias, self.unit.source_dir
        try:
            return unalias(cc.finish_compile(running, req, display_name=self.display), alias,
                           source_dir)
        except CompileError as exc:
            raise CompileError(str(exc), unalias(exc.details or "", alias, source_dir)
                               or None) from exc


def _compile(run: _Clang, req: cc.CompileRequest, entry: pch.PchEntry | None, source: str,
             vmlinux_dir: str | None, while_compiling: Callable[[], None] | None,
             ) -> tuple[cc.CompileRequest, str, Hashing]:
    """clang, and the work that overlaps it; again without the PCH if it failed with it.
    The request clang succeeded with, its diagnostics, and the inputs hashed meanwhile."""
    running = run.start(req)
    try:
        from .provenance import Hashing

        # The big inputs known before clang runs are hashed while it runs (provenance).
        prehashed = Hashing([os.path.abspath(source), *(
            [os.path.join(vmlinux_dir, "vmlinux.h")] if vmlinux_dir else [])])
        if while_compiling is not None:
            while_compiling()
    except BaseException:
        running.kill()
        raise
    try:
        diagnostics = run.finish(running, req)
    except CompileError as exc:
        if not (req.pch and entry):
            raise
        # Whatever went wrong, the program's own diagnostics are those of a compile
        # without the cache: the PCH must never change the outcome.
        if pch.is_pch_failure(exc.details or ""):
            log.info("precompiled header unusable; making it again")
            pch.invalidate(entry)
        req = req._replace(pch=None)
        diagnostics = run.finish(run.start(req), req)
    return req, diagnostics, prehashed


def _depends(unit: _Unit) -> list[str]:
    """Every file clang read (its -MD list), without ecc's own wrapper and PCH."""
    try:
        with open(unit.depfile, encoding="utf-8", errors="surrogateescape") as dep:
            depends = parse_depfile(unalias(dep.read(), unit.alias, unit.source_dir))
    except OSError:
        depends = []
    pch_dir = os.path.join(unit.cache, "pch", "")
    return [d for d in (os.path.abspath(p) for p in depends)
            if d != unit.wrapper and not d.startswith(pch_dir)]


def _pch_entry(clang: str, req: cc.CompileRequest, source_text: str, source_dir: str,
               cflags: tuple[str, ...], include_dirs: list[str],
               wants_vmlinux: bool) -> pch.PchEntry | None:
    """The PCH entry for this build (of its vmlinux.h prefix, else of its system headers),
    or None when the source is not eligible or a header of the entry's is shadowed."""
    if wants_vmlinux:
        entry = _vmlinux_entry(clang, req, source_text, source_dir, cflags, include_dirs)
    else:
        entry = _system_entry(clang, req, source_text, source_dir, cflags, include_dirs)
    if entry is not None and _shadowed(entry, [source_dir, *include_dirs]):
        return None
    return entry


def _vmlinux_entry(clang: str, req: cc.CompileRequest, source_text: str, source_dir: str,
                   cflags: tuple[str, ...], include_dirs: list[str]) -> pch.PchEntry | None:
    """The entry for a program that starts with vmlinux.h, or None.

    The entry names no folder of the program's: its vmlinux.h is a copy, found
    beside the prefix, and bpf_helpers.h is in it only when found in a folder
    that every program searches alike (the user's -I folders, the system's).
    Where a header could come from two different files, which one clang takes
    depends on the search order; then the header is not shared.
    """
    includes = pch.prefix_includes(source_text)
    if includes is None:
        return None
    user, relative = _user_dirs(cflags, req.cwd or os.getcwd(),
                                quoted=includes[0].startswith('#include "'))
    sysinc = cc.system_include_dirs(clang)
    header = _only_file("vmlinux.h", [source_dir, *user, *include_dirs])
    if header is None or not has_include_guard(header):
        return None
    helpers = _only_file("bpf/bpf_helpers.h", [source_dir, *user, *include_dirs, *sysinc])
    # The maker runs in the entry's folder: a relative -I folder is another one there.
    shareable = helpers is not None and not relative and has_include_guard(helpers) and \
        not any(_inside(helpers, d) for d in (source_dir, *include_dirs))
    lines = pch.shared_prefix(includes, shareable)
    flags = cc.compile_flags(req._replace(include_dirs=()), sysinc, with_source_dir=False)
    try:
        return pch.entry_for(clang, flags, lines, header,
                             [helpers] if helpers is not None and len(lines) > 1 else [])
    except OSError:
        return None  # a header went away: the compile says so


def _system_entry(clang: str, req: cc.CompileRequest, source_text: str, source_dir: str,
                  cflags: tuple[str, ...], include_dirs: list[str]) -> pch.PchEntry | None:
    """The entry for a program without vmlinux.h: its leading ``#include <...>`` lines,
    as far as each names one guarded header that every program finds alike (in the
    system's folders or the user's -I ones, not the program's own folder)."""
    includes = pch.system_prefix(source_text)
    if includes is None:
        return None
    user, relative = _user_dirs(cflags, req.cwd or os.getcwd(), quoted=False)
    if relative:  # the maker runs in the entry's folder: another folder there
        return None
    sysinc = cc.system_include_dirs(clang)
    lines: list[str] = []
    headers: list[str] = []
    own = [os.path.join(os.path.realpath(d), "") for d in (source_dir, *include_dirs)]
    for line in includes:
        found = _only_file(line[len("#include <"):-1], [source_dir, *user, *include_dirs, *sysinc])
        if found is None or found.startswith(tuple(own)) or not has_include_guard(found):
            break
        lines.append(line)
        headers.append(found)
    if not lines:
        return None
    flags = cc.compile_flags(req._replace(include_dirs=()), sysinc, with_source_dir=False)
    try:
        return pch.entry_for(clang, flags, lines, "", headers)
    except OSError:
        return None  # a header went away: the compile says so


def _shadowed(entry: pch.PchEntry, folders: list[str]) -> bool:
    """Whether a header the entry's PCH read from a search folder (its ``pch.HEADERS``
    list) would come from one of ``folders`` instead, in a compile without it: those
    folders (the program's own, ecc's vmlinux.h folder) are searched first, and the
    PCH was made without them."""
    import json

    try:
        names = json.loads((entry.folder / pch.HEADERS).read_text())
    except (OSError, ValueError):
        return False  # not made yet, or made before the list was kept
    return any(os.path.exists(os.path.join(folder, name)) for folder in folders
               for name in names if isinstance(name, str))


_LEADING = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)*", re.S)  # blanks and comments
_ONCE = re.compile(r"#[ \t]*pragma[ \t]+once\b")
_IFNDEF = re.compile(r"#[ \t]*ifndef[ \t]+(\w+)")
_DEFINE = re.compile(r"#[ \t]*define[ \t]+(\w+)\b")


def has_include_guard(header_path: str) -> bool:
    """A header the PCH stands for is included a second time by the program itself;
    that is a no-op only when the header guards against it (``#pragma once``, or
    ``#ifndef X`` then ``#define X`` on the next line, after comments only)."""
    try:
        with open(header_path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(16384)
    except OSError:
        return False
    start = _skip(head, 0)
    if _ONCE.match(head, start):
        return True
    ifndef = _IFNDEF.match(head, start)
    if ifndef is None:
        return False
    after = _skip(head, ifndef.end())
    define = _DEFINE.match(head, after)
    return define is not None and define.group(1) == ifndef.group(1) and \
        "\n" in head[ifndef.end():after]


def _skip(text: str, at: int) -> int:
    """Past the blanks and comments at ``at``."""
    match = _LEADING.match(text, at)
    return match.end() if match else at


def _user_dirs(cflags: tuple[str, ...], cwd: str, quoted: bool) -> tuple[list[str], bool]:
    """The folders the user's flags add to the search (-iquote ones only for an
    include in quotes), made absolute as clang in ``cwd`` sees them; and whether
    any was relative."""
    dirs = cc.search_dir_flags(cflags)
    relative = any(not os.path.isabs(d) for _, d in dirs)
    return [os.path.join(cwd, d) for f, d in dirs if quoted or f != "-iquote"], relative


def _only_file(name: str, folders: list[str]) -> str | None:
    """The file ``name`` in any of ``folders`` when they all have the same one (or
    only one has it), else None."""
    found = {os.path.realpath(p) for p in (os.path.join(d, name) for d in folders)
             if os.path.isfile(p)}
    return found.pop() if len(found) == 1 else None


def _inside(path: str, folder: str) -> bool:
    return path.startswith(os.path.join(os.path.realpath(folder), ""))
