#!/usr/bin/env python3
"""`ecc exporter` under a high event rate, beside `ecc run --json` on the same load (root).

The load: many short-lived processes (a copy of /bin/true under a name of its
own, started by several shell loops at once); the bootstrap example sends two
events for each (exec and exit). For each row, the loader starts, the load
runs, and once the counts settle the row shows:

- events: what the probe processes must have sent (2 per process), and how
  many were counted (the exporter's counter for the probe's comm; for
  `ecc run`, the JSON lines printed);
- lost: the exporter's own count of events it dropped because they arrived
  faster than it counted them (`ecc_exporter_events_lost_total{reason=
  "queue_full"}`), and the events missing beyond that, which the kernel
  dropped when the ring buffer was full (invisible to user space);
- events/s counted, over the time from the first process to the last count;
- the loader's CPU (user + system, from /proc) per event and as a share of
  one core, and its peak resident memory.

Then ever-new labels (issue 29): the exporter counts the same events by pid,
so every process makes a series that never comes back, under a small
``--max-series`` and ``--series-ttl``. The load runs for ``--churn-seconds``;
every ``--every`` seconds a row shows the series held and those made, expired
and evicted so far, and the exporter's resident memory: both stay flat once
the limit is reached.

    sudo python3 benchmarks/exporter.py [--procs N] [--spawners K] [--only rate|churn]
                                        [--churn-seconds S] [--every S]
                                        [--churn-max-series N] [--churn-ttl S]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
PROBE = f"eccb{os.getpid() % 100000}"


@dataclass
class Row:
    name: str
    expected: int
    counted: int
    lost_queue: int
    seconds: float
    cpu: float
    rss_mb: float

    def line(self) -> str:
        missing = max(0, self.expected - self.counted - max(self.lost_queue, 0))
        rate = self.counted / self.seconds if self.seconds else 0.0
        per = self.cpu / self.counted * 1e6 if self.counted else 0.0
        share = self.cpu / self.seconds * 100 if self.seconds else 0.0
        lost = f"{self.lost_queue:>8}" if self.lost_queue >= 0 else f"{'-':>8}"
        return (f"{self.name:<34}{self.expected:>9}{self.counted:>9}{lost}{missing:>9}"
                f"{rate:>10.0f}{per:>9.1f}{share:>7.0f}%{self.rss_mb:>8.1f}")


HEADER = (f"{'loader':<34}{'events':>9}{'counted':>9}{'lost':>8}{'kernel':>9}"
          f"{'ev/s':>10}{'cpu us':>9}{'cpu':>8}{'rss MB':>8}")
SUBHEADER = (f"{'':<34}{'sent':>9}{'':>9}{'(queue)':>8}{'dropped':>9}"
             f"{'counted':>10}{'/event':>9}{'core':>8}{'peak':>8}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int) -> float:
    return rss_mb(pid, "VmHWM")


def load(probe: Path, procs: int, spawners: int) -> None:
    """procs runs of the probe, from `spawners` shell loops at once."""
    each = procs // spawners
    loop = f'i=0; while [ "$i" -lt {each} ]; do {probe}; i=$((i+1)); done'
    shells = [subprocess.Popen(["/bin/sh", "-c", loop]) for _ in range(spawners)]
    for s in shells:
        s.wait()


def start(argv: list[str], stdout: int | IO[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(("ecc: exporter listening on ", "ecc: running")):
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, line
        if line.startswith("ecc: error"):
            raise SystemExit(line.strip())
    raise SystemExit(f"{argv[3]} exited before it was ready")


def scrape(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=30) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {"counted": 0.0, "lost": 0.0}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "bench_events_total" and s.labels.get("comm") == PROBE:
                out["counted"] += s.value
            elif s.name == "ecc_exporter_events_lost_total" and s.labels["reason"] == "queue_full":
                out["lost"] += s.value
    return out


def settle(read: Callable[[], float], quiet: float = 1.0,
           timeout: float = 60) -> tuple[float, float]:
    """Poll read() until it stops changing for `quiet` seconds: (value, when it last grew)."""
    last, since, grew = read(), time.monotonic(), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = read()
        if now != last:
            last, since, grew = now, time.monotonic(), time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last, grew


def run_exporter(name: str, config: Path, extra: list[str], probe: Path, procs: int,
                 spawners: int) -> Row:
    proc, line = start([sys.executable, "-m", "ecc", "exporter", str(config), "--listen",
                        "127.0.0.1:0", *extra], subprocess.DEVNULL)
    url = line.split(" on ", 1)[1].split(";")[0]
    try:
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.monotonic()
        load(probe, procs, spawners)
        (counted, t_last) = settle(lambda: scrape(url)["counted"])
        stats = scrape(url)
        return Row(name, 2 * procs, int(counted), int(stats["lost"]), t_last - t0,
                   cpu_seconds(proc.pid) - cpu0, peak_rss_mb(proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def run_ecc_run(package: Path, out: Path, probe: Path, procs: int, spawners: int) -> Row:
    with open(out, "w") as fh:
        proc, _ = start([sys.executable, "-m", "ecc", "run", "--json", str(package)], fh)
        try:
            cpu0 = cpu_seconds(proc.pid)
            t0 = time.monotonic()
            load(probe, procs, spawners)

            def count() -> int:
                fh.flush()
                return sum(1 for line in out.read_text().splitlines()
                           if line.startswith("{") and json.loads(line).get("comm") == PROBE)

            counted, t_last = settle(count)
            return Row("ecc run --json > file (printing)", 2 * procs, int(counted), -1,
                       t_last - t0, cpu_seconds(proc.pid) - cpu0, peak_rss_mb(proc.pid))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def counting_rate(config: Path, events: int = 200_000) -> float:
    """Events/s the counting step alone handles (decode + labels + count), in-process."""
    from ecc.exporter.config import load_config
    from ecc.exporter.metrics import EventCounters, SeriesBudget
    from ecc.run.decode import Decoder

    spec = load_config(str(config))[0]
    counters = EventCounters(spec, SeriesBudget(10000))
    (map_name, type_id), = spec.event_types.items()
    size = Decoder(spec.package.btf, type_id).size
    records = [bytes([i % 7]) * size for i in range(64)]  # a few distinct comms
    start = time.perf_counter()
    for i in range(events):
        counters.handle(map_name, records[i & 63])
    return events / (time.perf_counter() - start)


def own_counts(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=30) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("ecc_exporter_series") and not s.labels:
                out[s.name.removeprefix("ecc_exporter_series").strip("_") or "held"] = s.value
            elif s.name == "ecc_exporter_events_total":
                out["events"] = out.get("events", 0.0) + s.value
    return out


def run_churn(config: Path, probe: Path, seconds: float, every: float, max_series: int,
              ttl: float, spawners: int) -> None:
    """Ever-new pids for `seconds`: series and memory every `every` seconds."""
    proc, line = start([sys.executable, "-m", "ecc", "exporter", str(config), "--listen",
                        "127.0.0.1:0", "--max-series", str(max_series), "--series-ttl",
                        str(ttl)], subprocess.DEVNULL)
    url = line.split(" on ", 1)[1].split(";")[0]
    loop = f"while :; do {probe}; done"
    shells = [subprocess.Popen(["/bin/sh", "-c", loop]) for _ in range(spawners)]
    print(f"\never-new labels: the bootstrap example counted by pid, {spawners} shell loops "
          f"starting processes for {seconds:.0f} s; --max-series {max_series} "
          f"--series-ttl {ttl:g}")
    print(f"{'s':>5}{'events':>10}{'held':>7}{'made':>9}{'expired':>9}{'evicted':>9}"
          f"{'rss MB':>8}")
    try:
        t0 = time.monotonic()
        tick = every
        while tick <= seconds:
            time.sleep(max(0.0, t0 + tick - time.monotonic()))
            c = own_counts(url)
            print(f"{tick:>5.0f}{c.get('events', 0):>10.0f}{c.get('held', 0):>7.0f}"
                  f"{c.get('created_total', 0):>9.0f}{c.get('expired_total', 0):>9.0f}"
                  f"{c.get('evicted_total', 0):>9.0f}{rss_mb(proc.pid):>8.1f}", flush=True)
            tick += every
    finally:
        for s in shells:
            s.kill()
            s.wait()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--procs", type=int, default=6000, help="processes to start per row")
    parser.add_argument("--spawners", type=int, default=4, help="shell loops at once")
    parser.add_argument("--only", choices=("rate", "churn"), help="run one part only")
    parser.add_argument("--churn-seconds", type=float, default=90,
                        help="how long the ever-new labels run")
    parser.add_argument("--every", type=float, default=10, help="seconds between rows")
    parser.add_argument("--churn-max-series", type=int, default=2000)
    parser.add_argument("--churn-ttl", type=float, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: loading BPF")
    work = Path(tempfile.mkdtemp(prefix="ecc-bench-exporter-"))
    env = dict(os.environ, ECC_CACHE_DIR=str(work / "cache"))
    try:
        src = ROOT / "examples" / "bootstrap"
        subprocess.run([sys.executable, "-m", "ecc", "build", str(src / "bootstrap.bpf.c"),
                        str(src / "bootstrap.h"), "-o", str(work)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        probe = work / PROBE
        shutil.copy("/bin/true", probe)
        config = work / "config.yaml"
        config.write_text(
            "programs:\n- name: bootstrap\n  metrics:\n    counters:\n"
            "    - name: bench_events\n      labels:\n      - name: comm\n"
            "      - name: exit\n        from: exit_event\n"
            "  compiled_ebpf_filename: package.json\n")
        if args.only != "rate":
            by_pid = work / "by_pid.yaml"
            by_pid.write_text(
                "programs:\n- name: bootstrap\n  metrics:\n    counters:\n"
                "    - name: bench_by_pid\n      labels: [pid, comm]\n"
                "  compiled_ebpf_filename: package.json\n")
            run_churn(by_pid, probe, args.churn_seconds, args.every, args.churn_max_series,
                      args.churn_ttl, args.spawners)
            if args.only == "churn":
                return 0
        procs = args.procs - args.procs % args.spawners
        rows = [
            run_exporter("ecc exporter", config, [], probe, procs, args.spawners),
            run_exporter("ecc exporter --queue-size 16", config, ["--queue-size", "16"],
                         probe, procs, args.spawners),
            run_ecc_run(work / "package.json", work / "run.jsonl", probe, procs,
                        args.spawners),
        ]
        print(f"load: {procs} short-lived processes from {args.spawners} shell loops, "
              f"2 events each (bootstrap example); {os.cpu_count()} cores")
        print(HEADER)
        print(SUBHEADER)
        for row in rows:
            print(row.line())
        print(f"counting alone (decode, labels, count; in-process, no kernel): "
              f"{counting_rate(config):.0f} events/s on one core")
        base = rows[2]
        if base.counted and rows[0].counted:
            print(f"exporter CPU per event / ecc run's: "
                  f"{(rows[0].cpu / rows[0].counted) / (base.cpu / base.counted):.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
