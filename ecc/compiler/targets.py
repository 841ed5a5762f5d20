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
from typing import TYPE_CHECKING, NamedTuple

from ..arch import TARGET_ARCHES, parse_arch_list
from ..errors import EccError

if TYPE_CHECKING:
    from .link import LinkSpec
    from .pipeline import BuildOptions
    from .result import BuildResult


# A NamedTuple, not a dataclass: made before clang starts (see pipeline.py).
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
    from .pipeline import Outputs, build

    several = len(targets) > 1
    root = Outputs.folder_for(template.output_dir, first_source(template, link))
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


def first_source(template: BuildOptions, link: LinkSpec | None) -> str:
    """The source whose folder the outputs go to when no -o is given."""
    return link.sources[0] if link is not None else template.source
