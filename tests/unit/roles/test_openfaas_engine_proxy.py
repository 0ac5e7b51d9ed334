"""The engine proxy of onmetal-faas-endpoints (roles/openfaas/files): faas-swarm's engine socket, through which a
function's service is created in dnsrr mode from the start; everything else passes unchanged, streamed answers too.

Real unix sockets: the proxy in front of the in-memory engine double, and in front of a raw server that streams a
chunked answer and one delimited by the close of the connection.
"""

import copy
import os
import socket
import threading

import pytest

from ansible_collections.onmetal.faas.tests.unit.plugins._fake_engine import FakeEngine


@pytest.fixture
def ep(keeper):
    return keeper


def function_spec(name, **extra):
    spec = {
        "Name": name,
        "Labels": {"com.openfaas.function": name, "function": "true"},
        "TaskTemplate": {"ContainerSpec": {"Image": "127.0.0.1:5000/resize:abc"}, "Networks": [{"Target": "net"}]},
        "Mode": {"Replicated": {"Replicas": 1}},
    }
    spec.update(extra)
    return spec


@pytest.fixture
def proxied(ep, tmp_path):
    engine = FakeEngine(str(tmp_path / "docker.sock"))
    lines = []

    def log(text):
        lines.append(text)

    proxy = ep.EngineProxy(str(tmp_path / "run" / "engine.sock"), engine.socket_path, log).start()
    yield engine, ep.Engine(proxy.path), lines
    proxy.stop()
    engine.close()


def test_a_function_service_is_created_dnsrr_and_start_first(ep, proxied):
    engine, client, lines = proxied
    status, _answer = client.call("POST", "/v1.41/services/create", function_spec("resize"))
    assert status in (200, 201)
    spec = engine.services[0]["Spec"]
    assert spec["EndpointSpec"] == {"Mode": "dnsrr"} and spec["UpdateConfig"] == {"Order": "start-first"}
    assert {k: v for k, v in spec.items() if k not in ("EndpointSpec", "UpdateConfig")} == function_spec("resize")
    assert lines == ["function service resize created in dnsrr mode"]


def test_everything_else_passes_unchanged(ep, proxied):
    engine, client, lines = proxied
    other = {"Name": "func_gateway", "Labels": {"com.docker.stack.namespace": "func"}, "TaskTemplate": {}}
    published = function_spec("web", EndpointSpec={"Mode": "vip", "Ports": [{"TargetPort": 8080}]})
    for spec in (other, published):
        assert client.call("POST", "/services/create", copy.deepcopy(spec))[0] in (200, 201)
    assert [s["Spec"] for s in engine.services] == [other, published]
    assert client.call("GET", "/info")[0] == 200
    status, services = client.call("GET", "/services")
    assert status == 200 and len(services) == 2
    assert lines == []


def test_bodies_that_are_not_a_function_spec_pass(ep):
    assert ep.born_dnsrr(b"not json") == (b"not json", None)
    assert ep.born_dnsrr(b"[1, 2]") == (b"[1, 2]", None)


def raw_engine(path, answers):
    """A unix socket server that reads one request per answer and writes the raw answer (then closes if asked)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    seen = []

    def serve():
        conn, _addr = server.accept()
        stream = conn.makefile("rb")
        for answer, close in answers:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += stream.readline()
            seen.append(head)
            conn.sendall(answer)
            if close:
                break
        conn.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return seen


def test_streamed_answers_pass_chunk_by_chunk_and_until_close(ep, tmp_path):
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    closing = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"
    seen = raw_engine(str(tmp_path / "raw.sock"), [(chunked, False), (closing, True)])
    proxy = ep.EngineProxy(str(tmp_path / "p" / "engine.sock"), str(tmp_path / "raw.sock"), print).start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(proxy.path)
            sock.sendall(b"GET /v1.41/services/x/logs?follow=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
            sock.sendall(b"GET /v1.41/version HTTP/1.1\r\nHost: docker\r\n\r\n")
            data = b""
            while True:
                part = sock.recv(4096)
                if not part:
                    break
                data += part
        assert data == chunked + closing
        assert [head.split(b"\r\n")[0] for head in seen] == [
            b"GET /v1.41/services/x/logs?follow=1 HTTP/1.1",
            b"GET /v1.41/version HTTP/1.1",
        ]
    finally:
        proxy.stop()


def test_the_socket_is_private_and_replaces_a_stale_one(ep, tmp_path):
    path = tmp_path / "run" / "engine.sock"
    path.parent.mkdir()
    path.write_text("left from a previous run")
    proxy = ep.EngineProxy(str(path), str(tmp_path / "docker.sock"), print).start()
    try:
        assert oct(os.stat(path).st_mode & 0o777) == "0o660"
    finally:
        proxy.stop()
