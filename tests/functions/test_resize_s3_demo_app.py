"""The async-upload demo app (demo/async-upload/app.py) in process, with a stub S3 client and a fake gateway.

Everything listens on 127.0.0.1 ephemeral ports; no Docker, no boto3 (the app imports it only in make_s3).
"""

import importlib.util
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fn_helpers
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(ROOT, "demo", "async-upload", "app.py")


def load_app():
    spec = importlib.util.spec_from_file_location(f"demo_app_{uuid.uuid4().hex}", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ClientError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


class Body:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, size=-1):
        end = len(self.data) if size < 0 else self.pos + size
        chunk, self.pos = self.data[self.pos : end], min(end, len(self.data))
        return chunk


class StubS3:
    def __init__(self):
        self.objects, self.buckets = {}, set()

    def head_bucket(self, Bucket):  # noqa: N803 - boto3's names
        if Bucket not in self.buckets:
            raise ClientError("404")

    def create_bucket(self, Bucket):  # noqa: N803
        self.buckets.add(Bucket)

    def put_object(self, Bucket, Key, Body, ContentType):  # noqa: N803
        self.objects[(Bucket, Key)] = (Body, ContentType)

    def get_object(self, Bucket, Key):  # noqa: N803
        if (Bucket, Key) not in self.objects:
            raise ClientError("NoSuchKey")
        data, ctype = self.objects[(Bucket, Key)]
        return {"Body": Body(data), "ContentLength": len(data), "ContentType": ctype}


class FakeGateway:
    def __init__(self, status=202):
        self.calls = []
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gw.calls.append((self.path, dict(self.headers), body))
                self.send_response(status)
                self.send_header("X-Call-Id", "call-123")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def running():
    app_mod = load_app()
    gateway = FakeGateway()
    env = {
        "S3_ACCESS_KEY": "AK",
        "S3_SECRET_KEY": "secret-key",
        "GATEWAY_URL": gateway.url,
        "FUNCTION": "resize-s3",
        "CALLBACK_URL": "http://demo-app:8000/callback",
    }
    s3 = StubS3()
    app = app_mod.App(app_mod.Config(env), s3)
    server = ThreadingHTTPServer(("127.0.0.1", 0), app_mod.make_handler(app))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = server.server_address[1]

    def request(method, path, body=None, headers=None):
        return fn_helpers.http_request(port, method, path, body, headers)

    yield app_mod, app, s3, gateway, request
    server.shutdown()
    server.server_close()
    gateway.close()


def test_health_follows_the_bucket(running):
    _mod, app, s3, _gw, request = running
    assert request("GET", "/healthz")[0] == 503
    assert app.ensure_bucket(attempts=1, delay=0)
    assert "uploads" in s3.buckets
    assert request("GET", "/healthz")[0] == 200
    assert app.ensure_bucket(attempts=1, delay=0), "an existing bucket is fine"


def test_upload_stores_fires_the_async_call_and_answers_202(running):
    _mod, _app, s3, gateway, request = running
    status, _h, body = request("POST", "/upload?name=my%20cat.png", b"PNGDATA", {"Content-Type": "image/png"})
    assert status == 202, body
    answer = json.loads(body)
    rest = answer["key"][len("uploads/") :]
    assert answer["key"].startswith("uploads/") and rest.endswith("-my_cat.png") and len(rest) == 32 + 1 + 10
    assert answer["call_id"] == "call-123"
    assert answer["status_url"] == f"/uploads/{rest}/status"
    assert answer["thumbnail_key"] == f"thumbnails/{rest[:-4]}.jpg"
    assert s3.objects[("uploads", answer["key"])] == (b"PNGDATA", "image/png")
    [(path, headers, job)] = gateway.calls
    assert path == "/async-function/resize-s3"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Callback-Url"] == "http://demo-app:8000/callback?key=" + answer["key"].replace("/", "%2F")
    assert json.loads(job) == {"bucket": "uploads", "key": answer["key"], "thumbnail_key": answer["thumbnail_key"]}


def test_callback_status_and_thumbnail(running):
    _mod, _app, s3, _gw, request = running
    answer = json.loads(request("POST", "/upload?name=a.png", b"PNG", {"Content-Type": "image/png"})[2])
    status_url = answer["status_url"]
    assert json.loads(request("GET", status_url)[2])["state"] == "pending"
    assert request("GET", "/" + answer["thumbnail_key"])[0] == 404
    result = {"bucket": "uploads", "key": answer["key"], "thumbnail_key": answer["thumbnail_key"], "width": 128}
    headers = {"X-Call-Id": "call-123", "X-Function-Status": "200", "X-Duration-Seconds": "3.2"}
    status, _h, _b = request("POST", "/callback?key=" + answer["key"], json.dumps(result).encode(), headers)
    assert status == 200
    state = json.loads(request("GET", status_url)[2])
    assert state["state"] == "done"
    assert state["callback"]["call_id"] == "call-123" and state["callback"]["status"] == 200
    assert state["callback"]["duration_seconds"] == 3.2 and state["callback"]["body"] == result
    s3.objects[("uploads", answer["thumbnail_key"])] = (b"\xff\xd8JPEG\xff\xd9" * 20000, "image/jpeg")
    status, headers, body = request("GET", "/" + answer["thumbnail_key"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body == b"\xff\xd8JPEG\xff\xd9" * 20000


def test_failed_function_is_recorded_as_failed(running):
    _mod, _app, _s3, _gw, request = running
    answer = json.loads(request("POST", "/upload?name=b.txt", b"text", {"Content-Type": "text/plain"})[2])
    headers = {"X-Call-Id": "call-123", "X-Function-Status": "400"}
    request("POST", "/callback?key=" + answer["key"], b"s3://uploads/...: not an image", headers)
    state = json.loads(request("GET", answer["status_url"])[2])
    assert state["state"] == "failed" and state["callback"]["body"].startswith("s3://uploads/")


@pytest.mark.parametrize("key", ["", "other/x.png", "uploads/../../etc", "uploads/not-a-uuid.png"])
def test_callback_for_unknown_keys_is_refused(running, key):
    _mod, _app, s3, _gw, request = running
    assert request("POST", "/callback?key=" + key, b"{}", {"X-Function-Status": "200"})[0] == 400
    assert not [k for (_b, k) in s3.objects if k.startswith("callbacks/")]


def test_bad_requests(running):
    _mod, _app, _s3, _gw, request = running
    assert request("POST", "/upload", b"")[0] == 400
    assert request("GET", "/uploads/nope/status")[0] == 404
    assert request("GET", "/elsewhere")[0] == 404


def test_gateway_down_is_502(running):
    mod, app, _s3, gateway, request = running
    gateway.close()
    status, _h, body = request("POST", "/upload?name=c.png", b"PNG", {"Content-Type": "image/png"})
    assert status == 502 and "gateway" in json.loads(body)["error"]


def test_names_are_sanitised(running):
    mod = running[0]
    rest, key, thumb = mod.upload_names("../../etc/pass wd.tar.gz")
    assert key == f"uploads/{rest}" and "/" not in rest and " " not in rest
    assert rest[32:] == "-_.._etc_pass_wd.tar.gz"
    assert thumb == f"thumbnails/{rest[:-3]}.jpg"
    assert mod.REST_RE.match(rest)
