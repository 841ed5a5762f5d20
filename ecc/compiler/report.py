"""``--report FILE.json`` (what a build read, ran, wrote, and how long it took) and
``--depfile FILE`` (a make rule: the outputs depend on every file the build read).

The list of headers comes from clang itself: the compile runs with ``-MD -MF``
(report.depfile_flags), which costs no extra pass, and with a precompiled
header it names the headers inside the PCH too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__

if TYPE_CHECKING:
    from .result import BuildResult


def depfile_flags(path: str) -> list[str]:
    return ["-MD", "-MF", path]


def parse_depfile(text: str) -> list[str]:
    """The prerequisites of the make rule clang wrote (its escapes undone), in order."""
    tokens: list[str] = []
    current: list[str] = []
    i = 0
    text = text.replace("\\\r\n", " ").replace("\\\n", " ")
    # The first rule only: empty rules for headers (-MP style) may follow it.
    text = next((line for line in text.splitlines() if line.strip()), "")
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in " #\\":
            current.append(text[i + 1])
            i += 2
            continue
        if ch == "$" and text[i + 1:i + 2] == "$":
            current.append("$")
            i += 2
            continue
        if ch.isspace():
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(ch)
        i += 1
    if current:
        tokens.append("".join(current))
    # Targets come first, the last one ending with ':' (or a lone ':').
    for index, token in enumerate(tokens):
        if token == ":":
            return tokens[index + 1:]
        if token.endswith(":"):
            return tokens[index + 1:]
    return []


def _escape(path: str) -> str:
    return path.replace("$", "$$").replace("#", "\\#").replace(" ", "\\ ")


def depfile_text(targets: Sequence[str], prerequisites: Sequence[str],
                 phony: Iterable[str] = ()) -> str:
    """One rule, then an empty rule for each header, so that make does not fail
    when a header is deleted (what ``-MP`` does)."""
    lines = [" ".join(_escape(t) for t in targets) + ":"]
    lines += [f"  {_escape(p)}" for p in prerequisites]
    text = " \\\n".join(lines) + "\n"
    for path in phony:
        text += f"\n{_escape(path)}:\n"
    return text


def write_depfile(depfile: str, results: Sequence[BuildResult]) -> None:
    from ..package import write_atomic

    targets = [os.path.abspath(p) for r in results for p in r.outputs]
    inputs: dict[str, bool] = {}
    for result in results:
        for item in result.inputs:
            # Real files: the vmlinux.h of --vmlinux is reached through a symlink in the cache.
            real = os.path.realpath(item.path)
            inputs[real] = inputs.get(real, False) or item.path in result.sources
    write_atomic(depfile, depfile_text(targets, list(inputs),
                                       [p for p, is_source in inputs.items() if not is_source]))


def _sha256(path: str) -> str | None:
    from .provenance import digest

    try:
        return digest(path)
    except OSError:
        return None


def result_record(result: BuildResult) -> dict[str, Any]:
    outputs = []
    for path in result.outputs:
        try:
            size: int | None = os.path.getsize(path)
        except OSError:
            size = None
        outputs.append({"path": os.path.abspath(path), "bytes": size, "sha256": _sha256(path)})
    return {
        "ok": True,
        "sources": [os.path.abspath(s) for s in result.sources],
        "arch": result.arch,
        "inputs": [{"path": os.path.realpath(f.path), "sha256": f.sha256,
                    "kind": "source" if f.path in result.sources else "header"}
                   for f in result.inputs],
        "outputs": outputs,
        "commands": result.commands,
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "warnings": list(result.warnings),
        "diagnostics": result.diagnostics,
    }


def failure_record(sources: Sequence[str], error: Exception) -> dict[str, Any]:
    details = getattr(error, "details", None)
    return {"ok": False, "sources": [os.path.abspath(s) for s in sources],
            "error": str(error), "diagnostics": details or ""}


def report_document(records: Sequence[dict[str, Any]], *, started: float,
                    error: Exception | None = None,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    ok = error is None and all(r.get("ok") for r in records)
    doc: dict[str, Any] = {
        "ecc_version": __version__,
        "ok": ok,
        "seconds": round(time.perf_counter() - started, 4),
        "builds": list(records),
    }
    if error is not None:
        doc["error"] = str(error)
        details = getattr(error, "details", None)
        if details:
            doc["diagnostics"] = details
    if extra:
        doc.update(extra)
    return doc


def write_report(path: str, document: dict[str, Any]) -> None:
    from ..package import write_atomic

    write_atomic(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
