"""Doc comments of the source, attached to the entities of the compiled object (spec 5).

Which entity a comment documents is decided by the object, not by the text:
the comment's candidate names are tried in order against the programs, maps
and variables the object really has.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..doc_comments import DocComment, parse_comment_body, validate_cmdargs
from .skel import LICENSE_VAR, entity_index, reserved_keys


def _located(filename: str, diags: Any) -> list[str]:
    return [f"{filename}:{d.line}: {d.message}" for d in diags]


def _declaration_line(source_text: str, name: str) -> int:
    """Line of a variable's declaration, for messages about variables without a doc comment."""
    match = re.search(rf"\b{re.escape(name)}\b[^;(]*(?:=|;)", source_text)
    return source_text.count("\n", 0, match.start()) + 1 if match else 0


def apply_doc_comments(meta: dict[str, Any], docs: Sequence[DocComment], filename: str,
                       source_text: str = "") -> list[str]:
    """Merge annotations into ``meta`` in place; return warnings as ``file:line: text``."""
    index = entity_index(meta)
    warnings: list[str] = []
    cmdargs: list[tuple[str, int, Any]] = []
    for doc in docs:
        target = next((c for c in doc.candidates if c == LICENSE_VAR or c in index), None)
        if target is None:
            # Prose before a helper or a struct is ordinary documentation; only an
            # annotation that would be lost deserves a warning.
            keys = [k for k in doc.annotations if k != "description"]
            if keys:
                name = doc.candidates[0] if doc.candidates else "this declaration"
                warnings.append(
                    f"{filename}:{doc.line}: '@{keys[0]}' documents '{name}', which is not a "
                    f"program, map or global variable of the compiled object; ignored"
                )
            continue
        if target == LICENSE_VAR and target not in index:
            annotations, _, diags = parse_comment_body(doc.lines, doc_keys=True)
            warnings += _located(filename, diags)
            meta["bpf_skel"]["doc"] = annotations
            continue
        warnings += _located(filename, doc.warnings)
        kind, entry = index[target]
        reserved = reserved_keys(kind)
        for key, value in doc.annotations.items():
            if key in reserved:
                line = doc.keys_lines.get(key, doc.line)
                warnings.append(
                    f"{filename}:{line}: '@{key}' would replace the {kind}'s own '{key}' "
                    f"field; ignored"
                )
                continue
            entry[key] = value
        if kind == "var" and "cmdarg" in doc.annotations:
            cmdargs.append((target, doc.keys_lines.get("cmdarg", doc.line),
                            doc.annotations["cmdarg"]))
    # Loaders give every variable an option (--NAME), with or without @cmdarg,
    # so those can clash too.
    annotated = {name for name, _, _ in cmdargs}
    for section in meta["bpf_skel"]["data_sections"]:
        for var in section["variables"]:
            if var["name"] not in annotated and not var["name"].startswith("__eunomia_dummy_"):
                cmdargs.append((var["name"], _declaration_line(source_text, var["name"]), {}))
    cmdargs.sort(key=lambda entry: entry[1])
    validate_cmdargs(cmdargs, filename)
    return warnings


__all__ = ["apply_doc_comments"]
