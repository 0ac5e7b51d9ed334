"""The python3-http template as a real process (``python3 index.py``) on 127.0.0.1: readiness, drain on
SIGTERM under load, quiet health checks.  No Docker; every load is bounded and counts each request."""

import http.client
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
from fn_helpers import FUNCTIONS, TemplateProcess, http_request, load_source

TEMPLATE = os.path.join(FUNCTIONS, "templates", "python3-http")
healthcheck = load_source("onmetal_fn_healthcheck", os.path.join(TEMPLATE, "healthcheck.py"))


@pytest.fixture
def start(tmp_path):
    procs = []

    def run(code, env=None):
        procs.append(TemplateProcess(tmp_path, code, env))
        return procs[-1]

    yield run
    for proc in procs:
        proc.stop()


def test_a_connection_made_while_the_handler_loads_waits_and_is_answered(start, tmp_path):
    go = tmp_path / "go"
    code = (
        "import os, time\n"
        f"deadline = time.monotonic() + 20\n"
        f"while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "def handle(req):\n    return 'ready'\n"
    )
    app = start(code)
    sock = app.connect()  # the port listens although the handler is still being imported
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(1)  # not answered while loading (the import waits for the file)
    assert "serving" not in app.stderr()
    go.write_text("")
    sock.settimeout(10)
    answer = b""
    while not answer.endswith(b"ready"):
        chunk = sock.recv(4096)
        assert chunk, answer
        answer += chunk
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert "serving" in app.stderr() and "(req contract)" in app.stderr()


def test_a_broken_handler_still_exits_non_zero_with_a_clear_message(start):
    app = start("raise ImportError('no module named pillow_simd')\n")
    assert app.proc.wait(10) != 0
    err = app.stderr()
    assert "importing the function handler" in err and "no module named pillow_simd" in err


def test_sigterm_under_load_drains_and_loses_no_request(start):
    code = "import time\ndef handle(req):\n    time.sleep(float(req.query.get('s', ['0.01'])[0]))\n    return 'ok'\n"
    app = start(code, {"drain_timeout": "2"})
    app.wait_ready()
    counts = {"ok": 0, "failed": 0, "close": 0, "reconnect": 0}
    errors, lock = [], threading.Lock()
    moved_on = threading.Event()  # "DNS no longer names this replica": clients told to close go elsewhere

    def count(key, error=None):
        with lock:
            counts[key] += 1
            if error is not None:
                errors.append(repr(error))

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
        for _request in range(2000):  # bounded
            try:
                conn.request("POST", "/", body=b"x")
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                count("failed", exc)
                return
            count("ok" if (resp.status, body) == (200, b"ok") else "failed")
            if resp.getheader("Connection", "").lower() == "close":
                count("close")
                conn.close()
                if moved_on.is_set():
                    return
                count("reconnect")
                conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
        conn.close()

    slow = {}

    def slow_request():  # in flight when the drain ends and the server stops accepting
        try:
            slow["answer"] = http_request(app.port, "POST", "/?s=1.5", b"x", timeout=10)[::2]
        except OSError as exc:
            slow["answer"] = exc

    idle = socket.create_connection(("127.0.0.1", app.port))  # one request, then idle keep-alive
    idle.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200 OK")
    threads = [threading.Thread(target=client) for _n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    app.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    moved_on.set()
    threads.append(threading.Thread(target=slow_request))
    threads[-1].start()
    for thread in threads:
        thread.join(30)
    assert app.proc.wait(15) == 0, app.stderr()
    idle.settimeout(5)
    assert idle.recv(4096) == b"", "the idle keep-alive connection ends with FIN, not a reset"
    idle.close()
    assert counts["failed"] == 0 and errors == [], (counts, errors)
    assert counts["ok"] >= 20 and counts["close"] >= 4 and counts["reconnect"] >= 1, counts
    assert slow["answer"] == (200, b"ok")
    err = app.stderr()
    assert "Traceback" not in err and "SIGTERM" in err and "closed 1 idle connections" in err, err


def test_health_checks_leave_no_traceback_and_handler_errors_still_do(start):
    app = start("def handle(req):\n    raise RuntimeError('kaput')\n")
    app.wait_ready()
    env = dict(os.environ, port=str(app.port))
    probe = [sys.executable, "-I", "-S", os.path.join(TEMPLATE, "healthcheck.py")]
    for _check in range(5):
        assert subprocess.run(probe, env=env, capture_output=True, check=False).returncode == 0
    for _check in range(5):  # a careless checker: reads a few bytes and resets the connection
        sock = socket.create_connection(("127.0.0.1", app.port))
        sock.sendall(b"GET /_/health HTTP/1.0\r\n\r\n")
        sock.recv(5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert http_request(app.port, "GET", "/_/health")[0] == 200
    assert "Traceback" not in app.stderr()
    assert http_request(app.port, "POST", "/")[0] == 500
    deadline = time.monotonic() + 5
    while "RuntimeError: kaput" not in app.stderr() and time.monotonic() < deadline:
        time.sleep(0.01)
    err = app.stderr()
    assert err.count("Traceback") == 1 and "RuntimeError: kaput" in err, err


def _one_shot_server(answer):
    """A raw server for one connection: send ``answer``, half-close, report how the peer ended."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen = {}

    def run():
        conn, _addr = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(answer)
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(5)
            try:
                seen["end"] = "FIN" if conn.recv(4096) == b"" else "data"
            except ConnectionResetError:
                seen["end"] = "RST"
        listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, seen


def test_healthcheck_reads_the_whole_answer_so_the_server_sees_no_reset():
    port, thread, seen = _one_shot_server(b"HTTP/1.0 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"k" * 3000)
    assert healthcheck.probe(port) == (True, "")
    thread.join(10)
    assert seen == {"end": "FIN"}


def test_healthcheck_fails_on_other_status_and_refusal():
    port, thread, _seen = _one_shot_server(b"HTTP/1.0 503 Service Unavailable\r\n\r\n")
    ok, reason = healthcheck.probe(port)
    thread.join(10)
    assert not ok and "expected HTTP status 200" in reason and "503" in reason
    with socket.create_server(("127.0.0.1", 0)) as closed:
        free = closed.getsockname()[1]
    ok, reason = healthcheck.probe(free)
    assert not ok and "health check:" in reason
