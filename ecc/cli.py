"""The ``ecc`` command: a thin click layer over the library.

Only this module imports click. Commands import their library modules inside
the function body, so ``ecc --help`` stays close to a bare interpreter start.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .errors import EccError

if TYPE_CHECKING:
    from .build import BuildOptions

log = logging.getLogger("ecc")


class EccGroup(click.Group):
    """A group whose first word, when it is not a command, means ``build``.

    That keeps the reference's bare form working: ``ecc prog.bpf.c event.h``.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ecc: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False


@click.group(cls=EccGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="ecc")
def cli() -> None:
    """Compile libbpf CO-RE eBPF programs into eunomia-bpf packages, and run them.

    `ecc prog.bpf.c [event.h]` is short for `ecc build prog.bpf.c [event.h]`.
    """


@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="SOURCE [EXPORT_HEADER] | SOURCES...")
@click.option("-o", "--output-path", "--output-dir", "output_dir", metavar="DIR",
              help="Where the outputs go (default: the source's folder).")
@click.option("-v", "--verbose", is_flag=True, help="Print each command run and timings.")
@click.option("-y", "--yaml", "yaml_", is_flag=True,
              help="Write .skel.yaml and package.yaml instead of JSON.")
@click.option("--header-only", is_flag=True,
              help="SOURCE is a header: build an object that only carries its types.")
@click.option("--wasm-header", is_flag=True, help="Also write ewasm-skel.h.")
@click.option("-w", "--workspace-path", "workspace", metavar="DIR",
              help="Where temporary build files go (default: a private temp folder, removed).")
@click.option("-a", "--additional-cflags", "cflags", multiple=True, metavar="FLAGS",
              help="Extra clang flags (split on spaces); may be repeated.")
@click.option("-c", "--clang-bin", "clang", metavar="PATH", help="clang to use.")
@click.option("-l", "--llvm-strip-bin", "llvm_strip", metavar="PATH", help="llvm-strip to use.")
@click.option("--bpftool-bin", "bpftool", metavar="PATH",
              help="bpftool to use (only to generate vmlinux.h).")
@click.option("-n", "--no-generate-package-json", "no_package_json", is_flag=True,
              help="Write only the object and the .skel.json.")
@click.option("--arch", metavar="ARCH",
              help="Target architecture for __TARGET_ARCH_* (default: the host's).")
@click.option("--vmlinux", metavar="FILE", help="The vmlinux.h to compile against.")
@click.option("--no-doc", is_flag=True, help="Ignore doc-comment annotations.")
@click.option("--no-cache", is_flag=True,
              help="Do not use (or make) the precompiled vmlinux.h in the cache.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), metavar="N",
              help="With several programs: how many to build at once (default: the cores).")
def build(inputs: tuple[str, ...], output_dir: str | None, verbose: bool,
          yaml_: bool, header_only: bool, wasm_header: bool, workspace: str | None,
          cflags: tuple[str, ...], clang: str | None, llvm_strip: str | None,
          bpftool: str | None, no_package_json: bool, arch: str | None,
          vmlinux: str | None, no_doc: bool, no_cache: bool, jobs: int | None) -> None:
    """Compile SOURCE (a .bpf.c) into <stem>.bpf.o, <stem>.skel.json and package.json.

    EXPORT_HEADER names the structs the program sends to user space. Given
    several .bpf.c files or a folder instead, builds each (with its <stem>.h
    beside it, if any) in parallel; with -o DIR, into DIR/<stem>/.
    """
    from .build import build as run_build

    _setup_logging(verbose)
    params = click.get_current_context().params
    if len(inputs) > 2 or (len(inputs) == 2 and not inputs[1].endswith(".h")) or (
            len(inputs) == 1 and os.path.isdir(inputs[0])):
        _build_several(inputs, params, jobs)
        return
    result = run_build(_build_options(params))
    if result.diagnostics:
        click.echo(result.diagnostics, err=True)
    for warning in result.warnings:
        click.echo(f"ecc: warning: {warning}", err=True)
    if verbose:
        total = sum(result.timings.values())
        parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items())
        log.info("built in %.0f ms (%s)", total * 1000, parts)
    for path in result.outputs:
        log.info("wrote %s", path)


@cli.command(context_settings={"ignore_unknown_options": True,
                               "allow_interspersed_args": False})
@click.argument("package", metavar="PACKAGE")
@click.argument("program_args", nargs=-1, type=click.UNPROCESSED, metavar="[PROGRAM OPTIONS]")
@click.option("--json", "json_", is_flag=True, help="One JSON object per line.")
@click.option("--duration", type=float, metavar="SECONDS", help="Stop after this long.")
@click.option("--strict", is_flag=True,
              help="Fail when any program cannot be loaded or attached.")
@click.option("--btf", "btf_path", metavar="FILE",
              help="Kernel BTF to use for CO-RE instead of the running kernel's.")
@click.option("-v", "--verbose", is_flag=True, help="Show libbpf's messages and tracebacks.")
def run(package: str, program_args: tuple[str, ...], json_: bool, duration: float | None,
        strict: bool, btf_path: str | None, verbose: bool) -> None:
    """Load PACKAGE (package.json, package.yaml, a .skel.json beside its .bpf.o, or - for
    stdin), attach its programs and print what they send.

    Options after PACKAGE are the program's own, made from its global variables:
    `ecc run package.json --help` lists them.
    """
    from .run.loader import RunOptions
    from .run.source import read_package

    _setup_logging(verbose)
    loaded = read_package(package)
    args = list(program_args)
    if args[:1] == ["--"]:
        args = args[1:]
    command, specs = _program_command(loaded)
    try:
        ctx = command.make_context(_program_name(loaded), args)
    except click.exceptions.Exit as exc:  # --help
        raise SystemExit(exc.exit_code) from None
    params = ctx.params
    opts = RunOptions(
        json=json_ or bool(params.pop("__json", False)),
        duration=duration if duration is not None else params.pop("__duration", None),
        strict=strict or bool(params.pop("__strict", False)),
        btf_custom_path=btf_path,
    )
    for key in ("__json", "__duration", "__strict"):
        params.pop(key, None)
    opts.section_values = _section_values(loaded, specs, params)
    _run_loaded(loaded, opts)


def _program_name(loaded: Any) -> str:
    name = str(loaded.obj_name)
    return name[: -len("_bpf")] if name.endswith("_bpf") else name


def _program_command(loaded: Any) -> tuple[click.Command, list[Any]]:
    """A click command whose options are the program's variables (spec section 3.4)."""
    from .run.options import describe, option_specs

    specs = option_specs(loaded.meta, loaded.elf, loaded.btf, loaded.elf.data_sections) \
        if loaded.btf is not None else []
    params: list[click.Parameter] = []
    for index, spec in enumerate(specs):
        if not spec.settable:
            continue
        dest = f"opt{index}"  # click needs an identifier; long names may hold '-'

        decls = [f"--{spec.long}"] + ([f"-{spec.short}"] if spec.short else [])
        help_text = " ".join(x for x in (spec.help, f"[{describe(spec)}]") if x)
        if spec.kind == "bool":
            decls = [f"--{spec.long}/--no-{spec.long}"] + (
                [f"-{spec.short}"] if spec.short else [])
            params.append(click.Option([*decls, dest], default=None, help=help_text,
                                       show_default=False))
        else:
            choices = f" {{{','.join(spec.choices)}}}" if spec.choices else ""
            params.append(click.Option([*decls, dest], default=None, show_default=False,
                                       metavar=spec.kind.upper() + choices, help=help_text))
    # ecc run's own options may also follow PACKAGE, unless the program uses the name.
    taken = {d for p in params for d in p.opts + p.secondary_opts}
    for decl, name, kwargs in (
        ("--json", "__json", {"is_flag": True, "help": "One JSON object per line."}),
        ("--duration", "__duration", {"type": float, "metavar": "SECONDS",
                                      "help": "Stop after this long."}),
        ("--strict", "__strict", {"is_flag": True,
                                  "help": "Fail when a program cannot be loaded or attached."}),
    ):
        if decl not in taken:
            params.append(click.Option([decl, name], **kwargs))  # type: ignore[arg-type]
    doc = loaded.meta["bpf_skel"].get("doc") or {}
    summary = doc.get("brief") or doc.get("description") or ""
    details = doc.get("details") or ""
    return click.Command(_program_name(loaded), params=params,
                         help="\n\n".join(str(x) for x in (summary, details) if x) or None,
                         context_settings={"help_option_names": ["-h", "--help"]}), specs


def _section_values(loaded: Any, specs: list[Any], params: dict[str, Any]) -> dict[str, bytes]:
    from .run.options import apply_values

    texts: dict[str, str] = {}
    for index, spec in enumerate(specs):
        value = params.get(f"opt{index}")
        if value is None:
            continue
        texts[spec.long] = ("true" if value else "false") if isinstance(value, bool) else value
    initial = loaded.elf.data_sections
    new = apply_values(specs, texts, initial)
    return {name: data for name, data in new.items() if data != initial.get(name)}


def _run_loaded(loaded: Any, opts: Any) -> None:
    from .run.libbpf import bump_memlock_rlimit
    from .run.loader import Runner

    bump_memlock_rlimit()
    runner = Runner(loaded, opts, sys.stdout, lambda line: click.echo(line, err=True))
    try:
        runner.load()
        runner.attach_all()
        if not runner.attached:
            raise EccError(f"{loaded.origin}: no program could be attached; nothing to run")
        runner.open_outputs()
        count = len(runner.attached)
        click.echo(f"ecc: running {_program_name(loaded)}: {count} program"
                   f"{'s' if count != 1 else ''} attached "
                   f"({', '.join(a.name for a in runner.attached)}); Ctrl-C to stop", err=True)
        runner.poll()
    finally:
        runner.close()


def _build_several(inputs: tuple[str, ...], params: dict[str, Any], jobs: int | None) -> None:
    """One status line per program as it finishes, then a summary; exit 1 if any failed."""
    from .build.batch import Outcome, build_many, expand_sources

    sources = expand_sources(inputs)
    template = _build_options({**params, "inputs": (sources[0],)})
    width = max(len(s) for s in sources)

    def report(outcome: Outcome) -> None:
        if outcome.error is not None:
            if outcome.error.details:
                click.echo(outcome.error.details, err=True)
            click.echo(f"  FAIL {outcome.source:<{width}}  {outcome.error}", err=True)
        else:
            assert outcome.result is not None
            for warning in outcome.result.warnings:
                click.echo(f"ecc: warning: {warning}", err=True)
            click.echo(f"  ok   {outcome.source:<{width}}  {outcome.seconds * 1000:6.0f} ms",
                       err=True)

    start = time.perf_counter()
    outcomes = build_many(sources, template, jobs or os.cpu_count() or 1, report)
    failed = sum(1 for o in outcomes if o.error is not None)
    click.echo(f"ecc: built {len(outcomes) - failed} of {len(outcomes)} programs in "
               f"{time.perf_counter() - start:.2f} s" + (f"; {failed} failed" if failed else ""),
               err=True)
    if failed:
        raise SystemExit(1)


def _build_options(params: dict[str, Any]) -> BuildOptions:
    import shlex

    from .build import BuildOptions

    inputs = params["inputs"]
    return BuildOptions(
        source=inputs[0], export_header=inputs[1] if len(inputs) > 1 else None,
        output_dir=params["output_dir"], yaml=params["yaml_"],
        header_only=params["header_only"], wasm_header=params["wasm_header"],
        workspace=params["workspace"],
        cflags=tuple(f for group in params["cflags"] for f in shlex.split(group)),
        clang=params["clang"], llvm_strip=params["llvm_strip"], bpftool=params["bpftool"],
        no_package_json=params["no_package_json"], arch=params["arch"],
        vmlinux=params["vmlinux"], no_doc=params["no_doc"], cache=not params["no_cache"],
    )


def parse_build_args(args: Sequence[str]) -> BuildOptions:
    """The BuildOptions that ``ecc build ARGS`` would use (for tests and golden cases)."""
    ctx = build.make_context("build", list(args))
    return _build_options(ctx.params)


def _wants_traceback(argv: Sequence[str]) -> bool:
    return any(a in ("-v", "--verbose") for a in argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv: Any = cli.main(args=args, prog_name="ecc", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("ecc: aborted", err=True)
        sys.exit(130)
    except EccError as exc:
        if _wants_traceback(args):
            traceback.print_exc()
        if exc.details:
            click.echo(exc.details, err=True)
        click.echo(f"ecc: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)
