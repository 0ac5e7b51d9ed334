# SPDX-License-Identifier: GPL-3.0-or-later
# Test function for onmetal.faas's tests (not a double of anything): the workload that the faas-swarm
# double deploys and the gateway invokes. An HTTP server on :8080 that answers any method on any path
# with the request body upper-cased (text/plain), plus X-Served-By (container hostname) and X-Path
# (the path it was called with, showing that sub-paths and queries reach the function).
# GET /_/health answers 200 OK, like the OpenFaaS watchdog's health endpoint. A query "sleep=<seconds>" (at most 30)
# makes it wait before answering: a slow job for the async-queue drills.
# Like the project's python3-http template (functions/templates/python3-http/index.py) and with no HEALTHCHECK either:
# it listens on :8080 before anything else is imported, so a call that arrives while it starts waits in the listen
# backlog instead of being refused.
"""Upper-casing echo function used as the OpenFaaS test workload."""

import signal
import socket
import sys

if __name__ == "__main__":
    LISTENER = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    LISTENER.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    LISTENER.bind(("", 8080))
    LISTENER.listen(1024)

import contextlib  # noqa: E402 - after listen(), as the template does
import time  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by BaseHTTPRequestHandler
        pass

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        data = b"OK" if self.path == "/_/health" else body.upper()
        with contextlib.suppress(ValueError):
            time.sleep(min(30.0, max(0.0, float(parse_qs(urlsplit(self.path).query).get("sleep", ["0"])[0]))))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Served-By", socket.gethostname())
        self.send_header("X-Path", self.path)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer


if __name__ == "__main__":
    # PID 1 ignores SIGTERM without a handler; exit at once on `docker stop` (rolling updates, scale-down).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    server = ThreadingHTTPServer(("", 8080), EchoHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = LISTENER
    server.daemon_threads = True
    server.serve_forever()
