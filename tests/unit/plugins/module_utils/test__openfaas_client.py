"""Tests of the gateway client through Ansible's real open_url against the fake gateway in
tests/unit/plugins/_fake_gateway.py (a ThreadingHTTPServer on 127.0.0.1 that answers as gateway 0.18.18
in front of faas-swarm 0.9.0), and of the wait for up-to-date replicas.
"""

import socket

import pytest
from ansible.module_utils.urls import open_url

from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas_client as oc
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_spec import OpenFaaSError, desired_request
from ansible_collections.onmetal.faas.tests.unit.plugins._fake_gateway import FakeGateway
from ansible_collections.onmetal.faas.tests.unit.plugins.module_utils.test__openfaas_spec import params


@pytest.fixture
def gateway():
    with FakeGateway() as gw:
        yield gw


def client(gw, password="s3cret", url=None):
    return oc.GatewayClient(url or gw.url, "admin", password, open_url, timeout=5)


def test_client_create_list_update_scale_delete_with_upstream_codes(gateway):
    c = client(gateway)
    body = desired_request(params())
    assert c.list_functions() == []
    assert c.deploy(body)[0] == 202
    listed = c.list_functions()[0]
    assert listed["image"] == body["image"] and listed["availableReplicas"] == 0  # the list never fills it in
    assert c.get_function("resize")["availableReplicas"] == 1
    assert c.get_function("nope") is None
    assert c.update(desired_request(params(image="127.0.0.1:5000/resize:def")))[0] == 202
    assert c.scale("resize", 3)[0] == 202
    assert gateway.replicas["resize"] == 3
    assert ("POST", "/system/scale-function/resize", {"serviceName": "resize", "replicas": 3}) in gateway.requests
    assert c.delete("resize")[0] == 202
    assert c.delete("resize")[0] == 404  # already gone is fine
    assert ("DELETE", "/system/functions", {"functionName": "resize"}) in gateway.requests


def test_create_of_an_existing_function_is_400_as_upstream(gateway):
    c = client(gateway)
    c.deploy(desired_request(params()))
    with pytest.raises(OpenFaaSError) as err:
        c.deploy(desired_request(params()))
    assert err.value.status == 400 and "already exists" in err.value.msg


def test_client_401_names_user_and_credentials_file(gateway):
    with pytest.raises(OpenFaaSError) as err:
        client(gateway, password="wrong").list_functions()
    assert err.value.status == 401
    assert f"the gateway at {gateway.url} refused the credentials for user admin" in err.value.msg
    assert "openfaas_credentials_file" in err.value.msg


def test_client_provider_error_body_is_included(gateway):
    with pytest.raises(OpenFaaSError) as err:
        client(gateway).deploy(desired_request(params(image="127.0.0.1:5000/Resize:1")))
    assert err.value.status == 400
    assert "deploying function 'resize' failed with HTTP 400" in err.value.msg
    assert "repository name must be lowercase" in err.value.msg


def test_client_connection_refused_names_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    c = oc.GatewayClient(f"http://127.0.0.1:{port}/", "admin", "x", open_url, timeout=3)
    with pytest.raises(OpenFaaSError) as err:
        c.list_functions()
    assert f"cannot reach the OpenFaaS gateway at http://127.0.0.1:{port}" in err.value.msg
    assert "gateway_url" in err.value.msg


def test_client_rejects_non_list():
    def fake_open_url(url, **kw):
        class Resp:
            def getcode(self):
                return 200

            def read(self):
                return b"<html>nginx</html>"

        return Resp()

    c = oc.GatewayClient("http://gw", "admin", "x", fake_open_url)
    with pytest.raises(OpenFaaSError, match="did not return a JSON list"):
        c.list_functions()


def test_secrets_api_as_faas_swarm_answers(gateway):
    c = client(gateway)
    assert c.list_secrets() == []
    assert c.create_secret("token", "v1")[0] == 201
    assert c.list_secrets() == ["token"]
    with pytest.raises(OpenFaaSError) as err:
        c.create_secret("token", "v2")
    assert err.value.status == 500
    with pytest.raises(OpenFaaSError) as err:
        c.update_secret("token", "v2")
    assert err.value.status == 405
    assert c.delete_secret("token")[0] == 200
    with pytest.raises(OpenFaaSError) as err:
        c.delete_secret("token")
    assert err.value.status == 404


def ticks():
    counter = iter(range(10_000))
    return lambda: next(counter)


def test_wait_available_fails_with_image_hint(gateway):
    c = client(gateway)
    body = desired_request(params(image="127.0.0.1:5000/missing:1"))
    c.deploy(body)
    gateway.unavailable.add("resize")
    with pytest.raises(OpenFaaSError) as err:
        oc.wait_available(c, "resize", body["image"], 3, sleep=lambda s: None, clock=ticks())
    msg = err.value.msg
    assert "function 'resize' has 0 of 1 replicas available after 3s (image 127.0.0.1:5000/missing:1)" in msg
    assert "docker service ps resize --no-trunc" in msg


def test_wait_available_returns_status(gateway):
    c = client(gateway)
    c.deploy(desired_request(params()))
    assert oc.wait_available(c, "resize", None, 3, sleep=lambda s: None)["availableReplicas"] == 1


def test_wait_after_an_image_update_counts_only_up_to_date_replicas(gateway):
    """Three replicas run; after the update none is up to date, and the wait must see all three new ones."""
    c = client(gateway)
    c.deploy(desired_request(params(scale_min=3)))
    oc.wait_available(c, "resize", None, 10, sleep=lambda s: None, clock=ticks())
    new = desired_request(params(scale_min=3, image="127.0.0.1:5000/resize:def"))
    c.update(new)
    seen = []
    real_get = c.get_function

    def recording_get(name):
        status = real_get(name)
        seen.append(status["availableReplicas"])
        return status

    c.get_function = recording_get
    status = oc.wait_available(c, "resize", new["image"], 10, sleep=lambda s: None, clock=ticks())
    assert status["availableReplicas"] == 3 and status["image"] == new["image"]
    assert seen == [1, 2, 3]  # did not return at the first up-to-date task


def test_wait_fails_at_once_when_swarm_rolled_back(gateway):
    c = client(gateway)
    c.deploy(desired_request(params()))
    with pytest.raises(OpenFaaSError, match="runs image 127.0.0.1:5000/resize:abc instead of .*rolled the update"):
        oc.wait_available(c, "resize", "127.0.0.1:5000/resize:def", 10, sleep=lambda s: None, clock=ticks())
