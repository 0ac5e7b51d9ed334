#!/usr/bin/env python
"""Cold start and warm latency of the image-resizer function container, beside a baseline, on loopback only.

Builds (or reuses) the resizer image from functions/templates/python3-http + functions/resize on
the local Docker engine (tag = content hash, see functions/build.py), and the same resizer on the
template of --baseline-ref (default: the revision before the issue-13 template fixes; ``none``
skips it).  Makes a ~100 KB JPEG photo-like test image with Pillow inside that image, then, for
each of the two images, measures

* cold start: ``docker run`` issued -> first successful (200, JPEG) answer to a POST of the
  image, polled every 5 ms, over --cold-runs fresh containers (each removed afterwards);
* warm latency: --requests sequential POSTs (after --warmup) for each body, ``1 byte`` (a 400:
  not an image), ``8x8 PNG`` and ``100 KB JPEG``, on one keep-alive connection and on a fresh
  connection each, reported as p50/p90/p99;

and prints them side by side with the p50 ratio baseline/current and the load average.  Bounded:
at most 2 * cold-runs containers and 2 * 6 * (requests + warmup) requests, each with a timeout;
traffic goes only to 127.0.0.1.

    python3 benchmarks/resizer_latency.py --base-image onmetal-rig/base:current
"""

import argparse
import http.client
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from loadkit import percentile, png

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = "functions/templates/python3-http"
# The last revision before the template was fixed for issue 13 (stall, health, drain).
DEFAULT_BASELINE = "8ee19a1"
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


def post(conn, body):
    conn.request("POST", "/", body=body, headers={"Content-Type": "application/octet-stream"})
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


def latency(port, body, expected, requests, warmup, keepalive):
    """p50/p90/p99 in ms of ``requests`` sequential POSTs of ``body`` (after ``warmup``)."""
    lat = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for attempt in range(warmup + requests):
        if not keepalive:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        t0 = time.perf_counter()
        status, data = post(conn, body)
        if not keepalive:
            conn.close()
        if status != expected:
            raise SystemExit(f"request failed with {status} (expected {expected}): {data[:200]!r}")
        if attempt >= warmup:
            lat.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return [percentile(lat, p) for p in (50, 90, 99)]


def measure(image, cases, args):
    """Cold starts and warm latencies of ``image``: (cold seconds, {(case, connection): [p50, p90, p99]})."""
    colds = [cold_start(image, cases[-1][1], args.timeout, args.env) for _attempt in range(args.cold_runs)]
    name, port, _started = run_container(image, args.env)
    try:
        deadline = time.monotonic() + args.timeout
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                if post(conn, cases[-1][1])[0] == 200:
                    conn.close()
                    break
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise SystemExit("warm container never answered")
            time.sleep(0.01)
        warm = {
            (label, mode): latency(port, body, expected, args.requests, args.warmup, mode == "keep-alive")
            for label, body, expected in cases
            for mode in ("keep-alive", "fresh")
        }
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    return colds, warm


def baseline_template(ref, dest):
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref, TEMPLATE], check=True, capture_output=True)
    os.makedirs(dest)
    subprocess.run(["tar", "-x", "--strip-components=3", "-C", dest], input=archive.stdout, check=True)
    return dest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--base-image", default="onmetal-rig/base:current")
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE, help="git revision of the baseline template")
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
    function_dir = os.path.join(ROOT, "functions", "resize")
    image, build_seconds, built = build.build(
        function_dir, "onmetal-faas-bench/resize", args.base_image, force=args.rebuild, no_cache=args.rebuild
    )
    images = {"current": image}
    if args.baseline_ref != "none":
        with tempfile.TemporaryDirectory(prefix="onmetal-fn-baseline-") as tmp:
            template = baseline_template(args.baseline_ref, os.path.join(tmp, "template"))
            images["baseline"] = build.build(function_dir, "onmetal-faas-bench/resize", args.base_image, template)[0]
    jpeg = subprocess.run(
        ["docker", "run", "--rm", "-i", image, "python3", "-c", MAKE_IMAGE, str(args.image_bytes)],
        check=True,
        capture_output=True,
    ).stdout
    cases = [("1 byte", b"x", 400), ("8x8 PNG", png(8, 8), 200), (f"{len(jpeg) // 1000} KB JPEG", jpeg, 200)]
    results = {which: measure(img, cases, args) for which, img in images.items()}
    load = os.getloadavg()

    print(f"images: {', '.join(f'{k} {v}' for k, v in images.items())}")
    print(f"image build: {f'{build_seconds:.1f} s' if built else 'reused (already built)'}")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; loopback; sequential")
    for which, (colds, _warm) in results.items():
        print(
            f"cold start {which:<8} (n={len(colds)}): median {statistics.median(colds) * 1000:.0f} ms, "
            f"min {min(colds) * 1000:.0f}, max {max(colds) * 1000:.0f}"
        )
    base = results.get("baseline", (None, {}))[1]
    cur = results["current"][1]
    head = f"{'body':<12} {'connection':<10} {'baseline p50/p90/p99 ms':>26} {'current p50/p90/p99 ms':>26}"
    print(f"{head} {'p50 ratio':>9}   (n={args.requests} per row)")
    for label, _body, _expected in cases:
        for mode in ("keep-alive", "fresh"):
            c = cur[(label, mode)]
            b = base.get((label, mode))
            shown = "/".join(f"{v:.2f}" for v in b) if b else "-"
            ratio = f"{b[0] / c[0]:.1f}x" if b else "-"
            print(f"{label:<12} {mode:<10} {shown:>26} {'/'.join(f'{v:.2f}' for v in c):>26} {ratio:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
