"""The programs an exporter runs: each loaded by ``ecc run``'s Runner, fed by two threads.

Events reach user space through ring buffers and perf event arrays. The
kernel side never waits for us: a full ring buffer makes
``bpf_ringbuf_reserve`` fail in the BPF program (the event is gone, and only
the program itself could count it), a full perf buffer drops the record and
tells libbpf, which reports it here as ``perf_buffer`` losses. So the first
job is to drain the buffers promptly, and the second, counting, may lag:

- a **poll thread** per program waits on its buffers (``Runner.poll_buffers``)
  and only copies each record into a bounded queue; when the queue is full
  the record is dropped and counted as lost (``queue_full``), so a burst
  costs events we can count rather than a ring buffer overrun we cannot see;
- a **worker thread** per program takes records from the queue, decodes
  them with the package's export type and updates the counters; for a program
  with ``logs: true`` it then hands the record to the OTLP pusher, which only
  appends it to a bounded buffer (ecc.exporter.otlp).

Maps (histograms, gauges) are read at scrape time, under the program's lock,
which stopping the program also takes before it frees the libbpf object.
"""

from __future__ import annotations

import functools
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import EccError
from .config import ConfigError, ProgramSpec, check_together
from .metrics import (
    DEFAULT_SERIES_TTL,
    Allowance,
    EventCounters,
    MapReadStats,
    ProgramStats,
    SeriesBudget,
    map_families,
    own_families,
)

if TYPE_CHECKING:
    from ..run.loader import Runner

POLL_MS = 100
# Takes each event after it is counted (OTLP logs): must neither block nor raise.
LogSink = Callable[[ProgramSpec, str, bytes], None]
DEFAULT_QUEUE_EVENTS = 65536


class RunningProgram:
    """One program of the exporter: loaded, attached, and counting."""

    def __init__(self, program_id: int, spec: ProgramSpec, budget: SeriesBudget,
                 queue_size: int, say: Callable[[str], None],
                 log_sink: LogSink | None = None) -> None:
        self.id = program_id
        self.spec = spec
        self.say = say
        self.log_sink = log_sink
        self.counters = EventCounters(spec, budget)
        self.events: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=queue_size)
        self.lost = {"queue_full": 0, "perf_buffer": 0}
        self.map_stats = MapReadStats()
        self.lock = threading.Lock()  # held while the libbpf object is read or freed
        self.runner: Runner | None = None
        self.started = time.time()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- the two threads -----------------------------------------------------------------

    def _enqueue(self, map_name: str, data: bytes) -> None:
        # Runs inside libbpf's callback on the poll thread: never block, never raise.
        try:
            self.events.put_nowait((map_name, data))
        except queue.Full:
            self.lost["queue_full"] += 1

    def _sink(self, map_name: str) -> Callable[[bytes], None]:
        return functools.partial(self._enqueue, map_name)

    def _kernel_lost(self, _map_name: str, _cpu: int, count: int) -> None:
        self.lost["perf_buffer"] += count

    def _poll(self) -> None:
        runner = self.runner
        assert runner is not None  # set before the thread starts
        while not self._stopping.is_set():
            try:
                runner.poll_buffers(POLL_MS)
            except EccError as exc:
                self.say(f"ecc: warning: program {self.spec.name}: event polling stopped: {exc}")
                return

    def _work(self) -> None:
        get, handle, sink, spec = self.events.get, self.counters.handle, self.log_sink, self.spec
        while True:
            item = get()
            if item is None:
                return
            handle(item[0], item[1])
            if sink is not None:
                sink(spec, item[0], item[1])

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Load and attach; on any failure nothing of the program stays loaded."""
        from ..run.loader import Runner, RunOptions

        opts = RunOptions(section_values=dict(self.spec.section_values),
                          event_sink=self._sink, lost_sink=self._kernel_lost)
        runner = Runner(self.spec.package, opts, sys.stdout, self.say)
        runner.start(f"program {self.spec.name}: no BPF program could be attached; "
                     f"nothing to run")
        self.runner = runner
        if self.spec.event_types:
            for target, what in ((self._poll, "poll"), (self._work, "count")):
                t = threading.Thread(target=target, name=f"ecc-{what}-{self.spec.name}",
                                     daemon=True)
                t.start()
                self._threads.append(t)

    def stop(self) -> None:
        """Detach and free everything; events already queued are counted first."""
        self._stopping.set()
        if self._threads:
            self._threads[0].join()
            self.events.put(None)
            self._threads[1].join()
        with self.lock:
            if self.runner is not None:
                self.runner.close()
                self.runner = None
        for line in self.counters.tally.summary():
            self.say(f"ecc: warning: program {self.spec.name}: {line}")
        self.counters.release()

    # -- what it shows -------------------------------------------------------------------------

    def families(self, allowance: Allowance) -> list[Any]:
        out = self.counters.families()
        if self.spec.histograms or self.spec.gauges:
            with self.lock:
                if self.runner is not None and self.runner.obj is not None:
                    out += map_families(self.spec, self.runner.obj, allowance, self.map_stats)
        return out

    def stats(self) -> ProgramStats:
        return ProgramStats(
            name=self.spec.name,
            handled=self.counters.handled,
            lost={**self.lost, "undecodable": self.counters.undecodable},
            queued=self.events.qsize(),
            dropped={**self.counters.dropped, **self.map_stats.dropped},
            map_errors=dict(self.map_stats.errors),
        )

    def describe(self) -> dict[str, Any]:
        runner = self.runner
        return {
            "id": self.id,
            "name": self.spec.name,
            "attached": [a.name for a in runner.attached] if runner is not None else [],
            "skipped": list(runner.skipped) if runner is not None else [],
            "metrics": [c.name for c in self.spec.counters]
            + [h.name for h in self.spec.histograms] + [g.name for g in self.spec.gauges],
            "events": self.counters.handled,
            "lost": {**self.lost, "undecodable": self.counters.undecodable},
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
        }


class Exporter:
    """The running programs, by id; also the prometheus_client collector of all of them."""

    def __init__(self, max_series: int, queue_size: int = DEFAULT_QUEUE_EVENTS,
                 say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
                 series_ttl: float | None = DEFAULT_SERIES_TTL) -> None:
        self.budget = SeriesBudget(max_series, series_ttl)
        self.queue_size = queue_size
        self.say = say
        self.programs: dict[int, RunningProgram] = {}
        self.log_sink: LogSink | None = None  # where programs with `logs: true` send events
        self._starting: dict[int, ProgramSpec] = {}
        self._next_id = 1
        self._lock = threading.Lock()

    def start(self, spec: ProgramSpec, where: str = "program config") -> RunningProgram:
        """Check the new program against the running ones, then load it.

        :class:`ConfigError` for a name clash; any other :class:`EccError` when
        the kernel refuses it. Either way nothing of it stays loaded.
        """
        if spec.logs and self.log_sink is None:
            raise ConfigError(f"{where} ({spec.name}): 'logs: true' needs OTLP export: an otlp "
                              f"block in the configuration or --otlp-endpoint")
        with self._lock:
            others = [p.spec for p in self.programs.values()] + list(self._starting.values())
            check_together([spec], others, where)
            program_id = self._next_id
            self._next_id += 1
            self._starting[program_id] = spec
        program = RunningProgram(program_id, spec, self.budget, self.queue_size, self.say,
                                 self.log_sink if spec.logs else None)
        try:
            program.start()
        finally:
            with self._lock:
                del self._starting[program_id]
        with self._lock:
            self.programs[program_id] = program
        return program

    def start_all(self, specs: Sequence[ProgramSpec], where: str) -> None:
        """Start the programs of a configuration: all of them, or (on an error) none."""
        started: list[int] = []
        try:
            for spec in specs:
                started.append(self.start(spec, where).id)
        except BaseException:
            for program_id in started:
                self.stop(program_id)
            raise

    def stop(self, program_id: int) -> RunningProgram | None:
        with self._lock:
            program = self.programs.pop(program_id, None)
        if program is not None:
            program.stop()
        return program

    def stop_all(self) -> None:
        for program_id in sorted(self.programs):
            self.stop(program_id)

    def running(self) -> list[RunningProgram]:
        with self._lock:
            return [self.programs[k] for k in sorted(self.programs)]

    def collect(self) -> list[Any]:
        """prometheus_client's Collector protocol: every family, read now."""
        programs = self.running()
        # Map series are as fresh as this scrape: they come first (see metrics.py).
        allowance = Allowance(self.budget.limit)
        families: list[Any] = []
        for program in programs:
            families += program.families(allowance)
        self.budget.reserve_for_maps(allowance.shown)
        families += own_families([p.stats() for p in programs], self.budget, len(programs))
        return families


__all__ = ["ConfigError", "Exporter", "RunningProgram"]
