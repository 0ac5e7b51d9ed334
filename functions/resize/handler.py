# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Image resizer: any image Pillow can read in the raw request body -> a JPEG thumbnail <= 128x128.

The work is in :func:`resize_bytes` (bytes in, bytes out, no HTTP), so other entry points (an
async worker fetching objects from storage, say) can wrap it.  Input that is not an image raises
:class:`NotAnImage`, which the python3-http template answers with 400 and the message.
"""

import io

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


def handle(req):
    if req.method not in ("POST", "PUT"):
        raise NotAnImage(f"{req.method} has no body to resize; POST the raw bytes of an image")
    body = resize_bytes(req.body, content_type=req.headers.get("Content-Type"))
    return 200, body, {"Content-Type": "image/jpeg"}
