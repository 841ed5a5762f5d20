"""`ecc exporter` against the real kernel and a real Prometheus server (issue 11).

Every workload runs binaries copied under a name of this test run's own
(``exNNNNNt``...), so the counts asserted are exactly ours whatever else runs
on the machine: the metrics are labelled by comm.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from builds import Built
from conftest import require

from ecc.cli import main

ROOT = Path(__file__).resolve().parent.parent
TAG = f"ex{os.getpid() % 100000}"  # comm prefix of this run's probes (comm keeps 15 chars)
READY = "ecc: exporter listening on "
TOKEN = "s3cret-token-for-tests"

# The configuration of the issue, as users have it; only the package path is ours.
ISSUE_CONFIG = """\
programs:
- name: opensnoop
  metrics:
    counters:
    - name: eunomia_file_open_counter
      description: test
      labels:
      - name: pid
      - name: comm
      - name: filename
        from: fname
  compiled_ebpf_filename: package.json
"""


# --- driving an exporter ----------------------------------------------------------------------


class Exporter:
    """`python -m ecc exporter ARGS` on a free port, stopped by pid."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ecc", "exporter", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd)
        self.err: list[str] = []
        self.url = ""
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.err.append(line.rstrip("\n"))
                if line.startswith(READY):
                    self.url = line[len(READY):].split("/metrics")[0]
                    ready.set()
            ready.set()

        self._thread = threading.Thread(target=pump, daemon=True)
        self._thread.start()
        if not ready.wait(60) or not self.url:
            self.stop()
            raise AssertionError(f"the exporter never got ready: {self.err}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        self._thread.join(5)
        return rc

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        return request(self.url + path, "GET", None, headers)

    def metrics(self) -> str:
        status, text = self.get("/metrics")
        assert status == 200, text
        return text

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        from prometheus_client.parser import text_string_to_metric_families

        out = {}
        for family in text_string_to_metric_families(self.metrics()):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def wait_for(self, predicate: Callable[[dict[tuple[str, frozenset[tuple[str, str]]], float]],
                                           bool], timeout: float = 15) -> dict[Any, float]:
        deadline = time.monotonic() + timeout
        while True:
            samples = self.samples()
            if predicate(samples) or time.monotonic() > deadline:
                return samples
            time.sleep(0.2)


def request(url: str, method: str, body: bytes | None,
            headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def select(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return {lbls: v for (n, lbls), v in samples.items() if n == name and want <= lbls}


def probe(tmp: Path, source: str, suffix: str) -> Path:
    """A copy of `source` whose comm is ours alone."""
    path = tmp / f"{TAG}{suffix}"
    shutil.copy(source, path)
    return path


def spawn(argv: list[str], n: int) -> list[int]:
    """Run argv n times, one after the other; their pids."""
    pids = []
    for _ in range(n):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc.wait(30)
        assert proc.returncode == 0
        pids.append(proc.pid)
    return pids


def package(built: dict[str, Built], example: str) -> Path:
    case = built[f"cases/example-{example}"]
    assert case.result is not None, case.error
    return case.package


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- one exporter with three programs, shared by the kernel tests ----------------------------


@pytest.fixture(scope="module")
def setup(built: dict[str, Built], kernel: None,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Exporter, Path]]:
    """The issue's config (opensnoop) with its package beside it, plus bootstrap given
    inline as `ebpf_data` and the execlat example's histogram and gauge."""
    require("prometheus-client")
    tmp = tmp_path_factory.mktemp("exporter")
    packages = {name: package(built, name) for name in ("opensnoop", "bootstrap", "execlat")}
    shutil.copy(packages["opensnoop"], tmp / "package.json")
    bootstrap = json.dumps({
        "name": "bootstrap",
        "metrics": {"counters": [{
            "name": "ecc_test_process_events_total", "description": "exec and exit events",
            "labels": [{"name": "comm"}, {"name": "exit", "from": "exit_event"}]}]},
        "ebpf_data": packages["bootstrap"].read_text(),
    })
    execlat = json.dumps({
        "name": "execlat",
        "metrics": {
            "histograms": [{"name": "ecc_test_exec_duration_usecs", "map": "hists",
                            "description": "execve() durations", "labels": ["comm"]}],
            "gauges": [{"name": "ecc_test_execs", "map": "execs",
                        "description": "execs by comm"}]},
        "compiled_ebpf_filename": str(packages["execlat"]),
    })
    # YAML is a superset of JSON: the added entries go in as JSON flow mappings.
    (tmp / "config.yaml").write_text(ISSUE_CONFIG + f"- {bootstrap}\n- {execlat}\n")
    # The issue's counter makes a series per (pid, comm, file): every open on this machine
    # (other test runs too) adds one. Room enough here; tests/test_exporter_expiry.py
    # tests the limit.
    exporter = Exporter(str(tmp / "config.yaml"), "--max-series", "1000000")
    yield exporter, tmp
    assert not select(exporter.samples(), "ecc_exporter_series_dropped_total")
    assert exporter.stop() == 0, exporter.err


def test_counter_accounts_for_every_open(setup: tuple[Exporter, Path]) -> None:
    """The issue's config as it is: one series per (pid, comm, filename), each counted once."""
    exporter, tmp = setup
    assert exporter.err[-1].startswith(READY + exporter.url + "/metrics; 3 programs running "
                                       "(opensnoop, bootstrap, execlat)")
    marker = tmp / "marker.txt"
    marker.write_text("x")
    cat = probe(tmp, "/bin/cat", "c")
    pids = spawn([str(cat), str(marker)], 7)
    samples = exporter.wait_for(lambda s: len(select(
        s, "eunomia_file_open_counter_total", comm=cat.name, filename=str(marker))) >= 7)
    found = select(samples, "eunomia_file_open_counter_total", comm=cat.name,
                   filename=str(marker))
    assert sorted(int(dict(lbls)["pid"]) for lbls in found) == sorted(pids)
    assert set(found.values()) == {1.0}


def test_counter_counts_execs_and_exits_by_label(setup: tuple[Exporter, Path]) -> None:
    exporter, tmp = setup
    true = probe(tmp, "/bin/true", "t")
    spawn([str(true)], 25)
    name = "ecc_test_process_events_total"
    samples = exporter.wait_for(lambda s: select(s, name, comm=true.name, exit="true")
                                .get(frozenset({("comm", true.name), ("exit", "true")})) == 25)
    assert samples[(name, frozenset({("comm", true.name), ("exit", "false")}))] == 25
    assert samples[(name, frozenset({("comm", true.name), ("exit", "true")}))] == 25
    assert samples[("ecc_exporter_events_lost_total",
                    frozenset({("program", "bootstrap"), ("reason", "queue_full")}))] == 0


def test_histogram_count_equals_execs(setup: tuple[Exporter, Path]) -> None:
    """execlat: one observation per successful exec, so _count is the number of execs."""
    exporter, tmp = setup
    true = probe(tmp, "/bin/true", "h")
    spawn([str(true)], 12)
    h = "ecc_test_exec_duration_usecs"
    key = frozenset({("comm", true.name)})
    samples = exporter.wait_for(lambda s: s.get((h + "_count", key)) == 12)
    assert samples[(h + "_count", key)] == 12
    buckets = sorted(((float(dict(lbls)["le"]), v)
                      for lbls, v in select(samples, h + "_bucket", comm=true.name).items()))
    assert [le for le, _ in buckets][:4] == [1.0, 3.0, 7.0, 15.0]  # log2 slots: le = 2^(i+1)-1
    assert buckets[-1] == (float("inf"), 12)
    assert len(buckets) == 27  # 26 finite bounds; the last (clamping) slot is +Inf only
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)  # cumulative
    assert samples[(h + "_sum", key)] > 0  # the map's exact `sum` member, in usecs
    assert samples[("ecc_test_execs", key)] == 12  # the gauge of the `execs` map


def test_prometheus_scrapes_the_exporter(setup: tuple[Exporter, Path],
                                         tmp_path: Path) -> None:
    """Debian's prometheus scrapes the exporter; its HTTP API shows our series."""
    exporter, _ = setup
    require("prometheus")
    prometheus = shutil.which("prometheus")
    assert prometheus is not None
    true = probe(tmp_path, "/bin/true", "p")
    spawn([str(true)], 3)
    port = free_port()
    target = exporter.url.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n- job_name: ecc\n  static_configs:\n"
        f"  - targets: ['{target}']\n")
    server = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        query = f'ecc_test_process_events_total{{comm="{true.name}"}}'
        deadline = time.monotonic() + 60
        result: list[Any] = []
        while time.monotonic() < deadline and len(result) < 2:
            time.sleep(0.5)
            try:
                status, text = request(
                    f"{base}/api/v1/query?query={urllib.request.quote(query)}", "GET", None)
            except OSError:
                continue  # not listening yet
            if status == 200:
                result = json.loads(text)["data"]["result"]
        assert sorted((r["metric"]["exit"], r["value"][1]) for r in result) == [
            ("false", "3"), ("true", "3")]
        status, text = request(f"{base}/api/v1/query?query=up", "GET", None)
        assert [r["value"][1] for r in json.loads(text)["data"]["result"]] == ["1"]
        status, text = request(f"{base}/api/v1/series?match[]="
                               + urllib.request.quote('{__name__=~"ecc_test_.*"}'), "GET", None)
        names = {s["__name__"] for s in json.loads(text)["data"]}
        assert {"ecc_test_process_events_total", "ecc_test_exec_duration_usecs_bucket",
                "ecc_test_exec_duration_usecs_count", "ecc_test_execs"} <= names
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    check = subprocess.run(["promtool", "check", "metrics"], input=exporter.metrics(),
                           capture_output=True, text=True, check=False)
    # promtool parses it all; its one lint is about the name the issue's config chose.
    assert (check.returncode, check.stdout + check.stderr) == (
        3, "eunomia_file_open_counter_total metric name should not include type 'counter'\n")


# --- the series limit, the control API ---------------------------------------------------------


def test_control_api(built: dict[str, Built], kernel: None, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    exporter = Exporter("--api", "--api-token-file", str(token_file))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        api = exporter.url

        def call(method: str, path: str, body: Any = None,
                 headers: dict[str, str] | None = None) -> tuple[int, Any]:
            data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
            status, text = request(api + path, method, data,
                                   auth if headers is None else headers)
            return status, json.loads(text)

        config = {"name": "bootstrap",
                  "metrics": {"counters": [{"name": "ecc_api_execs", "labels": ["comm"]}]},
                  "ebpf_data": package(built, "bootstrap").read_text()}
        # 401 without the token, with a wrong one: nothing starts.
        assert call("POST", "/start", config, headers={}) == (
            401, {"error": "missing Authorization: Bearer token"})
        assert call("GET", "/list", headers={"Authorization": "Bearer nope"}) == (
            401, {"error": "wrong bearer token"})
        # 400 with the reason for malformed configs; nothing of them is loaded.
        assert call("POST", "/start", b"{programs") == (400, {
            "error": "the body is not JSON: Expecting property name enclosed in double "
                     "quotes (line 1 column 2)"})
        bad_label = {**config, "metrics": {"counters": [
            {"name": "x", "labels": [{"name": "file", "from": "fname"}]}]}}
        assert call("POST", "/start", bad_label) == (400, {
            "error": "program config (bootstrap): metrics.counters[0]: label 'file': the "
                     "events of map 'rb' have no field 'fname' (fields: pid, ppid, exit_code, "
                     "duration_ns, comm, filename, exit_event)"})
        assert call("POST", "/start", {**config, "ebpf_data": "{}"}) == (400, {
            "error": "program config (bootstrap): ebpf_data: package has no 'bpf_object' "
                     "field"})
        assert call("GET", "/list") == (200, [])
        # A good config starts; its metric counts; it stops and its series go.
        status, started = call("POST", "/start", config)
        assert status == 200, started
        assert started["name"] == "bootstrap"
        assert started["attached"] == ["handle_exec", "handle_exit"]
        status, listed = call("GET", "/list")
        assert [(p["id"], p["name"], p["metrics"]) for p in listed] == [
            (started["id"], "bootstrap", ["ecc_api_execs"])]
        true = probe(tmp_path, "/bin/true", "a")
        spawn([str(true)], 4)
        key = ("ecc_api_execs_total", frozenset({("comm", true.name)}))
        assert exporter.wait_for(lambda s: s.get(key) == 8).get(key) == 8  # exec + exit
        check = subprocess.run(["promtool", "check", "metrics"], input=exporter.metrics(),
                               capture_output=True, text=True, check=False)
        assert (check.returncode, check.stdout + check.stderr) == (0, "")
        assert call("POST", f"/stop/{started['id']}") == (
            200, {"stopped": started["id"], "name": "bootstrap"})
        assert call("POST", f"/stop/{started['id']}") == (
            404, {"error": f"no program with id {started['id']} (GET /list)"})
        assert call("GET", "/list") == (200, [])
        samples = exporter.samples()
        assert not select(samples, "ecc_api_execs_total")
        assert samples[("ecc_exporter_programs", frozenset())] == 0
    finally:
        assert exporter.stop() == 0


def test_api_is_off_without_the_flag(built: dict[str, Built], kernel: None,
                                     tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"programs:\n- name: execlat\n  compiled_ebpf_filename: "
                      f"{package(built, 'execlat')}\n")
    exporter = Exporter(str(config))
    try:
        status, text = exporter.get("/list", {"Authorization": f"Bearer {TOKEN}"})
        assert (status, json.loads(text)) == (404, {
            "error": "no such path /list; metrics are at /metrics (the control API is off; "
                     "see --api)"})
    finally:
        assert exporter.stop() == 0


# --- configuration errors: one line each, before anything loads --------------------------------


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(["exporter", *args])
    return int(exc.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(("config", "message"), [
    ("programs: {}\n", "{path}: 'programs' must be a list of programs"),
    ("programs:\n- name: x\n  colour: red\n",
     "{path}: programs[0] (x): unknown key 'colour' (known: name, metrics, "
     "compiled_ebpf_filename, ebpf_data, options, logs)"),
    ("programs:\n- name: x\n",
     "{path}: programs[0] (x): no package: give 'compiled_ebpf_filename' (a package.json) or "
     "'ebpf_data' (the package itself)"),
    ("programs:\n- name: x\n  compiled_ebpf_filename: nothing.json\n",
     "{path}: programs[0] (x): compiled_ebpf_filename: {dir}/nothing.json: no such file"),
    ("programs:\n- name: x\n  compiled_ebpf_filename: {opensnoop}\n  metrics:\n"
     "    counters:\n    - name: 9lives\n",
     "{path}: programs[0] (x): metrics.counters[0]: 'name' must be a Prometheus metric name "
     "([a-zA-Z_:][a-zA-Z0-9_:]*), got '9lives'"),
    ("programs:\n- name: x\n  compiled_ebpf_filename: {opensnoop}\n  metrics:\n"
     "    histograms:\n    - name: h\n      map: start\n",
     "{path}: programs[0] (x): metrics.histograms[0]: map 'start' is no histogram: its @sample "
     "type is None; set 'type' to log2_hist or linear_hist"),
    ("programs:\n- name: x\n  compiled_ebpf_filename: {opensnoop}\n  metrics:\n"
     "    gauges:\n    - name: g\n      map: events\n",
     "{path}: programs[0] (x): metrics.gauges[0]: map 'events' is of type 27; only hash and "
     "array maps (types [1, 2, 5, 6, 9, 10]) can be read"),
    ("programs:\n- name: x\n  compiled_ebpf_filename: {opensnoop}\n  options:\n    pid: abc\n",
     "{path}: programs[0] (x): options: option --pid: 'abc' is not a valid pid_t: expected an "
     "integer like 42 or 0x2a"),
    ("programs:\n- name: x\n  compiled_ebpf_filename: {opensnoop}\n"
     "- name: x\n  compiled_ebpf_filename: {opensnoop}\n",
     "{path}: a program named 'x' is already configured; give each program its own name"),
    ("programs:\n- name: x\n  compiled_ebpf_filename: {opensnoop}\n  metrics:\n"
     "    counters:\n    - name: process_opens\n",
     "{path} (x): metric 'process_opens': names starting with ecc_exporter_ or process_ are "
     "the exporter's own; rename it"),
])
def test_config_errors(config: str, message: str, built: dict[str, Built], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(config.replace("{opensnoop}",
                                   str(package(built, "opensnoop"))))
    expected = message.replace("{path}", str(path)).replace("{dir}", str(tmp_path))
    assert run_main(capsys, str(path), "--listen", "127.0.0.1:0") == (
        1, f"ecc: error: {expected}\n")


def test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run_main(capsys)
    assert code == 2 and err.endswith(
        "Error: give a CONFIG file, or --api to start programs through the control API\n")
    code, err = run_main(capsys, "--api")
    assert (code, err) == (1, "ecc: error: --api needs --api-token-file FILE, a file holding "
                              "the bearer token that API requests must send\n")
    code, err = run_main(capsys, "--api", "--listen", "localhost")
    assert code == 2 and "'localhost' is not HOST:PORT (for example 127.0.0.1:8526)" in err
    (tmp_path / "empty").write_text("\n")
    code, err = run_main(capsys, "--api", "--api-token-file", str(tmp_path / "empty"))
    assert (code, err) == (1, f"ecc: error: --api-token-file {tmp_path / 'empty'}: must hold "
                              f"one token: one line, no spaces\n")


def test_full_queue_counts_lost_events(built: dict[str, Built], tmp_path: Path) -> None:
    """The poll thread never waits: past the queue's size an event is counted as lost."""
    from ecc.exporter.config import parse_program
    from ecc.exporter.metrics import SeriesBudget
    from ecc.exporter.programs import RunningProgram
    from ecc.run.decode import Decoder

    spec = parse_program(
        {"name": "bootstrap", "metrics": {"counters": [{"name": "c", "labels": ["comm"]}]},
         "compiled_ebpf_filename": str(package(built, "bootstrap"))},
        "test", str(tmp_path))
    program = RunningProgram(1, spec, SeriesBudget(10), queue_size=2, say=print)
    size = Decoder(spec.package.btf, spec.event_types["rb"]).size
    for _ in range(5):
        program._enqueue("rb", bytes(size))  # what libbpf's callback calls
    assert program.stats().lost == {"queue_full": 3, "perf_buffer": 0, "undecodable": 0}
    assert program.stats().queued == 2
    while not program.events.empty():
        item = program.events.get_nowait()
        assert item is not None
        program.counters.handle(*item)
    program.counters.handle("rb", b"abc")  # shorter than pid: undecodable
    stats = program.stats()
    assert (stats.handled, stats.lost["undecodable"]) == (2, 1)
    assert [(f.name, [(s.labels, s.value) for s in f.samples])
            for f in program.counters.families()] == [("c", [({"comm": ""}, 2)])]


def test_example_config_is_valid(built: dict[str, Built], tmp_path: Path) -> None:
    """examples/execlat/execlat.yaml, beside the package it names, checks clean."""
    from ecc.exporter.config import load_config

    shutil.copy(ROOT / "examples" / "execlat" / "execlat.yaml", tmp_path / "execlat.yaml")
    shutil.copy(package(built, "execlat"), tmp_path / "package.json")
    (spec,) = load_config(str(tmp_path / "execlat.yaml"))
    assert [(h.name, h.map, h.kind, h.slots, h.sum_field, [lbl.name for lbl in h.labels])
            for h in spec.histograms] == [
        ("execlat_exec_duration_usecs", "hists", "log2_hist", 27, "sum", ["comm"])]
    assert [(g.name, g.map, g.value_field) for g in spec.gauges] == [
        ("execlat_execs", "execs", None)]
