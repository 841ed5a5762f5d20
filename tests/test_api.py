"""The Python API (issue 21) against the real kernel, used as a user's script would:
``ecc.build`` then ``ecc.load``, events, options, maps and histograms."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import needs
from runner import run_child

import ecc

pytestmark = [pytest.mark.kernel, pytest.mark.clang]

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "api"
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> dict[str, Path]:
    """The packages these tests load, built through the API itself."""
    out = tmp_path_factory.mktemp("api")
    sources = {
        "bootstrap": (EXAMPLES / "bootstrap" / "bootstrap.bpf.c",
                      EXAMPLES / "bootstrap" / "bootstrap.h"),
        "runqlat": (EXAMPLES / "runqlat" / "runqlat.bpf.c", EXAMPLES / "runqlat" / "runqlat.h"),
        "watch": (DATA / "watch.bpf.c", DATA / "watch.h"),
        "rejected": (DATA / "rejected.bpf.c", None),
        "waits": (DATA / "waits.bpf.c", None),
        "iter": (EXAMPLES / "iter" / "iter.bpf.c", None),
        "ucount": (DATA / "ucount.bpf.c", None),
        "globals": (EXAMPLES / "globals" / "globals.bpf.c", EXAMPLES / "globals" / "globals.h"),
        "tworings": (DATA / "tworings.bpf.c", DATA / "tworings.h"),
    }
    built = {}
    for name, (source, header) in sources.items():
        result = ecc.build(source, header, output_dir=out / name)
        assert result.package == out / name / "package.json" and result.package.is_file()
        built[name] = result.package
    return built


def link_fds() -> int:
    """BPF links this process holds, as the kernel lists them."""
    count = 0
    for entry in Path("/proc/self/fdinfo").iterdir():
        try:
            count += "link_id:" in entry.read_text()
        except OSError:
            continue
    return count


def waiting_child() -> subprocess.Popen[bytes]:
    """A shell that execs /bin/true once a line arrives on its stdin. Its own exec is
    over when this returns (it has printed; Popen may return as soon as the exec
    begins), so a program attached after it sees only the exec of /bin/true."""
    child = subprocess.Popen(["sh", "-c", "echo ready; read line; exec /bin/true"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


def release(child: subprocess.Popen[bytes]) -> None:
    child.communicate(b"go\n", timeout=10)


def collect(prog: ecc.Program, timeout: float,
            until: Callable[[ecc.Event], bool]) -> Iterator[ecc.Event]:
    """Events until one satisfies ``until`` (included) or the timeout."""
    for event in prog.events(timeout=timeout):
        yield event
        if until(event):
            return


def test_bootstrap_events_carry_the_started_process(packages: dict[str, Path],
                                                    kernel: None) -> None:
    with ecc.load(packages["bootstrap"]) as prog:
        assert prog.attach() == ["handle_exec", "handle_exit"]
        pid = run_child(["/bin/true"])
        seen = [e for e in collect(prog, 10, lambda e: e.pid == pid and e.exit_event)
                if e.pid == pid]
    exec_event, exit_event = seen[0], seen[-1]
    assert (exec_event.comm, exec_event.filename, exec_event.exit_event) == (
        "true", "/bin/true", False)
    assert exec_event.ppid == os.getpid()
    assert exit_event.exit_event and exit_event.exit_code == 0 and exit_event.duration_ns > 0
    # The same record three ways: attributes, a plain dict, and the bytes that came.
    assert exec_event.to_dict()["pid"] == exec_event["pid"] == pid
    assert int.from_bytes(exec_event.raw[:4], sys.byteorder) == pid
    assert exec_event.map == "rb"


def test_min_duration_filters_in_the_kernel(packages: dict[str, Path], kernel: None) -> None:
    """min_duration_ns goes into .rodata: exec events stop, short-lived exits are dropped."""
    minimum = 300_000_000
    with ecc.load(packages["bootstrap"], min_duration_ns=minimum) as prog:
        info = prog.options["min_duration_ns"]
        assert (info.type, info.default) == ("unsigned long long", 0)
        assert "minimum process duration" in info.help
        prog.attach()
        quick = run_child(["/bin/true"])
        slow = run_child(["/bin/sleep", "0.5"])
        events = list(collect(prog, 10, lambda e: e.pid == slow))
    ours = {e.pid: e for e in events if e.pid in (quick, slow)}
    assert set(ours) == {slow}
    assert ours[slow].exit_event and ours[slow].duration_ns >= minimum
    assert all(e.exit_event and e.duration_ns >= minimum for e in events)


def test_option_by_long_name_filters_pids(packages: dict[str, Path], kernel: None) -> None:
    """`pid` is target_pid's long option name: only that process reaches user space."""
    child = waiting_child()
    with ecc.load(packages["bootstrap"], pid=child.pid) as prog:
        prog.attach()
        others = [run_child(["/bin/true"]) for _ in range(3)]
        release(child)
        events = list(collect(prog, 10, lambda e: e.pid == child.pid and e.exit_event))
    assert {e.pid for e in events} == {child.pid}
    assert not set(others) & {e.pid for e in events}


def test_map_written_from_python_decides_what_the_kernel_reports(
        packages: dict[str, Path], kernel: None) -> None:
    watched, ignored = waiting_child(), waiting_child()
    with ecc.load(packages["watch"]) as prog:
        prog.attach()
        table = prog.maps["watched"]
        table[watched.pid] = {"cookie": 77, "tag": "hello"}  # while it runs
        assert table[watched.pid] == {"cookie": 77, "tag": "hello"}
        assert list(table) == [watched.pid] and ignored.pid not in table
        release(ignored)
        release(watched)
        events = list(collect(prog, 10, lambda e: e.pid == watched.pid))
        counts = dict(prog.maps["counts"])
        del table[watched.pid]
        with pytest.raises(KeyError):
            del table[watched.pid]
        assert len(table) == 0
    assert [(e.pid, e.cookie, e.tag, e.comm) for e in events] == [
        (watched.pid, 77, "hello", "true")]
    assert counts == {watched.pid: 1}


def test_histogram_as_data(packages: dict[str, Path], kernel: None) -> None:
    with ecc.load(packages["runqlat"]) as prog:
        prog.attach()
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            run_child(["/bin/true"])
        first = prog.histogram("hists")
        for _ in range(20):
            run_child(["/bin/true"])
        second = prog.histogram("hists")
        per_key = prog.histograms("hists")
    assert (first.kind, first.unit, first.map) == ("log2_hist", "usecs", "hists")
    assert len(first.buckets) == len(first.counts) == 26
    assert first.buckets[:4] == [(0, 1), (2, 3), (4, 7), (8, 15)]
    assert first.total > 0
    assert second.total > first.total
    assert all(b >= a for a, b in zip(first.counts, second.counts, strict=True))
    assert sum(h.total for h in per_key.values()) >= second.total


def test_verifier_refusal_is_a_load_error_with_its_log(packages: dict[str, Path],
                                                       kernel: None) -> None:
    with pytest.raises(ecc.LoadError) as caught:
        ecc.load(packages["rejected"])
    assert "unchecked" in str(caught.value)
    assert "invalid mem access" in caught.value.log
    assert isinstance(caught.value, ecc.EccError)


def test_unattachable_program_is_an_attach_error(packages: dict[str, Path],
                                                 kernel: None) -> None:
    before = link_fds()
    with ecc.load(packages["waits"]) as prog:
        with pytest.raises(ecc.AttachError, match="on_ingress.*cgroup"):
            prog.attach()
        assert prog.attached == [] and link_fds() == before  # on_exec detached again
        assert prog.attach(skip_unattachable=True) == ["on_exec"]
        assert link_fds() == before + 1
        assert any("on_ingress" in note for note in prog.notes)
    assert link_fds() == before


def test_leaving_with_on_an_error_detaches(packages: dict[str, Path], kernel: None) -> None:
    before = link_fds()
    with pytest.raises(RuntimeError, match="from the loop"), \
            ecc.load(packages["bootstrap"]) as prog:
        prog.attach()
        assert link_fds() == before + 2
        run_child(["/bin/true"])
        for _event in prog.events(timeout=10):
            raise RuntimeError("from the loop")
    assert link_fds() == before and prog.closed
    with pytest.raises(ecc.EccError):
        prog.maps["exec_start"][1] = 1


def test_close_from_another_thread_ends_events(packages: dict[str, Path],
                                               kernel: None) -> None:
    with ecc.load(packages["bootstrap"]) as prog:
        prog.attach()
        timer = threading.Timer(0.5, prog.close)
        start = time.monotonic()
        timer.start()
        for _ in prog.events():  # no timeout: only close() ends it
            pass
        assert 0.4 < time.monotonic() - start < 3
        timer.join()


def getppid_child(n: int) -> subprocess.Popen[str]:
    """A Python child that calls getppid() ``n`` times once a line arrives."""
    return subprocess.Popen([sys.executable, "-c", "import os, sys\nsys.stdin.readline()\n"
                             f"for _ in range({n}): os.getppid()\n"], stdin=subprocess.PIPE,
                            text=True)


def test_two_buffer_maps_each_in_order_and_a_loop_left_early_loses_nothing(
        packages: dict[str, Path], kernel: None) -> None:
    n = 400
    child = getppid_child(n)
    with ecc.load(packages["tworings"], target_pid=child.pid) as prog:
        prog.attach()
        child.communicate("go\n", timeout=30)  # all n records wait in the two rings
        seen: dict[str, list[int]] = {"odd": [], "even": []}
        rounds = 0
        while rounds < 1000:  # leave the loop after each 7 events, then go on
            rounds, got = rounds + 1, 0
            for event in prog.events(timeout=2):
                seen[event.map].append(event.seq)
                got += 1
                if got == 7:
                    break
            if got < 7:
                break
        assert rounds == n // 7 + 1  # the last round got the 400 % 7 left
        # Every record once: each map's in the kernel's order, none lost or repeated.
        assert seen["even"] == list(range(0, n, 2))
        assert seen["odd"] == list(range(1, n, 2))
    child = getppid_child(6)
    with ecc.load(packages["tworings"], target_pid=child.pid) as prog:
        prog.attach()
        child.communicate("go\n", timeout=30)
        records = list(prog.records(timeout=1))
    # Undecoded: each map's records as the kernel wrote them, the maps in the object's order.
    assert records == [("odd", struct.pack("=I", i)) for i in (1, 3, 5)] + [
        ("even", struct.pack("=I", i)) for i in (0, 2, 4)]


def test_package_errors_and_unknown_options(packages: dict[str, Path], tmp_path: Path,
                                            kernel: None) -> None:
    with pytest.raises(ecc.PackageError):
        ecc.load(tmp_path / "missing.json")
    with pytest.raises(ecc.PackageError):
        ecc.load({"bpf_object": "not base64", "meta": {}})
    with pytest.raises(TypeError, match="min_duration_ns"):
        ecc.load(packages["bootstrap"], no_such_option=1)
    # The same package as bytes and as a document loads alike.
    data = packages["bootstrap"].read_bytes()
    with ecc.load(data) as prog:
        assert "min_duration_ns" in prog.options


def test_build_error_chains_the_compile_error(tmp_path: Path, cache_env: Path) -> None:
    source = tmp_path / "broken.bpf.c"
    source.write_text("int broken( {\n")
    with pytest.raises(ecc.BuildError) as caught:
        ecc.build(source, output_dir=tmp_path / "out")
    assert type(caught.value.__cause__).__name__ == "CompileError"
    with pytest.raises(TypeError, match="no_such"):
        ecc.build(source, no_such=True)


def test_import_ecc_stays_lazy() -> None:
    code = ("import sys, ecc; lazy = 'ecc.api' not in sys.modules; ecc.load; "
            "print(lazy, 'ecc.api' in sys.modules, sorted(ecc.__all__) == sorted("
            "n for n in ecc.__all__ if hasattr(ecc, n)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["True", "True", "True"]


def test_aevents_is_the_asyncio_events(packages: dict[str, Path], kernel: None) -> None:
    import asyncio

    async def exec_of(prog: ecc.Program, pid_box: list[int]) -> ecc.Event | None:
        ticks = 0

        async def tick() -> None:  # the loop stays free while aevents waits
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        pid_box.append(await asyncio.to_thread(run_child, ["/bin/true"]))
        try:
            async for event in prog.aevents(timeout=10):
                if event.pid == pid_box[0]:
                    await asyncio.sleep(0.2)
                    assert ticks > 5
                    return event
        finally:
            ticker.cancel()
        return None

    with ecc.load(packages["bootstrap"]) as prog:
        prog.attach()
        box: list[int] = []
        event = asyncio.run(exec_of(prog, box))
    assert event is not None and (event.pid, event.comm, event.map) == (box[0], "true", "rb")


def test_attach_to_a_cgroup_given_to_attach(packages: dict[str, Path], kernel: None) -> None:
    """The cgroup program that waits without a target attaches when attach() gets one."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if line.split()[2] == "cgroup2"]
    assert mounts, "no cgroup v2 hierarchy is mounted"
    before = link_fds()
    with ecc.load(packages["waits"]) as prog:
        assert prog.attach(cgroup=mounts[0]) == ["on_exec", "on_ingress"]
        assert link_fds() == before + 2
    with ecc.load(packages["waits"]) as prog, pytest.raises(ecc.AttachError, match="nope0"):
        prog.attach(iface="nope0")
    assert link_fds() == before


def test_map_clear_empties_the_kernels_map(packages: dict[str, Path], kernel: None) -> None:
    with ecc.load(packages["watch"]) as prog:
        table = prog.maps["watched"]
        for pid in (1, 2, 3):
            table[pid] = {"cookie": pid, "tag": "x"}
        assert len(table) == 3
        table.clear()
        assert len(table) == 0 and 1 not in table


def test_event_fields_and_methods_by_name(packages: dict[str, Path], kernel: None) -> None:
    """Fields read as attributes, the Mapping's methods stay methods, and a record equals
    its dict."""
    with ecc.load(packages["bootstrap"]) as prog:
        prog.attach()
        pid = run_child(["/bin/true"])
        event = next(e for e in prog.events(timeout=10) if e.pid == pid)
    assert event == event.to_dict() and dict(event) == event.to_dict()
    assert list(event.keys())[:2] == ["pid", "ppid"] and event.get("comm") == "true"
    with pytest.raises(AttributeError, match="no field 'pidd'"):
        event.pidd  # noqa: B018


def test_all_is_written_once() -> None:
    import ecc.api

    assert ecc.api.__all__ == [n for n in ecc.__all__ if n != "__version__"]
    assert all(getattr(ecc.api, name) is getattr(ecc, name) for name in ecc.api.__all__)


def test_iterate_runs_an_iterator_with_its_option(packages: dict[str, Path],
                                                   kernel: None) -> None:
    """min_pid filters in the kernel: this process is listed, pid 1 is not."""
    with ecc.load(packages["iter"], min_pid=os.getpid()) as prog:
        text = prog.iterate("dump_task")
        again = prog.iterate("dump_task", raw=True).decode().splitlines()
        with pytest.raises(KeyError, match="no iterator program"):
            prog.iterate("nothing")
    assert isinstance(text, str)  # BPF_SEQ_PRINTF output: text, as ecc run prints it
    lines = text.splitlines()
    rows = [line.split() for line in lines[1:]]
    assert lines[0].split() == ["PID", "PPID", "COMM"] and again[0] == lines[0]
    assert [str(os.getpid()), str(os.getppid())] in [row[:2] for row in rows]
    assert all(int(row[0]) >= os.getpid() for row in rows)


def test_uprobe_target_given_to_attach(packages: dict[str, Path], kernel: None) -> None:
    """A uprobe section without a target waits; attach() with a binary and a function
    attaches it, and the calls of a process the test started are counted."""
    code = "import os, sys\nsys.stdin.readline()\nfor _ in range(7): os.getppid()\n"
    with ecc.load(packages["ucount"]) as prog:
        with pytest.raises(ecc.AttachError, match="uprobe-binary"):
            prog.attach()
        assert prog.attach(uprobe_binary="libc.so.6", uprobe_function="getppid") == [
            "on_call"]
        child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
        child.communicate(b"go\n", timeout=30)
        counts = dict(prog.maps["calls"])
    assert counts.get(child.pid) == 7


def own_maps() -> dict[str, dict[str, str]]:
    """The BPF maps this process holds fds of, by the kernel's name (bpftool's view):
    their fdinfo (map_id, map_flags, frozen...)."""
    out = {}
    for entry in list(Path("/proc/self/fdinfo").iterdir()):
        try:
            text = entry.read_text()
        except OSError:  # the fd listing itself, closed meanwhile
            continue
        if "map_id:" not in text:
            continue
        info = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        shown = subprocess.run(["bpftool", "-j", "map", "show", "id", info["map_id"]],
                               capture_output=True, text=True, check=True)
        out[json.loads(shown.stdout)["name"]] = info
    return out


def shared_map_mappings() -> int:
    """Writable shared mappings of BPF maps in this process (/proc/self/maps)."""
    return sum(1 for line in Path("/proc/self/maps").read_text().splitlines()
               if line.endswith("anon_inode:bpf-map") and " rw-s " in line)


def bpftool_section(map_id: str) -> dict[str, object]:
    """bpftool's BTF-formatted view of a data section map's element: var -> value."""
    found = subprocess.run(["bpftool", "-j", "map", "lookup", "id", map_id, "key", "0", "0",
                            "0", "0"], capture_output=True, text=True, check=True)
    (section, variables), = json.loads(found.stdout)["formatted"]["value"].items()
    return {name: value for var in variables for name, value in var.items()}


@needs("bpftool")
def test_variables_as_bpftool_sees_them(packages: dict[str, Path], kernel: None) -> None:
    """Writes land at the offsets bpftool (libbpf's BTF dumper) reads the variables at,
    and only there; .rodata is what the kernel froze; closing lets the maps go."""
    with ecc.load(packages["globals"], tag=5, greeting="hi") as prog:
        v = prog.variables
        mapped = shared_map_mappings()
        assert {n: v.section(n) for n in v} == {
            "target_pid": ".rodata", "greeting": ".data", "scale": ".data.cfg",
            "mode": ".rodata.cfg", "tag": ".bss", "seq": ".bss"}
        v["tag"], v["seq"], v["scale"] = 0x12345678, 2**64 - 1, -3
        v["greeting"] = "x" * 15
        # .bss, .data and .data.cfg mmapped writable, as a libbpf skeleton maps them
        assert shared_map_mappings() == mapped + 3
        maps = own_maps()
        bss, data = bpftool_section(maps["globals_.bss"]["map_id"]), bpftool_section(
            maps["globals_.data"]["map_id"])
        cfg = bpftool_section(maps[".data.cfg"]["map_id"])
        assert (bss["tag"], bss["seq"], bss["dropped"]) == (0x12345678, 2**64 - 1, 0)
        assert (cfg["scale"], data["greeting"]) == (-3, "x" * 15)
        assert (v["tag"], v["seq"], v["scale"], v["greeting"]) == (
            0x12345678, 2**64 - 1, -3, "x" * 15)
        assert maps["globals_.rodata"]["frozen"].strip() == "1"
        assert maps[".rodata.cfg"]["frozen"].strip() == "1"
        with pytest.raises(ecc.EccError, match=r"'mode' is in \.rodata\.cfg, which the kernel "
                           r"froze at load"):
            v["mode"] = 2
        with pytest.raises(ValueError, match="variable tag .*does not fit"):
            v["tag"] = 2**32
        with pytest.raises(ValueError, match="variable greeting .*do not fit"):
            v["greeting"] = "y" * 16
        with pytest.raises(TypeError, match="cannot be deleted"):
            del v["tag"]
        ids = {info["map_id"] for info in maps.values()}
    assert not ids & {info["map_id"] for info in own_maps().values()}
    assert shared_map_mappings() == 0  # unmapped: nothing keeps the maps alive
    with pytest.raises(ecc.EccError, match="closed"):
        v["tag"]


@needs("bpftool")
def test_variables_without_mmap_use_element_updates(packages: dict[str, Path], kernel: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A section the kernel will not map (no BPF_F_MMAPABLE, on an old kernel) is read
    and written by lookups and updates of key 0: same values, same offsets."""
    import ecc.api.variables as variables

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(variables.mmap, "mmap", refuse)
    with ecc.load(packages["globals"], tag=5) as prog:
        v = prog.variables
        assert (v["tag"], v["greeting"]) == (5, "hello")
        v["seq"], v["greeting"] = 9, "other"
        maps = own_maps()
        bss = bpftool_section(maps["globals_.bss"]["map_id"])
        data = bpftool_section(maps["globals_.data"]["map_id"])
        assert (bss["tag"], bss["seq"], data["greeting"]) == (5, 9, "other")
        assert (v["tag"], v["seq"]) == (5, 9)


@pytest.fixture(scope="module")
def globals_skel(tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Iterator[Path]:
    """examples/globals built with py_skel=True: the folder holding globals_skel.py."""
    folder = tmp_path_factory.mktemp("globals_skel")
    ecc.build(EXAMPLES / "globals" / "globals.bpf.c", EXAMPLES / "globals" / "globals.h",
              output_dir=folder, py_skel=True)
    sys.path.insert(0, str(folder))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("globals_skel", None)


@needs("mypy")
@pytest.mark.parametrize(("line", "error"), [
    ("prog.variables.tag = prog.variables.seq + 1", None),
    ('prog.variables.tag = "x"', 'Incompatible types in assignment (expression has type '
                                 '"str", variable has type "int")'),
    ("prog.variables.target_pid = 5", 'Property "target_pid" defined in "GlobalsVariables" '
                                      "is read-only"),
    ("prog.variables.tagg = 1", '"GlobalsVariables" has no attribute "tagg"'),
])
def test_skeleton_variables_are_typed(globals_skel: Path, line: str, error: str | None) -> None:
    """The skeleton's variables: one typed property each; .rodata ones have no setter."""
    script = globals_skel / "user.py"
    script.write_text("from globals_skel import Globals\n\n"
                      "with Globals.load(tag=3) as prog:\n"
                      "    greeting: str = prog.variables.greeting\n"
                      f"    {line}\n")
    found = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                            "--cache-dir", "/dev/null", str(script)], cwd=globals_skel,
                           capture_output=True, text=True, check=False)
    if error is None:
        assert found.returncode == 0, found.stdout
    else:
        assert found.returncode == 1 and error in found.stdout, found.stdout


def test_skeleton_variables_reach_the_kernel(globals_skel: Path, kernel: None) -> None:
    from globals_skel import Globals  # type: ignore[import-not-found]

    child = waiting_child()
    with Globals.load(target_pid=child.pid) as prog:
        prog.attach()
        v = prog.variables
        assert (v.target_pid, v.greeting, v.tag, v.seq) == (child.pid, "hello", 0, 0)
        v.tag, v.greeting = 7, "typed"
        release(child)
        events = [e for e in prog.events(timeout=2.0) if e.pid == child.pid]
        assert v.seq == 1
        with pytest.raises(AttributeError, match="no setter"):  # .rodata: frozen
            setattr(v, "target_pid", 1)  # noqa: B010  (what the type checker refuses)
    assert [(e.tag, e.greeting, e.seq) for e in events] == [(7, "typed", 1)]
