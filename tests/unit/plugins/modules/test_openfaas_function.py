"""Module-level tests of openfaas_function: create, no-op, update, delete, check mode, diff, errors.

The gateway is an in-memory fake behind an injected ``open_url`` (same signature as Ansible's);
HTTP errors are raised as urllib's HTTPError/URLError, as the real open_url does.
"""

import base64
import io
import json
import urllib.error

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas as of
from ansible_collections.onmetal.faas.plugins.modules import openfaas_function
from ansible_collections.onmetal.faas.tests.unit.plugins.modules._harness import run_module

GATEWAY = "http://127.0.0.1:8080"


class Resp:
    def __init__(self, status, body=b""):
        self.status = status
        self._body = body if isinstance(body, bytes) else json.dumps(body).encode()

    def getcode(self):
        return self.status

    def read(self):
        return self._body


class FakeGateway:
    def __init__(self, password="s3cret", refuse=False):
        self.auth = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        self.functions = {}
        self.calls = []
        self.refuse = refuse
        self.available = 1

    def status(self, name):
        body = self.functions[name]
        labels = {"function": "true", "com.openfaas.function": name, **body["labels"]}
        return {
            "name": name,
            "image": body["image"],
            "replicas": 1,
            "availableReplicas": self.available,
            "envProcess": body.get("envProcess", ""),
            "labels": labels,
        }

    def _error(self, url, code, body):
        raise urllib.error.HTTPError(url, code, "error", {}, io.BytesIO(body))

    def open_url(self, url, data=None, headers=None, method="GET", **kwargs):
        body = json.loads(data) if data else None
        path = url[len(GATEWAY) :]
        self.calls.append((method, path))
        if self.refuse:
            raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
        if headers.get("Authorization") != self.auth:
            self._error(url, 401, b"Unauthorized")
        if path == "/system/functions":
            if method == "GET":
                return Resp(200, [self.status(n) for n in self.functions])
            if method == "POST":
                self.functions[body["service"]] = body
                return Resp(202)
            if method == "PUT":
                old = self.functions[body["service"]]
                self.functions[body["service"]] = {**body, "labels": {**old["labels"], **body["labels"]}}
                return Resp(202)
            if method == "DELETE":
                del self.functions[body["functionName"]]
                return Resp(202)
        if path.startswith("/system/function/"):
            name = path.rsplit("/", 1)[1]
            if name not in self.functions:
                self._error(url, 404, b"Not Found")
            return Resp(200, self.status(name))
        self._error(url, 404, b"404 page not found")

    def writes(self):
        return [c for c in self.calls if c[0] != "GET"]


@pytest.fixture
def gw(monkeypatch):
    fake = FakeGateway()
    monkeypatch.setattr(of, "ansible_open_url", fake.open_url)
    monkeypatch.setattr(of.time, "sleep", lambda s: None)
    return fake


def run(check=False, diff=False, **args):
    base = {"gateway_url": GATEWAY, "password": "s3cret", "name": "resize", "image": "127.0.0.1:5000/resize:abc"}
    base.update(args)
    return run_module(openfaas_function, base, check=check, diff=diff)


def test_four_steps_check_apply_apply_check(gw):
    first = run(check=True, diff=True, scale_min=1, env={"A": "1"})
    assert not first.failed and first.result["changed"] and first.result["action"] == "create"
    assert gw.writes() == [] and gw.functions == {}
    assert first.result["diff"]["before"] == {}
    assert first.result["diff"]["after"]["labels"]["com.openfaas.scale.min"] == "1"

    applied = run(scale_min=1, env={"A": "1"})
    assert applied.result["changed"] and applied.result["http_status"] == 202
    assert gw.writes() == [("POST", "/system/functions")]
    assert gw.functions["resize"]["envVars"] == {"A": "1"}

    again = run(scale_min=1, env={"A": "1"})
    assert not again.result["changed"] and again.result["action"] == "none"
    assert len(gw.writes()) == 1

    check_again = run(check=True, diff=True, scale_min=1, env={"A": "1"})
    assert not check_again.result["changed"]
    assert check_again.result["diff"]["before"] == check_again.result["diff"]["after"]


def test_update_on_env_change_uses_put_and_diff(gw):
    run(env={"A": "1"})
    result = run(diff=True, env={"A": "2"}).result
    assert result["changed"] and result["action"] == "update"
    assert gw.writes()[-1] == ("PUT", "/system/functions")
    assert result["diff"]["after"]["envVars"] == {"A": "2"}
    assert "spec hash differs" in result["reasons"][0]


def test_update_check_mode_does_not_write(gw):
    run()
    result = run(check=True, image="127.0.0.1:5000/resize:def").result
    assert result["changed"] and result["action"] == "update"
    assert gw.writes() == [("POST", "/system/functions")]
    assert gw.functions["resize"]["image"] == "127.0.0.1:5000/resize:abc"


def test_delete_and_absent_noop(gw):
    run()
    assert run(check=True, state="absent").result["changed"]
    assert "resize" in gw.functions
    result = run(state="absent", diff=True).result
    assert result["changed"] and result["action"] == "delete"
    assert result["diff"]["after"] == {}
    assert gw.functions == {}
    assert not run(state="absent").result["changed"]


def test_wait_success_returns_status(gw):
    result = run(wait=True).result
    assert result["status"]["availableReplicas"] == 1


def test_wait_timeout_names_image(gw):
    gw.available = 0
    out = run(wait=True, wait_timeout=0, image="127.0.0.1:5000/does-not-exist:1")
    assert out.failed
    assert "0 of 1 replicas available after 0s (image 127.0.0.1:5000/does-not-exist:1)" in out.result["msg"]
    assert out.result["changed"]  # the function was created before waiting


def test_wait_scale_min_zero_warns(gw):
    out = run(wait=True, scale_min=0)
    assert not out.failed and "wait=true ignored" in out.result["warnings"][0]


def test_wrong_password(gw):
    out = run(password="nope")
    assert out.failed and out.result["http_status"] == 401
    assert out.result["msg"] == (
        f"the gateway at {GATEWAY} refused the credentials for user admin (HTTP 401); check "
        "openfaas_credentials_file (or the username and password options)"
    )


def test_connection_refused(gw):
    gw.refuse = True
    out = run()
    assert out.failed and f"cannot reach the OpenFaaS gateway at {GATEWAY}" in out.result["msg"]


def test_image_required_when_present(gw):
    out = run(image=None)
    assert out.failed and "image" in out.result["msg"]


def test_invalid_options_fail_before_any_request(gw):
    out = run(scale_min=5, scale_max=2)
    assert out.failed and "scale_min (5) is larger than scale_max (2)" in out.result["msg"]
    assert gw.calls == []


def test_password_is_no_log():
    assert of.ARGUMENT_SPEC["password"]["no_log"] is True
