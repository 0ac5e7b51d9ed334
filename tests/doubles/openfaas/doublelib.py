# SPDX-License-Identifier: GPL-3.0-or-later
# Test-double support code: NOT part of OpenFaaS. Shared by the test doubles in this directory that
# stand in for the OpenFaaS Swarm images (gateway, basic-auth-plugin, faas-swarm, queue-worker,
# nats-streaming), which cannot be pulled on the test rig. Standard library only (Python >= 3.9).
"""Helpers shared by the OpenFaaS test doubles: env parsing, HTTP serving and HTTP forwarding."""

import base64
import binascii
import contextlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers that belong to one connection and are never forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    )
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(ValueError):
    """A setting in the environment cannot be used; the message names the variable and the fix."""


def go_duration(text, name="duration"):
    """Parse a Go duration ("65s", "1m30s", "500ms") or plain seconds ("8") into seconds (float)."""
    raw = str(text).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        return float(raw)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not raw or pos != len(raw):
        raise ConfigError(f"{name}={text!r} is not a duration; use Go syntax such as '65s', '1m5s' or '500ms'")
    return total


def go_duration_or(text, fallback):
    """OpenFaaS' parseIntOrDurationValue: whole seconds or a Go duration; anything else is the fallback."""
    raw = str(text or "").strip()
    if re.fullmatch(r"\d+", raw):
        return float(raw)
    try:
        return go_duration(raw) if raw else fallback
    except ConfigError:
        return fallback


def fatal(component, message, code=1):
    """Go's log.Fatal (exit 1) or log.Panic (exit 2, "panic: <message>"): the way upstream processes give up."""
    log(component, message)
    if code == 2:
        sys.stderr.write(f"panic: {message}\n\ngoroutine 1 [running]:\nmain.main()\n")
        sys.stderr.flush()
    sys.exit(code)


def env(name, default=""):
    """An OpenFaaS setting from the environment (upstream names are lower-case); empty means default."""
    return os.environ.get(name) or default


def env_duration(name, default):
    return go_duration(os.environ.get(name) or default, name)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    value = value.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean; use 'true' or 'false'")


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer") from None


def log(component, message):
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime())
    sys.stderr.write(f"{stamp} [{component}] {message}\n")
    sys.stderr.flush()


def read_secret(mount_path, filename):
    """Read one secret file the way OpenFaaS does (surrounding whitespace stripped)."""
    path = os.path.join(mount_path, filename)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read secret {path}: {exc.strerror}; mount the '{filename}' secret there or set secret_mount_path"
        ) from None


def parse_basic_auth(header):
    """Return (user, password) from an ``Authorization: Basic`` header, or None."""
    if not header:
        return None
    scheme, _sep, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def credentials_match(header, user, password):
    given = parse_basic_auth(header)
    if given is None:
        return False
    user_ok = hmac.compare_digest(given[0].encode(), user.encode())
    pass_ok = hmac.compare_digest(given[1].encode(), password.encode())
    return user_ok and pass_ok


def forwardable_headers(headers):
    """Copy request/response headers minus hop-by-hop ones, as a list of (name, value)."""
    connection_tokens = set()
    for value in headers.get_all("Connection") or []:
        connection_tokens.update(token.strip().lower() for token in value.split(","))
    return [(k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP and k.lower() not in connection_tokens]


def response_headers(headers):
    """Upstream response headers worth passing on: no hop-by-hop ones, no Server/Date (we send our own)."""
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date")]


class UpstreamError(Exception):
    """The upstream could not be reached or did not answer in time."""


def http_request(url, method="GET", body=b"", headers=(), timeout=10.0):
    """Send one HTTP request once (no retry, as every OpenFaaS client here) and return
    (status, [(header, value)], body); connection failures and timeouts raise UpstreamError."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UpstreamError(f"unsupported upstream URL {url!r}: only http://host[:port]/path is supported")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.connect()
    except (OSError, socket.timeout) as exc:
        conn.close()
        raise UpstreamError(f"cannot connect to {parts.netloc}: {exc}") from None
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        response = conn.getresponse()
        data = response.read()
        return response.status, list(response.getheaders()), data
    except (OSError, socket.timeout, http.client.HTTPException) as exc:
        raise UpstreamError(f"{method} {url} failed: {exc or type(exc).__name__}") from None
    finally:
        conn.close()


def http_json(url, method="GET", payload=None, headers=(), timeout=10.0):
    """JSON convenience wrapper around http_request: returns (status, decoded body or raw text)."""
    body = b"" if payload is None else json.dumps(payload).encode()
    hdrs = list(headers)
    if payload is not None:
        hdrs.append(("Content-Type", "application/json"))
    status, _headers, data = http_request(url, method, body, hdrs, timeout)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, data.decode("utf-8", "replace")


class Handler(BaseHTTPRequestHandler):
    """Base request handler: body reading (Content-Length or chunked), replies, quiet logging."""

    protocol_version = "HTTP/1.1"
    server_version = "onmetal-test-double"
    component = "double"
    # Socket timeout for reading a request (read_timeout in OpenFaaS terms); set by serve().
    timeout = 60

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by BaseHTTPRequestHandler
        if env("write_debug").lower() == "true":
            log(self.component, f"{self.address_string()} {format % args}")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def reply(self, status, body=b"", content_type="text/plain; charset=utf-8", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        names = {name.lower() for name, _value in headers}
        for name, value in headers:
            self.send_header(name, value)
        if body and content_type and "content-type" not in names:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status, payload, headers=()):
        self.reply(status, json.dumps(payload).encode(), "application/json", headers)

    def __getattr__(self, name):
        # Every HTTP method goes through dispatch(), so doubles accept whatever verbs the upstream accepts.
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def dispatch(self):
        raise NotImplementedError


def serve(handler_class, default_port, extra_ports=()):
    """Serve handler_class on env ``port`` (0 = ephemeral) and on extra_ports; print the bound port.

    The first stdout line is ``LISTENING <port>`` so tests can start doubles on ephemeral ports.
    """
    bind = env("bind_address")
    servers = []
    for port in (env_int("port", default_port), *extra_ports):
        server = ThreadingHTTPServer((bind, port), handler_class)
        server.daemon_threads = True
        servers.append(server)
    print(f"LISTENING {servers[0].server_address[1]}", flush=True)
    log(handler_class.component, f"listening on {[s.server_address[1] for s in servers]}")
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        servers[0].serve_forever()


def serve_pair(handler_class, port, second_class, second_port):
    """Serve handler_class on env ``port`` (default ``port``) and second_class on second_port (-1: not at all).

    Prints ``LISTENING <port> [<second port>]`` in one line (ephemeral ports in tests)."""
    bind = env("bind_address")
    main = ThreadingHTTPServer((bind, env_int("port", port)), handler_class)
    main.daemon_threads = True
    ports = [main.server_address[1]]
    if second_port >= 0:
        second = ThreadingHTTPServer((bind, second_port), second_class)
        second.daemon_threads = True
        ports.append(second.server_address[1])
        threading.Thread(target=second.serve_forever, daemon=True).start()
    print("LISTENING " + " ".join(map(str, ports)), flush=True)
    log(handler_class.component, f"listening on {main.server_address[1]}")
    with contextlib.suppress(KeyboardInterrupt):
        main.serve_forever()


def main_guard(component, func, reads_args=False):
    """Run func(); turn ConfigError into a one-line error and exit status 2.

    Command-line arguments are the upstream image's flags (e.g. nats-streaming's "--store memory"), which
    a stack may pass with `command:`; doubles configured by environment only say so (reads_args=False),
    the NATS Streaming double parses its flags itself (reads_args=True).
    """
    # The doubles run as PID 1, which ignores SIGTERM without a handler: exit promptly on `docker stop`.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if sys.argv[1:] and not reads_args:
        log(component, f"ignoring arguments meant for the upstream image: {' '.join(sys.argv[1:])}")
    try:
        func()
    except ConfigError as exc:
        log(component, f"configuration error: {exc}")
        sys.exit(2)


# --- NATS Streaming client side, over the HTTP protocol of nats_streaming.py -----------------------------
# The messages and limits are stan.go's and nats.go's as vendored by gateway 0.18.18 and queue-worker 0.11.2.
NATS_NO_SERVERS = "nats: no servers available for connection"  # nats.go/nats.go:94
STAN_CONNECT_TIMEOUT = "stan: connect request timeout (possibly wrong cluster ID?)"  # stan.go/stan.go:103
STAN_CLOSED = "stan: connection closed"  # stan.go/stan.go:107
NATS_DIAL_TIMEOUT = 2.0  # nats.go/nats.go:53 DefaultTimeout
STAN_CONNECT_WAIT = 2.0  # stan.go/stan.go:35 DefaultConnectWait
STAN_PING_INTERVAL = 5.0  # stan.go/stan.go:44 DefaultPingInterval
STAN_PING_MAX_OUT = 3  # stan.go/stan.go:46 DefaultPingMaxOut


class NatsError(Exception):
    """A NATS Streaming operation failed; the message is the one the Go client would give."""


class StanConn:
    """One client connection: connect once (no retry, as stan.Connect), ping every 5 s, and on a lost
    connection run the caller's reconnect loop: attempt i waits i * delay (gateway handler/nats_queue.go
    reconnect, queue-worker types.go:121-145), then gives up and stays disconnected."""

    def __init__(self, component, address, port, client_id, max_reconnect, reconnect_delay):
        self.component, self.client_id = component, client_id
        self.host, self.port = address, port
        self.url = f"nats://{address}:{port}"
        self.base = f"http://{address}:{port}"
        self.max_reconnect, self.reconnect_delay = max_reconnect, reconnect_delay
        self.connected = threading.Event()
        self.stop = threading.Event()

    def connect(self):
        try:  # nats.Connect: one dial per server, 2 s each, then ErrNoServers
            sock = socket.create_connection((self.host, self.port), timeout=NATS_DIAL_TIMEOUT)
            sock.close()
        except OSError:
            raise NatsError(NATS_NO_SERVERS) from None
        payload = json.dumps({"client_id": self.client_id, "wait": STAN_CONNECT_WAIT}).encode()
        try:  # the connect request waits ConnectWait for the streaming server's answer
            status, _headers, _data = http_request(
                f"{self.base}/connect", "POST", payload, [("Content-Type", "application/json")], STAN_CONNECT_WAIT + 1
            )
        except UpstreamError:
            raise NatsError(STAN_CONNECT_TIMEOUT) from None
        if status != 200:
            raise NatsError(STAN_CONNECT_TIMEOUT)
        self.connected.set()

    def start_pings(self):
        threading.Thread(target=self._pinger, daemon=True).start()

    def _pinger(self):
        missed = 0
        while not self.stop.wait(STAN_PING_INTERVAL):
            if not self.connected.is_set():
                continue
            try:
                status, _h, _d = self.request("ping", b"")
                missed = 0 if status == 200 else STAN_PING_MAX_OUT  # an error answer closes at once
            except UpstreamError:
                missed += 1
            if missed >= STAN_PING_MAX_OUT:
                missed = 0
                self.connected.clear()
                log(self.component, f"Disconnected from {self.url}")
                self.reconnect()

    def reconnect(self):
        log(self.component, "Reconnect")
        for attempt in range(self.max_reconnect):
            if self.stop.wait(attempt * self.reconnect_delay):
                return
            try:
                self.connect()
                log(self.component, f"Reconnecting ({attempt + 1}/{self.max_reconnect}) to {self.url} succeeded")
                return
            except NatsError:
                log(self.component, f"Reconnecting ({attempt + 1}/{self.max_reconnect}) to {self.url} failed")
        log(self.component, f"Reconnecting limit ({self.max_reconnect}) reached")

    def request(self, path, body, timeout=5.0):
        return http_request(f"{self.base}/{path}", "POST", body, [("X-Client-Id", self.client_id)], timeout)

    def publish(self, channel, data):
        if not self.connected.is_set():
            raise NatsError(STAN_CLOSED)
        try:
            status, _h, text = self.request(f"channels/{channel}/messages", data)
        except UpstreamError as exc:
            raise NatsError(f"nats: {exc}") from None
        if status != 201:
            raise NatsError(text.decode("utf-8", "replace").strip() or f"publish answered {status}")
