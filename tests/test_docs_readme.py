"""The README stays a short front page, and nothing the long README said before the docs
site (issue 26) was lost: each of its sections moved to a page of docs/, checked by
the code spans, flags, variables, doc-comment keys and figures it held.

The old README is frozen in tests/data/docs/README-before-issue-26.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
OLD = ROOT / "tests" / "data" / "docs" / "README-before-issue-26.md"
README = ROOT / "README.md"

SETUP = ("bash scripts/install.sh && ecc build examples/bootstrap/bootstrap.bpf.c "
         "examples/bootstrap/bootstrap.h -o /tmp/bootstrap && ecc run --duration 10 "
         "/tmp/bootstrap/package.json")
TESTS = "bash scripts/install.sh --dev && python3 -m pytest -q"

# Each heading of the old README -> the pages its section moved to (paths under docs/,
# or README.md). Every code span, flag, variable, key and figure of the section must be
# in those pages.
MOVED: dict[str, tuple[str, ...]] = {
    "# ecc": ("README.md", "index.md"),
    "## Set-up (Debian 12, as root)": ("install.md", "contributing.md"),
    "## Usage": ("guides/build.md",),
    "### Kernels without BTF: `--btfgen`": ("guides/ship.md",),
    "### vmlinux.h": ("guides/build.md",),
    "### The precompiled vmlinux.h": ("design/reproducible-builds.md",),
    "### The cache": ("reference/environment.md", "design/performance.md"),
    "### Doc comments": ("guides/doc-comments.md",),
    "### Errors": ("guides/build.md",),
    "## Builds you can trust": ("design/reproducible-builds.md",),
    "### Builds you can check: reproducible bytes, provenance, `--verify`":
        ("design/reproducible-builds.md",),
    "### Checked against judges outside ecc": ("design/reproducible-builds.md",),
    "### Other architectures: `--arch arm64`": ("guides/build.md",),
    "### Several sources, one package: `--link NAME`": ("guides/build.md",),
    "### `ecc check PACKAGE...`": ("guides/check-kernels.md",),
    "### Which kernels will it run on: `ecc check --kernel`": ("guides/check-kernels.md",),
    "### `ecc doctor`": ("install.md",),
    "## Running a package: `ecc run`": ("guides/run.md",),
    "## WebAssembly user space: `--wasm` and `ecc run APP.wasm`":
        ("guides/wasm.md", "design/performance.md"),
    "## Python API": ("index.md", "design/performance.md"),
    "## Shipping a package": ("guides/ship.md",),
    "### One executable: `ecc build -s`": ("guides/ship.md",),
    "### From a URL: `ecc run https://...`": ("guides/ship.md",),
    "### OCI registries: `ecc push`, `ecc pull`, `ecc run REF`": ("guides/ship.md",),
    "### WebAssembly programs": ("guides/ship.md",),
    "## Prometheus metrics: `ecc exporter`": ("guides/exporter.md",),
    "### OpenTelemetry: pushing over OTLP": ("guides/exporter.md",),
    "## Building without a toolchain: the image and `--docker`": ("guides/docker.md",),
    "## A new project: `ecc init NAME`": ("guides/docker.md",),
    "## Speed": ("design/performance.md",),
    "## Layout": ("design/pipeline.md",),
}

# Spans of the old README that are gone on purpose, and why.
DROPPED = {
    # the old README named the schema's path wrongly; the docs name the real one
    "ecc/package.schema.json": "ecc/package/schema.json",
    # no such module: the strip pass (ecc/compiler/strip.py) fixes the references
    "ecc/compiler/btforder.py": "ecc/compiler/strip.py",
    # the Python example runs as a test now, from the folder holding examples/
    'result = ecc.build("bootstrap.bpf.c", "bootstrap.h", output_dir="out")':
        'ecc.build("examples/bootstrap/bootstrap.bpf.c", ...)',
}

FIGURE = re.compile(r"\b\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?\s?(?:ms|us|MB|MiB|GB|KB|k|x|%|s)\b")
FLAG = re.compile(r"(?<![\w-])--?[a-zA-Z][\w-]*")
ENV = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")
KEY = re.compile(r"(?<![\w.])@[a-z][a-z_]*\b")


def sections(text: str) -> dict[str, str]:
    """Heading line -> the text up to the next heading (fenced blocks are not headings)."""
    out: dict[str, str] = {}
    heading, lines, fenced = None, [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,6} ", line):
            if heading is not None:
                out[heading] = "\n".join(lines)
            heading, lines = line, []
        else:
            lines.append(line)
    if heading is not None:
        out[heading] = "\n".join(lines)
    return out


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def facts(text: str) -> set[str]:
    """What a reader could look for: code spans, flags, variables, keys, figures, and
    every line of the code blocks."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", " ", text, flags=re.S | re.M)
    indented = re.findall(r"^    (\S.*)$", prose, re.M)
    found = {normalized(line).strip() for block in fenced for line in block.splitlines()}
    found |= {normalized(line).strip() for line in indented}
    flat = normalized(prose)
    found |= {normalized(s).strip() for s in re.findall(r"`([^`]+)`", flat)}
    words = re.sub(r"`[^`]*`", " ", flat)
    found |= set(FLAG.findall(words)) | set(ENV.findall(flat)) | set(KEY.findall(flat))
    found |= {normalized(f) for f in FIGURE.findall(words)}
    return {f for f in found if f and f not in DROPPED}


def page(name: str) -> str:
    return (ROOT / name if name == "README.md" else DOCS / name).read_text()


def test_readme_is_a_short_front_page() -> None:
    text = README.read_text()
    assert text.count("\n") <= 150
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    for wanted in ("## Set-up", "## Five-minute quick start", "## What it can do",
                   "## Contributing"):
        assert any(h.startswith(wanted) for h in headings), wanted
    # the two set-up commands, exactly (tests/test_suite_honesty.py checks the second too)
    assert f"\n    {SETUP}\n" in text
    assert f"\n    {TESTS}\n" in text
    # the picture of the flow, and a table row linking each guide
    assert "ecc build" in text and "ecc exporter" in text and "ecc run app.wasm" in text
    for guide in sorted((DOCS / "guides").glob("*.md")):
        assert f"(docs/guides/{guide.name})" in text, guide.name
    assert "(docs/api.md)" in text


def test_readme_links_point_at_files() -> None:
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links into the docs"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []


def test_every_old_heading_has_a_new_place() -> None:
    old = sections(OLD.read_text())
    assert sorted(old) == sorted(MOVED)
    for pages in MOVED.values():
        for name in pages:
            assert (ROOT / name if name == "README.md" else DOCS / name).is_file(), name


@pytest.mark.parametrize("heading", sorted(MOVED))
def test_section_moved_whole(heading: str) -> None:
    """Every code span, flag, environment variable, doc-comment key and figure of the
    old section is on one of the pages it moved to."""
    old = sections(OLD.read_text())[heading]
    new = normalized("\n".join(page(name) for name in MOVED[heading]))
    missing = sorted(f for f in facts(old) if f not in new)
    assert missing == [], f"{heading}: not in {', '.join(MOVED[heading])}"


def test_fact_extraction_finds_what_it_must() -> None:
    """The check above is not vacuous: the old text yields the facts a reader looks for."""
    found = facts(OLD.read_text())
    for fact in ("--btfhub-archive", "ECC_CACHE_MAX", "@cmdarg", "0.55x", "177 ms",
                 "ecc/btf/canon.py", "DOCKER_HOST", "--series-ttl", "-j"):
        assert fact in found, fact
    assert len(found) > 500


def test_paths_named_in_the_docs_exist() -> None:
    """A file or folder of this repository named in README.md or docs/ is there (a doc
    that names a renamed module is stale)."""
    texts = {README: README.read_text()} | {p: p.read_text() for p in DOCS.rglob("*.md")}
    named = re.compile(r"`((?:ecc|tests|benchmarks|scripts|examples|templates|docker|docs"
                       r"|\.ci|\.github)/[\w./-]*)`")
    elsewhere = {"ecc/_templates", "ecc/_docker",  # the wheel's names for templates/, docker/
                 ".github/workflows/build.yml"}  # in the project `ecc init` writes
    missing = sorted(f"{page.relative_to(ROOT)}: {path}" for page, text in texts.items()
                     for path in named.findall(text)
                     if path not in elsewhere and not (ROOT / path.rstrip("/")).exists())
    assert missing == []


def test_benchmarks_page_names_every_benchmark() -> None:
    text = (DOCS / "design" / "performance.md").read_text()
    scripts = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))
    assert scripts and [s for s in scripts if f"`benchmarks/{s}`" not in text] == []
