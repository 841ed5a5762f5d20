"""One kernel's verdict on one object, and the matrix and JSON that show many."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..btf import Btf, parse_btf
from ..elf import read_object
from ..errors import BtfError
from . import features as feat
from .btfext import CoreRelo, ProgramCode, read_core_relos, read_programs
from .relo import ERROR, Resolution, lookup_names, resolve_all
from .target import index_target
from .versions import Version

_VERSION = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True)
class ObjectFacts:
    """What of a BPF object every kernel is checked for, read once."""

    btf: Btf
    relos: tuple[CoreRelo, ...]
    programs: dict[str, ProgramCode]
    features: tuple[feat.Feature, ...]
    names: frozenset[str]   # the BTF names a target is searched for


@dataclass(frozen=True)
class KernelVerdict:
    kernel: str
    version: Version | None
    relocations: tuple[Resolution, ...]
    features: tuple[feat.FeatureCheck, ...]
    error: str = ""   # the kernel's BTF could not be read

    @property
    def failures(self) -> list[str]:
        """Every reason this kernel cannot run the object, most telling first."""
        if self.error:
            return [self.error]
        out = [_relo_line(r) for r in self.relocations if r.failing]
        out += [f"{c.feature.what} {c.feature.name} ({', '.join(c.feature.users)}): {c.why}"
                for c in self.features if c.outcome == feat.FAIL]
        return out

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, object]:
        return {"kernel": self.kernel,
                "version": ".".join(map(str, self.version)) if self.version else None,
                "ok": self.ok, "error": self.error or None, "failures": self.failures,
                "guarded": [r.as_dict() for r in self.relocations if r.guarded_by],
                "relocations": [r.as_dict() for r in self.relocations],
                "features": [c.as_dict() for c in self.features]}


def _relo_line(r: Resolution) -> str:
    what = "refused" if r.outcome == ERROR else "unresolved, reachable"
    return f"{r.relo.program}: {r.access} ({r.kind}, {what}: {r.detail})"


def kernel_version(name: str) -> Version | None:
    """The X.Y a kernel file's name starts with (BTFHub names files by ``uname -r``)."""
    base = name.rsplit("/", 1)[-1]
    match = _VERSION.match(base)
    return (int(match.group(1)), int(match.group(2))) if match else None


def analyze_object(object_bytes: bytes) -> ObjectFacts:
    """Read an object's relocations, programs and needs; ElfError/BtfError when malformed."""
    obj = read_object(object_bytes)
    if obj.btf is None:
        raise BtfError("the object has no .BTF section: nothing to check CO-RE against")
    btf = parse_btf(obj.btf)
    relos = read_core_relos(obj, object_bytes, btf)
    programs = read_programs(obj, object_bytes)
    needs = feat.object_features(obj, btf, programs)
    names = frozenset(lookup_names(btf, relos) | feat.lookup_names(needs))
    return ObjectFacts(btf, relos, programs, needs, names)


def check_kernel(facts: ObjectFacts, kernel: str, btf_bytes: bytes,
                 version: Version | None) -> KernelVerdict:
    """The verdict of one kernel (its raw BTF) on the object."""
    try:
        target = index_target(btf_bytes, facts.names)
        relocations = resolve_all(facts.btf, facts.relos, target, facts.programs)
        checks = feat.check_features(facts.features, target, version)
    except BtfError as exc:
        return KernelVerdict(kernel, version, (), (), f"its BTF cannot be read: {exc}")
    return KernelVerdict(kernel, version, relocations, checks)


def matrix(verdicts: list[KernelVerdict]) -> list[str]:
    """One line per kernel: OK, or FAIL with the first failing item and how many fail."""
    width = max([len(v.kernel) for v in verdicts] + [6])
    lines = [f"{'KERNEL':<{width}}  {'VERSION':<8} RESULT"]
    for v in verdicts:
        version = ".".join(map(str, v.version)) if v.version else "?"
        failures = v.failures
        guarded = sum(1 for r in v.relocations if r.guarded_by)
        if not failures:
            note = f" ({guarded} guarded)" if guarded else ""
            lines.append(f"{v.kernel:<{width}}  {version:<8} OK{note}")
        else:
            more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
            lines.append(f"{v.kernel:<{width}}  {version:<8} FAIL {len(failures)}: "
                         f"{failures[0]}{more}")
    return lines
