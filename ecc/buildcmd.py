"""The ``ecc build`` command below the click layer: plan the builds (one program per
target arch, a --link package, or several programs at once), run them or --verify
them, write --report and --depfile, and tell the user.

The click command (cli.py) and the quick start (launch.py, without click) both
hand their parameters here as the same dict: the options' table is
compiler/options.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import EccError

if TYPE_CHECKING:
    from .compiler import BuildOptions
    from .compiler.batch import Outcome
    from .compiler.link import LinkSpec
    from .compiler.repro import Verification
    from .compiler.result import BuildResult
    from .compiler.targets import Target

Echo = Callable[[str], None]  # prints a line for the user (stderr)


def build_command(params: Mapping[str, Any], echo: Echo) -> None:
    """``ecc build`` with click's parameters: in the container, several programs, or one."""
    if params["docker"]:
        build_in_docker(params, echo)
    elif not params["link"] and several_programs(params["inputs"]):
        build_several(params, echo)
    else:
        build_one(params, echo)


def several_programs(inputs: Sequence[str]) -> bool:
    """Whether INPUTS are programs to build each on its own (in parallel), not
    SOURCE [EXPORT_HEADER]."""
    return (len(inputs) > 2 or (len(inputs) == 2 and not inputs[1].endswith(".h"))
            or (len(inputs) == 1 and os.path.isdir(inputs[0])))


def build_options(params: Mapping[str, Any]) -> BuildOptions:
    """The BuildOptions of the first target (build_targets sets each in turn)."""
    return _options(params, _targets(params))


def _targets(params: Mapping[str, Any]) -> tuple[Target, ...]:
    from .compiler.targets import resolve_targets

    return tuple(resolve_targets(params["arch"], params["vmlinux"], params["btf"]))


def _options(params: Mapping[str, Any], targets: Sequence[Target]) -> BuildOptions:
    from .compiler.options import build_options as from_params

    return from_params(params, targets[0])


# --- one program (or one --link package), for each target arch ----------------------

# A NamedTuple, not a dataclass: made before clang starts (see ecc/compiler/pipeline.py).
class Plan(NamedTuple):
    template: BuildOptions
    targets: tuple[Target, ...]
    link: LinkSpec | None = None
    report: str | None = None
    depfile: str | None = None

    @property
    def output_root(self) -> str:
        from .compiler.pipeline import Outputs
        from .compiler.targets import first_source

        return Outputs.folder_for(self.template.output_dir,
                                  first_source(self.template, self.link))


def plan(params: Mapping[str, Any]) -> Plan:
    link_spec = None
    if params["link"]:
        from .compiler.link import link_spec as make_link_spec

        link_spec = make_link_spec(params["link"], params["inputs"])
    targets = _targets(params)
    return Plan(_options(params, targets), targets, link_spec, params["report"],
                params["depfile"])


def build_one(params: Mapping[str, Any], echo: Echo) -> None:
    """Build (or ``--verify``) one program, for each target arch."""
    from . import log

    planned = plan(params)
    try:
        if params["verify"]:
            checked = verify_plan(planned)
            failure = verify_error(checked)
            if failure is not None:
                raise failure
            echo(f"ecc: verified: {', '.join(checked.compared)} match a fresh build")
            return
        results = execute(planned)
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
    if params["check_kernels"]:
        failed = sum(check_kernels_of(result, params["check_kernels"], params["jobs"], echo)
                     for result in results)
        if failed:
            raise kernels_failed(failed)


def check_kernels_of(result: BuildResult, kernels: Sequence[str], jobs: int | None,
                     echo: Echo) -> int:
    """``--check-kernels``: the matrix of ``ecc check --kernel`` for a built object;
    how many kernels cannot run it."""
    from .check import check_built_object

    origin = next((p for p in result.outputs if p.endswith(("package.json", "package.yaml"))),
                  next((p for p in result.outputs if p.endswith(".bpf.o")), "the object"))
    relative = os.path.relpath(origin)
    if not relative.startswith(".."):
        origin = relative  # as the user named the output folder, mostly
    report = check_built_object(origin, result.object_bytes, kernels, jobs)
    for warning in report.warnings:
        echo(f"ecc: warning: {warning}")
    for line in report.lines():
        echo(line)
    return report.failed


def kernels_failed(failed: int) -> EccError:
    return EccError(f"--check-kernels: {failed} kernel{'s' if failed > 1 else ''} cannot run "
                    "what was built (see the lines above; the outputs are written)")


def execute(planned: Plan) -> list[BuildResult]:
    """Build every target; the report is written also when a build fails."""
    import time

    from .compiler.targets import build_targets

    started = time.perf_counter()
    try:
        results = build_targets(planned.template, planned.targets, link=planned.link)
    except EccError as exc:
        if planned.report:
            from .compiler.report import report_document, write_report

            write_report(planned.report, report_document([], started=started, error=exc))
        raise
    if planned.report:
        from .compiler.report import report_document, result_record, write_report

        write_report(planned.report, report_document([result_record(r) for r in results],
                                                     started=started))
    if planned.depfile:
        from .compiler.report import write_depfile

        write_depfile(planned.depfile, results)
    return results


def verify_plan(planned: Plan) -> Verification:
    """Build again into a temporary folder and compare with the outputs already there."""
    import time

    from .compiler.report import report_document, result_record, write_report
    from .compiler.repro import verify
    from .compiler.targets import build_targets

    started = time.perf_counter()
    records: list[dict[str, Any]] = []

    def build_into(folder: str) -> list[str]:
        # A fresh build compiles: an object taken from the cache would verify itself.
        template = planned.template._replace(output_dir=folder, cached_objects=False)
        results = build_targets(template, planned.targets, link=planned.link)
        records.extend(result_record(r) for r in results)  # while the files exist
        return [p for r in results for p in r.outputs]

    try:
        result = verify(planned.output_root, build_into)
    except EccError as exc:
        if planned.report:
            write_report(planned.report, report_document(records, started=started, error=exc))
        raise
    if planned.report:
        write_report(planned.report, report_document(records, started=started, extra={
            "verify": {"ok": not result.differences, "folder": planned.output_root,
                       "compared": list(result.compared),
                       "differences": list(result.differences)}}))
    return result


def verify_error(result: Verification) -> EccError | None:
    """The one-line error for a failed --verify, the differences as its details."""
    files = result.differing_files
    if not files:
        return None
    verb = "differs" if len(files) == 1 else "differ"
    return EccError(f"--verify: {', '.join(files)} {verb} from a fresh build of the same "
                    f"sources (see above)", details="\n".join(result.differences))


# --- several programs at once -------------------------------------------------------

def build_several(params: Mapping[str, Any], echo: Echo) -> None:
    """Each program on its own, ``-j`` at once: a status line per program as it
    finishes, then a summary; exit 1 if any failed."""
    import time

    from .compiler.batch import build_many, expand_sources

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
    if params["check_kernels"]:
        cannot = sum(check_kernels_of(o.result, params["check_kernels"], params["jobs"], echo)
                     for o in outcomes if o.result is not None)
        if cannot:
            raise kernels_failed(cannot)


def check_batch(arch_text: str | None, verify: bool) -> None:
    """What several separate programs (not --link) cannot do in one command."""
    from .arch import parse_arch_list

    if verify:
        raise EccError("--verify checks one program (or one --link package) at a time; "
                       "give one source")
    if arch_text and len(parse_arch_list(arch_text)) > 1:
        raise EccError(f"--arch {arch_text}: several arches build one program (or one --link "
                       f"package) at a time; give one source")


def write_batch_files(outcomes: Sequence[Outcome], report: str | None, depfile: str | None,
                      started: float) -> None:
    """--report and --depfile for several programs built at once."""
    from .compiler.report import (
        failure_record,
        report_document,
        result_record,
        write_depfile,
        write_report,
    )

    if report:
        records = []
        for o in outcomes:
            if o.result is not None:
                records.append(result_record(o.result))
            else:
                assert o.error is not None  # an outcome holds one or the other
                records.append(failure_record([o.source], o.error))
        write_report(report, report_document(records, started=started))
    if depfile:
        write_depfile(depfile, [o.result for o in outcomes if o.result is not None])


# --- in the container -----------------------------------------------------------------

def build_in_docker(params: Mapping[str, Any], echo: Echo) -> None:
    """``ecc build --docker``: the same build in the ecc image (docker.py does it)."""
    from .compiler.options import BUILD_OPTIONS, DEFAULTS
    from .docker import OptionSpec, build_in_container

    options = {o.name: OptionSpec(o.flags[-1], None, DEFAULTS[o.name], o.metavar)
               for o in BUILD_OPTIONS}
    values = {k: v for k, v in params.items() if k not in ("inputs", "docker")}
    status = build_in_container(params["inputs"], values, options, echo)
    if status:
        raise SystemExit(status)


def echo_err(line: str) -> None:
    print(line, file=sys.stderr)
