"""WebAssembly user space: a wasm32 guest program that drives a BPF object.

``build_wasm`` writes, beside a built object, what a guest written against
the wasm-bpf guest SDK needs: ``<stem>.skel.h`` (the object inside, bpftool's
skeleton API), ``<stem>.wasm.h`` (the export header's structs laid out for
wasm32), and compiles the guest's C programs to ``.wasm`` against them and
ecc's ``libbpf-wasm.h`` (include/).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from ecc.btf import Btf, parse_btf
from ecc.elf import read_object
from ecc.errors import CompileError

from .app import GUEST_INCLUDE_DIR, compile_app
from .exportheader import export_header
from .skeleton import skeleton_header

__all__ = ["GUEST_INCLUDE_DIR", "build_wasm", "compile_app", "export_header",
           "skeleton_header", "wasm_outputs"]


def wasm_outputs(apps: Sequence[str], out_dir: str, stem: str) -> dict[str, str]:
    """app -> the .wasm it becomes: ``<stem>.wasm`` for one app, else each
    ``<app's stem>.wasm``."""
    if len(apps) == 1:
        return {apps[0]: os.path.join(out_dir, f"{stem}.wasm")}
    outputs: dict[str, str] = {}
    for app in apps:
        base = os.path.basename(app).split(".", 1)[0] or os.path.basename(app)
        path = os.path.join(out_dir, f"{base}.wasm")
        clash = next((a for a, p in outputs.items() if p == path), None)
        if clash is not None:
            raise CompileError(f"{app}: would be {base}.wasm, as {clash} is; give the wasm "
                               "programs different file names")
        outputs[app] = path
    return outputs


def build_wasm(object_bytes: bytes, meta: Mapping[str, Any], btf: Btf | None,
               export_structs: Sequence[str], apps: Sequence[str], out_dir: str, stem: str, *,
               header: str | None = None, clang: str | None = None,
               cflags: Sequence[str] = ()) -> list[str]:
    """Write ``<stem>.skel.h``, ``<stem>.wasm.h`` and one .wasm per app into ``out_dir``.

    ``object_bytes`` is the object that will be loaded (ecc's stripped one);
    ``meta`` the package's meta (or its ``bpf_skel``); ``btf`` the object's,
    parsed (None: parsed here); ``export_structs`` the struct names of the
    export header, named ``header`` in errors. Returns the paths written.

    Nothing is written when a header cannot be generated. The headers are then
    written (each whole, by rename) before any app is compiled, since an app's
    folder is searched first and may be ``out_dir``: an older skeleton there
    must not be what it compiles against. The .wasm files are renamed into place
    only when every app compiled; on a failure no .wasm of this call is.
    """
    obj = read_object(object_bytes)
    if btf is None:
        if obj.btf is None:
            raise CompileError(f"{stem}.bpf.o: the object has no .BTF section; build it "
                               "with -g (ecc build does)")
        btf = parse_btf(obj.btf)
    outputs = wasm_outputs(apps, out_dir, stem)
    for app in apps:
        if not os.path.isfile(app):
            raise CompileError(f"{app}: no such file; give the wasm program's C source")
    texts = {
        f"{stem}.skel.h": skeleton_header(object_bytes, obj, btf, meta, stem=stem,
                                          origin=f"{stem}.bpf.o"),
        f"{stem}.wasm.h": export_header(btf, export_structs, stem=stem,
                                        origin=header or f"{stem}.h"),
    }
    os.makedirs(out_dir, exist_ok=True)
    written: list[str] = []
    for name, text in texts.items():
        path = os.path.join(out_dir, name)
        _write_atomic(path, text.encode())
        written.append(path)
    staged: list[tuple[str, str]] = []
    try:
        for app, final in outputs.items():
            fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(final)}.", dir=out_dir)
            os.close(fd)
            staged.append((temp, final))
            compile_app(app, temp, out_dir, clang=clang, cflags=cflags)
        for temp, final in staged:
            os.chmod(temp, 0o644)
            os.replace(temp, final)
            written.append(final)
        staged.clear()
    finally:
        for temp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    return written


def _write_atomic(path: str, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
