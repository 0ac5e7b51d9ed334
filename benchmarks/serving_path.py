"""Benchmark the serving path on the lab: nginx -> gateway -> function, and the first call after scale to zero.

Runs on the machine that runs the lab (``make lab``), as root, with the lab converged. Every request goes to a lab
node's nginx over HTTPS (its self-signed certificate is accepted: lab only), on the node containers' network.

* ``chain``: sequential POSTs to ``/function/resize`` on ONE kept-alive connection, for a small body (an 8x8 PNG,
  165 bytes) and a large one (a noisy PNG of about 100 KB), then the small body on a fresh connection per request
  (TCP + TLS handshake each time). Prints p50/p90/p99 and the goal beside it: small body, kept alive, p50 <= 3.5 ms
  and p99 <= 8 ms through the whole chain (issue: the serving path under real traffic).
* ``cold``: ``--cold-tries`` times: scale the function to 0 with ``docker service scale`` on a manager, wait until
  no task runs and the gateway's 5 s replica cache has expired, then time ONE call through nginx. Needs
  ``openfaas_scale_from_zero: true`` on the lab. Goal: <= 0.8 s, status 200 every time.

Usage: ``python3 benchmarks/serving_path.py [--node onmetal-lab-1] [--requests 300] [--cold-tries 5]
[--skip-cold] [--json FILE]``. Prints the machine's load average with the figures; bounded (at most 2000 requests
and 10 cold starts).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import subprocess
import time

from loadkit import percentile, png

GOALS = {"chain_small_p50_ms": 3.5, "chain_small_p99_ms": 8.0, "cold_s": 0.8}


def node_ip(node):
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return subprocess.run(
        ["docker", "inspect", "-f", fmt, node], check=True, capture_output=True, text=True
    ).stdout.strip()


def percentiles(samples):
    ms = [sample * 1000 for sample in samples]
    return {f"p{q}_ms": round(percentile(ms, q), 2) for q in (50, 90, 99)} | {"n": len(ms)}


class Client:
    def __init__(self, host, tls):
        self.host, self.tls, self.conn = host, tls, None

    def post(self, body, fresh=False):
        if self.conn is None or fresh:
            if self.conn is not None:
                self.conn.close()
            self.conn = http.client.HTTPSConnection(self.host, 443, timeout=30, context=self.tls)
        start = time.perf_counter()
        self.conn.request("POST", "/function/resize", body=body, headers={"Content-Type": "image/png"})
        resp = self.conn.getresponse()
        data = resp.read()
        seconds = time.perf_counter() - start
        if resp.will_close:
            self.conn.close()
            self.conn = None
        return resp.status, resp.getheader("Content-Type"), len(data), seconds


def chain(host, tls, body, requests, fresh=False):
    client = Client(host, tls)
    client.post(body)  # warm: connection, TLS session, function replica
    times, statuses = [], {}
    for _request in range(requests):
        status, _ctype, _n, seconds = client.post(body, fresh=fresh)
        statuses[status] = statuses.get(status, 0) + 1
        times.append(seconds)
    return dict(percentiles(times), statuses=statuses, body_bytes=len(body))


def docker(node, *args):
    return subprocess.run(["docker", "exec", node, "docker", *args], check=True, capture_output=True, text=True).stdout


def cold(node, host, tls, body, tries):
    results = []
    for _try in range(tries):
        docker(node, "service", "scale", "--detach", "resize=0")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = docker(node, "service", "ps", "resize", "-f", "desired-state=running", "-q")
            if not running.strip():
                break
            time.sleep(0.5)
        time.sleep(6)  # the gateway caches a function's replicas for 5 s (gateway/scaling/function_cache.go)
        status, ctype, size, seconds = Client(host, tls).post(body, fresh=True)
        # Where the woken task runs: a node without another task on the functions network builds the network first.
        placed = docker(node, "service", "ps", "resize", "-f", "desired-state=running", "--format", "{{.Node}}")
        results.append(
            {
                "status": status,
                "seconds": round(seconds, 3),
                "content_type": ctype,
                "bytes": size,
                "node": placed.strip().replace("\n", ","),
            }
        )
        time.sleep(2)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--node", default="onmetal-lab-1")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--cold-tries", type=int, default=5)
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.requests > 2000 or args.cold_tries > 10:
        raise SystemExit("bounded: at most 2000 requests and 10 cold starts")
    host = node_ip(args.node)
    tls = ssl._create_unverified_context()  # the lab's self-signed certificate, lab only
    small, large = png(8, 8), png(190, 175, noise=True)
    report = {"node": args.node, "load_before": os.getloadavg()}
    report["chain_small_keepalive"] = chain(host, tls, small, args.requests)
    report["chain_large_keepalive"] = chain(host, tls, large, max(50, args.requests // 3))
    report["chain_small_fresh"] = chain(host, tls, small, max(50, args.requests // 3), fresh=True)
    if not args.skip_cold:
        report["cold"] = cold(args.node, host, tls, small, args.cold_tries)
        docker(args.node, "service", "scale", "--detach", "resize=1")
    report["load_after"] = os.getloadavg()

    print(f"serving path on {args.node} ({host}), load average before {report['load_before'][0]:.2f}")
    print(f"{'measurement':<24} {'body':>8} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}  statuses")
    for key in ("chain_small_keepalive", "chain_large_keepalive", "chain_small_fresh"):
        r = report[key]
        print(
            f"{key:<24} {r['body_bytes']:>8} {r['n']:>5} {r['p50_ms']:>8} {r['p90_ms']:>8} {r['p99_ms']:>8}  "
            f"{r['statuses']}"
        )
    small_ka = report["chain_small_keepalive"]
    print(
        f"goal, small body kept alive: p50 {small_ka['p50_ms']} / {GOALS['chain_small_p50_ms']} ms "
        f"(ratio {small_ka['p50_ms'] / GOALS['chain_small_p50_ms']:.2f}), p99 {small_ka['p99_ms']} / "
        f"{GOALS['chain_small_p99_ms']} ms (ratio {small_ka['p99_ms'] / GOALS['chain_small_p99_ms']:.2f})"
    )
    if "cold" in report:
        for i, r in enumerate(report["cold"], 1):
            print(
                f"cold start {i}: {r['status']} in {r['seconds']} s ({r['content_type']}, {r['bytes']} bytes)"
                f" on {r['node']}"
            )
        worst = max(r["seconds"] for r in report["cold"])
        errors = sum(r["status"] != 200 for r in report["cold"])
        print(f"goal, first call after scale to zero: worst {worst} / {GOALS['cold_s']} s, errors {errors}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
