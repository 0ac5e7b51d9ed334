"""The resizer's S3 job path: JSON {bucket, key, thumbnail_key} -> GET object, thumbnail, PUT JPEG.

Two layers:

* in process, without Pillow or boto3: the handler is loaded with a stand-in ``PIL`` module when Pillow is
  missing, ``resize_bytes`` is replaced by a fake that returns a JPEG header of a known size, and a stub S3
  client is injected (job parsing, defaults, settings from env + secret files, errors, the raw-bytes path
  not touching S3);
* the real function image (Pillow, Debian's boto3) in a container on the host network against a fake S3
  server on 127.0.0.1 (path-style GET/PUT), so the real boto3 calls and the real thumbnail are checked.
  Skipped without Docker and the base image.
"""

import http.client
import importlib.util
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import types
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fn_helpers import FUNCTIONS, jpeg_size, png_bytes

HANDLER = os.path.join(FUNCTIONS, "resize", "handler.py")


def _fake_pil():
    pil = types.ModuleType("PIL")
    image = types.ModuleType("PIL.Image")

    class UnidentifiedImageError(OSError):
        pass

    class DecompressionBombError(Exception):
        pass

    image.DecompressionBombError = DecompressionBombError
    pil.Image = image
    pil.UnidentifiedImageError = UnidentifiedImageError
    return pil, image


@pytest.fixture()
def handler(monkeypatch):
    try:
        import PIL  # noqa: F401
    except ImportError:
        pil, image = _fake_pil()
        monkeypatch.setitem(sys.modules, "PIL", pil)
        monkeypatch.setitem(sys.modules, "PIL.Image", image)
    spec = importlib.util.spec_from_file_location(f"resize_handler_{uuid.uuid4().hex}", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_jpeg(width, height):
    """SOI, one SOF0 segment of ``width`` x ``height``, EOI: enough for jpeg_size()."""
    sof = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xc0" + sof + b"\xff\xd9"


class Body:
    def __init__(self, data):
        self.data = data
        self.closed = False

    def read(self):
        return self.data

    def close(self):
        self.closed = True


class ClientError(Exception):
    def __init__(self, code):
        super().__init__(f"An error occurred ({code})")
        self.response = {"Error": {"Code": code}}


class StubS3:
    def __init__(self, objects=None, put_error=None):
        self.objects = dict(objects or {})
        self.calls = []
        self.put_error = put_error

    def get_object(self, Bucket, Key):  # noqa: N803 - boto3's names
        self.calls.append(("get", Bucket, Key))
        if (Bucket, Key) not in self.objects:
            raise ClientError("NoSuchKey")
        data, ctype = self.objects[(Bucket, Key)]
        return {"Body": Body(data), "ContentLength": len(data), "ContentType": ctype}

    def put_object(self, Bucket, Key, Body, ContentType):  # noqa: N803 - boto3's names
        self.calls.append(("put", Bucket, Key, ContentType))
        if self.put_error:
            raise ClientError(self.put_error)
        self.objects[(Bucket, Key)] = (Body, ContentType)


class Req:
    def __init__(self, body, content_type, method="POST"):
        self.method = method
        self.body = body
        self.headers = {"Content-Type": content_type} if content_type else {}


@pytest.fixture()
def fake_resize(handler, monkeypatch):
    seen = []

    def resize(data, content_type=None):
        seen.append((data, content_type))
        if data == b"not an image":
            raise handler.NotAnImage("the request body is not an image")
        return fake_jpeg(128, 80)

    monkeypatch.setattr(handler, "resize_bytes", resize)
    return seen


def test_job_reads_resizes_and_writes_back(handler, fake_resize, monkeypatch, tmp_path):
    s3 = StubS3({("photos", "uploads/a/cat.png"): (b"PNGDATA", "image/png")})
    (tmp_path / "s3-access-key").write_text("AKID")
    (tmp_path / "s3-secret-key").write_text("secret")
    monkeypatch.setattr(handler, "SECRET_DIRS", (str(tmp_path),))
    monkeypatch.setenv("s3_endpoint", "http://s3.test:9000")
    factory_calls = []
    monkeypatch.setattr(handler, "client_factory", lambda settings: factory_calls.append(settings) or s3)
    job = {"bucket": "photos", "key": "uploads/a/cat.png", "thumbnail_key": "thumbs/cat-small.jpg"}
    status, body, headers = handler.handle(Req(json.dumps(job).encode(), "application/json; charset=utf-8"))
    assert status == 200 and headers == {"Content-Type": "application/json"}
    assert body == {
        "bucket": "photos",
        "key": "uploads/a/cat.png",
        "thumbnail_key": "thumbs/cat-small.jpg",
        "width": 128,
        "height": 80,
        "bytes": len(fake_jpeg(128, 80)),
    }
    assert fake_resize == [(b"PNGDATA", "image/png")]
    assert s3.objects[("photos", "thumbs/cat-small.jpg")] == (fake_jpeg(128, 80), "image/jpeg")
    assert s3.calls == [("get", "photos", "uploads/a/cat.png"), ("put", "photos", "thumbs/cat-small.jpg", "image/jpeg")]
    assert factory_calls == [
        {"endpoint": "http://s3.test:9000", "region": "us-east-1", "access_key": "AKID", "secret_key": "secret"}
    ]
    handler.handle(Req(json.dumps(job).encode(), "application/json"))
    assert len(factory_calls) == 1, "the client is created once per process"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("uploads/1234-cat.png", "thumbnails/1234-cat.jpg"),
        ("cat.tar.gz", "thumbnails/cat.tar.jpg"),
        ("deep/dir/no-extension", "thumbnails/no-extension.jpg"),
        ("dir/.hidden", "thumbnails/.hidden.jpg"),
    ],
)
def test_default_thumbnail_key(handler, key, expected):
    assert handler.default_thumbnail_key(key) == expected


def test_job_without_thumbnail_key_uses_the_default(handler, fake_resize):
    s3 = StubS3({("b", "uploads/x.png"): (b"PNG", "image/png")})
    result = handler.run_job(json.dumps({"bucket": "b", "key": "uploads/x.png"}).encode(), client=s3, environ={})
    assert result["thumbnail_key"] == "thumbnails/x.jpg"
    assert ("b", "thumbnails/x.jpg") in s3.objects


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "the JSON body is a list"),
        (b'{"key": "k"}', "'bucket' is missing"),
        (b'{"bucket": "b", "key": ""}', "'key' is missing"),
        (b'{"bucket": "b", "key": "k", "thumbnail_key": 5}', "'thumbnail_key' must be a string"),
        (b'{"bucket": "b", "key": "a.jpg", "thumbnail_key": "a.jpg"}', "would overwrite the original"),
    ],
)
def test_bad_jobs_are_400_with_what_is_expected(handler, body, message):
    s3 = StubS3()
    with pytest.raises(handler.BadJob) as info:
        handler.run_job(body, client=s3, environ={})
    assert info.value.http_status == 400
    assert message in str(info.value)
    assert s3.calls == []


def test_missing_object_is_404(handler, fake_resize):
    with pytest.raises(handler.BadJob) as info:
        handler.run_job(b'{"bucket": "b", "key": "nope.png"}', client=StubS3(), environ={})
    assert info.value.http_status == 404
    assert "s3://b/nope.png does not exist (NoSuchKey)" in str(info.value)


def test_object_that_is_not_an_image_is_400(handler, fake_resize):
    s3 = StubS3({("b", "k.txt"): (b"not an image", "text/plain")})
    with pytest.raises(handler.BadJob) as info:
        handler.run_job(b'{"bucket": "b", "key": "k.txt"}', client=s3, environ={})
    assert info.value.http_status == 400 and "s3://b/k.txt" in str(info.value)
    assert [c[0] for c in s3.calls] == ["get"]


def test_too_large_object_is_413_and_not_read(handler, fake_resize):
    s3 = StubS3({("b", "big.png"): (b"x" * 100, "image/png")})
    with pytest.raises(handler.BadJob) as info:
        handler.run_job(b'{"bucket": "b", "key": "big.png"}', client=s3, environ={"s3_max_object_bytes": "99"})
    assert info.value.http_status == 413
    assert fake_resize == []


def test_store_failure_is_a_server_error_naming_the_object(handler, fake_resize):
    s3 = StubS3({("b", "k.png"): (b"PNG", "image/png")}, put_error="AccessDenied")
    with pytest.raises(handler.S3Failure, match=r"PUT s3://b/thumbnails/k.jpg failed: AccessDenied"):
        handler.run_job(b'{"bucket": "b", "key": "k.png"}', client=s3, environ={})


def test_job_delay_is_applied(handler, fake_resize):
    s3 = StubS3({("b", "k.png"): (b"PNG", "image/png")})
    t0 = time.monotonic()
    handler.run_job(b'{"bucket": "b", "key": "k.png"}', client=s3, environ={"job_delay_seconds": "0.2"})
    assert time.monotonic() - t0 >= 0.2


def test_raw_bytes_never_touch_s3(handler, fake_resize, monkeypatch):
    def no_client(settings):
        raise AssertionError("the raw-bytes path must not create an S3 client")

    monkeypatch.setattr(handler, "client_factory", no_client)
    status, body, headers = handler.handle(Req(b"PNGBYTES", "image/png"))
    assert (status, headers) == (200, {"Content-Type": "image/jpeg"})
    assert body == fake_jpeg(128, 80)
    assert fake_resize == [(b"PNGBYTES", "image/png")]


def test_get_is_refused(handler):
    with pytest.raises(handler.NotAnImage, match="GET has no body"):
        handler.handle(Req(b"", None, method="GET"))


def test_settings_from_env_and_secret_files(handler, tmp_path):
    first, second = tmp_path / "openfaas", tmp_path / "run"
    first.mkdir()
    second.mkdir()
    (second / "s3-access-key").write_text("AKIDEXAMPLE\n")
    (second / "s3-secret-key").write_text("from-run-secrets\n")
    (first / "s3-secret-key").write_text("from-openfaas-dir\n")
    (first / "demo-s3-access-key-abc").write_text("ROTATED\n")
    env = {"s3_endpoint": "http://demo-s3:9000", "s3_region": "eu-central-1"}
    assert handler.s3_settings(env, (str(first), str(second))) == {
        "endpoint": "http://demo-s3:9000",
        "region": "eu-central-1",
        "access_key": "AKIDEXAMPLE",
        "secret_key": "from-openfaas-dir",
    }
    env = {"s3_access_key_secret": "demo-s3-access-key-abc"}
    settings = handler.s3_settings(env, (str(first), str(second)))
    assert settings["access_key"] == "ROTATED" and settings["region"] == "us-east-1" and settings["endpoint"] is None


def test_missing_secret_names_the_secret_and_the_directories(handler, tmp_path):
    with pytest.raises(handler.S3Failure, match=r"secret 's3-access-key' not found in .* or "):
        handler.s3_settings({}, (str(tmp_path / "a"), str(tmp_path / "b")))


def test_jpeg_size(handler):
    assert handler.jpeg_size(fake_jpeg(90, 128)) == (90, 128)
    assert handler.jpeg_size(b"\x89PNG") is None


# ---------------------------------------------------------------------------------------------------------------
# The real image: Pillow + Debian's boto3 against a fake S3 on 127.0.0.1.


class FakeS3:
    """Path-style S3 on 127.0.0.1: GET/HEAD/PUT /<bucket>/<key>, objects in a dict; records the requests."""

    def __init__(self):
        self.objects = {}
        self.requests = []
        s3 = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                s3.requests.append(("GET", self.path, self.headers.get("Authorization", "")))
                if self.path not in s3.objects:
                    body = b"<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>"
                    return self._reply(404, body, {"Content-Type": "application/xml"})
                data, ctype = s3.objects[self.path]
                return self._reply(200, data, {"Content-Type": ctype, "ETag": '"e"'})

            def do_PUT(self):  # noqa: N802
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                s3.requests.append(("PUT", self.path, self.headers.get("Authorization", "")))
                s3.objects[self.path] = (data, self.headers.get("Content-Type", ""))
                return self._reply(200, b"", {"ETag": '"e"'})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_real_image_runs_a_job_against_s3(resize_image, tmp_path):
    s3 = FakeS3()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secrets.chmod(0o755)
    for name, value in (("s3-access-key", "AKIDTEST"), ("s3-secret-key", "secret-key-for-tests")):
        (secrets / name).write_text(value)
        (secrets / name).chmod(0o644)
    port = _free_port()
    name = f"onmetal-fn-s3-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--network", "host", "-e", f"port={port}"]
        + ["-e", f"s3_endpoint=http://127.0.0.1:{s3.port}", "-v", f"{secrets}:/var/openfaas/secrets:ro", resize_image],
        check=True,
        capture_output=True,
    )
    try:
        s3.objects["/photos/uploads/cat.png"] = (png_bytes(640, 400), "image/png")
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the function did not listen"
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(
            "POST",
            "/",
            json.dumps({"bucket": "photos", "key": "uploads/cat.png"}),
            {"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 200, body
        result = json.loads(body)
        assert result["thumbnail_key"] == "thumbnails/cat.jpg" and (result["width"], result["height"]) == (128, 80)
        data, ctype = s3.objects["/photos/thumbnails/cat.jpg"]
        assert ctype == "image/jpeg" and jpeg_size(data) == (128, 80) and len(data) == result["bytes"]
        assert all("Credential=AKIDTEST/" in auth for _m, _p, auth in s3.requests), s3.requests
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        s3.close()
