"""Bounded load against one function through the gateway, counting every request, while watching its replicas.

Runs on a node (standard library only). Sends ``--rate`` requests per second for ``--duration`` seconds, spread
over ``--connections`` workers that each keep one HTTP/1.1 connection alive (or open a fresh one per request with
``--fresh``), and counts every answer: a request fails when it gets anything but 200, or no answer at all. At the
times given by ``--at`` it acts on the function through the gateway's API while the load runs:

  --at 10:scale=3     POST /system/scale-function/<fn> {"replicas": 3}
  --at 20:update=K=V  PUT /system/functions with the function's current image and labels, envVars {K: V}
                      (a rolling update of every replica)

A watcher reads /system/function/<fn> every 0.5 s. Credentials for the API are read from standard input as
``user:password`` (never from the command line). Prints one JSON object: requests sent, ok, failed (by status or
error, with the first few failures and when they happened), latency percentiles, the actions' answers, and the
replica timeline (when available replicas first reached 2, the most seen, the last seen).
"""

import argparse
import base64
import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

# loadkit (benchmarks/loadkit.py) sits beside this file on a node (Molecule copies both), or in the clone's benchmarks/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "..", "benchmarks")]
from loadkit import percentile, png  # noqa: E402


class Api:
    """The gateway's management API with basic auth, one short-lived connection per call."""

    def __init__(self, base, auth):
        self.base = urllib.parse.urlsplit(base)
        self.auth = "Basic " + base64.b64encode(auth.encode()).decode()

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.base.hostname, self.base.port or 80, timeout=10)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Authorization": self.auth}
            if data is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


class Load:
    def __init__(self, args, body):
        self.args = args
        self.body = body
        self.urls = [urllib.parse.urlsplit(u) for u in args.url]
        # --insecure: accept a lab's self-signed certificate (never for a real endpoint).
        self.tls = ssl._create_unverified_context() if args.insecure else ssl.create_default_context()
        self.lock = threading.Lock()
        self.next_slot = 0
        self.results = []  # (t, status or error text, seconds)
        self.t0 = None

    def _slot(self):
        with self.lock:
            slot = self.next_slot
            self.next_slot += 1
        at = self.t0 + slot / self.args.rate
        return at if at < self.t0 + self.args.duration else None

    def _connect(self, url):
        if url.scheme == "https":
            return http.client.HTTPSConnection(
                url.hostname, url.port or 443, timeout=self.args.timeout, context=self.tls
            )
        return http.client.HTTPConnection(url.hostname, url.port or 80, timeout=self.args.timeout)

    def worker(self, index):
        conn = None
        url = self.urls[index % len(self.urls)]
        path = url.path or "/"
        headers = {"Content-Type": self.args.content_type}
        while True:
            at = self._slot()
            if at is None:
                break
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if conn is None or self.args.fresh:
                conn = self._connect(url)
            start = time.monotonic()
            try:
                conn.request("POST", path, body=self.body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                outcome = resp.status
                if resp.will_close or self.args.fresh:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                outcome = f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = None
            with self.lock:
                self.results.append((round(start - self.t0, 3), outcome, time.monotonic() - start))
        if conn is not None:
            conn.close()


def watch(api, fn, t0, stop, timeline):
    while not stop.is_set():
        try:
            status, data = api.call("GET", f"/system/function/{fn}")
            if status == 200:
                info = json.loads(data)
                timeline.append((round(time.monotonic() - t0, 2), info.get("replicas"), info.get("availableReplicas")))
        except (OSError, ValueError, http.client.HTTPException):
            pass
        stop.wait(0.5)


def act(api, fn, action):
    kind, _sep, value = action.partition("=")
    if kind == "scale":
        return api.call("POST", f"/system/scale-function/{fn}", {"serviceName": fn, "replicas": int(value)})[0]
    if kind == "update":
        key, _sep, val = value.partition("=")
        status, data = api.call("GET", f"/system/function/{fn}")
        if status != 200:
            return status
        info = json.loads(data)
        spec = {"service": fn, "image": info["image"], "labels": info.get("labels") or {}, "envVars": {key: val}}
        if info.get("envProcess"):
            spec["envProcess"] = info["envProcess"]
        return api.call("PUT", "/system/functions", spec)[0]
    raise SystemExit(f"unknown action {action!r}: use scale=N or update=KEY=VALUE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--url", action="append", required=True, help="function URL (repeat: workers take them in turn)"
    )
    parser.add_argument("--insecure", action="store_true", help="accept a self-signed certificate (a lab's)")
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="API for --at and the watcher; '' for none")
    parser.add_argument("--fn", required=True)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--fresh", action="store_true", help="a new connection per request")
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--body", default="", help="text body; default: an 8x8 PNG")
    parser.add_argument("--content-type", default="image/png")
    parser.add_argument("--at", action="append", default=[], help="SECONDS:ACTION (scale=N, update=K=V)")
    args = parser.parse_args()
    if args.duration > 300 or args.rate * args.duration > 20000:
        raise SystemExit("bounded load only: at most 300 s and 20000 requests")
    if args.at and not args.gateway:
        raise SystemExit("--at needs --gateway")
    api = Api(args.gateway, sys.stdin.readline().strip()) if args.gateway else None
    body = args.body.encode() if args.body else png(8, 8)
    if not args.body:
        args.content_type = "image/png"

    load = Load(args, body)
    stop, timeline, actions = threading.Event(), [], []
    load.t0 = time.monotonic()
    watcher = threading.Thread(target=watch, args=(api, args.fn, load.t0, stop, timeline), daemon=True)
    if api is not None:
        watcher.start()
    workers = [threading.Thread(target=load.worker, args=(i,), daemon=True) for i in range(args.connections)]
    for worker in workers:
        worker.start()
    for spec in sorted(args.at, key=lambda s: float(s.split(":", 1)[0])):
        when, _sep, action = spec.partition(":")
        delay = load.t0 + float(when) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        actions.append(
            {"at": round(time.monotonic() - load.t0, 2), "action": action, "status": act(api, args.fn, action)}
        )
    for worker in workers:
        worker.join(args.duration + args.timeout + 30)
    stop.set()
    if api is not None:
        watcher.join(5)

    failures = [r for r in load.results if r[1] != 200]
    by_kind = {}
    for _t, outcome, _s in failures:
        key = str(outcome) if isinstance(outcome, int) else outcome.split(":", 1)[0]
        by_kind[key] = by_kind.get(key, 0) + 1
    latencies = [r[2] * 1000 for r in load.results if r[1] == 200]
    scaled = [t for t, _r, avail in timeline if (avail or 0) >= 2]
    print(
        json.dumps(
            {
                "sent": len(load.results),
                "ok": len(load.results) - len(failures),
                "failed": len(failures),
                "failures": by_kind,
                "first_failures": [{"t": t, "outcome": o} for t, o, _s in failures[:5]],
                "rate": args.rate,
                "duration": args.duration,
                "connections": args.connections,
                "fresh": args.fresh,
                "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99),
                "actions": actions,
                "available_2_at": scaled[0] if scaled else None,
                "max_replicas": max((r or 0 for _t, r, _a in timeline), default=None),
                "max_available": max((a or 0 for _t, _r, a in timeline), default=None),
                "last": timeline[-1] if timeline else None,
            }
        )
    )


if __name__ == "__main__":
    main()
