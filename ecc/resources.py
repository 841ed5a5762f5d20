"""The data folders ecc ships: the project templates and the image's build files.

They stay at the top of the source tree (``templates/``, ``docker/``), and a
wheel carries them inside the package as ``ecc._templates`` and ``ecc._docker``
(``package-dir`` in pyproject.toml), so an installed ecc finds them through
``importlib.resources``. A source tree on ``sys.path`` (``python -m ecc`` in a
checkout, an editable install in setuptools' compat mode) has no such
subpackages: then the folders beside the ``ecc`` package are the ones.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

DISTRIBUTION = "ecc-bpf"  # on PyPI; the name "ecc" is another project's
SOURCE_TREE = Path(__file__).resolve().parent.parent
# folder in the source tree -> the subpackage that holds it in a wheel
PACKAGES = {"templates": "ecc._templates", "docker": "ecc._docker"}


def data_dir(folder: str) -> Traversable:
    """``templates`` or ``docker``, wherever this ecc keeps it; it may be missing."""
    try:
        return files(PACKAGES[folder])
    except ModuleNotFoundError:
        return SOURCE_TREE / folder
