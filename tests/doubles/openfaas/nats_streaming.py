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
# Monitoring (--http_port/-m <port>, default 0 = off, nss/vendor/.../nats-server/v2/server/opts.go:2932-2933,
#   nss/server/server.go:1768-1771), as upstream's JSON (nss/server/monitor.go), on the paths onmetal.faas uses:
#   GET /streaming/storez  -> Storez (monitor.go:67-76,271-287): cluster_id, server_id, now, type FILE|MEMORY,
#        limits {max_channels, max_msgs, max_bytes, max_age (ns), max_subscriptions, max_inactivity (ns)}
#        (nss/stores/store.go:44-101), total_msgs, total_bytes
#   GET /streaming/channelsz[?subs=1][&offset=&limit=] -> Channelsz (monitor.go:97-108,448-495): names, or with
#        subs=1 channels; GET /streaming/channelsz?channel=<name>[&subs=1] -> Channelz (monitor.go:110-118,497-528),
#        404 "Channel <name> not found" (Go's http.Error). Channelz: name, msgs, bytes, first_seq, last_seq and, with
#        subs=1, subscriptions (Subscriptionz, monitor.go:120-134,383-433): client_id, inbox, ack_inbox, queue_name,
#        is_durable, is_offline, max_inflight, ack_wait (s), last_sent, pending_count, is_stalled.
#   Other paths (NATS's /varz, /connz, ..., /streaming/serverz, /streaming/clientsz): 404 "404 page not found".
# Durable queue group, as the queue-worker subscribes (DurableName <channel> + queue group "faas": qw/types.go:75-99):
#   reported under the compound name "<durable>:<queue>" without durable_name (nss/server/server.go:4791-4806).
#   Each member's last_sent is the last sequence delivered to it and pending_count its unacknowledged messages
#   (server.go:4030-4033, monitor.go:424); a member whose client is closed hands its unacknowledged messages to the
#   remaining members, and the first of them carries the group's last sent (server.go:1150-1225). When the last member
#   goes, the group stays as its offline "shadow": is_offline true, client_id the last member's, the group's last_sent
#   and the messages it still owes (server.go:1137-1148, monitor.go:396-407,427-430); a member that joins later takes
#   its place and state (server.go:4807-4818). The double keeps ONE durable queue group per channel (what OpenFaaS
#   uses). A client is closed after (hb_interval + hb_timeout) x (hb_fail_count + 1) without a sign of life
#   (--hbi/-hb_interval 30s, --hbt/-hb_timeout 10s, --hbf/-hb_fail_count 10: nss/server/server.go:67-73,3068-3110,
#   conf.go:605-610); upstream pings the client, the double counts the client's own requests (pings every 5 s).
#   After a restart of the file store the double restores the group but not each delivery (it does not journal
#   them): every unacknowledged message is owed by its first recorded member (or the shadow) and last_sent is the
#   channel's last sequence, so last_seq - last_sent + pending_count (the unprocessed messages) is upstream's.
# HTTP protocol, used only by the gateway and queue-worker doubles next to it:
#   POST /channels/<channel>/messages          body = message bytes -> 201 {"sequence": n}; store error 500 <text>
#   POST /channels/<channel>/fetch?max=N&wait=S&ack_wait=S[&queue=Q&durable=D&max_inflight=M]
#        -> 200 {"messages": [{"sequence": n, "data": base64, "redelivered": bool}]} (long poll up to S s); with
#        queue and durable (and X-Client-Id) the client fetches as a member of the channel's durable queue group
#        "D:Q" (400 for another group on the same channel, or a queue without a durable name)
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
import datetime
import json
import os
import sys
import threading
import time
import uuid
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
_IGNORED_FLAGS = {"max_channels", "mc", "max_subs", "msu", "max_inactivity", "mi"}
# Upstream's DefaultStoreLimits besides the flags the double reads (nss/stores/store.go:89-101).
MAX_CHANNELS, MAX_SUBSCRIPTIONS = 100, 1000


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
    opts = {
        "store": "memory",
        "dir": "",
        "max_msgs": 1000000,
        "max_bytes": 1000000 * 1024,
        "max_age": 0.0,
        "cluster_id": "test-cluster",  # DefaultClusterID, nss/server/server.go:52
        "http_port": 0,
        "hb_interval": 30.0,  # nss/server/server.go:67-73
        "hb_timeout": 10.0,
        "hb_fail_count": 10,
    }
    aliases = {
        "st": "store",
        "mm": "max_msgs",
        "mb": "max_bytes",
        "ma": "max_age",
        "cid": "cluster_id",
        "m": "http_port",
        "hbi": "hb_interval",
        "hbt": "hb_timeout",
        "hbf": "hb_fail_count",
    }
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
            if name in ("max_msgs", "http_port", "hb_fail_count"):
                opts[name] = int(value)
            elif name == "max_bytes":
                opts[name] = parse_size(value)
            elif name in ("max_age", "hb_interval", "hb_timeout"):
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


class Member:
    """One member of a channel's durable queue group (upstream's subState of a queue subscriber), or the group's
    offline shadow (client_id "")."""

    def __init__(self, client_id, max_inflight=1, ack_wait=30):
        token = uuid.uuid4().hex[:22]
        self.client_id = self.saved_client_id = client_id
        self.inbox, self.ack_inbox = f"_INBOX.{token}", f"_STAN.ack.{token}"
        self.max_inflight, self.ack_wait = max(1, int(max_inflight)), int(ack_wait)
        self.last_sent = 0

    def subscriptionz(self, group, pending):
        """nss/server/monitor.go:120-134,411-433 (an offline member reports its last client id: 427-430)."""
        return {
            "client_id": self.client_id or self.saved_client_id,
            "inbox": self.inbox,
            "ack_inbox": self.ack_inbox,
            "queue_name": group,
            "is_durable": True,
            "is_offline": self.client_id == "",
            "max_inflight": self.max_inflight,
            "ack_wait": self.ack_wait,
            "last_sent": self.last_sent,
            "pending_count": pending,
            "is_stalled": pending >= self.max_inflight,
        }


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
        self.group = None  # "<durable>:<queue>" of the channel's durable queue group
        self.members = {}  # client id -> Member
        self.shadow = None  # the group's Member while none is connected
        self.owner = {}  # sequence -> Member it was delivered to, not acknowledged yet (upstream's acksPending)

    @staticmethod
    def size(name, data):
        return len(data) + len(name) + PROTO_OVERHEAD + RECORD_OVERHEAD

    def _remove_first(self):
        seq, (_ts, data) = self.log.popitem(last=False)
        self.bytes -= self.size(self.name, data)
        self.owner.pop(seq, None)
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

    def _join(self, client_id, group, max_inflight, ack_wait):
        """The member ``client_id`` of the durable queue group ``group``, joining it when new (server.go:4791-4818)."""
        if self.group not in (None, group):
            raise doublelib.ConfigError(
                f"channel {self.name} already has the durable queue group {self.group!r}; this double keeps one queue "
                f"group per channel, not {group!r}"
            )
        self.group = group
        member = self.members.get(client_id)
        if member is None:
            if self.shadow is not None:  # the offline group's state goes on with the new member (server.go:4810-4815)
                member, self.shadow = self.shadow, None
                member.client_id = member.saved_client_id = client_id
            else:
                member = Member(client_id, max_inflight, ack_wait)
            self.members[client_id] = member
            if self.journal:
                self.journal.append(self._sub_event(member))
        member.max_inflight, member.ack_wait = max(1, int(max_inflight)), int(ack_wait)
        return member

    def _sub_event(self, member):
        return {
            "op": "sub",
            "ch": self.name,
            "group": self.group,
            "client": member.saved_client_id,
            "max_inflight": member.max_inflight,
            "ack_wait": member.ack_wait,
        }

    def leave(self, client_id):
        """The client of a member is closed (server.go:1120-1227): its unacknowledged messages go to the remaining
        members at once, round robin, the first of them carries the group's last sent; the last member becomes the
        group's offline shadow with everything it still owes."""
        with self.cond:
            member = self.members.pop(client_id, None)
            if member is None:
                return
            owed = sorted(seq for seq, owner in self.owner.items() if owner is member)
            if not self.members:
                member.client_id = ""
                self.shadow = member
                return
            remaining = list(self.members.values())
            group_last = max(m.last_sent for m in [member, *remaining])
            for index, seq in enumerate(owed):
                target = remaining[index % len(remaining)]
                self.owner[seq] = target
                target.last_sent = max(target.last_sent, seq)
                if seq in self.in_flight:
                    self.in_flight[seq] = 0.0  # expired: redelivered at the next fetch
            remaining[0].last_sent = max(remaining[0].last_sent, group_last)
            self.cond.notify_all()

    def recover_group(self, records, known):
        """After a restart (file store): the group from its journal records, its members whose client is still
        registered; the double journals no delivery, so every unacknowledged message is owed by the first of them
        (or the shadow) and the group's last sent is the last sequence (upstream keeps each member's)."""
        group = records[-1]["group"]
        holder = None
        for record in records:
            if record["group"] != group or record["client"] not in known or record["client"] in self.members:
                continue
            member = Member(record["client"], record.get("max_inflight", 1), record.get("ack_wait", 30))
            self.members[member.client_id] = member
            holder = holder or member
        if holder is None:
            last = records[-1]
            holder = Member(last["client"], last.get("max_inflight", 1), last.get("ack_wait", 30))
            holder.client_id = ""
            self.shadow = holder
        self.group = group
        holder.last_sent = self.published
        for seq, _redelivered in self.pending:
            self.owner[seq] = holder

    def channelz(self, subs):
        """nss/server/monitor.go:110-118,511-528 (and the subscriptions: 383-409)."""
        with self.cond:
            self._requeue_expired(time.monotonic())
            self._enforce(time.time(), report=False)
            first = next(iter(self.log)) if self.log else (self.published + 1 if self.published else 0)
            found = {"name": self.name, "msgs": len(self.log), "bytes": self.bytes, "first_seq": first}
            found["last_seq"] = self.published
            if subs:
                owed = collections.Counter(id(owner) for owner in self.owner.values())
                listed = [*self.members.values(), *([self.shadow] if self.shadow else [])]
                subscriptions = [m.subscriptionz(self.group, owed[id(m)]) for m in listed]
                if subscriptions:  # omitempty
                    found["subscriptions"] = subscriptions
            return found

    def fetch(self, max_count, wait, ack_wait, member_of=None):
        """Up to ``max_count`` messages; ``member_of`` = (client id, group, max_inflight) fetches as that member."""
        end = time.monotonic() + wait
        with self.cond:
            member = self._join(*member_of[:2], member_of[2], ack_wait) if member_of else None
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
                if member is not None:
                    self.owner[seq] = member
                    member.last_sent = max(member.last_sent, seq)
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
            self.owner.pop(seq, None)
            self.acked += 1
            return True

    def live_events(self):
        """The events that rebuild this channel: its stored messages and the acks of those no longer pending."""
        waiting = {seq for seq, _r in self.pending} | set(self.in_flight)
        events = [
            {"op": "pub", "ch": self.name, "seq": s, "ts": ts, "data": _b64(d)} for s, (ts, d) in self.log.items()
        ]
        events += [{"op": "ack", "ch": self.name, "seq": s} for s in self.log if s not in waiting]
        return events + [self._sub_event(m) for m in [*([self.shadow] if self.shadow else []), *self.members.values()]]

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


def go_now():
    """time.Now() as Go's encoding/json writes it (RFC 3339 with nanoseconds; the container's zone is UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        groups = collections.defaultdict(list)
        for event in events:
            if event.get("op") == "client":
                clients.ids.add(event["id"])
            elif event.get("op") == "close":
                clients.ids.discard(event["id"])
            elif event.get("op") == "sub":
                groups[event["ch"]].append(event)
            elif event.get("op") == "pub":
                key = (event["ch"], event["seq"])
                self.channel(event["ch"]).restore(
                    event["seq"], event["ts"], base64.b64decode(event["data"]), key in acked
                )
        for channel in self.channels.values():
            channel._enforce(time.time(), report=True)
        for name, records in groups.items():
            self.channel(name).recover_group(records, clients.ids)
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

    def clients_lost(self, client_ids):
        with self.lock:
            channels = list(self.channels.values())
        for client_id in client_ids:
            for channel in channels:
                channel.leave(client_id)

    def storez(self, cluster_id, server_id):
        """nss/server/monitor.go:67-76,271-287; the limits as Go marshals StoreLimits (durations in ns)."""
        with self.lock:
            channels = list(self.channels.values())
        states = [channel.channelz(False) for channel in channels]
        return {
            "cluster_id": cluster_id,
            "server_id": server_id,
            "now": go_now(),
            "type": "FILE" if self.journal else "MEMORY",  # nss/stores/store.go:26-28
            "limits": {
                "max_channels": MAX_CHANNELS,
                "max_msgs": self.opts["max_msgs"],
                "max_bytes": self.opts["max_bytes"],
                "max_age": int(self.opts["max_age"] * 1e9),
                "max_subscriptions": MAX_SUBSCRIPTIONS,
                "max_inactivity": 0,
            },
            "total_msgs": sum(state["msgs"] for state in states),
            "total_bytes": sum(state["bytes"] for state in states),
        }

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

    def __init__(self, ready_at, journal=None, lost_after=None):
        self.ready_at = ready_at
        self.ids = set()
        self.journal = journal
        self.lock = threading.Lock()
        self.lost_after = lost_after  # seconds without a sign of life after which a client is closed; None: never
        self.seen = {}  # client id -> time.monotonic() of its last request

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
            self.seen[client_id] = time.monotonic()
        return True

    def known(self, client_id):
        with self.lock:
            return client_id is None or client_id in self.ids

    def touch(self, client_id):
        with self.lock:
            if client_id in self.ids:
                self.seen[client_id] = time.monotonic()

    def expire(self):
        """Closes the clients silent for longer than lost_after (server.go:3068-3125: "Timed out on heartbeats");
        returns their ids. A client recovered from the file store counts from the first look."""
        if self.lost_after is None:
            return []
        now = time.monotonic()
        lost = []
        with self.lock:
            for client_id in sorted(self.ids):
                if now - self.seen.setdefault(client_id, now) > self.lost_after:
                    lost.append(client_id)
            for client_id in lost:
                self.ids.discard(client_id)
                self.seen.pop(client_id, None)
                if self.journal:
                    try:
                        self.journal.append({"op": "close", "id": client_id})
                    except OSError as exc:
                        doublelib.log(COMPONENT, f"[ERR] Unable to store the close of client {client_id}: {exc}")
        for client_id in lost:
            doublelib.log(COMPONENT, f"[ERR] [Client:{client_id}] Timed out on heartbeats")
        return lost


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
        self.clients.touch(self.headers.get("X-Client-Id"))
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
                member_of = self.member_of(query)
                self.reply_json(200, {"messages": channel.fetch(max_count, wait, ack_wait, member_of)})
            elif len(parts) == 4 and parts[2] == "ack" and self.command == "POST":
                if channel.ack(int(parts[3]) if parts[3].isdigit() else -1):
                    self.reply(200, "OK")
                else:
                    self.reply(404, f"message {parts[3]} is not in flight on {parts[1]} (acked or redelivered)\n")
            else:
                self.reply(405, f"{self.command} {path} is not supported\n")
        except doublelib.ConfigError as exc:
            self.reply(400, f"{exc}\n")

    def member_of(self, query):
        """(client id, "<durable>:<queue>", max_inflight) of a fetch as a durable queue group member, or None."""
        queue, durable = (query.get("queue") or [""])[0], (query.get("durable") or [""])[0]
        if not queue:
            return None
        client_id = self.headers.get("X-Client-Id")
        if not durable or ":" in durable or not client_id:
            raise doublelib.ConfigError(
                "a queue fetch needs X-Client-Id and a durable name without ':' (the double implements durable queue "
                "groups only, as the queue-worker subscribes: server.go:4791-4806)"
            )
        return client_id, f"{durable}:{queue}", _number(query, "max_inflight", 1, int)


class MonitorHandler(doublelib.Handler):
    """NATS Streaming's monitoring endpoint (--http_port), the paths of nss/server/monitor.go:33-41 that onmetal.faas
    reads."""

    component = COMPONENT
    store = None
    cluster_id = "test-cluster"
    server_id = ""

    def send_go_json(self, payload):
        """natsd.ResponseHandler after json.MarshalIndent(content, "", "  ") (monitor.go:530-536)."""
        self.reply(200, json.dumps(payload, indent=2).encode(), "application/json")

    def go_error(self, status, text):
        """Go's http.Error."""
        self.reply(status, text + "\n", headers=[("X-Content-Type-Options", "nosniff")])

    def dispatch(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.read_body()
        if url.path == "/streaming/storez":
            self.send_go_json(self.store.storez(self.cluster_id, self.server_id))
        elif url.path == "/streaming/channelsz":
            self.channelsz(query)
        else:
            self.go_error(404, "404 page not found")

    def channelsz(self, query):
        """monitor.go:448-509, getOffsetAndLimit/getMinMaxOffset 538-560."""
        subs = _atoi(query, "subs")
        name = (query.get("channel") or [""])[0]
        if name:
            with self.store.lock:
                channel = self.store.channels.get(name)
            if channel is None:
                self.go_error(404, f"Channel {name} not found")
            else:
                self.send_go_json(channel.channelz(subs == 1))
            return
        offset = max(0, _atoi(query, "offset"))
        limit = _atoi(query, "limit")
        limit = limit if limit > 0 else 1024
        with self.store.lock:
            channels = dict(self.store.channels)
        names = sorted(channels)
        chosen = names[min(offset, len(names)) : min(offset + limit, len(names))]
        found = {
            "cluster_id": self.cluster_id,
            "server_id": self.server_id,
            "now": go_now(),
            "offset": offset,
            "limit": limit,
            "count": len(chosen),
            "total": len(names),
        }
        if subs == 1:
            found["channels"] = [channels[cn].channelz(True) for cn in chosen]
        else:
            found["names"] = chosen
        if not chosen:  # omitempty
            found.pop("channels", None)
            found.pop("names", None)
        self.send_go_json(found)


def _atoi(query, key):
    """strconv.Atoi with the error ignored, as monitor.go reads its query parameters."""
    try:
        return int((query.get(key) or ["0"])[0])
    except ValueError:
        return 0


def reap(clients, store, every):
    """Closes silent clients and takes them out of their queue groups (upstream: the heartbeat timers)."""
    while True:
        time.sleep(every)
        lost = clients.expire()
        if lost:
            store.clients_lost(lost)


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
    lost_after = (opts["hb_interval"] + opts["hb_timeout"]) * (opts["hb_fail_count"] + 1)  # server.go:71-73
    clients = Clients(time.monotonic() + delay, store.journal, lost_after)
    try:
        recovered = store.recover(clients)
    except OSError as exc:
        sys.stderr.write(f"unable to recover the file store in {opts['dir']}: {exc}\n")
        sys.exit(1)
    where = f"file store in {opts['dir']} ({recovered} clients recovered)" if store.journal else "memory store"
    limits = f"max_msgs={opts['max_msgs']} max_bytes={opts['max_bytes']} max_age={opts['max_age']}s"
    doublelib.log(COMPONENT, f"{where}; {limits}")
    QueueHandler.store, QueueHandler.clients = store, clients
    MonitorHandler.store, MonitorHandler.cluster_id = store, opts["cluster_id"]
    MonitorHandler.server_id = uuid.uuid4().hex[:22].upper()
    threading.Thread(target=reap, args=(clients, store, min(1.0, max(0.05, lost_after / 4))), daemon=True).start()
    if opts["http_port"] > 0:  # nss/server/server.go:1768-1771: monitoring only with a port
        doublelib.log(COMPONENT, f"monitoring on port {opts['http_port']}")
    doublelib.serve_pair(QueueHandler, 4222, MonitorHandler, opts["http_port"] if opts["http_port"] > 0 else -1)


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main, reads_args=True)
