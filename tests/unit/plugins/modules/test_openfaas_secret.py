"""Module-level tests of openfaas_secret against the HTTP fake gateway (faas-swarm 0.9.0's secrets API:
GET without values, POST 201 / 500 when the name exists, PUT 405, DELETE 200 / 404 / 500 while in use)."""

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas_secret as sec
from ansible_collections.onmetal.faas.plugins.modules import openfaas_secret
from ansible_collections.onmetal.faas.tests.unit.plugins._fake_gateway import FakeGateway
from ansible_collections.onmetal.faas.tests.unit.plugins.modules._harness import run_module

VALUE = "Zx9-very-secret-value"


@pytest.fixture
def gw():
    with FakeGateway() as fake:
        yield fake


@pytest.fixture
def run(gw):
    def run(check=False, diff=False, **args):
        base = {"gateway_url": gw.url, "password": "s3cret", "name": "token", "value": VALUE}
        base.update(args)
        out = run_module(openfaas_secret, base, check=check, diff=diff)
        assert VALUE not in str(out.result)
        return out

    return run


def test_four_steps_with_append_hash(gw, run):
    name = "token-" + sec.value_hash(VALUE)
    first = run(check=True, diff=True, append_hash=True)
    assert first.result["changed"] and first.result["action"] == "create" and first.result["secret_name"] == name
    assert gw.writes() == [] and gw.secrets == {}
    assert first.result["diff"] == {
        "before": {},
        "after": {"name": name, "value": "(hidden)"},
        "before_header": f"secret {name} (gateway)",
        "after_header": name,
    }
    applied = run(append_hash=True)
    assert applied.result["changed"] and applied.result["http_status"] == 201
    assert gw.secrets == {name: VALUE}
    assert not run(append_hash=True).result["changed"]
    again = run(check=True, diff=True, append_hash=True)
    assert not again.result["changed"] and again.result["diff"]["before"] == again.result["diff"]["after"]
    # a new value is a new secret; the old one stays for the functions that still use it
    rotated = run(append_hash=True, value="another-value")
    assert rotated.result["changed"] and rotated.result["secret_name"] != name and len(gw.secrets) == 2


def test_existing_secret_is_left_alone_without_force(gw, run):
    gw.secrets["token"] = "old"
    out = run(diff=True)
    assert not out.result["changed"] and gw.writes() == []
    assert gw.secrets["token"] == "old"


def test_force_replaces_by_delete_and_create_when_put_is_405(gw, run):
    gw.secrets["token"] = "old"
    assert run(check=True, force=True).result["action"] == "replace" and gw.writes() == []
    out = run(force=True, diff=True)
    assert out.result["changed"] and out.result["action"] == "replace" and out.result["http_status"] == 201
    assert [w[0] for w in gw.writes()] == ["PUT", "DELETE", "POST"]
    assert gw.secrets["token"] == VALUE
    assert out.result["diff"]["after"]["value"] == "(hidden; replaced)"


def test_force_on_a_secret_in_use_explains(gw, run):
    gw.secrets["token"] = "old"
    gw.functions["fn"] = {"service": "fn", "image": "i", "labels": {}, "secrets": ["token"]}
    out = run(force=True)
    assert out.failed and out.result["http_status"] == 500
    assert "removing secret 'token' failed with HTTP 500: (empty body)" in out.result["msg"]
    assert "Swarm refuses to remove a secret that a function uses" in out.result["msg"]
    assert "use append_hash" in out.result["msg"]
    assert gw.secrets["token"] == "old"


def test_absent(gw, run):
    gw.secrets["token"] = "x"
    assert run(check=True, state="absent", value=None).result["changed"] and "token" in gw.secrets
    out = run(state="absent", value=None)
    assert out.result["changed"] and out.result["http_status"] == 200 and gw.secrets == {}
    assert not run(state="absent", value=None).result["changed"]


def test_unlisted_swarm_secret_of_the_same_name_explains(gw, run, monkeypatch):
    """A 'docker secret create' secret lacks com.openfaas.owner: not listed, and POST fails with 500."""
    real = gw.dispatch

    def unlabelled(method, path, body):
        if path == "/system/secrets" and method == "POST":
            return 500, b""
        return real(method, path, body)

    monkeypatch.setattr(gw, "dispatch", unlabelled)
    out = run()
    assert out.failed and "without the label com.openfaas.owner=openfaas" in out.result["msg"]


def test_created_concurrently_is_not_an_error(gw, run, monkeypatch):
    real = gw.dispatch

    def race(method, path, body):
        if path == "/system/secrets" and method == "POST":
            gw.secrets[body["name"]] = "theirs"
        return real(method, path, body)

    monkeypatch.setattr(gw, "dispatch", race)
    out = run()
    assert not out.failed and not out.result["changed"]
    assert "created concurrently (the gateway answered HTTP 500)" in out.result["reasons"][0]


def test_value_required_and_no_log(gw, run):
    out = run(value=None)
    assert out.failed and "value" in out.result["msg"]
    assert sec.ARGUMENT_SPEC["value"]["no_log"] is True and sec.ARGUMENT_SPEC["password"]["no_log"] is True
    assert gw.requests == []
