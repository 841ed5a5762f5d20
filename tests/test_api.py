"""The Python API (issue 21) against the real kernel, used as a user's script would:
``ecc.build`` then ``ecc.load``, events, options, maps and histograms."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
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
    """A shell that execs /bin/true once a line arrives on its stdin."""
    return subprocess.Popen(["sh", "-c", "read line; exec /bin/true"], stdin=subprocess.PIPE)


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
