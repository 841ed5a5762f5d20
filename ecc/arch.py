"""Target architectures: the names libbpf's ``__TARGET_ARCH_*`` knows, and the host's.

Shared by ``build`` (which arch to compile for) and ``run`` (is this package
for this machine?), which must not import each other.
"""

from __future__ import annotations

import os

from .errors import EccError

# uname -m -> the __TARGET_ARCH_* suffix libbpf's bpf_tracing.h knows.
HOST_ARCHES = {
    "x86_64": "x86", "i386": "x86", "i686": "x86", "amd64": "x86",
    "aarch64": "arm64", "arm64": "arm64",
    "ppc64le": "powerpc", "ppc64": "powerpc",
    "mips": "mips", "mips64": "mips",
    "riscv64": "riscv",
    "s390x": "s390",
    "loongarch64": "loongarch",
}
TARGET_ARCHES = ("x86", "arm64", "powerpc", "mips", "riscv", "s390", "loongarch", "arm")


def host_arch() -> str:
    # os.uname, not platform.machine: the same string, without platform's import (~1.5 ms).
    machine = os.uname().machine.lower()
    arch = HOST_ARCHES.get(machine)
    if arch is None:
        raise EccError(f"unknown host architecture '{machine}'; give one with --arch")
    return arch


def parse_arch_list(text: str) -> tuple[str, ...]:
    """``x86,arm64`` -> ``("x86", "arm64")``: each known, none twice, order kept."""
    arches: list[str] = []
    for part in text.split(","):
        arch = part.strip()
        if arch not in TARGET_ARCHES:
            raise EccError(f"--arch {arch or text}: unknown; use one of "
                           f"{', '.join(TARGET_ARCHES)} (several: --arch x86,arm64)")
        if arch in arches:
            raise EccError(f"--arch {text}: {arch} is given twice")
        arches.append(arch)
    return tuple(arches)
