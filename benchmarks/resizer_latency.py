#!/usr/bin/env python
"""Cold start and warm latency of the image-resizer function container, on loopback only.

Builds (or reuses) the resizer image from functions/templates/python3-http + functions/resize on
the local Docker engine (tag = content hash, see functions/build.py), makes a ~100 KB JPEG
photo-like test image with Pillow inside that image, then measures

* cold start: ``docker run`` issued -> first successful (200, JPEG) answer to a POST of the
  image, polled every 5 ms, over --cold-runs fresh containers (each removed afterwards);
* warm latency: --requests sequential POSTs of the same image on one keep-alive connection
  (after --warmup requests), reported as p50/p90/p99/max;

and prints a table.  Bounded: at most cold-runs containers and requests+warmup requests, each
with a timeout; traffic goes only to 127.0.0.1.

    python3 benchmarks/resizer_latency.py --base-image onmetal-rig/base:current
"""

import argparse
import http.client
import importlib.util
import os
import statistics
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAKE_IMAGE = r"""
import io, sys
from PIL import Image, ImageFilter
target = int(sys.argv[1])
w, h = 1024, 768
img = Image.radial_gradient("L").resize((w, h)).convert("RGB")
noise = Image.effect_noise((w, h), 40).convert("RGB")
img = Image.blend(img, noise, 0.35).filter(ImageFilter.GaussianBlur(1))
best = b""
for q in range(98, 10, -2):
    out = io.BytesIO()
    img.save(out, "JPEG", quality=q)
    data = out.getvalue()
    if abs(len(data) - target) < abs(len(best) - target):
        best = data
sys.stdout.buffer.write(best)
"""


def load_build():
    spec = importlib.util.spec_from_file_location("onmetal_fn_build", os.path.join(ROOT, "functions", "build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def percentile(values, pct):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def post(conn, body):
    conn.request("POST", "/", body=body, headers={"Content-Type": "image/jpeg"})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, data


def run_container(image, env=()):
    name = f"onmetal-fn-bench-{uuid.uuid4().hex[:8]}"
    env_args = [arg for item in env for arg in ("-e", item)]
    started = time.monotonic()
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8080", *env_args, image],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(["docker", "port", name, "8080/tcp"], check=True, capture_output=True, text=True)
    port = int(out.stdout.split()[0].rsplit(":", 1)[1])
    return name, port, started


def cold_start(image, body, timeout, env=()):
    name, port, started = run_container(image, env)
    try:
        deadline = started + timeout
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                status, data = post(conn, body)
                conn.close()
                if status == 200 and data[:2] == b"\xff\xd8":
                    return time.monotonic() - started
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.005)
        raise SystemExit(f"no successful answer from {name} within {timeout}s")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--base-image", default="onmetal-rig/base:current")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--image-bytes", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=30.0, help="per cold start, seconds")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the container (repeatable)")
    parser.add_argument("--rebuild", action="store_true", help="build the image again with --no-cache (timed)")
    args = parser.parse_args()
    if args.requests > 5000 or args.cold_runs > 50:
        raise SystemExit("refusing more than 5000 requests or 50 cold runs (bounded benchmark)")

    build = load_build()
    image, build_seconds, built = build.build(
        os.path.join(ROOT, "functions", "resize"),
        "onmetal-faas-bench/resize",
        args.base_image,
        force=args.rebuild,
        no_cache=args.rebuild,
    )
    body = subprocess.run(
        ["docker", "run", "--rm", "-i", image, "python3", "-c", MAKE_IMAGE, str(args.image_bytes)],
        check=True,
        capture_output=True,
    ).stdout

    colds = [cold_start(image, body, args.timeout, args.env) for _attempt in range(args.cold_runs)]

    name, port, _started = run_container(image, args.env)
    try:
        conn = None
        deadline = time.monotonic() + args.timeout
        while conn is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                post(conn, body)
            except (OSError, http.client.HTTPException):
                conn = None
                if time.monotonic() > deadline:
                    raise SystemExit("warm container never answered") from None
                time.sleep(0.01)
        for _attempt in range(args.warmup):
            post(conn, body)
        lat = []
        for _attempt in range(args.requests):
            t0 = time.perf_counter()
            status, data = post(conn, body)
            lat.append(time.perf_counter() - t0)
            if status != 200:
                raise SystemExit(f"request failed with {status}: {data[:200]!r}")
        conn.close()
        out_size = len(data)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)

    ms = [v * 1000 for v in lat]
    rows = [
        ("image", image),
        ("image build", f"{build_seconds:.1f} s" if built else "reused (already built)"),
        ("input", f"JPEG 1024x768, {len(body)} bytes; output JPEG {out_size} bytes"),
        (
            f"cold start (n={len(colds)})",
            f"median {statistics.median(colds) * 1000:.0f} ms, "
            f"min {min(colds) * 1000:.0f}, max {max(colds) * 1000:.0f}",
        ),
        (
            f"warm (n={len(ms)}, sequential, keep-alive)",
            f"p50 {percentile(ms, 50):.2f} ms, p90 {percentile(ms, 90):.2f}, p99 {percentile(ms, 99):.2f}, "
            f"max {max(ms):.2f}",
        ),
    ]
    width = max(len(k) for k, _v in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
