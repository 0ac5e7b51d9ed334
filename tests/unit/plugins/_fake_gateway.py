"""Test double: a tiny in-memory OpenFaaS gateway (0.18.18 in front of faas-swarm) over HTTP on 127.0.0.1.

It stands in for the gateway's REST API in the unit tests of the gateway client
(tests/unit/plugins/module_utils/test__openfaas.py) and in the end-to-end tests of the functions
role (tests/functions/test_role_functions.py), so those exercise the real HTTP path (Ansible's
open_url, basic auth, error bodies), and in the tests of the openfaas role's idler
(tests/unit/roles/test_openfaas_idler.py).  The container double in tests/doubles/openfaas and real
gateways are used by the Molecule scenarios.  Served, all behind basic auth (401 otherwise):
GET/POST/PUT/DELETE /system/functions, GET /system/function/<name> and
POST /system/scale-function/<name>, with the provider's status codes and plain-text error bodies;
anything else answers 404 "404 page not found" as the gateway's router does.
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def function_status(body, available=1, replicas=1, invocations=0):
    """What faas-swarm lists for a function deployed with the request ``body``.

    ``invocations`` stands for the count the gateway mixes in from Prometheus (gateway/metrics/add_metrics.go:53-105
    at openfaas/faas 11ff356c); faas-swarm itself reports 0 (handlers/reader.go:62).
    """
    return {
        "name": body["service"],
        "image": body["image"],
        "invocationCount": invocations,
        "replicas": replicas,
        "availableReplicas": available,
        "envProcess": body.get("envProcess", ""),
        "labels": {"function": "true", "com.openfaas.function": body["service"], **body["labels"]},
    }


class FakeGateway:
    """The gateway with its functions in memory; a context manager that serves while entered.

    A function has 0 of 1 replicas available when its name is in ``unavailable`` or when
    ``image_ok(image)`` says its image cannot be pulled (as Swarm keeps retrying such a task), else 1.
    """

    def __init__(self, user="admin", password="s3cret", image_ok=lambda image: True):
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.functions = {}  # service name -> the deploy request body as stored
        self.requests = []  # (method, path, JSON body or None), also the refused ones
        self.unavailable = set()
        self.replicas = {}  # service name -> desired replicas, when scaled (else 1)
        self.invocations = {}  # service name -> invocationCount to list (else 0)
        self.image_ok = image_ok
        self.lock = threading.Lock()
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with gw.lock:
                    gw.requests.append((self.command, self.path, body))
                    if self.headers.get("Authorization") != gw.auth:
                        status, answer = 401, b"Unauthorized\n"
                    else:
                        status, answer = gw.dispatch(self.command, self.path, body)
                text = isinstance(answer, bytes)
                data = answer if text else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def status(self, name):
        body = self.functions[name]
        ok = name not in self.unavailable and self.image_ok(body["image"])
        replicas = self.replicas.get(name, 1)
        return function_status(
            body,
            available=1 if ok and replicas > 0 else 0,
            replicas=replicas,
            invocations=self.invocations.get(name, 0),
        )

    def dispatch(self, method, path, body):
        """(status, answer) for an authorized request: bytes answer as text/plain, else as JSON."""
        if path == "/system/functions":
            if method == "GET":
                return 200, [self.status(n) for n in self.functions]
            if method == "POST":
                if body["service"] in self.functions:
                    return 400, b"Deployment error: service already exists"
                if body["image"] != body["image"].lower():
                    return 400, b"Deployment error: invalid reference format: repository name must be lowercase"
                self.functions[body["service"]] = body
                return 202, b""
            if method == "PUT":
                old = self.functions.get(body["service"])
                if old is None:
                    return 404, b"Error: No such service: " + body["service"].encode()
                self.functions[body["service"]] = {**body, "labels": {**old["labels"], **body["labels"]}}
                return 202, b""
            if method == "DELETE":
                if self.functions.pop(body["functionName"], None) is None:
                    return 404, b""
                return 202, b""
        if path.startswith("/system/scale-function/") and method == "POST":
            # faas-swarm handlers/replicas_updater.go:33-61: bad JSON 400, engine error 500 with its text, else 202
            name = path.rsplit("/", 1)[1]
            if not isinstance(body, dict) or not isinstance(body.get("replicas"), int) or body["replicas"] < 0:
                return 400, b"Cannot parse request. Please pass valid JSON."
            if name not in self.functions:
                return 500, b"Error: No such service: " + name.encode()
            self.replicas[name] = body["replicas"]
            return 202, b""
        if path.startswith("/system/function/") and method == "GET":
            name = path.rsplit("/", 1)[1]
            if name not in self.functions:
                return 404, b"Not Found"
            return 200, self.status(name)
        return 404, b"404 page not found"

    def writes(self):
        return [r for r in self.requests if r[0] != "GET"]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
