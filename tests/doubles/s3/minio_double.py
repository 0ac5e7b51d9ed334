# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of docker.io/minio/minio: NOT MinIO. An S3-compatible object store for onmetal.faas tests, made of
# moto's S3 backend (PyPI moto[s3], pinned in tests/doubles/images/s3.Dockerfile), in memory (objects are lost when
# the container stops; MinIO keeps them under /data). What it takes from MinIO:
#   command line   "server DIR [--console-address ADDR] [--address ADDR]": logged; --address ":PORT" sets the port
#                  (default 9000); the rest is ignored (no console, no disk)
#   credentials    MINIO_ROOT_USER / MINIO_ROOT_PASSWORD, or MINIO_ROOT_USER_FILE / MINIO_ROOT_PASSWORD_FILE (a path,
#                  or a name under /run/secrets/ as MinIO reads Docker secrets); missing -> exit 2 with a message
#   auth           every request must carry an AWS SigV4 Authorization header made with those credentials
#                  (header-signed requests only; no presigned URLs, no anonymous access): 403 otherwise, with
#                  S3's error codes (InvalidAccessKeyId, SignatureDoesNotMatch, XAmzContentSHA256Mismatch)
#   health         GET /minio/health/live and /minio/health/ready answer 200 without auth
# The S3 API itself (buckets, PUT/GET/HEAD/DELETE object, listing) is moto's, path-style and virtual-host style.
"""MinIO test double: moto's S3 server behind SigV4 verification against MinIO's root credentials."""

import hashlib
import hmac
import io
import os
import signal
import sys
from urllib.parse import parse_qsl, quote

SECRETS_DIR = "/run/secrets"
ALGORITHM = "AWS4-HMAC-SHA256"


class ConfigError(ValueError):
    """A setting cannot be used; the message names it and the fix."""


def read_credential(environ, name):
    """Value of MINIO_<name>, else the content of the file named by MINIO_<name>_FILE (path or secret name)."""
    value = environ.get(f"MINIO_{name}", "")
    if value:
        return value
    ref = environ.get(f"MINIO_{name}_FILE", "")
    if not ref:
        raise ConfigError(f"set MINIO_{name} or MINIO_{name}_FILE (a file or a Docker secret name)")
    path = ref if os.path.isabs(ref) else os.path.join(SECRETS_DIR, ref)
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as exc:
        raise ConfigError(f"MINIO_{name}_FILE={ref}: cannot read {path}: {exc}") from None
    if not value:
        raise ConfigError(f"MINIO_{name}_FILE={ref}: {path} is empty")
    return value


def parse_args(argv):
    """Port from MinIO's command line ("server /data --address :9000 ..."), default 9000."""
    port = 9000
    for i, arg in enumerate(argv):
        value = None
        if arg == "--address" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--address="):
            value = arg.split("=", 1)[1]
        if value is not None:
            try:
                port = int(value.rsplit(":", 1)[-1])
            except ValueError:
                raise ConfigError(f"--address {value!r}: expected [HOST]:PORT") from None
    return port


def _sign(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    key = _sign(("AWS4" + secret).encode("utf-8"), date)
    key = _sign(key, region)
    key = _sign(key, service)
    return _sign(key, "aws4_request")


def _header(environ, name):
    if name == "content-type":
        return environ.get("CONTENT_TYPE", "")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH", "")
    return environ.get("HTTP_" + name.upper().replace("-", "_"), "")


def canonical_query(raw):
    pairs = [(quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in parse_qsl(raw, keep_blank_values=True)]
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def parse_authorization(value):
    """{credential, signed_headers, signature} of an AWS4-HMAC-SHA256 Authorization header, or None."""
    if not value.startswith(ALGORITHM + " "):
        return None
    fields = {}
    for part in value[len(ALGORITHM) + 1 :].split(","):
        key, _sep, val = part.strip().partition("=")
        fields[key] = val
    if not all(k in fields for k in ("Credential", "SignedHeaders", "Signature")):
        return None
    return fields


def verify(environ, body, access_key, secret_key):
    """None when the request's SigV4 signature is valid for the credentials, else (S3 error code, message)."""
    auth = parse_authorization(environ.get("HTTP_AUTHORIZATION", ""))
    if auth is None:
        return "AccessDenied", "only AWS4-HMAC-SHA256 header-signed requests are accepted"
    scope = auth["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return "AuthorizationHeaderMalformed", f"bad credential scope {auth['Credential']!r}"
    if not hmac.compare_digest(scope[0], access_key):
        return "InvalidAccessKeyId", "the access key does not match MINIO_ROOT_USER"
    payload_hash = _header(environ, "x-amz-content-sha256") or "UNSIGNED-PAYLOAD"
    if len(payload_hash) == 64 and payload_hash != hashlib.sha256(body).hexdigest():
        return "XAmzContentSHA256Mismatch", "x-amz-content-sha256 does not match the body"
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/"))
    path, _sep, query = raw.partition("?")
    names = auth["SignedHeaders"].split(";")
    headers = "".join(f"{n}:{' '.join(_header(environ, n).split())}\n" for n in names)
    canonical = "\n".join(
        [environ["REQUEST_METHOD"], path or "/", canonical_query(query), headers, auth["SignedHeaders"], payload_hash]
    )
    amz_date = _header(environ, "x-amz-date")
    to_sign = "\n".join(
        [ALGORITHM, amz_date, "/".join(scope[1:]), hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    expected = hmac.new(signing_key(secret_key, *scope[1:4]), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, auth["Signature"]):
        return "SignatureDoesNotMatch", "the request signature does not match MINIO_ROOT_PASSWORD"
    return None


def s3_error(start_response, code, message, status="403 Forbidden"):
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    ).encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(xml)))])
    return [xml]


def make_app(backend, access_key, secret_key):
    """WSGI app: health endpoints, then SigV4 verification, then ``backend`` (moto's S3)."""

    def app(environ, start_response):
        if environ.get("PATH_INFO") in ("/minio/health/live", "/minio/health/ready"):
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        failure = verify(environ, body, access_key, secret_key)
        if failure:
            sys.stderr.write(f"minio-double: {environ['REQUEST_METHOD']} {environ.get('PATH_INFO')}: {failure[0]}\n")
            return s3_error(start_response, *failure)
        environ["wsgi.input"] = io.BytesIO(body)
        return backend(environ, start_response)

    return app


def main(argv):
    try:
        port = parse_args(argv)
        access_key = read_credential(os.environ, "ROOT_USER")
        secret_key = read_credential(os.environ, "ROOT_PASSWORD")
    except ConfigError as exc:
        sys.stderr.write(f"minio-double: {exc}\n")
        return 2
    if len(access_key) < 3 or len(secret_key) < 8:
        sys.stderr.write("minio-double: MinIO needs a root user of >= 3 and a password of >= 8 characters\n")
        return 2
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    # moto routes a request to S3 by its SigV4 credential scope (service "s3") or its Host name.
    backend = DomainDispatcherApplication(create_backend_app)
    server = make_server("0.0.0.0", port, make_app(backend, access_key, secret_key), threaded=True)  # noqa: S104
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stderr.write(f"minio-double: TEST DOUBLE of MinIO (moto S3), args {argv!r} -> in memory, port {port}\n")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
