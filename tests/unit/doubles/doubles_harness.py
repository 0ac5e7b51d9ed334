# SPDX-License-Identifier: GPL-3.0-or-later
"""Harness for the OpenFaaS test doubles: run them as local processes on 127.0.0.1 ephemeral ports.

Besides the doubles themselves, small in-process servers play the function (upper-cases the body), the
provider behind the gateway (a stub of faas-swarm's API that forwards /function/<name> to the function)
and the asynchronous callback receiver. No Docker is needed and all traffic stays on 127.0.0.1.
"""

import base64
import json
import os
import queue
import selectors
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DOUBLES = os.path.join(ROOT, "tests", "doubles", "openfaas")
USER, PASSWORD = "admin", "s3cret-pw"

if DOUBLES not in sys.path:
    sys.path.insert(0, DOUBLES)


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name)


def request(url, method="GET", body=b"", headers=None, auth=None, timeout=10):
    """HTTP call that returns error statuses instead of raising."""
    req = urllib.request.Request(url, data=body if method not in ("GET", "HEAD") else None, method=method)
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, err.headers, err.read())


class Process:
    """One double running as `python3 <script>`; its port is read from its "LISTENING <port>" line."""

    def __init__(self, script, env, log_dir, args=()):
        self.log_path = os.path.join(log_dir, script + ".log")
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "bind_address": "127.0.0.1", "port": "0"}
        full_env.update(env)
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop(); appends across restarts
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(DOUBLES, script), *args],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self.port = None
        self.second_port = None

    def wait_listening(self, timeout=10.0):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.1):
                line = self.proc.stdout.readline().decode()
                if line.startswith("LISTENING "):
                    ports = [int(p) for p in line.split()[1:]]
                    self.port = ports[0]
                    self.second_port = ports[1] if len(ports) > 1 else None  # the gateway's metrics server
                    return self
                if not line:
                    break
        raise AssertionError(f"{self.proc.args[1]} did not start: {self.logs()}")

    def logs(self):
        self.log.flush()
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.log.close()


def serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002
        pass

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status, data=b"", content_type="text/plain", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class FunctionHandler(Quiet):
    """The function: upper-cases the body; /fail answers 500; echoes the path it saw in X-Path."""

    calls = {}

    def handle_any(self):
        data = self.body()
        FunctionHandler.calls[self.path] = FunctionHandler.calls.get(self.path, 0) + 1
        if self.path.startswith("/busy"):
            self.send(503, b"busy")
        elif self.path.startswith("/fail"):
            self.send(500, b"boom", headers=[("X-Path", self.path)])
        else:
            self.send(
                200,
                data.upper(),
                "text/x-upper",
                [("X-Path", self.path), ("X-Seen-Call-Id", self.headers.get("X-Call-Id", ""))],
            )

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


class Provider:
    """Stub of the provider API behind the gateway; records what the gateway sends."""

    def __init__(self, function_port):
        self.function_port = function_port
        self.calls = []
        self.functions = {
            "echo": {"name": "echo", "image": "fn-echo", "replicas": 1, "availableReplicas": 1, "labels": {}},
            "sleepy": {
                "name": "sleepy",
                "image": "fn-echo",
                "replicas": 0,
                "availableReplicas": 0,
                "labels": {"com.openfaas.scale.min": "2"},
            },
        }
        provider = self

        class Handler(Quiet):
            def handle_any(self):
                data = self.body()
                path = self.path.split("?", 1)[0]
                provider.calls.append((self.command, path, self.headers.get("Authorization"), data))
                if path.startswith("/function/"):
                    name, _sep, rest = path[len("/function/") :].partition("/")
                    if name not in provider.functions or not provider.functions[name]["availableReplicas"]:
                        self.send(502, b"no replica")
                        return
                    status, headers, out = _forward(
                        provider.function_port, self.command, "/" + rest + self.path[len(path) :], data, self.headers
                    )
                    self.send(
                        status, out, headers.get("Content-Type", "text/plain"), [("X-Path", headers.get("X-Path", ""))]
                    )
                elif path == "/system/functions" and self.command == "GET":
                    self.send(200, json.dumps(list(provider.functions.values())).encode(), "application/json")
                elif path.startswith("/system/function/"):
                    info = provider.functions.get(path.rsplit("/", 1)[1])
                    if info is None:
                        self.send(404, b"not found")
                    else:
                        self.send(200, json.dumps(info).encode(), "application/json")
                elif path.startswith("/system/scale-function/"):
                    info = provider.functions[path.rsplit("/", 1)[1]]
                    info["replicas"] = info["availableReplicas"] = json.loads(data)["replicas"]
                    self.send(202)  # faas-swarm replicas_updater.go:62
                elif path == "/healthz":
                    self.send(200)
                elif path == "/system/functions" and self.command == "POST":
                    self.send(202)
                else:
                    self.send(404, b"stub: unknown route")

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

        self.server = serve(Handler)
        self.port = self.server.server_address[1]


def _forward(port, method, path, data, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    for key in ("Content-Type", "X-Call-Id"):
        if headers.get(key):
            req.add_header(key, headers[key])
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


class Callbacks:
    """Receives the queue-worker's callbacks into a queue."""

    def __init__(self):
        self.received = queue.Queue()
        received = self.received

        class Handler(Quiet):
            def do_POST(self):  # noqa: N802
                received.put((self.path, dict(self.headers.items()), self.body()))
                self.send(200)

        self.server = serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def get(self, timeout=8.0):
        return self.received.get(timeout=timeout)
