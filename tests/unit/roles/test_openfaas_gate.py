"""The readiness gate of onmetal-faas-endpoints (roles/openfaas/files): the gateway's replica query counts only the
replicas the gateway's own DNS already answers, every other provider call passes through unchanged.

Real sockets throughout: a DNS server on 127.0.0.1 speaking the wire format, a faas-swarm stand-in over HTTP, the
gate's HTTP server, and (as root) a network namespace made with unshare(1) that the gate enters with setns(2).
"""

import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture
def ep(keeper):
    return keeper


def answer(query, addresses, rcode=0, pointer=True, extra_cname=False):
    """A DNS answer to ``query`` as Docker's embedded server sends it (name compression in the answers)."""
    qid = struct.unpack(">H", query[:2])[0]
    question = query[12:]
    records = b""
    count = 0
    if extra_cname:
        records += b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, 2) + b"\xc0\x0c"
        count += 1
    for address in addresses:
        name = b"\xc0\x0c" if pointer else question[:-4]
        records += name + struct.pack(">HHIH", 1, 1, 600, 4) + socket.inet_aton(address)
        count += 1
    flags = 0x8180 | rcode
    return struct.pack(">HHHHHH", qid, flags, 1, count, 0, 0) + question + records


def test_query_asks_for_the_a_records_of_the_name(ep):
    packet = ep.dns_query("resize", 0x1234)
    assert packet == struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x06resize\x00" + struct.pack(">HH", 1, 1)
    assert ep.dns_query("tasks.resize.", 7)[12:] == b"\x05tasks\x06resize\x00\x00\x01\x00\x01"


@pytest.mark.parametrize("pointer", [True, False])
def test_addresses_are_read_with_and_without_compression(ep, pointer):
    query = ep.dns_query("resize", 99)
    got = ep.dns_addresses(answer(query, ["10.0.1.5", "10.0.1.9"], pointer=pointer, extra_cname=True), 99)
    assert got == ["10.0.1.5", "10.0.1.9"]


def test_no_such_name_is_no_address_and_errors_are_errors(ep):
    query = ep.dns_query("resize", 5)
    assert ep.dns_addresses(answer(query, [], rcode=3), 5) == []
    assert ep.dns_addresses(answer(query, []), 5) == []
    with pytest.raises(ValueError, match="DNS error code 2"):
        ep.dns_addresses(answer(query, [], rcode=2), 5)
    with pytest.raises(ValueError, match="not an answer to this query"):
        ep.dns_addresses(answer(query, ["10.0.0.1"]), 6)
    with pytest.raises(ValueError, match="short"):
        ep.dns_addresses(b"\x00\x05", 5)
    cut = answer(query, ["10.0.0.1"])
    for end in (len(cut) - 2, len(query) + 3):
        with pytest.raises(ValueError, match="unreadable DNS answer"):
            ep.dns_addresses(cut[:end], 5)


class DnsServer:
    """A UDP DNS server on 127.0.0.1: names -> addresses; first answers a stray packet with a wrong id."""

    def __init__(self, table):
        self.table = table
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = self.sock.getsockname()
        self.queries = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            labels, pos = [], 12
            while data[pos]:
                labels.append(data[pos + 1 : pos + 1 + data[pos]].decode())
                pos += 1 + data[pos]
            name = ".".join(labels)
            self.queries.append(name)
            stray = bytearray(answer(data, ["192.0.2.1"]))
            stray[0:2] = struct.pack(">H", (struct.unpack(">H", data[:2])[0] + 1) & 0xFFFF)
            self.sock.sendto(bytes(stray), peer)
            found = self.table.get(name)
            self.sock.sendto(answer(data, found or [], rcode=0 if found is not None else 3), peer)

    def close(self):
        self.sock.close()


def test_resolve_asks_the_server_and_ignores_stray_answers(ep):
    dns = DnsServer({"resize": ["10.0.1.5"], "faas-swarm": ["10.0.1.2", "10.0.1.3"]})
    try:
        assert ep.resolve("resize", server=dns.address) == ["10.0.1.5"]
        assert sorted(ep.resolve("faas-swarm", server=dns.address)) == ["10.0.1.2", "10.0.1.3"]
        assert ep.resolve("gone", server=dns.address) == []
        assert dns.queries == ["resize", "faas-swarm", "gone"]
    finally:
        dns.close()


def test_resolve_times_out_without_a_server(ep):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(OSError):
            ep.resolve("resize", server=silent.getsockname(), timeout=0.2)


def function_json(available, replicas=1):
    return json.dumps(
        {"name": "resize", "image": "127.0.0.1:5000/resize:1", "replicas": replicas, "availableReplicas": available}
    ).encode()


def test_gate_lowers_available_replicas_to_what_dns_answers(ep):
    body, why = ep.gate_replicas(function_json(2, 2), "resize", lambda name: ["10.0.1.5"])
    assert json.loads(body)["availableReplicas"] == 1
    assert json.loads(body)["replicas"] == 2
    assert why == "resize: faas-swarm counts 2 available, DNS has 1"
    body, why = ep.gate_replicas(function_json(1), "resize", lambda name: [])
    assert json.loads(body)["availableReplicas"] == 0


def test_gate_keeps_the_answer_when_dns_has_them_or_there_is_nothing_to_lower(ep):
    for body, lookup in [
        (function_json(1), lambda name: ["10.0.1.5"]),
        (function_json(1), lambda name: ["10.0.1.5", "10.0.1.6"]),  # the old task's record not yet gone
        (function_json(0, 0), lambda name: pytest.fail("no lookup for a function at zero")),
        (b"not json", lambda name: pytest.fail("no lookup")),
        (b'{"name": "resize"}', lambda name: pytest.fail("no lookup")),
    ]:
        assert ep.gate_replicas(body, "resize", lookup) == (body, None)


def test_gate_counts_a_dns_failure_as_no_address(ep):
    def broken(name):
        raise OSError("timed out")

    body, why = ep.gate_replicas(function_json(1), "resize", broken)
    assert json.loads(body)["availableReplicas"] == 0 and why.endswith("DNS has 0")


class StepClock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_waking_function_is_answered_as_soon_as_its_record_reaches_the_dns(ep):
    answers = iter([[], [], [], ["10.0.1.5"]])
    clock = StepClock()
    body, why = ep.gate_replicas(
        function_json(1), "resize", lambda name: next(answers), hold=0.3, clock=clock, sleep=clock.sleep
    )
    assert (body, why) == (function_json(1), None)  # not lowered: the gateway dials it at once
    assert clock.sleeps == [ep.WAKE_STEP] * 3


def test_the_hold_is_bounded_and_then_the_answer_is_lowered(ep):
    clock = StepClock()
    body, why = ep.gate_replicas(function_json(1), "resize", lambda name: [], hold=0.3, clock=clock, sleep=clock.sleep)
    assert json.loads(body)["availableReplicas"] == 0 and why.endswith("DNS has 0")
    assert 0.3 <= clock.now < 0.3 + 2 * ep.WAKE_STEP


def test_no_hold_when_the_dns_has_some_addresses_or_the_hold_is_off(ep):
    clock = StepClock()
    body, why = ep.gate_replicas(
        function_json(2, 2), "resize", lambda name: ["10.0.1.5"], hold=0.3, clock=clock, sleep=clock.sleep
    )
    assert json.loads(body)["availableReplicas"] == 1 and clock.sleeps == []  # the gateway proceeds with one
    body, why = ep.gate_replicas(function_json(1), "resize", lambda name: [], clock=clock, sleep=clock.sleep)
    assert json.loads(body)["availableReplicas"] == 0 and clock.sleeps == []


class FaasSwarm(BaseHTTPRequestHandler):
    """faas-swarm's API as the gate sees it: the replica query, a deploy (202), records every request."""

    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *args):
        return

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append((self.command, self.path, self.headers.get("Authorization"), body))
        if self.path == "/system/function/resize":
            status, data = 200, function_json(1)
        elif self.path == "/system/functions" and self.command == "POST":
            status, data = 202, b""
        else:
            status, data = 404, b"not found\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Provider", "faas-swarm")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = handle_any


@pytest.fixture
def provider():
    FaasSwarm.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FaasSwarm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port, method, path, body=None, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_gate_server_passes_calls_through_and_gates_the_replica_query(ep, provider):
    lines, dns = [], {"resize": []}

    def log(text):  # a plain function, as main() passes: it must not become a method of the handler
        lines.append(text)

    url = f"http://127.0.0.1:{provider.server_address[1]}/"
    gate = ep.Gate("c0ffee" * 10, 0, free_port(), ep.Provider(url), log, enter=lambda pid: None)
    ep.GateHandler.lookup = staticmethod(lambda name: dns[name])
    try:
        gate.start()
        status, headers, body = call(gate.port, "GET", "/system/function/resize", headers={"Authorization": "Basic x"})
        assert status == 200 and json.loads(body)["availableReplicas"] == 0
        assert headers["X-Provider"] == "faas-swarm"
        assert lines == ["gate: resize: faas-swarm counts 1 available, DNS has 0: not available yet"]
        dns["resize"] = ["10.0.1.5"]
        status, _headers, body = call(gate.port, "GET", "/system/function/resize")
        assert status == 200 and json.loads(body)["availableReplicas"] == 1
        status, _headers, body = call(gate.port, "POST", "/system/functions", b'{"service": "resize"}')
        assert status == 202 and body == b""
        status, _headers, body = call(gate.port, "GET", "/system/nothing")
        assert status == 404 and body == b"not found\n"
        assert FaasSwarm.seen[0][:3] == ("GET", "/system/function/resize", "Basic x")
        assert FaasSwarm.seen[2] == ("POST", "/system/functions", None, b'{"service": "resize"}')
    finally:
        gate.stop()
        ep.GateHandler.lookup = staticmethod(ep.resolve)


def test_gate_server_reads_a_chunked_body(ep, provider):
    url = f"http://127.0.0.1:{provider.server_address[1]}/"
    gate = ep.Gate("ab" * 32, 0, free_port(), ep.Provider(url), print, enter=lambda pid: None).start()
    try:
        with socket.create_connection(("127.0.0.1", gate.port), timeout=5) as sock:
            sock.sendall(
                b"POST /system/functions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b'5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
            )
            assert sock.recv(4096).startswith(b"HTTP/1.1 202 ")
        assert FaasSwarm.seen[-1] == ("POST", "/system/functions", None, b'{"a": 1}')
    finally:
        gate.stop()


def test_provider_tries_every_address_and_says_why_none_answered(ep, provider):
    good = provider.server_address[1]
    closed = free_port()
    lookups = {"faas-swarm": ["127.0.0.1"]}
    prov = ep.Provider(f"http://faas-swarm:{good}/", lookup=lambda name: list(lookups[name]))
    assert prov.call("GET", "/system/function/resize", {}, None)[0] == 200
    dead = ep.Provider(f"http://faas-swarm:{closed}/", lookup=lambda name: ["127.0.0.1", "127.0.0.1"])
    with pytest.raises(OSError, match="no faas-swarm replica answered: 127.0.0.1: .*refused"):
        dead.call("GET", "/", {}, None)
    nobody = ep.Provider("http://faas-swarm:8080/", lookup=lambda name: [])
    with pytest.raises(OSError, match="faas-swarm has no address"):
        nobody.call("GET", "/", {}, None)


def test_gate_answers_502_when_no_provider_answers(ep):
    lines = []

    def log(text):
        lines.append(text)

    gate = ep.Gate(
        "d" * 64, 0, free_port(), ep.Provider(f"http://127.0.0.1:{free_port()}/"), log, enter=lambda pid: None
    ).start()
    try:
        status, _headers, body = call(gate.port, "GET", "/system/functions")
        assert status == 502 and b"no faas-swarm replica answered" in body
        assert lines[0].startswith("gate: GET /system/functions: no faas-swarm replica answered")
    finally:
        gate.stop()


class Flaky(BaseHTTPRequestHandler):
    """A faas-swarm replica per answer: the scripted faults first (drop the connection, answer 500), then 200."""

    protocol_version = "HTTP/1.1"
    faults = []
    seen = []

    def log_message(self, *args):
        return

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.command, self.rfile.read(length) if length else b""))
        fault = self.faults.pop(0) if self.faults else None
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, data = (500, b"engine error\n") if fault == "500" else (200, function_json(1))
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = handle_any


@pytest.fixture
def flaky():
    Flaky.faults, Flaky.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_provider_asks_the_next_replica_when_one_fails_a_read(ep, flaky):
    three = ep.Provider(f"http://faas-swarm:{flaky.server_address[1]}/", lookup=lambda name: ["127.0.0.1"] * 3)
    Flaky.faults = ["drop", "500"]
    status, _headers, data = three.call("GET", "/system/function/resize", {}, None)
    assert status == 200 and json.loads(data)["availableReplicas"] == 1 and len(Flaky.seen) == 3
    Flaky.faults, Flaky.seen = ["500", "500", "500"], []
    assert three.call("GET", "/system/function/resize", {}, None)[0] == 500  # every replica failed: the last answer
    one = ep.Provider(f"http://faas-swarm:{flaky.server_address[1]}/", lookup=lambda name: ["127.0.0.1"])
    Flaky.faults = ["drop"]
    with pytest.raises(OSError, match="no faas-swarm replica answered: 127.0.0.1: RemoteDisconnected"):
        one.call("GET", "/system/function/resize", {}, None)


def test_provider_sends_a_write_once(ep, flaky):
    three = ep.Provider(f"http://faas-swarm:{flaky.server_address[1]}/", lookup=lambda name: ["127.0.0.1"] * 3)
    Flaky.faults = ["500"]
    assert three.call("POST", "/system/scale-function/resize", {}, b'{"replicas": 1}')[0] == 500
    Flaky.faults = ["drop"]
    with pytest.raises(http.client.RemoteDisconnected):
        three.call("POST", "/system/scale-function/resize", {}, b'{"replicas": 1}')
    assert len(Flaky.seen) == 2


class Containers:
    """The engine calls GateKeeper makes: list and inspect containers, a stream of container events."""

    def __init__(self, running, stream=()):
        self.running, self.stream, self.calls = dict(running), list(stream), []

    def call(self, method, url, body=None):
        self.calls.append((method, url.split("?")[0]))
        if url.startswith("/containers/json"):
            return 200, [{"Id": cid} for cid in self.running]
        cid = url.split("/")[2]
        if cid in self.running:
            return 200, {"State": {"Running": True, "Pid": self.running[cid]}}
        return 404, {"message": "no such container"}

    def events(self, filters=None):
        self.filters = filters

        def gen():
            for action, cid, pid in self.stream:
                if action == "start":
                    self.running[cid] = pid
                else:
                    self.running.pop(cid, None)
                yield {"Type": "container", "Action": action, "Actor": {"ID": cid}}

        return gen()


class FakeGate:
    def __init__(self, container, pid, port, provider, log):
        self.container, self.pid, self.stopped = container, pid, False

    def start(self):
        return self

    def stop(self):
        self.stopped = True


def test_keeper_opens_a_gate_per_gateway_task_and_follows_them(ep):
    engine = Containers({"g1": 101}, [("start", "g2", 202), ("die", "g1", 0), ("start", "g2", 202)])
    lines = []
    keeper = ep.GateKeeper(engine, "func_gateway", 8081, None, lines.append, gate=FakeGate)
    keeper.run(sleep=lambda s: None, forever=False)
    assert sorted(keeper.gates) == ["g2"] and keeper.gates["g2"].pid == 202
    assert engine.filters == {
        "type": ["container"],
        "event": ["start", "die"],
        "label": ["com.docker.swarm.service.name=func_gateway"],
    }
    assert lines == [
        "gate: serving 127.0.0.1:8081 in gateway container g1",
        "gate: serving 127.0.0.1:8081 in gateway container g2",
        "gate: gateway container g1 stopped",
    ]


def test_keeper_sweep_closes_gates_of_containers_that_are_gone(ep):
    engine = Containers({"g1": 101, "g2": 102})
    keeper = ep.GateKeeper(engine, "func_gateway", 8081, None, lambda line: None, gate=FakeGate)
    keeper.sweep()
    first = keeper.gates["g1"]
    del engine.running["g1"]
    keeper.sweep()
    assert sorted(keeper.gates) == ["g2"] and first.stopped


def test_keeper_survives_an_engine_that_is_gone(ep, tmp_path):
    lines = []
    keeper = ep.GateKeeper(ep.Engine(str(tmp_path / "missing.sock")), "func_gateway", 8081, None, lines.append)
    keeper.run(sleep=lambda s: None, forever=False)
    assert lines[0].startswith("gate: engine: ") and lines[0].endswith("again in 1 s")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gate", "80x"], "--gate '80x' is not a TCP port number"),
        (["--gate", "8081"], "--provider '' must be faas-swarm's http:// URL"),
        (["--gate"], "unknown or incomplete option '--gate'"),
        (["--verbose"], "unknown or incomplete option '--verbose'"),
    ],
)
def test_bad_arguments_are_refused_with_the_value(ep, argv, message):
    with pytest.raises(SystemExit, match=message):
        ep.parse_args(argv)


def test_arguments(ep):
    assert ep.parse_args([]) == {
        "socket": "/var/run/docker.sock",
        "gate": None,
        "service": "func_gateway",
        "provider": "",
        "proxy": "",
        "wait_dns": None,
        "queue_admission": "",
        "headroom": 5,
        "socket_group": "",
        "monitor_port": 8222,
    }
    assert ep.parse_args(
        [
            "--gate",
            "8081",
            "--gateway-service",
            "f_gateway",
            "--provider",
            "http://p:8080/",
            "--engine-proxy",
            "/e",
            "/s",
        ]
    ) == {
        "socket": "/s",
        "gate": 8081,
        "service": "f_gateway",
        "provider": "http://p:8080/",
        "proxy": "/e",
        "wait_dns": None,
        "queue_admission": "",
        "headroom": 5,
        "socket_group": "",
        "monitor_port": 8222,
    }


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare(1)")
def test_gate_listens_inside_the_gateway_network_namespace_only(ep):
    """A process in a network namespace of its own stands for the gateway task: the gate enters that namespace
    (setns), so its port answers there and is closed in the caller's namespace."""
    holder = subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up; exec sleep 60"])
    try:
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{holder.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline, "unshare did not make a namespace"
            time.sleep(0.05)
        time.sleep(0.2)  # lo up
        port = free_port()
        gate = ep.Gate("e" * 64, holder.pid, port, ep.Provider(f"http://127.0.0.1:{free_port()}/"), print).start()
        try:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            inside = subprocess.run(
                [
                    "nsenter",
                    "-t",
                    str(holder.pid),
                    "-n",
                    "python3",
                    "-c",
                    "import urllib.request, urllib.error, sys\n"
                    f"try: urllib.request.urlopen('http://127.0.0.1:{port}/system/functions', timeout=5)\n"
                    "except urllib.error.HTTPError as e: print(e.code)",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            assert inside.stdout.strip() == "502"  # the gate answered in there; no faas-swarm in that namespace
        finally:
            gate.stop()
    finally:
        holder.kill()
        holder.wait()


def test_entering_the_namespace_of_a_process_that_is_gone_says_so(ep):
    with pytest.raises(OSError):
        ep.enter_netns(2**22 + 7)
