"""The ``ecc`` process (console script and ``python -m ecc``), and its quick start.

Importing click and the CLI costs a build ~15 ms before clang can start, and
the common invocations do not need it: ``ecc build SOURCE [HEADER] [-o DIR]``
(or the bare ``ecc SOURCE ...``) and ``ecc build A.bpf.c B.bpf.c|DIR [-j N]``,
with a few flags such as ``--no-cache``. :func:`quick_params` recognises
exactly those forms and gives the dict click would give; they are then built
without importing click. Anything else (another option, ``--help``, a typo)
goes through the click CLI, which also gives the errors.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import EccError, report_error

if TYPE_CHECKING:
    from .compiler.options import Option


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


def quick_params(args: Sequence[str]) -> dict[str, Any] | None:
    """click's parameters for ``ecc ARGS`` when ARGS build one program or several, with
    at most an output folder, ``-j`` and some flags (the quick options of
    compiler/options.py); otherwise None."""
    if not args:
        return None
    if args[0] == "build":
        args = args[1:]
    elif not args[0].endswith(".c"):  # a command, an option, or a source click must judge
        return None
    # Only now: `ecc --help` and the other commands do not import the compiler.
    from .compiler.options import BUILD_OPTIONS, DEFAULTS

    quick = [o for o in BUILD_OPTIONS if o.quick]
    flag_names = {f: o.name for o in quick if o.kind == "flag" for f in o.flags}
    with_value = [o for o in quick if o.kind != "flag"]
    inputs: list[str] = []
    values: dict[str, str] = {}     # "output_dir", "jobs": the options with a value
    flags: dict[str, bool] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in flag_names:
            flags[flag_names[arg]] = True
            i += 1
            continue
        option = _option_value(args, i, with_value)
        if option is None:
            if arg.startswith("-") or not arg:
                return None
            inputs.append(arg)
            i += 1
            continue
        param, value, i = option
        if param in values or not value or value.startswith("-"):
            return None  # repeated, empty or option-like: click's rules decide
        values[param] = value
    if not inputs:
        return None
    jobs = values.get("jobs")
    if jobs is not None and not (jobs.isdecimal() and jobs.isascii() and int(jobs) >= 1):
        return None  # click says what is wrong with it
    return {**DEFAULTS, **flags, "inputs": tuple(inputs), "output_dir": values.get("output_dir"),
            "jobs": int(jobs) if jobs is not None else None}


def _option_value(args: Sequence[str], i: int,
                  options: Sequence[Option]) -> tuple[str, str, int] | None:
    """``-o DIR``, ``-oDIR``, ``--output-dir[=]DIR``, ``-j N`` ... at ``args[i]``: the
    parameter, its value and where the next argument is; None for anything else."""
    arg = args[i]
    name, eq, value = arg.partition("=")
    for option in options:
        short, longs = option.flags[0], option.flags[1:]
        if name in longs and eq:
            return option.name, value, i + 1
        if arg in option.flags:
            return (option.name, args[i + 1], i + 2) if i + 1 < len(args) else None
        if arg.startswith(short) and len(arg) > 2:
            return option.name, arg[2:], i + 1
    return None
