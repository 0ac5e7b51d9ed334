# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP server of the onmetal.faas python3-http template (standard library only).

Serves the function in ``function/handler.py`` (``handle(req)`` or upstream's
``handle(event, context)``, see ``faas_http.py``) on the socket ``index.py`` opened, every path
and method, plus ``GET /_/health`` (200).  Environment, following the OpenFaaS watchdog's names:

``port``           listening port (default 8080; read by ``index.py``)
``read_timeout``   max time to read a request (default 10s)
``write_timeout``  max time to write a response (default 10s)
``exec_timeout``   max time ``handle`` may run before the client gets 504 (default 10s; 0 = none)
``max_body_bytes`` largest accepted request body (default 10485760); larger -> 413
``drain_timeout``  how long to keep serving after SIGTERM (default 2s; see below)

Durations are Go durations (``1m30s``, ``500ms``) or plain seconds (``10``, ``2.5``).

Latency: each response leaves in one ``send`` (status line, headers and body joined) on a socket
with ``TCP_NODELAY``.  ``BaseHTTPRequestHandler`` on its own writes the headers and then the body
in two sends on an unbuffered socket; with Nagle's algorithm the body then waits for the ACK of
the headers, which a client on a kept-alive connection delays by up to 40 ms (delayed ACK), so
every request on a reused connection took about 44 ms.

Shutdown: Swarm removes a task from the service's DNS, waits 2 s and only then sends SIGTERM
(moby ``daemon/cluster/executor/container/controller.go``, ``Shutdown()``), but callers that keep
connections alive (the gateway, nginx) go on using theirs.  On SIGTERM the server therefore keeps
accepting and serving for ``drain_timeout`` and answers every request with ``Connection: close``,
which moves those callers to new connections (and so to other replicas); then it stops
accepting (after serving the connections already queued), closes connections that are idle
between requests, waits for requests in flight (at most ``exec_timeout + write_timeout``) and
exits 0.

Quiet logs: a peer that goes away (reset, broken pipe, timeout) is a normal event for a server
and prints nothing; an exception raised by ``handle`` prints its traceback to stderr (the
service log) and answers 500.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback

import faas_http

HERE = os.path.dirname(os.path.abspath(__file__))
HANDLER_PATH = os.path.join(HERE, "function", "handler.py")
HEALTH_PATH = "/_/health"
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# A peer that resets, closes early or stalls: normal for a server, never worth a traceback.
PEER_GONE = (ConnectionError, TimeoutError)


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


def load_function(path=HANDLER_PATH, environ=None):
    """Import ``handle`` from ``path`` as a :class:`faas_http.Function`; SystemExit with a clear message
    when that fails."""
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
        raise SystemExit(f"{path} defines no function handle(req) or handle(event, context)")
    try:
        return faas_http.Function(handle, environ)
    except TypeError as exc:
        raise SystemExit(f"{path}: {exc}") from None


class Settings:
    def __init__(self, environ):
        self.read_timeout = parse_duration(environ.get("read_timeout", "10s"), "read_timeout")
        self.write_timeout = parse_duration(environ.get("write_timeout", "10s"), "write_timeout")
        self.exec_timeout = parse_duration(environ.get("exec_timeout", "10s"), "exec_timeout")
        self.drain_timeout = parse_duration(environ.get("drain_timeout", "2s"), "drain_timeout")
        text = environ.get("max_body_bytes", str(10 * 1024 * 1024))
        try:
            self.max_body_bytes = int(text)
        except ValueError:
            raise ValueError(f"max_body_bytes={text!r} is not a number of bytes; use e.g. 10485760") from None


def call_with_timeout(handle, req, timeout):
    """Run ``handle(req)`` (:meth:`faas_http.Function.call`): ("ok", result), ("error", exc) or ("timeout", None).

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


def make_handler_class(function, settings):
    class FunctionRequestHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "onmetal-faas-python3-http"
        disable_nagle_algorithm = True  # TCP_NODELAY on every accepted socket (StreamRequestHandler.setup)
        timeout = settings.read_timeout or None

        def version_string(self):
            return self.server_version

        def log_message(self, format, *args):  # noqa: A002 - signature of the base class
            pass  # one line per request would dominate the service log; errors are printed below

        def setup(self):
            super().setup()
            self.server.track(self)

        def finish(self):
            try:
                super().finish()
            finally:
                self.server.untrack(self)

        def handle_one_request(self):
            # The base class's loop body, with the connection's state kept for the drain: "idle"
            # while waiting for the next request line, "busy" from its first byte to the answer.
            if not self.server.waiting(self):
                self.close_connection = True
                return
            try:
                self.raw_requestline = self.rfile.readline(65537)
                if not self.raw_requestline or not self.server.working(self):
                    self.close_connection = True
                    return
                if len(self.raw_requestline) > 65536:
                    self.requestline, self.request_version, self.command = "", "", ""
                    self.send_error(414)
                    return
                if self.parse_request():
                    self._dispatch()
            except TimeoutError:
                self.close_connection = True

        def _send(self, status, headers, body):
            """Status line, headers and body in one write (see the module docstring on latency)."""
            if self.server.draining:
                self.close_connection = True
            lines = [
                f"{self.protocol_version} {status} {self.responses.get(status, ('',))[0]}",
                f"Server: {self.server_version}",
                f"Date: {self.date_time_string()}",
            ]
            lines += [f"{key}: {value}" for key, value in headers.items() if key.lower() != "content-length"]
            lines.append(f"Content-Length: {len(body)}")
            if self.close_connection:
                lines.append("Connection: close")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
            if settings.write_timeout:
                self.connection.settimeout(settings.write_timeout)
            self.wfile.write(head if self.command == "HEAD" else head + body)
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
            outcome, value = call_with_timeout(function.call, req, settings.exec_timeout)
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
                status, headers, data = function.response(value)
            except (TypeError, ValueError) as exc:
                self._text(500, f"function error: {exc}")
                return
            self._send(status, headers, data)

    return FunctionRequestHandler


class Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server on an already listening socket, which knows its connections' states."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sock, handler_class):
        super().__init__(sock.getsockname()[:2], handler_class, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.draining = False  # SIGTERM seen: every answer says "Connection: close"
        self.stopping = False  # drain over: no more accepts, idle connections are closed
        self._cond = threading.Condition()
        self._conns = {}

    def track(self, handler):
        with self._cond:
            self._conns[handler] = "new"

    def untrack(self, handler):
        with self._cond:
            self._conns.pop(handler, None)
            self._cond.notify_all()

    def waiting(self, handler):
        """Before reading a request line; False when the connection should close instead."""
        with self._cond:
            if self._conns.get(handler) != "new":
                if self.stopping:
                    return False
                self._conns[handler] = "idle"
            return True

    def working(self, handler):
        """A request line arrived; False when the drain already closed this connection."""
        with self._cond:
            if self._conns.get(handler) == "closed":
                return False
            self._conns[handler] = "busy"
            return True

    def close_idle(self):
        """Close (FIN, not RST) the connections that wait between requests; returns how many."""
        closed = 0
        with self._cond:
            for handler, state in self._conns.items():
                if state == "idle":
                    self._conns[handler] = "closed"
                    with contextlib.suppress(OSError):
                        handler.connection.shutdown(socket.SHUT_RDWR)
                    closed += 1
        return closed

    def wait_connections(self, timeout):
        """Wait until every connection has ended or ``timeout`` passed; returns how many remain."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._conns and time.monotonic() < deadline:
                self._cond.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            return len(self._conns)

    def accept_queued(self):
        """Serve the connections still in the listen backlog (they completed their handshake)."""
        self.socket.setblocking(False)
        while True:
            try:
                conn, addr = self.socket.accept()
            except OSError:
                return
            conn.setblocking(True)
            self.process_request(conn, addr)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], PEER_GONE):
            return  # the peer went away: nothing to answer, nothing to report
        super().handle_error(request, client_address)


def drain_and_stop(server, settings):
    """After SIGTERM: serve ``drain_timeout`` longer (answers say close), then end serve_forever."""
    time.sleep(settings.drain_timeout)
    server.shutdown()


def close_down(server, settings, log=sys.stderr):
    """After serve_forever ended: stop accepting, close idle connections, let requests finish."""
    with server._cond:
        server.stopping = True
    server.accept_queued()
    server.server_close()
    idle = server.close_idle()
    busy = server.wait_connections((settings.exec_timeout or settings.read_timeout) + settings.write_timeout)
    log.write(f"python3-http: stopped; closed {idle} idle connections, {busy} still open at exit\n")
    log.flush()


def serve(sock, environ):
    """Load the function, then accept on ``sock`` until SIGTERM (drained) or Ctrl-C; returns 0."""
    try:
        settings = Settings(environ)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    function = load_function(environ=environ)
    server = Server(sock, make_handler_class(function, settings))

    def on_sigterm(_signum, _frame):
        if not server.draining:
            server.draining = True
            sys.stderr.write(f"python3-http: SIGTERM, serving {settings.drain_timeout:g}s more (Connection: close)\n")
            threading.Thread(target=drain_and_stop, args=(server, settings), daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    # Same marker as the OpenFaaS watchdog, for health checks that only test a file.
    try:
        with open("/tmp/.lock", "w", encoding="ascii") as lock:
            lock.write("1\n")
    except OSError:
        pass
    port = sock.getsockname()[1]
    sys.stderr.write(f"python3-http: serving {HANDLER_PATH} ({function.contract} contract) on :{port}\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        server.server_close()
        return 130
    close_down(server, settings)
    return 0
