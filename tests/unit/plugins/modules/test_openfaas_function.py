"""Module-level tests of openfaas_function: create, no-op, update, delete, check mode, diff, errors.

The gateway is the HTTP fake of tests/unit/plugins/_fake_gateway.py (faas-swarm 0.9.0's status codes,
replica reset on update, up-to-date replica counting), reached through Ansible's real open_url.
"""

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas as of
from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas_client as oc
from ansible_collections.onmetal.faas.plugins.modules import openfaas_function
from ansible_collections.onmetal.faas.tests.unit.plugins._fake_gateway import FakeGateway
from ansible_collections.onmetal.faas.tests.unit.plugins.modules._harness import run_module


@pytest.fixture
def gw(monkeypatch):
    monkeypatch.setattr(oc.time, "sleep", lambda s: None)
    with FakeGateway() as fake:
        yield fake


@pytest.fixture
def run(gw):
    def run(check=False, diff=False, **args):
        base = {"gateway_url": gw.url, "password": "s3cret", "name": "resize", "image": "127.0.0.1:5000/resize:abc"}
        base.update(args)
        return run_module(openfaas_function, base, check=check, diff=diff)

    return run


def test_four_steps_check_apply_apply_check(gw, run):
    first = run(check=True, diff=True, scale_min=1, env={"A": "1"})
    assert not first.failed and first.result["changed"] and first.result["action"] == "create"
    assert gw.writes() == [] and gw.functions == {}
    assert first.result["diff"]["before"] == {}
    assert first.result["diff"]["after"]["labels"]["com.openfaas.scale.min"] == "1"

    applied = run(scale_min=1, env={"A": "1"})
    assert applied.result["changed"] and applied.result["http_status"] == 202
    assert [w[:2] for w in gw.writes()] == [("POST", "/system/functions")]
    assert gw.functions["resize"]["envVars"] == {"A": "1"}

    again = run(scale_min=1, env={"A": "1"})
    assert not again.result["changed"] and again.result["action"] == "none"
    assert len(gw.writes()) == 1

    check_again = run(check=True, diff=True, scale_min=1, env={"A": "1"})
    assert not check_again.result["changed"]
    assert check_again.result["diff"]["before"] == check_again.result["diff"]["after"]


def test_cpu_reaches_the_provider_as_nano_cpus(gw, run):
    out = run(limits={"cpu": "0.5", "memory": "128m"}, requests={"cpu": "250m"})
    assert not out.failed, out.result
    stored = gw.functions["resize"]
    assert stored["limits"] == {"cpu": "500000000", "memory": "128m"}
    assert stored["requests"] == {"cpu": "250000000"}
    assert not run(limits={"cpu": "500m", "memory": "128m"}, requests={"cpu": "0.25"}).result["changed"]


def test_bad_cpu_fails_before_any_request(gw, run):
    out = run(limits={"cpu": "half"})
    assert out.failed and "limits.cpu 'half' is not a CPU amount" in out.result["msg"]
    assert gw.requests == []


def test_update_on_env_change_uses_put_and_diff(gw, run):
    run(env={"A": "1"})
    result = run(diff=True, env={"A": "2"}).result
    assert result["changed"] and result["action"] == "update" and result["http_status"] == 202
    assert gw.writes()[-1][:2] == ("PUT", "/system/functions")
    assert result["diff"]["after"]["envVars"] == {"A": "2"}
    assert "spec hash differs" in result["reasons"][0]


def test_update_keeps_the_replicas_the_gateway_scaled_to(gw, run):
    run(scale_min=1, scale_max=10)
    gw.replicas["resize"] = 4  # the gateway's auto-scaler (POST /system/scale-function) raised it
    out = run(scale_min=1, scale_max=10, image="127.0.0.1:5000/resize:def")
    assert out.result["action"] == "update" and out.result["replicas"] == 4
    methods = [w[:2] for w in gw.writes()]
    assert methods[-2:] == [("PUT", "/system/functions"), ("POST", "/system/scale-function/resize")]
    assert gw.writes()[-1][2] == {"serviceName": "resize", "replicas": 4}
    assert gw.replicas["resize"] == 4  # faas-swarm alone would have reset it to 1


def test_update_keeps_replicas_within_a_lowered_max(gw, run):
    run(scale_min=1, scale_max=10)
    gw.replicas["resize"] = 8
    out = run(scale_min=1, scale_max=5)
    assert out.result["replicas"] == 5 and gw.replicas["resize"] == 5


def test_update_at_the_minimum_does_not_scale(gw, run):
    run(scale_min=2)
    run(scale_min=2, env={"B": "1"})
    assert [w[1] for w in gw.writes()] == ["/system/functions", "/system/functions"]


def test_update_check_mode_reports_replicas_and_does_not_write(gw, run):
    run()
    gw.replicas["resize"] = 3
    result = run(check=True, image="127.0.0.1:5000/resize:def").result
    assert result["changed"] and result["action"] == "update" and result["replicas"] == 3
    assert len(gw.writes()) == 1
    assert gw.functions["resize"]["image"] == "127.0.0.1:5000/resize:abc"


def test_create_that_meets_an_existing_function_updates_it(gw, run, monkeypatch):
    """Listed as absent, created by someone else before the POST: upstream answers 400, the module updates."""
    run(image="127.0.0.1:5000/resize:old")
    real = gw.dispatch
    calls = {"list": 0}

    def hide_once(method, path, body):
        if method == "GET" and path == "/system/functions" and calls["list"] == 0:
            calls["list"] += 1
            return 200, []
        return real(method, path, body)

    monkeypatch.setattr(gw, "dispatch", hide_once)
    out = run(image="127.0.0.1:5000/resize:new")
    assert not out.failed, out.result
    assert out.result["action"] == "update" and out.result["http_status"] == 202
    assert "created concurrently (the gateway answered HTTP 400)" in out.result["reasons"][-1]
    assert gw.functions["resize"]["image"] == "127.0.0.1:5000/resize:new"


def test_create_400_for_another_reason_is_reported(gw, run):
    out = run(image="127.0.0.1:5000/Resize:1")
    assert out.failed and out.result["http_status"] == 400
    assert "repository name must be lowercase" in out.result["msg"]


def test_delete_and_absent_noop(gw, run):
    run()
    assert run(check=True, state="absent").result["changed"]
    assert "resize" in gw.functions
    result = run(state="absent", diff=True).result
    assert result["changed"] and result["action"] == "delete" and result["http_status"] == 202
    assert result["diff"]["after"] == {}
    assert gw.functions == {}
    assert not run(state="absent").result["changed"]


def test_wait_success_returns_status(gw, run):
    result = run(wait=True).result
    assert result["status"]["availableReplicas"] == 1


def test_wait_after_image_update_waits_for_every_new_replica(gw, run):
    run(scale_min=3, wait=True)
    result = run(scale_min=3, wait=True, image="127.0.0.1:5000/resize:def").result
    assert result["status"]["availableReplicas"] == 3 and result["status"]["image"].endswith(":def")
    polls = [r for r in gw.requests if r[1] == "/system/function/resize"]
    assert len(polls) >= 4  # the replica read after the PUT, then one poll per new task


def test_wait_timeout_names_image(gw, run):
    gw.image_ok = lambda image: "does-not-exist" not in image
    out = run(wait=True, wait_timeout=0, image="127.0.0.1:5000/does-not-exist:1")
    assert out.failed
    assert "0 of 1 replicas available after 0s (image 127.0.0.1:5000/does-not-exist:1)" in out.result["msg"]
    assert out.result["changed"]  # the function was created before waiting


@pytest.mark.parametrize("args", [dict(scale_min=0), dict(labels={"com.openfaas.scale.min": "0"})])
def test_wait_scale_min_zero_warns(gw, run, args):
    out = run(wait=True, **args)
    assert not out.failed and "wait=true ignored" in out.result["warnings"][0]


def test_wrong_password(gw, run):
    out = run(password="nope")
    assert out.failed and out.result["http_status"] == 401
    assert out.result["msg"] == (
        f"the gateway at {gw.url} refused the credentials for user admin (HTTP 401); check "
        "openfaas_credentials_file (or the username and password options)"
    )


def test_connection_refused(gw):
    url = gw.url
    gw.server.server_close()
    out = run_module(openfaas_function, {"gateway_url": url, "password": "x", "name": "r", "image": "i"})
    assert out.failed and f"cannot reach the OpenFaaS gateway at {url}" in out.result["msg"]


def test_image_required_when_present(run):
    out = run(image=None)
    assert out.failed and "image" in out.result["msg"]


def test_invalid_options_fail_before_any_request(gw, run):
    out = run(scale_min=5, scale_max=2)
    assert out.failed and "scale min (5) is larger than scale max (2)" in out.result["msg"]
    out = run(state="absent", name="Bad_Name")
    assert out.failed and "function name 'Bad_Name' is not valid" in out.result["msg"]
    assert gw.requests == []


def test_password_is_no_log():
    assert of.ARGUMENT_SPEC["password"]["no_log"] is True
