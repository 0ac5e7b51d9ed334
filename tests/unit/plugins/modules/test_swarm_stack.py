"""Module-level tests of swarm_stack: argument spec, check mode, result shape, errors.

The engine is the in-memory test double in tests/unit/plugins/_fake_engine.py on a real unix
socket, so these tests also exercise the standard-library HTTP client and the DockerApiEngine
adapter (paths, query filters, bodies, error answers).
"""

import base64
import copy
import json

import pytest

from ansible_collections.onmetal.faas.plugins.modules import swarm_stack, swarm_stack_info
from ansible_collections.onmetal.faas.tests.unit.plugins._fake_engine import FakeEngine
from ansible_collections.onmetal.faas.tests.unit.plugins.modules._harness import run_module


@pytest.fixture
def api(tmp_path, monkeypatch):
    engine = FakeEngine(str(tmp_path / "docker.sock"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.socket_path}")
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    yield engine
    engine.close()


COMPOSE = {
    "version": "3.8",
    "services": {"web": {"image": "stacktest/web:v1", "ports": ["28080:8080"], "build": "."}},
}


def _main(args, check_mode=False, diff=False, module=swarm_stack):
    return run_module(module, args, check=check_mode, diff=diff)


def test_check_mode_plans_and_changes_nothing(api):
    out = _main({"name": "st", "compose": COMPOSE, "endpoint_mode": "dnsrr"}, check_mode=True, diff=True)
    assert not out.failed and out.result["changed"]
    assert out.result["plan"]["services"]["create"] == ["st_web"]
    assert list(out.result["diff"]["after"]["services"]) == ["st_web"]
    assert api.writes() == []
    assert out.result["warnings"] == ["services.web: ignoring keys that swarm does not use: build"]


def test_apply_then_no_op(api):
    first = _main({"name": "st", "compose": COMPOSE, "endpoint_mode": "vip"})
    assert first.result["changed"] and not first.failed
    assert api.writes() == [("POST", "/networks/create"), ("POST", "/services/create")]
    sent = {(m, p): (b, h) for m, p, _q, b, h in api.requests}
    network = sent[("POST", "/networks/create")][0]
    assert (network["Name"], network["Driver"], network["Attachable"], network["Scope"]) == (
        "st_default",
        "overlay",
        False,
        "swarm",
    )
    assert "X-Registry-Auth" not in sent[("POST", "/services/create")][1]
    assert first.result["services"][0]["ports"] == [
        {"published": 28080, "target": 8080, "protocol": "tcp", "mode": "ingress"}
    ]
    api.requests.clear()
    second = _main({"name": "st", "compose": COMPOSE, "endpoint_mode": "vip"})
    assert not second.result["changed"] and api.writes() == []
    assert second.result["api_calls"] == 6 == len(api.requests)
    assert api.connections == 2  # one kept-alive connection per run
    services_query = [q for m, p, q, _b, _h in api.requests if p == "/services"][0]
    assert json.loads(services_query["filters"]) == {"label": ["com.docker.stack.namespace=st"]}
    assert "diff" not in second.result


def test_worker_node_is_refused(api):
    api.manager = False
    out = _main({"name": "st", "compose": COMPOSE})
    assert out.failed and "node1 is a swarm worker, not a manager" in out.result["msg"]
    assert out.result["changed"] is False


def test_compose_is_required_for_present(api):
    out = _main({"name": "st"})
    assert out.failed and "compose" in out.result["msg"]


def test_compose_and_compose_files_are_exclusive(api):
    out = _main({"name": "st", "compose": COMPOSE, "compose_files": ["/a.yml"]})
    assert out.failed and "mutually exclusive" in out.result["msg"]


def test_secret_values_never_reach_the_result(api):
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["web"]["secrets"] = ["pw"]
    compose["secrets"] = {"pw": {}}
    out = _main(
        {"name": "st", "compose": compose, "secret_contents": {"pw": "hunter2-value"}}, check_mode=True, diff=True
    )
    assert not out.failed
    assert out.result["plan"]["secrets"]["create"][0].startswith("st_pw-")
    assert "hunter2-value" not in repr(out.result)


def test_api_version_prefixes_every_request(api):
    out = _main({"name": "st", "compose": COMPOSE, "endpoint_mode": "vip", "api_version": "1.41"})
    assert not out.failed
    assert {p.split("/")[1] for _m, p, _q, _b, _h in api.requests} == {"v1.41"}


def test_bad_api_version_and_docker_host_are_explained(api):
    out = _main({"name": "st", "compose": COMPOSE, "api_version": "latest"})
    assert out.failed and "api_version 'latest' is not an Engine API version" in out.result["msg"]
    out = _main({"name": "st", "compose": COMPOSE, "docker_host": "ssh://root@10.0.0.1"})
    assert out.failed and "ssh:// is not supported" in out.result["msg"] and "delegate_to" in out.result["msg"]


def test_no_engine_is_explained(api, tmp_path):
    missing = tmp_path / "nothing.sock"
    out = _main({"name": "st", "compose": COMPOSE, "docker_host": f"unix://{missing}"})
    assert out.failed
    assert out.result["msg"].startswith(f"cannot connect to the Docker engine at unix://{missing}")
    assert "is dockerd running" in out.result["msg"]


def test_registry_auth_header_from_docker_config(api, tmp_path):
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {"reg.example:5000": {"auth": "dTpw"}}}))
    compose = {"services": {"web": {"image": "reg.example:5000/team/web:1"}}}
    out = _main({"name": "st", "compose": compose, "endpoint_mode": "vip", "with_registry_auth": True})
    assert not out.failed
    header = [h for m, p, _q, _b, h in api.requests if p == "/services/create"][0]["X-Registry-Auth"]
    assert json.loads(base64.urlsafe_b64decode(header)) == {
        "password": "p",
        "serveraddress": "reg.example:5000",
        "username": "u",
    }


def test_info_lists_and_describes(api):
    assert _main({}, module=swarm_stack_info).result["stacks"] == []
    _main({"name": "st", "compose": COMPOSE, "endpoint_mode": "vip"})
    listed = _main({}, module=swarm_stack_info)
    assert not listed.failed and not listed.result["changed"]
    assert listed.result["stacks"] == [{"name": "st", "services": 1}]
    described = _main({"name": "st"}, module=swarm_stack_info, check_mode=True).result
    assert [s["name"] for s in described["services"]] == ["st_web"]
    assert described["services"][0]["converged"] and described["services"][0]["managed"]
    assert described["networks"] == ["st_default"]


def test_info_on_a_worker_fails(api):
    api.manager = False
    out = _main({}, module=swarm_stack_info)
    assert out.failed and "swarm worker" in out.result["msg"]
