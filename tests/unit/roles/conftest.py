"""The endpoint keeper (roles/openfaas/files/onmetal-faas-endpoints.py) loaded once for its three test files: it is
shipped as a single program run with ``python3 -I``, not as an importable module."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
KEEPER = os.path.join(ROOT, "roles", "openfaas", "files", "onmetal-faas-endpoints.py")


@pytest.fixture(scope="session")
def keeper(load_file):
    return load_file(KEEPER)
