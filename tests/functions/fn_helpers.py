"""Helpers for the function image tests: PNG writer, JPEG size reader, image build, container.

These tests need a Docker engine and the local base image; without them they are skipped with
the reason.  Traffic goes only to 127.0.0.1 (a randomly published port).
"""

import base64
import hashlib
import http.client
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUNCTIONS = os.path.join(ROOT, "functions")
BASE_IMAGE = os.environ.get("ONMETAL_FN_BASE_IMAGE", "onmetal-rig/base:current")


def load_source(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_source("onmetal_fn_build", os.path.join(FUNCTIONS, "build.py"))


def png_bytes(width, height):
    """A valid RGB PNG with a gradient, written with zlib + struct (no Pillow needed)."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter type 0
        for x in range(width):
            row += bytes(((x * 255) // max(width - 1, 1), (y * 255) // max(height - 1, 1), 128))
        rows.append(bytes(row))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def jpeg_size(data):
    """(width, height) from the SOF marker of a baseline/progressive JPEG; checks SOI and EOI."""
    assert data[:2] == b"\xff\xd8", "no JPEG SOI marker"
    assert data[-2:] == b"\xff\xd9", "no JPEG EOI marker"
    pos = 2
    while pos < len(data):
        assert data[pos] == 0xFF, f"no marker at {pos}"
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise AssertionError("no SOF marker in JPEG")


def docker_ready():
    if not shutil.which("docker"):
        return "no docker CLI on PATH"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "the Docker engine does not answer (docker info failed)"
    if not build.image_exists(BASE_IMAGE):
        return f"base image {BASE_IMAGE} is missing (build it with tests/rig or set ONMETAL_FN_BASE_IMAGE)"
    return None


class Container:
    def __init__(self, image):
        self.name = f"onmetal-fn-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(
            ["docker", "run", "-d", "--name", self.name, "-p", "127.0.0.1::8080", image],
            check=True,
            capture_output=True,
        )
        out = subprocess.run(["docker", "port", self.name, "8080/tcp"], check=True, capture_output=True, text=True)
        self.port = int(out.stdout.split()[0].rsplit(":", 1)[1])

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def wait_healthy_http(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/_/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        logs = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True, check=False)
        raise AssertionError(f"{self.name} did not answer /_/health in {timeout}s:\n{logs.stdout}{logs.stderr}")

    def inspect(self, fmt):
        return subprocess.run(
            ["docker", "inspect", "-f", fmt, self.name], check=True, capture_output=True, text=True
        ).stdout.strip()

    def remove(self):
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)


REGISTRY_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-registry >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && printf 'version: 0.1\\nstorage:\\n  filesystem:\\n    rootdirectory: /var/lib/docker-registry\\n\\
http:\\n  addr: :5000\\n' > /etc/docker/registry/config.yml
EXPOSE 5000
CMD ["docker-registry", "serve", "/etc/docker/registry/config.yml"]
"""


def registry_image():
    """A registry image from Debian's docker-registry (plain HTTP, no auth), built once."""
    digest = hashlib.sha256((REGISTRY_DOCKERFILE + BASE_IMAGE).encode()).hexdigest()[:12]
    image = f"onmetal-faas-test/registry:{digest}"
    if not build.image_exists(image):
        subprocess.run(
            ["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", image, "-"],
            input=REGISTRY_DOCKERFILE.encode(),
            check=True,
            capture_output=True,
        )
    return image


class FakeGateway:
    """gateway 0.18.18 + faas-swarm in memory, on 127.0.0.1: basic auth, list/get/create/update/delete.

    A function's availableReplicas is 1 when ``image_ok(image)`` says its image can be pulled, else 0
    (as Swarm keeps retrying a task whose image does not exist).
    """

    def __init__(self, user="admin", password="s3cret-pass-1234", image_ok=lambda image: True):
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.functions = {}
        self.requests = []
        self.image_ok = image_ok
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", ctype="text/plain"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                gw.requests.append((self.command, self.path, body))
                if self.headers.get("Authorization") != gw.auth:
                    return self._reply(401, b"Unauthorized\n")
                if self.path == "/system/functions":
                    if self.command == "GET":
                        return self._reply(200, [gw.status(n) for n in gw.functions], "application/json")
                    if self.command == "POST":
                        gw.functions[body["service"]] = body
                        return self._reply(202)
                    if self.command == "PUT":
                        old = gw.functions[body["service"]]
                        gw.functions[body["service"]] = {**body, "labels": {**old["labels"], **body["labels"]}}
                        return self._reply(202)
                    if self.command == "DELETE":
                        gw.functions.pop(body["functionName"], None)
                        return self._reply(202)
                if self.path.startswith("/system/function/") and self.command == "GET":
                    name = self.path.rsplit("/", 1)[1]
                    if name not in gw.functions:
                        return self._reply(404, b"Not Found")
                    return self._reply(200, gw.status(name), "application/json")
                return self._reply(404, b"404 page not found")

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def status(self, name):
        body = self.functions[name]
        labels = {"function": "true", "com.openfaas.function": name, **body["labels"]}
        return {
            "name": name,
            "image": body["image"],
            "invocationCount": 0,
            "replicas": 1,
            "availableReplicas": 1 if self.image_ok(body["image"]) else 0,
            "envProcess": body.get("envProcess", ""),
            "labels": labels,
        }

    def writes(self):
        return [r for r in self.requests if r[0] != "GET"]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
