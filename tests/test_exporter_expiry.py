"""`ecc exporter` lets idle series go (issue 29): TTL expiry, least-recently-updated
eviction at --max-series, and what a real Prometheus makes of a counter that comes back.

The drivers (Exporter, probe, spawn, ...) are tests/test_exporter.py's.
"""

from __future__ import annotations

import json
import shutil
import signal
import struct
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builds import Built
from conftest import needs
from test_exporter import (
    ISSUE_CONFIG,
    Exporter,
    free_port,
    package,
    probe,
    request,
    run_main,
    select,
    spawn,
)

OPENS = "eunomia_file_open_counter_total"
HELD = ("ecc_exporter_series", frozenset())
CREATED = ("ecc_exporter_series_created_total", frozenset())
EXPIRED = ("ecc_exporter_series_expired_total", frozenset())
EVICTED = ("ecc_exporter_series_evicted_total", frozenset())


def accounted(samples: dict[Any, float]) -> tuple[float, float]:
    """(series removed, series created minus those held): equal when nothing is lost."""
    return samples[EXPIRED] + samples[EVICTED], samples[CREATED] - samples[HELD]


# --- the bookkeeping itself, on decoded events of a real package, with a clock of ours --------


@needs("prometheus-client")
def test_least_recently_updated_goes_first_and_idle_series_expire(
        built: dict[str, Built], tmp_path: Path) -> None:
    from ecc.exporter.config import parse_program
    from ecc.exporter.metrics import EventCounters, SeriesBudget
    from ecc.run.decode import Decoder

    spec = parse_program(
        {"name": "bootstrap", "metrics": {"counters": [
            {"name": "by_pid", "labels": ["pid"]},
            {"name": "kept", "labels": ["pid"], "ttl": 0, "map": "rb"},
            {"name": "all"}]},
         "compiled_ebpf_filename": str(package(built, "bootstrap"))}, "test", str(tmp_path))
    now = [1000.0]
    budget = SeriesBudget(7, ttl=10, clock=lambda: now[0])
    counters = EventCounters(spec, budget)
    size = Decoder(spec.package.btf, spec.event_types["rb"]).size

    def event(pid: int) -> None:
        counters.handle("rb", struct.pack("<i", pid) + bytes(size - 4))  # pid: first member
        now[0] += 1

    def shown() -> dict[str, dict[str, int]]:
        return {f.name: {s.labels.get("pid", ""): int(s.value) for s in f.samples}
                for f in counters.families()}

    for pid in (1, 2, 3):
        event(pid)  # by_pid 1-3, kept 1-3, all: 7 series
    event(1)  # 1 is now the most recently updated
    event(4)  # two new series: "all" (updated at each event) stays, 2 of by_pid and kept go
    assert shown() == {"by_pid": {"1": 2, "3": 1, "4": 1}, "kept": {"1": 2, "3": 1, "4": 1},
                       "all": {"": 5}}
    assert budget.counts() == (7, 9, 0, 2)  # held, created, expired, evicted
    now[0] += 9.5  # by_pid's 3, 1 and 4 were last updated 12.5, 11.5 and 10.5 s ago
    assert shown() == {"by_pid": {}, "kept": {"1": 2, "3": 1, "4": 1}, "all": {"": 5}}
    assert budget.counts() == (4, 9, 3, 2)
    event(1)  # comes back from zero; kept's 1 was never removed, so it goes on
    assert shown() == {"by_pid": {"1": 1}, "kept": {"1": 3, "3": 1, "4": 1}, "all": {"": 6}}
    held, created, expired, evicted = budget.counts()
    assert expired + evicted == created - held == 5
    counters.release()
    assert budget.counts()[0] == 0


@pytest.mark.parametrize(("ttl", "shown"), [("-1", "-1"), ("'soon'", "'soon'"), ("true", "True"),
                                           (".nan", "nan")])
def test_bad_ttl_is_one_line(ttl: str, shown: str, built: dict[str, Built], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"programs:\n- name: x\n  compiled_ebpf_filename: "
                    f"{package(built, 'opensnoop')}\n  metrics:\n    counters:\n"
                    f"    - name: opens\n      labels: [pid]\n      ttl: {ttl}\n")
    assert run_main(capsys, str(path), "--listen", "127.0.0.1:0") == (
        1, f"ecc: error: {path}: programs[0] (x): metrics.counters[0]: 'ttl' must be a number "
           f"of seconds (0: never expire), got {shown}\n")


# --- against the kernel ---------------------------------------------------------------------


@pytest.fixture
def opensnoop(built: dict[str, Built], kernel: None, tmp_path: Path) -> Iterator[Exporter]:
    """The issue's config, holding at most 200 series, each for 2 s without an open."""
    shutil.copy(package(built, "opensnoop"), tmp_path / "package.json")
    (tmp_path / "config.yaml").write_text(ISSUE_CONFIG)
    exporter = Exporter(str(tmp_path / "config.yaml"), "--max-series", "200",
                        "--series-ttl", "2")
    yield exporter
    assert exporter.stop() == 0, exporter.err


@needs("prometheus-client")
def test_new_activity_shows_past_the_limit(opensnoop: Exporter, tmp_path: Path) -> None:
    """500 processes open files, then a new one opens a marker 25 times: its series shows,
    with 25, and at every scrape the series made and gone are counted as expired or evicted.

    Every open on the machine makes a series, and a busy machine makes hundreds a second,
    so a series may live well under the 2 s of its TTL here: scrapes run throughout, and the
    marker must show in one of them.
    """
    exporter = opensnoop
    data, marker = tmp_path / "data.txt", tmp_path / "marker.txt"
    data.write_text("x")
    marker.write_text("x")
    cat = probe(tmp_path, "/bin/cat", "c")
    # dash opens the redirection itself: one process, 25 openat() of the marker.
    sh = probe(tmp_path, "/bin/dash", "s")
    script = 'i=0; while [ "$i" -lt 25 ]; do : < "$1"; i=$((i+1)); done'
    marker_pid: list[int] = []
    scrapes: list[tuple[int, float, float | None, tuple[float, float]]] = []
    watching = threading.Event()
    watching.set()

    def watch() -> None:
        while watching.is_set():
            s = exporter.samples()
            mine = None
            if marker_pid:
                mine = s.get((OPENS, frozenset({("pid", str(marker_pid[0])), ("comm", sh.name),
                                                ("filename", str(marker))})))
            scrapes.append((len(select(s, OPENS)), s[HELD], mine, accounted(s)))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        pids = spawn([str(cat), str(data)], 500)
        marker_pid.extend(spawn([str(sh), "-c", script, "sh", str(marker)], 1))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(m == 25 for *_, m, _ in scrapes):
            time.sleep(0.05)
    finally:
        watching.clear()
        watcher.join(30)
    assert len(set(pids)) == 500
    marks = [m for *_, m, _ in scrapes if m is not None]
    assert 25 in marks and max(marks) == 25
    assert max(n for n, *_ in scrapes) <= 200 and max(h for _, h, *_ in scrapes) <= 200
    assert all(removed == gone for *_, (removed, gone) in scrapes)
    samples = exporter.samples()
    assert accounted(samples)[0] == accounted(samples)[1]
    assert samples[CREATED] >= 501  # a series per cat (its pid) at least, and the marker's
    assert samples[EVICTED] > 0  # 500 processes' opens within 2 s: the limit was reached
    time.sleep(2.5)  # expired, or evicted before: gone either way
    samples = exporter.samples()
    assert not select(samples, OPENS, comm=sh.name) and not select(samples, OPENS, comm=cat.name)


@needs("prometheus-client")
def test_idle_counter_series_expire(built: dict[str, Built], kernel: None,
                                    tmp_path: Path) -> None:
    """--series-ttl 1: a comm's series goes after 1 s without an exec, and comes back from
    zero; the counter with `ttl: 0` keeps counting."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"programs": [{
        "name": "bootstrap",
        "metrics": {"counters": [{"name": "ecc_test_by_comm", "labels": ["comm"]},
                                 {"name": "ecc_test_kept", "labels": ["comm"], "ttl": 0}]},
        "compiled_ebpf_filename": str(package(built, "bootstrap"))}]}))
    exporter = Exporter(str(config), "--series-ttl", "1")
    try:
        true = probe(tmp_path, "/bin/true", "x")
        by_comm = ("ecc_test_by_comm_total", frozenset({("comm", true.name)}))
        kept = ("ecc_test_kept_total", frozenset({("comm", true.name)}))
        spawn([str(true)], 2)  # exec + exit each
        samples = exporter.wait_for(lambda s: s.get(by_comm) == 4 and s.get(kept) == 4)
        assert (samples.get(by_comm), samples.get(kept)) == (4, 4)
        samples = exporter.wait_for(lambda s: by_comm not in s, timeout=10)
        assert by_comm not in samples and samples[kept] == 4
        assert samples[EXPIRED] >= 1 and samples[EVICTED] == 0
        assert accounted(samples)[0] == accounted(samples)[1]
        spawn([str(true)], 1)
        samples = exporter.wait_for(lambda s: s.get(kept) == 6)
        assert (samples.get(by_comm), samples[kept]) == (2, 6)
    finally:
        assert exporter.stop() == 0, exporter.err


def query(base: str, promql: str, at: float | None = None) -> list[Any]:
    params = {"query": promql} | ({"time": f"{at:.3f}"} if at is not None else {})
    status, text = request(f"{base}/api/v1/query?{urllib.parse.urlencode(params)}", "GET", None)
    assert status == 200, text
    result: list[Any] = json.loads(text)["data"]["result"]
    return result


def wait_query(base: str, promql: str, want: list[str], timeout: float = 30) -> None:
    """Until Prometheus answers the instant query with these values."""
    deadline = time.monotonic() + timeout
    got: list[str] = []
    while time.monotonic() < deadline:
        try:
            got = [r["value"][1] for r in query(base, promql)]
        except OSError:
            got = []  # not listening yet
        if got == want:
            return
        time.sleep(0.3)
    raise AssertionError(f"{promql}: Prometheus answers {got}, not {want}")


@needs("prometheus-client", "prometheus")
def test_prometheus_increase_across_an_eviction(built: dict[str, Built], kernel: None,
                                                tmp_path: Path) -> None:
    """A counter is evicted and comes back from zero: Prometheus reads one reset, and
    increase() over its whole life is the events it counted, neither negative nor twice."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"programs": [{
        "name": "bootstrap",
        "metrics": {"counters": [{"name": "ecc_test_by_comm", "labels": ["comm"]}]},
        "compiled_ebpf_filename": str(package(built, "bootstrap"))}]}))
    # Room enough that the execs of a busy machine do not evict ours before we do.
    exporter = Exporter(str(config), "--max-series", "1000", "--series-ttl", "0")
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n- job_name: ecc\n  static_configs:\n"
        f"  - targets: ['{exporter.url.removeprefix('http://')}']\n")
    server = subprocess.Popen(
        [str(shutil.which("prometheus")), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        a = probe(tmp_path, "/bin/true", "a")
        series = f'ecc_test_by_comm_total{{comm="{a.name}"}}'
        # Each life starts with one process (exec + exit: 2) seen by a scrape, so that the
        # first sample is small and Prometheus's extrapolation to zero adds just that.
        spawn([str(a)], 1)
        wait_query(base, series, ["2"])
        spawn([str(a)], 19)
        wait_query(base, series, ["40"])
        # New comms until the exporter has evicted ours, the least recently updated.
        key = ("ecc_test_by_comm_total", frozenset({("comm", a.name)}))
        for i in range(3000):
            if key not in exporter.samples():
                break
            spawn([str(probe(tmp_path, "/bin/true", f"e{i}"))], 1)
        samples = exporter.samples()
        assert key not in samples
        assert samples[EVICTED] >= 1
        assert samples[EXPIRED] == 0  # --series-ttl 0: nothing expires
        wait_query(base, series, [])  # a scrape without it: stale in Prometheus
        spawn([str(a)], 1)
        wait_query(base, series, ["2"])
        spawn([str(a)], 14)
        wait_query(base, series, ["30"])
        raw = query(base, f"{series}[10m]")
        assert len(raw) == 1
        points = [(float(t), float(v)) for t, v in raw[0]["values"]]
        values = [v for _, v in points]
        drop = next(i for i in range(1, len(values)) if values[i] < values[i - 1])
        assert values[:drop] == sorted(values[:drop]) and values[drop - 1] == 40
        assert values[drop:] == sorted(values[drop:]) and values[drop] <= 2
        t_last = points[-1][0]
        assert [r["value"][1] for r in query(base, f"resets({series}[10m])", t_last)] == ["1"]
        # 70 events (40 + 30); a counter read as a gauge would give 30 - 2, one that was
        # not reset at eviction would give 108.
        (increase,) = query(base, f"increase({series}[10m])", t_last)
        assert 69 <= float(increase["value"][1]) <= 71, (increase, points)
        # Every 5 s window over its life, those across the eviction too: never negative
        # (short windows of few samples are extrapolated far, so only the sign is checked).
        first = points[0][0]
        params = urllib.parse.urlencode({"query": f"increase({series}[5s])", "start": first,
                                         "end": t_last, "step": "1"})
        status, text = request(f"{base}/api/v1/query_range?{params}", "GET", None)
        assert status == 200, text
        (windows,) = json.loads(text)["data"]["result"]
        assert any(float(t) > points[drop][0] for t, _ in windows["values"])
        assert min(float(v) for _, v in windows["values"]) >= 0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        assert exporter.stop() == 0, exporter.err


@needs("prometheus-client")
def test_map_metric_ttl_hides_unchanged_series(built: dict[str, Built], kernel: None,
                                               tmp_path: Path) -> None:
    """execlat's gauge with `ttl: 1` hides a comm whose count stopped changing and shows it
    again when it changes; the histogram of the same map entries, without a ttl, stays."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"programs:\n- name: execlat\n  compiled_ebpf_filename: {package(built, 'execlat')}\n"
        f"  metrics:\n    gauges:\n    - {{name: ecc_test_execs, map: execs, ttl: 1}}\n"
        f"    histograms:\n    - {{name: ecc_test_exec_usecs, map: hists, labels: [comm]}}\n")
    exporter = Exporter(str(config))
    try:
        true = probe(tmp_path, "/bin/true", "g")
        gauge = ("ecc_test_execs", frozenset({("comm", true.name)}))
        count = ("ecc_test_exec_usecs_count", frozenset({("comm", true.name)}))
        spawn([str(true)], 3)
        assert exporter.wait_for(lambda s: s.get(gauge) == 3).get(gauge) == 3
        samples = exporter.wait_for(lambda s: gauge not in s, timeout=10)
        assert gauge not in samples
        assert samples[count] == 3
        spawn([str(true)], 1)
        assert exporter.wait_for(lambda s: s.get(gauge) == 4).get(gauge) == 4
    finally:
        assert exporter.stop() == 0, exporter.err
