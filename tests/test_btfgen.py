"""`ecc build --btfgen` and `ecc run` of its tar (issue 8).

The BTF archive is made from this machine's own kernel BTF, filed under two
made-up distro/version paths (one as BTFHub's .btf.tar.xz). A kernel without
BTF cannot exist here, so the automatic choice for such a kernel is tested by
calling `choose_btf` with the host described; everything else runs for real:
clang, bpftool, the kernel.
"""

from __future__ import annotations

import io
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from conftest import EXAMPLES, require
from runner import EccRun, exec_row, run_child

from ecc.btf import Kind, parse_btf
from ecc.compiler.btfgen import MAX_BTF_BYTES, tar_bytes, write_btfgen_tar
from ecc.errors import EccError, PackageError
from ecc.run.btfarchive import Host, choose_btf, parse_os_release

VMLINUX = Path("/sys/kernel/btf/vmlinux")
M = os.uname().machine
PLAIN = f"ubuntu/20.04/{M}/5.4.0-99-fake.btf"
PACKED = f"centos/8/{M}/4.18.0-99.fake.el8.btf"
BOOTSTRAP = EXAMPLES / "bootstrap"
GIB = 1 << 30
# A valid BTF with no types at all: CO-RE cannot resolve anything against it.
EMPTY_BTF = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, 1) + b"\0"


def ecc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecc", *args], capture_output=True, text=True,
                          check=False)


def info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE,
         link: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size, member.type, member.linkname = size, kind, link
    return member


def write_tar(path: Path, members: Iterable[tuple[tarfile.TarInfo, bytes]], mode: str) -> None:
    extra = {"preset": 0} if mode == "w:xz" else {}  # the fastest xz: the archive is made per run
    with tarfile.open(path, mode, **extra) as tar:  # type: ignore[call-overload]
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if member.isreg() else None)


def declared_only(name: str, size: int) -> bytes:
    """A tar header claiming `size` bytes, with almost none of them: no GBs are written."""
    return info(name, size).tobuf(tarfile.PAX_FORMAT) + b"\0" * 1024


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("kernel-btf")  # the archive is made from it
    root = tmp_path_factory.mktemp("btfhub-archive")
    (root / PLAIN).parent.mkdir(parents=True)
    shutil.copyfile(VMLINUX, root / PLAIN)
    (root / PACKED).parent.mkdir(parents=True)
    vmlinux = VMLINUX.read_bytes()
    write_tar(root / (PACKED + ".tar.xz"), [(info(Path(PACKED).name, len(vmlinux)), vmlinux)],
              "w:xz")
    (root / ".git").mkdir()  # a BTFHub checkout's own files are not kernels
    (root / ".git" / "x.btf").write_bytes(b"no")
    (root / "README.md").write_text("BTFHub archive\n")
    return root


@pytest.fixture(scope="module")
def built(archive: Path, tmp_path_factory: pytest.TempPathFactory, cache_env: Path) -> Path:
    require("clang")
    out = tmp_path_factory.mktemp("btfgen-out")
    result = ecc("build", "--btfgen", "--btfhub-archive", str(archive),
                 str(BOOTSTRAP / "bootstrap.bpf.c"), str(BOOTSTRAP / "bootstrap.h"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return out


def test_tar_holds_package_object_and_minimized_btf(built: Path) -> None:
    with tarfile.open(built / "bootstrap.tar") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == ["package.json", "bootstrap.bpf.o", f"btfhub-archive/{PACKED}",
                         f"btfhub-archive/{PLAIN}"]
        assert all(m.isreg() and m.mode == 0o644 and m.mtime == 0 and m.uid == 0
                   for m in members)
        content = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    assert content["package.json"] == (built / "package.json").read_bytes()
    assert content["bootstrap.bpf.o"] == (built / "bootstrap.bpf.o").read_bytes()
    full = VMLINUX.stat().st_size
    for rel in (PLAIN, PACKED):
        small = content[f"btfhub-archive/{rel}"]
        print(f"{rel}: {full} -> {len(small)} bytes, {full / len(small):.0f}x smaller")
        assert len(small) * 100 < full
        btf = parse_btf(small)
        assert btf.by_name("task_struct", Kind.STRUCT) is not None


def test_tar_is_reproducible(built: Path, archive: Path, tmp_path: Path) -> None:
    again = write_btfgen_tar(str(archive), stem="bootstrap", out_dir=str(tmp_path),
                             object_bytes=(built / "bootstrap.bpf.o").read_bytes(),
                             package_json=(built / "package.json").read_text())
    assert Path(again.path).read_bytes() == (built / "bootstrap.tar").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["bootstrap.tar"]  # no temp file left behind


def test_run_with_minimized_btf_file(built: Path, kernel: None, tmp_path: Path) -> None:
    """`--btf FILE` with a minimized BTF from the tar: load, attach, decode an exec."""
    with tarfile.open(built / "bootstrap.tar") as tar:
        member = tar.extractfile(f"btfhub-archive/{PACKED}")
        assert member is not None
        btf_file = tmp_path / "min.btf"
        btf_file.write_bytes(member.read())
    run = EccRun("--json", "--duration", "8", "--btf", str(btf_file), str(built / "bootstrap.tar"))
    run.wait_ready()
    row = exec_row(run)
    assert (row["comm"], row["filename"], row["ppid"]) == ("true", "/bin/true", os.getpid())


def test_run_with_tar_entry(built: Path, kernel: None) -> None:
    """`--btf` may name an entry of the tar instead of a file."""
    tar = str(built / "bootstrap.tar")
    run = EccRun("-v", "--json", "--duration", "8", "--btf", PLAIN, tar)
    run.wait_ready()
    pid = run_child(["/bin/true"])
    assert run.wait_for(lambda: any(r["pid"] == pid for r in run.json_rows()))
    assert run.stop() == 0
    assert f"ecc: using BTF {PLAIN} from {tar}" in run.err


def test_run_prefers_the_kernels_own_btf(built: Path, kernel: None) -> None:
    tar = str(built / "bootstrap.tar")
    run = EccRun("-v", "--duration", "1", tar)
    assert run.wait(30) == 0
    assert (f"ecc: the kernel has its own BTF (/sys/kernel/btf/vmlinux); not using those in "
            f"{tar}") in run.err
    assert any(line.startswith("ecc: running bootstrap") for line in run.err)


def test_chosen_entry_reaches_libbpf(built: Path, kernel: None, tmp_path: Path) -> None:
    """An entry without the program's types makes CO-RE fail: proof libbpf relocated with it."""
    tar = tmp_path / "empty.tar"
    tar.write_bytes(tar_bytes([("package.json", (built / "package.json").read_bytes()),
                               (f"btfhub-archive/none/1/{M}/k.btf", EMPTY_BTF)]))
    result = ecc("run", "--duration", "2", "--btf", f"none/1/{M}/k.btf", str(tar))
    assert "failed to resolve CO-RE relocation" in result.stderr, result.stderr
    assert "struct task_struct" in result.stderr


def test_choose_btf_for_a_kernel_without_btf(tmp_path: Path) -> None:
    archive = {PLAIN: b"plain", PACKED: b"packed"}
    host = Host("centos", "8", M, "4.18.0-99.fake.el8")
    absent = str(tmp_path / "no-vmlinux")
    choice = choose_btf(archive, "p.tar", None, host=host, kernel_btf=absent)
    assert choice.name == PACKED and choice.path is not None
    assert Path(choice.path).read_bytes() == b"packed"
    # The kernel's own BTF wins when it has one; --btf wins over everything.
    own = tmp_path / "vmlinux"
    own.write_bytes(b"")
    assert choose_btf(archive, "p.tar", None, host=host, kernel_btf=str(own)).path is None
    forced = choose_btf(archive, "p.tar", f"btfhub-archive/{PLAIN}", host=host,
                        kernel_btf=absent)
    assert forced.name == PLAIN
    other = Host("debian", "12", M, "6.1.0-9")
    with pytest.raises(PackageError) as exc:
        choose_btf(archive, "p.tar", None, host=other, kernel_btf=absent)
    assert str(exc.value) == (
        f"p.tar: holds no BTF for this kernel (debian/12/{M}/6.1.0-9.btf), and the kernel has "
        f"no {absent}; rebuild with --btfgen and an archive that has it, or give --btf FILE")
    with pytest.raises(PackageError) as exc:
        choose_btf(archive, "p.tar", None, host=Host("arch", "", M, "6.9"), kernel_btf=absent)
    assert str(exc.value) == ("p.tar: cannot tell this system's version (no VERSION_ID in "
                              "/etc/os-release) to pick its BTF; give --btf FILE")
    with pytest.raises(EccError) as forced_exc:
        choose_btf(archive, "p.tar", "nope.btf", host=host, kernel_btf=absent)
    assert str(forced_exc.value) == (f"--btf nope.btf: no such file, and p.tar holds no BTF "
                                     f"of that name (it holds {PACKED}, {PLAIN})")


def test_os_release_values() -> None:
    text = 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="20.04"\n# comment\nID_LIKE=debian\n'
    values = parse_os_release(text)
    assert (values["ID"], values["VERSION_ID"], values["NAME"]) == ("ubuntu", "20.04", "Ubuntu")


def test_hostile_archive_entries_are_skipped(archive: Path, built: Path,
                                             tmp_path: Path) -> None:
    evil = tmp_path / "archive"

    def put(rel: str) -> Path:
        path = evil / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    write_tar(put(f"evil/1/{M}/trav.btf.tar.xz"), [(info("../trav.btf", 3), b"abc")], "w:xz")
    write_tar(put(f"evil/2/{M}/abs.btf.tar.xz"), [(info("/etc/abs.btf", 3), b"abc")], "w:xz")
    write_tar(put(f"evil/3/{M}/link.btf.tar.xz"),
              [(info("link.btf", kind=tarfile.SYMTYPE, link="/etc/passwd"), b"")], "w:xz")
    write_tar(put(f"evil/4/{M}/dev.btf.tar.xz"), [(info("dev.btf", kind=tarfile.CHRTYPE), b"")],
              "w:xz")
    put(f"evil/5/{M}/huge.btf.tar.xz").write_bytes(
        lzma.compress(declared_only("huge.btf", GIB)))
    with open(put(f"evil/6/{M}/sparse.btf"), "wb") as fh:
        fh.truncate(GIB)  # sparse: no disk space used
    put(f"evil/7/{M}/garbage.btf").write_bytes(os.urandom(4096))
    put(f"evil/8/{M}/symlink.btf").symlink_to(VMLINUX)
    write_tar(put(f"evil/9/{M}/noname.btf.tar.xz"), [(info("other.btf", 3), b"abc")], "w:xz")
    put(f"evil/10/{M}/notxz.btf.tar.xz").write_bytes(b"not xz at all")
    put("toplevel.btf").write_bytes(b"x")
    (evil / "linked").symlink_to(archive, target_is_directory=True)
    shutil.copyfile(VMLINUX, put(f"ok/1/{M}/good.btf"))

    out = tmp_path / "out"
    result = ecc("build", "-b", "--btfhub-archive", str(evil), str(BOOTSTRAP / "bootstrap.bpf.c"),
                 str(BOOTSTRAP / "bootstrap.h"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    e = f"{evil}/evil"
    limit = f"over the {MAX_BTF_BYTES}-byte limit for a kernel BTF; skipped"
    expected = {
        f"{e}/1/{M}/trav.btf.tar.xz: entry '../trav.btf' points outside its folder; skipped",
        f"{e}/2/{M}/abs.btf.tar.xz: entry '/etc/abs.btf' points outside its folder; skipped",
        f"{e}/3/{M}/link.btf.tar.xz: entry 'link.btf' is a symbolic link; skipped",
        f"{e}/4/{M}/dev.btf.tar.xz: entry 'dev.btf' is a character device; skipped",
        f"{e}/5/{M}/huge.btf.tar.xz: entry 'huge.btf' is {GIB} bytes, {limit}",
        f"{e}/6/{M}/sparse.btf: is {GIB} bytes, {limit}",
        f"{e}/7/{M}/garbage.btf: not a valid BTF file (bpftool gen min_core_btf failed; -v shows "
        f"why); skipped",
        f"{e}/8/{M}/symlink.btf: is a symbolic link (links are not followed); skipped",
        f"{e}/9/{M}/noname.btf.tar.xz: holds no noname.btf; skipped",
        f"{e}/10/{M}/notxz.btf.tar.xz: not a readable .tar.xz (invalid compressed data); skipped",
        f"{evil}/toplevel.btf: not at <distro>/<version>/<arch>/<kernel>.btf (or .btf.tar.xz) in "
        f"the archive; skipped",
        f"{evil}/linked: is a symbolic link (links are not followed); skipped",
    }
    lines = result.stderr.splitlines()
    assert {line.removeprefix("ecc: warning: ") for line in lines} == expected
    assert all(line.startswith("ecc: warning: ") for line in lines)
    with tarfile.open(out / "bootstrap.tar") as tar:
        assert tar.getnames() == ["package.json", "bootstrap.bpf.o",
                                  f"btfhub-archive/ok/1/{M}/good.btf"]


def test_archive_with_nothing_usable(tmp_path: Path, built: Path) -> None:
    bad = tmp_path / "archive" / "x" / "1" / M / "bad.btf"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x9f\xeb" + os.urandom(100))
    out = tmp_path / "out"
    result = ecc("build", "--btfgen", "--btfhub-archive", str(tmp_path / "archive"),
                 str(BOOTSTRAP / "bootstrap.bpf.c"), "-o", str(out))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (f"ecc: warning: {bad}: not a valid BTF file (bpftool gen min_core_btf "
                        f"failed; -v shows why); skipped")
    assert lines[1].startswith("bpftool said: Error: failed parsing")
    assert lines[-1] == (f"ecc: error: --btfhub-archive {tmp_path / 'archive'}: none of its 1 "
                         f"kernel BTF files could be used; see the warnings above")
    assert not out.exists() or os.listdir(out) == []  # a failed build writes nothing


@pytest.mark.parametrize(("args", "message"), [
    (["--btfgen"], "--btfgen needs --btfhub-archive DIR, a local BTFHub archive folder "
                   "(<distro>/<version>/<arch>/<kernel>.btf or .btf.tar.xz files); ecc does not "
                   "download one"),
    (["--btfhub-archive", "/tmp"], "--btfhub-archive is only used with --btfgen; add --btfgen"),
    (["-b", "--btfhub-archive", "/nonexistent/btfhub"],
     "--btfhub-archive /nonexistent/btfhub: no such folder; give the BTFHub archive folder"),
])
def test_option_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = ecc("build", *args, str(BOOTSTRAP / "bootstrap.bpf.c"), "-o", str(tmp_path))
    assert (result.returncode, result.stderr) == (1, f"ecc: error: {message}\n")
    assert os.listdir(tmp_path) == []


def test_empty_archive(tmp_path: Path, built: Path) -> None:
    result = ecc("build", "-b", "--btfhub-archive", str(tmp_path),
                 str(BOOTSTRAP / "bootstrap.bpf.c"), "-o", str(tmp_path))
    assert (result.returncode, result.stderr) == (
        1, f"ecc: error: --btfhub-archive {tmp_path}: no kernel BTF found; expected "
           f"<distro>/<version>/<arch>/<kernel>.btf or .btf.tar.xz files\n")


PKG = "btfhub-archive/a/1/x86_64"


@pytest.mark.parametrize(("members", "problem"), [
    ([(info(f"{PKG}/../../../../../x.btf", 3), b"abc")],
     f"entry '{PKG}/../../../../../x.btf' points outside the package; refusing it"),
    ([(info("/etc/x.btf", 3), b"abc")],
     "entry '/etc/x.btf' points outside the package; refusing it"),
    ([(info(f"{PKG}/k.btf", kind=tarfile.SYMTYPE, link="/etc/passwd"), b"")],
     f"entry '{PKG}/k.btf' is a symbolic link; refusing it"),
    ([(info("package.json", kind=tarfile.LNKTYPE, link="/etc/passwd"), b"")],
     "entry 'package.json' is a hard link; refusing it"),
    ([(info(f"{PKG}/k.btf", kind=tarfile.BLKTYPE), b"")],
     f"entry '{PKG}/k.btf' is a block device; refusing it"),
    ([(info("notes.txt", 2), b"hi")],
     "no package.json in it; a --btfgen package holds one at its top"),
])
def test_hostile_package_tars_are_refused(members: list[tuple[tarfile.TarInfo, bytes]],
                                          problem: str, tmp_path: Path) -> None:
    tar = tmp_path / "evil.tar"
    write_tar(tar, members, "w")
    result = ecc("run", str(tar))
    assert (result.returncode, result.stderr) == (1, f"ecc: error: {tar}: {problem}\n")


def test_package_tar_with_huge_entry_is_refused(tmp_path: Path) -> None:
    tar = tmp_path / "huge.tar"
    tar.write_bytes(declared_only(f"{PKG}/huge.btf", GIB))
    result = ecc("run", str(tar))
    assert (result.returncode, result.stderr) == (
        1, f"ecc: error: {tar}: entry '{PKG}/huge.btf' is {GIB} bytes, over the {MAX_BTF_BYTES}"
           f"-byte limit; refusing it\n")


def test_garbage_tar_is_refused(tmp_path: Path) -> None:
    tar = tmp_path / "garbage.tar"
    tar.write_bytes(os.urandom(2048))
    result = ecc("run", str(tar))
    assert result.returncode == 1
    assert result.stderr.startswith(f"ecc: error: {tar}: not a valid tar (")
