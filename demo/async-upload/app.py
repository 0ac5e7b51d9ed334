# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Async-worker demo: upload an image, have OpenFaaS thumbnail it in the background, serve the result.

Standard library + boto3 (Debian's python3-boto3). Stateless: the uploads, the thumbnails and the
callback records all live in the bucket, so any number of replicas can answer any request.

``POST /upload[?name=photo.png]``  raw image body -> stored as ``uploads/<uuid>-<name>``; the app then
    POSTs ``{"bucket", "key", "thumbnail_key"}`` to ``<GATEWAY_URL>/async-function/<FUNCTION>`` with
    ``X-Callback-Url: <CALLBACK_URL>?key=<key>`` and answers **202** at once with
    ``{"key", "call_id", "status_url", "thumbnail_key", "thumbnail_url"}`` (``call_id`` is the gateway's
    ``X-Call-Id``). It does not wait for the function.
``POST /callback?key=<key>``       the queue-worker's callback: records ``{"call_id", "status", "body",
    "duration_seconds", "received_at"}`` (``status`` from ``X-Function-Status``, ``body`` the function's
    JSON) as ``callbacks/<uuid>-<name>.json``.
``GET /uploads/<uuid>-<name>/status``  ``{"key", "state": "pending" | "done" | "failed", "thumbnail_key",
    "callback"}``.
``GET /thumbnails/<uuid>-<name>.jpg``  the thumbnail, streamed from the bucket (404 until it exists).
``GET /healthz``                   200 once the bucket exists (the app creates it at start-up), else 503.

Environment: ``S3_ENDPOINT`` (e.g. ``http://demo-s3:9000``), ``S3_REGION`` (``us-east-1``), ``S3_BUCKET``
(``uploads``), ``S3_ACCESS_KEY_FILE`` / ``S3_SECRET_KEY_FILE`` (default ``/run/secrets/s3-access-key`` and
``/run/secrets/s3-secret-key``; or ``S3_ACCESS_KEY`` / ``S3_SECRET_KEY``), ``GATEWAY_URL``
(``http://func_gateway:8080``), ``FUNCTION`` (``resize``), ``CALLBACK_URL`` (``http://demo-app:8000/callback``),
``PORT`` (8000), ``MAX_UPLOAD_BYTES`` (10485760).
"""

import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")
REST_RE = re.compile(r"^[0-9a-f]{32}-[A-Za-z0-9._-]{1,100}$")
CHUNK = 64 * 1024


class Config:
    def __init__(self, environ):
        self.endpoint = environ.get("S3_ENDPOINT", "") or None
        self.region = environ.get("S3_REGION", "us-east-1")
        self.bucket = environ.get("S3_BUCKET", "uploads")
        self.access_key = _credential(environ, "S3_ACCESS_KEY", "/run/secrets/s3-access-key")
        self.secret_key = _credential(environ, "S3_SECRET_KEY", "/run/secrets/s3-secret-key")
        self.gateway = environ.get("GATEWAY_URL", "http://func_gateway:8080").rstrip("/")
        self.function = environ.get("FUNCTION", "resize")
        self.callback_url = environ.get("CALLBACK_URL", "http://demo-app:8000/callback")
        self.port = int(environ.get("PORT", "8000"))
        self.max_upload = int(environ.get("MAX_UPLOAD_BYTES", str(10 * 1024 * 1024)))


def _credential(environ, name, default_file):
    if environ.get(name):
        return environ[name]
    path = environ.get(name + "_FILE", default_file)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise SystemExit(f"demo-async: set {name} or {name}_FILE (cannot read {path}: {exc})") from None


def make_s3(config):
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "s3",
        endpoint_url=config.endpoint,
        region_name=config.region,
        aws_access_key_id=config.access_key,
        aws_secret_access_key=config.secret_key,
        config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=3,
            read_timeout=30,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
    )


def upload_names(name):
    """(rest, key, thumbnail_key) for a new upload named ``name``: ``uploads/<uuid>-<safe name>``."""
    safe = NAME_RE.sub("_", name or "upload")[-100:].lstrip(".") or "upload"
    rest = f"{uuid.uuid4().hex}-{safe}"
    return rest, f"uploads/{rest}", thumbnail_key_of(rest)


def thumbnail_key_of(rest):
    """``thumbnails/<rest without its extension>.jpg`` (the same rule as the resize function's default)."""
    stem = rest.rsplit(".", 1)[0] if "." in rest[33:] else rest
    return f"thumbnails/{stem}.jpg"


def state_of(record):
    if record is None:
        return "pending"
    ok = record.get("status") == 200 and isinstance(record.get("body"), dict)
    return "done" if ok else "failed"


class App:
    def __init__(self, config, s3):
        self.config = config
        self.s3 = s3
        self.ready = threading.Event()

    def ensure_bucket(self, attempts=120, delay=1.0):
        """Create the bucket unless it exists; retried while the object store starts."""
        for attempt in range(1, attempts + 1):
            try:
                try:
                    self.s3.head_bucket(Bucket=self.config.bucket)
                except Exception as exc:
                    if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                        raise
                    try:
                        self.s3.create_bucket(Bucket=self.config.bucket)
                        log(f"created bucket {self.config.bucket}")
                    except Exception as exc2:
                        if _code(exc2) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                            raise
                self.ready.set()
                log(f"bucket {self.config.bucket} ready at {self.config.endpoint}")
                return True
            except Exception as exc:
                log(f"bucket {self.config.bucket} not ready (attempt {attempt}): {_code(exc)}: {exc}")
                time.sleep(delay)
        return False

    def upload(self, body, name, content_type):
        rest, key, thumbnail_key = upload_names(name)
        self.s3.put_object(Bucket=self.config.bucket, Key=key, Body=body, ContentType=content_type)
        job = json.dumps({"bucket": self.config.bucket, "key": key, "thumbnail_key": thumbnail_key}).encode()
        callback = f"{self.config.callback_url}?{urllib.parse.urlencode({'key': key})}"
        req = urllib.request.Request(
            f"{self.config.gateway}/async-function/{self.config.function}",
            data=job,
            method="POST",
            headers={"Content-Type": "application/json", "X-Callback-Url": callback},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            call_id = resp.headers.get("X-Call-Id", "")
            status = resp.status
        if status != 202:
            raise RuntimeError(f"the gateway answered {status} to the async call, expected 202")
        return {
            "key": key,
            "call_id": call_id,
            "status_url": f"/uploads/{rest}/status",
            "thumbnail_key": thumbnail_key,
            "thumbnail_url": "/" + thumbnail_key,
        }

    def record_callback(self, key, headers, body):
        rest = key[len("uploads/") :] if key.startswith("uploads/") else ""
        if not REST_RE.match(rest):
            raise ValueError(f"callback for an unknown key {key!r}")
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body.decode("utf-8", "replace")[:2000]
        record = {
            "call_id": headers.get("X-Call-Id", ""),
            "status": int(headers.get("X-Function-Status") or 0),
            "duration_seconds": float(headers.get("X-Duration-Seconds") or 0),
            "body": parsed,
            "received_at": time.time(),
        }
        self.s3.put_object(
            Bucket=self.config.bucket,
            Key=f"callbacks/{rest}.json",
            Body=json.dumps(record).encode(),
            ContentType="application/json",
        )
        return record

    def status(self, rest):
        try:
            obj = self.s3.get_object(Bucket=self.config.bucket, Key=f"callbacks/{rest}.json")
            record = json.loads(obj["Body"].read())
        except Exception as exc:
            if _code(exc) not in ("NoSuchKey", "404"):
                raise
            record = None
        return {
            "key": f"uploads/{rest}",
            "state": state_of(record),
            "thumbnail_key": thumbnail_key_of(rest),
            "callback": record,
        }


def _code(exc):
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code", "")) or type(exc).__name__


def log(message):
    sys.stderr.write(f"demo-async: {message}\n")
    sys.stderr.flush()


def make_handler(app):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "onmetal-demo-async"

        def log_message(self, format, *args):  # noqa: A002 - signature of the base class
            pass

        def _send(self, status, body, content_type="application/json"):
            data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status, message):
            self._send(status, {"error": message})

        def _body(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > app.config.max_upload:
                raise OverflowError(f"body of {length} bytes exceeds MAX_UPLOAD_BYTES={app.config.max_upload}")
            return self.rfile.read(length) if length else b""

        def do_GET(self):  # noqa: N802 - http.server's naming
            path = urllib.parse.urlsplit(self.path).path
            try:
                if path == "/healthz":
                    ok = app.ready.is_set()
                    self._send(200 if ok else 503, b"ok\n" if ok else b"bucket not ready\n", "text/plain")
                elif path.startswith("/uploads/") and path.endswith("/status"):
                    rest = path[len("/uploads/") : -len("/status")]
                    if not REST_RE.match(rest):
                        self._error(404, f"no upload {rest!r}")
                        return
                    self._send(200, app.status(rest))
                elif path.startswith("/thumbnails/"):
                    self._thumbnail(path[len("/") :])
                else:
                    self._error(404, f"no route GET {path}")
            except Exception as exc:
                log(f"GET {path}: {_code(exc)}: {exc}")
                self._error(502, f"object store: {_code(exc)}: {exc}")

        def _thumbnail(self, key):
            try:
                obj = app.s3.get_object(Bucket=app.config.bucket, Key=key)
            except Exception as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    self._error(404, f"{key} does not exist (yet)")
                    return
                raise
            self.send_response(200)
            self.send_header("Content-Type", obj.get("ContentType") or "image/jpeg")
            self.send_header("Content-Length", str(obj["ContentLength"]))
            self.end_headers()
            body = obj["Body"]
            for chunk in iter(lambda: body.read(CHUNK), b""):
                self.wfile.write(chunk)

        def do_POST(self):  # noqa: N802 - http.server's naming
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query)
            try:
                body = self._body()
            except (OverflowError, ValueError) as exc:
                self.close_connection = True
                self._error(413, str(exc))
                return
            try:
                if parts.path == "/upload":
                    if not body:
                        self._error(400, "POST the raw bytes of an image as the body")
                        return
                    name = (query.get("name") or ["upload"])[0]
                    ctype = self.headers.get("Content-Type") or "application/octet-stream"
                    self._send(202, app.upload(body, name, ctype))
                elif parts.path == "/callback":
                    record = app.record_callback((query.get("key") or [""])[0], self.headers, body)
                    self._send(200, {"recorded": True, "status": record["status"]})
                else:
                    self._error(404, f"no route POST {parts.path}")
            except ValueError as exc:
                self._error(400, str(exc))
            except urllib.error.URLError as exc:
                log(f"POST {parts.path}: gateway: {exc}")
                self._error(502, f"the gateway did not accept the async call: {exc}")
            except Exception as exc:
                log(f"POST {parts.path}: {_code(exc)}: {exc}")
                self._error(502, f"{_code(exc)}: {exc}")

    return Handler


def healthcheck(port):
    """Docker HEALTHCHECK: exit status 0 when /healthz answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return 0 if resp.status == 200 else 1
    except (OSError, urllib.error.URLError):
        return 1


def main(argv):
    if argv[1:2] == ["healthcheck"]:
        return healthcheck(int(os.environ.get("PORT", "8000")))
    config = Config(os.environ)
    app = App(config, make_s3(config))
    threading.Thread(target=app.ensure_bucket, daemon=True).start()
    server = ThreadingHTTPServer(("", config.port), make_handler(app))
    server.daemon_threads = True
    log(f"listening on :{config.port}; gateway {config.gateway}, function {config.function}, bucket {config.bucket}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 in the container: stop at once
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
