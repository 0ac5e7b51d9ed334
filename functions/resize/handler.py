# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Image resizer: an image -> a JPEG thumbnail <= 128x128, from the request body or from S3.

Two ways to call it (POST or PUT):

* **Raw image bytes** in the body (any Content-Type but ``application/json``): the answer is the
  JPEG (``image/jpeg``).
* **An S3 job**, ``Content-Type: application/json`` with ``{"bucket": ..., "key": ...,
  "thumbnail_key": ...}`` (``thumbnail_key`` optional, default ``thumbnails/<key stem>.jpg``): the
  function GETs the object, thumbnails it, PUTs the JPEG to ``thumbnail_key`` in the same bucket and
  answers JSON ``{"bucket", "key", "thumbnail_key", "width", "height", "bytes"}``.  Meant for
  ``/async-function/resize`` with an ``X-Callback-Url``: the caller gets 202 at once and the JSON
  later, at its callback.

S3 settings of the job path (read on the first job, not at start-up):

``s3_endpoint``           endpoint URL, e.g. ``http://demo-s3:9000`` (MinIO); empty = AWS's default
``s3_region``             region for SigV4 signing (default ``us-east-1``)
``s3_access_key_secret``  name of the OpenFaaS secret holding the access key (default ``s3-access-key``)
``s3_secret_key_secret``  name of the OpenFaaS secret holding the secret key (default ``s3-secret-key``)
``s3_max_object_bytes``   largest object accepted (default 52428800); larger -> 413
``job_delay_seconds``     sleep before each job (default 0): for demonstrations and tests of the async
                          path only, never in production

Secrets are files named like the secret, looked up in ``/var/openfaas/secrets`` and then
``/run/secrets`` (where the Swarm provider mounts them).  The S3 client is Debian's boto3, imported
on the first job only, so the raw-bytes path and the cold start do not pay for it.

The work is in :func:`resize_bytes` (bytes in, bytes out, no HTTP).  Input that is not an image
raises :class:`NotAnImage`, which the python3-http template answers with 400 and the message.
"""

import io
import json
import os
import posixpath
import struct
import threading
import time

from PIL import Image, UnidentifiedImageError

MAX_SIZE = (128, 128)
JPEG_QUALITY = 85
# Refuse decompression bombs well below Pillow's own (warning-only) default.
Image.MAX_IMAGE_PIXELS = 50_000_000


class NotAnImage(ValueError):
    """The body is not an image Pillow can decode (HTTP 400 through the template)."""

    http_status = 400


def to_rgb(img):
    """RGB version of ``img``; transparent areas become white (JPEG has no alpha)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def resize_bytes(data, size=MAX_SIZE, quality=JPEG_QUALITY, content_type=None):
    """JPEG bytes of ``data`` (an encoded image) scaled to fit ``size``, aspect ratio kept."""
    received = f"Content-Type {content_type or '(none)'}, {len(data or b'')} bytes"
    expected = "expected the raw bytes of an image (PNG, JPEG, GIF, WebP, BMP, TIFF) as the request body"
    if not data:
        raise NotAnImage(f"the request body is empty ({received}); {expected}")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", size)  # JPEG: let the decoder downscale, much faster for big photos
            img.thumbnail(size)
            img = to_rgb(img)
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=quality)
    except UnidentifiedImageError:
        raise NotAnImage(
            f"the request body is not an image ({received}, starting with {data[:8].hex()}): "
            f"no image format recognised; {expected}"
        ) from None
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage(f"the request body is not a readable image ({received}): {exc}; {expected}") from None
    return out.getvalue()


SECRET_DIRS = ("/var/openfaas/secrets", "/run/secrets")
DEFAULT_MAX_OBJECT_BYTES = 50 * 1024 * 1024


class BadJob(ValueError):
    """An S3 job request that cannot be done as asked (4xx through the template)."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.http_status = status


class S3Failure(RuntimeError):
    """The object store failed or refused a request (500 with the message through the template)."""


def jpeg_size(data):
    """(width, height) from a JPEG's SOF marker, or None."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def default_thumbnail_key(key):
    """``thumbnails/<stem of the key's last path component>.jpg``."""
    stem = posixpath.splitext(posixpath.basename(key))[0] or "thumbnail"
    return f"thumbnails/{stem}.jpg"


def parse_job(body):
    """(bucket, key, thumbnail_key) of a JSON job body; BadJob with what is wrong and what is expected."""
    expected = 'expected {"bucket": "<bucket>", "key": "<object key>", "thumbnail_key": "<optional key>"}'
    try:
        job = json.loads(body or b"null")
    except ValueError as exc:
        raise BadJob(f"the request body is not valid JSON ({exc}); {expected}") from None
    if not isinstance(job, dict):
        raise BadJob(f"the JSON body is a {type(job).__name__}; {expected}")
    for field in ("bucket", "key"):
        if not isinstance(job.get(field), str) or not job[field]:
            raise BadJob(f"'{field}' is missing or not a non-empty string; {expected}")
    thumbnail_key = job.get("thumbnail_key") or default_thumbnail_key(job["key"])
    if not isinstance(thumbnail_key, str):
        raise BadJob(f"'thumbnail_key' must be a string; {expected}")
    if thumbnail_key == job["key"]:
        raise BadJob(f"'thumbnail_key' equals 'key' ({thumbnail_key}); the thumbnail would overwrite the original")
    return job["bucket"], job["key"], thumbnail_key


def read_secret(name, dirs=None):
    """Content of the secret file ``name`` (stripped) in the first of ``dirs`` (default SECRET_DIRS) that has it."""
    dirs = SECRET_DIRS if dirs is None else dirs
    for directory in dirs:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
    raise S3Failure(
        f"secret '{name}' not found in {' or '.join(dirs)}; deploy the function with the OpenFaaS secrets that hold "
        "the S3 access key and secret key (or name them in s3_access_key_secret / s3_secret_key_secret)"
    )


def s3_settings(environ=None, secret_dirs=None):
    """Endpoint, region and credentials of the job path, from the environment and the secrets."""
    environ = os.environ if environ is None else environ
    return {
        "endpoint": environ.get("s3_endpoint", "") or None,
        "region": environ.get("s3_region", "") or "us-east-1",
        "access_key": read_secret(environ.get("s3_access_key_secret", "s3-access-key"), secret_dirs),
        "secret_key": read_secret(environ.get("s3_secret_key_secret", "s3-secret-key"), secret_dirs),
    }


def make_client(settings):
    """A boto3 S3 client for ``settings`` (boto3 is imported here, on the first job only)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings["endpoint"],
        region_name=settings["region"],
        aws_access_key_id=settings["access_key"],
        aws_secret_access_key=settings["secret_key"],
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


# Replaceable in tests: settings -> client with get_object/put_object as boto3's.
client_factory = make_client
_client_lock = threading.Lock()
_client = None


def s3_client():
    """The process-wide S3 client, created on first use (boto3 clients are thread-safe)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = client_factory(s3_settings())
        return _client


def _error_code(exc):
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code", "")) or type(exc).__name__


def run_job(body, client=None, environ=None):
    """Do one S3 job (see the module docstring) and return its JSON-able result."""
    environ = os.environ if environ is None else environ
    bucket, key, thumbnail_key = parse_job(body)
    delay = float(environ.get("job_delay_seconds", "0") or 0)
    if delay > 0:
        time.sleep(delay)
    limit = int(environ.get("s3_max_object_bytes", DEFAULT_MAX_OBJECT_BYTES))
    client = client or s3_client()
    try:
        obj = client.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        code = _error_code(exc)
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise BadJob(f"s3://{bucket}/{key} does not exist ({code})", status=404) from None
        raise S3Failure(f"GET s3://{bucket}/{key} failed: {code}: {exc}") from None
    size = int(obj.get("ContentLength") or 0)
    if size > limit:
        obj["Body"].close()
        raise BadJob(f"s3://{bucket}/{key} has {size} bytes, more than s3_max_object_bytes={limit}", status=413)
    data = obj["Body"].read()
    try:
        thumbnail = resize_bytes(data, content_type=obj.get("ContentType"))
    except NotAnImage as exc:
        raise BadJob(f"s3://{bucket}/{key}: {exc}") from None
    try:
        client.put_object(Bucket=bucket, Key=thumbnail_key, Body=thumbnail, ContentType="image/jpeg")
    except Exception as exc:
        raise S3Failure(f"PUT s3://{bucket}/{thumbnail_key} failed: {_error_code(exc)}: {exc}") from None
    width, height = jpeg_size(thumbnail) or (None, None)
    return {
        "bucket": bucket,
        "key": key,
        "thumbnail_key": thumbnail_key,
        "width": width,
        "height": height,
        "bytes": len(thumbnail),
    }


def handle(req):
    if req.method not in ("POST", "PUT"):
        raise NotAnImage(f"{req.method} has no body to resize; POST the raw bytes of an image or an S3 job as JSON")
    content_type = req.headers.get("Content-Type") or ""
    if content_type.split(";", 1)[0].strip().lower() == "application/json":
        return 200, run_job(req.body), {"Content-Type": "application/json"}
    body = resize_bytes(req.body, content_type=content_type or None)
    return 200, body, {"Content-Type": "image/jpeg"}
