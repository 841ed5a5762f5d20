"""The ``ecc`` process (console script and ``python -m ecc``), and its quick start.

Importing click and the CLI costs a build ~15 ms before clang can start, and
the common invocations do not need it: ``ecc build SOURCE [HEADER] [-o DIR]``
(or the bare ``ecc SOURCE ...``) and ``ecc build A.bpf.c B.bpf.c|DIR [-j N]``,
with a few flags such as ``--no-cache``. :func:`quick_params` recognises
exactly those forms and gives the dict click would give; they are then built
without importing click. Anything else (another option, ``--help``, a typo)
goes through the click CLI, which also gives the errors.

``ecc run [OPTIONS] PACKAGE`` with none of the program's own options after
PACKAGE starts the same way (:func:`quick_run_params`): click and the program's
option command are what a run would otherwise spend most of its start on.
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
    from .package.source import LoadedPackage
    from .run.loader import RunOptions


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
    if args and args[0] == "run":
        run_params = quick_run_params(args[1:])
        if run_params is not None:
            try:
                run_quick(run_params)
            except EccError as exc:
                report_error(exc, args)
            except KeyboardInterrupt:
                sys.exit(130)
            return
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


# ecc run's own options that the quick start knows: flags, and options with a value
# (converted as click would; a value that does not convert goes to click for its error).
_RUN_FLAGS = {"--json": "json", "--strict": "strict", "--force": "force", "--replace": "replace"}
_RUN_VALUES: dict[str, tuple[str, type]] = {
    "--duration": ("duration", float), "--btf": ("btf", str), "--ifindex": ("ifindex", int),
    "--iface": ("iface", str), "--cgroup": ("cgroup", str),
    "--uprobe-binary": ("uprobe_binary", str), "--uprobe-function": ("uprobe_function", str),
    "--uprobe-pid": ("uprobe_pid", int),
}


def quick_run_params(args: Sequence[str]) -> dict[str, Any] | None:
    """The parameters of ``ecc run ARGS`` when ARGS are some of ecc run's own options
    and a PACKAGE with nothing after it; otherwise None (click parses them)."""
    params: dict[str, Any] = {name: False for name in _RUN_FLAGS.values()}
    params.update({name: None for name, _ in _RUN_VALUES.values()})
    params["uprobe_pid"] = -1
    given: set[str] = set()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-" or not arg.startswith("-"):
            if i != len(args) - 1 or not arg:
                return None  # program options follow, or an empty name: click decides
            params["package"] = arg
            return params
        name, eq, value = arg.partition("=")
        if name in given:
            return None
        given.add(name)
        if arg in _RUN_FLAGS:
            params[_RUN_FLAGS[arg]] = True
            i += 1
            continue
        if name not in _RUN_VALUES:
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
        i += 1 if eq else 2
        key, kind = _RUN_VALUES[name]
        try:
            params[key] = kind(value)
        except ValueError:
            return None
    return None


def run_quick(params: dict[str, Any]) -> None:
    """``ecc run`` without click: what cli.py's run does when no program option is given."""
    # The start imports and reads a lot and frees little: the cycle collector would
    # run ~30 times and find nothing. What it made lives as long as the process, so
    # it is frozen out of the collector's way before the run (a guest, the poll loop)
    # gets the collector back.
    gc.disable()
    try:
        prepared = _prepare_run(params)
    finally:
        gc.freeze()
        gc.enable()
    if isinstance(prepared, bytes):
        from .run.wasm import run_module

        raise SystemExit(run_module(prepared, params["package"], [params["package"]]))
    from .run.loader import run_package

    run_package(*prepared, sys.stdout, _say)


def _prepare_run(params: dict[str, Any]) -> bytes | tuple[LoadedPackage, RunOptions]:
    """The package and how to run it; a WebAssembly module's bytes instead."""
    from .run.fetch import WasmModule, open_program
    from .run.loader import RunOptions, interface_index

    package = params["package"]
    loaded = open_program(package)
    if isinstance(loaded, WasmModule):
        return loaded.data
    from .run.target import check_arch

    mismatch = check_arch(loaded.origin, loaded.meta, force=params["force"])
    if mismatch:
        _say(f"ecc: warning: {mismatch}")
    btf_path = None
    if loaded.btf_archive is not None or params["btf"]:
        from .run.btfarchive import choose_btf  # tarfile's reader: only for a --btfgen tar

        btf_path = choose_btf(loaded.btf_archive, loaded.origin, params["btf"]).path
    from .run.sections import section_overrides

    opts = RunOptions(
        json=params["json"], duration=params["duration"], strict=params["strict"],
        btf_custom_path=btf_path, ifindex=interface_index(params["ifindex"], params["iface"]),
        replace=params["replace"], cgroup=params["cgroup"],
        uprobe_binary=params["uprobe_binary"], uprobe_function=params["uprobe_function"],
        uprobe_pid=params["uprobe_pid"],
        section_values=section_overrides(loaded, {}),  # the annotation defaults
    )
    return loaded, opts


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


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
