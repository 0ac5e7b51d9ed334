"""Helpers for the function image tests: PNG writer, JPEG size reader, image build, container.

These tests need a Docker engine and the local base image; without them they are skipped with
the reason.  Traffic goes only to 127.0.0.1 (a randomly published port).
"""

import hashlib
import http.client
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUNCTIONS = os.path.join(ROOT, "functions")
BASE_IMAGE = os.environ.get("ONMETAL_FN_BASE_IMAGE", "onmetal-rig/base:current")


def load_source(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_source("onmetal_fn_build", os.path.join(FUNCTIONS, "build.py"))
loadkit = load_source("onmetal_loadkit", os.path.join(ROOT, "benchmarks", "loadkit.py"))


def png_bytes(width, height):
    """A valid RGB PNG with a gradient (benchmarks/loadkit.py: zlib + struct, no Pillow needed)."""
    return loadkit.png(width, height)


def jpeg_size(data):
    """(width, height) from the SOF marker of a baseline/progressive JPEG; checks SOI and EOI."""
    assert data[:2] == b"\xff\xd8", "no JPEG SOI marker"
    assert data[-2:] == b"\xff\xd9", "no JPEG EOI marker"
    size = loadkit.jpeg_size(data)
    assert size is not None, "no SOF marker in JPEG"
    return size


def docker_ready():
    if not shutil.which("docker"):
        return "no docker CLI on PATH"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "the Docker engine does not answer (docker info failed)"
    if not build.image_exists(BASE_IMAGE):
        return f"base image {BASE_IMAGE} is missing (build it with tests/rig or set ONMETAL_FN_BASE_IMAGE)"
    return None


def http_request(port, method, path, body=None, headers=None, timeout=10):
    """One request to 127.0.0.1:port -> (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TemplateProcess:
    """``python3 index.py`` of the python3-http template with ``handler_code`` as its function, on a
    free 127.0.0.1 port, as a real subprocess; stderr goes to a file (:meth:`stderr`)."""

    def __init__(self, tmp_path, handler_code, env=None):
        self.tree = tmp_path / "app"
        shutil.copytree(os.path.join(FUNCTIONS, "templates", "python3-http"), self.tree)
        (self.tree / "function").mkdir()
        (self.tree / "function" / "handler.py").write_text(handler_code)
        self.port = free_port()
        self.err_path = tmp_path / "stderr.txt"
        environ = dict(os.environ, port=str(self.port), PYTHONUNBUFFERED="1", **(env or {}))
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, str(self.tree / "index.py")], env=environ, stderr=err)

    def connect(self, timeout=10):
        """A socket connected to the server, retried while nothing listens yet (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            except ConnectionRefusedError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.002)

    def wait_ready(self, timeout=10):
        self.connect(timeout).close()
        deadline = time.monotonic() + timeout
        while http_request(self.port, "GET", "/_/health")[0] != 200:
            assert time.monotonic() < deadline, self.stderr()
            time.sleep(0.01)

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Container:
    def __init__(self, image, env=None):
        self.name = f"onmetal-fn-test-{uuid.uuid4().hex[:8]}"
        env_args = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
        subprocess.run(
            ["docker", "run", "-d", "--name", self.name, "-p", "127.0.0.1::8080", *env_args, image],
            check=True,
            capture_output=True,
        )
        out = subprocess.run(["docker", "port", self.name, "8080/tcp"], check=True, capture_output=True, text=True)
        self.port = int(out.stdout.split()[0].rsplit(":", 1)[1])

    def request(self, method, path, body=None, headers=None):
        return http_request(self.port, method, path, body, headers)

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
