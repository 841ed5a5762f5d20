"""Target architectures: ``--arch x86,arm64`` with a vmlinux.h for each.

A CO-RE program compiled for another arch needs that arch's kernel types
(``struct user_pt_regs`` on arm64, ``struct pt_regs`` with ``di`` on x86):
``--vmlinux [ARCH=]FILE`` names a header, ``--btf [ARCH=]FILE`` a kernel BTF
to generate one from (bpftool, cached by content). The running kernel's BTF
serves only the host's arch. With several arches, each package goes to
``DIR/<arch>/``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..arch import TARGET_ARCHES, host_arch, parse_arch_list
from ..errors import EccError

if TYPE_CHECKING:
    from . import BuildOptions
    from .link import LinkSpec
    from .repro import Verification
    from .result import BuildResult


# A NamedTuple, not a dataclass: made before clang starts (see ecc/compiler/__init__.py).
class Target(NamedTuple):
    arch: str | None          # None: the host's
    vmlinux: str | None = None
    btf: str | None = None


def _per_arch(values: Sequence[str], option: str,
              arches: tuple[str, ...]) -> dict[str | None, str]:
    """``FILE`` (for the only arch) or ``ARCH=FILE`` (for that one), each arch once."""
    out: dict[str | None, str] = {}
    for value in values:
        arch_part, sep, file_part = value.partition("=")
        arch: str | None
        if sep and arch_part in TARGET_ARCHES:
            arch, path = arch_part, file_part
            if arches and arch not in arches:
                raise EccError(f"{option} {value}: {arch} is not one of --arch "
                               f"{','.join(arches)}")
            if not arches:
                raise EccError(f"{option} {value}: names arch {arch}, but no --arch is given; "
                               f"add --arch {arch}")
        else:
            arch, path = None, value
            if len(arches) > 1:
                raise EccError(f"{option} {value}: with several --arch values, say which arch "
                               f"it is for ({option} ARCH=FILE)")
        if arch in out or (arch is None and out) or (arch is not None and None in out):
            raise EccError(f"{option} is given twice for {arch or 'the build'}")
        out[arch] = path
    return out


def resolve_targets(arch_text: str | None, vmlinux: Sequence[str],
                    btf: Sequence[str]) -> list[Target]:
    """What ``--arch``, ``--vmlinux`` and ``--btf`` ask for: one target per arch."""
    arches = parse_arch_list(arch_text) if arch_text else ()
    headers = _per_arch(vmlinux, "--vmlinux", arches)
    btfs = _per_arch(btf, "--btf", arches)
    targets = []
    for arch in arches or (None,):
        header = headers.get(arch, headers.get(None))
        btf_file = btfs.get(arch, btfs.get(None))
        if header and btf_file:
            raise EccError(f"--vmlinux and --btf both given for {arch or 'the build'}; "
                           f"give one")
        targets.append(Target(arch, header, btf_file))
    return targets


def build_targets(template: BuildOptions, targets: Sequence[Target], *,
                  link: LinkSpec | None = None) -> list[BuildResult]:
    """One build (or link) per target; with several, each into ``<output>/<arch>/``."""
    from . import build

    several = len(targets) > 1
    first = link.sources[0] if link is not None else template.source
    root = template.output_dir or os.path.dirname(os.path.abspath(first))
    results = []
    for target in targets:
        opts = template._replace(arch=target.arch, vmlinux=target.vmlinux, btf=target.btf)
        if several:
            opts = opts._replace(output_dir=os.path.join(root, target.arch or ""))
        if link is not None:
            from .link import build_linked

            results.append(build_linked(opts, link))
        else:
            results.append(build(opts))
    return results


def check_host_vmlinux(arch: str, source: str) -> None:
    """The vmlinux.h ecc generates comes from the running kernel: the host's arch only."""
    host = host_arch()
    if arch != host:
        raise EccError(
            f"{os.path.basename(source)} includes vmlinux.h, but the one ecc makes from this "
            f"machine's kernel is for {host}, not {arch}; give an {arch} one with "
            f"--vmlinux FILE, or --btf FILE (the BTF of an {arch} kernel)")


def check_explicit_vmlinux(opts: BuildOptions, source_dir: str, vmlinux_dir: str) -> None:
    """A vmlinux.h beside the source (or on -I) is found first; it must not shadow
    the one the user asked for by name."""
    from .vmlinux import resolve_header

    if not (opts.vmlinux or opts.btf):
        return
    own = resolve_header(source_dir, opts.cflags, [])
    wanted = os.path.join(vmlinux_dir, "vmlinux.h")
    if own is not None and os.path.realpath(own) != os.path.realpath(wanted):
        option = "--vmlinux" if opts.vmlinux else "--btf"
        raise EccError(
            f"{own} would be included instead of the vmlinux.h of {option} (the program's "
            f"folder and -I folders come first); move it away or drop {option}")


# --- one `ecc build` command: builds, then --report/--depfile, or --verify -----


# A NamedTuple, not a dataclass: made before clang starts (see ecc/compiler/__init__.py).
class Plan(NamedTuple):
    template: BuildOptions
    targets: tuple[Target, ...]
    link: LinkSpec | None = None
    report: str | None = None
    depfile: str | None = None

    @property
    def output_root(self) -> str:
        first = self.link.sources[0] if self.link is not None else self.template.source
        return os.path.abspath(self.template.output_dir or os.path.dirname(os.path.abspath(
            first)))


def execute(plan: Plan) -> list[BuildResult]:
    """Build every target; the report is written also when a build fails."""
    import time

    started = time.perf_counter()
    try:
        results = build_targets(plan.template, plan.targets, link=plan.link)
    except EccError as exc:
        if plan.report:
            from .report import report_document, write_report

            write_report(plan.report, report_document([], started=started, error=exc))
        raise
    if plan.report:
        from .report import report_document, result_record, write_report

        write_report(plan.report, report_document([result_record(r) for r in results],
                                                  started=started))
    if plan.depfile:
        from .report import write_depfile

        write_depfile(plan.depfile, results)
    return results


def verify_plan(plan: Plan) -> Verification:
    """Build again into a temporary folder and compare with the outputs already there."""
    import time

    from .report import report_document, result_record, write_report
    from .repro import verify

    started = time.perf_counter()
    records: list[dict[str, Any]] = []

    def build_into(folder: str) -> list[str]:
        template = plan.template._replace(output_dir=folder)
        results = build_targets(template, plan.targets, link=plan.link)
        records.extend(result_record(r) for r in results)  # while the files exist
        return [p for r in results for p in r.outputs]

    try:
        result = verify(plan.output_root, build_into)
    except EccError as exc:
        if plan.report:
            write_report(plan.report, report_document(records, started=started, error=exc))
        raise
    if plan.report:
        write_report(plan.report, report_document(records, started=started, extra={
            "verify": {"ok": not result.differences, "folder": plan.output_root,
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


def check_batch(arch_text: str | None, verify: bool) -> None:
    """What several separate programs (not --link) cannot do in one command."""
    if verify:
        raise EccError("--verify checks one program (or one --link package) at a time; "
                       "give one source")
    if arch_text and len(parse_arch_list(arch_text)) > 1:
        raise EccError(f"--arch {arch_text}: several arches build one program (or one --link "
                       f"package) at a time; give one source")


def write_batch_files(outcomes: Sequence[Any], report: str | None, depfile: str | None,
                      started: float) -> None:
    """--report and --depfile for several programs built at once (batch.Outcome)."""
    from .report import failure_record, report_document, result_record, write_depfile, write_report

    if report:
        records = [result_record(o.result) if o.result is not None
                   else failure_record([o.source], o.error) for o in outcomes]
        write_report(report, report_document(records, started=started))
    if depfile:
        write_depfile(depfile, [o.result for o in outcomes if o.result is not None])
