"""The endpoint keeper (roles/openfaas/files/onmetal-faas-endpoints.py) loaded once for its three test files: it is
shipped as a single program run with ``python3 -I``, not as an importable module."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
KEEPER = os.path.join(ROOT, "roles", "openfaas", "files", "onmetal-faas-endpoints.py")


@pytest.fixture(scope="session")
def keeper():
    spec = importlib.util.spec_from_file_location("onmetal_faas_endpoints", KEEPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
