"""Module-level tests of swarm_stack: argument spec, check mode, result shape, errors.

The Docker SDK's APIClient is replaced by a small fake with the same methods, so these tests also
exercise the DockerApiEngine adapter.
"""

import copy

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.onmetal.faas.plugins.modules import swarm_stack, swarm_stack_info
from ansible_collections.onmetal.faas.tests.unit.plugins.modules._harness import ModuleExit


class FakeApi:
    """Just enough of docker.APIClient for a stack with one service and no secrets."""

    def __init__(self, manager=True):
        self.manager = manager
        self.services_store = []
        self.networks_store = []
        self.requests = []

    def info(self):
        return {
            "SystemTime": "2026-11-26T20:00:00Z",
            "Swarm": {"LocalNodeState": "active", "ControlAvailable": self.manager, "NodeID": "node1"},
        }

    def services(self, filters=None):
        key, _sep, value = filters["label"].partition("=")
        return [
            copy.deepcopy(s)
            for s in self.services_store
            if key in s["Spec"]["Labels"] and (not value or s["Spec"]["Labels"][key] == value)
        ]

    def tasks(self, filters=None):
        return [
            {"ServiceID": s["ID"], "DesiredState": "running", "Status": {"State": "running"}}
            for s in self.services_store
            if s["ID"] in filters["service"]
        ]

    def networks(self):
        return copy.deepcopy(self.networks_store)

    def secrets(self):
        return []

    def configs(self):
        return []

    def create_network(self, name, **kwargs):
        self.requests.append(("create_network", name, kwargs["attachable"], kwargs["scope"]))
        self.networks_store.append({"Id": "net1", "Name": name, "Labels": kwargs["labels"]})
        return {"Id": "net1"}

    def _url(self, path, *args):
        return path.format(*args)

    def _post_json(self, url, data=None, headers=None, params=None):
        self.requests.append(("post", url))
        if url == "/services/create":
            self.services_store.append({"ID": "svc1", "Version": {"Index": 1}, "Spec": copy.deepcopy(data)})
        return {"ID": "svc1"}

    def _result(self, response, json=False):
        return response


@pytest.fixture
def api(monkeypatch):
    fake = FakeApi()
    monkeypatch.setattr(swarm_stack, "_client", lambda params: fake)
    monkeypatch.setattr(swarm_stack_info, "_client", lambda params: fake)
    return fake


COMPOSE = {
    "version": "3.8",
    "services": {"web": {"image": "stacktest/web:v1", "ports": ["28080:8080"], "build": "."}},
}


def _main(args, check_mode=False, diff=False, module=swarm_stack):
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args), pytest.raises(ModuleExit) as exc:
        module.main()
    return exc.value


def test_check_mode_plans_and_changes_nothing(api):
    out = _main({"name": "st", "compose": COMPOSE, "endpoint_mode": "dnsrr"}, check_mode=True, diff=True)
    assert not out.failed and out.result["changed"]
    assert out.result["plan"]["services"]["create"] == ["st_web"]
    assert list(out.result["diff"]["after"]["services"]) == ["st_web"]
    assert api.requests == []
    assert out.result["warnings"] == ["services.web: ignoring keys that swarm does not use: build"]


def test_apply_then_no_op(api):
    first = _main({"name": "st", "compose": COMPOSE, "endpoint_mode": "vip"})
    assert first.result["changed"] and not first.failed
    assert api.requests == [("create_network", "st_default", False, "swarm"), ("post", "/services/create")]
    assert first.result["services"][0]["ports"] == [
        {"published": 28080, "target": 8080, "protocol": "tcp", "mode": "ingress"}
    ]
    api.requests.clear()
    second = _main({"name": "st", "compose": COMPOSE, "endpoint_mode": "vip"})
    assert not second.result["changed"] and api.requests == []
    assert second.result["api_calls"] == 6
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


def test_missing_docker_sdk_is_reported(api, monkeypatch):
    monkeypatch.setattr(swarm_stack, "HAS_DOCKER", False)
    out = _main({"name": "st", "compose": COMPOSE})
    assert out.failed and "docker" in out.result["msg"]


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
