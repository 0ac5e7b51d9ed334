"""Test double of the OpenFaaS gateway, used only to test the nginx in front of it (onmetal.faas.gateway_nginx).

It is not the gateway and implements none of its logic. Python 3 standard library only, so it runs on a bare
Debian node. It answers, over HTTP/1.1 with keepalive:

* ``GET /healthz``                  200 ``OK``
* ``GET /system/functions``         200 ``[]`` (what an admin would see)
* ``* /function/<name>[?sleep=N]``  200, JSON describing the request: body length, request id, the HTTP version and
  Connection header nginx used, and how many TCP connections the double has accepted so far (upstream keepalive
  keeps that number low); sleeps N seconds first when asked
* ``* /async-function/<name>``      202 with the body length
* anything else                     404

Usage: ``gateway_double.py [--host 127.0.0.1] [--port 8080]``.
"""

import argparse
import http.server
import itertools
import json
import socket
import threading
import time
import urllib.parse

_CONNECTIONS = itertools.count(1)
_LOCK = threading.Lock()
_STATE = {"connections": 0}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gateway-double"
    sys_version = ""

    def setup(self):
        super().setup()
        # Like the real gateway (Go sets TCP_NODELAY): headers and body are two writes, and Nagle's algorithm with
        # the peer's delayed ACK would add ~40 ms to every response on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with _LOCK:
            _STATE["connections"] = next(_CONNECTIONS)

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass

    def _read_body(self):
        remaining = int(self.headers.get("Content-Length") or 0)
        total = 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            total += len(chunk)
            remaining -= len(chunk)
        return total

    def _send(self, status, payload, content_type="application/json"):
        data = payload if isinstance(payload, bytes) else (json.dumps(payload) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        url = urllib.parse.urlsplit(self.path)
        length = self._read_body()
        if url.path == "/healthz":
            self._send(200, b"OK\n", "text/plain")
        elif url.path == "/system/functions":
            self._send(200, [])
        elif url.path.startswith("/function/"):
            sleep = float(urllib.parse.parse_qs(url.query).get("sleep", ["0"])[0])
            if sleep > 0:
                time.sleep(sleep)
            self._send(
                200,
                {
                    "function": url.path[len("/function/") :],
                    "length": length,
                    "request_id": self.headers.get("X-Request-Id", ""),
                    "http_version": self.request_version,
                    "connection": self.headers.get("Connection", ""),
                    "connections_accepted": _STATE["connections"],
                    "slept": sleep,
                },
            )
        elif url.path.startswith("/async-function/"):
            self._send(202, {"function": url.path[len("/async-function/") :], "length": length, "queued": True})
        else:
            self._send(404, {"error": "not found"})

    do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815 - names required by BaseHTTPRequestHandler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    http.server.ThreadingHTTPServer.request_queue_size = 1024  # the default backlog (5) drops SYNs at c=64
    server = http.server.ThreadingHTTPServer((args.host, args.port), _Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
