"""The engine proxy of onmetal-faas-endpoints (roles/openfaas/files): faas-swarm's engine socket, through which a
function's service is created in dnsrr mode from the start; everything else passes unchanged, streamed answers too.

Real unix sockets: the proxy in front of the in-memory engine double, and in front of a raw server that streams a
chunked answer and one delimited by the close of the connection.
"""

import copy
import json
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


def closing_engine(path):
    """A unix socket server that answers one request per connection and then closes that connection, as the engine
    did with connections that sat idle; returns the request lines it saw, one list per connection."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    connections = []
    closed = threading.Event()

    def serve():
        while True:
            try:
                conn, _addr = server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as stream:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = stream.readline()
                    if not line:
                        break
                    head += line
                if not head:
                    continue
                connections.append([head.split(b"\r\n")[0]])
                body = b'{"Id": "%d"}' % len(connections)
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                conn.shutdown(socket.SHUT_RDWR)
            closed.set()

    threading.Thread(target=serve, daemon=True).start()
    return server, connections, closed


def read_answer(stream):
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline()
        assert line, "the proxy closed the client's connection without an answer"
        head += line
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    return head.split(b"\r\n")[0], stream.read(length)


def test_a_request_after_the_engine_closed_the_idle_connection_gets_a_new_one(ep, tmp_path):
    # faas-swarm keeps its connection to the proxy alive; the engine had closed the proxy's connection behind it
    # while it sat idle. The next request (a deploy) went to the closed connection: broken pipe, no answer, HTTP 500.
    server, connections, closed = closing_engine(str(tmp_path / "engine.sock"))
    lines = []
    proxy = ep.EngineProxy(str(tmp_path / "p" / "engine.sock"), str(tmp_path / "engine.sock"), lines.append).start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(proxy.path)
            stream = sock.makefile("rb")
            sock.sendall(b"GET /v1.41/networks HTTP/1.1\r\nHost: docker\r\n\r\n")
            assert read_answer(stream) == (b"HTTP/1.1 201 Created", b'{"Id": "1"}')
            assert closed.wait(5)  # the engine's end is closed before the client's next request, as after an idle time
            body = json.dumps(function_spec("idle-echo")).encode()
            sock.sendall(
                b"POST /v1.41/services/create HTTP/1.1\r\nHost: docker\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            assert read_answer(stream) == (b"HTTP/1.1 201 Created", b'{"Id": "2"}')
        assert connections == [[b"GET /v1.41/networks HTTP/1.1"], [b"POST /v1.41/services/create HTTP/1.1"]]
        assert not [line for line in lines if line.startswith("engine proxy:")]
    finally:
        proxy.stop()
        server.close()


def test_an_idle_connection_counts_closed_once_its_peer_closed_it(ep):
    left, right = socket.socketpair()
    try:
        assert ep.upstream_closed(left) is False  # open and quiet: reused
        right.sendall(b"x")
        assert ep.upstream_closed(left) is True  # data nobody asked for: out of step, not reused
        left.recv(1)
        right.close()
        assert ep.upstream_closed(left) is True  # end of file
    finally:
        left.close()
