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
import select
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


# Go's net.Dialer (net/dial.go, partialDeadline): when a name resolves to several addresses they are dialled one
# after another, each with an equal share of the time left but at least this much (or all of it when less is left).
GO_DIAL_SANE_MINIMUM = 2.0
# Go's http.Transport drops an idle kept-alive connection after IdleConnTimeout (90 s in gw/types/proxy_client.go).
IDLE_CONN_TIMEOUT = 90.0


def partial_deadline(now, deadline, addresses_remaining):
    """Go's net partialDeadline: the deadline for dialling the next of ``addresses_remaining`` addresses when the
    whole dial must end by ``deadline``; None when no time is left (Go's "i/o timeout")."""
    time_remaining = deadline - now
    if time_remaining <= 0:
        return None
    timeout = time_remaining / addresses_remaining
    if timeout < GO_DIAL_SANE_MINIMUM:
        timeout = time_remaining if time_remaining < GO_DIAL_SANE_MINIMUM else GO_DIAL_SANE_MINIMUM
    return now + timeout


def _resolve(host, port):
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _connect_one(address, timeout):
    family, kind, proto, _name, sockaddr = address
    sock = socket.socket(family, kind, proto)
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Go's TCPConn default
    except BaseException:
        sock.close()
        raise
    return sock


def go_dial(host, port, timeout, resolve=None, connect=None, clock=time.monotonic):
    """Connect like Go's net.Dialer{Timeout: timeout}: resolve every address, dial them serially, each with its
    partial_deadline(); return the first socket that connects, else raise the FIRST error (Go's dialSerial).
    Unlike socket.create_connection, a silent address does not get the whole timeout. (Go races IPv4 against
    IPv6 when a name has both; the doubles' names have IPv4 addresses only, so that is not imitated.)"""
    resolve, connect = resolve or _resolve, connect or _connect_one
    deadline = clock() + timeout
    addresses = resolve(host, port)
    first_error = None
    for index, address in enumerate(addresses):
        now = clock()
        until = partial_deadline(now, deadline, len(addresses) - index)
        if until is None:
            first_error = first_error or socket.timeout("i/o timeout")
            break
        try:
            return connect(address, until - now)
        except OSError as exc:
            first_error = first_error or exc
    raise first_error or OSError(f"no suitable address found for {host}")


class _GoDialConnection(http.client.HTTPConnection):
    """http.client's connection, connecting with go_dial() within ``dial_timeout`` (default: ``timeout``) instead of
    socket.create_connection(); ``timeout`` then bounds each read and write."""

    def __init__(self, host, port, timeout, dial_timeout=None):
        super().__init__(host, port, timeout=timeout)
        self.dial_timeout = timeout if dial_timeout is None else dial_timeout

    def connect(self):
        self.sock = go_dial(self.host, self.port, self.dial_timeout)
        self.sock.settimeout(self.timeout)


def _open(host, port, netloc, timeout, dial_timeout=None):
    """A connected _GoDialConnection, or UpstreamError naming ``netloc``."""
    conn = _GoDialConnection(host, port, timeout, dial_timeout)
    try:
        conn.connect()
    except (OSError, socket.timeout) as exc:
        conn.close()
        raise UpstreamError(f"cannot connect to {netloc}: {exc}") from None
    return conn


def _split_url(url):
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UpstreamError(f"unsupported upstream URL {url!r}: only http://host[:port]/path is supported")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.hostname, parts.port or 80, parts.netloc, target


def _send(conn, method, target, body, headers):
    conn.putrequest(method, target, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body if body else None)


def http_request(url, method="GET", body=b"", headers=(), timeout=10.0, dial_timeout=None):
    """Send one HTTP request once on a new connection (no retry, no keep-alive: the clients that OpenFaaS builds
    per call) and return (status, [(header, value)], body); connection failures and timeouts raise UpstreamError.
    The connect is Go's serial dial (go_dial) within dial_timeout (default: timeout), as every OpenFaaS component
    here is a Go net/http client; timeout then bounds each read and write."""
    host, port, netloc, target = _split_url(url)
    conn = _open(host, port, netloc, timeout, dial_timeout)
    try:
        _send(conn, method, target, body, headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, list(response.getheaders()), data
    except (OSError, socket.timeout, http.client.HTTPException) as exc:
        raise UpstreamError(f"{method} {url} failed: {exc or type(exc).__name__}") from None
    finally:
        conn.close()


class _NothingReceived(Exception):
    """The request failed before any byte of an answer arrived (safe to replay a GET/HEAD)."""

    def __init__(self, cause):
        super().__init__(str(cause))
        self.cause = cause


def _readable(sock):
    """True when an idle connection has something to read: the peer closed it (EOF) or sent bytes nobody asked
    for. Either way it cannot carry the next request (Go's persistConn notices this in its background read)."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() on this platform, or the socket is closed
        try:
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True


class Transport:
    """A keep-alive HTTP/1.1 client shared by threads, in the manner of Go's http.Transport as the gateway
    configures it (gw/types/proxy_client.go): idle connections pooled per (host, port), at most
    ``max_idle_per_host`` per host (0: Go's DefaultMaxIdleConnsPerHost, 2) and ``max_idle`` in all (0: no
    limit; over it the oldest idle one is closed), dropped after ``idle_timeout``; the most recently returned one
    is reused first; an idle connection the server closed (readable) is dropped, not used; a response with
    "Connection: close", from HTTP/1.0 without keep-alive or delimited by the close, is not pooled. New
    connections use go_dial(). A GET/HEAD that fails on a REUSED connection before any answer is sent once more
    on a new connection; nothing else is retried (Go does not replay a request with a body it cannot rewind).
    request() returns what http_request() returns and raises UpstreamError alike."""

    def __init__(self, max_idle=1024, max_idle_per_host=1024, idle_timeout=IDLE_CONN_TIMEOUT, clock=time.monotonic):
        self.max_idle = max_idle
        self.max_idle_per_host = max_idle_per_host if max_idle_per_host != 0 else 2
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.lock = threading.Lock()
        self.idle = {}  # (host, port) -> [(returned_at, conn), ...], most recently returned last
        self.dials = 0  # connections opened so far

    def idle_count(self, key=None):
        with self.lock:
            if key is not None:
                return len(self.idle.get(key, ()))
            return sum(len(conns) for conns in self.idle.values())

    def close_idle(self):
        with self.lock:
            pools, self.idle = self.idle, {}
        for conns in pools.values():
            for _at, conn in conns:
                conn.close()

    def _expire(self, now):
        """Drop idle connections older than idle_timeout (Go: a timer per idle connection); holds the lock."""
        expired = []
        for key in list(self.idle):
            keep = [(at, conn) for at, conn in self.idle[key] if now - at < self.idle_timeout]
            expired += [conn for at, conn in self.idle[key] if now - at >= self.idle_timeout]
            if keep:
                self.idle[key] = keep
            else:
                del self.idle[key]
        return expired

    def _take(self, key):
        """The most recently returned usable idle connection to key, or None."""
        stale = []
        found = None
        with self.lock:
            stale = self._expire(self.clock())
            conns = self.idle.get(key, [])
            while conns and found is None:
                _at, conn = conns.pop()
                if conn.sock is None or _readable(conn.sock):
                    stale.append(conn)
                else:
                    found = conn
            if not conns:
                self.idle.pop(key, None)
        for conn in stale:
            conn.close()
        return found

    def _put(self, key, conn):
        """Go's tryPutIdleConn: refused when the host has max_idle_per_host idle already; over max_idle in all
        the oldest idle connection (of any host) is closed."""
        surplus = []
        with self.lock:
            now = self.clock()
            surplus = self._expire(now)
            conns = self.idle.setdefault(key, [])
            if len(conns) >= self.max_idle_per_host:
                surplus.append(conn)
                if not conns:
                    del self.idle[key]
            else:
                conns.append((now, conn))
                total = sum(len(c) for c in self.idle.values())
                while self.max_idle != 0 and total > max(self.max_idle, 0):
                    oldest = min(self.idle, key=lambda k: self.idle[k][0][0])
                    surplus.append(self.idle[oldest].pop(0)[1])
                    if not self.idle[oldest]:
                        del self.idle[oldest]
                    total -= 1
        for extra in surplus:
            extra.close()

    def _dial(self, host, port, netloc, timeout):
        conn = _open(host, port, netloc, timeout)
        with self.lock:
            self.dials += 1
        return conn

    def _exchange(self, conn, key, method, target, body, headers, timeout, url):
        try:
            conn.sock.settimeout(timeout)
            _send(conn, method, target, body, headers)
            response = conn.getresponse()
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as exc:
            conn.close()
            raise _NothingReceived(exc) from None
        except (OSError, socket.timeout, http.client.HTTPException) as exc:
            conn.close()
            raise UpstreamError(f"{method} {url} failed: {exc or type(exc).__name__}") from None
        try:
            data = response.read()  # the whole body (Content-Length, chunked or up to the close)
        except (OSError, socket.timeout, http.client.HTTPException) as exc:
            conn.close()
            raise UpstreamError(f"{method} {url} failed: {exc or type(exc).__name__}") from None
        result = response.status, list(response.getheaders()), data
        if response.will_close or conn.sock is None:
            conn.close()  # Connection: close, HTTP/1.0 without keep-alive, or a body that ended with the close
        else:
            self._put(key, conn)
        return result

    def request(self, url, method="GET", body=b"", headers=(), timeout=10.0):
        host, port, netloc, target = _split_url(url)
        key = (host, port)
        conn = self._take(key)
        if conn is not None:
            try:
                return self._exchange(conn, key, method, target, body, headers, timeout, url)
            except _NothingReceived as exc:
                if method not in ("GET", "HEAD"):
                    raise UpstreamError(f"{method} {url} failed: {exc.cause or type(exc.cause).__name__}") from None
        conn = self._dial(host, port, netloc, timeout)
        try:
            return self._exchange(conn, key, method, target, body, headers, timeout, url)
        except _NothingReceived as exc:
            raise UpstreamError(f"{method} {url} failed: {exc.cause or type(exc.cause).__name__}") from None


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
