"""The JSON Schema of a package (package-format.md sections 2-5), shipped inside ecc."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def package_schema() -> dict[str, Any]:
    """The schema every package ecc writes validates against (``ecc check`` applies it)."""
    text = resources.files("ecc.package").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
