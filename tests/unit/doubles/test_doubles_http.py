# SPDX-License-Identifier: GPL-3.0-or-later
"""The OpenFaaS test doubles as processes: gateway, basic-auth plugin, NATS double and queue-worker."""

import base64
import json
import os
import re
import subprocess
import sys
import time

from doubles_harness import DOUBLES, PASSWORD, USER, Process, request

AUTH = (USER, PASSWORD)


def test_gateway_healthz_is_the_providers(stack):
    before = len(stack["provider"].calls)
    resp = request(stack["gateway"].url + "/healthz")
    assert (resp.status, resp.body) == (200, b"")  # faas-swarm handlers/health.go: 200, no body
    # gw/main.go:257-258: forwarded to the provider with the gateway's credentials
    assert [(m, p) for m, p, _a, _d in stack["provider"].calls[before:]] == [("GET", "/healthz")]


def test_system_functions_requires_basic_auth(stack):
    url = stack["gateway"].url + "/system/functions"
    anonymous = request(url)
    assert anonymous.status == 401
    assert anonymous.header("WWW-Authenticate") == 'Basic realm="Restricted"'
    assert request(url, auth=(USER, "wrong")).status == 401
    ok = request(url, auth=AUTH)
    assert ok.status == 200
    names = {f["name"]: f for f in json.loads(ok.body)}
    assert set(names) == {"echo", "sleepy"}
    assert all("invocationCount" in f for f in names.values())
    # The gateway presents its own credentials to the provider, as upstream does.
    auth_headers = {h for _method, path, h, _body in stack["provider"].calls if path == "/system/functions"}
    assert auth_headers == {"Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


def test_system_post_is_proxied_to_provider(stack):
    spec = {"service": "made", "image": "fn-echo"}
    resp = request(stack["gateway"].url + "/system/functions", "POST", json.dumps(spec).encode(), auth=AUTH)
    assert resp.status == 202
    assert ("POST", "/system/functions") in {(m, p) for m, p, _auth, _body in stack["provider"].calls}
    assert request(stack["gateway"].url + "/system/functions", "POST", b"{}").status == 401


def test_sync_invocation_through_provider(stack):
    resp = request(
        stack["gateway"].url + "/function/echo/sub/dir?x=1", "POST", b"hello", {"Content-Type": "text/plain"}
    )
    assert resp.status == 200
    assert resp.body == b"HELLO"
    assert resp.header("X-Path") == "/sub/dir?x=1"
    # The provider stub keeps the function's Content-Type; the gateway passes what the provider sends.
    assert resp.header("Content-Type") == "text/x-upper"
    # gw/main.go:144,179: the call-id middleware is not on the /function/ route; nothing times the call either.
    assert resp.header("X-Call-Id") is None
    assert resp.header("X-Start-Time") is None
    assert resp.header("X-Duration-Seconds") is None


def test_function_errors_and_unknown_functions_pass_through(stack):
    failing = request(stack["gateway"].url + "/function/echo/fail", "POST", b"x")
    assert (failing.status, failing.body) == (500, b"boom")
    unknown = request(stack["gateway"].url + "/function/nope", "POST", b"x")
    # scale_from_zero: gw/handlers/scaling.go:35-42 turns the failed replica query into a 404
    assert unknown.status == 404
    assert unknown.body == b"error finding function nope.: server returned non-200 status code (404) for function, nope"


def test_scale_from_zero_scales_to_min_replicas_before_invoking(stack):
    resp = request(stack["gateway"].url + "/function/sleepy", "POST", b"wake up")
    assert (resp.status, resp.body) == (200, b"WAKE UP")
    scale_calls = [
        json.loads(d) for _method, p, _auth, d in stack["provider"].calls if p == "/system/scale-function/sleepy"
    ]
    assert scale_calls == [{"serviceName": "sleepy", "replicas": 2}]


def test_async_invocation_calls_back_with_function_output(stack):
    callbacks = stack["callbacks"]
    resp = request(
        stack["gateway"].url + "/async-function/echo",
        "POST",
        b"hello async",
        {"X-Callback-Url": callbacks.url + "/done", "Content-Type": "text/plain"},
    )
    assert resp.status == 202
    call_id = resp.header("X-Call-Id")
    assert call_id
    path, headers, body = callbacks.get()
    assert path == "/done"
    assert body == b"HELLO ASYNC"
    assert headers["X-Function-Status"] == "200"
    assert headers["X-Function-Name"] == "echo"
    assert headers["X-Call-Id"] == call_id
    assert headers["Content-Type"] == "text/x-upper"
    assert re.fullmatch(r"\d+\.\d{6}", headers["X-Duration-Seconds"])  # qw/main.go:274 "%f"


def test_async_failure_status_reaches_callback(stack):
    callbacks = stack["callbacks"]
    resp = request(
        stack["gateway"].url + "/async-function/echo/fail", "POST", b"x", {"X-Callback-Url": callbacks.url + "/f"}
    )
    assert resp.status == 202
    _path, headers, body = callbacks.get()
    assert (headers["X-Function-Status"], body) == ("500", b"boom")


def test_async_requires_post(stack):
    # gorilla/mux 1.7.3: the route exists for POST only -> 405, no body
    resp = request(stack["gateway"].url + "/async-function/echo")
    assert (resp.status, resp.body) == (405, b"")


def test_metrics_count_invocations(stack):
    request(stack["gateway"].url + "/function/echo", "POST", b"m")
    assert request(stack["gateway"].url + "/metrics").status == 404  # gw/main.go:275-296: metrics on 8082 only
    text = request(f"http://127.0.0.1:{stack['gateway'].second_port}/metrics").body.decode()
    line = next(
        x
        for x in text.splitlines()
        if x.startswith('gateway_function_invocation_total{code="200",function_name="echo"}')
    )
    assert int(line.rsplit(" ", 1)[1]) >= 1
    assert 'gateway_service_count{function_name="echo"} 1' in text


def test_alert_firing_scales_up_and_resolved_scales_to_min(stack):
    provider = stack["provider"]
    provider.functions["echo"]["labels"] = {"com.openfaas.scale.max": "10", "com.openfaas.scale.factor": "50"}
    alert = {"status": "firing", "alerts": [{"status": "firing", "labels": {"function_name": "echo"}}]}
    url = stack["gateway"].url + "/system/alert"
    assert request(url, "POST", json.dumps(alert).encode()).status == 401
    assert request(url, "POST", json.dumps(alert).encode(), auth=AUTH).status == 200
    assert provider.functions["echo"]["replicas"] == 6  # 1 + ceil(10 * 50%)
    assert request(url, "POST", json.dumps(alert).encode(), auth=AUTH).status == 200
    assert provider.functions["echo"]["replicas"] == 10  # capped at max
    alert["alerts"][0]["status"] = "resolved"
    assert request(url, "POST", json.dumps(alert).encode(), auth=AUTH).status == 200
    assert provider.functions["echo"]["replicas"] == 1


def test_basic_auth_plugin_validate(stack):
    url = stack["auth"].url + "/validate"
    denied = request(url)
    assert (denied.status, denied.body) == (401, b"invalid credentials")  # faas-provider auth/basic_auth.go:14-17
    assert denied.header("WWW-Authenticate") == 'Basic realm="Restricted"'
    assert request(url, auth=("admin", "nope")).status == 401
    assert request(url, headers={"Authorization": "Bearer abc"}).status == 401
    assert request(url, auth=AUTH).status == 200
    assert request(url, "POST", b"ignored", auth=AUTH).status == 200


def test_nats_double_redelivers_unacked_messages(stack):
    base = stack["nats"].url + "/channels/unit-test"
    assert request(base + "/messages", "POST", b"m1").status == 201
    first = json.loads(request(base + "/fetch?max=5&ack_wait=0.2", "POST").body)["messages"]
    assert [base64.b64decode(m["data"]) for m in first] == [b"m1"]
    assert first[0]["redelivered"] is False
    time.sleep(0.3)
    again = json.loads(request(base + "/fetch?max=5&wait=1&ack_wait=5", "POST").body)["messages"]
    assert [(m["sequence"], m["redelivered"]) for m in again] == [(first[0]["sequence"], True)]
    assert request(f"{base}/ack/{first[0]['sequence']}", "POST").status == 200
    assert request(f"{base}/ack/{first[0]['sequence']}", "POST").status == 404
    stats = json.loads(request(base).body)
    assert stats == {**stats, "pending": 0, "in_flight": 0, "published": 1, "acked": 1, "stored": 1, "dropped": 0}
    empty = request(base + "/fetch?max=1&wait=0.2", "POST")
    assert json.loads(empty.body) == {"messages": []}


def test_gateway_direct_functions_and_unreachable_upstreams(tmp_path, secrets_dir):
    gateway = Process(
        "gateway.py",
        {
            "functions_provider_url": "http://127.0.0.1:9/",
            "direct_functions": "true",
            "direct_functions_suffix": "invalid",
            "basic_auth": "true",
            "secret_mount_path": secrets_dir,
            "upstream_timeout": "1s",
            "metrics_port": "-1",
        },
        str(tmp_path),
    ).wait_listening()
    try:
        # No auth_proxy_url: upstream always asks the plugin, and a GET to "" fails -> 500 (external_auth.go:24-29)
        assert request(gateway.url + "/system/info", auth=AUTH).status == 500
        # http://echo.invalid:8080 does not resolve: 502 with an empty body (forwarding_proxy.go:130-135)
        direct = request(gateway.url + "/function/echo", "POST", b"x")
        assert (direct.status, direct.body) == (502, b"")
        assert "echo.invalid:8080" in gateway.logs() or "echo.invalid" in gateway.logs()
        # /healthz goes to the provider (gw/main.go:257-258), which is down here
        assert request(gateway.url + "/healthz").status == 502
        # no NATS configured: the async routes do not exist (gw/main.go:232-238)
        assert request(gateway.url + "/async-function/echo", "POST", b"x").status == 404
    finally:
        gateway.stop()


def test_gateway_refuses_to_start_without_secrets(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "functions_provider_url": "http://127.0.0.1:9/",
        "basic_auth": "true",
        "secret_mount_path": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, os.path.join(DOUBLES, "gateway.py")], env=env, capture_output=True, timeout=10, check=False
    )
    assert done.returncode == 2
    assert b"basic-auth-user" in done.stderr


def test_scale_from_zero_trusts_its_cache_for_five_seconds(stack):
    gw, provider = stack["gateway"].url, stack["provider"]
    assert request(gw + "/function/sleepy", "POST", b"one").status == 200  # cached with available replicas
    zero = json.dumps({"serviceName": "sleepy", "replicas": 0}).encode()
    assert request(gw + "/system/scale-function/sleepy", "POST", zero, auth=AUTH).status == 202
    before = len(provider.calls)
    # gw/scaling/function_scaler.go:37-45 + main.go:140: a 5 s cache hit skips the provider query; the call goes
    # straight to the provider, which has no replica now (the stub answers 502).
    assert request(gw + "/function/sleepy", "POST", b"two").status == 502
    assert [p for _m, p, _a, _d in provider.calls[before:]] == ["/function/sleepy"]
