# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP server of the onmetal.faas python3-http template (standard library only).

Serves the function in ``function/handler.py`` (``handle(req)``, see ``faas_http.py``) on port
``$port`` (default 8080), every path and method, plus ``GET /_/health`` (200 once the handler is
loaded).  Environment, following the OpenFaaS watchdog's names:

``port``           listening port (default 8080)
``read_timeout``   max time to read a request (default 10s)
``write_timeout``  max time to write a response (default 10s)
``exec_timeout``   max time ``handle`` may run before the client gets 504 (default 10s; 0 = none)
``max_body_bytes`` largest accepted request body (default 10485760); larger -> 413

Durations are Go durations (``1m30s``, ``500ms``) or plain seconds (``10``, ``2.5``).

Cold start: this file imports only small standard-library modules (no web framework), and the
handler is imported *before* the port is bound, so a missing or broken handler stops the process
at once with a clear message, and a 200 from the health endpoint means the first request will
not pay any import.  Heavy libraries a handler needs are its own business (the resizer imports
Pillow at module level, so that cost lands before the health check passes, not on a request).
"""

from __future__ import annotations

import http.server
import importlib.util
import os
import re
import sys
import threading
import traceback

import faas_http

HERE = os.path.dirname(os.path.abspath(__file__))
HANDLER_PATH = os.path.join(HERE, "function", "handler.py")
HEALTH_PATH = "/_/health"
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value, name="duration"):
    """Seconds from a Go duration (``1m30s``) or a plain number of seconds (``10``)."""
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{name}={value!r} is not a duration; use seconds (10) or a Go duration (10s, 1m30s, 500ms)")
    return total


def load_handler(path=HANDLER_PATH):
    """Import ``handle`` from ``path``; raise SystemExit with a clear message when that fails."""
    if not os.path.isfile(path):
        raise SystemExit(f"function handler not found: {path} (the function directory must contain handler.py)")
    spec = importlib.util.spec_from_file_location("handler", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(path))
    sys.modules["handler"] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        traceback.print_exc()
        raise SystemExit(f"importing the function handler {path} failed (traceback above)") from None
    handle = getattr(module, "handle", None)
    if not callable(handle):
        raise SystemExit(f"{path} defines no function handle(req)")
    return handle


class Settings:
    def __init__(self, environ):
        self.port = int(environ.get("port", "8080"))
        self.read_timeout = parse_duration(environ.get("read_timeout", "10s"), "read_timeout")
        self.write_timeout = parse_duration(environ.get("write_timeout", "10s"), "write_timeout")
        self.exec_timeout = parse_duration(environ.get("exec_timeout", "10s"), "exec_timeout")
        self.max_body_bytes = int(environ.get("max_body_bytes", str(10 * 1024 * 1024)))


def call_with_timeout(handle, req, timeout):
    """Run ``handle(req)``; returns ("ok", result), ("error", exc) or ("timeout", None).

    Python cannot stop a thread: on timeout the client gets 504 and the call runs on in the
    background (as with the watchdog, the function should respect its own deadline).
    """
    if not timeout:
        try:
            return "ok", handle(req)
        except Exception as exc:
            return "error", exc
    box = {}

    def run():
        try:
            box["result"] = ("ok", handle(req))
        except Exception as exc:
            box["result"] = ("error", exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    return box.get("result", ("timeout", None))


def read_chunked(rfile, limit):
    """The body of a ``Transfer-Encoding: chunked`` request; ValueError when malformed or over ``limit``."""
    parts, total = [], 0
    while True:
        line = rfile.readline(1026)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ValueError(f"malformed chunk size line {line[:40]!r}") from None
        if size == 0:
            break
        total += size
        if total > limit:
            raise ValueError(f"chunked request body exceeds max_body_bytes={limit}")
        parts.append(rfile.read(size))
        rfile.readline(3)  # CRLF after the chunk
    while rfile.readline(8192) not in (b"\r\n", b"\n", b""):  # trailers
        pass
    return b"".join(parts)


def make_handler_class(handle, settings):
    class FunctionRequestHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "onmetal-faas-python3-http"

        def version_string(self):
            return self.server_version

        timeout = settings.read_timeout or None

        def log_message(self, format, *args):  # noqa: A002 - signature of the base class
            pass  # one line per request would dominate the service log; errors are printed below

        def _send(self, status, headers, body):
            if settings.write_timeout:
                self.connection.settimeout(settings.write_timeout)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, str(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            if settings.read_timeout:
                self.connection.settimeout(settings.read_timeout)

        def _text(self, status, message):
            self._send(status, {"Content-Type": "text/plain; charset=utf-8"}, (message.rstrip("\n") + "\n").encode())

        def _dispatch(self):
            path, _sep, query = self.path.partition("?")
            if path == HEALTH_PATH and self.command in ("GET", "HEAD"):
                self._text(200, "OK")
                return
            length = self.headers.get("Content-Length")
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                try:
                    body = read_chunked(self.rfile, settings.max_body_bytes)
                except ValueError as exc:
                    self.close_connection = True
                    self._text(413 if "max_body_bytes" in str(exc) else 400, str(exc))
                    return
                self._run(path, query, body)
                return
            try:
                length = int(length or 0)
            except ValueError:
                self.close_connection = True
                self._text(400, f"invalid Content-Length: {length!r}")
                return
            if length > settings.max_body_bytes:
                self.close_connection = True
                self._text(413, f"request body of {length} bytes exceeds max_body_bytes={settings.max_body_bytes}")
                return
            self._run(path, query, self.rfile.read(length) if length else b"")

        def _run(self, path, query, body):
            req = faas_http.Request(self.command, path, query, self.headers, body)
            outcome, value = call_with_timeout(handle, req, settings.exec_timeout)
            if outcome == "timeout":
                self._text(504, f"function did not answer within exec_timeout={settings.exec_timeout:g}s")
                return
            if outcome == "error":
                status = faas_http.error_status(value)
                if status is not None:
                    self._text(status, str(value))
                    return
                sys.stderr.write(f"{self.command} {path}: handle() raised\n")
                traceback.print_exception(type(value), value, value.__traceback__)
                self._text(500, f"function error: {type(value).__name__}: {value}")
                return
            try:
                status, headers, data = faas_http.to_response(value)
            except (TypeError, ValueError) as exc:
                self._text(500, f"function error: {exc}")
                return
            self._send(status, headers, data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    return FunctionRequestHandler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(environ=None):
    environ = os.environ if environ is None else environ
    try:
        settings = Settings(environ)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    handle = load_handler()
    server = Server(("", settings.port), make_handler_class(handle, settings))
    # Same marker as the OpenFaaS watchdog, for health checks that only test a file.
    try:
        with open("/tmp/.lock", "w", encoding="ascii") as lock:
            lock.write("1\n")
    except OSError:
        pass
    sys.stderr.write(f"python3-http: serving {HANDLER_PATH} on :{settings.port}\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
