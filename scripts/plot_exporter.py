#!/usr/bin/env python3
"""Render what `ecc exporter` shows into docs/exporter-metrics.png (root; matplotlib).

Builds the bootstrap and execlat examples, serves them with `ecc exporter`,
runs a small scripted load (ls, date and cat at rates that change over time,
each paced by sleep), scrapes /metrics twice a second as Prometheus would, and
draws: the exec rate per command (a counter from bootstrap's events), the
execve() duration histogram per command (execlat's log2 map as Prometheus
buckets), and the execs per command (execlat's key/value map as a gauge).

    sudo python3 scripts/plot_exporter.py [-o docs/exporter-metrics.png]

Needs `pip install matplotlib` (the `plot` extra of pyproject.toml).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMS = ("ls", "date", "cat")
CONFIG = """\
programs:
- name: bootstrap
  metrics:
    counters:
    - name: bootstrap_events
      description: exec and exit events by command
      labels:
      - name: comm
      - name: exit
        from: exit_event
  compiled_ebpf_filename: bootstrap/package.json
- name: execlat
  metrics:
    histograms:
    - name: exec_duration_usecs
      description: execve() durations in microseconds
      map: hists
      labels: [comm]
    gauges:
    - name: execs
      description: successful execve() calls by command
      map: execs
  compiled_ebpf_filename: execlat/package.json
"""
# Shell loops: (command, seconds between runs, from, to) in seconds of the run.
LOAD = [("ls /", 0.05, 0, 16), ("date", 0.02, 4, 10), ("cat /etc/hostname", 0.1, 2, 16),
        ("cat /etc/hostname", 0.02, 10, 14)]
SECONDS = 18


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text)
            for s in f.samples]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "exporter-metrics.png"))
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if os.geteuid() != 0:
        raise SystemExit("needs root: loading BPF")
    work = Path(tempfile.mkdtemp(prefix="ecc-plot-"))
    env = dict(os.environ, ECC_CACHE_DIR=str(work / "cache"))
    for name, header in (("bootstrap", "bootstrap.h"), ("execlat", None)):
        src = ROOT / "examples" / name
        cmd = [sys.executable, "-m", "ecc", "build", str(src / f"{name}.bpf.c")]
        cmd += [str(src / header)] if header else []
        subprocess.run([*cmd, "-o", str(work / name)], check=True, env=env)
    (work / "config.yaml").write_text(CONFIG)
    exporter = subprocess.Popen([sys.executable, "-m", "ecc", "exporter",
                                 str(work / "config.yaml"), "--listen", "127.0.0.1:0"],
                                stderr=subprocess.PIPE, text=True)
    assert exporter.stderr is not None
    line = exporter.stderr.readline()
    if "listening on" not in line:
        raise SystemExit(line)
    url = line.split(" on ", 1)[1].split(";")[0]
    loops = []
    try:
        for command, pause, begin, end in LOAD:
            runs = int((end - begin) / pause)  # a count, not a clock: `date` is measured
            script = (f"sleep {begin}; i=0; while [ $i -lt {runs} ]; do {command} >/dev/null; "
                      f"sleep {pause}; i=$((i+1)); done")
            loops.append(subprocess.Popen(["/bin/sh", "-c", script]))
        start = time.monotonic()
        series: list[tuple[float, dict[str, float]]] = []
        last: list[tuple[str, dict[str, str], float]] = []
        while time.monotonic() - start < SECONDS:
            last = scrape(url)
            execs = {comm: 0.0 for comm in COMMS}
            for name, labels, value in last:
                if (name == "bootstrap_events_total" and labels.get("exit") == "false"
                        and labels.get("comm") in execs):
                    execs[labels["comm"]] = value
            series.append((time.monotonic() - start, execs))
            time.sleep(0.5)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
        exporter.send_signal(signal.SIGTERM)
        exporter.wait(30)

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.8),
                                        gridspec_kw={"width_ratios": [1.3, 1.3, 0.7]})
    fig.suptitle("ecc exporter: metrics of the bootstrap and execlat examples, as scraped "
                 "from /metrics", fontsize=13)
    for comm in COMMS:
        xs, ys = [], []
        for (t0, a), (t1, b) in zip(series, series[1:], strict=False):
            xs.append(t1)
            ys.append((b[comm] - a[comm]) / (t1 - t0))
        ax1.plot(xs, ys, label=comm, linewidth=1.8)
    ax1.set_title("rate(bootstrap_events_total{exit=\"false\"})\n"
                  "counter from ring buffer events", fontsize=10)
    ax1.set_xlabel("seconds")
    ax1.set_ylabel("execs per second")
    ax1.legend()
    ax1.grid(alpha=0.3)

    buckets: dict[str, list[tuple[float, float]]] = {c: [] for c in COMMS}
    for name, labels, value in last:
        if name == "exec_duration_usecs_bucket" and labels.get("comm") in buckets:
            buckets[labels["comm"]].append((float(labels["le"]), value))
    shown = range(5, 12)  # slots 32-63 us to 2048-4095 us
    width = 0.8 / len(COMMS)
    for k, comm in enumerate(COMMS):
        cumulative = [v for _, v in sorted(buckets[comm])]
        per_slot = [b - a for a, b in zip([0.0, *cumulative], cumulative, strict=False)]
        ax2.bar([i + (k - 1) * width for i in shown],
                [per_slot[i] if i < len(per_slot) else 0 for i in shown], width, label=comm)
    ax2.set_xticks(list(shown), [f"{1 << i}-{(1 << (i + 1)) - 1}" for i in shown],
                   rotation=30, fontsize=8)
    ax2.set_title("exec_duration_usecs_bucket (per bucket)\n"
                  "log2 histogram map, le = 2^(i+1)-1", fontsize=10)
    ax2.set_xlabel("execve() duration, microseconds")
    ax2.set_ylabel("execs")
    ax2.legend()
    ax2.grid(alpha=0.3, axis="y")

    gauges = {labels["comm"]: value for name, labels, value in last
              if name == "execs" and labels.get("comm") in COMMS}
    ax3.barh(list(reversed(COMMS)), [gauges.get(c, 0) for c in reversed(COMMS)],
             color=["C2", "C1", "C0"])
    ax3.set_title("execs{comm=...}\ngauge from a key/value map", fontsize=10)
    ax3.set_xlabel("successful execve() calls")
    ax3.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=90)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
