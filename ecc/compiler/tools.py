"""Finding and running the external toolchain: the project's only subprocess user."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

from .. import log
from ..errors import CompileError, ToolNotFoundError

# Newest first: a versioned binary is preferred over an unversioned one, whose
# version we do not know (Debian's /usr/bin/llvm-strip may be an older LLVM).
LLVM_VERSIONS = tuple(range(21, 13, -1))

DEBIAN_PACKAGE = {
    "clang": "clang-19",
    "llvm-strip": "llvm-19",
    "bpftool": "bpftool (from bookworm-backports)",
}


# A NamedTuple, not a dataclass: made before clang starts (see ecc/compiler/__init__.py).
class Result(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float


def find_tool(name: str, explicit: str | None = None) -> str:
    """Absolute path of ``name``: the explicit one, else ``name-N`` newest first, else ``name``."""
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise ToolNotFoundError(f"{name} not found at '{explicit}'; check the path given")
        return found
    candidates = [f"{name}-{v}" for v in LLVM_VERSIONS] if name != "bpftool" else []
    candidates.append(name)
    if name == "bpftool":
        candidates.append("/usr/sbin/bpftool")
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    package = DEBIAN_PACKAGE.get(name, name)
    raise ToolNotFoundError(
        f"{name} not found on PATH; install it (Debian: apt-get install {package}) "
        f"or name it with the option for it"
    )


# For clang, glibc's allocator backs the heap with transparent huge pages and
# grows it 32 MiB at a time. clang takes ~140 MB in small steps, and faulting
# those pages in was a tenth of a build: with these, a warm build's clang is
# ~9% faster, a cold one's ~10% (measured with perf and an A/B of the same
# command). The object is byte-identical. Where THP is off or glibc is older
# than 2.35 the settings are ignored; the user's own GLIBC_TUNABLES come after
# ours, so theirs win.
CLANG_TUNABLES = "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=33554432"


def clang_env() -> dict[str, str]:
    """The variables to add to the environment of a clang run."""
    own = os.environ.get("GLIBC_TUNABLES")
    return {"GLIBC_TUNABLES": f"{CLANG_TUNABLES}:{own}" if own else CLANG_TUNABLES}


# Commands run inside ``recording()``, for the build report (report.py). A context
# variable, so that builds in parallel threads (-j) each keep their own list.
_RECORD: ContextVar[list[dict[str, Any]] | None] = ContextVar("ecc_commands", default=None)


@contextlib.contextmanager
def recording() -> Iterator[list[dict[str, Any]]]:
    """Collect every tool run in this context: argv, exit status, seconds."""
    commands: list[dict[str, Any]] = []
    token = _RECORD.set(commands)
    try:
        yield commands
    finally:
        _RECORD.reset(token)


class Running:
    """A tool started in the background, so Python work can overlap with it."""

    def __init__(self, argv: Sequence[str], *, what: str, input_bytes: bytes | None,
                 cwd: str | None, check: bool, env: Mapping[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.what = what
        self.check = check
        self.env = dict(env or {})
        self.cwd = cwd
        self._input = input_bytes
        self._record = _RECORD.get()
        log.info("+ %s", log.Command(self.argv, self.env))
        self._start = time.perf_counter()
        try:
            self._proc = subprocess.Popen(
                self.argv, cwd=cwd, env={**os.environ, **self.env} if self.env else None,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
            )
        except OSError as exc:
            raise ToolNotFoundError(
                f"{what}: cannot execute '{argv[0]}': {exc.strerror}") from exc

    def wait(self) -> Result:
        stdout, stderr = self._proc.communicate(self._input)
        seconds = time.perf_counter() - self._start
        log.info("  (%s took %.3f s)", os.path.basename(self.argv[0]), seconds)
        result = Result(self._proc.returncode, stdout, stderr, seconds)
        if self._record is not None:
            self._record.append({"what": self.what, "argv": self.argv, "env": self.env,
                                 "cwd": self.cwd, "exit": result.returncode,
                                 "seconds": round(seconds, 4)})
        if self.check and result.returncode != 0:
            detail = stderr.decode(errors="replace").strip() or stdout.decode(
                errors="replace").strip()
            raise CompileError(f"{self.what} failed (exit {result.returncode})",
                               details=detail or None)
        return result

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()


def start(argv: Sequence[str], *, what: str, input_bytes: bytes | None = None,
          cwd: str | None = None, check: bool = True,
          env: Mapping[str, str] | None = None) -> Running:
    """Start a tool; ``env`` holds variables to add to ours."""
    return Running(argv, what=what, input_bytes=input_bytes, cwd=cwd, check=check, env=env)


def detach(argv: Sequence[str], *, what: str, cwd: str, pass_fds: Sequence[int] = ()) -> None:
    """Start a process that outlives ecc, in its own session, with no pipes to us.

    Through a shell that starts it in the background and exits at once: the
    process is then init's child, not ours, so it never lingers as our zombie
    (nor does Python warn that a child it forgot still runs).
    """
    shell = subprocess.Popen(["/bin/sh", "-c", '"$@" &', "sh", *argv], cwd=cwd,
                             pass_fds=tuple(pass_fds), start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    shell.wait()
    log.info("%s: in the background", what)


def run(argv: Sequence[str], *, what: str, input_bytes: bytes | None = None,
        cwd: str | None = None, check: bool = True,
        env: Mapping[str, str] | None = None) -> Result:
    """Run a tool, log it under -v with its time, and raise CompileError when it fails."""
    return start(argv, what=what, input_bytes=input_bytes, cwd=cwd, check=check,
                 env=env).wait()
