"""Every error a user can fix, with the exit status the CLI gives it.

The CLI prints ``ecc: error: <message>`` and exits with ``exit_code``; a
traceback only with ``-v``. Anything that is not an ``EccError`` is a bug.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


class EccError(Exception):
    """A failure the user can act on; the message says what and how.

    ``details`` is extra text a tool printed (clang's diagnostics, a verifier
    log) that the CLI shows above the one-line message.
    """

    exit_code = 1

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details


def report_error(exc: EccError, args: Sequence[str]) -> None:
    """``ecc: error: ...`` (under the tool's own output), a traceback with -v; exit."""
    if any(a in ("-v", "--verbose") for a in args):
        import traceback

        traceback.print_exc()
    if exc.details:
        print(exc.details, file=sys.stderr)
    print(f"ecc: error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)


class ToolNotFoundError(EccError):
    """A required external program (clang, llvm-strip, bpftool) is missing."""


class CompileError(EccError):
    """clang or llvm-strip failed on the user's source."""


class BtfError(EccError):
    """Malformed or unexpected BTF; the message names the type id or offset."""


class ElfError(EccError):
    """Malformed BPF ELF object."""


class PackageError(EccError):
    """A package (package.json / .skel.json / tar) is malformed."""


class FetchError(EccError):
    """A package could not be fetched (URL, OCI registry) or did not verify (digest, size)."""


class AnnotationError(EccError):
    """A doc-comment annotation is invalid (bad cmdarg, clashing options)."""


class KernelLimitError(EccError):
    """The running kernel refuses something (load, attach) for a known reason.

    ``program`` names the BPF program concerned, when there is one, so that a
    loader can leave that program out and go on with the others.
    """

    def __init__(self, message: str, details: str | None = None,
                 program: str | None = None) -> None:
        super().__init__(message, details)
        self.program = program


class LibbpfError(EccError):
    """A libbpf call failed; carries the errno."""

    def __init__(self, message: str, errno: int = 0, details: str | None = None) -> None:
        super().__init__(message, details)
        self.errno = errno


class BuildError(EccError):
    """``ecc.build`` failed; the cause (a ``CompileError``, a missing tool...) is chained."""


class LoadError(EccError):
    """The kernel (or libbpf) refused to load a package's programs or maps.

    ``log`` is everything libbpf and the verifier said during the load, where
    ``details`` keeps only its tail."""

    def __init__(self, message: str, details: str | None = None, log: str = "") -> None:
        super().__init__(message, details)
        self.log = log


class AttachError(EccError):
    """A loaded program could not be attached (a kernel limit, a busy hook, a missing target)."""


class WasmError(EccError):
    """A WebAssembly guest (``ecc run APP.wasm``) did something the host refuses: a
    module that does not compile or link, a bad handle, pointer or length, a trap."""
