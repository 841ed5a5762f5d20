"""``ecc init NAME``: a new project folder, rendered from ``templates/project``.

The only jinja2 user (imported lazily). Every file under the template folder
ending in ``.j2`` is rendered; ``NAME`` in a file's path becomes the project's
name. The templates are read through ``importlib.resources`` (see
``resources.py``), so an installed wheel serves as well as a source tree.
The project is written into a hidden folder beside the target and renamed
into place, so a failure never leaves half a project behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from importlib.resources.abc import Traversable
from typing import Any

from . import __version__
from .errors import EccError, ToolNotFoundError
from .resources import DISTRIBUTION, data_dir

TEMPLATE = "project"  # the folder under templates/
# A C file stem that is also a fine folder, artifact and header-guard name.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
# What the generated workflow's pip installs ecc from, unless --ecc-package
# says otherwise: the release that wrote the project, so its CI builds with
# the ecc its author tried.
ECC_PACKAGE = f"{DISTRIBUTION}=={__version__}"


def _jinja() -> Any:
    try:
        import jinja2
    except ImportError as exc:
        raise ToolNotFoundError(
            "ecc init needs the jinja2 Python package; install it: pip install 'jinja2>=3'"
        ) from exc
    return jinja2


def _template_files(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in folder.iterdir():
        rel = prefix + entry.name
        if entry.is_dir():
            yield from _template_files(entry, rel + "/")
        elif rel.endswith(".j2"):
            yield rel, entry


def render(name: str, ecc_package: str = ECC_PACKAGE) -> dict[str, str]:
    """The project's files, relative path -> text."""
    folder = data_dir("templates").joinpath(TEMPLATE)
    if not folder.is_dir():
        raise EccError(f"the project templates ({folder}) are missing from this ecc; "
                       f"reinstall it: pip install --force-reinstall {ECC_PACKAGE}")
    if not ecc_package or any(c in ecc_package for c in "'\n\r"):
        raise EccError(f"--ecc-package {ecc_package!r}: give a pip requirement, wheel URL or "
                       f"git URL without quotes or line breaks")
    jinja2 = _jinja()
    # Read here rather than by a FileSystemLoader: in a zipped or namespace
    # install the templates need not be plain files in one folder.
    sources = {rel: entry.read_text(encoding="utf-8") for rel, entry in _template_files(folder)}
    env = jinja2.Environment(loader=jinja2.DictLoader(sources),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    context = {
        "name": name,
        "guard": "__" + re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_H",
        "ecc_package": ecc_package,
        "ecc_version": __version__,
    }
    files: dict[str, str] = {}
    for rel in sorted(sources):
        files[rel[: -len(".j2")].replace("NAME", name)] = env.get_template(rel).render(context)
    return files


def init_project(target: str, ecc_package: str = ECC_PACKAGE) -> list[str]:
    """Create the project folder ``target`` (named for its last component); its files."""
    name = os.path.basename(os.path.normpath(target))
    if not NAME.match(name):
        raise EccError(f"{target}: a project name is a letter, then letters, digits, '_' or "
                       f"'-' (at most 64); for example: ecc init my_tool")
    if os.path.lexists(target) and not (os.path.isdir(target) and not os.listdir(target)):
        raise EccError(f"{target}: already exists; choose another name, or remove it first")
    files = render(name, ecc_package)
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise EccError(f"{target}: the folder {parent} does not exist")
    staging = tempfile.mkdtemp(prefix=f".{name}.", dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; a project is not
        for rel, text in files.items():
            path = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        if os.path.isdir(target):
            os.rmdir(target)  # empty, checked above
        os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise EccError(f"{target}: cannot write the project: {exc.strerror}") from exc
    return [os.path.join(target, rel) for rel in files]
