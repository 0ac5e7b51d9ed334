"""Test double: a tiny in-memory Docker Engine API on a unix socket.

It stands in for dockerd in unit tests of the standard-library engine client and of the
swarm_stack / swarm_stack_info modules (and of the openfaas role's idler, which asks GET /info and
GET /nodes/<id> who leads), so those tests exercise the real HTTP path (socket,
keep-alive, query encoding, error bodies).  Real engines are used by the integration target and
the Molecule scenarios.  Only the endpoints swarm_stack uses are served; anything else answers 404
with an engine-style {"message": ...} body.
"""

import base64
import copy
import json
import os
import socketserver
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler

STACK_LABEL = "com.docker.stack.namespace"


class FakeClock:
    """The clock and ``sleep`` that waits on the engine are given: ``clock()`` reads the time, ``clock.sleep(s)``
    advances it at once (so a test of a 300 s wait takes no time and can assert how long it waited)."""

    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeEngine:
    def __init__(self, socket_path, manager=True):
        self.socket_path = socket_path
        self.manager = manager
        self.leader = True  # GET /nodes/node1: ManagerStatus.Leader; None: the swarm has no leader (503)
        self.services = []
        self.networks = [{"Id": "ingress-id", "Name": "ingress", "Labels": {}}]
        self.secrets = []
        self.configs = []
        self.requests = []  # (method, path without query, query dict, body, headers)
        self.connections = 0
        self.lock = threading.Lock()
        self._ids = 0
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with engine.lock:
                    engine.connections += 1

            def address_string(self):
                return "unix"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                url = urllib.parse.urlsplit(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                with engine.lock:
                    engine.requests.append((self.command, url.path, query, body, dict(self.headers)))
                    status, answer = engine.dispatch(self.command, url.path, query, body)
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        if os.path.exists(socket_path):
            os.unlink(socket_path)
        self.server = Server(socket_path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def writes(self):
        return [(m, p) for m, p, _q, _b, _h in self.requests if m != "GET"]

    def _id(self, prefix):
        self._ids += 1
        return f"{prefix}{self._ids}"

    @staticmethod
    def _labels_match(labels, wanted):
        for item in wanted:
            key, sep, value = item.partition("=")
            if key not in labels or (sep and labels[key] != value):
                return False
        return True

    def dispatch(self, method, path, query, body):
        filters = json.loads(query.get("filters", "{}"))
        parts = path.strip("/").split("/")
        if parts and parts[0].startswith("v1."):
            parts = parts[1:]
        route = (method, parts[0] if parts else "", len(parts))
        if route == ("GET", "info", 1):
            return 200, {
                "SystemTime": "2026-11-26T20:00:00Z",
                "Swarm": {"LocalNodeState": "active", "ControlAvailable": self.manager, "NodeID": "node1"},
            }
        if route == ("GET", "nodes", 2):
            if self.leader is None:  # what a manager answers without quorum
                return 503, {"message": "rpc error: code = Unknown desc = The swarm does not have a leader."}
            if parts[1] != "node1":
                return 404, {"message": f"node {parts[1]} not found"}
            return 200, {"ID": "node1", "ManagerStatus": {"Leader": self.leader, "Reachability": "reachable"}}
        if route == ("GET", "services", 1):
            wanted = filters.get("label", [])
            return 200, [copy.deepcopy(s) for s in self.services if self._labels_match(s["Spec"]["Labels"], wanted)]
        if route == ("GET", "services", 2):
            found = [s for s in self.services if s["ID"] == parts[1]]
            if not found:
                return 404, {"message": f"service {parts[1]} not found"}
            return 200, copy.deepcopy(found[0])
        if route == ("GET", "tasks", 1):
            ids = filters.get("service", [])
            return 200, [
                {"ID": "t-" + s["ID"], "ServiceID": s["ID"], "DesiredState": "running", "Status": {"State": "running"}}
                for s in self.services
                if s["ID"] in ids
            ]
        if route == ("GET", "networks", 1):
            return 200, copy.deepcopy(self.networks)
        if route == ("GET", "secrets", 1):
            return 200, copy.deepcopy(self.secrets)
        if route == ("GET", "configs", 1):
            return 200, copy.deepcopy(self.configs)
        if route == ("POST", "networks", 2) and parts[1] == "create":
            if any(n["Name"] == body["Name"] for n in self.networks):
                return 409, {"message": f"network with name {body['Name']} already exists"}
            net = dict(body, Id=self._id("net"))
            self.networks.append(net)
            return 201, {"Id": net["Id"], "Warning": ""}
        if route in (("POST", "secrets", 2), ("POST", "configs", 2)) and parts[1] == "create":
            store = self.secrets if parts[0] == "secrets" else self.configs
            base64.b64decode(body["Data"], validate=True)
            obj = {"ID": self._id(parts[0][:3]), "Spec": {"Name": body["Name"], "Labels": body.get("Labels") or {}}}
            store.append(obj)
            return 201, {"ID": obj["ID"]}
        if route == ("POST", "services", 2) and parts[1] == "create":
            svc = {"ID": self._id("svc"), "Version": {"Index": 1}, "Spec": copy.deepcopy(body)}
            self.services.append(svc)
            return 201, {"ID": svc["ID"]}
        if route == ("POST", "services", 3) and parts[2] == "update":
            found = [s for s in self.services if s["ID"] == parts[1]]
            if not found:
                return 404, {"message": f"service {parts[1]} not found"}
            if str(found[0]["Version"]["Index"]) != query.get("version"):
                return 500, {"message": "rpc error: code = Unknown desc = update out of sequence"}
            found[0]["PreviousSpec"] = found[0]["Spec"]
            found[0]["Spec"] = copy.deepcopy(body)
            found[0]["Version"]["Index"] += 1
            return 200, {"Warnings": None}
        if method == "DELETE" and len(parts) == 2 and parts[0] in ("services", "networks", "secrets", "configs"):
            store = getattr(self, parts[0])
            key = "Id" if parts[0] == "networks" else "ID"
            before = len(store)
            store[:] = [o for o in store if o[key] != parts[1]]
            if len(store) == before:
                return 404, {"message": f"{parts[0][:-1]} {parts[1]} not found"}
            return 204, None
        return 404, {"message": f"page not found: {method} {path}"}
