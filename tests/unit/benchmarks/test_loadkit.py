"""benchmarks/loadkit.py: the one PNG maker, JPEG size reader and percentile of the benchmarks and load tools."""

import importlib.util
import os
import struct
import zlib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_SPEC = importlib.util.spec_from_file_location("loadkit", os.path.join(ROOT, "benchmarks", "loadkit.py"))
loadkit = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(loadkit)


def chunks(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        out.append((kind, body))
        pos += 12 + length
    return out


@pytest.mark.parametrize(("width", "height", "noise"), [(1, 1, False), (8, 8, False), (640, 400, False), (9, 5, True)])
def test_png_is_a_valid_rgb_image_of_the_asked_size(width, height, noise):
    parts = chunks(loadkit.png(width, height, noise=noise))
    assert [kind for kind, _body in parts] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", parts[0][1]) == (width, height, 8, 2, 0, 0, 0)
    raw = zlib.decompress(parts[1][1])
    assert len(raw) == height * (1 + 3 * width)
    assert all(raw[row * (1 + 3 * width)] == 0 for row in range(height))  # filter byte 0 on every row


def test_noise_is_repeatable_and_does_not_compress():
    assert loadkit.png(190, 175, noise=True) == loadkit.png(190, 175, noise=True)
    assert len(loadkit.png(190, 175, noise=True)) > 90_000
    assert len(loadkit.png(190, 175)) < len(loadkit.png(190, 175, noise=True))
    assert len(loadkit.png(8, 8)) < 200  # the small body of the benchmarks


def test_png_refuses_an_empty_image():
    with pytest.raises(ValueError, match="0x4"):
        loadkit.png(0, 4)


def jpeg(width, height, sof=0xC0):
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes(9)
    frame = b"\xff" + bytes([sof]) + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + frame + b"\xff\xd9"


@pytest.mark.parametrize("sof", [0xC0, 0xC1, 0xC2])
def test_jpeg_size_reads_the_frame_header_after_other_segments(sof):
    assert loadkit.jpeg_size(jpeg(128, 80, sof)) == (128, 80)


@pytest.mark.parametrize("data", [b"", b"GIF89a", b"\xff\xd8\x00\x00", b"\xff\xd8" + b"\xff\xe0\x00\x04ab"])
def test_jpeg_size_is_none_for_what_is_not_a_jpeg(data):
    assert loadkit.jpeg_size(data) is None


def test_percentile_is_nearest_rank():
    values = list(range(100, 0, -1))
    assert [loadkit.percentile(values, q) for q in (1, 50, 90, 99, 100)] == [1, 50, 90, 99, 100]
    assert loadkit.percentile([3.0, 1.0], 50) == 1.0
    assert loadkit.percentile([3.0, 1.0], 51) == 3.0
    assert loadkit.percentile([7], 99.9) == 7
    assert loadkit.percentile([], 50) is None


@pytest.mark.parametrize("q", [0, -1, 100.5])
def test_percentile_refuses_a_rank_outside_the_range(q):
    with pytest.raises(ValueError, match=str(q)):
        loadkit.percentile([1, 2], q)
