"""Posts a real PNG (benchmarks/loadkit.py: zlib, no Pillow) to the resize function and reads the JPEG it returns.

Prints one JSON line: the HTTP status and content type of the image call, the JPEG's width and height read
from its SOF marker, and the status and message of a call with a body that is not an image.
"""

import json
import os
import ssl
import sys
import urllib.error
import urllib.request

# loadkit (benchmarks/loadkit.py) sits beside this file on a node (Molecule copies both), or in the clone's benchmarks/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "..", "benchmarks")]
from loadkit import jpeg_size, png  # noqa: E402

ARGS = [a for a in sys.argv[1:] if a != "--insecure"]
URL = ARGS[0] if ARGS else "http://127.0.0.1:8080/function/resize"
# --insecure: accept the lab's self-signed certificate (never for a real endpoint).
CONTEXT = ssl._create_unverified_context() if "--insecure" in sys.argv[1:] else None


def post(body, content_type):
    req = urllib.request.Request(URL, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60, context=CONTEXT) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


status, ctype, body = post(png(640, 400), "image/png")
size = jpeg_size(body) if status == 200 else None
bad_status, bad_type, bad_body = post(b"this is not an image", "text/plain")
print(
    json.dumps(
        {
            "status": status,
            "content_type": ctype,
            "width": size[0] if size else None,
            "height": size[1] if size else None,
            "bytes": len(body),
            "bad_status": bad_status,
            "bad_content_type": bad_type,
            "bad_message": bad_body.decode("utf-8", "replace")[:300],
        }
    )
)
