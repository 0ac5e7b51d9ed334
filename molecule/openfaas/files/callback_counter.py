# SPDX-License-Identifier: GPL-3.0-or-later
# Callback receiver for the async-queue checks (molecule verify_queue.yml, tests/drills/tasks/queue_*.yml): counts
# every POST to /cb/<id> (the queue-worker's X-Callback-Url) and answers 200; GET / returns
# {"received": total, "distinct": n, "duplicates": total - n, "statuses": {status: count}, "ids": {id: count},
#  "first": {id: unix time of its first callback}}.
# Runs with python3 inside a container on the functions network (standard library only).
"""Count async callbacks by id."""

import collections
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
IDS = collections.Counter()
STATUSES = collections.Counter()
FIRST = {}  # id -> time.time() of its first callback


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with LOCK:
            key = self.path.rsplit("/", 1)[-1]
            FIRST.setdefault(key, time.time())
            IDS[key] += 1
            STATUSES[self.headers.get("X-Function-Status", "")] += 1
        self._answer(200)

    def do_GET(self):  # noqa: N802
        with LOCK:
            total = sum(IDS.values())
            report = {"received": total, "distinct": len(IDS), "duplicates": total - len(IDS)}
            report.update(statuses=dict(STATUSES), ids=dict(IDS), first=dict(FIRST))
        self._answer(200, json.dumps(report).encode())


if __name__ == "__main__":
    ThreadingHTTPServer(("", 9000), Handler).serve_forever()
