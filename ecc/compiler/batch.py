"""Several programs at once: ``ecc build a.bpf.c b.bpf.c`` or a folder, ``-j N`` in parallel.

Each program is an ordinary build; builds mostly wait on clang, so threads
give real parallelism. Each program's export header is ``<stem>.h`` beside
it, when there is one (the same rule as the container image).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import EccError
from . import pch
from .options import BuildOptions
from .pipeline import build
from .result import BuildResult


@dataclass(frozen=True)
class Outcome:
    source: str
    result: BuildResult | None
    error: EccError | None
    seconds: float


def expand_sources(paths: Sequence[str]) -> list[str]:
    """Folders become the ``*.bpf.c`` files in them, sorted; files stay as given."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".bpf.c"))
            if not found:
                raise EccError(f"{path}: no .bpf.c file in this folder")
            out += found
        else:
            out.append(path)
    return out


def options_for(source: str, template: BuildOptions, several: bool) -> BuildOptions:
    stem = os.path.basename(source).split(".", 1)[0]
    header = os.path.join(os.path.dirname(source), f"{stem}.h")
    output = template.output_dir
    if output is not None and several:
        output = os.path.join(output, stem)  # one package.json per program
    return template._replace(source=source, output_dir=output,
                             export_header=header if os.path.isfile(header) else None)


def check_distinct_outputs(sources: Sequence[str], template: BuildOptions) -> None:
    """Two programs of one stem whose outputs go to one folder would overwrite each
    other's object and package (``-o DIR`` puts each in ``DIR/<stem>``): an error
    before anything is built, naming both."""
    seen: dict[tuple[str, str], str] = {}
    for source in sources:
        stem = os.path.basename(source).split(".", 1)[0]
        folder = options_for(source, template, True).output_dir or os.path.dirname(source)
        key = (os.path.realpath(folder or "."), stem)
        first = seen.setdefault(key, source)
        if os.path.realpath(first) != os.path.realpath(source):
            where = os.path.join(folder, "") if folder else "./"
            raise EccError(
                f"{first} and {source} would both write {stem}.bpf.o and its package to "
                f"{where}; build them in separate runs with their own -o folders, or "
                f"rename one")


def build_many(sources: Sequence[str], template: BuildOptions, jobs: int,
               on_done: Callable[[Outcome], None]) -> list[Outcome]:
    if len(sources) > 1:
        check_distinct_outputs(sources, template)
    telling = threading.Lock()  # one program's lines at a time, not interleaved

    def one(source: str) -> Outcome:
        start = time.perf_counter()
        try:
            result = build(options_for(source, template, len(sources) > 1))
            outcome = Outcome(source, result, None, time.perf_counter() - start)
        except EccError as exc:
            outcome = Outcome(source, None, exc, time.perf_counter() - start)
        with telling:
            on_done(outcome)
        return outcome

    last = load_durations()
    # Several builds share their precompiled headers: each is made once, in the
    # foreground, by the first build that needs it (pch.py).
    sharing = pch.batch() if len(sources) > 1 else contextlib.nullcontext()
    with sharing, ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {s: pool.submit(one, s) for s in longest_first(sources, last)}
        outcomes = [futures[s].result() for s in sources]
    if len(sources) > 1:
        save_durations(last, outcomes)
    return outcomes


# How long each program took to build last time, by absolute path, in the cache
# folder: the order of the next batch. A hint only; unreadable means unknown.
DURATIONS_FILE = "durations.json"
_KEEP = 2000  # programs remembered, the latest


def longest_first(sources: Sequence[str], last: Mapping[str, float]) -> list[str]:
    """Longest build first, so that no long build starts last and keeps one worker
    busy while the others have nothing to do. Programs never built come first,
    biggest source first; the source size alone is a poor guess (a small program
    compiled without the precompiled header takes three times a bigger one with it).
    """
    def key(source: str) -> tuple[int, float]:
        seconds = last.get(os.path.abspath(source))
        if seconds is not None:
            return (0, seconds)
        try:
            return (1, os.path.getsize(source))
        except OSError:
            return (1, 0)

    return sorted(sources, key=key, reverse=True)


def load_durations() -> dict[str, float]:
    from .cache import cache_dir, read_json

    data = read_json(cache_dir() / DURATIONS_FILE)
    if not isinstance(data, dict):  # also when unreadable
        return {}
    return {k: float(v) for k, v in data.items()
            if isinstance(k, str) and isinstance(v, (int, float)) and v >= 0}


def save_durations(last: Mapping[str, float], outcomes: Sequence[Outcome]) -> None:
    from .cache import cache_dir, write_json

    merged = dict(last)
    for outcome in outcomes:
        path = os.path.abspath(outcome.source)
        merged.pop(path, None)  # re-inserted last: the dict keeps the latest at its end
        if outcome.result is not None:
            merged[path] = round(outcome.seconds, 4)
    write_json(cache_dir() / DURATIONS_FILE, dict(list(merged.items())[-_KEEP:]))
