"""Posts a real PNG (made here with zlib, no Pillow) to the resize function and reads the JPEG it returns.

Prints one JSON line: the HTTP status and content type of the image call, the JPEG's width and height read
from its SOF marker, and the status and message of a call with a body that is not an image.
"""

import json
import ssl
import struct
import sys
import urllib.error
import urllib.request
import zlib

ARGS = [a for a in sys.argv[1:] if a != "--insecure"]
URL = ARGS[0] if ARGS else "http://127.0.0.1:8080/function/resize"
# --insecure: accept the lab's self-signed certificate (never for a real endpoint).
CONTEXT = ssl._create_unverified_context() if "--insecure" in sys.argv[1:] else None


def png(width, height):
    raw = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, (x + y) % 256))
        for y in range(height)
    )

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def jpeg_size(data):
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
