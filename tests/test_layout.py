"""The project's shape: one importer per outside dependency, and lint/type checks clean."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs

ROOT = Path(__file__).resolve().parent.parent
OWNERS = {
    "click": {"ecc/cli.py"},
    "ctypes": {"ecc/run/libbpf/"},  # the libbpf binding package, each of its modules
    "subprocess": {"ecc/compiler/tools.py"},
    "oras": {"ecc/oci_registry.py"},      # the OCI registry client
    "requests": {"ecc/oci_registry.py"},  # only to catch the errors oras lets through
    "urllib.request": {"ecc/run/fetch.py"},
    "docker": {"ecc/docker.py"},  # the Docker Engine API client (ecc build --docker)
    "jinja2": {"ecc/init.py"},    # the project templates (ecc init)
    "wasmtime": {"ecc/run/wasm/runtime.py"},  # WebAssembly guests (ecc run APP.wasm)
    "opentelemetry": {"ecc/exporter/otlp.py"},  # OTLP push (ecc exporter, the otel extra)
}


@pytest.mark.parametrize("module", sorted(OWNERS))
def test_one_importer_per_dependency(module: str) -> None:
    pattern = re.compile(rf"^\s*(?:import|from)\s+{module}\b", re.M)
    importers = {str(p.relative_to(ROOT)) for p in (ROOT / "ecc").rglob("*.py")
                 if pattern.search(p.read_text())}
    assert importers, f"nothing imports {module}: the table is out of date"
    # An owner ending in "/" is a folder: a package whose modules all wrap that dependency.
    strays = {path for path in importers
              if not any(path == owner or (owner.endswith("/") and path.startswith(owner))
                         for owner in OWNERS[module])}
    assert not strays, f"{module} imported by {strays}"


# The layers, lowest first: a module may import its own layer and those below it,
# never one above. compiler/ and run/ are siblings: neither reaches the other.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("ecc", "ecc.errors", "ecc.log", "ecc.fileio", "ecc.arch", "ecc.resources")),
    ("readers", ("ecc.elf", "ecc.btf", "ecc.doc_comments")),
    ("compat", ("ecc.compat",)),
    ("format", ("ecc.meta", "ecc.package", "ecc.oci", "ecc.oci_registry")),
    ("compiler", ("ecc.compiler",)),
    ("loader", ("ecc.run",)),
    ("exporter", ("ecc.exporter",)),
    ("commands", ("ecc.check", "ecc.doctor", "ecc.docker", "ecc.init", "ecc.buildcmd",
                  "ecc.cli", "ecc.launch", "ecc.__main__")),
    ("api", ("ecc.api",)),  # the Python API (ecc.build, ecc.load) over compiler and loader
)
SIBLINGS = {("compiler", "loader"), ("loader", "compiler"), ("compiler", "exporter")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Every module of ecc -> the modules of ecc it imports, lazy imports included,
    ``if TYPE_CHECKING:`` blocks left out (they never run)."""
    modules = {_module_name(p): p for p in (ROOT / "ecc").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        nodes: list[ast.AST] = [ast.parse(path.read_text(), str(path))]
        while nodes:
            node = nodes.pop()
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                nodes.extend(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                for alias in node.names:
                    # `from . import x` names a module when there is one, else the package.
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                              else base)
            nodes.extend(ast.iter_child_nodes(node))
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank >= 0, f"{module} is in no layer: add it to LAYERS"
    return rank


def test_the_graph_sees_lazy_imports() -> None:
    """The graph is not empty by mistake: known edges, one of them a lazy import."""
    graph = import_graph()
    assert len(graph) > 60
    assert "ecc.errors" in graph["ecc.elf"]
    assert "ecc.package.source" in graph["ecc.check"]  # imported inside a function


def test_no_import_runs_up_a_layer() -> None:
    graph = import_graph()
    wrong = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            here, there = layer_of(module), layer_of(target)
            pair = (LAYERS[here][0], LAYERS[there][0])
            if there > here or pair in SIBLINGS:
                wrong.append(f"{module} ({pair[0]}) imports {target} ({pair[1]})")
    assert wrong == [], "\n".join(wrong)


def test_no_import_circle() -> None:
    """No module reaches itself again through the modules it imports (Tarjan's SCCs).

    A package's ``__init__`` that re-exports its modules counts like any module, so
    a module importing its own package's face from inside that package is a circle."""
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert circles == [], "\n".join(" <-> ".join(c) for c in circles)


@needs("ruff")
def test_ruff_clean() -> None:
    result = subprocess.run(["ruff", "check", "--output-format", "concise", "."], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


@needs("mypy")
def test_mypy_strict_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "ecc"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_module_map_names_every_module() -> None:
    """The module map (docs/design/pipeline.md, once the README's layout table) lists
    every module of ecc (by file name, in its row)."""
    text = (ROOT / "docs" / "design" / "pipeline.md").read_text()
    layout = text[text.index("## Layout\n"):]
    missing = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "ecc").rglob("*.py"))
               if p.stem not in ("__init__", "__main__") and f"{p.name}`" not in layout
               and f"{p.name} " not in layout and f"{p.name})" not in layout
               and f"{p.name}," not in layout]
    assert missing == []


# The one function allowed past the limit: one branch per BTF kind reads best together.
LONG_FUNCTION_ALLOWED = {("ecc/btf/parse.py", "_decode")}


def test_modules_and_functions_stay_small() -> None:
    """No module of ecc over 600 lines, no function over 80 (the BTF kind dispatch
    excepted): the sizes a reader can hold at once."""
    too_long = []
    for path in sorted((ROOT / "ecc").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        source = path.read_text()
        if source.count("\n") > 600:
            too_long.append(f"{rel}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80 and (rel, node.name) not in LONG_FUNCTION_ALLOWED:
                    too_long.append(f"{rel}: {node.name}() {length} lines")
    assert too_long == []
