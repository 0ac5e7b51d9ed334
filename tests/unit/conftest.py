"""Make ``ansible_collections.onmetal.faas`` importable when pytest runs from a plain checkout.

The repository root is the collection root.  ansible-test expects it below
``ansible_collections/onmetal/faas``; for plain ``pytest`` runs we create that layout once as a
symlink under ``.cache/`` and put it first on ``sys.path``.
"""

import importlib.util
import os
import sys

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collection_path():
    parts = _ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3:-1] == ["ansible_collections", "onmetal"] and parts[-1] == "faas":
        return os.sep.join(parts[:-3])
    base = os.path.join(_ROOT, ".cache", "collections")
    link_dir = os.path.join(base, "ansible_collections", "onmetal")
    link = os.path.join(link_dir, "faas")
    os.makedirs(link_dir, exist_ok=True)
    if not os.path.islink(link):
        os.symlink(_ROOT, link)
    return base


_PATH = _collection_path()
if _PATH not in sys.path:
    sys.path.insert(0, _PATH)


@pytest.fixture(scope="session")
def load_file():
    """Load a Python file that is shipped as a program, not as an importable module (run with ``python3 -I`` on the
    nodes, or by a drill), and return it as a module named after the file (``-`` becomes ``_``)."""

    def _load(path):
        name = os.path.basename(path).removesuffix(".py").replace("-", "_")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return _load
