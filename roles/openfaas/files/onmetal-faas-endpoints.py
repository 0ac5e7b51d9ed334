# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""onmetal-faas-endpoints: keep OpenFaaS function services in dnsrr endpoint mode on a swarm without IPVS.

Installed by the onmetal.faas.openfaas role on every manager when the kernel has no IPVS and the gateway calls
functions directly (openfaas_call_path: direct). faas-swarm 0.9.0 creates every function as a VIP service
(handlers/deploy.go builds the ServiceSpec without an EndpointSpec; its ``dnsrr`` setting only changes how its own
proxy resolves ``tasks.<name>``), and a service VIP needs IPVS: the gateway's call to ``http://<name>:8080`` then
fails with "no route to host". This program watches the local engine's service events and switches every
service labelled ``com.openfaas.function`` to ``EndpointSpec.Mode: dnsrr`` as soon as it is created (Docker's DNS
then answers the service name with the tasks' addresses). faas-swarm's update and scale handlers edit the
inspected spec in place (handlers/update.go, handlers/scale.go), so the mode stays once set.

With ``--gate PORT`` (the role passes it when the gateway scales functions from zero) it also runs a readiness
gate for every gateway task on this node, inside that task's own network namespace, on 127.0.0.1:PORT: the
gateway's ``functions_provider_url``. The gate passes every call on to faas-swarm unchanged, except the replica
query the gateway polls while it wakes a function (``GET /system/function/<name>``): there it counts a replica as
available only when the gateway's own DNS (Docker's embedded server, 127.0.0.11, in the same namespace) already
answers the function's name with that many addresses. faas-swarm counts a task as available once Swarm reports it
running, while the new task's DNS record reaches the other nodes by gossip a moment later: a gateway that dialled
the function in that moment failed with 502 ("no such host"). Measured on the 3-manager rig: 2 of 5 first calls
after scale to zero failed that way without the gate.

With ``--queue-admission SOCKET`` it runs the queue admission instead (a service of its own, issue 16): nginx asks it
on that unix socket, before it passes an async call to the gateway, whether NATS Streaming's channel has room for
one more call without dropping an unprocessed one (see "the queue admission" below).

Standard library only. Every manager runs it; two managers converting the same service race harmlessly (the
engine refuses the older version, the loser re-reads and finds dnsrr). One line per action on stdout (journal).
"""

import collections
import ctypes
import grp
import http.client
import http.server
import json
import os
import random
import re
import select
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

FUNCTION_LABEL = "com.openfaas.function"


def needs_dnsrr(service):
    """The reason to switch ``service`` (an inspected service) to dnsrr, or None to leave it alone."""
    spec = service.get("Spec") or {}
    if FUNCTION_LABEL not in (spec.get("Labels") or {}):
        return None
    endpoint = spec.get("EndpointSpec") or {}
    if (endpoint.get("Mode") or "vip") == "dnsrr":
        return None
    if endpoint.get("Ports"):
        return None  # a published port needs a VIP; a function published by hand is its owner's choice
    name = spec.get("Name", service.get("ID"))
    return f"function service {name} is in {endpoint.get('Mode') or 'vip'} mode"


def dnsrr_spec(spec):
    """A copy of ``spec`` with the dnsrr endpoint mode, and updates that start a new task before stopping the old.

    Swarm replaces the function's first task once more after an endpoint change (seen on Engine 20.10: at the next
    scale, slot 1 is replaced). faas-swarm creates functions with the engine's default stop-first order, so that
    replacement left the function with no task for a moment: Docker's DNS then answered the name with no address
    and the gateway's calls failed with 502. start-first (what faas-swarm's own update sets, handlers/update.go:88)
    keeps the old task serving until the new one runs.
    """
    new = dict(spec)
    new["EndpointSpec"] = {"Mode": "dnsrr"}
    new["UpdateConfig"] = dict(spec.get("UpdateConfig") or {}, Order="start-first")
    return new


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=None):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Engine:
    """The few Engine API calls this program makes, over the local socket."""

    def __init__(self, path="/var/run/docker.sock", timeout=30):
        self.path = path
        self.timeout = timeout

    def call(self, method, url, body=None):
        conn = UnixHTTPConnection(self.path, self.timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, url, body=data, headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, json.loads(payload) if payload[:1] in (b"{", b"[") else payload.decode(errors="replace")
        finally:
            conn.close()

    def events(self, filters=None):
        """Subscribe to events now (service events unless ``filters`` says otherwise); returns an iterator of event
        dicts that ends when the stream does.

        The subscription starts before the caller's sweep, so nothing created in between is missed."""
        query = urllib.parse.urlencode({"filters": json.dumps(filters or {"type": ["service"]})})
        conn = UnixHTTPConnection(self.path, None)
        conn.request("GET", "/events?" + query)
        resp = conn.getresponse()
        if resp.status != 200:
            conn.close()
            raise OSError(f"GET /events answered {resp.status}")

        def stream():
            try:
                while True:
                    line = resp.readline()
                    if not line:
                        return
                    if line.strip():
                        yield json.loads(line)
            finally:
                conn.close()

        return stream()


def convert(engine, service_id, log, attempts=5):
    """Switch one service to dnsrr when it needs it; True when it did."""
    for _attempt in range(attempts):
        status, service = engine.call("GET", f"/services/{urllib.parse.quote(service_id)}")
        if status == 404:
            return False
        if status != 200:
            raise OSError(f"inspecting service {service_id} answered {status}: {service}")
        reason = needs_dnsrr(service)
        if reason is None:
            return False
        version = service["Version"]["Index"]
        url = "/services/{}/update?version={}".format(service["ID"], version)
        status, answer = engine.call("POST", url, dnsrr_spec(service["Spec"]))
        if status == 200:
            log(f"{reason}: switched to dnsrr")
            return True
        # 500 "update out of sequence": another manager or faas-swarm updated it first; read it again.
        log(f"{reason}: update answered {status} ({answer}); retrying")
        time.sleep(0.2)
    return False


def sweep(engine, log):
    query = urllib.parse.urlencode({"filters": json.dumps({"label": [FUNCTION_LABEL]})})
    status, services = engine.call("GET", "/services?" + query)
    if status != 200:
        raise OSError(f"listing services answered {status}: {services}")
    return sum(convert(engine, s["ID"], log) for s in services)


def leads(engine):
    """Whether this engine's node is the swarm's leader (False when it cannot tell: no quorum, not a manager)."""
    status, info = engine.call("GET", "/info")
    swarm = (info or {}).get("Swarm") or {} if status == 200 and isinstance(info, dict) else {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable") or not swarm.get("NodeID"):
        return False
    status, node = engine.call("GET", "/nodes/" + urllib.parse.quote(swarm["NodeID"]))
    return status == 200 and isinstance(node, dict) and (node.get("ManagerStatus") or {}).get("Leader") is True


def run(engine, log, sleep=time.sleep, forever=True):
    """Sweep, then follow service events; on any engine error wait and start again.

    Only the swarm leader's keeper converts (every manager runs one). Several managers updating the same new service
    at once, each retrying after "update out of sequence", left stale records under the function's name in Docker's
    DNS on Engine 20.10 (addresses of a VIP and of replaced tasks that answered no more, while ``tasks.<name>`` was
    right): the gateway then dialled dead addresses (3 s to "no route to host", or 502). The leader alone converts,
    once; after a change of leader the new leader's next event (or its sweep) catches up."""
    swept_as_leader = False
    while True:
        try:
            events = engine.events()
            swept_as_leader = leads(engine)
            if swept_as_leader:
                sweep(engine, log)
            for event in events:
                if event.get("Action") not in ("create", "update") or not leads(engine):
                    continue
                if not swept_as_leader:  # this manager just became the leader: catch up first
                    swept_as_leader = True
                    sweep(engine, log)
                convert(engine, (event.get("Actor") or {}).get("ID", ""), log)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            log(f"engine: {exc}; again in 2 s")
        if not forever:
            return
        sleep(2)


# -- the readiness gate ----------------------------------------------------------------------------------------
CLONE_NEWNET = 0x40000000
# Hop-by-hop headers, and Expect (http.server already answered 100-continue): not passed on.
HOP_HEADERS = {
    "connection",
    "expect",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
REPLICA_QUERY = re.compile(r"^/system/function/([A-Za-z0-9][A-Za-z0-9._-]*)$")


def dns_query(name, qid):
    """A DNS query packet for the A records of ``name`` (recursion desired)."""
    labels = b"".join(bytes([len(part)]) + part.encode("ascii") for part in name.rstrip(".").split(".") if part)
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack(">HH", 1, 1)


def _skip_name(data, pos):
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return pos + 2
        pos += 1 + length


def dns_addresses(data, qid):
    """The IPv4 addresses in a DNS answer to query ``qid``: [] for a name without them (NXDOMAIN, no A records).

    Raises ValueError for an answer that is not one to this query, that the server could not give (SERVFAIL,
    REFUSED, truncated) or that cannot be read."""
    try:
        return _dns_addresses(data, qid)
    except (IndexError, struct.error, OSError) as exc:  # OSError: inet_ntoa of a cut address
        raise ValueError(f"unreadable DNS answer: {exc}") from None


def _dns_addresses(data, qid):
    if len(data) < 12:
        raise ValueError("short DNS answer")
    rid, flags, qdcount, ancount = struct.unpack(">HHHH", data[:8])
    rcode = flags & 0x000F
    if rid != qid or not flags & 0x8000:
        raise ValueError("not an answer to this query")
    if flags & 0x0200:
        raise ValueError("truncated DNS answer")
    if rcode == 3:  # NXDOMAIN
        return []
    if rcode != 0:
        raise ValueError(f"DNS error code {rcode}")
    pos = 12
    for _question in range(qdcount):
        pos = _skip_name(data, pos) + 4
    found = []
    for _answer in range(ancount):
        pos = _skip_name(data, pos)
        rtype, rclass, _ttl, length = struct.unpack(">HHIH", data[pos : pos + 10])
        pos += 10
        if rtype == 1 and rclass == 1 and length == 4:
            found.append(socket.inet_ntoa(data[pos : pos + 4]))
        pos += length
    return found


def resolve(name, server=("127.0.0.11", 53), timeout=0.5):
    """The A records of ``name`` from ``server`` (Docker's embedded DNS in the caller's network namespace)."""
    qid = random.randrange(1, 0x10000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(dns_query(name, qid), server)
        while True:
            data, _peer = sock.recvfrom(4096)
            try:
                return dns_addresses(data, qid)
            except ValueError as exc:
                if str(exc) != "not an answer to this query":
                    raise


# A waking function's first task is counted by faas-swarm before its DNS record has reached this gateway's node by
# gossip (about 60-150 ms on the lab). Rather than answer "0 available" and have the gateway sleep its 50 ms poll
# interval and ask again (gw/scaling/function_scaler.go), the gate asks its DNS again every WAKE_STEP seconds for up
# to WAKE_HOLD seconds and answers as soon as the record is there: the first call leaves as soon as it can be dialed.
WAKE_HOLD = 0.3
WAKE_STEP = 0.01


def _dns_count(name, lookup):
    try:
        return len(lookup(name))
    except (OSError, ValueError):
        return 0  # no answer from the DNS is no address


def gate_replicas(body, name, lookup, hold=0.0, step=WAKE_STEP, clock=time.monotonic, sleep=time.sleep):
    """faas-swarm's answer to ``GET /system/function/<name>`` with ``availableReplicas`` lowered to the number of
    addresses ``lookup(name)`` gives (what the gateway will dial); the body unchanged when there is nothing to
    lower or it is not a function's JSON. While the DNS has no address at all for a function faas-swarm counts
    available (it is waking), the DNS is asked again every ``step`` seconds for up to ``hold`` seconds."""
    try:
        function = json.loads(body)
        available = int(function["availableReplicas"])
    except (ValueError, TypeError, KeyError):
        return body, None
    if available <= 0:
        return body, None
    addresses = _dns_count(name, lookup)
    if addresses == 0 and hold > 0:
        deadline = clock() + hold
        while addresses == 0 and clock() < deadline:
            sleep(step)
            addresses = _dns_count(name, lookup)
    if addresses >= available:
        return body, None
    function["availableReplicas"] = addresses
    return json.dumps(function).encode(), f"{name}: faas-swarm counts {available} available, DNS has {addresses}"


class Provider:
    """faas-swarm as seen from the gate's network namespace: its name resolved there, each address tried in turn."""

    def __init__(self, url, lookup=resolve, timeout=120):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.lookup, self.timeout = lookup, timeout

    def addresses(self):
        try:
            socket.inet_aton(self.host)
            return [self.host]
        except OSError:
            found = self.lookup(self.host)
            random.shuffle(found)
            return found

    def call(self, method, path, headers, body):
        """One answer from faas-swarm. A read (GET, HEAD) that one replica fails (a dropped connection or a 5xx)
        is asked of the next one, as a replay is harmless; a write is sent once, to the first replica that accepts
        the connection. The last replica's answer is returned when none answers well."""
        errors, answer = [], None
        replayable = method in ("GET", "HEAD")
        for address in self.addresses():
            conn = http.client.HTTPConnection(address, self.port, timeout=self.timeout)
            try:
                try:
                    conn.connect()
                except OSError as exc:  # not sent yet: the next faas-swarm replica may answer
                    errors.append(f"{address}: {exc}")
                    continue
                try:
                    conn.request(method, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    answer = (resp.status, resp.getheaders(), resp.read())
                except (OSError, http.client.HTTPException) as exc:
                    if not replayable:
                        raise
                    errors.append(f"{address}: {exc!r}")
                    continue
                if not replayable or answer[0] < 500:
                    return answer
                errors.append(f"{address}: answered {answer[0]}")
            finally:
                conn.close()
        if answer is not None:
            return answer
        raise OSError("no faas-swarm replica answered: " + ("; ".join(errors) or f"{self.host} has no address"))


class GateHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    provider = None
    lookup = staticmethod(resolve)
    log_line = staticmethod(print)
    wake_hold = WAKE_HOLD

    def log_message(self, *args):
        return  # one line per call would flood the journal; actions are logged by the gate

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def relay(self):
        body = self.read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        try:
            status, resp_headers, data = self.provider.call(self.command, self.path, headers, body)
        except (OSError, http.client.HTTPException) as exc:
            self.log_line(f"gate: {self.command} {self.path}: {exc}")
            status, resp_headers, data = 502, [("Content-Type", "text/plain")], f"{exc}\n".encode()
        match = REPLICA_QUERY.match(urllib.parse.urlsplit(self.path).path)
        if self.command == "GET" and status == 200 and match:
            data, lowered = gate_replicas(data, match.group(1), self.lookup, hold=self.wake_hold)
            if lowered:
                self.log_line(f"gate: {lowered}: not available yet")
        self.send_response(status)
        for key, value in resp_headers:
            if key.lower() not in HOP_HEADERS and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = relay  # noqa: N815 - http.server's names


def enter_netns(pid):
    """Move the calling thread into the network namespace of process ``pid`` (threads it starts follow it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into the network namespace of pid {pid}: {os.strerror(err)}")
    finally:
        os.close(fd)


class Gate:
    """One gate server inside one gateway container's network namespace."""

    def __init__(self, container, pid, port, provider, log, enter=enter_netns):
        self.container, self.pid, self.port = container, pid, port
        self.provider, self.log, self.enter = provider, log, enter
        self.server = None
        self.ready = threading.Event()
        self.error = None

    def _serve(self):
        try:
            self.enter(self.pid)
            handler = type(
                "BoundGateHandler", (GateHandler,), {"provider": self.provider, "log_line": staticmethod(self.log)}
            )
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
            self.server.daemon_threads = True
        except OSError as exc:
            self.error = exc
            return
        finally:
            self.ready.set()
        self.server.serve_forever(poll_interval=0.5)
        self.server.server_close()

    def start(self, timeout=10):
        thread = threading.Thread(target=self._serve, name=f"gate-{self.container[:12]}", daemon=True)
        thread.start()
        self.ready.wait(timeout)
        if self.error:
            raise OSError(f"gate for gateway container {self.container[:12]}: {self.error}")
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()


class GateKeeper:
    """A gate for every running task of the gateway service on this node, following container events."""

    def __init__(self, engine, service, port, provider, log, gate=Gate):
        self.engine, self.service, self.port, self.provider, self.log = engine, service, port, provider, log
        self.make_gate = gate
        self.gates = {}

    def filters(self):
        return {"label": [f"com.docker.swarm.service.name={self.service}"], "status": ["running"]}

    def open(self, container_id):
        if container_id in self.gates:
            return
        status, info = self.engine.call("GET", f"/containers/{urllib.parse.quote(container_id)}/json")
        if status != 200 or not (info.get("State") or {}).get("Running"):
            return
        gate = self.make_gate(container_id, info["State"]["Pid"], self.port, self.provider, self.log).start()
        self.gates[container_id] = gate
        self.log(f"gate: serving 127.0.0.1:{self.port} in gateway container {container_id[:12]}")

    def close(self, container_id):
        gate = self.gates.pop(container_id, None)
        if gate is not None:
            gate.stop()
            self.log(f"gate: gateway container {container_id[:12]} stopped")

    def sweep(self):
        query = urllib.parse.urlencode({"filters": json.dumps(self.filters())})
        status, containers = self.engine.call("GET", "/containers/json?" + query)
        if status != 200:
            raise OSError(f"listing containers answered {status}: {containers}")
        running = {c["Id"] for c in containers}
        for container_id in list(self.gates):
            if container_id not in running:
                self.close(container_id)
        for container_id in running:
            self.open(container_id)

    def run(self, sleep=time.sleep, forever=True):
        events_filter = {
            "type": ["container"],
            "event": ["start", "die"],
            "label": [f"com.docker.swarm.service.name={self.service}"],
        }
        while True:
            try:
                events = self.engine.events(events_filter)
                self.sweep()
                for event in events:
                    actor = (event.get("Actor") or {}).get("ID") or event.get("id") or ""
                    if event.get("Action") == "start":
                        self.open(actor)
                    elif event.get("Action") == "die":
                        self.close(actor)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                self.log(f"gate: engine: {exc}; again in 1 s")
            if not forever:
                return
            sleep(1)


# -- after an engine restart: this node's gateways resolve what they dial -----------------------------------------
# Run once (--wait-dns SECONDS) by the openfaas engine-restart hook, after the node's engine came back and before
# gateway_nginx sends calls to the local gateway again. A restarted engine gets the network's service records by
# gossip some seconds after its gateway task runs again: calls in between failed with 502 ("no address associated
# with hostname"), measured 18 s and 293 lost calls in the rolling-restart drill.
GATEWAY_URL_ENV = ("functions_provider_url", "auth_proxy_url")
GATEWAY_HOST_ENV = ("faas_nats_address",)


def _is_name(host):
    if not host or host == "localhost" or ":" in host:
        return False
    try:
        socket.inet_aton(host)
        return False
    except OSError:
        return True


def gateway_targets(env, extra_urls, running, functions, prefix):
    """The names a gateway task dials, sorted: the hosts in its environment (``env``: the container's ``KEY=value``
    list) and in ``extra_urls`` that are names, each only when its service (``prefix`` + name, or the name itself)
    has a running task or is not known, and every function service (``functions``) with a running task.
    ``running`` maps service names to their running tasks."""
    values = dict(item.split("=", 1) for item in env if "=" in item)
    hosts = [urllib.parse.urlsplit(values.get(key, "")).hostname for key in GATEWAY_URL_ENV]
    hosts += [values.get(key, "") for key in GATEWAY_HOST_ENV]
    hosts += [urllib.parse.urlsplit(url).hostname for url in extra_urls]
    names = set()
    for host in filter(_is_name, hosts):
        service = prefix + host if prefix + host in running else host
        if running.get(service, 1) > 0:
            names.add(host)
    names.update(name for name in functions if running.get(name, 0) > 0)
    return sorted(names)


def unresolved(names, lookup):
    """The names that ``lookup`` answers with no address (a DNS error counts as no address)."""
    missing = []
    for name in names:
        try:
            if not lookup(name):
                missing.append(name)
        except (OSError, ValueError):
            missing.append(name)
    return missing


def in_netns(pid, work, enter=enter_netns, timeout=30, what="answer"):
    """``work()`` run by a short-lived thread inside the network namespace of process ``pid`` (the caller's thread
    stays where it is); its result, or its error raised here."""
    result = {}

    def run():
        try:
            enter(pid)
            result["value"] = work()
        except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, name=f"netns-{pid}", daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in result:
        raise result["error"]
    if "value" not in result:
        raise OSError(f"no {what} inside the network namespace of pid {pid} within {timeout} s")
    return result["value"]


def unresolved_in(pid, names, enter=enter_netns, lookup=resolve):
    """``unresolved(names)`` asked of Docker's DNS inside the network namespace of process ``pid``."""
    return in_netns(pid, lambda: unresolved(names, lookup), enter, 30, "DNS answer")


class RestartWait:
    """One look at this node's gateway tasks: ``check()`` says whether each resolves what it dials, and why not."""

    GRACE = 20  # seconds a node that should run a gateway task may take to be given one

    def __init__(self, engine, service, extra_urls, check_names=unresolved_in, clock=time.monotonic):
        self.engine, self.service, self.extra_urls = engine, service, list(extra_urls)
        self.check_names, self.clock = check_names, clock
        self.prefix = service.rsplit("_", 1)[0] + "_" if "_" in service else ""
        self.started = clock()

    def _get(self, url):
        status, body = self.engine.call("GET", url)
        if status != 200:
            raise OSError(f"GET {url.split('?')[0]} answered {status}: {str(body)[:120]}")
        return body

    def _query(self, path, filters):
        return self._get(path + "?" + urllib.parse.urlencode({"filters": json.dumps(filters)}))

    def check(self):
        """(done, message)."""
        swarm = self._get("/info").get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            return False, "the engine is not an active swarm manager yet"
        node = self._get(f"/nodes/{urllib.parse.quote(swarm['NodeID'])}")
        availability = (node.get("Spec") or {}).get("Availability")
        if availability != "active":
            return True, f"the node is {availability}: no gateway task runs here"
        status, _service = self.engine.call("GET", f"/services/{urllib.parse.quote(self.service)}")
        if status == 404:
            return True, f"no service {self.service}: nothing to wait for"
        wanted = self._query(
            "/tasks", {"service": [self.service], "node": [swarm["NodeID"]], "desired-state": ["running"]}
        )
        if not wanted:
            if self.clock() - self.started >= self.GRACE:
                return True, f"no {self.service} task is scheduled on this node"
            return False, f"no {self.service} task is scheduled on this node yet"
        containers = self._query(
            "/containers/json", {"label": [f"com.docker.swarm.service.name={self.service}"], "status": ["running"]}
        )
        if not containers:
            return False, f"the {self.service} task on this node is not running yet"
        services = self._get("/services")
        names = {item["ID"]: (item.get("Spec") or {}).get("Name", item["ID"]) for item in services}
        functions = [
            names[item["ID"]] for item in services if FUNCTION_LABEL in ((item.get("Spec") or {}).get("Labels") or {})
        ]
        running = dict.fromkeys(names.values(), 0)
        for task in self._query("/tasks", {"desired-state": ["running"]}):
            if (task.get("Status") or {}).get("State") == "running" and task.get("ServiceID") in names:
                running[names[task["ServiceID"]]] += 1
        resolved = set()
        for container in containers:
            info = self._get(f"/containers/{urllib.parse.quote(container['Id'])}/json")
            targets = gateway_targets(
                (info.get("Config") or {}).get("Env") or [], self.extra_urls, running, functions, self.prefix
            )
            missing = self.check_names(info["State"]["Pid"], targets)
            if missing:
                return False, f"gateway {container['Id'][:12]} cannot resolve yet: {', '.join(missing)}"
            resolved.update(targets)
        return True, f"this node's gateway resolves the {len(resolved)} names it dials ({', '.join(sorted(resolved))})"


def wait_dns(waiter, timeout, log, clock=time.monotonic, sleep=time.sleep):
    """Ask ``waiter`` every second until it is done (0) or ``timeout`` seconds have passed (1, with what is missing)."""
    deadline = clock() + timeout
    while True:
        try:
            done, message = waiter.check()
        except (OSError, ValueError, KeyError, http.client.HTTPException) as exc:
            done, message = False, f"engine: {exc}"
        if done:
            log(f"onmetal-faas-endpoints: {message}")
            return 0
        if clock() >= deadline:
            log(
                f"onmetal-faas-endpoints: after {timeout} s, {message}. Calls through nginx keep going to the other "
                "managers' gateways; see docker service ps and the engine's log on this node, then run the play again"
            )
            return 1
        sleep(1)


# -- the engine proxy for faas-swarm ------------------------------------------------------------------------------
SERVICE_CREATE = re.compile(r"^(/v[0-9.]+)?/services/create$")


def born_dnsrr(body):
    """A ``POST /services/create`` body with a function's service made dnsrr (and start-first) from the start; other
    bodies unchanged. faas-swarm 0.9.0 sends no EndpointSpec, so Swarm gives the service a VIP."""
    try:
        spec = json.loads(body)
    except ValueError:
        return body, None
    if not isinstance(spec, dict) or needs_dnsrr({"Spec": spec}) is None:
        return body, None
    return json.dumps(dnsrr_spec(spec)).encode(), f"function service {spec.get('Name')} created in dnsrr mode"


def _read_head(stream):
    lines = []
    while True:
        line = stream.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line)


def _headers(lines):
    found = {}
    for line in lines[1:]:
        name, _sep, value = line.decode("latin-1").partition(":")
        found[name.strip().lower()] = value.strip()
    return found


def _copy_body(src, dst, headers, until_close):
    """Copy one message body from ``src`` to ``dst`` as framed by its headers; returns False when the connection
    must end after it (a body delimited by the close of the connection)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = src.readline(65537)
            dst.write(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = src.readline(65537)
                    dst.write(line)
                    if line in (b"\r\n", b"\n", b""):
                        break
                dst.flush()
                return True
            dst.write(src.read(size + 2))
            dst.flush()  # streamed answers (logs, events) reach the client as they come
    length = headers.get("content-length")
    if length is not None:
        dst.write(src.read(int(length)))
        dst.flush()
        return True
    if until_close:
        while True:
            data = src.read1(65536)
            if not data:
                break
            dst.write(data)
            dst.flush()
        return False
    return True


def upstream_closed(sock):
    """True when the engine closed ``sock`` (or it broke) while it was idle between two requests. The engine sends
    nothing unasked, so an idle connection that is readable at all is at its end (or out of step): not for reuse."""
    try:
        readable, _w, _x = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class EngineProxy:
    """A unix socket in front of the engine's: every request passes unchanged, except the creation of a function
    service, which is made dnsrr from the start. faas-swarm talks to it (DOCKER_HOST), so its function services never
    have a VIP, and nothing has to switch them later (the switch left stale DNS records, see ``run``)."""

    def __init__(self, path, engine_path, log):
        self.path, self.engine_path, self.log = path, engine_path, log
        self.server = None

    def start(self):
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        os.chmod(self.path, 0o660)
        self.server.listen(128)
        threading.Thread(target=self._accept, name="engine-proxy", daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                client, _addr = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.close()

    def _serve(self, client):
        upstream = u_in = u_out = None
        try:
            c_in, c_out = client.makefile("rb"), client.makefile("wb")
            while True:
                head = _read_head(c_in)
                if not head:
                    return
                # The engine's connection is opened for the request that needs it, and opened again when the engine
                # closed it while the client's connection sat idle: the client keeps its connection to this proxy
                # alive and cannot see that. Passing the request on to the closed connection failed it (a broken pipe,
                # and the client's "connection closed without response"): faas-swarm answered a deploy with 500.
                if upstream is None or upstream_closed(upstream):
                    if upstream is not None:
                        upstream.close()
                    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    upstream.connect(self.engine_path)
                    u_in, u_out = upstream.makefile("rb"), upstream.makefile("wb")
                if not self._one(head, c_in, c_out, u_in, u_out):
                    return
        except (OSError, ValueError) as exc:
            self.log(f"engine proxy: {exc}")
        finally:
            if upstream is not None:
                upstream.close()
            client.close()

    def _one(self, head, c_in, c_out, u_in, u_out):
        method, target = head[0].decode("latin-1").split(" ", 2)[:2]
        headers = _headers(head)
        if method == "POST" and SERVICE_CREATE.match(urllib.parse.urlsplit(target).path):
            body = b""
            if "chunked" in headers.get("transfer-encoding", "").lower():
                while True:
                    size = int(c_in.readline(65537).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while c_in.readline(65537).strip():
                            pass
                        break
                    body += c_in.read(size)
                    c_in.readline(65537)
            else:
                body = c_in.read(int(headers.get("content-length") or 0))
            body, changed = born_dnsrr(body)
            if changed:
                self.log(changed)
            kept = [
                line
                for line in head[1:]
                if line.split(b":")[0].strip().lower() not in (b"content-length", b"transfer-encoding")
            ]
            u_out.write(head[0] + b"".join(kept) + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            u_out.flush()
        else:
            u_out.write(b"".join(head) + b"\r\n")
            _copy_body(c_in, u_out, headers, until_close=False)
            u_out.flush()
        reply = _read_head(u_in)
        if not reply:
            return False
        c_out.write(b"".join(reply) + b"\r\n")
        c_out.flush()
        status = int(reply[0].split()[1])
        if status == 101:  # an upgraded (hijacked) connection: faas-swarm does not use one; end it
            return False
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return True
        return _copy_body(u_in, c_out, _headers(reply), until_close=True)


# -- the queue admission (issue 16) ------------------------------------------------------------------------------
# Run as its own service (--queue-admission SOCKET, onmetal-faas-queue-admission.service) on every manager, next to
# nginx. NATS Streaming 0.17.0 keeps a channel under --max_msgs/--max_bytes by dropping its OLDEST messages, processed
# or not (nss/stores/filestore.go:2951-2977), while the gateway has already answered 202: a backlog above the limits
# loses accepted calls without a word. nginx asks this service before it passes an /async-function/ call on
# (auth_request): 204 admits it, 403 refuses it and nginx answers 507 with the JSON this service puts in
# X-Onmetal-Queue-Full. Every verdict comes from a snapshot of NATS Streaming's monitoring endpoint (--http_port on
# the overlay network, asked from inside the local gateway task's network namespace) taken once a second, so nginx
# never waits on NATS. Any doubt admits (fail open): without a fresh snapshot the call passes, as it did before this
# service existed; the gateway itself answers 500 while NATS is down. "nss/" = nats-io/nats-streaming-server v0.17.0.
QUEUE_LABEL = "com.openfaas.annotations.com.openfaas.queue"  # faas-swarm 0.9.0 handlers/deploy.go:28,367
ASYNC_CALL = re.compile(r"^/async-function/([-a-zA-Z_0-9.]+)(?:/|$)")  # gateway 0.18.18 main.go:24,233-235
STOREZ = "/streaming/storez"  # nss/server/monitor.go:33-38,271-287
CHANNELSZ = "/streaming/channelsz?subs=1"  # every channel with its subscriptions: monitor.go:448-495,511-528
FULL_HEADER = "X-Onmetal-Queue-Full"
# Bytes NATS Streaming stores for one async call besides its body: the gateway's JSON envelope (headers, path, query,
# callback URL: about 600 B, docs/async-worker.md "Measured") and the store's record and index (about 80 B).
MESSAGE_OVERHEAD = 680
POLL_INTERVAL = 1.0
STALE_AFTER = 5.0  # seconds after which a snapshot is too old to refuse anything
IN_TRANSIT = 1.0  # seconds an admitted call may take to reach NATS: it may be missing from a snapshot taken meanwhile
REFRESH = 10.0  # seconds between two looks at the engine (the gateway container, the functions' queues)


def async_function(uri):
    """The function an ``/async-function/<name>[/...][?...]`` URI calls, without its ``.<namespace>`` suffix
    (gateway 0.18.18 handlers/queue_proxy.go:108-117, getNameParts); None for any other URI."""
    match = ASYNC_CALL.match(uri.split("?", 1)[0])
    if not match:
        return None
    name = match.group(1)
    index = name.rfind(".")
    return name[:index] if index > 0 else name


def function_queues(services):
    """{function: channel} for the function services (``GET /services``) with a ``com.openfaas.queue`` annotation:
    the gateway publishes their calls there instead of its default channel (gateway 0.18.18
    handlers/queue_proxy.go:20,45-61,93-106 and vendored nats-queue-worker handler/nats_queue.go:47-52); faas-swarm
    0.9.0 keeps annotations as service labels with the prefix com.openfaas.annotations. (handlers/deploy.go:28,367)."""
    queues = {}
    for service in services:
        spec = service.get("Spec") or {}
        labels = spec.get("Labels") or {}
        if FUNCTION_LABEL in labels and labels.get(QUEUE_LABEL):
            queues[spec.get("Name", "")] = labels[QUEUE_LABEL]
    return queues


def channel_limits(storez, channel):
    """(max_msgs, max_bytes) NATS Streaming enforces on ``channel``, 0 = no limit, from ``/streaming/storez``: the
    global limits, or the channel's own where it has them (> 0 replaces, < 0 lifts, 0 inherits: nss/stores/
    store.go:44-78)."""
    limits = storez.get("limits") or {}
    own = (limits.get("channels") or {}).get(channel) or {}
    found = []
    for key in ("max_msgs", "max_bytes"):
        value = int(limits.get(key) or 0)
        mine = int(own.get(key) or 0)
        found.append(0 if mine < 0 else mine or max(0, value))
    return tuple(found)


def channel_backlog(channel):
    """(calls not processed yet, their estimated bytes, queue group, members connected) of one Channelz of
    ``/streaming/channelsz?subs=1`` (nss/server/monitor.go:110-134).

    A queue group's members each report the last sequence sent to them and their unacknowledged messages
    (``last_sent``, ``pending_count`` = len(acksPending): monitor.go:411-433, server.go:4030-4033); the group has
    delivered everything up to the highest ``last_sent`` of its members (server.go:999-1001,3398-3400), and a member
    that leaves hands its unacknowledged messages to the others (server.go:1150-1225). When every member of a durable
    queue group is gone (the queue-worker stopped: exactly when a backlog builds), the group is listed once more as
    its offline "shadow" (``is_offline``, the last ``client_id``) with the group's ``last_sent`` and the messages it
    still owes (monitor.go:396-407, server.go:1137-1148,1215-1225). So a group's backlog is every stored message after
    its ``last_sent`` plus its members' ``pending_count``; the channel's is the largest of its queue groups', or every
    stored message when no queue group exists yet (the queue-worker subscribes with DeliverAllAvailable: queue-worker
    0.11.2 types.go:75-80). Plain subscriptions are not queue-workers and are not counted. Bytes are estimated from
    the channel's average message: monitoring gives only the channel's total."""
    msgs = max(0, int(channel.get("msgs") or 0))
    first, last = int(channel.get("first_seq") or 0), int(channel.get("last_seq") or 0)
    groups = {}
    for sub in channel.get("subscriptions") or []:
        name = sub.get("queue_name")
        if not name:
            continue
        group = groups.setdefault(name, {"last_sent": 0, "pending": 0, "online": 0})
        group["last_sent"] = max(group["last_sent"], int(sub.get("last_sent") or 0))
        group["pending"] += max(0, int(sub.get("pending_count") or 0))
        group["online"] += 0 if sub.get("is_offline") else 1
    backlog, worst, online = msgs, None, 0
    for name in sorted(groups):
        group = groups[name]
        unsent = max(0, last - max(group["last_sent"], first - 1))
        count = min(msgs, unsent + group["pending"])
        if worst is None or count > backlog:
            backlog, worst, online = count, name, group["online"]
    nbytes = int(channel.get("bytes") or 0) * backlog // msgs if msgs else 0
    return backlog, nbytes, worst, online


def message_size(content_length):
    """Bytes NATS Streaming will store for one async call whose body has ``content_length`` bytes (unknown for a
    chunked body: counted as empty). The gateway publishes its queue.Request as JSON (handlers/queue_proxy.go:51-67,
    nats_queue.go:38), and Go's encoding/json writes the body ([]byte) as base64: 4 bytes for every 3."""
    try:
        length = max(0, int(content_length or 0))
    except ValueError:
        length = 0
    return 4 * ((length + 2) // 3) + MESSAGE_OVERHEAD


def headroom(limit, percent):
    """The part of ``limit`` kept free (rounded up), for the calls other nginx instances admit between two polls."""
    return 0 if limit <= 0 else -(-limit * percent // 100)


def refusal(channel, backlog, limits, percent, recent=(0, 0), size=MESSAGE_OVERHEAD):
    """None when one more call of ``size`` bytes fits in ``channel`` without pushing an unprocessed call out, else
    what is full (a dict for ``full_body``).

    ``backlog`` is (calls, bytes) not processed yet in the last snapshot, ``recent`` (calls, bytes) admitted here since
    it, ``limits`` (max_msgs, max_bytes) with 0 for none. Calls are refused once the backlog would pass the limit minus
    its headroom (``percent``)."""
    calls, nbytes = backlog[0] + recent[0], backlog[1] + recent[1]
    for key, used, adding, limit in (("max_msgs", calls, 1, limits[0]), ("max_bytes", nbytes, size, limits[1])):
        if limit <= 0:
            continue
        room = limit - headroom(limit, percent)
        if used + adding > room:
            return {
                "channel": channel,
                "limit": key,
                "backlog": backlog[0],
                "backlog_bytes": backlog[1],
                "admitted_since_poll": recent[0],
                "max_msgs": limits[0],
                "max_bytes": limits[1],
                "headroom_percent": percent,
                "admits_up_to": room,
            }
    return None


def full_body(refused, worker_service="func_queue-worker", group=None, online=0):
    """The JSON (ASCII, one line) nginx answers with its 507: what is full, by how much, and the fixes. ``group`` is
    the channel's queue group (None: no queue-worker ever subscribed), ``online`` its members connected."""
    setting = "openfaas_nats_" + refused["limit"]
    if refused["limit"] == "max_msgs":
        held = f"{refused['backlog']} calls that are not processed yet"
        unit = "calls"
    else:
        held = (
            f"about {refused['backlog_bytes']} bytes of calls that are not processed yet ({refused['backlog']} calls)"
        )
        unit = "bytes"
    since = refused["admitted_since_poll"]
    if group is None:
        worker = (
            f"give {refused['channel']} a queue-worker: none ever subscribed to it (the stack's {worker_service} "
            "reads the gateway's default channel; a function's own com.openfaas.queue channel needs a queue-worker "
            "with faas_nats_channel set to it)"
        )
    elif online == 0:
        worker = (
            f"start the queue-worker: no member of its queue group {group} is connected (docker service ps "
            f"{worker_service})"
        )
    else:
        worker = (
            f"let the queue-worker catch up ({online} connected; docker service ps {worker_service}, more replicas "
            "or openfaas_queue_max_inflight)"
        )
    message = (
        f"The async queue is full: NATS Streaming channel {refused['channel']} holds {held}"
        + (f", and {since} more were admitted in the last second" if since else "")
        + f". This call was not queued: more than {refused['admits_up_to']} {unit} ({refused['limit']} "
        f"{refused[refused['limit']]} minus the {refused['headroom_percent']}% headroom) would make NATS Streaming "
        f"drop the oldest calls before they are processed. Retry later; to fix, {worker}, or raise {setting} and run "
        "the openfaas role again."
    )
    return json.dumps({"error": "async queue full", **refused, "queue_group": group, "workers_connected": online,
                       "message": message})  # fmt: skip


def queue_snapshot(taken_at, storez, channelsz, queues, default_channel):
    """What the verdicts need from one poll: the limits and backlog of every channel, the functions' own queues."""
    channels = {}
    for channel in channelsz.get("channels") or []:
        name = channel.get("name") or ""
        count, nbytes, group, online = channel_backlog(channel)
        channels[name] = {
            "backlog": (count, nbytes),
            "group": group,
            "online": online,
            "limits": channel_limits(storez, name),
        }
    return {
        "taken_at": taken_at,
        "storez": storez,
        "channels": channels,
        "queues": dict(queues),
        "default": default_channel,
    }


def is_fresh(taken_at, now, stale_after=STALE_AFTER):
    return taken_at is not None and now - taken_at <= stale_after


class Admission:
    """The verdicts: the last snapshot, the calls admitted since it, and one log line per change of state."""

    def __init__(self, percent, log, worker_service="func_queue-worker", clock=time.monotonic, stale_after=STALE_AFTER):
        self.percent, self.log, self.worker_service = percent, log, worker_service
        self.clock, self.stale_after = clock, stale_after
        self.lock = threading.Lock()
        self.snapshot = None
        self.recent = {}  # channel -> deque of (time admitted, bytes)
        self.totals = {}  # channel -> [calls, bytes] in self.recent[channel]
        self.states = {}  # what was last logged, per channel and for the snapshot ("source")

    def _note(self, key, state, line):
        if self.states.get(key) != state:
            self.states[key] = state
            self.log(f"queue admission: {line}")

    def update(self, snapshot):
        with self.lock:
            self.snapshot = snapshot
            cutoff = snapshot["taken_at"] - IN_TRANSIT
            for channel, recent in self.recent.items():
                while recent and recent[0][0] < cutoff:
                    _when, size = recent.popleft()
                    self.totals[channel][0] -= 1
                    self.totals[channel][1] -= size
            limits = snapshot["storez"].get("limits") or {}
            self._note(
                "source",
                "live",
                f"NATS Streaming's monitoring answers: async calls are checked against the limits (max_msgs "
                f"{limits.get('max_msgs')}, max_bytes {limits.get('max_bytes')}, headroom {self.percent}%)",
            )

    def failed(self, reason):
        with self.lock:
            self._note(
                "source",
                f"open: {reason}",
                f"cannot read NATS Streaming's monitoring ({reason}): once the last snapshot is {self.stale_after} s "
                "old, every async call is admitted until it answers (fail open)",
            )

    def decide(self, uri, content_length=None):
        """(status, headers) for nginx: 204 admits the call, 403 refuses it (nginx answers 507 with the header)."""
        now = self.clock()
        function = async_function(uri or "")
        with self.lock:
            snapshot = self.snapshot
            if snapshot is None or not is_fresh(snapshot["taken_at"], now, self.stale_after):
                if snapshot is not None:
                    age = round(now - snapshot["taken_at"], 1)
                    self._note(
                        "source",
                        "stale",
                        f"the last snapshot of NATS Streaming is {age} s old (more than {self.stale_after} s): every "
                        "async call is admitted until a poll succeeds (fail open)",
                    )
                return 204, {}
            if function is None:
                return 204, {}
            channel = snapshot["queues"].get(function) or snapshot["default"]
            known = snapshot["channels"].get(channel)
            backlog = known["backlog"] if known else (0, 0)
            limits = known["limits"] if known else channel_limits(snapshot["storez"], channel)
            size = message_size(content_length)
            recent = tuple(self.totals.get(channel, (0, 0)))
            refused = refusal(channel, backlog, limits, self.percent, recent, size)
            if refused:
                self._note(
                    channel,
                    "full",
                    f"channel {channel} is full ({refused['limit']}: {backlog[0]} calls, about {backlog[1]} bytes not "
                    f"processed; admits up to {refused['admits_up_to']}): async calls get 507 until it has room",
                )
                group, online = (known["group"], known["online"]) if known else (None, 0)
                return 403, {FULL_HEADER: full_body(refused, self.worker_service, group, online)}
            self._note(channel, "room", f"channel {channel} has room: async calls are admitted")
            self.recent.setdefault(channel, collections.deque()).append((now, size))
            totals = self.totals.setdefault(channel, [0, 0])
            totals[0] += 1
            totals[1] += size
            return 204, {}


def monitor_get(address, port, path, timeout=2.0):
    """One JSON document from NATS Streaming's monitoring endpoint."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise OSError(
            f"GET http://{address}:{port}{path} answered {resp.status}: {data[:200].decode(errors='replace')}"
        )
    return json.loads(data)


class QueueWatch:
    """Polls NATS Streaming's monitoring from inside the network namespace of this node's gateway task (NATS is not
    published on the host) and hands each snapshot to the Admission."""

    def __init__(self, engine, service, port, admission, log, netns=in_netns, get=monitor_get, lookup=resolve,
                 clock=time.monotonic, sleep=time.sleep):  # fmt: skip
        self.engine, self.service, self.port, self.admission, self.log = engine, service, port, admission, log
        self.netns, self.get, self.lookup, self.clock, self.sleep = netns, get, lookup, clock, sleep
        self.gateway = None  # (pid, env, time found)
        self.queues = None  # ({function: channel}, time read)

    def _engine(self, url):
        status, body = self.engine.call("GET", url)
        if status != 200:
            raise OSError(f"GET {url.split('?')[0]} answered {status}: {str(body)[:120]}")
        return body

    def _gateway(self):
        now = self.clock()
        if self.gateway and now - self.gateway[2] < REFRESH and os.path.exists(f"/proc/{self.gateway[0]}"):
            return self.gateway[:2]
        filters = {"label": [f"com.docker.swarm.service.name={self.service}"], "status": ["running"]}
        containers = self._engine("/containers/json?" + urllib.parse.urlencode({"filters": json.dumps(filters)}))
        if not containers:
            raise OSError(
                f"no running {self.service} container on this node (a global service on the managers: is the node "
                "drained or its task restarting?)"
            )
        info = self._engine(f"/containers/{urllib.parse.quote(containers[0]['Id'])}/json")
        env = dict(item.split("=", 1) for item in (info.get("Config") or {}).get("Env") or [] if "=" in item)
        self.gateway = (info["State"]["Pid"], env, now)
        return self.gateway[:2]

    def _queues(self):
        now = self.clock()
        if self.queues is None or now - self.queues[1] >= REFRESH:
            query = urllib.parse.urlencode({"filters": json.dumps({"label": [QUEUE_LABEL]})})
            self.queues = (function_queues(self._engine("/services?" + query)), now)
        return self.queues[0]

    def poll(self):
        taken = self.clock()
        pid, env = self._gateway()
        host = env.get("faas_nats_address") or "nats"  # the gateway's own settings (types/readconfig.go:86-115)
        default = env.get("faas_nats_channel") or "faas-request"

        def ask():
            address = host
            if _is_name(host):
                found = self.lookup(host)
                if not found:
                    raise OSError(f"Docker's DNS has no address for {host} (is the NATS Streaming task running?)")
                address = found[0]
            return self.get(address, self.port, STOREZ), self.get(address, self.port, CHANNELSZ)

        storez, channelsz = self.netns(pid, ask, timeout=5, what="answer from NATS Streaming's monitoring")
        self.admission.update(queue_snapshot(taken, storez, channelsz, self._queues(), default))

    def run(self, forever=True):
        while True:
            started = self.clock()
            try:
                self.poll()
            except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as exc:
                self.gateway = None  # look for the gateway container again
                self.admission.failed(str(exc) or type(exc).__name__)
            if not forever:
                return
            self.sleep(max(0.05, POLL_INTERVAL - (self.clock() - started)))


class AdmissionHandler(http.server.BaseHTTPRequestHandler):
    """nginx's auth_request subrequest: X-Original-URI and X-Original-Length of the async call, no body."""

    protocol_version = "HTTP/1.1"
    admission = None

    def log_message(self, *args):
        return  # one line per call would flood the journal; changes of state are logged by the Admission

    def answer(self):
        status, headers = self.admission.decide(
            self.headers.get("X-Original-URI") or "", self.headers.get("X-Original-Length")
        )
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if status != 204:
            self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = answer  # noqa: N815 - http.server's names


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve_admission(path, admission, group=None):
    """The admission's HTTP server on the unix socket ``path`` (mode 0660, group ``group``), serving in a thread."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    handler = type("BoundAdmissionHandler", (AdmissionHandler,), {"admission": admission})
    server = UnixHTTPServer(path, handler)
    os.chmod(path, 0o660)
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            server.server_close()
            raise SystemExit(
                f"--socket-group {group!r} is not a group on this host: give the group nginx's workers run as "
                "(www-data on Debian)"
            ) from None
        os.chown(path, -1, gid)
    threading.Thread(target=server.serve_forever, name="admission", daemon=True).start()
    return server


def parse_args(argv):
    """[--gate PORT --gateway-service NAME --provider URL] [--engine-proxy SOCKET] [DOCKER_SOCKET]
    or --wait-dns SECONDS [--gateway-service NAME] [--provider URL] [DOCKER_SOCKET] (once, then exit)
    or --queue-admission SOCKET [--headroom PERCENT] [--socket-group GROUP] [--nats-monitor-port PORT]
       [--gateway-service NAME] [DOCKER_SOCKET] (the queue admission only)"""
    options = {
        "socket": "/var/run/docker.sock",
        "gate": None,
        "service": "func_gateway",
        "provider": "",
        "proxy": "",
        "wait_dns": None,
        "queue_admission": "",
        "headroom": "5",
        "socket_group": "",
        "monitor_port": "8222",
    }
    keys = {
        "--gate": "gate",
        "--gateway-service": "service",
        "--provider": "provider",
        "--engine-proxy": "proxy",
        "--wait-dns": "wait_dns",
        "--queue-admission": "queue_admission",
        "--headroom": "headroom",
        "--socket-group": "socket_group",
        "--nats-monitor-port": "monitor_port",
    }
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in keys and args:
            options[keys[arg]] = args.pop(0)
        elif not arg.startswith("--"):
            options["socket"] = arg
        else:
            raise SystemExit(f"unknown or incomplete option {arg!r}; usage: {parse_args.__doc__}")
    if options["wait_dns"] is not None:
        if not options["wait_dns"].isdigit() or int(options["wait_dns"]) < 1:
            raise SystemExit(f"--wait-dns {options['wait_dns']!r} is not a number of seconds (1 or more)")
        options["wait_dns"] = int(options["wait_dns"])
    if options["gate"] is not None:
        if not options["gate"].isdigit() or not 0 < int(options["gate"]) < 65536:
            raise SystemExit(f"--gate {options['gate']!r} is not a TCP port number (1..65535)")
        if not options["provider"].startswith("http://"):
            raise SystemExit(f"--provider {options['provider']!r} must be faas-swarm's http:// URL")
        options["gate"] = int(options["gate"])
    if not options["headroom"].isdigit() or int(options["headroom"]) > 50:
        raise SystemExit(
            f"--headroom {options['headroom']!r} is not a percentage from 0 to 50 (openfaas_queue_admission_headroom)"
        )
    options["headroom"] = int(options["headroom"])
    if not options["monitor_port"].isdigit() or not 0 < int(options["monitor_port"]) < 65536:
        raise SystemExit(f"--nats-monitor-port {options['monitor_port']!r} is not a TCP port number (1..65535)")
    options["monitor_port"] = int(options["monitor_port"])
    if options["queue_admission"] and not options["queue_admission"].startswith("/"):
        raise SystemExit(f"--queue-admission {options['queue_admission']!r} must be the absolute path of a unix socket")
    return options


def run_queue_admission(options, engine, log):
    """The queue admission service: its socket for nginx, and the poller (forever)."""
    prefix = options["service"].rsplit("_", 1)[0] + "_" if "_" in options["service"] else ""
    admission = Admission(options["headroom"], log, prefix + "queue-worker")
    serve_admission(options["queue_admission"], admission, options["socket_group"] or None)
    log(
        f"onmetal-faas-endpoints: queue admission on {options['queue_admission']} (headroom "
        f"{options['headroom']}%), polling NATS Streaming's monitoring on port {options['monitor_port']} from the "
        f"{options['service']} task's network namespace"
    )
    QueueWatch(engine, options["service"], options["monitor_port"], admission, log).run()


def main():
    lock = threading.Lock()

    def log(text):
        with lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    options = parse_args(sys.argv[1:])
    engine = Engine(options["socket"])
    if options["queue_admission"]:
        run_queue_admission(options, engine, log)
        return
    if options["wait_dns"] is not None:
        waiter = RestartWait(engine, options["service"], [options["provider"]] if options["provider"] else [])
        sys.exit(wait_dns(waiter, options["wait_dns"], log))
    if options["proxy"]:
        EngineProxy(options["proxy"], options["socket"], log).start()
        log(f"onmetal-faas-endpoints: engine proxy for faas-swarm on {options['proxy']}")
    if options["gate"] is not None:
        keeper = GateKeeper(engine, options["service"], options["gate"], Provider(options["provider"]), log)
        threading.Thread(target=keeper.run, name="gates", daemon=True).start()
        log(f"onmetal-faas-endpoints: readiness gate on 127.0.0.1:{options['gate']} of {options['service']} tasks")
    log("onmetal-faas-endpoints: keeping function services in dnsrr mode")
    run(engine, log)


if __name__ == "__main__":
    main()
