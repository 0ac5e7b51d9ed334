import pytest

from ansible_collections.onmetal.faas.tests.unit.plugins.modules._harness import patch_exits


@pytest.fixture(autouse=True)
def capture_exit(monkeypatch):
    patch_exits(monkeypatch)
