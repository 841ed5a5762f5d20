"""``ecc build --docker``: the same build, inside the ecc image, through the Docker Engine API.

The only importer of the ``docker`` SDK, and only inside functions, so that
``ecc --help`` never pays for it. Any engine that speaks the Docker API
serves: Docker itself, or podman's ``podman system service``. ``DOCKER_HOST``
names it; unset, the usual sockets of Docker and of root's and the user's
podman service are tried in turn.

The image is built from ``docker/Dockerfile`` on first use (a wheel ships it
too: ``resources.py``). Its tag carries a digest of everything that goes into
it (the Dockerfile, the entry point and the ``ecc`` package), so a changed ecc
gets a new image instead of running an old one; ``ECC_DOCKER_IMAGE`` names another image.

The folder holding the inputs is mounted at ``/src`` and the container runs
``ecc build`` on the same inputs and options, with host paths mapped to where
they are mounted. It runs as the calling user, so what it writes belongs to
that user; a root caller's build runs as the owner of the folder the outputs go
to, so root never leaves its files in someone's folder. The container's output
is relayed with its paths mapped back, so messages name the user's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__, log
from .compiler.options import HOST_PATHS
from .errors import EccError, ToolNotFoundError
from .resources import DISTRIBUTION, PACKAGES, data_dir

Client = Any  # docker.DockerClient: the SDK ships no type information

PACKAGE_DIR = Path(__file__).resolve().parent
# An installed wheel keeps templates/ and docker/ inside the package; they are
# not part of the ecc the image runs.
DATA_SUBPACKAGES = {name.rpartition(".")[2] for name in PACKAGES.values()}
DOCKERFILE = "docker/Dockerfile"
ENTRYPOINT = "docker/entrypoint.sh"
IMAGE_ENV = "ECC_DOCKER_IMAGE"
IMAGE_REPOSITORY = "ecc"
IMAGE_LABEL = "io.github.ecc.build-image"  # on every image ecc builds, to find old ones
SRC = "/src"
OUT = "/out"
WORKSPACE = "/workspace"
HOST_INPUTS = "/host"  # read-only files and folders named by other options
# Options naming programs on the host: the image has its own toolchain.
HOST_TOOLS = {"clang", "llvm_strip", "bpftool"}
# Options whose host path the container writes to; any other path is mounted read-only.
WRITABLE = {"output_dir": OUT, "workspace": WORKSPACE}
# Where engines listen when DOCKER_HOST is unset: Docker's, root's podman
# service (podman.socket), then the user's.
DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/podman/podman.sock")
CONNECT_TIMEOUT = 10  # seconds for an engine to answer a ping
ENGINE_TIMEOUT = 900  # seconds without a byte from the engine before giving up
START_HINT = ("start one, e.g. `podman system service --time=0 unix:///run/podman/podman.sock &` "
              "then `export DOCKER_HOST=unix:///run/podman/podman.sock`")


@dataclass(frozen=True)
class OptionSpec:
    """How ``ecc build`` spells one of its options (from compiler/options.py)."""

    flag: str
    off_flag: str | None  # the ``--no-x`` of a ``--x/--no-x`` flag
    default: Any
    metavar: str | None


@dataclass(frozen=True)
class Mount:
    host: str
    container: str
    writable: bool
    shown: str | None = None  # how messages name ``host``; default: relative when below here


def _sdk() -> Any:
    try:
        import docker
    except ImportError as exc:
        raise ToolNotFoundError(
            "ecc build --docker needs the docker Python package; install it: "
            "pip install 'docker>=6'") from exc
    return docker


# ---------------------------------------------------------------- the engine

def engine_urls() -> list[str]:
    """Where to look for an engine: DOCKER_HOST alone when set, else the usual sockets."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        return [host]
    sockets = list(DEFAULT_SOCKETS)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        sockets.append(os.path.join(runtime, "podman", "podman.sock"))
    present = [f"unix://{s}" for s in sockets if os.path.exists(s)]
    return present or [f"unix://{DEFAULT_SOCKETS[0]}"]


def connect() -> Client:
    """A client of the first engine that answers a ping; EccError naming where it looked."""
    sdk = _sdk()
    urls = engine_urls()
    for url in urls:
        try:
            if os.environ.get("DOCKER_HOST"):
                # from_env also honours DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
                client = sdk.from_env(timeout=CONNECT_TIMEOUT)
            else:
                client = sdk.DockerClient(base_url=url, timeout=CONNECT_TIMEOUT)
            client.ping()
            # Then patience: a quiet compile or apt step sends nothing for a while.
            client.api.timeout = ENGINE_TIMEOUT
            return client
        except Exception as exc:  # noqa: BLE001 - any failure means: nothing answers there
            log.info("no container engine at %s: %s", url, exc)
    where = " or ".join(urls) + (" (DOCKER_HOST)" if os.environ.get("DOCKER_HOST") else "")
    raise EccError(f"no container engine answers at {where}; {START_HINT}")


# ----------------------------------------------------------------- the image

def context_files() -> dict[str, bytes]:
    """The image's build context, path -> bytes: what ``.dockerignore`` lets through."""
    folder = data_dir("docker")
    dockerfile = folder.joinpath(os.path.basename(DOCKERFILE))
    if not dockerfile.is_file():
        raise EccError(
            f"the ecc image is not built and its Dockerfile ({dockerfile}) is missing from "
            f"this ecc; reinstall it (pip install --force-reinstall {DISTRIBUTION}=={__version__}),"
            f" or set {IMAGE_ENV} to an image")
    files = {DOCKERFILE: dockerfile.read_bytes(),
             ENTRYPOINT: folder.joinpath(os.path.basename(ENTRYPOINT)).read_bytes()}
    for path in sorted(PACKAGE_DIR.rglob("*")):
        rel = path.relative_to(PACKAGE_DIR)
        if (path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc"
                and rel.parts[0] not in DATA_SUBPACKAGES):
            files[f"{PACKAGE_DIR.name}/{rel.as_posix()}"] = path.read_bytes()
    return files


def image_tag(files: Mapping[str, bytes]) -> str:
    """``ecc:VERSION-DIGEST``: the digest covers every file that goes into the image."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return f"{IMAGE_REPOSITORY}:{__version__}-{digest.hexdigest()[:12]}"


def context_tar(files: Mapping[str, bytes]) -> io.BytesIO:
    """The context as the tar stream the Docker API takes; same bytes for the same files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    buf.seek(0)
    return buf


def ensure_image(client: Client, tag: str, files: Mapping[str, bytes],
                 echo: Callable[[str], None]) -> bool:
    """Build ``tag`` from ``files`` unless the engine has it (then False); EccError when
    the build fails."""
    sdk = _sdk()
    if _has_image(client, tag):
        return False
    echo(f"ecc: building image {tag} from {DOCKERFILE} (once; -v shows its log)")
    logged: list[str] = []
    error: str | None = None
    with _engine(f"building image {tag}"):
        try:
            for chunk in client.api.build(fileobj=context_tar(files), custom_context=True,
                                          dockerfile=DOCKERFILE, tag=tag, rm=True,
                                          forcerm=True, labels={IMAGE_LABEL: "1"}, decode=True):
                if not isinstance(chunk, dict):
                    continue
                for line in str(chunk.get("stream") or "").splitlines():
                    logged.append(line)
                    log.info("| %s", line)
                if chunk.get("error"):
                    error = str(chunk["error"]).strip()
        except sdk.errors.APIError as exc:
            error = str(exc.explanation or exc).strip()
    if error is None and not _has_image(client, tag):
        error = "the engine reported no error, but made no image"
    if error is not None:
        reason = error.splitlines()[-1] if error else "no reason given"
        raise EccError(f"building image {tag} from {DOCKERFILE} failed: {reason}",
                       details="\n".join(logged[-40:]) or None)
    return True


def prune_older(client: Client, keep: str) -> None:
    """Remove the images ecc built for earlier versions of itself (``ecc:*`` tags other
    than ``keep``): each code change makes a new one. One in use stays."""
    sdk = _sdk()
    with contextlib.suppress(sdk.errors.DockerException, OSError):  # tidying never fails a build
        for image in client.images.list(filters={"label": IMAGE_LABEL}):
            tags = image.tags or []
            ours = tags and all(t.rsplit("/", 1)[-1].startswith(f"{IMAGE_REPOSITORY}:")
                                for t in tags)
            if ours and not any(t.rsplit("/", 1)[-1] == keep for t in tags):
                with contextlib.suppress(sdk.errors.APIError):
                    client.images.remove(image.id)
                    log.info("removed the older image %s", ", ".join(tags))


# -------------------------------------------------------- arguments, mounts

def _common_folder(inputs: Sequence[str]) -> str:
    """The one folder to mount at /src: the deepest one holding every input."""
    folders = []
    for name in inputs:
        path = os.path.abspath(name)
        if not os.path.exists(path):
            raise EccError(f"{name}: no such file or folder")
        folders.append(path if os.path.isdir(path) else os.path.dirname(path))
    common = os.path.commonpath(folders)
    if common == os.path.sep:
        raise EccError("ecc build --docker: the inputs share no folder but /, which is not "
                       "mounted; keep a program and its header in one folder")
    return common


def _inside(path: str, mount: Mount) -> str:
    rel = os.path.relpath(os.path.abspath(path), mount.host)
    return mount.container if rel == "." else f"{mount.container}/{rel}"


def container_args(inputs: Sequence[str], params: Mapping[str, Any],
                   options: Mapping[str, OptionSpec]) -> tuple[list[str], list[Mount]]:
    """``ecc build`` arguments for inside the container, and the mounts they need.

    An option that takes a host path (compiler/options.py, ``path``) has it
    mounted (read-only when it exists, else its folder read-write: it is
    an output such as --report) and replaced by where it is mounted.
    """
    common = _common_folder(inputs)
    # Messages name files the way the user did: absolute paths stay absolute.
    src = Mount(common, SRC, True, common if os.path.isabs(inputs[0]) else None)
    mounts = [src]
    args = [_inside(name, src) for name in inputs]
    for name, value in params.items():
        spec = options.get(name)
        if spec is None or value == spec.default or value in (None, ()):
            continue
        if name in HOST_TOOLS:
            raise EccError(f"{spec.flag} cannot be used with --docker: the image brings its own "
                           f"toolchain (clang, llvm-strip, bpftool)")
        if isinstance(value, bool):
            if value:
                args.append(spec.flag)
            elif spec.off_flag:
                args.append(spec.off_flag)
            continue
        values = value if isinstance(value, tuple) else (value,)
        for index, item in enumerate(values):
            text = str(item)
            kind = HOST_PATHS.get(name)
            if kind is not None and text:  # "" (a bare --wasm) names no path
                prefix = ""
                # [ARCH=]FILE: the path is what follows the prefix.
                if kind == "arch=path" and "=" in text and "/" not in text.split("=", 1)[0]:
                    prefix, text = text.split("=", 1)
                    prefix += "="
                text = prefix + _mount_path(f"{name}{index}", name, text, mounts)
            args += [spec.flag, text]
    return args, mounts


def _mount_path(key: str, name: str, value: str, mounts: list[Mount]) -> str:
    path = os.path.abspath(value)
    if name in WRITABLE:
        os.makedirs(path, exist_ok=True)  # else the engine makes it, owned by root
        mounts.append(Mount(path, WRITABLE[name], True))
        return WRITABLE[name]
    if os.path.exists(path):
        target = f"{HOST_INPUTS}/{key}/{os.path.basename(path)}"
        mounts.append(Mount(path, target, False))
        return target
    folder = os.path.dirname(path)  # a file the build writes
    if not os.path.isdir(folder):
        raise EccError(f"{value}: its folder {folder} does not exist")
    mounts.append(Mount(folder, f"{HOST_INPUTS}/{key}", True))
    return f"{HOST_INPUTS}/{key}/{os.path.basename(path)}"


def run_as(mounts: Sequence[Mount]) -> str:
    """``uid:gid`` for the container: the caller's, or for root the outputs' folder's owner."""
    if os.getuid() != 0:
        return f"{os.getuid()}:{os.getgid()}"
    out = next((m for m in mounts if m.container == OUT), mounts[0])
    st = os.stat(out.host)
    return f"{st.st_uid}:{st.st_gid}"


class _Relay:
    """The container's output, line by line, with its paths mapped back to the host's.

    An ``ecc: error:`` line is held back: it becomes the EccError the CLI prints,
    so the user sees it once.
    """

    def __init__(self, mounts: Sequence[Mount], echo: Callable[[str], None]) -> None:
        # A container path only where a path starts: /usr/src stays as it is.
        self._map = [(re.compile(rf"(?<![\w./-]){re.escape(m.container)}(/|(?![\w.-]))"),
                      _as_given(m.host) if m.shown is None else m.shown) for m in mounts]
        self._echo = echo
        self._partial = ""
        self.error: str | None = None

    def feed(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self._partial += chunk.decode(errors="replace")
            *lines, self._partial = self._partial.split("\n")
            for line in lines:
                self._line(line)
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def _line(self, line: str) -> None:
        for pattern, host in self._map:
            line = pattern.sub(_to_host(host), line)
        if line.startswith("ecc: error: "):
            if self.error is not None:
                self._echo(f"ecc: error: {self.error}")
            self.error = line[len("ecc: error: "):]
        else:
            self._echo(line)


def _to_host(host: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # a path below the mount point
            return host + "/" if host else ""
        return host or "."
    return replace


def _as_given(path: str) -> str:
    """A host path as the user would write it here: relative below the current folder."""
    rel = os.path.relpath(path)
    if rel == ".":
        return ""
    return path if rel.startswith("..") else rel


# ------------------------------------------------------------------- build

def build_in_container(inputs: Sequence[str], params: Mapping[str, Any],
                       options: Mapping[str, OptionSpec],
                       echo: Callable[[str], None]) -> int:
    """Run ``ecc build INPUTS OPTIONS`` in the ecc image; the container's exit status.

    ``params`` are the build command's option values and ``options`` how each is
    spelled. Raises EccError for a missing engine, a failed image build, or the
    ``ecc: error:`` the build inside ended with.
    """
    args, mounts = container_args(inputs, params, options)
    client = connect()
    try:
        tag = os.environ.get(IMAGE_ENV)
        if not tag:
            files = context_files()
            tag = image_tag(files)
            if ensure_image(client, tag, files, echo):
                prune_older(client, tag)
        elif not _has_image(client, tag):
            ensure_image(client, tag, context_files(), echo)
        return _run(client, tag, args, mounts, echo)
    finally:
        client.close()


def _has_image(client: Client, tag: str) -> bool:
    sdk = _sdk()
    with _engine(f"looking up image {tag}"):
        try:
            client.images.get(tag)
            return True
        except sdk.errors.ImageNotFound:
            return False


@contextlib.contextmanager
def _engine(what: str) -> Iterator[None]:
    """The engine's failures (an API error, a dropped connection, a time-out) as one line."""
    sdk = _sdk()
    try:
        yield
    except sdk.errors.DockerException as exc:
        reason = getattr(exc, "explanation", None) or exc
        raise EccError(f"the container engine failed {what}: {reason}") from exc
    except OSError as exc:  # what requests raises is an OSError
        raise EccError(f"the container engine failed {what}: {exc}") from exc


def _run(client: Client, tag: str, args: list[str], mounts: Sequence[Mount],
         echo: Callable[[str], None]) -> int:
    sdk = _sdk()
    user = run_as(mounts)
    log.info("+ (in %s as %s) ecc build %s", tag, user, " ".join(args))
    with _engine(f"creating a container of {tag}"):
        container = client.containers.create(
            tag, entrypoint=["ecc", "build"], command=args, user=user, working_dir=SRC,
            volumes={m.host: {"bind": m.container, "mode": "rw" if m.writable else "ro"}
                     for m in mounts},
            network_disabled=True,  # a build needs no network
        )
    relay = _Relay(mounts, echo)
    try:
        with _engine(f"running {tag}"):
            container.start()
            relay.feed(container.logs(stdout=True, stderr=True, stream=True, follow=True))
            status = int(container.wait().get("StatusCode", 1))
    finally:
        with contextlib.suppress(sdk.errors.DockerException, OSError):  # already gone
            container.remove(force=True)
    if status != 0 and relay.error is not None:
        raise EccError(relay.error)
    if relay.error is not None:
        echo(f"ecc: error: {relay.error}")
    return status
