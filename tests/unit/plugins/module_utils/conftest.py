import pytest

from ansible_collections.onmetal.faas.tests.unit.plugins._fake_engine import FakeEngine


@pytest.fixture
def fake_engine(tmp_path):
    """The in-memory Engine API test double on a unix socket in tmp_path."""
    engine = FakeEngine(str(tmp_path / "docker.sock"))
    yield engine
    engine.close()
