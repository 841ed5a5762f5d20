"""``ecc build`` below the click layer (one program, or several at once); and its
quick start.

The click command (cli.py) parses the options and hands them here as a dict.
Importing click and the CLI costs a build ~15 ms before clang can start, and
the common invocations do not need it: ``ecc build SOURCE [HEADER] [-o DIR]``
(or the bare ``ecc SOURCE ...``) and ``ecc build A.bpf.c B.bpf.c|DIR [-j N]``,
with a few flags such as ``--no-cache``. :func:`quick_params` recognises
exactly those forms and gives the dict click would give; launch.py then builds
without importing click. Anything else (another option, ``--help``, a typo)
returns None and goes through click, which also gives the errors.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compiler import BuildOptions

# Every parameter of `ecc build` at its default, as click fills them in
# (tests/test_cli.py, test_quick_defaults_are_clicks, checks that these are click's own).
DEFAULTS: dict[str, Any] = {
    "output_dir": None, "verbose": False, "yaml_": False, "header_only": False,
    "wasm_header": False, "workspace": None, "cflags": (), "clang": None, "llvm_strip": None,
    "bpftool": None, "no_package_json": False, "arch": None, "vmlinux": (), "btf": (),
    "link": None, "verify": False, "report": None, "depfile": None, "no_doc": False,
    "no_cache": False, "jobs": None, "btfgen": False, "btfhub_archive": None,
    "standalone": False, "docker": False,
}

_OUTPUT_OPTIONS = ("-o", "--output-dir", "--output-path")
_JOBS_OPTIONS = ("-j", "--jobs")
# Flags the quick path takes too: each only sets its parameter, and none needs
# anything set up first (-v does: logging).
_QUICK_FLAGS = {
    "--no-cache": "no_cache", "--no-doc": "no_doc", "-y": "yaml_", "--yaml": "yaml_",
    "-n": "no_package_json", "--no-generate-package-json": "no_package_json",
    "--wasm-header": "wasm_header",
}


def quick_params(args: Sequence[str]) -> dict[str, Any] | None:
    """click's parameters for ``ecc ARGS`` when ARGS build one program or several, with
    at most an output folder, ``-j`` and some flags (``_QUICK_FLAGS``); otherwise None."""
    if not args:
        return None
    if args[0] == "build":
        args = args[1:]
    elif not args[0].endswith(".c"):  # a command, an option, or a source click must judge
        return None
    inputs: list[str] = []
    values: dict[str, str] = {}     # "output_dir", "jobs": the options with a value
    flags: dict[str, bool] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _QUICK_FLAGS:
            flags[_QUICK_FLAGS[arg]] = True
            i += 1
            continue
        option = _option_value(args, i)
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


def _option_value(args: Sequence[str], i: int) -> tuple[str, str, int] | None:
    """``-o DIR``, ``-oDIR``, ``--output-dir[=]DIR``, ``-j N`` ... at ``args[i]``: the
    parameter, its value and where the next argument is; None for anything else."""
    arg = args[i]
    name, eq, value = arg.partition("=")
    for param, options in (("output_dir", _OUTPUT_OPTIONS), ("jobs", _JOBS_OPTIONS)):
        if name in options[1:] and eq:
            return param, value, i + 1
        if arg in options:
            return (param, args[i + 1], i + 2) if i + 1 < len(args) else None
        if arg.startswith(options[0]) and len(arg) > 2:
            return param, arg[2:], i + 1
    return None


def several_programs(inputs: Sequence[str]) -> bool:
    """Whether INPUTS are programs to build each on its own (in parallel), not
    SOURCE [EXPORT_HEADER]."""
    return (len(inputs) > 2 or (len(inputs) == 2 and not inputs[1].endswith(".h"))
            or (len(inputs) == 1 and os.path.isdir(inputs[0])))


def build_options(params: dict[str, Any]) -> BuildOptions:
    import shlex

    from .compiler import BuildOptions
    from .compiler.targets import resolve_targets

    inputs = params["inputs"]
    # Several --arch values: the first here; build_targets sets each in turn.
    target = resolve_targets(params["arch"], params["vmlinux"], params["btf"])[0]
    return BuildOptions(
        source=inputs[0], export_header=inputs[1] if len(inputs) > 1 else None,
        output_dir=params["output_dir"], yaml=params["yaml_"],
        header_only=params["header_only"], wasm_header=params["wasm_header"],
        workspace=params["workspace"],
        cflags=tuple(f for group in params["cflags"] for f in shlex.split(group)),
        clang=params["clang"], llvm_strip=params["llvm_strip"], bpftool=params["bpftool"],
        no_package_json=params["no_package_json"], arch=target.arch,
        vmlinux=target.vmlinux, btf=target.btf, no_doc=params["no_doc"],
        cache=not params["no_cache"],
        btfgen=params["btfgen"], btfhub_archive=params["btfhub_archive"],
        standalone=params["standalone"],
    )


def build_one(params: dict[str, Any], echo: Callable[[str], None]) -> None:
    """Build (or ``--verify``) one program, for each target arch; ``echo`` prints a line
    for the user (stderr)."""
    from . import log
    from .compiler.targets import Plan, execute, resolve_targets, verify_error, verify_plan
    from .errors import EccError

    link_spec = None
    if params["link"]:
        from .compiler.link import link_spec as make_link_spec

        link_spec = make_link_spec(params["link"], params["inputs"])
    plan = Plan(build_options(params),
                tuple(resolve_targets(params["arch"], params["vmlinux"], params["btf"])),
                link_spec, params["report"], params["depfile"])
    try:
        if params["verify"]:
            checked = verify_plan(plan)
            failure = verify_error(checked)
            if failure is not None:
                raise failure
            echo(f"ecc: verified: {', '.join(checked.compared)} match a fresh build")
            return
        results = execute(plan)
    except EccError as exc:
        from .doctor import explain_build_failure

        raise explain_build_failure(exc, params["clang"], params["llvm_strip"]) from exc
    for result in results:
        if result.diagnostics:
            echo(result.diagnostics)
        for warning in result.warnings:
            echo(f"ecc: warning: {warning}")
        if params["verbose"]:
            total = sum(result.timings.values())
            parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
            log.info("built in %.0f ms (%s)", total * 1000, parts)
            for path in result.outputs:
                log.info("wrote %s", path)


def build_several(params: dict[str, Any], echo: Callable[[str], None]) -> None:
    """Each program on its own, ``-j`` at once: a status line per program as it
    finishes, then a summary; exit 1 if any failed."""
    import time

    from .compiler.batch import Outcome, build_many, expand_sources
    from .compiler.targets import check_batch, write_batch_files

    check_batch(params["arch"], params["verify"])
    sources = expand_sources(params["inputs"])
    template = build_options({**params, "inputs": (sources[0],)})
    width = max(len(s) for s in sources)

    def report(outcome: Outcome) -> None:
        if outcome.error is not None:
            if outcome.error.details:
                echo(outcome.error.details)
            echo(f"  FAIL {outcome.source:<{width}}  {outcome.error}")
        else:
            assert outcome.result is not None
            for warning in outcome.result.warnings:
                echo(f"ecc: warning: {warning}")
            echo(f"  ok   {outcome.source:<{width}}  {outcome.seconds * 1000:6.0f} ms")

    start = time.perf_counter()
    outcomes = build_many(sources, template, params["jobs"] or os.cpu_count() or 1, report)
    write_batch_files(outcomes, params["report"], params["depfile"], start)
    failed = sum(1 for o in outcomes if o.error is not None)
    echo(f"ecc: built {len(outcomes) - failed} of {len(outcomes)} programs in "
         f"{time.perf_counter() - start:.2f} s" + (f"; {failed} failed" if failed else ""))
    if failed:
        raise SystemExit(1)


def echo_err(line: str) -> None:
    print(line, file=sys.stderr)
