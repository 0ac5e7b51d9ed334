# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of nats-streaming:0.17.0 (the NATS Streaming server in OpenFaaS's Swarm stack), which cannot be
# pulled on the test rig. Written for onmetal.faas's tests; no NATS code is used.
# The real server speaks the NATS Streaming protocol; this double does NOT. It keeps the topology (a service named
# "nats" on port 4222, channel "faas-request"), the server's command line for the store and its limits, and the
# delivery semantics OpenFaaS relies on: at-least-once delivery to one durable queue group per channel (queue-worker
# 0.11.2 subscribes with DurableName + DeliverAllAvailable, qw/types.go:75-80), a per-fetch ack wait after which
# unacknowledged messages are redelivered, bounded in-flight messages per consumer.
# Upstream = nats-io/nats-streaming-server at v0.17.0 ("nss/" below). Command line (nss/server/conf.go:588-602):
#   --store/-st memory|file (default memory), --dir <path> (file store; missing: exit 1 "for FILE stores, root
#   directory must be specified", nss/stores/filestore.go:1258-1259, nss/nats-streaming-server.go:163-164),
#   --max_msgs/-mm <int> (default 1000000), --max_bytes/-mb <size> (default 1000000*1024; "k"/"m"/"g" = 1000^n,
#   "kb"/"mb"/"gb" = 1024^n, nss/server/conf.go:748-760 + conf/parse.go:251-266), --max_age/-ma <Go duration>
#   (default 0 = unlimited) (defaults: nss/stores/store.go:89-101; 0 = unlimited, store.go:49). Other known flags
#   (--cluster_id, --max_channels, ...) are accepted and ignored; an unknown flag or a bad value: exit 2, as Go's
#   flag.ExitOnError (nss/nats-streaming-server.go:170).
# Limits DROP THE OLDEST messages, acknowledged or not; publishing never fails because of them: on the first drop
#   the server logs "Reached limits for store ... dropping old messages to make room for new ones"
#   (nss/stores/filestore.go:2791-2796,2951-2977, stores/common.go:28-29); messages older than max_age are removed
#   likewise (filestore.go:2875-2935). Messages stay in the channel after their ack until a limit removes them.
# File store: every publish, ack and client registration is written and fsync'ed before the answer (DoSync true by
#   default, filestore.go:216); a restarted server recovers its clients (clients.dat, filestore.go:58,1351), the
#   channels with their messages and the queue group's unacknowledged messages, which it redelivers after start-up
#   once their ack wait from publication has passed (nss/server/server.go:2575-2592,3609-3620; the double: at
#   once). The double's files are its OWN format (one JSON journal, <dir>/onmetal-double-journal.jsonl, compacted
#   at start and when it grows), not upstream's msgs.N.dat/.idx.
#   A write that fails (e.g. ENOSPC) fails the publish with the error text, 500 (server.go:4294-4297).
# Memory store: a restart forgets everything, clients included.
# HTTP protocol, used only by the gateway and queue-worker doubles next to it:
#   POST /channels/<channel>/messages          body = message bytes -> 201 {"sequence": n}; store error 500 <text>
#   POST /channels/<channel>/fetch?max=N&wait=S&ack_wait=S
#        -> 200 {"messages": [{"sequence": n, "data": base64, "redelivered": bool}]} (long poll up to S s)
#   POST /channels/<channel>/ack/<sequence>    -> 200, or 404 when not in flight
#   GET  /channels/<channel>                   -> 200 {"pending", "in_flight", "published", "acked", "stored",
#                                                      "bytes", "dropped"}
#   GET  /healthz                              -> 200 OK
#   POST /connect  {"client_id", "wait"}       -> 200 once the streaming part is ready; held up to "wait" seconds,
#                                                 then 503 (the client reports stan's "connect request timeout")
#   POST /ping     (X-Client-Id)               -> 200, or 404 "unknown clientID" (stan closes the connection)
# Channel calls that carry X-Client-Id of a client this server does not know answer 404 "unknown clientID".
# Env: port (4222), write_debug, streaming_ready_delay (the double's own: seconds after start before /connect
# succeeds, default 0, to model the window in which NATS accepts connections but NATS Streaming does not answer).
"""NATS Streaming test double (HTTP queue with ack/redelivery, memory or file store, upstream's limits)."""

import base64
import collections
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

import doublelib

COMPONENT = "nats-streaming"
JOURNAL = "onmetal-double-journal.jsonl"
# Per message, upstream counts the protobuf MsgProto (data, subject, sequence, timestamp, CRC) plus
# msgRecordOverhead = record header 8 + index record 32 (nss/stores/filestore.go:64-82,2771-2776).
# The MsgProto's own fields besides data and subject are approximated as 24 bytes here.
RECORD_OVERHEAD = 8 + 32
PROTO_OVERHEAD = 24
_SIZE_SUFFIX = {"": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
_IGNORED_FLAGS = {
    "cluster_id", "cid", "max_channels", "mc", "max_subs", "msu", "max_inactivity", "mi",
    "hbi", "hb_interval", "hbt", "hb_timeout", "hbf", "hb_fail_count", "m", "http_port",
}  # fmt: skip


class FlagError(Exception):
    """A command-line error; Go's flag package prints it and exits 2."""

    code = 2


class OptionError(FlagError):
    """A flag value the server refuses after parsing (nss/nats-streaming-server.go:180-181 PrintAndDie): exit 1."""

    code = 1


def parse_size(text):
    """The NATS config parser's sizes (conf/parse.go:230-266): digits and an optional k/kb/m/mb/g/gb suffix."""
    raw = str(text).strip()
    digits = len(raw) - len(raw.lstrip("+-0123456789"))
    suffix = raw[digits:].strip().lower()
    if not raw[:digits].lstrip("+-").isdigit() or suffix not in _SIZE_SUFFIX:
        raise OptionError(f"max_bytes should be a size, got '{raw}'")
    return int(raw[:digits]) * _SIZE_SUFFIX[suffix]


def parse_args(argv):
    """nss/server/conf.go:588-602 for the flags the role passes; returns a dict of options."""
    opts = {"store": "memory", "dir": "", "max_msgs": 1000000, "max_bytes": 1000000 * 1024, "max_age": 0.0}
    aliases = {"st": "store", "mm": "max_msgs", "mb": "max_bytes", "ma": "max_age"}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("-") or arg in ("-", "--"):
            break  # Go's flag package stops at the first non-flag argument
        name, _eq, value = arg.lstrip("-").partition("=")
        name = aliases.get(name, name)
        if name not in opts and name not in _IGNORED_FLAGS:
            raise FlagError(f"flag provided but not defined: -{name}")
        if not _eq:
            if not args:
                raise FlagError(f"flag needs an argument: -{name}")
            value = args.pop(0)
        if name in _IGNORED_FLAGS:
            continue
        try:
            if name == "max_msgs":
                opts[name] = int(value)
            elif name == "max_bytes":
                opts[name] = parse_size(value)
            elif name == "max_age":
                opts[name] = doublelib.go_duration(value, name) if value.strip() != "0" else 0.0
            else:
                opts[name] = value
        except OptionError:
            raise
        except (ValueError, doublelib.ConfigError):
            raise FlagError(f'invalid value "{value}" for flag -{name}: parse error') from None
    return opts


def friendly_bytes(count):
    """nss/util/util.go:207-217."""
    if count < 1024:
        return f"{count} B"
    exp = 0
    value = float(count)
    while value >= 1024 and exp < 6:
        value /= 1024
        exp += 1
    return f"{value:.2f} {'KMGTPE'[exp - 1]}B"


class Journal:
    """The double's file store: one JSON line per event, fsync'ed before the server answers."""

    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)  # filestore.go:1280-1285 creates the root directory
        self.path = os.path.join(directory, JOURNAL)
        self.lock = threading.Lock()
        self.records = 0
        self.file = None

    def load(self):
        events = []
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        events.append(json.loads(line))
                    except ValueError:
                        break  # a torn last line after a crash: upstream truncates a bad last record too
        return events

    def rewrite(self, events):
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            for event in events:
                handle.write(json.dumps(event, separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        with self.lock:
            if self.file:
                self.file.close()
            self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for appends
            self.records = len(events)

    def append(self, event):
        """Raises OSError when the write or the fsync fails (the publish then fails)."""
        with self.lock:
            self.file.write(json.dumps(event, separators=(",", ":")) + "\n")
            self.file.flush()
            os.fsync(self.file.fileno())
            self.records += 1


class Channel:
    """One channel: the message log under the limits, and one durable queue group's pending/in-flight state."""

    def __init__(self, name, opts, journal):
        self.name, self.opts, self.journal = name, opts, journal
        self.log = collections.OrderedDict()  # sequence -> (timestamp, data): every stored message
        self.bytes = 0
        self.pending = collections.deque()  # (sequence, redelivered): stored, not acknowledged, not in flight
        self.in_flight = {}  # sequence -> deadline
        self.published = 0  # last sequence
        self.acked = 0
        self.dropped = 0  # unacknowledged messages removed by a limit: lost work
        self.hit_limit = False
        self.cond = threading.Condition()

    @staticmethod
    def size(name, data):
        return len(data) + len(name) + PROTO_OVERHEAD + RECORD_OVERHEAD

    def _remove_first(self):
        seq, (_ts, data) = self.log.popitem(last=False)
        self.bytes -= self.size(self.name, data)
        if self.in_flight.pop(seq, None) is not None:
            self.dropped += 1
        elif self.pending and self.pending[0][0] == seq:  # the usual case: the oldest waiting message
            self.pending.popleft()
            self.dropped += 1
        elif any(s == seq for s, _r in self.pending):
            self.pending = collections.deque(item for item in self.pending if item[0] != seq)
            self.dropped += 1

    def _enforce(self, now, report):
        """filestore.go:2951-2977 (count and bytes, leave at least the last message) and 2875-2935 (age)."""
        max_msgs, max_bytes, max_age = self.opts["max_msgs"], self.opts["max_bytes"], self.opts["max_age"]
        while len(self.log) > 1 and (
            (max_msgs > 0 and len(self.log) > max_msgs) or (max_bytes > 0 and self.bytes > max_bytes)
        ):
            self._remove_first()
            if report and not self.hit_limit:
                self.hit_limit = True
                doublelib.log(
                    COMPONENT,
                    f'[WRN] Reached limits for store "{self.name}" (msgs={len(self.log)}/{max_msgs} '
                    f"bytes={friendly_bytes(self.bytes)}/{friendly_bytes(max_bytes)}), "
                    "dropping old messages to make room for new ones",
                )
        while max_age > 0 and self.log and now - next(iter(self.log.values()))[0] >= max_age:
            self._remove_first()

    def restore(self, seq, ts, data, acked):
        self.log[seq] = (ts, data)
        self.bytes += self.size(self.name, data)
        self.published = max(self.published, seq)
        if acked:
            self.acked += 1
        else:  # unacknowledged: delivered again at start-up (server.go:2575-2592)
            self.pending.append((seq, False))

    def publish(self, data):
        """Returns the sequence; raises OSError when the file store cannot write it."""
        with self.cond:
            now = time.time()
            seq = self.published + 1
            if self.journal:
                self.journal.append({"op": "pub", "ch": self.name, "seq": seq, "ts": now, "data": _b64(data)})
            self.published = seq
            self.log[seq] = (now, data)
            self.bytes += self.size(self.name, data)
            self.pending.append((seq, False))
            self._enforce(now, report=True)
            self.cond.notify_all()
            return seq

    def _requeue_expired(self, now):
        expired = sorted(seq for seq, deadline in self.in_flight.items() if deadline <= now)
        for seq in reversed(expired):
            del self.in_flight[seq]
            self.pending.appendleft((seq, True))
        return bool(expired)

    def next_deadline(self):
        return min(self.in_flight.values(), default=None)

    def fetch(self, max_count, wait, ack_wait):
        end = time.monotonic() + wait
        with self.cond:
            while True:
                now = time.monotonic()
                self._requeue_expired(now)
                self._enforce(time.time(), report=False)
                if self.pending or now >= end:
                    break
                timeout = end - now
                deadline = self.next_deadline()
                if deadline is not None:
                    timeout = max(0.01, min(timeout, deadline - now))
                self.cond.wait(timeout)
            batch = []
            while self.pending and len(batch) < max_count:
                seq, redelivered = self.pending.popleft()
                self.in_flight[seq] = time.monotonic() + ack_wait
                data = self.log[seq][1]
                batch.append({"sequence": seq, "data": _b64(data), "redelivered": redelivered})
            return batch

    def ack(self, seq):
        with self.cond:
            if seq not in self.in_flight:
                return False
            if self.journal:
                try:
                    self.journal.append({"op": "ack", "ch": self.name, "seq": seq})
                except OSError as exc:  # the ack is lost; the message comes back after ack_wait
                    doublelib.log(COMPONENT, f"[ERR] Unable to store ack {seq} on {self.name}: {exc}")
                    return True
            del self.in_flight[seq]
            self.acked += 1
            return True

    def live_events(self):
        """The events that rebuild this channel: its stored messages and the acks of those no longer pending."""
        waiting = {seq for seq, _r in self.pending} | set(self.in_flight)
        events = [
            {"op": "pub", "ch": self.name, "seq": s, "ts": ts, "data": _b64(d)} for s, (ts, d) in self.log.items()
        ]
        return events + [{"op": "ack", "ch": self.name, "seq": s} for s in self.log if s not in waiting]

    def stats(self):
        with self.cond:
            self._requeue_expired(time.monotonic())
            self._enforce(time.time(), report=False)
            return {
                "pending": len(self.pending),
                "in_flight": len(self.in_flight),
                "published": self.published,
                "acked": self.acked,
                "stored": len(self.log),
                "bytes": self.bytes,
                "dropped": self.dropped,
            }


def _b64(data):
    return base64.b64encode(data).decode()


class Store:
    def __init__(self, opts):
        self.opts = opts
        self.channels = {}
        self.lock = threading.Lock()
        self.journal = Journal(opts["dir"]) if opts["store"] == "file" else None

    def channel(self, name):
        with self.lock:
            if name not in self.channels:
                self.channels[name] = Channel(name, self.opts, self.journal)
            return self.channels[name]

    def recover(self, clients):
        """Replays the journal (file store), applies today's limits (filestore.go:2951-2955: a restart with
        smaller limits drops at recovery), and rewrites it compacted. Returns the number of clients recovered."""
        if not self.journal:
            return 0
        events = self.journal.load()
        acked = {(e["ch"], e["seq"]) for e in events if e.get("op") == "ack"}
        for event in events:
            if event.get("op") == "client":
                clients.ids.add(event["id"])
            elif event.get("op") == "pub":
                key = (event["ch"], event["seq"])
                self.channel(event["ch"]).restore(
                    event["seq"], event["ts"], base64.b64decode(event["data"]), key in acked
                )
        for channel in self.channels.values():
            channel._enforce(time.time(), report=True)
        self.compact(clients)
        return len(clients.ids)

    def compact(self, clients):
        with self.lock:
            channels = list(self.channels.values())
        events = [{"op": "client", "id": cid} for cid in sorted(clients.ids)]
        for channel in channels:
            with channel.cond:
                events += channel.live_events()
        self.journal.rewrite(events)

    def maybe_compact(self, clients):
        """Keeps the journal near the live state (upstream compacts its files every 5 min, filestore.go:209-212)."""
        if self.journal and self.journal.records > 10000:
            live = len(clients.ids) + sum(len(c.log) * 2 for c in list(self.channels.values()))
            if self.journal.records > 2 * live + 1000:
                self.compact(clients)


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

    def __init__(self, ready_at, journal=None):
        self.ready_at = ready_at
        self.ids = set()
        self.journal = journal
        self.lock = threading.Lock()

    def connect(self, client_id, wait):
        end = time.monotonic() + wait
        while time.monotonic() < self.ready_at:
            if time.monotonic() >= end:
                return False
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        with self.lock:
            if client_id not in self.ids and self.journal:
                self.journal.append({"op": "client", "id": client_id})
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
        self.channel_call(parts, query, body, url.path)

    def channel_call(self, parts, query, body, path):
        channel = self.store.channel(parts[1])
        try:
            if len(parts) == 2 and self.command == "GET":
                self.reply_json(200, channel.stats())
            elif parts[2:] == ["messages"] and self.command == "POST":
                try:
                    seq = channel.publish(body)
                except OSError as exc:  # server.go:4294-4297: logged, and the publisher gets the error
                    client = self.headers.get("X-Client-Id", "")
                    doublelib.log(
                        COMPONENT, f'[ERR] [Client:{client}] Error processing message for subject "{parts[1]}": {exc}'
                    )
                    self.reply(500, f"{exc}\n")
                    return
                self.reply_json(201, {"sequence": seq})
                self.store.maybe_compact(self.clients)
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
                self.reply(405, f"{self.command} {path} is not supported\n")
        except doublelib.ConfigError as exc:
            self.reply(400, f"{exc}\n")


def main():
    try:
        opts = parse_args(sys.argv[1:])
    except FlagError as exc:  # flag.ExitOnError: the error and the usage, exit 2; a bad size: PrintAndDie, exit 1
        sys.stderr.write(f"{exc}\n" + ("Usage: nats-streaming-server [options]\n" if exc.code == 2 else ""))
        sys.exit(exc.code)
    opts["store"] = opts["store"].lower()  # compared upper-cased upstream (MEMORY, FILE)
    if opts["store"] not in ("memory", "file"):
        sys.stderr.write(f"unsupported store type: {opts['store']} (this double knows MEMORY and FILE)\n")
        sys.exit(1)
    if opts["store"] == "file" and not opts["dir"]:
        sys.stderr.write("for FILE stores, root directory must be specified\n")  # filestore.go:1258-1259
        sys.exit(1)
    store = Store(opts)
    delay = doublelib.env_duration("streaming_ready_delay", "0s")
    clients = Clients(time.monotonic() + delay, store.journal)
    try:
        recovered = store.recover(clients)
    except OSError as exc:
        sys.stderr.write(f"unable to recover the file store in {opts['dir']}: {exc}\n")
        sys.exit(1)
    where = f"file store in {opts['dir']} ({recovered} clients recovered)" if store.journal else "memory store"
    limits = f"max_msgs={opts['max_msgs']} max_bytes={opts['max_bytes']} max_age={opts['max_age']}s"
    doublelib.log(COMPONENT, f"{where}; {limits}")
    QueueHandler.store, QueueHandler.clients = store, clients
    doublelib.serve(QueueHandler, 4222)


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main, reads_args=True)
