"""Standard-library helpers shared by the benchmarks, the load tools and the function tests.

One PNG maker, one JPEG size reader and one percentile for benchmarks/*.py, tests/functions/fn_helpers.py and the
load tools under molecule/openfaas/files/ (which Molecule and the drills copy onto nodes as single files, this one
beside them): keep it standard-library only and free of imports from this repository.
"""

import random
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(width, height, noise=False):
    """A valid 8-bit RGB PNG, ``width`` x ``height``: a gradient, or seeded noise (incompressible, large bodies)."""
    if width < 1 or height < 1:
        raise ValueError(f"a PNG needs at least 1x1 pixels, not {width}x{height}")
    rnd = random.Random(7)
    rows = []
    for y in range(height):
        if noise:
            pixels = bytes(rnd.getrandbits(8) for _byte in range(width * 3))
        else:
            pixels = bytes(
                v for x in range(width) for v in ((x * 255) // max(width - 1, 1), (y * 255) // max(height - 1, 1), 128)
            )
        rows.append(b"\x00" + pixels)  # filter type 0 (None) per row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, deflate, no interlace
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")


def jpeg_size(data):
    """(width, height) from the SOF marker of a baseline, extended or progressive JPEG; None when it is not one."""
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


def percentile(values, q):
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; None for no values."""
    if not values:
        return None
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} is outside 0 < q <= 100")
    ordered = sorted(values)
    rank = -(-q * len(ordered) // 100)  # ceil(q / 100 * n), exact for integer q
    return ordered[max(1, int(rank)) - 1]
