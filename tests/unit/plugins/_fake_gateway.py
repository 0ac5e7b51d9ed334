"""Test double: a tiny in-memory OpenFaaS gateway (0.18.18 in front of faas-swarm 0.9.0) over HTTP on 127.0.0.1.

It stands in for the gateway's REST API in the unit tests of the gateway client and the modules
(tests/unit/plugins/module_utils/test__openfaas*.py, tests/unit/plugins/modules/test_openfaas_*.py)
and in the end-to-end tests of the functions role (tests/functions/test_role_functions.py), so
those exercise the real HTTP path (Ansible's open_url, basic auth, error bodies).  The container
double in tests/doubles/openfaas and real gateways are used by the Molecule scenarios.

Every behaviour below is faas-swarm 0.9.0's (``handlers/...``) as the gateway forwards it
(openfaas/faas 11ff356c ``gateway/main.go:220-227``), all behind basic auth (401 otherwise):

* ``GET /system/functions``: name, image, replicas of the service spec, envProcess, labels and
  annotations (``null`` when there are none); ``availableReplicas`` is not filled in by the list
  and is therefore 0 (``reader.go:51-70``).
* ``GET /system/function/<name>``: the same plus ``availableReplicas``, the running tasks that are
  up to date with the spec (``replica_reader.go:64-83``); 404 with an empty body when unknown
  (``:43-46``).  Tasks are modelled as Swarm rolls them: after a create, update or scale, each read
  brings one more up-to-date task up (start-first, parallelism 1: ``update.go:88``, ``:161-164``),
  never while the function is in ``unavailable`` or its image fails ``image_ok`` (Swarm keeps
  retrying such a task).
* ``POST /system/functions``: 202 (``deploy.go:100``); 400 ``Deployment error: ...`` when the
  service exists or the image reference is invalid (``deploy.go:86-93``); replicas from
  ``com.openfaas.scale.min``, 1 without it (``deploy.go:338-351``).
* ``PUT /system/functions``: 202 (``update.go:103``); 404 when unknown (``:42-48``).  The labels
  are replaced, not merged, and get ``com.openfaas.uid`` (``:121-128``); an empty environment keeps
  the old one (``:166-170``); replicas are reset to ``com.openfaas.scale.min`` (``:172-174``).
* ``DELETE /system/functions`` ``{"functionName"}``: 202, 404 ``No such service found: <name>.``
  (``delete.go:65-85``).
* ``POST /system/scale-function/<name>`` ``{"serviceName", "replicas"}``: 202
  (``replicas_updater.go:61``); an unknown name is a Swarm error, 500 (``:53-58``).
* ``/system/secrets`` (``secrets.go``): GET lists ``{"name", "value": ""}`` (Swarm never returns
  data, ``:121-147``); POST 201 (``:176``), 500 with an empty body when the name exists (``:169-175``,
  ``:61-64``); PUT always 405 with an empty body (``:52-55``); DELETE 200 (``:251``), 404 when
  unknown, 500 when a function uses the secret (Swarm refuses, ``:241-249``).

Anything else answers 404 "404 page not found" as the gateway's router does.
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROVIDER_LABELS = {"function": "true"}


def _min_replicas(labels):
    return int(labels.get("com.openfaas.scale.min", "1"))


def function_status(body, available=1, replicas=1):
    """What faas-swarm reports for a function deployed with the request ``body``."""
    return {
        "name": body["service"],
        "image": body["image"],
        "invocationCount": 0,
        "replicas": replicas,
        "availableReplicas": available,
        "envProcess": body.get("envProcess", ""),
        "labels": {"function": "true", "com.openfaas.function": body["service"], **body["labels"]},
        "annotations": dict(body.get("annotations") or {}) or None,
    }


class FakeGateway:
    """The gateway with its functions and secrets in memory; a context manager that serves while entered."""

    def __init__(self, user="admin", password="s3cret", image_ok=lambda image: True):
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.functions = {}  # service name -> the deploy request body as stored
        self.replicas = {}  # service name -> replicas of the service spec
        self.ready = {}  # service name -> running tasks up to date with the spec
        self.secrets = {}  # secret name -> value (never returned)
        self.requests = []  # (method, path, JSON body or None), also the refused ones
        self.unavailable = set()
        self.image_ok = image_ok
        self.lock = threading.Lock()
        self.uid = 0
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

    def _healthy(self, name):
        return name not in self.unavailable and self.image_ok(self.functions[name]["image"])

    def status(self, name, roll=False):
        """The function's status; ``roll`` brings one more up-to-date task up (a read of /system/function)."""
        if roll and self._healthy(name) and self.ready[name] < self.replicas[name]:
            self.ready[name] += 1
        available = self.ready[name] if self._healthy(name) else 0
        return function_status(self.functions[name], available=available, replicas=self.replicas[name])

    def _roll(self, name, replicas):
        self.replicas[name] = replicas
        self.ready[name] = 0

    def dispatch(self, method, path, body):
        """(status, answer) for an authorized request: bytes answer as text/plain, else as JSON."""
        if path == "/system/functions":
            return self._functions(method, body)
        if path.startswith("/system/function/") and method == "GET":
            name = path.rsplit("/", 1)[1]
            if name not in self.functions:
                return 404, b""
            return 200, self.status(name, roll=True)
        if path.startswith("/system/scale-function/") and method == "POST":
            name = path.rsplit("/", 1)[1]
            if name not in self.functions:
                return 500, b"Error: No such service: " + name.encode()
            self.replicas[name] = int(body["replicas"])
            self.ready[name] = min(self.ready[name], self.replicas[name])
            return 202, b""
        if path == "/system/secrets":
            return self._secrets(method, body)
        return 404, b"404 page not found"

    def _functions(self, method, body):
        if method == "GET":
            return 200, [{**self.status(n), "availableReplicas": 0} for n in self.functions]
        if method == "POST":
            if body["service"] in self.functions:
                return 400, (
                    b"Deployment error: Error response from daemon: rpc error: code = AlreadyExists desc = "
                    b"name conflicts with an existing object: service " + body["service"].encode() + b" already exists"
                )
            if body["image"] != body["image"].lower():
                return 400, b"Deployment error: invalid reference format: repository name must be lowercase"
            self.functions[body["service"]] = body
            self._roll(body["service"], _min_replicas(body["labels"]))
            return 202, b""
        if method == "PUT":
            old = self.functions.get(body["service"])
            if old is None:
                return 404, b"Error: No such service: " + body["service"].encode()
            self.uid += 1
            stored = {**body, "labels": {**body["labels"], "com.openfaas.uid": str(self.uid)}}
            if not body.get("envVars") and not body.get("envProcess"):
                stored["envVars"] = old.get("envVars", {})
            self.functions[body["service"]] = stored
            self._roll(body["service"], _min_replicas(body["labels"]))
            return 202, b""
        if method == "DELETE":
            name = body["functionName"]
            if self.functions.pop(name, None) is None:
                return 404, f"No such service found: {name}.".encode()
            return 202, b""
        return 405, b""

    def _secrets(self, method, body):
        if method == "GET":
            return 200, [{"name": n, "value": ""} for n in sorted(self.secrets)]
        if method == "POST":
            if body["name"] in self.secrets:
                return 500, b""
            self.secrets[body["name"]] = body["value"]
            return 201, b""
        if method == "PUT":
            return 405, b""
        if method == "DELETE":
            name = body["name"]
            if name not in self.secrets:
                return 404, b""
            if any(name in (f.get("secrets") or []) for f in self.functions.values()):
                return 500, b""
            del self.secrets[name]
            return 200, b""
        return 405, b""

    def writes(self):
        return [r for r in self.requests if r[0] != "GET"]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
