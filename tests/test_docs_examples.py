"""The examples of README.md and docs/ marked runnable run, and their output has the shape
the page shows (docs/contributing.md describes the markers).

A marked ```console block is a list of `$ ` commands, each followed by the shape of its
output; a marked ```python block runs with python3, and a block marked `<!-- output -->`
right after it is the shape of what it prints. The blocks of one page run in order in
one temporary folder holding a copy of examples/, against the real kernel where they
load BPF. docs/api.md runs in tests/test_api_docs.py instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import needs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SKIPPED_PAGES = {DOCS / "api.md"}  # tests/test_api_docs.py runs it
MARKER = re.compile(r"^<!-- run(?::\s*(?P<flags>[^>]*?))?\s*-->\n(?:\s*\n)*"
                    r"```(?P<lang>[\w-]+)[^\n]*\n(?P<body>.*?)^```\n"
                    r"(?P<after>(?:(?!<!-- run)[^\n]*\n){0,6}?<!-- output -->\n(?:\s*\n)*"
                    r"```[^\n]*\n(?P<output>.*?)^```\n)?", re.S | re.M)
FLAGS = {"root", "events", "fails"}
COMMAND_TIMEOUT = 180


@dataclass(frozen=True)
class Step:
    """One command (shell) or program (python) and the shape of its output."""
    line: int
    lang: str
    code: str
    shown: tuple[str, ...]


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    flags: frozenset[str]
    needs: tuple[str, ...]
    steps: tuple[Step, ...]


@dataclass
class Shell:
    """The folder the commands run in, and what they leave running in the background."""
    cwd: Path
    logs: Path
    steps: int = 0
    groups: list[int] = field(default_factory=list)


def parse_flags(text: str | None, where: str) -> tuple[frozenset[str], tuple[str, ...]]:
    flags: set[str] = set()
    wanted: tuple[str, ...] = ()
    for word in (text or "").split():
        if word.startswith("needs="):
            wanted = tuple(word.removeprefix("needs=").split(","))
        elif word in FLAGS:
            flags.add(word)
        else:
            raise ValueError(f"{where}: unknown run flag {word!r} (known: {sorted(FLAGS)})")
    return frozenset(flags), wanted


def console_steps(body: str, first_line: int) -> tuple[Step, ...]:
    steps: list[Step] = []
    command: list[str] = []
    shown: list[str] = []
    start = first_line
    lines = body.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("$ ") and not (command and command[-1].endswith("\\")):
            if command:
                steps.append(Step(start, "console", "\n".join(command), tuple(shown)))
            command, shown, start = [line[2:]], [], first_line + index
        elif command and command[-1].endswith("\\"):
            command.append(line)
        elif command:
            shown.append(line)
        else:
            raise ValueError(f"line {first_line + index}: output before any `$ ` command")
    if command:
        steps.append(Step(start, "console", "\n".join(command), tuple(shown)))
    return tuple(steps)


def blocks_of(page: Path, root: Path = ROOT) -> list[Block]:
    text = page.read_text()
    found = []
    for match in MARKER.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        where = f"{page.relative_to(root)}:{line}"
        flags, wanted = parse_flags(match["flags"], where)
        body_line = text.count("\n", 0, match.start("body")) + 1
        if match["lang"] == "console":
            steps = console_steps(match["body"], body_line)
        elif match["lang"] == "python":
            output = tuple((match["output"] or "").splitlines())
            steps = (Step(body_line, "python", match["body"], output),)
        else:
            raise ValueError(f"{where}: a runnable block is console or python, "
                             f"not {match['lang']}")
        found.append(Block(page, line, flags, wanted, steps))
    # a marker the pattern did not take (a typo, a block of another kind) is an error
    markers = len(re.findall(r"^<!-- run\b", text, re.M))
    assert markers == len(found), f"{page}: {markers} run markers, {len(found)} blocks parsed"
    return found


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    return [p for p in found
            if p not in SKIPPED_PAGES and re.search(r"^<!-- run\b", p.read_text(), re.M)]


def line_pattern(shown: str) -> re.Pattern[str]:
    """`...` is any text, a number any number, a run of spaces any run of spaces; the
    line matches from the start of an output line."""
    parts = re.split(r"(\.\.\.|\d+|\s+)", shown.rstrip())
    regex = "".join(".*?" if p == "..." else r"\d+" if p.isdigit() else r"\s+"
                    if p.isspace() else re.escape(p) for p in parts if p)
    return re.compile(regex)


def shape_mismatch(shown: tuple[str, ...], output: str) -> str | None:
    """None when ``output`` has the shape ``shown``: its lines match the shown lines in
    order, consecutively, except that a line of only `...` skips any number of lines
    (and the shown lines may end before the output does)."""
    actual = output.splitlines()
    position, floating = 0, False
    for want in shown:
        if want.strip() == "...":
            floating = True
            continue
        pattern = line_pattern(want)
        candidates = range(position, len(actual)) if floating else range(position,
                                                                         position + 1)
        hit = next((i for i in candidates if i < len(actual) and pattern.match(actual[i])),
                   None)
        if hit is None:
            near = actual[position] if position < len(actual) else "(end of output)"
            return f"no output line like {want!r} (next line: {near!r})"
        position, floating = hit + 1, False
    return None


def run_step(step: Step, shell: Shell, where: str) -> tuple[int, str]:
    code = step.code
    if step.lang == "console":
        if os.geteuid() == 0 and shutil.which("sudo") is None:
            code = re.sub(r"(^|[;&|]\s*)sudo ", r"\1", code)
        argv = ["bash", "-c", f"{code}\nrc=$?; pwd > .docs-cwd; exit $rc"]
    else:
        argv = [sys.executable, "-c", code]
    shell.steps += 1
    log = shell.logs / f"step-{shell.steps}.txt"
    with open(log, "wb") as out:
        # A file, not a pipe: a command may leave a server running (`... &`).
        proc = subprocess.Popen(argv, cwd=shell.cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        shell.groups.append(proc.pid)
        try:
            rc = proc.wait(COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"{where}: {step.code!r} still running after {COMMAND_TIMEOUT} s")
    moved = shell.cwd / ".docs-cwd"
    if moved.exists():
        new = Path(moved.read_text().strip())
        moved.unlink()
        shell.cwd = new
    time.sleep(0.2)  # a background job's first lines
    return rc, log.read_text(errors="replace")


@pytest.fixture
def activity() -> Iterator[None]:
    """Short-lived processes, as "run something in another shell" asks the reader."""
    proc = subprocess.Popen(["bash", "-c", "while :; do sleep 0.05; done"],
                            start_new_session=True)
    yield
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_page(page: Path, folder: Path, request: pytest.FixtureRequest) -> int:
    work = folder / "work"
    shutil.copytree(ROOT / "examples", work / "examples",
                    ignore=shutil.ignore_patterns("package.json", "*.bpf.o", "*.skel.json",
                                                  "out", "__pycache__"))
    shell = Shell(work, folder)
    ran = 0
    for block in blocks_of(page):
        if "events" in block.flags:
            request.getfixturevalue("activity")
        try:
            for index, step in enumerate(block.steps):
                where = f"{page.relative_to(ROOT)}:{step.line}"
                rc, output = run_step(step, shell, where)
                if "fails" in block.flags and index == len(block.steps) - 1:
                    assert rc != 0, f"{where}: {step.code!r} was to fail:\n{output}"
                else:
                    assert rc == 0, f"{where}: {step.code!r} exit {rc}:\n{output}"
                mismatch = shape_mismatch(step.shown, output)
                assert mismatch is None, f"{where}: {step.code!r}: {mismatch}\n{output}"
                ran += 1
        finally:
            # what a block started in the background ends with it
            for group in shell.groups:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGTERM)
            shell.groups.clear()
    return ran


def _param(page: Path) -> object:
    blocks = blocks_of(page)
    marks: list[pytest.MarkDecorator] = [pytest.mark.clang]
    if any("root" in b.flags for b in blocks):
        marks.append(pytest.mark.kernel)
    wanted = sorted({n for b in blocks for n in b.needs})
    if wanted:
        marks.append(needs(*wanted))
    return pytest.param(page, marks=marks, id=str(page.relative_to(ROOT)))


@pytest.mark.parametrize("page", [_param(p) for p in pages()])
def test_runnable_examples(page: Path, tmp_path: Path, cache_env: Path,
                           request: pytest.FixtureRequest) -> None:
    if any("root" in b.flags for b in blocks_of(page)):
        request.getfixturevalue("kernel")
    assert run_page(page, tmp_path, request) >= 1


def test_the_guides_show_runnable_examples() -> None:
    """The pages a reader starts from keep examples that run (so they cannot drift)."""
    have = {str(p.relative_to(ROOT)) for p in pages()}
    assert {"README.md", "docs/index.md", "docs/guides/build.md", "docs/guides/run.md",
            "docs/guides/doc-comments.md", "docs/guides/ship.md", "docs/guides/exporter.md",
            "docs/guides/wasm.md", "docs/guides/check-kernels.md", "docs/guides/docker.md",
            "docs/reference/package-format.md", "docs/reference/environment.md"} <= have
    assert sum(len(blocks_of(p)) for p in pages()) >= 20


@pytest.mark.parametrize(("shown", "output", "ok"), [
    (("$ x",), "$ x\n", True),
    (("ok 12 ms",), "ok 345 ms\n", True),
    (("ok 12 ms",), "ok fast\n", False),
    (("TIME  PID", "12:00:01 4242 ..."), "TIME PID\n21:19:18 7201 clang\n", True),
    (("TIME  PID", "12:00:01 4242 ..."), "TIME PID\nnoise\n21:19:18 7201 clang\n", False),
    (("TIME  PID", "...", "21:19:18 7201 ..."), "TIME PID\nnoise\n21:19:18 7201 x\n", True),
    (("first",), "other\nfirst\n", False),
    (("...", "first"), "other\nfirst\n", True),
    (("a", "b"), "a\n", False),
])
def test_shape_matching(shown: tuple[str, ...], output: str, ok: bool) -> None:
    assert (shape_mismatch(shown, output) is None) is ok


def test_markers_parse(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("<!-- run: root events needs=wasm -->\n```console\n$ echo a \\\n  b\n"
                    "a b\n$ true\n```\n\n<!-- run -->\n```python\nprint(1)\n```\n\n"
                    "<!-- output -->\n```text\n1\n```\n")
    first, second = blocks_of(page, tmp_path)
    assert first.flags == {"root", "events"} and first.needs == ("wasm",)
    assert [s.code for s in first.steps] == ["echo a \\\n  b", "true"]
    assert first.steps[0].shown == ("a b",)
    assert second.steps[0].lang == "python" and second.steps[0].shown == ("1",)
    page.write_text("<!-- run: rooot -->\n```console\n$ true\n```\n")
    with pytest.raises(ValueError, match="unknown run flag 'rooot'"):
        blocks_of(page, tmp_path)
