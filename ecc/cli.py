"""The ``ecc`` command: a thin click layer over the library.

Only this module imports click. Commands import their library modules inside
the function body, so ``ecc --help`` stays close to a bare interpreter start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .errors import EccError, report_error

if TYPE_CHECKING:
    from .compiler import BuildOptions
    from .compiler.options import Option

# Each command is made by its factory only when it is used: building all of
# them (dozens of options) is most of what `ecc --help` would otherwise cost.
# The group's help lists them from these one-line summaries instead.
_SUMMARIES = {
    "build": "Compile a .bpf.c into <stem>.bpf.o, <stem>.skel.json and package.json.",
    "run": "Load a package, attach its programs and print what they send.",
    "exporter": "Serve Prometheus metrics from the programs of a config file.",
    "push": "Push a package or a WebAssembly module to an OCI registry.",
    "pull": "Pull a package or a WebAssembly module from an OCI registry.",
    "init": "Create a new project folder with a program and a CI workflow.",
    "doctor": "Check the toolchain and this machine.",
    "check": "Check packages against the schema, their object and libbpf.",
    "cache": "Show what the build cache holds (info) or empty it (clean).",
}


class EccGroup(click.Group):
    """Commands made on demand; a first word that is not a command means ``build``.

    The latter keeps the reference's bare form working: ``ecc prog.bpf.c event.h``.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_SUMMARIES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return command(cmd_name) if cmd_name in _SUMMARIES else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(_SUMMARIES.items()))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in _SUMMARIES and args[0] not in ("-h", "--help", "--version"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


_MADE: dict[str, click.Command] = {}


def command(name: str) -> click.Command:
    """The click command ``name``, made on first use."""
    if name not in _MADE:
        factory = globals()[f"_cmd_{name}"]
        _MADE[name] = factory()
    return _MADE[name]


def _echo_err(line: str) -> None:
    click.echo(line, err=True)


def _setup_logging(verbose: bool) -> None:
    if not verbose and "logging" not in sys.modules:
        return  # nothing to hide or show: ecc.log drops messages until logging is imported
    import logging

    log = logging.getLogger("ecc")
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


def _cmd_build() -> click.Command:
    from .compiler.options import BUILD_OPTIONS

    def build(**params: Any) -> None:
        """Compile SOURCE (a .bpf.c) into <stem>.bpf.o, <stem>.skel.json and package.json.

        EXPORT_HEADER names the structs the program sends to user space. Given
        several .bpf.c files or a folder instead, builds each (with its <stem>.h
        beside it, if any) in parallel; with -o DIR, into DIR/<stem>/.
        """
        from .buildcmd import build_command

        _setup_logging(params["verbose"])
        build_command(params, _echo_err)

    inputs = click.Argument(["inputs"], nargs=-1, required=True,
                            metavar="SOURCE [EXPORT_HEADER] | SOURCES...")
    return click.command(params=[inputs, *map(_click_option, BUILD_OPTIONS)])(build)


def _click_option(option: Option) -> click.Option:
    """One row of compiler/options.py as a click option."""
    kinds: dict[str, dict[str, Any]] = {
        "flag": {"is_flag": True}, "value": {}, "values": {"multiple": True},
        "count": {"type": click.IntRange(min=1)},
        "apps": {"multiple": True, "is_flag": False, "flag_value": ""}}
    return click.Option([*option.flags, option.name], metavar=option.metavar,
                        help=option.help, **kinds[option.kind])


def _opt(*decls: str, **attrs: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return decls, attrs


# `ecc run`'s own options, in --help order: a table keeps _cmd_run short.
_RUN_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    _opt("--json", "json_", is_flag=True, help="One JSON object per line."),
    _opt("--printk", is_flag=True,
         help="Also print what bpf_printk writes, each line marked printk (JSON type "
              "\"printk\"). It comes from the kernel's trace pipe, which the whole "
              "machine shares: lines of other programs show too, and lines read "
              "here are gone for any other reader."),
    _opt("--duration", type=float, metavar="SECONDS", help="Stop after this long."),
    _opt("--strict", is_flag=True,
         help="Fail when any program cannot be loaded or attached."),
    _opt("--btf", "btf_path", metavar="FILE",
         help="Kernel BTF to use for CO-RE instead of the running kernel's (a file, or "
              "an entry of a --btfgen tar such as ubuntu/20.04/x86_64/KERNEL.btf)."),
    _opt("--plain-http", is_flag=True,
         help="PACKAGE is in an OCI registry without TLS (http)."),
    _opt("--force", is_flag=True,
         help="Load a package built for another architecture anyway."),
    _opt("--ifindex", type=int, metavar="N",
         help="Attach every XDP and TC program to this interface (default: their "
              "@ifindex/@tchook, else 1, lo)."),
    _opt("--iface", metavar="NAME", help="The same as --ifindex, by name."),
    _opt("--replace", is_flag=True,
         help="Take an XDP or tc hook that already holds another program."),
    _opt("--cgroup", metavar="PATH",
         help="Attach cgroup programs (cgroup_skb, sockops, ...) to this cgroup v2 "
              "folder; without it they are loaded and wait."),
    _opt("--uprobe-binary", metavar="PATH",
         help="Attach uprobes whose section names no target to --uprobe-function "
              "in this binary or library."),
    _opt("--uprobe-function", metavar="NAME", help="See --uprobe-binary."),
    _opt("--uprobe-pid", type=int, default=-1, metavar="PID",
         help="Trace only this process with those uprobes (default: all)."),
    _opt("-v", "--verbose", is_flag=True, help="Show libbpf's messages and tracebacks."),
]


def _cmd_run() -> click.Command:
    @click.command(context_settings={"ignore_unknown_options": True,
                                   "allow_interspersed_args": False})
    @click.argument("package", metavar="PACKAGE")
    @click.argument("program_args", nargs=-1, type=click.UNPROCESSED, metavar="[PROGRAM OPTIONS]")
    def run(package: str, program_args: tuple[str, ...], json_: bool, duration: float | None,
            strict: bool, btf_path: str | None, plain_http: bool, force: bool,
            ifindex: int | None, iface: str | None, replace: bool, cgroup: str | None,
            uprobe_binary: str | None, uprobe_function: str | None, uprobe_pid: int,
            verbose: bool, printk: bool) -> None:
        """Load PACKAGE (package.json, package.yaml, a .skel.json beside its .bpf.o, a --btfgen
        <stem>.tar, or - for stdin), attach its programs and print what they send.

        Options after PACKAGE are the program's own, made from its global variables:
        `ecc run package.json --help` lists them. A WebAssembly program (APP.wasm, eunomia's
        wasm-bpf ABI; also by URL, OCI reference or standalone file) runs instead with the
        arguments after it as its argv.
        """
        from .run.btfarchive import choose_btf
        from .run.fetch import WasmModule, open_program
        from .run.loader import RunOptions, interface_index

        _setup_logging(verbose)
        # a file, APP.wasm, URL, OCI reference or .out: a package or a WebAssembly module
        loaded = open_program(package, plain_http=plain_http)
        if isinstance(loaded, WasmModule):  # a WASI guest; what follows it is its argv
            from .run.wasm import run_module

            guest_args = program_args[1:] if program_args[:1] == ("--",) else program_args
            raise SystemExit(run_module(loaded.data, package, [package, *guest_args]))
        args = list(program_args)
        if args[:1] == ["--"]:
            args = args[1:]
        command, specs = _program_command(loaded)
        try:
            ctx = command.make_context(_program_name(loaded), args)
        except click.exceptions.Exit as exc:  # --help
            raise SystemExit(exc.exit_code) from None
        params = ctx.params
        from .run.target import check_arch

        mismatch = check_arch(loaded.origin, loaded.meta,
                              force=force or bool(params.pop("__force", False)))
        if mismatch:
            click.echo(f"ecc: warning: {mismatch}", err=True)
        opts = RunOptions(
            json=json_ or bool(params.pop("__json", False)),
            duration=duration if duration is not None else params.pop("__duration", None),
            strict=strict or bool(params.pop("__strict", False)),
            # A --btfgen tar's BTF for this kernel when it has none of its own, or --btf.
            btf_custom_path=choose_btf(loaded.btf_archive, loaded.origin, btf_path).path,
            ifindex=interface_index(ifindex, iface), replace=replace, cgroup=cgroup,
            uprobe_binary=uprobe_binary, uprobe_function=uprobe_function, uprobe_pid=uprobe_pid,
            printk=printk,
        )
        for key in ("__json", "__duration", "__strict"):
            params.pop(key, None)
        opts.section_values = _section_values(loaded, specs, params)
        _run_loaded(loaded, opts)
    # After the arguments, in the table's order: what the stacked decorators gave.
    run.params.extend(click.Option(list(decls), **attrs) for decls, attrs in _RUN_OPTIONS)
    return run


def _listen_address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from .exporter.server import parse_listen

    try:
        parse_listen(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _cmd_exporter() -> click.Command:
    def listen_or_none(ctx: click.Context, param: click.Parameter, value: str) -> str:
        return value if value == "none" else _listen_address(ctx, param, value)

    @click.command()
    @click.argument("config", required=False, metavar="[CONFIG]")
    @click.option("--listen", default="127.0.0.1:8526", show_default=True, metavar="HOST:PORT",
                  callback=listen_or_none,
                  help="Where to serve /metrics (and the API); 'none': no listener, the "
                       "metrics go out over OTLP only.")
    @click.option("--api", is_flag=True,
                  help="Serve the control API (POST /start, GET /list, POST /stop/ID); "
                       "needs --api-token-file.")
    @click.option("--api-token-file", metavar="FILE",
                  help="File holding the bearer token API requests must send.")
    @click.option("--max-series", type=click.IntRange(min=1), default=10000, show_default=True,
                  metavar="N", help="Label sets kept at most; past it a new counter series "
                                    "evicts the least recently updated one "
                                    "(ecc_exporter_series_evicted_total).")
    @click.option("--series-ttl", type=click.FloatRange(min=0), default=900, show_default=True,
                  metavar="SECONDS", help="Counter series not updated for this long are removed "
                                          "(ecc_exporter_series_expired_total); a metric's "
                                          "'ttl' overrides it; 0: never.")
    @click.option("--queue-size", type=click.IntRange(min=1), default=65536, show_default=True,
                  metavar="N", help="Events buffered per program between the kernel's buffers "
                                    "and counting; past it events are counted as lost.")
    @click.option("--otlp-endpoint", metavar="URL",
                  help="Also push the metrics over OTLP/HTTP, posted to this URL as given "
                       "(e.g. http://127.0.0.1:4318/v1/metrics); over the config's "
                       "otlp.endpoint. Needs the otel extra.")
    @click.option("--otlp-interval", type=click.FloatRange(min=0, min_open=True),
                  metavar="SECONDS", help="Seconds between OTLP pushes (default: the config's "
                                          "otlp.interval, else 10).")
    @click.option("-v", "--verbose", is_flag=True,
                  help="Log requests, libbpf's and the OTLP exporter's messages, tracebacks.")
    def exporter(config: str | None, listen: str, api: bool, api_token_file: str | None,
                 max_series: int, series_ttl: float, queue_size: int,
                 otlp_endpoint: str | None, otlp_interval: float | None,
                 verbose: bool) -> None:
        """Serve Prometheus metrics made from the events and maps of the programs in CONFIG
        (YAML or JSON, eunomia-exporter's format: programs with counters, histograms, gauges).

        CONFIG may be left out with --api: programs then come through POST /start.
        With an otlp block in CONFIG or --otlp-endpoint the same metrics (and, for programs
        with 'logs: true', their events as logs) are also pushed over OTLP.
        """
        from .exporter.server import ServerOptions, serve

        _setup_logging(verbose)
        if config is None and not api:
            raise click.UsageError("give a CONFIG file, or --api to start programs through the "
                                   "control API")
        serve(ServerOptions(config=config, listen=listen, api=api, api_token_file=api_token_file,
                            max_series=max_series, series_ttl=series_ttl,
                            queue_size=queue_size, verbose=verbose,
                            otlp_endpoint=otlp_endpoint, otlp_interval=otlp_interval),
              _echo_err)
    return exporter


def _cmd_push() -> click.Command:
    @click.command()
    @click.argument("package", metavar="[PACKAGE | APP.wasm]", required=False)
    @click.argument("ref", metavar="REF", required=False)
    @click.option("-m", "--module", metavar="APP.wasm",
                  help="Push this WebAssembly module (as eunomia's ecli does); REF is then "
                       "the only argument.")
    @click.option("--plain-http", is_flag=True, help="The registry speaks http, not https.")
    @click.option("--arch", metavar="ARCH",
                  help="Target architecture to annotate a package with (default: the host's).")
    @click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
    def push(package: str | None, ref: str | None, module: str | None, plain_http: bool,
             arch: str | None, verbose: bool) -> None:
        """Push PACKAGE (a package.json) or a WebAssembly module (APP.wasm, or any file that
        starts like one; or --module APP.wasm) to an OCI registry as REF
        (HOST[:PORT]/REPO:TAG, oci:// optional); prints the manifest digest.

        A module is stored as eunomia's ecli stores one (config
        application/vnd.wasm.config.v1+json, layer application/vnd.wasm.content.layer.v1+wasm),
        so ecli pulls what ecc pushes and the other way round.

        Credentials come from the Docker config ($DOCKER_CONFIG/config.json or
        ~/.docker/config.json).
        """
        from .oci import is_module_file, push_module, push_package

        _setup_logging(verbose)
        path: str | None
        target: str | None
        if module is not None:
            if ref is not None:
                raise click.UsageError("with --module APP.wasm, give only REF (not also "
                                       "PACKAGE)")
            path, target = module, package
        else:
            path, target = package, ref
        if path is None or target is None:
            raise click.UsageError("give PACKAGE REF, APP.wasm REF or --module APP.wasm REF")
        if module is not None or is_module_file(path):
            if arch is not None:
                raise click.UsageError("--arch annotates an eBPF package; a WebAssembly module "
                                       "is pushed without it")
            digest = push_module(path, target, plain_http=plain_http)
        else:
            from .arch import host_arch

            digest = push_package(path, target, arch=arch or host_arch(),
                                  plain_http=plain_http)
        click.echo(f"ecc: pushed {path} to {target}", err=True)
        click.echo(digest)
    return push


def _cmd_pull() -> click.Command:
    @click.command()
    @click.argument("ref", metavar="REF")
    @click.option("-o", "--output", metavar="FILE",
                  help="Where to write it (default: ./package.json, or ./<REPO>.wasm for a "
                       "WebAssembly module, REPO being the last part of the repository).")
    @click.option("--plain-http", is_flag=True, help="The registry speaks http, not https.")
    @click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
    def pull(ref: str, output: str | None, plain_http: bool, verbose: bool) -> None:
        """Pull the package or WebAssembly module at REF (HOST[:PORT]/REPO:TAG or
        @sha256:DIGEST) from an OCI registry, verify it, and write it; prints the manifest
        digest.
        """
        from .oci import pull_to_file

        _setup_logging(verbose)
        pulled, path = pull_to_file(ref, output, plain_http=plain_http)
        click.echo(f"ecc: pulled {pulled.reference} to {path}", err=True)
        click.echo(pulled.digest)
    return pull


def _cmd_init() -> click.Command:
    @click.command()
    @click.argument("name", metavar="NAME")
    @click.option("--ecc-package", metavar="SPEC",
                  help="What the project's CI workflow installs ecc from with pip (a requirement, "
                       "wheel URL or git URL; default: ecc-bpf==VERSION from PyPI, the "
                       "release that wrote the project).")
    def init(name: str, ecc_package: str | None) -> None:
        """Create the project folder NAME: a commented NAME.bpf.c (ring buffer events, an
        option), NAME.h, a README, a .gitignore and a GitHub Actions workflow that builds it.
        """
        from .init import ECC_PACKAGE, init_project

        files = init_project(name, ecc_package or ECC_PACKAGE)
        click.echo(f"ecc: created {name}/ ({len(files)} files); next: "
                   f"cd {name} && ecc build {os.path.basename(os.path.normpath(name))}.bpf.c "
                   f"{os.path.basename(os.path.normpath(name))}.h", err=True)
    return init


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
        ("--force", "__force", {"is_flag": True,
                                "help": "Load a package built for another architecture."}),
    ):
        if decl not in taken:
            params.append(click.Option([decl, name], **kwargs))  # type: ignore[arg-type]
    doc = loaded.meta["bpf_skel"].get("doc")
    doc = doc if isinstance(doc, dict) else {}
    summary = doc.get("brief") or doc.get("description") or ""
    details = doc.get("details") or ""
    return click.Command(_program_name(loaded), params=params,
                         help="\n\n".join(str(x) for x in (summary, details) if x) or None,
                         context_settings={"help_option_names": ["-h", "--help"]}), specs


def _section_values(loaded: Any, specs: list[Any], params: dict[str, Any]) -> dict[str, bytes]:
    from .run.sections import section_overrides

    values = {spec.long: params[f"opt{index}"] for index, spec in enumerate(specs)
              if params.get(f"opt{index}") is not None}
    return section_overrides(loaded, values, specs)


def _run_loaded(loaded: Any, opts: Any) -> None:
    from .run.loader import run_package

    run_package(loaded, opts, sys.stdout, _echo_err)


def _cmd_doctor() -> click.Command:
    @click.command()
    @click.option("-c", "--clang-bin", "clang", metavar="PATH", help="clang to check.")
    @click.option("-l", "--llvm-strip-bin", "llvm_strip", metavar="PATH",
                  help="llvm-strip to check.")
    @click.option("--bpftool-bin", "bpftool", metavar="PATH", help="bpftool to check.")
    def doctor(clang: str | None, llvm_strip: str | None, bpftool: str | None) -> None:
        """Check the toolchain and this machine: clang and its BPF target, CO-RE, llvm-strip,
        libbpf headers, bpftool, kernel BTF, bpffs and tracefs. Each failure says the fix."""
        from .doctor import all_checks

        checks = all_checks(clang, llvm_strip, bpftool)
        for check in checks:
            click.echo(check.line())
        failed = [c.name for c in checks if c.failed]
        if failed:
            raise EccError(f"{len(failed)} of {len(checks)} checks failed ({', '.join(failed)}); "
                           f"each FAIL line above says the fix")
        click.echo(f"ecc: all {len(checks)} checks passed", err=True)
    return doctor


def _cmd_check() -> click.Command:
    @click.command()
    @click.argument("packages", nargs=-1, required=True, metavar="PACKAGE...")
    @click.option("--kernel", "kernels", multiple=True, metavar="BTF",
                  help="Judge the package against this kernel's BTF (repeatable), e.g. "
                       "/sys/kernel/btf/vmlinux or a BTFHub .btf / .btf.tar.xz file.")
    @click.option("--btfhub-archive", "archive", metavar="DIR",
                  help="Judge it against every kernel of a local BTFHub archive.")
    @click.option("--json", "as_json", is_flag=True,
                  help="With --kernel/--btfhub-archive: print everything as JSON.")
    @click.option("--require-all", is_flag=True,
                  help="With --kernel/--btfhub-archive: exit 1 when any kernel fails.")
    @click.option("-j", "--jobs", type=click.IntRange(1), default=None,
                  help="Processes judging kernels (default: one per CPU).")
    def check(packages: tuple[str, ...], kernels: tuple[str, ...], archive: str | None,
              as_json: bool, require_all: bool, jobs: int | None) -> None:
        """Check each PACKAGE (package.json or .yaml, a --btfgen .tar, a .skel file beside
        its .bpf.o, a --standalone file, or - for standard input) against the package
        schema, against its own object, and through libbpf. Every problem is one line;
        the exit status is 1 when any package has one.

        With --kernel or --btfhub-archive, say instead which kernels can run it: every
        CO-RE relocation resolved against each kernel's BTF by libbpf's rules, and the
        program types, attach points, map types, helpers and kfuncs it needs. One line
        per kernel: OK, or the first failing item and how many fail."""
        if kernels or archive:
            _check_kernels(packages, kernels, archive, as_json, require_all, jobs)
            return
        if as_json or require_all:
            raise click.UsageError("--json and --require-all go with --kernel or "
                                   "--btfhub-archive")
        from .check import check_file

        bad = 0
        for path in packages:
            result = check_file(path)
            for line in (*result.problems, *result.notes):
                click.echo(line)
            if result.ok:
                click.echo(f"{result.origin}: ok ({result.checked})")
            else:
                bad += 1
        if bad:
            raise EccError(f"{bad} of {len(packages)} package{'s' if len(packages) > 1 else ''} "
                           f"failed the check; each line above names the field")

    def _check_kernels(packages: tuple[str, ...], kernels: tuple[str, ...],
                       archive: str | None, as_json: bool, require_all: bool,
                       jobs: int | None) -> None:
        import json

        from .check import check_kernels

        reports = [check_kernels(path, kernels, archive, jobs) for path in packages]
        if as_json:
            click.echo(json.dumps([r.as_dict() for r in reports] if len(reports) > 1
                                  else reports[0].as_dict(), indent=2))
        else:
            for report in reports:
                for warning in report.warnings:
                    click.echo(f"ecc: warning: {warning}", err=True)
                for line in report.lines():
                    click.echo(line)
        failed = sum(r.failed for r in reports)
        if failed and require_all:
            raise EccError(f"{failed} kernel{'s' if failed > 1 else ''} cannot run the "
                           "package (--require-all)")
    return check


def _cmd_cache() -> click.Command:
    @click.command()
    @click.argument("action", type=click.Choice(["info", "clean"]), default="info")
    def cache(action: str) -> None:
        """ACTION info (the default): the cache folder, its size against its limit
        (ECC_CACHE_MAX, default 1G), its entries and how often builds found their
        precompiled header there. ACTION clean: empty it (entries being made stay)."""
        from .compiler import cachecmd

        if action == "clean":
            click.echo(cachecmd.clean().line())
        else:
            for line in cachecmd.info().lines():
                click.echo(line)
    return cache


def parse_build_args(args: Sequence[str]) -> BuildOptions:
    """The BuildOptions that ``ecc build ARGS`` would use (for tests and golden cases)."""
    from .buildcmd import build_options

    return build_options(command("build").make_context("build", list(args)).params)


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
        report_error(exc, args)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)
