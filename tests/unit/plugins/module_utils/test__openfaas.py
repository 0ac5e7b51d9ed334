"""Tests of the openfaas_function planner and gateway client.

The planner is pure; the client is exercised through Ansible's real open_url against the fake gateway
in tests/unit/plugins/_fake_gateway.py (a ThreadingHTTPServer on 127.0.0.1 that behaves like gateway
0.18.18 in front of faas-swarm).
"""

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas as of
from ansible_collections.onmetal.faas.tests.unit.plugins._fake_gateway import FakeGateway, function_status

BASE = {
    "name": "resize",
    "image": "127.0.0.1:5000/resize:abc",
    "env": {},
    "env_process": None,
    "labels": {},
    "annotations": {},
    "secrets": [],
    "constraints": [],
    "limits": None,
    "requests": None,
    "scale_min": None,
    "scale_max": None,
    "network": None,
    "read_only_root_filesystem": False,
}


def params(**kw):
    p = dict(BASE)
    p.update(kw)
    return p


def deployed(body, **extra):
    """What faas-swarm lists after a deploy of ``body``."""
    item = function_status(body)
    item.update(extra)
    return item


# --- desired_request ----------------------------------------------------------------------------


def test_desired_request_renders_scale_labels_env_and_hash():
    body = of.desired_request(
        params(env={"B": 2, "A": True}, scale_min=1, scale_max=5, limits={"memory": "128m", "cpu": None})
    )
    assert body["service"] == "resize"
    assert body["envVars"] == {"A": "true", "B": "2"}
    assert body["labels"][of.SCALE_MIN_LABEL] == "1"
    assert body["labels"][of.SCALE_MAX_LABEL] == "5"
    assert body["limits"] == {"memory": "128m"}
    assert "requests" not in body and "network" not in body and "envProcess" not in body
    assert body["labels"][of.HASH_LABEL] == of.spec_hash(body)


@pytest.mark.parametrize(
    "a, b",
    [
        (dict(secrets=["s1", "s2"]), dict(secrets=["s2", "s1", "s1"])),
        (dict(env={"A": "1", "B": "2"}), dict(env={"B": "2", "A": 1})),
        (dict(labels={"x": "1"}, scale_min=1), dict(scale_min=1, labels={"x": 1})),
    ],
    ids=["secret-order", "env-order-and-type", "label-order"],
)
def test_hash_ignores_ordering_and_types(a, b):
    assert (
        of.desired_request(params(**a))["labels"][of.HASH_LABEL]
        == of.desired_request(params(**b))["labels"][of.HASH_LABEL]
    )


@pytest.mark.parametrize(
    "change",
    [
        dict(env={"A": "1"}),
        dict(secrets=["s"]),
        dict(limits={"memory": "64m"}),
        dict(constraints=["node.role == worker"]),
        dict(read_only_root_filesystem=True),
        dict(network="functions"),
        dict(requests={"cpu": "500m"}),
    ],
)
def test_hash_covers_fields_the_gateway_does_not_report(change):
    assert (
        of.desired_request(params())["labels"][of.HASH_LABEL]
        != of.desired_request(params(**change))["labels"][of.HASH_LABEL]
    )


@pytest.mark.parametrize(
    "kw, needle",
    [
        (dict(name="Resize"), "function name 'Resize' is not valid"),
        (dict(name="-x"), "is not valid"),
        (dict(name="a" * 64), "at most 63"),
        (dict(image=""), "image is required"),
        (dict(scale_min=3, scale_max=2), "scale_min (3) is larger than scale_max (2)"),
        (dict(scale_min=-1), "scale_min must be 0 or more"),
        (dict(scale_max=0), "scale_max must be 1 or more"),
        (dict(labels={of.SCALE_MIN_LABEL: "2"}, scale_min=1), "contradicts scale_min=1"),
        (dict(limits={"memory": "lots"}), "limits.memory 'lots' is not a memory size"),
        (dict(requests={"cpu": "fast"}), "requests.cpu 'fast' is not a CPU amount"),
        (dict(env={"A": {"nested": 1}}), "env 'A' must be a string"),
    ],
)
def test_desired_request_errors(kw, needle):
    with pytest.raises(of.OpenFaaSError) as err:
        of.desired_request(params(**kw))
    assert needle in err.value.msg


@pytest.mark.parametrize("memory", ["128m", "128Mi", "1g", "512MB", "1048576", "1.5G"])
def test_memory_formats_accepted(memory):
    assert of.desired_request(params(limits={"memory": memory}))["limits"]["memory"] == memory


# --- plan -----------------------------------------------------------------------------------------


def test_plan_create_when_absent():
    assert of.plan(None, of.desired_request(params()), "present")["action"] == "create"


def test_plan_noop_when_deployed_by_us():
    body = of.desired_request(params(scale_min=1, env={"A": "1"}))
    assert of.plan(deployed(body), body, "present") == {"action": "none", "reasons": []}


def test_plan_noop_when_provider_pins_the_digest():
    body = of.desired_request(params())
    current = deployed(body, image=body["image"] + "@sha256:" + "0" * 64)
    assert of.plan(current, body, "present")["action"] == "none"


def test_plan_update_on_image_change():
    old = of.desired_request(params())
    new = of.desired_request(params(image="127.0.0.1:5000/resize:def"))
    result = of.plan(deployed(old), new, "present")
    assert result["action"] == "update"
    assert "image 127.0.0.1:5000/resize:abc -> 127.0.0.1:5000/resize:def" in result["reasons"]


def test_plan_update_on_hidden_field_change():
    old = of.desired_request(params())
    new = of.desired_request(params(env={"A": "1"}))
    result = of.plan(deployed(old), new, "present")
    assert result["action"] == "update"
    assert result["reasons"][0].startswith("spec hash differs")


def test_plan_update_when_function_was_deployed_elsewhere():
    body = of.desired_request(params())
    foreign = deployed(body)
    del foreign["labels"][of.HASH_LABEL]
    result = of.plan(foreign, body, "present")
    assert result["action"] == "update"
    assert "no spec hash label" in result["reasons"][-1]


def test_plan_sees_label_drift_and_annotations():
    body = of.desired_request(params(labels={"team": "media"}, annotations={"topic": "images"}))
    current = deployed(body, annotations={"topic": "other"})
    current["labels"]["team"] = "ops"
    reasons = of.plan(current, body, "present")["reasons"]
    assert "labels differ: team" in reasons
    assert "annotations differ: topic" in reasons


def test_plan_hash_found_in_annotations():
    body = of.desired_request(params())
    current = deployed(body)
    current["annotations"] = {of.HASH_LABEL: current["labels"].pop(of.HASH_LABEL)}
    assert of.plan(current, body, "present")["action"] == "none"


def test_plan_absent():
    body = of.desired_request(params())
    assert of.plan(deployed(body), None, "absent")["action"] == "delete"
    assert of.plan(None, None, "absent")["action"] == "none"


def test_views_hide_provider_labels():
    body = of.desired_request(params(env={"A": "1"}))
    before = of.view_current(deployed(body))
    assert "function" not in before["labels"] and "com.openfaas.function" not in before["labels"]
    after = of.view_desired(body)
    assert after["envVars"] == {"A": "1"} and after["image"] == body["image"]
    assert of.view_current(None) == {} and of.view_desired(None) == {}


def test_find_function():
    assert of.find_function([{"name": "a"}, {"name": "b"}], "b") == {"name": "b"}
    assert of.find_function([], "b") is None


# --- client against a fake gateway ----------------------------------------------------------------


@pytest.fixture
def gateway():
    with FakeGateway() as gw:
        yield gw


def client(gw, password="s3cret", url=None):
    from ansible.module_utils.urls import open_url

    return of.GatewayClient(url or gw.url, "admin", password, open_url, timeout=5)


def test_client_create_list_update_delete(gateway):
    c = client(gateway)
    body = of.desired_request(params())
    assert c.list_functions() == []
    assert c.deploy(body)[0] == 202
    assert of.find_function(c.list_functions(), "resize")["image"] == body["image"]
    assert c.get_function("resize")["availableReplicas"] == 1
    assert c.get_function("nope") is None
    assert c.update(of.desired_request(params(image="127.0.0.1:5000/resize:def")))[0] == 202
    assert c.delete("resize")[0] == 202
    assert c.delete("resize")[0] == 404  # already gone is fine
    assert ("DELETE", "/system/functions", {"functionName": "resize"}) in gateway.requests


def test_client_401_names_user_and_credentials_file(gateway):
    with pytest.raises(of.OpenFaaSError) as err:
        client(gateway, password="wrong").list_functions()
    assert err.value.status == 401
    assert f"the gateway at {gateway.url} refused the credentials for user admin" in err.value.msg
    assert "openfaas_credentials_file" in err.value.msg


def test_client_provider_error_body_is_included(gateway):
    with pytest.raises(of.OpenFaaSError) as err:
        client(gateway).deploy(of.desired_request(params(image="127.0.0.1:5000/Resize:1")))
    assert err.value.status == 400
    assert "deploying function 'resize' failed with HTTP 400" in err.value.msg
    assert "repository name must be lowercase" in err.value.msg


def test_client_connection_refused_names_url():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    from ansible.module_utils.urls import open_url

    c = of.GatewayClient(f"http://127.0.0.1:{port}/", "admin", "x", open_url, timeout=3)
    with pytest.raises(of.OpenFaaSError) as err:
        c.list_functions()
    assert f"cannot reach the OpenFaaS gateway at http://127.0.0.1:{port}" in err.value.msg
    assert "gateway_url" in err.value.msg


def test_client_rejects_non_list(gateway):
    def fake_open_url(url, **kw):
        class Resp:
            def getcode(self):
                return 200

            def read(self):
                return b"<html>nginx</html>"

        return Resp()

    c = of.GatewayClient("http://gw", "admin", "x", fake_open_url)
    with pytest.raises(of.OpenFaaSError, match="did not return a JSON list"):
        c.list_functions()


def test_wait_available_fails_with_image_hint(gateway):
    c = client(gateway)
    body = of.desired_request(params(image="127.0.0.1:5000/missing:1"))
    c.deploy(body)
    gateway.unavailable.add("resize")
    ticks = iter(range(100))
    with pytest.raises(of.OpenFaaSError) as err:
        of.wait_available(c, "resize", body["image"], 3, sleep=lambda s: None, clock=lambda: next(ticks))
    msg = err.value.msg
    assert "function 'resize' has 0 of 1 replicas available after 3s (image 127.0.0.1:5000/missing:1)" in msg
    assert "docker service ps resize --no-trunc" in msg


def test_wait_available_returns_status(gateway):
    c = client(gateway)
    c.deploy(of.desired_request(params()))
    assert of.wait_available(c, "resize", "x", 3, sleep=lambda s: None)["availableReplicas"] == 1
