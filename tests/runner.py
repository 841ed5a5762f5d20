"""Driving `ecc run` as a user does: a real process, real events, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


class EccRun:
    """`python -m ecc run ARGS` in the background, its output collected by threads."""

    def __init__(self, *args: str, cwd: Path | None = None,
                 argv: list[str] | None = None) -> None:
        # argv: another command that behaves like `ecc run` (a standalone .out file)
        self.proc = subprocess.Popen(
            argv or [sys.executable, "-m", "ecc", "run", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=cwd)
        self.out: list[str] = []
        self.err: list[str] = []
        self._ready = threading.Event()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            if line.startswith("ecc: running ") or line.startswith("ecc: error"):
                self._ready.set()
        if into is self.err:
            self._ready.set()

    def wait_ready(self, timeout: float = 30) -> None:
        if not self._ready.wait(timeout):
            self.proc.kill()
            raise AssertionError(f"ecc run never got ready; stderr: {self.err}")
        if self.proc.poll() is not None and not any(
                e.startswith("ecc: running") for e in self.err):
            for t in self._threads:
                t.join(5)
            raise AssertionError(f"ecc run exited {self.proc.returncode}: {self.err}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return rc

    def wait(self, timeout: float = 60) -> int:
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return rc

    def json_rows(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out if line.startswith("{")]

    def wait_for(self, predicate: Any, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False


def exec_row(run: EccRun) -> dict[str, Any]:
    """With bootstrap-style `run` ready: exec /bin/true, stop, and return its decoded exec event."""
    pid = run_child(["/bin/true"])
    assert run.wait_for(lambda: any(r["pid"] == pid and not r["exit_event"]
                                    for r in run.json_rows()))
    assert run.stop() == 0
    return next(r for r in run.json_rows() if r["pid"] == pid and not r["exit_event"])


def run_child(argv: list[str]) -> int:
    """Run a command to completion; its pid."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.wait(30)
    return proc.pid


def mounted_bpffs_entries() -> list[str]:
    root = "/sys/fs/bpf"
    return sorted(os.listdir(root)) if os.path.isdir(root) else []
