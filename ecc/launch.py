"""The ``ecc`` process (console script and ``python -m ecc``).

``ecc build SOURCE [HEADER] [-o DIR]`` and ``ecc build A.bpf.c B.bpf.c [-j N]`` (and a few
flags) are built without importing click (buildcmd.quick_params says when); everything else
goes to the click CLI.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import Any

from .errors import EccError


def entry() -> None:
    """Run ``ecc`` with ``sys.argv``, then exit quickly.

    Freeing every module and object at interpreter exit costs a build ~10 ms
    after its work is done. Everything that matters at exit still happens:
    ``atexit`` handlers run (they flush logging and remove temp files), then
    the output streams are flushed; temp folders are gone already (context
    managers). Only then ``os._exit``.
    """
    import atexit

    try:
        run(sys.argv[1:])
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe
        code = code or 1
    os._exit(code or 0)


def run(args: Sequence[str]) -> None:
    from .buildcmd import quick_params

    params = quick_params(args)
    if params is None:
        from .cli import main

        main(args)
        return
    from .buildcmd import build_one, build_several, echo_err, several_programs

    try:
        if several_programs(params["inputs"]):
            build_several(params, echo_err)  # as long as the user likes: the collector stays
        else:
            # A build is a short process whose objects are freed by their reference counts;
            # the cycle collector would run ~30 times in it (~5 ms) to find a few hundred.
            gc.disable()
            build_one(params, echo_err)
    except EccError as exc:
        report_error(exc, args)
    except KeyboardInterrupt:
        sys.exit(130)


def report_error(exc: EccError, args: Sequence[str]) -> None:
    """``ecc: error: ...`` (under the tool's own output), a traceback with -v; exit."""
    if any(a in ("-v", "--verbose") for a in args):
        import traceback

        traceback.print_exc()
    if exc.details:
        print(exc.details, file=sys.stderr)
    print(f"ecc: error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
