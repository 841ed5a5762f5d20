"""The ``ecc`` command: a thin click layer over the library.

Only this module imports click. Commands import their library modules inside
the function body, so ``ecc --help`` stays close to a bare interpreter start.
"""

from __future__ import annotations

import logging
import sys
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
@click.argument("source", metavar="SOURCE")
@click.argument("export_header", metavar="[EXPORT_HEADER]", required=False)
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
def build(source: str, export_header: str | None, output_dir: str | None, verbose: bool,
          yaml_: bool, header_only: bool, wasm_header: bool, workspace: str | None,
          cflags: tuple[str, ...], clang: str | None, llvm_strip: str | None,
          bpftool: str | None, no_package_json: bool, arch: str | None,
          vmlinux: str | None, no_doc: bool) -> None:
    """Compile SOURCE (a .bpf.c) into <stem>.bpf.o, <stem>.skel.json and package.json.

    EXPORT_HEADER names the structs the program sends to user space.
    """
    from .build import build as run_build

    _setup_logging(verbose)
    result = run_build(_build_options(click.get_current_context().params))
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


def _build_options(params: dict[str, Any]) -> BuildOptions:
    import shlex

    from .build import BuildOptions

    return BuildOptions(
        source=params["source"], export_header=params["export_header"],
        output_dir=params["output_dir"], yaml=params["yaml_"],
        header_only=params["header_only"], wasm_header=params["wasm_header"],
        workspace=params["workspace"],
        cflags=tuple(f for group in params["cflags"] for f in shlex.split(group)),
        clang=params["clang"], llvm_strip=params["llvm_strip"], bpftool=params["bpftool"],
        no_package_json=params["no_package_json"], arch=params["arch"],
        vmlinux=params["vmlinux"], no_doc=params["no_doc"],
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
