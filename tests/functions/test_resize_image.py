"""The resizer built from the python3-http template, run as a container on the host engine."""

import subprocess

import pytest
from fn_helpers import Container, jpeg_size, png_bytes


def test_health(resizer):
    status, headers, body = resizer.request("GET", "/_/health")
    assert status == 200 and body == b"OK\n"


@pytest.mark.parametrize("size", [(640, 480), (100, 300), (64, 32)])
def test_png_becomes_jpeg_within_128(resizer, size):
    status, headers, body = resizer.request("POST", "/", png_bytes(*size), {"Content-Type": "image/png"})
    assert status == 200, body
    assert headers["Content-Type"] == "image/jpeg"
    width, height = jpeg_size(body)
    assert width <= 128 and height <= 128
    if max(size) > 128:
        assert max(width, height) == 128
        assert abs(width / height - size[0] / size[1]) < 0.05
    else:
        assert (width, height) == size


def test_jpeg_input(resizer):
    _s, _h, jpeg = resizer.request("POST", "/", png_bytes(400, 200), {"Content-Type": "image/png"})
    status, headers, body = resizer.request("POST", "/", jpeg, {"Content-Type": "image/jpeg"})
    assert status == 200 and jpeg_size(body) == (128, 64)


def test_garbage_is_400_with_a_clear_message(resizer):
    status, headers, body = resizer.request("POST", "/", b"this is not an image", {"Content-Type": "text/plain"})
    assert status == 400
    text = body.decode()
    assert "not an image" in text
    assert "Content-Type text/plain, 20 bytes" in text
    assert "expected the raw bytes of an image" in text


def test_truncated_png_is_400(resizer):
    status, _h, body = resizer.request("POST", "/", png_bytes(300, 300)[:200], {"Content-Type": "image/png"})
    assert status == 400 and b"image" in body


def test_empty_body_and_get_are_400(resizer):
    assert resizer.request("POST", "/", b"")[0] == 400
    status, _h, body = resizer.request("GET", "/")
    assert status == 400 and b"POST the raw bytes" in body


def test_runs_as_non_root_without_a_docker_healthcheck(resizer):
    assert resizer.inspect("{{.Config.User}}") == "10001:10001"
    # Readiness is index.py's early listen; a HEALTHCHECK would hold Swarm's "running" (and the
    # task's DNS entry) back until its first probe, one --interval after the start.
    assert resizer.inspect("{{json .Config.Healthcheck}}") == "null"


def test_docker_stop_drains_and_exits_zero(resize_image):
    container = Container(resize_image, env={"drain_timeout": "0.5"})
    try:
        container.wait_healthy_http()
        subprocess.run(["docker", "stop", "-t", "20", container.name], check=True, capture_output=True)
        # PID 1 without a SIGTERM handler ignores SIGTERM and is killed at the timeout (137).
        assert container.inspect("{{.State.ExitCode}}") == "0"
        logs = subprocess.run(["docker", "logs", container.name], capture_output=True, text=True, check=True)
        assert "SIGTERM" in logs.stderr and "Traceback" not in logs.stderr
    finally:
        container.remove()
