"""The docs site (docs/, mkdocs.yml) builds with `mkdocs build --strict` (a broken link or
anchor fails), its command-line page is generated from the click commands, and the
reference pages list every environment variable ecc reads and every field of the
package schema."""

from __future__ import annotations

import ast
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs

pytestmark = needs("mkdocs")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def page_text(site: Path, page: str) -> str:
    raw = (site / page / "index.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def test_every_page_is_built_and_in_the_nav(site: Path) -> None:
    pages = sorted(str(p.relative_to(DOCS).with_suffix("")) for p in DOCS.rglob("*.md"))
    assert len(pages) >= 17
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in pages:
        built = site / ("" if page == "index" else page) / "index.html"
        assert built.is_file(), page
        assert f"{page}.md" in nav, f"{page}.md is not in mkdocs.yml's nav"


def test_strict_build_fails_on_a_broken_anchor(tmp_path: Path) -> None:
    """The strictness the suite relies on is real: with this project's mkdocs.yml, one
    link to a heading that does not exist stops the build."""
    import shutil

    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    guide = tmp_path / "docs" / "guides" / "build.md"
    guide.write_text(guide.read_text() + "\nSee [nothing](run.md#no-such-heading).\n")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "no-such-heading" in result.stderr


def test_command_line_page_is_generated_from_click(site: Path) -> None:
    from ecc import cli

    text = page_text(site, "reference/cli")
    for name in cli._SUMMARIES:
        command = cli.command(name)
        assert f"ecc {name} [OPTIONS]" in text, name
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in text, f"ecc {name} {opt}"
        first = (command.help or "").strip().splitlines()[0]
        # placeholders such as <stem> survive (docs/hooks.py escapes them)
        assert first in text, first


def _environment_reads() -> set[str]:
    """Names ecc reads from the environment: os.environ.get / os.environ[...] / getenv,
    with a literal or a module-level constant."""
    names: set[str] = set()
    for path in sorted((ROOT / "ecc").rglob("*.py")):
        tree = ast.parse(path.read_text())
        constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                     and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                     for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            arg = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                    node.func.attr == "getenv" or (
                        node.func.attr == "get" and isinstance(node.func.value, ast.Attribute)
                        and node.func.value.attr == "environ")) and node.args:
                arg = node.args[0]
            elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "environ":
                arg = node.slice
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in constants:
                names.add(constants[arg.id])
    return names


def test_environment_page_lists_every_variable() -> None:
    names = _environment_reads()
    assert {"ECC_CACHE_DIR", "ECC_CACHE_MAX", "ECC_DOCKER_IMAGE", "DOCKER_HOST"} <= names
    text = (DOCS / "reference" / "environment.md").read_text()
    table = {m for m in re.findall(r"^\| `([A-Z_]+)` \|", text, re.M)}
    assert sorted(names - table) == []


def _schema_fields(schema: dict[str, object]) -> dict[str, set[str]]:
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    fields = {name: set(d.get("properties", {})) for name, d in defs.items()}
    fields["package"] = set(schema["properties"])  # type: ignore[arg-type]
    return fields


def test_package_format_page_describes_every_schema_field(site: Path) -> None:
    schema = json.loads((ROOT / "ecc" / "package" / "schema.json").read_text())
    text = (DOCS / "reference" / "package-format.md").read_text()
    for where, fields in _schema_fields(schema).items():
        for field in sorted(fields):
            assert re.search(rf"`(?:\w+\[\]\.)?{re.escape(field)}`", text), f"{where}.{field}"
    # and the schema itself is on the page (included from ecc/package/schema.json)
    built = (site / "reference" / "package-format" / "index.html").read_text()
    assert "enable_multiple_export_types" in built and "$defs" in html.unescape(built)


def test_doc_comment_guide_covers_every_annotation_key() -> None:
    """Every key the schema or the loader knows on maps, programs and variables has a
    row in the doc-comments guide."""
    schema = json.loads((ROOT / "ecc" / "package" / "schema.json").read_text())
    fields = _schema_fields(schema)
    written = {"name", "ident", "mmaped", "attach", "link", "type"}  # ecc's own fields
    keys = (fields["map"] | fields["prog"] | fields["variable"]) - written
    keys |= {"ifindex", "flags", "xdpopts", "tchook", "tcopts", "freq", "export",
             "intepreter", "brief", "details", "version", "clear_map"}
    text = (DOCS / "guides" / "doc-comments.md").read_text()
    assert sorted(k for k in keys if f"`{k}`" not in text) == []


def test_build_guide_explains_every_build_option() -> None:
    """The build guide's option table (hand-written, unlike the generated reference)
    keeps up with ecc/compiler/options.py."""
    from ecc.compiler.options import BUILD_OPTIONS

    text = (DOCS / "guides" / "build.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `-")]
    missing = [flag for option in BUILD_OPTIONS for flag in option.flags
               if flag.startswith("--") and not any(f"`{flag}" in r or f" {flag}" in r
                                                    for r in rows)]
    assert missing == []
