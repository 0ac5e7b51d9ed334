# SPDX-License-Identifier: GPL-3.0-or-later
"""Upstream behaviours the doubles were corrected to (issue 12): start-up exits, no retries, provider proxy."""

import http.server
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time

import faas_swarm
import pytest
import requests
from doubles_harness import DOUBLES, PASSWORD, USER, FunctionHandler, Process, request, serve

AUTH = (USER, PASSWORD)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(script, env, timeout=20):
    full = {"PATH": os.environ.get("PATH", ""), "bind_address": "127.0.0.1", "port": "0", **env}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, os.path.join(DOUBLES, script)], env=full, capture_output=True, timeout=timeout, check=False
    )
    return done, time.monotonic() - start


def test_gateway_exits_1_when_nats_is_not_there(secrets_dir):
    # gw/main.go:151-161 log.Fatalln; nats.go ErrNoServers
    env = {"functions_provider_url": "http://127.0.0.1:9/", "faas_nats_address": "127.0.0.1"}
    done, _seconds = _run("gateway.py", {**env, "faas_nats_port": str(_free_port())})
    assert done.returncode == 1
    assert b"nats: no servers available for connection" in done.stderr
    assert b"LISTENING" not in done.stdout  # nothing listens before NATS is connected


def test_queue_worker_panics_exit_2_when_nats_is_not_there():
    port = _free_port()
    done, _seconds = _run("queue_worker.py", {"faas_nats_address": "127.0.0.1", "faas_nats_port": str(port)})
    assert done.returncode == 2  # qw/main.go:211-213 log.Panic
    want = f"panic: can't connect to nats://127.0.0.1:{port}: nats: no servers available for connection"
    assert want.encode() in done.stderr


def test_clients_give_stan_connect_timeout_while_streaming_is_not_ready(tmp_path):
    nats = Process("nats_streaming.py", {"streaming_ready_delay": "30s"}, str(tmp_path)).wait_listening()
    try:
        env = {"faas_nats_address": "127.0.0.1", "faas_nats_port": str(nats.port)}
        done, seconds = _run("queue_worker.py", env)
        assert done.returncode == 2
        assert b"stan: connect request timeout (possibly wrong cluster ID?)" in done.stderr
        assert seconds >= 2.0  # stan.go:35 DefaultConnectWait
        done, _seconds = _run("gateway.py", {**env, "functions_provider_url": "http://127.0.0.1:9/"})
        assert done.returncode == 1
        assert b"stan: connect request timeout" in done.stderr
    finally:
        nats.stop()


def test_basic_auth_plugin_panics_without_secrets(tmp_path):
    done, _seconds = _run("basic_auth.py", {"secret_mount_path": str(tmp_path)})
    assert done.returncode == 2  # auth/basic-auth/main.go:40-43
    assert b"unable to read basic auth credentials" in done.stderr


def test_queue_worker_does_not_retry_and_calls_back_once(stack):
    FunctionHandler.calls.pop("/busy", None)
    callbacks = stack["callbacks"]
    headers = {"X-Callback-Url": callbacks.url + "/busy", "X-Call-Id": "given-id"}
    resp = request(stack["gateway"].url + "/async-function/echo/busy", "POST", b"x", headers)
    assert resp.status == 202
    assert resp.header("X-Call-Id") is None  # callid_middleware.go:14-18: only added when the request had none
    _path, got, body = callbacks.get()
    assert (got["X-Function-Status"], got["X-Call-Id"], body) == ("503", "given-id", b"busy")
    time.sleep(0.5)
    assert FunctionHandler.calls["/busy"] == 1  # qw/main.go:90: one attempt, 503 is not retried


def test_alert_for_unreadable_function_is_200_and_skipped(stack):
    alert = {"alerts": [{"status": "firing", "labels": {"function_name": "ghost"}}]}
    resp = request(stack["gateway"].url + "/system/alert", "POST", json.dumps(alert).encode(), auth=AUTH)
    assert (resp.status, resp.body) == (200, b"")  # alerthandler.go:79-80: GetReplicas error -> nothing, 200
    bad = request(stack["gateway"].url + "/system/alert", "POST", b"{", auth=AUTH)
    assert (bad.status, bad.body) == (400, b"Unable to parse alert, bad format.")


class _FakeSwarm:
    def __init__(self, host):
        self.host = host

    def resolve(self, name):
        if name == "ghost":
            raise LookupError("could not resolve: ghost")
        return self.host


def _provider(host):
    handler = type("Handler", (faas_swarm.ProviderHandler,), {"swarm": _FakeSwarm(host), "proxy_timeout": 2.0})
    return serve(handler)


def _closed_loopback_8080():
    """A loopback address where nothing listens on the watchdog port (a process on *:8080 answers on all)."""
    for last in (1, 2, 3):
        try:
            socket.create_connection((f"127.0.0.{last}", 8080), timeout=1).close()
        except OSError:
            return f"127.0.0.{last}"
    pytest.skip("something on this machine listens on *:8080, so no loopback address refuses the proxy's call")


def test_provider_proxy_content_type_and_failures():
    function = serve(FunctionHandler)
    provider = _provider(_closed_loopback_8080())
    base = f"http://127.0.0.1:{provider.server_address[1]}"
    try:
        missing = request(base + "/function/ghost", "POST", b"x")
        assert (missing.status, missing.body) == (404, b"Cannot find service: ghost.\n")  # proxy.go:143-149
        unreachable = request(base + "/function/echo", "POST", b"x", {"Content-Type": "image/png"})
        # nothing listens on <address>:8080: proxy.go:164-169, once, 500
        assert (unreachable.status, unreachable.body) == (500, b"Can't reach service for: echo.\n")
    finally:
        for server in (function, provider):
            server.shutdown()
            server.server_close()


def test_provider_answers_with_the_requests_content_type(monkeypatch):
    function = serve(FunctionHandler)
    port = function.server_address[1]
    monkeypatch.setattr(faas_swarm.Swarm, "resolve", lambda self, name: "127.0.0.1")
    real_request = faas_swarm.doublelib.http_request

    def to_function(url, *args, **kwargs):
        return real_request(url.replace("127.0.0.1:8080", f"127.0.0.1:{port}"), *args, **kwargs)

    monkeypatch.setattr(faas_swarm.doublelib, "http_request", to_function)
    swarm = faas_swarm.Swarm.__new__(faas_swarm.Swarm)
    handler = type("Handler", (faas_swarm.ProviderHandler,), {"swarm": swarm, "proxy_timeout": 2.0})
    provider = serve(handler)
    base = f"http://127.0.0.1:{provider.server_address[1]}"
    try:
        png = request(base + "/function/echo/x?q=1", "POST", b"abc", {"Content-Type": "image/png"})
        # the function says text/x-upper; faas-swarm answers with the request's type (proxy.go:176,228)
        assert (png.status, png.body, png.header("Content-Type")) == (200, b"ABC", "image/png")
        assert png.header("X-Path") == "/x?q=1"
        plain = request(base + "/function/echo", "GET")
        assert plain.header("Content-Type") == "text/x-upper"
        assert request(base + "/function/echo", "HEAD").status == 405  # proxy.go:73-84
    finally:
        for server in (function, provider):
            server.shutdown()
            server.server_close()


def test_nats_restart_forces_clients_to_connect_again(tmp_path):
    nats = Process("nats_streaming.py", {}, str(tmp_path)).wait_listening()
    try:
        base = nats.url
        body = json.dumps({"client_id": "c1", "wait": 1}).encode()
        assert request(base + "/connect", "POST", body).status == 200
        assert request(base + "/ping", "POST", headers={"X-Client-Id": "c1"}).status == 200
        assert request(base + "/ping", "POST", headers={"X-Client-Id": "other"}).status == 404
    finally:
        nats.stop()


class _Engine(http.server.BaseHTTPRequestHandler):
    """A Docker engine on a unix socket that ends a kept-alive connection instead of answering the first services list,
    as an engine (or a proxy in front of it) that restarted or timed the connection out would."""

    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *args):
        return

    def address_string(self):
        return "engine"

    def do_GET(self):  # noqa: N802 - http.server's name
        self.seen.append(self.path)
        if self.path.endswith("/services") and self.seen.count(self.path) == 1:
            self.close_connection = True
            return
        data = json.dumps({"ApiVersion": "1.41", "Version": "20.10"} if "version" in self.path else []).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def test_provider_asks_the_engine_again_on_a_closed_kept_alive_connection(tmp_path, monkeypatch):
    # The upstream client is Go's: http.Transport replays a GET whose reused connection closed before any answer.
    _Engine.seen = []
    path = str(tmp_path / "engine.sock")
    server = _UnixServer(path, _Engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    try:
        client = faas_swarm.connect_docker()
        assert client.api.services() == []
        assert _Engine.seen[-2:] == ["/v1.41/services"] * 2  # ended once, asked again on a new connection
    finally:
        server.shutdown()
        server.server_close()


class _BrokenSwarm:
    def get(self, name):
        raise requests.exceptions.ConnectionError(f"Connection aborted while reading {name}")


def test_provider_answers_500_with_the_error_when_the_engine_call_breaks():
    # replica_reader.go:28-33: a failed Docker call is a 500 with the error's text, never a dropped connection
    handler = type("Handler", (faas_swarm.ProviderHandler,), {"swarm": _BrokenSwarm(), "proxy_timeout": 2.0})
    provider = serve(handler)
    try:
        resp = request(f"http://127.0.0.1:{provider.server_address[1]}/system/function/resize", "GET")
        assert (resp.status, resp.body) == (500, b"Connection aborted while reading resize")
    finally:
        provider.shutdown()
        provider.server_close()
