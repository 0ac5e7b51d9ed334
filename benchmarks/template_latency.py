#!/usr/bin/env python
"""Per-request latency of the python3-http template's own server, beside a baseline revision.

Runs ``functions/templates/python3-http/index.py`` as a plain process on 127.0.0.1 (no Docker, this
interpreter), twice: the template of ``--baseline-ref`` (default: the revision before the
issue-13 fixes, which wrote headers and body in two sends without TCP_NODELAY) and the working
tree.  The handler answers like the resizer does in size: up to 2 KB echoed back.  For each
request body

* ``1 byte``,
* ``8x8 PNG`` (a valid PNG of a few dozen bytes),
* ``100 KB`` (JPEG-like bytes, the size of the resizer's photo),

it sends --requests sequential POSTs (after --warmup) on one keep-alive connection and on a fresh
connection each, and prints p50/p90/p99 in milliseconds for both revisions and the p50 ratio
baseline/current.  It also starts each revision --starts times and reports the median time from
``exec`` to the port accepting connections and to the first answer.  Bounded: at most
4 * 3 * (requests + warmup) requests and 2 * starts processes, each with a 10 s timeout; traffic
goes only to 127.0.0.1.

    python3 benchmarks/template_latency.py [--baseline-ref REF] [--requests 300]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from loadkit import percentile, png

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = "functions/templates/python3-http"
# The last revision before the template was fixed for issue 13 (stall, health, drain).
DEFAULT_BASELINE = "8ee19a1"
HANDLER = "def handle(req):\n    return 200, req.body[:2048], {'Content-Type': 'application/octet-stream'}\n"


def bodies():
    rnd = random.Random(13)
    jpeg_like = b"\xff\xd8\xff\xe0" + bytes(rnd.getrandbits(8) for _byte in range(100_000 - 6)) + b"\xff\xd9"
    return [("1 byte", b"x"), ("8x8 PNG", png(8, 8)), ("100 KB", jpeg_like)]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def template_tree(ref, dest):
    """Copy the template of ``ref`` (git revision) or of the working tree (ref None) into ``dest``."""
    if ref is None:
        shutil.copytree(os.path.join(ROOT, TEMPLATE), dest, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        os.makedirs(dest)
        archive = subprocess.run(["git", "-C", ROOT, "archive", ref, TEMPLATE], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "--strip-components=3", "-C", dest], input=archive.stdout, check=True)
    os.makedirs(os.path.join(dest, "function"), exist_ok=True)
    with open(os.path.join(dest, "function", "handler.py"), "w", encoding="utf-8") as handle:
        handle.write(HANDLER)
    return dest


def start(tree):
    port = free_port()
    env = dict(os.environ, port=str(port), drain_timeout="0")
    proc = subprocess.Popen([sys.executable, os.path.join(tree, "index.py")], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/_/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise SystemExit(f"the template server in {tree} did not start: {proc.stderr.read().decode()}")


def start_times(tree, starts):
    """Medians (ms) from Popen to the first accepted connection and to the first 200."""
    listening, answered = [], []
    for _start in range(starts):
        port = free_port()
        env = dict(os.environ, port=str(port), drain_timeout="0")
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, os.path.join(tree, "index.py")], env=env, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                    break
                except ConnectionRefusedError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{tree}: nothing listens on {port} after 10 s") from None
                    time.sleep(0.001)
            listening.append((time.perf_counter() - t0) * 1000)
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
            if not sock.recv(64).startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"{tree}: the first answer was not a 200")
            answered.append((time.perf_counter() - t0) * 1000)
            sock.close()
        finally:
            proc.kill()
            proc.wait(10)
    return statistics.median(listening), statistics.median(answered)


def post(conn, body):
    conn.request("POST", "/", body=body, headers={"Content-Type": "application/octet-stream"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise SystemExit(f"request failed with {resp.status}: {data[:200]!r}")


def measure(port, body, requests, warmup, keepalive):
    lat = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for attempt in range(warmup + requests):
        if not keepalive:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        t0 = time.perf_counter()
        post(conn, body)
        if not keepalive:
            conn.close()
        if attempt >= warmup:
            lat.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return [percentile(lat, p) for p in (50, 90, 99)]


def run(tree, cases, requests, warmup, starts):
    startup = start_times(tree, starts)
    proc, port = start(tree)
    try:
        return startup, {
            (name, mode): measure(port, body, requests, warmup, mode == "keep-alive")
            for name, body in cases
            for mode in ("keep-alive", "fresh")
        }
    finally:
        proc.terminate()
        proc.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE, help="git revision of the baseline template")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--starts", type=int, default=10)
    args = parser.parse_args()
    if not 1 <= args.requests <= 2000 or not 0 <= args.warmup <= 200 or not 1 <= args.starts <= 50:
        parser.error("--requests must be 1..2000, --warmup 0..200, --starts 1..50 (bounded benchmark)")
    cases = bodies()
    n = (args.requests, args.warmup, args.starts)
    with tempfile.TemporaryDirectory(prefix="onmetal-tpl-bench-") as tmp:
        base_start, base = run(template_tree(args.baseline_ref, os.path.join(tmp, "base")), cases, *n)
        cur_start, cur = run(template_tree(None, os.path.join(tmp, "cur")), cases, *n)
    load = os.getloadavg()
    print(
        f"python3-http template on 127.0.0.1, {args.requests} sequential POSTs per row, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs"
    )
    for name, (listening, answered) in (("baseline", base_start), ("current", cur_start)):
        print(
            f"start {name:<8} (median of {args.starts}): port accepts after {listening:.0f} ms, "
            f"first answer after {answered:.0f} ms"
        )
    head = f"{'body':<8} {'connection':<10} {'baseline ' + args.baseline_ref + ' p50/p90/p99 ms':>34} "
    print(head + f"{'current p50/p90/p99 ms':>26} {'p50 ratio':>9}")
    for name, _body in cases:
        for mode in ("keep-alive", "fresh"):
            b, c = base[(name, mode)], cur[(name, mode)]
            print(
                f"{name:<8} {mode:<10} {'/'.join(f'{v:.2f}' for v in b):>34} "
                f"{'/'.join(f'{v:.2f}' for v in c):>26} {b[0] / c[0]:>8.1f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
