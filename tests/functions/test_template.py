"""The python3-http template's contract and server, without Docker (run in this interpreter)."""

import http.client
import os
import sys
import threading

import pytest
from fn_helpers import FUNCTIONS, build, load_source

TEMPLATE = os.path.join(FUNCTIONS, "templates", "python3-http")
sys.path.insert(0, TEMPLATE)
faas_http = load_source("faas_http", os.path.join(TEMPLATE, "faas_http.py"))
sys.modules["faas_http"] = faas_http
index = load_source("onmetal_fn_index", os.path.join(TEMPLATE, "index.py"))


@pytest.mark.parametrize(
    "text, seconds",
    [("10", 10.0), ("2.5", 2.5), ("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("0", 0.0)],
)
def test_parse_duration(text, seconds):
    assert index.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10x", "s", "1m 30s", "ten"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="is not a duration"):
        index.parse_duration(text, "exec_timeout")


@pytest.mark.parametrize(
    "result, expected",
    [
        (b"\x00\x01", (200, "application/octet-stream", b"\x00\x01")),
        ("hé", (200, "text/plain; charset=utf-8", "hé".encode())),
        ({"a": 1}, (200, "application/json", b'{"a": 1}')),
        ([1], (200, "application/json", b"[1]")),
        (None, (204, None, b"")),
        ((201, "made"), (201, "text/plain; charset=utf-8", b"made")),
        ((200, b"x", {"Content-Type": "image/jpeg"}), (200, "image/jpeg", b"x")),
        (faas_http.Response(b"r", 202, {"X-A": "1"}), (202, "application/octet-stream", b"r")),
    ],
)
def test_to_response(result, expected):
    status, headers, body = faas_http.to_response(result)
    assert (status, headers.get("Content-Type"), body) == expected


def test_to_response_rejects_other_types():
    with pytest.raises(TypeError, match="returned a body of type int"):
        faas_http.to_response(42)
    with pytest.raises(TypeError, match="tuple of 4 items"):
        faas_http.to_response((1, 2, 3, 4))


def test_error_status():
    assert faas_http.error_status(faas_http.BadRequest("x")) == 400
    assert faas_http.error_status(faas_http.BadRequest("x", 422)) == 422

    class Own(ValueError):
        http_status = 400

    assert faas_http.error_status(Own()) == 400
    assert faas_http.error_status(RuntimeError()) is None


def test_missing_handler_file_stops_with_clear_message(tmp_path):
    with pytest.raises(SystemExit) as exc:
        index.load_handler(str(tmp_path / "function" / "handler.py"))
    assert "function handler not found" in str(exc.value) and "handler.py" in str(exc.value)


def test_handler_without_handle(tmp_path):
    path = tmp_path / "handler.py"
    path.write_text("x = 1\n")
    with pytest.raises(SystemExit, match="defines no function handle"):
        index.load_handler(str(path))


def test_build_refuses_function_without_handler(tmp_path):
    with pytest.raises(build.BuildError, match="has no handler.py"):
        build.check_function(str(tmp_path), "broken")
    with pytest.raises(build.BuildError, match="does not exist"):
        build.check_function(str(tmp_path / "nope"), "ghost")


def test_content_hash_changes_with_handler_and_base(tmp_path):
    (tmp_path / "handler.py").write_text("def handle(req):\n    return 'a'\n")
    first = build.content_hash(str(tmp_path), "base:1")
    assert first == build.content_hash(str(tmp_path), "base:1") and len(first) == 12
    assert first != build.content_hash(str(tmp_path), "base:2")
    (tmp_path / "handler.py").write_text("def handle(req):\n    return 'b'\n")
    assert first != build.content_hash(str(tmp_path), "base:1")


@pytest.fixture
def server(tmp_path):
    handler = tmp_path / "handler.py"
    handler.write_text(
        "import time\n"
        "from faas_http import BadRequest\n"
        "def handle(req):\n"
        "    if req.path == '/echo':\n"
        "        return 200, req.body, {'X-Method': req.method, 'X-Query': ','.join(req.query.get('q', []))}\n"
        "    if req.path == '/bad':\n"
        "        raise BadRequest('need a name')\n"
        "    if req.path == '/boom':\n"
        "        raise RuntimeError('kaput')\n"
        "    if req.path == '/slow':\n"
        "        time.sleep(1)\n"
        "    if req.path == '/json':\n"
        "        return req.json()\n"
        "    return {'ct': req.content_type}\n"
    )
    settings = index.Settings({"exec_timeout": "200ms", "max_body_bytes": "1000"})
    httpd = index.Server(("127.0.0.1", 0), index.make_handler_class(index.load_handler(str(handler)), settings))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def call(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    out = resp.status, resp.getheader("Content-Type"), resp.read(), dict(resp.getheaders())
    conn.close()
    return out


def test_server_raw_bytes_method_query(server):
    payload = bytes(range(256))
    status, ctype, body, headers = call(server, "PUT", "/echo?q=1&q=2", payload)
    assert (status, body) == (200, payload)
    assert headers["X-Method"] == "PUT" and headers["X-Query"] == "1,2"


def test_server_errors(server):
    assert call(server, "POST", "/bad")[:3] == (400, "text/plain; charset=utf-8", b"need a name\n")
    status, _c, body, _h = call(server, "POST", "/boom")
    assert status == 500 and b"RuntimeError: kaput" in body
    status, _c, body, _h = call(server, "POST", "/json", b"{nope")
    assert status == 400 and b"not valid JSON" in body
    status, _c, body, _h = call(server, "POST", "/slow")
    assert status == 504 and b"exec_timeout=0.2s" in body
    status, _c, body, _h = call(server, "POST", "/", b"x" * 1001)
    assert status == 413


def test_server_health_and_keepalive(server):
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    for _attempt in range(3):
        conn.request("GET", "/_/health")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b"OK\n"
    conn.request("POST", "/", b"{}", {"Content-Type": "application/json; charset=utf-8"})
    assert conn.getresponse().read() == b'{"ct": "application/json"}'
    conn.close()


def test_server_chunked_body(server):
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    conn.request("POST", "/echo", body=iter([b"ab", b"", b"cdef"]), encode_chunked=True)
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"abcdef")
    conn.request("POST", "/echo", body=iter([b"x" * 600, b"y" * 600]), encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413 and b"max_body_bytes=1000" in resp.read()
    conn.close()
