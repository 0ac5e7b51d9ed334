# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of nats-streaming:0.17.0 (the NATS Streaming server in OpenFaaS's Swarm stack), which cannot be
# pulled on the test rig. Written for onmetal.faas's tests; no NATS code is used.
# The real server speaks the NATS Streaming protocol; this double does NOT. It keeps only the topology
# (a service named "nats" on port 4222, channel "faas-request", in-memory store as the upstream stack's
# "--store memory") and NATS Streaming's delivery semantics that OpenFaaS relies on: at-least-once
# delivery, a per-fetch ack wait after which unacknowledged messages are redelivered, and bounded
# in-flight messages per consumer. It speaks a small HTTP protocol used only by the gateway and
# queue-worker doubles next to it:
#   POST /channels/<channel>/messages          body = message bytes -> 201 {"sequence": n}
#   POST /channels/<channel>/fetch?max=N&wait=S&ack_wait=S
#        -> 200 {"messages": [{"sequence": n, "data": base64, "redelivered": bool}]} (long poll up to S s)
#   POST /channels/<channel>/ack/<sequence>    -> 200, or 404 when not in flight
#   GET  /channels/<channel>                   -> 200 {"pending", "in_flight", "published", "acked"}
#   GET  /healthz                              -> 200 OK
#   POST /connect  {"client_id", "wait"}       -> 200 once the streaming part is ready; held up to "wait" seconds,
#                                                 then 503 (the client reports stan's "connect request timeout")
#   POST /ping     (X-Client-Id)               -> 200, or 404 "unknown clientID" (stan closes the connection)
# Channel calls that carry X-Client-Id of a client this server does not know answer 404 "unknown clientID": after a
# restart (memory store) every client must connect again, as with the real server.
# Env: port (4222), max_messages (100000 per channel; publishing beyond answers 507), write_debug,
# streaming_ready_delay (the double's own: seconds after start before /connect succeeds, default 0, to model the
# window in which NATS accepts connections but NATS Streaming does not answer yet).
"""NATS Streaming test double (HTTP queue with ack/redelivery)."""

import base64
import collections
import json
import threading
import time
from urllib.parse import parse_qs, urlsplit

import doublelib

COMPONENT = "nats-streaming"


class Channel:
    """One channel: a FIFO of pending messages plus in-flight ones awaiting their ack."""

    def __init__(self, limit):
        self.limit = limit
        self.pending = collections.deque()  # (sequence, data, redelivered)
        self.in_flight = {}  # sequence -> (deadline, data)
        self.published = 0
        self.acked = 0
        self.cond = threading.Condition()

    def publish(self, data):
        with self.cond:
            if len(self.pending) + len(self.in_flight) >= self.limit:
                return None
            self.published += 1
            self.pending.append((self.published, data, False))
            self.cond.notify_all()
            return self.published

    def _requeue_expired(self, now):
        expired = sorted(seq for seq, (deadline, _data) in self.in_flight.items() if deadline <= now)
        for seq in reversed(expired):
            data = self.in_flight.pop(seq)[1]
            self.pending.appendleft((seq, data, True))
        return bool(expired)

    def next_deadline(self):
        return min((deadline for deadline, _data in self.in_flight.values()), default=None)

    def fetch(self, max_count, wait, ack_wait):
        end = time.monotonic() + wait
        with self.cond:
            while True:
                now = time.monotonic()
                self._requeue_expired(now)
                if self.pending or now >= end:
                    break
                timeout = end - now
                deadline = self.next_deadline()
                if deadline is not None:
                    timeout = max(0.01, min(timeout, deadline - now))
                self.cond.wait(timeout)
            batch = []
            while self.pending and len(batch) < max_count:
                seq, data, redelivered = self.pending.popleft()
                self.in_flight[seq] = (time.monotonic() + ack_wait, data)
                batch.append({"sequence": seq, "data": base64.b64encode(data).decode(), "redelivered": redelivered})
            return batch

    def ack(self, seq):
        with self.cond:
            if self.in_flight.pop(seq, None) is None:
                return False
            self.acked += 1
            return True

    def stats(self):
        with self.cond:
            self._requeue_expired(time.monotonic())
            return {
                "pending": len(self.pending),
                "in_flight": len(self.in_flight),
                "published": self.published,
                "acked": self.acked,
            }


class Store:
    def __init__(self, limit):
        self.limit = limit
        self.channels = {}
        self.lock = threading.Lock()

    def channel(self, name):
        with self.lock:
            if name not in self.channels:
                self.channels[name] = Channel(self.limit)
            return self.channels[name]


def _number(query, key, default, cast=float):
    values = query.get(key)
    if not values:
        return default
    try:
        return cast(values[0])
    except ValueError:
        raise doublelib.ConfigError(f"query parameter {key}={values[0]!r} is not a number") from None


class Clients:
    """Registered client ids and the moment the streaming part becomes ready."""

    def __init__(self, ready_at):
        self.ready_at = ready_at
        self.ids = set()
        self.lock = threading.Lock()

    def connect(self, client_id, wait):
        end = time.monotonic() + wait
        while time.monotonic() < self.ready_at:
            if time.monotonic() >= end:
                return False
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        with self.lock:
            self.ids.add(client_id)
        return True

    def known(self, client_id):
        with self.lock:
            return client_id is None or client_id in self.ids


class QueueHandler(doublelib.Handler):
    component = COMPONENT
    store = None
    clients = None

    def dispatch(self):
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        body = self.read_body()
        if parts == ["healthz"]:
            self.reply(200, "OK")
            return
        if parts == ["connect"] and self.command == "POST":
            try:
                request = json.loads(body or b"{}")
                client_id, wait = str(request["client_id"]), float(request.get("wait", 2.0))
            except (ValueError, KeyError, TypeError):
                self.reply(400, 'body must be {"client_id": "<id>", "wait": <seconds>}\n')
                return
            if self.clients.connect(client_id, min(wait, 30.0)):
                self.reply_json(200, {"client_id": client_id})
            else:
                self.reply(503, "streaming server not ready\n")
            return
        if not self.clients.known(self.headers.get("X-Client-Id")):
            self.reply(404, "unknown clientID\n")
            return
        if parts == ["ping"] and self.command == "POST":
            self.reply(200, "")
            return
        if len(parts) < 2 or parts[0] != "channels":
            self.reply(404, "unknown route; see the protocol in nats_streaming.py\n")
            return
        channel = self.store.channel(parts[1])
        try:
            if len(parts) == 2 and self.command == "GET":
                self.reply_json(200, channel.stats())
            elif parts[2:] == ["messages"] and self.command == "POST":
                seq = channel.publish(body)
                if seq is None:
                    self.reply(507, f"channel {parts[1]} is full ({channel.limit} messages)\n")
                else:
                    self.reply_json(201, {"sequence": seq})
            elif parts[2:] == ["fetch"] and self.command == "POST":
                max_count = max(1, _number(query, "max", 1, int))
                wait = min(max(0.0, _number(query, "wait", 0.0)), 60.0)
                ack_wait = max(0.1, _number(query, "ack_wait", 30.0))
                self.reply_json(200, {"messages": channel.fetch(max_count, wait, ack_wait)})
            elif len(parts) == 4 and parts[2] == "ack" and self.command == "POST":
                if channel.ack(int(parts[3]) if parts[3].isdigit() else -1):
                    self.reply(200, "OK")
                else:
                    self.reply(404, f"message {parts[3]} is not in flight on {parts[1]} (acked or redelivered)\n")
            else:
                self.reply(405, f"{self.command} {url.path} is not supported\n")
        except doublelib.ConfigError as exc:
            self.reply(400, f"{exc}\n")


def main():
    QueueHandler.store = Store(doublelib.env_int("max_messages", 100000))
    delay = doublelib.env_duration("streaming_ready_delay", "0s")
    QueueHandler.clients = Clients(time.monotonic() + delay)
    doublelib.serve(QueueHandler, 4222)


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main)
