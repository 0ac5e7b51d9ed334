# SPDX-License-Identifier: GPL-3.0-or-later
"""The gateway double's keep-alive client (doublelib.Transport) and Go's serial dial (doublelib.go_dial), on real
sockets on 127.0.0.1 where a socket is needed; dial timing with an injected clock and connect."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import doublelib
import gateway
import pytest
from doubles_harness import PASSWORD, USER, Process, request

AUTH = (USER, PASSWORD)


class Recorder(ThreadingHTTPServer):
    """HTTP/1.1 server on an ephemeral port that records (client port, method, path, body) per request.

    Paths: /ok keep-alive 200; /close 200 with "Connection: close"; /http10 an HTTP/1.0 answer; /chunked a chunked
    body; /eof a body delimited by the close; /ok-then-close 200 (keep-alive headers) and then the server closes
    the connection; /drop-once reads the request and closes without an answer the first time, then 200."""

    daemon_threads = True

    def __init__(self):
        self.seen = []
        self.closed = threading.Semaphore(0)
        self.dropped = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), RecorderHandler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def ports(self):
        with self.lock:
            return [port for port, _method, _path, _body in self.seen]

    def shutdown_request(self, request):
        super().shutdown_request(request)
        self.closed.release()

    def stop(self):
        self.shutdown()
        self.server_close()


class RecorderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server = self.server
        with server.lock:
            server.seen.append((self.client_address[1], self.command, self.path, body))
            first_drop = self.path == "/drop-once" and self.path not in server.dropped
            server.dropped.add(self.path)
        if first_drop:
            self.close_connection = True
            return
        payload = b"answer:" + body
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (payload[:3], payload[3:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/http10":
            self.protocol_version = "HTTP/1.0"
        self.send_response(200)
        if self.path == "/close":
            self.send_header("Connection", "close")
        if self.path != "/eof":
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if self.path in ("/close", "/eof", "/ok-then-close"):
            self.close_connection = True

    do_GET = do_POST = do_HEAD = handle_any  # noqa: N815


@pytest.fixture
def server():
    srv = Recorder()
    yield srv
    srv.stop()


@pytest.fixture
def transport():
    client = doublelib.Transport()
    yield client
    client.close_idle()


# -- pooling -------------------------------------------------------------------------------------------


def test_sequential_requests_reuse_one_connection(server, transport):
    first = transport.request(server.base + "/ok", "POST", b"one", [("X-A", "1")], 5)
    second = transport.request(server.base + "/ok?x=1", "GET", b"", (), 5)
    assert (first[0], first[2], second[0], second[2]) == (200, b"answer:one", 200, b"answer:")
    assert ("X-A", "1") not in first[1] and dict(first[1])["Content-Length"] == "10"
    assert len(server.ports()) == 2 and len(set(server.ports())) == 1
    assert transport.dials == 1 and transport.idle_count() == 1


def test_chunked_body_is_read_whole_and_the_connection_kept(server, transport):
    assert transport.request(server.base + "/chunked", "POST", b"abcdef", (), 5)[2] == b"answer:abcdef"
    assert transport.request(server.base + "/ok", "GET", b"", (), 5)[0] == 200
    assert len(set(server.ports())) == 1


@pytest.mark.parametrize("path", ["/close", "/http10", "/eof"])
def test_connection_close_http10_or_body_to_eof_is_not_pooled(server, transport, path):
    status, _headers, body = transport.request(server.base + path, "POST", b"x", (), 5)
    assert (status, body) == (200, b"answer:x")
    assert transport.idle_count() == 0
    transport.request(server.base + "/ok", "GET", b"", (), 5)
    first, second = server.ports()
    assert first != second and transport.dials == 2


def test_idle_connection_closed_by_the_server_is_not_used_for_a_post(server, transport):
    transport.request(server.base + "/ok-then-close", "GET", b"", (), 5)
    assert transport.idle_count() == 1  # no "Connection: close" in the answer: pooled
    assert server.closed.acquire(timeout=5)  # the server has closed it meanwhile
    time.sleep(0.05)  # let the FIN arrive on loopback
    status, _headers, body = transport.request(server.base + "/ok", "POST", b"payload", (), 5)
    assert (status, body) == (200, b"answer:payload")
    first, second = server.ports()
    assert first != second and transport.dials == 2


def test_get_that_meets_a_closing_reused_connection_is_sent_once_more(server, transport):
    transport.request(server.base + "/ok", "GET", b"", (), 5)
    status, _headers, body = transport.request(server.base + "/drop-once", "GET", b"", (), 5)
    assert (status, body) == (200, b"answer:")
    ports = server.ports()
    assert len(ports) == 3 and ports[0] == ports[1] != ports[2]  # the drop was on the reused connection


def test_post_that_meets_a_closing_reused_connection_is_not_replayed(server, transport):
    transport.request(server.base + "/ok", "GET", b"", (), 5)
    with pytest.raises(doublelib.UpstreamError, match="POST .*/drop-once failed"):
        transport.request(server.base + "/drop-once", "POST", b"once", (), 5)
    assert [path for _p, _m, path, _b in server.seen] == ["/ok", "/drop-once"]


def test_a_fresh_connection_is_never_retried(server, transport):
    with pytest.raises(doublelib.UpstreamError, match="GET .*/drop-once failed"):
        transport.request(server.base + "/drop-once", "GET", b"", (), 5)
    assert len(server.seen) == 1


def test_idle_connections_expire_after_90_seconds(server):
    now = [1000.0]
    client = doublelib.Transport(clock=lambda: now[0])
    try:
        client.request(server.base + "/ok", "GET", b"", (), 5)
        now[0] += 89.0
        client.request(server.base + "/ok", "GET", b"", (), 5)
        now[0] += 90.0
        client.request(server.base + "/ok", "GET", b"", (), 5)
        first, second, third = server.ports()
        assert first == second != third and client.dials == 2
    finally:
        client.close_idle()


class FakeConn:
    def __init__(self):
        self.sock, self.peer = socket.socketpair()
        self.closed = False

    def close(self):
        self.closed = True
        self.sock.close()
        self.peer.close()


def test_pool_is_lifo_and_keeps_its_limits():
    client = doublelib.Transport(max_idle=3, max_idle_per_host=2)
    a, b, c, d, e = (FakeConn() for _index in range(5))
    client._put(("h1", 80), a)
    client._put(("h1", 80), b)
    client._put(("h1", 80), c)  # a third idle one for h1: refused (max_idle_per_host)
    assert c.closed and client.idle_count(("h1", 80)) == 2
    client._put(("h2", 80), d)
    client._put(("h2", 80), e)  # four in all: the oldest (a) goes (max_idle)
    assert a.closed and client.idle_count() == 3
    assert client._take(("h1", 80)) is b
    e.peer.close()  # the server closed it: readable (EOF), dropped instead of used
    assert client._take(("h2", 80)) is d and e.closed
    assert client._take(("h2", 80)) is None
    for conn in (b, d):
        conn.close()


def test_go_defaults_for_idle_limits():
    assert doublelib.Transport(0, 0).max_idle_per_host == 2  # Go's DefaultMaxIdleConnsPerHost
    client = doublelib.Transport(max_idle=0, max_idle_per_host=5)
    conns = [FakeConn() for _index in range(5)]
    for conn in conns:
        client._put(("h", 1), conn)
    assert client.idle_count() == 5  # MaxIdleConns 0: no limit in all
    client.close_idle()


# -- Go's serial dial ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remaining", "addresses", "share"),
    [(60.0, 6, 10.0), (3.0, 3, 2.0), (1.0, 2, 1.0), (8.0, 1, 8.0), (5.0, 2, 2.5), (4.5, 3, 2.0), (1.5, 5, 1.5)],
)
def test_partial_deadline(remaining, addresses, share):
    assert doublelib.partial_deadline(100.0, 100.0 + remaining, addresses) == pytest.approx(100.0 + share)


def test_partial_deadline_without_time_left():
    assert doublelib.partial_deadline(10.0, 10.0, 3) is None
    assert doublelib.partial_deadline(11.0, 10.0, 1) is None


class FakeNet:
    """connect(address, timeout): "dead" addresses take their whole timeout and fail, "refused" ones fail at once."""

    def __init__(self, addresses):
        self.addresses, self.now, self.tried = addresses, 0.0, []

    def resolve(self, host, port):
        return self.addresses

    def clock(self):
        return self.now

    def connect(self, address, timeout):
        self.tried.append((address, round(timeout, 6)))
        if address.startswith("dead"):
            self.now += timeout
            raise socket.timeout(f"{address}: timed out")
        if address.startswith("refused"):
            raise ConnectionRefusedError(f"{address}: refused")
        return f"socket to {address}"


def go_dial(net, timeout):
    return doublelib.go_dial("fn", 8080, timeout, resolve=net.resolve, connect=net.connect, clock=net.clock)


def test_dial_gives_a_silent_address_its_share_only():
    net = FakeNet(["dead-1", "live-2", "live-3", "live-4", "live-5", "live-6"])
    assert go_dial(net, 60.0) == "socket to live-2"
    assert net.tried == [("dead-1", 10.0), ("live-2", 10.0)]


def test_dial_steals_from_the_end_of_the_list_and_reports_the_first_error():
    net = FakeNet(["dead-1", "dead-2", "live-3"])
    with pytest.raises(socket.timeout, match="dead-1"):
        go_dial(net, 3.0)
    assert net.tried == [("dead-1", 2.0), ("dead-2", 1.0)]  # no time left for live-3


def test_dial_moves_on_at_once_after_a_refusal():
    net = FakeNet(["refused-1", "dead-2", "live-3"])
    assert go_dial(net, 8.0) == "socket to live-3"
    assert net.tried == [("refused-1", round(8.0 / 3, 6)), ("dead-2", 4.0), ("live-3", 4.0)]


def test_dial_of_a_single_address_has_the_whole_timeout():
    net = FakeNet(["dead-1"])
    with pytest.raises(socket.timeout):
        go_dial(net, 60.0)
    assert net.tried == [("dead-1", 60.0)]


def dead_first(monkeypatch, port):
    """Make every name resolve to an address that never answers, then 127.0.0.1:port; record the timeouts."""
    live = socket.getaddrinfo("127.0.0.1", port, type=socket.SOCK_STREAM)[0]
    dead = ("dead",)
    tried = []
    real_connect = doublelib._connect_one

    def connect(address, timeout):
        tried.append(timeout)
        if address == dead:
            raise socket.timeout("timed out")
        return real_connect(address, timeout)

    monkeypatch.setattr(doublelib, "_resolve", lambda host, port: [dead, live])
    monkeypatch.setattr(doublelib, "_connect_one", connect)
    return tried


def test_http_request_dials_the_go_way(monkeypatch, server):
    tried = dead_first(monkeypatch, server.server_address[1])
    status, _headers, body = doublelib.http_request(server.base + "/ok", "POST", b"q", (), 6.0)
    assert (status, body) == (200, b"answer:q")
    assert tried[0] == pytest.approx(3.0, abs=0.05) and tried[1] == pytest.approx(6.0, abs=0.1)


def test_transport_dials_the_go_way(monkeypatch, server, transport):
    tried = dead_first(monkeypatch, server.server_address[1])
    assert transport.request(server.base + "/ok", "GET", b"", (), 4.0)[0] == 200
    assert transport.request(server.base + "/ok", "GET", b"", (), 4.0)[0] == 200
    assert tried[0] == pytest.approx(2.0, abs=0.05) and len(tried) == 2  # the second request dialled nothing


def test_unreachable_upstream_is_an_upstream_error(transport):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(doublelib.UpstreamError, match=f"cannot connect to 127.0.0.1:{port}"):
            transport.request(f"http://127.0.0.1:{port}/", "GET", b"", (), 2)
    with pytest.raises(doublelib.UpstreamError, match="unsupported upstream URL"):
        transport.request("", "GET", b"", (), 2)


# -- the gateway double -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "values"),
    [({}, (1024, 1024)), ({"max_idle_conns": "7", "max_idle_conns_per_host": "-1"}, (7, -1))],
)
def test_gateway_idle_settings(env, values):
    config = gateway.Config({"functions_provider_url": "http://p:8080", **env})
    assert (config.max_idle_conns, config.max_idle_conns_per_host) == values


def test_gateway_refuses_a_bad_idle_setting(capsys):
    # gw/types/readconfig.go:147-153 + gw/main.go:32-34: checked before functions_provider_url
    with pytest.raises(SystemExit) as exit_info:
        gateway.Config({"max_idle_conns": "many"})
    assert exit_info.value.code == 1
    assert "invalid value for max_idle_conns: many" in capsys.readouterr().err


def test_gateway_forwards_and_authenticates_through_one_kept_alive_connection(tmp_path, secrets_dir, server):
    proc = Process(
        "gateway.py",
        {
            "functions_provider_url": server.base + "/",
            "direct_functions": "false",
            "basic_auth": "true",
            "secret_mount_path": secrets_dir,
            "auth_proxy_url": server.base + "/ok",  # 200: authorised (the recorder plays the plugin too)
            "upstream_timeout": "5s",
            "metrics_port": "-1",
        },
        str(tmp_path),
    ).wait_listening()
    try:
        assert request(proc.url + "/function/echo", "POST", b"a").status == 200
        assert request(proc.url + "/healthz").status == 200
        assert request(proc.url + "/system/info", auth=AUTH).status == 200
        assert request(proc.url + "/function/echo/x", "POST", b"b").status == 200
    finally:
        proc.stop()
    paths = [path for _port, _method, path, _body in server.seen]
    assert paths == ["/function/echo", "/healthz", "/ok", "/system/info", "/function/echo/x"]
    assert len(set(server.ports())) == 1, server.seen
