"""Typed skeletons (issue 21): ``ecc build --py-skel`` writes ``<stem>_skel.py``; a user's
script type-checks against it under ``mypy --strict`` (a misspelled field or option does
not), and it loads, attaches and reads typed events and maps in the real kernel."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import enum
import importlib
import subprocess
import sys
import textwrap
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import needs
from runner import run_child

import ecc

pytestmark = [pytest.mark.clang]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = ROOT / "tests" / "data" / "skeleton"
SOURCES = {
    "bootstrap": (EXAMPLES / "bootstrap" / "bootstrap.bpf.c",
                  EXAMPLES / "bootstrap" / "bootstrap.h"),
    "runqlat": (EXAMPLES / "runqlat" / "runqlat.bpf.c", EXAMPLES / "runqlat" / "runqlat.h"),
    "shapes": (DATA / "shapes.bpf.c", DATA / "shapes.h"),
}


@pytest.fixture(scope="module")
def skeletons(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Iterator[Path]:
    """One folder holding bootstrap_skel.py, runqlat_skel.py and shapes_skel.py, importable."""
    folder = tmp_path_factory.mktemp("skeletons")
    for name, (source, header) in SOURCES.items():
        result = ecc.build(source, header, output_dir=folder / name, py_skel=True)
        written = folder / name / f"{name}_skel.py"
        assert written in result.outputs and written.is_file()
        (folder / f"{name}_skel.py").write_text(written.read_text())
    sys.path.insert(0, str(folder))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))
        for name in SOURCES:
            sys.modules.pop(f"{name}_skel", None)


def waiting_child() -> subprocess.Popen[bytes]:
    """A shell that execs /bin/true once a line arrives on its stdin. Its own exec is
    over when this returns (it has printed), so a program attached after it sees
    only the exec of /bin/true."""
    child = subprocess.Popen(["sh", "-c", "echo ready; read line; exec /bin/true"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def release(child: subprocess.Popen[bytes]) -> None:
    assert child.stdin is not None
    child.stdin.write(b"go\n")
    child.stdin.close()
    assert child.wait(timeout=10) == 0


def skel(name: str) -> ModuleType:
    return importlib.import_module(f"{name}_skel")


def mypy(folder: Path, script: str) -> subprocess.CompletedProcess[str]:
    user = folder / "user.py"
    user.write_text(textwrap.dedent(script))
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           "--cache-dir", "/dev/null", str(user)],
                          cwd=folder, capture_output=True, text=True, check=False)


USER_SCRIPT = """
    from bootstrap_skel import Bootstrap, Event
    from runqlat_skel import Hist, Runqlat

    def follow(pid: int) -> list[str]:
        seen: list[str] = []
        with Bootstrap.load(min_duration_ns=1_000, target_pid=pid) as prog:
            prog.attach()
            for event in prog.events(timeout=1.0):
                assert isinstance(event, Event)
                seen.append(event.comm.upper() + event.filename)
                total: int = event.pid + event.ppid + event.duration_ns
                done: bool = event.exit_event
            starts: dict[int, int] = dict(prog.maps.exec_start)
        return seen

    def slots() -> tuple[int, ...]:
        with Runqlat.load(targ_ms=True) as prog:
            for hist in prog.maps.hists.values():
                assert isinstance(hist, Hist)
                return hist.slots + (len(hist.comm),)
        return ()
"""


@needs("mypy")
def test_user_script_passes_mypy_strict(skeletons: Path) -> None:
    result = mypy(skeletons, USER_SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr


@needs("mypy")
@pytest.mark.parametrize(("right", "wrong", "misspelled"), [
    ("event.comm.upper()", "event.commm.upper()", "commm"),
    ("min_duration_ns=1_000", "min_duraton_ns=1_000", "min_duraton_ns"),
    ("hist.slots + (", "hist.slot + (", "slot"),
])
def test_misspelled_field_or_option_is_a_type_error(skeletons: Path, right: str, wrong: str,
                                                     misspelled: str) -> None:
    assert right in USER_SCRIPT
    result = mypy(skeletons, USER_SCRIPT.replace(right, wrong))
    assert result.returncode == 1, result.stdout
    assert f'"{misspelled}"' in result.stdout, result.stdout


@needs("mypy")
def test_generated_modules_pass_mypy_strict(skeletons: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                             "--cache-dir", "/dev/null",
                             *(f"{name}_skel.py" for name in SOURCES)],
                            cwd=skeletons, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_types_follow_btf(skeletons: Path) -> None:
    shapes = skel("shapes")
    hints = typing.get_type_hints(shapes.Shape)
    assert hints["pid"] is int and hints["comm"] is str and hints["mac"] is bytes
    assert hints["ok"] is bool and hints["where"] is shapes.Point
    assert hints["mode"] == shapes.Mode | int and issubclass(shapes.Mode, enum.IntEnum)
    assert hints["path"] == tuple[shapes.Point, ...]
    assert hints["grid"] == tuple[tuple[int, ...], ...]
    # Anonymous struct members flatten (as C reads them); Python's keywords get a "_".
    assert {"port", "proto", "from_", "_pad_", "flag", "level"} <= set(hints)
    assert dataclasses.fields(shapes.Shape)[0].name == "pid"
    with pytest.raises(dataclasses.FrozenInstanceError):
        shapes.Shape().pid = 1  # type: ignore[misc]
    assert [m.name for m in shapes.Mode] == ["MODE_A", "MODE_B", "MODE_NONE"]
    # Defaults: the annotation's, else the compiled-in value, as ecc run uses them.
    import inspect

    params = inspect.signature(shapes.Shapes.load).parameters
    assert params["start_mode"].default is shapes.Mode.MODE_B
    assert params["verbose"].default is True and params["label"].default == "shp"
    assert params["target_pid"].default == 0
    assert "report only this process id" in (shapes.Shapes.load.__doc__ or "")


@pytest.fixture(scope="module")
def every_example(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Path:
    """A skeleton of every example, built by the command line, in one folder."""
    folder = tmp_path_factory.mktemp("examples")
    for source in sorted(EXAMPLES.glob("*/*.bpf.c")):
        header = source.with_name(source.name.removesuffix(".bpf.c") + ".h")
        args = [str(source), *([str(header)] if header.exists() else [])]
        out = folder / source.parent.name
        subprocess.run([sys.executable, "-m", "ecc", "build", *args, "-o", str(out),
                        "--py-skel"], check=True, capture_output=True)
        for made in out.glob("*_skel.py"):
            (folder / made.name).write_text(made.read_text())
    return folder


@needs("mypy")
def test_every_examples_skeleton_passes_mypy_strict(every_example: Path) -> None:
    modules = sorted(p.name for p in every_example.glob("*_skel.py"))
    assert len(modules) == len(list(EXAMPLES.glob("*/*.bpf.c")))
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                             "--cache-dir", "/dev/null", *modules],
                            cwd=every_example, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_defaults_match_the_loaders(every_example: Path, kernel: None) -> None:
    """The oracle for the defaults written into load(): ecc.load's own option table, for
    every example."""
    import inspect

    sys.path.insert(0, str(every_example))
    try:
        for path in sorted(every_example.glob("*_skel.py")):
            module = importlib.import_module(path.stem)
            program = next(v for v in vars(module).values() if isinstance(v, type)
                           and issubclass(v, ecc.Skeleton) and v is not ecc.Skeleton)
            params = inspect.signature(program.load).parameters
            with ecc.load(base64.b64decode(program.PACKAGE)) as prog:
                assert set(prog.options) <= set(params), path.name
                for var, info in prog.options.items():
                    default = params[var].default
                    if isinstance(default, enum.IntEnum):
                        default = default.name
                    assert default == info.default, (path.name, var)
                    assert (info.help or "(no help text)") in (program.load.__doc__ or "")
            sys.modules.pop(path.stem, None)
    finally:
        sys.path.remove(str(every_example))


def test_bootstrap_skeleton_reads_typed_events(skeletons: Path, kernel: None) -> None:
    bootstrap = skel("bootstrap")
    with bootstrap.Bootstrap.load() as prog:
        assert prog.attach() == ["handle_exec", "handle_exit"]
        pid = run_child(["/bin/true"])
        seen = []
        for event in prog.events(timeout=10):
            if event.pid == pid:
                seen.append(event)
                if event.exit_event:
                    break
        starts = dict(prog.maps.exec_start)
    assert all(type(e) is bootstrap.Event for e in seen)
    assert (seen[0].comm, seen[0].filename, seen[0].exit_event) == ("true", "/bin/true", False)
    assert seen[-1].exit_event and seen[-1].duration_ns > 0
    assert all(isinstance(k, int) and isinstance(v, int) for k, v in starts.items())


def test_option_filters_in_the_kernel_through_the_skeleton(skeletons: Path,
                                                           kernel: None) -> None:
    bootstrap = skel("bootstrap")
    minimum = 300_000_000
    with bootstrap.Bootstrap.load(min_duration_ns=minimum) as prog:
        prog.attach()
        quick = run_child(["/bin/true"])
        slow = run_child(["/bin/sleep", "0.5"])
        events = []
        for event in prog.events(timeout=10):
            events.append(event)
            if event.pid == slow:
                break
    assert quick not in {e.pid for e in events}
    assert all(e.exit_event and e.duration_ns >= minimum for e in events)


def test_every_shape_round_trips_the_kernel(skeletons: Path, kernel: None) -> None:
    shapes = skel("shapes")
    child = waiting_child()
    with shapes.Shapes.load(start_mode=shapes.Mode.MODE_NONE, target_pid=child.pid) as prog:
        prog.attach()
        points = prog.maps.points
        points[shapes.Point(x=1, y=2)] = shapes.Mode.MODE_A  # a struct key from Python
        assert dict(points) == {shapes.Point(1, 2): shapes.Mode.MODE_A}
        assert prog.maps.hits[0] == [0] * len(prog.maps.hits[0])  # per CPU
        release(child)
        event = next(e for e in prog.events(timeout=10) if e.pid == child.pid)
        points.clear()
        assert len(points) == 0
    assert event == shapes.Shape(
        pid=child.pid, mode=shapes.Mode.MODE_NONE, where=shapes.Point(child.pid, -1),
        path=(shapes.Point(0, 0), shapes.Point(5, 0)), mac=b"\xaa\0\0\0\0\x55",
        grid=((0, 0, 0), (0, 0, -3)), value=shapes.ShapeValue(0x3f800000, 1.0),
        port=80, proto=6, flag=1, level=5, from_=11, _pad_=12, ok=True, comm="true")
    assert type(event.mode) is shapes.Mode


def test_a_map_value_decides_the_event(skeletons: Path, kernel: None) -> None:
    """A struct-keyed map written through the skeleton changes what the kernel sends."""
    shapes = skel("shapes")
    child = waiting_child()
    with shapes.Shapes.load(target_pid=child.pid) as prog:
        prog.attach()
        prog.maps.points[shapes.Point(x=child.pid, y=1)] = shapes.Mode.MODE_A
        release(child)
        event = next(e for e in prog.events(timeout=10) if e.pid == child.pid)
    assert event.mode is shapes.Mode.MODE_A


def test_aevents_yields_typed_events(skeletons: Path, kernel: None) -> None:
    bootstrap = skel("bootstrap")

    async def first_exec(prog: typing.Any) -> typing.Any:
        pid = await asyncio.to_thread(run_child, ["/bin/true"])
        async for event in prog.aevents(timeout=10):
            if event.pid == pid:
                return event
        return None

    with bootstrap.Bootstrap.load() as prog:
        prog.attach()
        event = asyncio.run(first_exec(prog))
    assert type(event) is bootstrap.Event and event.comm == "true"


def test_hostile_names_never_reach_the_source() -> None:
    from ecc.compiler.pyskel import camel, py_name

    assert camel("flood_event") == "FloodEvent" and camel("9lives") == "T9lives"
    assert camel('x"); import os; ("') == "XImportOs"
    assert py_name("class") == "class_" and py_name("__pad") == "_pad_"
    assert py_name("pid") == "pid"
