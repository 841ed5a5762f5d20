"""Which vmlinux.h a program is compiled against, one decision per target arch; and
supplying it when the program includes it and the user has none."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..arch import host_arch
from ..errors import EccError
from . import tools
from .cache import cache_dir, key_digest, locked
from .compile import search_dir_flags

if TYPE_CHECKING:
    from .pipeline import BuildOptions

KERNEL_BTF = "/sys/kernel/btf/vmlinux"
_INCLUDES_VMLINUX = re.compile(r'^[ \t]*#[ \t]*include[ \t]*[<"]vmlinux\.h[">]', re.M)


def choose(opts: BuildOptions, source: str, source_text: str, header_text: str | None,
           arch: str, workspace: str) -> tuple[bool, str | None]:
    """Whether the program includes vmlinux.h, and the folder ecc puts on -I for it:
    --vmlinux's, one made from --btf, one made from the running kernel's BTF when the
    program has none of its own, or None."""
    source_dir = os.path.dirname(os.path.abspath(source))
    wants = includes_vmlinux(source_text) or (
        header_text is not None and includes_vmlinux(header_text))
    folder = None
    if opts.vmlinux:
        folder = header_dir_for(opts.vmlinux, workspace)
    elif opts.btf:
        folder = generated_header_dir(_existing(opts.btf, "--btf"),
                                      source_name=os.path.basename(source), bpftool=opts.bpftool)
    elif wants and not has_own_vmlinux(source_dir, opts.cflags):
        _check_host(arch, source)  # the kernel's own BTF is for the host's arch
        folder = generated_header_dir(source_name=os.path.basename(source), bpftool=opts.bpftool)
    if folder is not None:
        _check_not_shadowed(opts, source_dir, folder)
    return wants, folder


def _existing(path: str, option: str) -> str:
    if not os.path.isfile(path):
        raise EccError(f"{option} {path}: no such file")
    return path


def _check_host(arch: str, source: str) -> None:
    """The vmlinux.h ecc generates comes from the running kernel: the host's arch only."""
    host = host_arch()
    if arch != host:
        raise EccError(
            f"{os.path.basename(source)} includes vmlinux.h, but the one ecc makes from this "
            f"machine's kernel is for {host}, not {arch}; give an {arch} one with "
            f"--vmlinux FILE, or --btf FILE (the BTF of an {arch} kernel)")


def _check_not_shadowed(opts: BuildOptions, source_dir: str, folder: str) -> None:
    """A vmlinux.h beside the source (or on -I) is found first; it must not shadow
    the one the user asked for by name."""
    if not (opts.vmlinux or opts.btf):
        return
    own = resolve_header(source_dir, opts.cflags, [])
    wanted = os.path.join(folder, "vmlinux.h")
    if own is not None and os.path.realpath(own) != os.path.realpath(wanted):
        option = "--vmlinux" if opts.vmlinux else "--btf"
        raise EccError(
            f"{own} would be included instead of the vmlinux.h of {option} (the program's "
            f"folder and -I folders come first); move it away or drop {option}")


def includes_vmlinux(text: str) -> bool:
    return _INCLUDES_VMLINUX.search(text) is not None


def user_include_dirs(source_dir: str, cflags: Sequence[str]) -> list[str]:
    """Folders where clang would find the user's own vmlinux.h: beside the source, then -I."""
    return [source_dir, *(folder for _, folder in search_dir_flags(cflags))]


def resolve_header(source_dir: str, cflags: Sequence[str],
                   extra_dirs: Sequence[str]) -> str | None:
    """The vmlinux.h clang will include: the user's first, then the one ecc supplies."""
    for d in [*user_include_dirs(source_dir, cflags), *extra_dirs]:
        candidate = os.path.join(d, "vmlinux.h")
        if os.path.isfile(candidate):
            return candidate
    return None


def has_own_vmlinux(source_dir: str, cflags: Sequence[str]) -> bool:
    return any(os.path.isfile(os.path.join(d, "vmlinux.h"))
               for d in user_include_dirs(source_dir, cflags))


def header_dir_for(explicit: str, workspace: str) -> str:
    """A folder where ``#include "vmlinux.h"`` finds the file the user named with --vmlinux.

    A file with another name (``arm64-vmlinux.h``) gets a symlink named
    vmlinux.h in a folder of the cache named after its path: a stable folder,
    so that the precompiled-header key (which holds the -I folders) is the same
    from one build to the next, and the header is still there when the build
    hashes it for provenance. ``workspace`` is kept for callers.
    """
    path = os.path.realpath(explicit)
    if not os.path.isfile(path):
        raise EccError(f"--vmlinux {explicit}: no such file")
    if os.path.basename(path) == "vmlinux.h":
        return os.path.dirname(path)
    link_dir = cache_dir() / "vmlinux" / "links" / key_digest(path, 24)
    link = link_dir / "vmlinux.h"
    if not (link.is_symlink() and os.readlink(link) == path):
        link_dir.mkdir(parents=True, exist_ok=True)
        tmp = link_dir / f".vmlinux.h.{os.getpid()}.{threading.get_ident()}"
        tmp.unlink(missing_ok=True)
        os.symlink(path, tmp)
        os.replace(tmp, link)  # atomic: a parallel build sees the old link or the new
    return str(link_dir)


def generated_header_dir(btf_path: str = KERNEL_BTF, *, source_name: str,
                         bpftool: str | None = None) -> str:
    """The cached vmlinux.h generated from the kernel's BTF; made on first use.

    Keyed by the BTF's content so a kernel update makes a new header instead of
    silently reusing a stale one.
    """
    folder = _known_kernel_folder(btf_path)
    if folder is not None and (folder / "vmlinux.h").is_file():
        return str(folder)
    try:
        btf = Path(btf_path).read_bytes()
    except OSError as exc:
        raise EccError(
            f"{source_name} includes vmlinux.h, but there is none beside it or on -I, and "
            f"the kernel BTF {btf_path} cannot be read ({exc.strerror}); give one with "
            f"--vmlinux FILE (made by: bpftool btf dump file <vmlinux> format c)"
        ) from exc
    import hashlib

    digest = hashlib.sha256(btf).hexdigest()[:24]
    folder = cache_dir() / "vmlinux" / digest
    header = folder / "vmlinux.h"
    # Made once, never rewritten: a precompiled header keyed by this file's
    # mtime must not see it change under it.
    with locked(folder):
        if not (header.is_file() and header.stat().st_size > 0):
            tool = tools.find_tool("bpftool", bpftool)
            result = tools.run([tool, "btf", "dump", "file", btf_path, "format", "c"],
                               what="generating vmlinux.h from the kernel's BTF")
            if not result.stdout.strip():
                raise EccError(f"bpftool produced an empty vmlinux.h from {btf_path}")
            from ..package import write_atomic

            write_atomic(str(header), result.stdout)
    _remember_kernel_folder(btf_path, folder)
    return str(folder)


def _boot_key(btf_path: str) -> str | None:
    """The running kernel's BTF cannot change until a reboot: boot id + size name it.

    That spares hashing 6 MB on every build; other BTF files are always hashed.
    """
    if btf_path != KERNEL_BTF:
        return None
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()
        return f"{boot}-{os.path.getsize(btf_path)}"
    except OSError:
        return None


def _known_kernel_folder(btf_path: str) -> Path | None:
    key = _boot_key(btf_path)
    if key is None:
        return None
    try:
        digest = (cache_dir() / "vmlinux" / "boots" / key).read_text().strip()
    except OSError:
        return None
    return cache_dir() / "vmlinux" / digest if digest.isalnum() else None


def _remember_kernel_folder(btf_path: str, folder: Path) -> None:
    key = _boot_key(btf_path)
    if key is None:
        return
    from ..package import write_atomic

    try:
        (cache_dir() / "vmlinux" / "boots").mkdir(parents=True, exist_ok=True)
        write_atomic(str(cache_dir() / "vmlinux" / "boots" / key), folder.name)
    except OSError:
        pass
