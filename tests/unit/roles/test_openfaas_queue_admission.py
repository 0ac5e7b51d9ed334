"""The queue admission (onmetal-faas-endpoints --queue-admission, issue 16): nginx asks it before an async call
reaches the gateway, and it refuses the call when NATS Streaming would otherwise drop an unprocessed one to make room.

Upstream = nats-streaming-server v0.17.0 (server/monitor.go, server/server.go); the JSON below has its field names and
types (the NATS Streaming double is held to them in tests/unit/doubles/test_nats_store.py).
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ansible_collections.onmetal.faas.tests.unit.plugins._fake_engine import FakeClock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DOUBLES = os.path.join(ROOT, "tests", "doubles", "openfaas")

LIMITS = {"max_channels": 100, "max_msgs": 20, "max_bytes": 1 << 20, "max_age": 0, "max_subscriptions": 1000}
STOREZ = {"cluster_id": "faas-cluster", "type": "FILE", "limits": LIMITS, "total_msgs": 0, "total_bytes": 0}


def sub(client, last_sent, pending, offline=False, queue="faas-request:faas"):
    """A Subscriptionz (server/monitor.go:120-134) of the queue-worker's durable queue group."""
    return {
        "client_id": client,
        "inbox": "_INBOX.x",
        "ack_inbox": "_STAN.ack.x",
        "queue_name": queue,
        "is_durable": True,
        "is_offline": offline,
        "max_inflight": 1,
        "ack_wait": 65,
        "last_sent": last_sent,
        "pending_count": pending,
        "is_stalled": pending >= 1,
    }


def channelz(msgs, first, last, subs=(), name="faas-request", size=700):
    found = {"name": name, "msgs": msgs, "bytes": msgs * size, "first_seq": first, "last_seq": last}
    if subs:
        found["subscriptions"] = list(subs)
    return found


@pytest.fixture
def qa(keeper):
    return keeper


# -- the backlog -------------------------------------------------------------------------------------------------
def test_backlog_of_a_working_group_is_what_is_unsent_plus_what_is_pending(qa):
    # 100 stored (1-100); two workers got up to 90 and 88, and hold 1 and 2 unacknowledged: 10 unsent + 3 pending
    channel = channelz(100, 1, 100, [sub("faas-worker-a", 90, 1), sub("faas-worker-b", 88, 2)])
    assert qa.channel_backlog(channel) == (13, 13 * 700, "faas-request:faas", 2)


def test_backlog_when_the_queue_worker_is_stopped_is_read_from_the_offline_shadow(qa):
    """Every member gone: the group is listed once as its offline shadow (monitor.go:396-407) with the group's
    last_sent (server.go:1215-1225) and the messages it still owes; that is when a backlog builds."""
    channel = channelz(40, 11, 50, [sub("faas-worker-a", 30, 1, offline=True)])
    assert qa.channel_backlog(channel) == (21, 21 * 700, "faas-request:faas", 0)


def test_backlog_without_any_queue_group_is_every_stored_message(qa):
    # No queue-worker ever subscribed: DeliverAllAvailable will start at the first stored message.
    assert qa.channel_backlog(channelz(7, 1, 7)) == (7, 7 * 700, None, 0)
    # A plain (non-queue) subscriber, e.g. someone watching with stan-sub, does not process calls.
    watcher = {**sub("stan-sub", 7, 0), "queue_name": ""}
    assert qa.channel_backlog(channelz(7, 1, 7, [watcher]))[0] == 7


def test_backlog_never_counts_messages_a_limit_already_removed(qa):
    # The worker is behind the first stored message (max_age or a limit removed 1-59): at most what is stored.
    assert qa.channel_backlog(channelz(41, 60, 100, [sub("w", 10, 0, offline=True)]))[0] == 41
    assert qa.channel_backlog(channelz(0, 101, 100, [sub("w", 100, 0)])) == (0, 0, "faas-request:faas", 1)


def test_the_worst_of_two_queue_groups_counts(qa):
    channel = channelz(50, 1, 50, [sub("a", 50, 0), sub("b", 20, 0, queue="audit:faas")])
    assert qa.channel_backlog(channel)[:3] == (30, 30 * 700, "audit:faas")


def test_limits_are_the_channels_own_where_it_has_them(qa):
    storez = {"limits": {**LIMITS, "channels": {"big": {"max_msgs": 500, "max_bytes": 0}, "free": {"max_msgs": -1}}}}
    assert qa.channel_limits(storez, "faas-request") == (20, 1 << 20)
    assert qa.channel_limits(storez, "big") == (500, 1 << 20)  # 0 inherits (stores/store.go:50-53)
    assert qa.channel_limits(storez, "free") == (0, 1 << 20)  # < 0 lifts the limit
    assert qa.channel_limits({"limits": {"max_msgs": 0, "max_bytes": 0}}, "x") == (0, 0)


def test_message_size_counts_the_body_as_base64_plus_the_envelope(qa):
    assert qa.message_size(None) == qa.MESSAGE_OVERHEAD  # chunked: no Content-Length
    assert qa.message_size("3") == 4 + qa.MESSAGE_OVERHEAD
    assert qa.message_size("4") == 8 + qa.MESSAGE_OVERHEAD
    assert qa.message_size("3000000") == 4000000 + qa.MESSAGE_OVERHEAD
    assert qa.message_size("garbage") == qa.MESSAGE_OVERHEAD


def test_async_function_names_the_function_the_gateway_queues(qa):
    assert qa.async_function("/async-function/resize") == "resize"
    assert qa.async_function("/async-function/resize/") == "resize"
    assert qa.async_function("/async-function/resize/sub/path?x=1") == "resize"
    assert qa.async_function("/async-function/resize.openfaas-fn?x") == "resize"  # the namespace is not the name
    assert qa.async_function("/async-function/resize-v2?cb=1") == "resize-v2"
    for uri in ("/function/resize", "/async-function/", "/async-functions/x", "/async-function/a%20b", ""):
        assert qa.async_function(uri) is None, uri


def test_function_queues_from_the_annotations_faas_swarm_keeps_as_labels(qa):
    services = [
        {"Spec": {"Name": "resize", "Labels": {"com.openfaas.function": "resize", qa.QUEUE_LABEL: "resize-q"}}},
        {"Spec": {"Name": "echo", "Labels": {"com.openfaas.function": "echo"}}},
        {"Spec": {"Name": "func_gateway", "Labels": {qa.QUEUE_LABEL: "not-a-function"}}},
    ]
    assert qa.function_queues(services) == {"resize": "resize-q"}


# -- the verdict --------------------------------------------------------------------------------------------------
def test_headroom_is_rounded_up_and_zero_is_no_limit(qa):
    assert [qa.headroom(20, 5), qa.headroom(1000000, 5), qa.headroom(100, 0), qa.headroom(0, 5)] == [1, 50000, 0, 0]


def test_the_last_call_that_fits_is_admitted_and_the_next_refused(qa):
    # max_msgs 20 with 5% headroom (1): up to 19 unprocessed calls
    limits = (20, 0)
    assert qa.refusal("faas-request", (18, 0), limits, 5) is None
    refused = qa.refusal("faas-request", (19, 0), limits, 5)
    assert refused == {
        "channel": "faas-request", "limit": "max_msgs", "backlog": 19, "backlog_bytes": 0, "admitted_since_poll": 0,
        "max_msgs": 20, "max_bytes": 0, "headroom_percent": 5, "admits_up_to": 19,
    }  # fmt: skip
    # calls admitted since the snapshot count too
    assert qa.refusal("faas-request", (10, 0), limits, 5, recent=(9, 0))["admitted_since_poll"] == 9
    assert qa.refusal("faas-request", (10, 0), limits, 5, recent=(8, 0)) is None
    assert qa.refusal("faas-request", (10**9, 0), (0, 0), 5) is None  # no limits: nothing to protect


def test_bytes_are_checked_with_the_size_of_this_call(qa):
    limits = (0, 10000)  # 5% headroom: 9500 bytes
    assert qa.refusal("c", (1, 8000), limits, 5, size=1500) is None
    refused = qa.refusal("c", (1, 8000), limits, 5, size=1501)
    assert (refused["limit"], refused["admits_up_to"]) == ("max_bytes", 9500)
    assert qa.refusal("c", (1, 7000), limits, 5, recent=(2, 1000), size=1501)["limit"] == "max_bytes"


def test_the_507_body_names_the_channel_the_numbers_and_the_fixes(qa):
    refused = qa.refusal("faas-request", (19, 13300), (20, 0), 5, recent=(2, 1400))
    body = qa.full_body(refused, "func_queue-worker", "faas-request:faas", 0)
    assert body.isascii() and "\n" not in body  # an HTTP header value
    data = json.loads(body)
    assert data["error"] == "async queue full"
    assert (data["channel"], data["backlog"], data["max_msgs"], data["admits_up_to"]) == ("faas-request", 19, 20, 19)
    assert (data["queue_group"], data["workers_connected"]) == ("faas-request:faas", 0)
    message = data["message"]
    for text in (
        "NATS Streaming channel faas-request holds 19 calls that are not processed yet",
        "2 more were admitted in the last second",
        "more than 19 calls (max_msgs 20 minus the 5% headroom)",
        "start the queue-worker: no member of its queue group faas-request:faas is connected",
        "docker service ps func_queue-worker",
        "raise openfaas_nats_max_msgs",
    ):
        assert text in message, (text, message)
    busy = json.loads(qa.full_body(refused, "func_queue-worker", "faas-request:faas", 2))["message"]
    assert "let the queue-worker catch up (2 connected" in busy
    lonely = json.loads(qa.full_body(refused, "func_queue-worker", None, 0))["message"]
    assert "none ever subscribed to it" in lonely and "faas_nats_channel" in lonely
    by_bytes = qa.refusal("faas-request", (3, 9000), (0, 10000), 5, size=700)
    assert "raise openfaas_nats_max_bytes" in json.loads(qa.full_body(by_bytes))["message"]


# -- the Admission: snapshots, staleness, calls admitted between polls, one log line per change ---------------------
def _snapshot(qa, taken_at, channels, queues=None):
    return qa.queue_snapshot(taken_at, STOREZ, {"channels": channels}, queues or {}, "faas-request")


def test_no_snapshot_or_a_stale_one_admits_every_call(qa):
    clock, lines = FakeClock(1000.0), []
    admission = qa.Admission(5, lines.append, clock=clock)
    assert admission.decide("/async-function/echo", "10") == (204, {})  # nothing known yet: fail open
    admission.failed("GET /streaming/channelsz answered 500")
    admission.failed("GET /streaming/channelsz answered 500")
    assert len(lines) == 1 and "every async call is admitted until it answers (fail open)" in lines[0]
    full = channelz(19, 1, 19, [sub("w", 0, 0, offline=True)])
    admission.update(_snapshot(qa, clock.now, [full]))
    assert admission.decide("/async-function/echo")[0] == 403
    clock.now += 5.5  # no poll for 5.5 s: too old to refuse anything
    assert admission.decide("/async-function/echo") == (204, {})
    assert admission.decide("/async-function/echo") == (204, {})
    assert sum("s old (more than 5.0 s)" in line for line in lines) == 1


def test_calls_admitted_between_two_polls_count_until_a_snapshot_holds_them(qa):
    clock, lines = FakeClock(1000.0), []
    admission = qa.Admission(5, lines.append, clock=clock)
    admission.update(_snapshot(qa, clock.now, [channelz(10, 1, 10, [sub("w", 0, 0, offline=True)])]))
    answers = [admission.decide("/async-function/echo", "5")[0] for _call in range(12)]
    assert answers == [204] * 9 + [403] * 3  # 10 + 9 = 19 = 20 minus 1 of headroom
    status, headers = admission.decide("/async-function/echo")
    assert json.loads(headers["X-Onmetal-Queue-Full"])["admitted_since_poll"] == 9
    # the next poll, 1.5 s later, holds the 9 calls: they are no longer counted twice
    clock.now += 1.5
    admission.update(_snapshot(qa, clock.now, [channelz(19, 1, 19, [sub("w", 0, 0, offline=True)])]))
    assert json.loads(admission.decide("/async-function/echo")[1]["X-Onmetal-Queue-Full"])["admitted_since_poll"] == 0
    # the worker catches up: room again
    clock.now += 1
    admission.update(_snapshot(qa, clock.now, [channelz(19, 1, 19, [sub("w", 15, 1)])]))
    assert admission.decide("/async-function/echo")[0] == 204
    changes = [line for line in lines if "channel faas-request" in line]
    assert len(changes) == 3, changes  # room, full, room: one line per change, not per call
    assert "is full (max_msgs: 10 calls" in changes[1] and "has room" in changes[2]


def test_calls_admitted_just_before_a_poll_still_count_after_it(qa):
    """A call admitted a moment before the poll may reach NATS after the snapshot was read: counted for 1 s more."""
    clock = FakeClock(1000.0)
    admission = qa.Admission(5, lambda line: None, clock=clock)
    admission.update(_snapshot(qa, clock.now, [channelz(15, 1, 15)]))
    assert [admission.decide("/async-function/echo")[0] for _call in range(4)] == [204] * 4
    clock.now += 0.5
    admission.update(_snapshot(qa, clock.now, [channelz(15, 1, 15)]))  # taken before they were published
    assert admission.decide("/async-function/echo")[0] == 403


def test_each_function_is_checked_against_its_own_channel(qa):
    clock = FakeClock(1000.0)
    admission = qa.Admission(5, lambda line: None, clock=clock)
    channels = [channelz(19, 1, 19), channelz(2, 1, 2, name="resize-q")]
    admission.update(_snapshot(qa, clock.now, channels, {"resize": "resize-q"}))
    assert admission.decide("/async-function/echo")[0] == 403
    assert admission.decide("/async-function/resize")[0] == 204
    assert admission.decide("/async-function/new-fn")[0] == 403  # no annotation: the default channel
    assert admission.decide("/function/echo")[0] == 204  # not an async call: not ours to refuse
    assert admission.decide("/async-function/other")[1]["X-Onmetal-Queue-Full"].startswith('{"error"')


def test_a_channel_nobody_published_to_yet_has_room(qa):
    clock = FakeClock(1000.0)
    admission = qa.Admission(5, lambda line: None, clock=clock)
    admission.update(_snapshot(qa, clock.now, []))
    assert admission.decide("/async-function/echo", "100")[0] == 204


# -- the poller --------------------------------------------------------------------------------------------------
class Engine:
    def __init__(self, containers=("c1",)):
        self.containers = list(containers)
        self.urls = []

    def call(self, method, url, body=None):
        self.urls.append(url)
        path = url.split("?")[0]
        if path == "/containers/json":
            return 200, [{"Id": cid} for cid in self.containers]
        if path.startswith("/containers/"):
            env = ["faas_nats_address=nats", "faas_nats_channel=", "PATH=/usr/bin"]
            return 200, {"State": {"Pid": os.getpid(), "Running": True}, "Config": {"Env": env}}
        if path == "/services":
            return 200, []
        return 500, {"message": f"unexpected {url}"}


def _watch(qa, engine, admission, monitor, lookup=lambda name: ["10.0.1.7"]):
    asked = []

    def get(address, port, path):
        asked.append((address, port, path))
        return monitor(path)

    def netns(pid, work, timeout=30, what="answer"):
        asked.append(("netns", pid))
        return work()

    return qa.QueueWatch(engine, "func_gateway", 8222, admission, print, netns=netns, get=get, lookup=lookup), asked


def test_a_poll_asks_nats_inside_the_gateway_namespace_and_updates_the_verdicts(qa):
    lines = []
    admission = qa.Admission(5, lines.append, "func_queue-worker")

    def monitor(path):
        if path == qa.STOREZ:
            return STOREZ
        return {"channels": [channelz(19, 1, 19, [sub("w", 0, 0, offline=True)])]}

    watch, asked = _watch(qa, Engine(), admission, monitor)
    watch.run(forever=False)
    assert asked == [
        ("netns", os.getpid()),
        ("10.0.1.7", 8222, "/streaming/storez"),
        ("10.0.1.7", 8222, "/streaming/channelsz?subs=1"),
    ]
    assert admission.decide("/async-function/echo")[0] == 403
    assert "NATS Streaming's monitoring answers" in lines[0]


def test_a_poll_that_fails_fails_open_and_says_why_once(qa):
    lines = []
    admission = qa.Admission(5, lines.append)
    watch, _asked = _watch(qa, Engine(containers=()), admission, lambda path: {})
    watch.run(forever=False)
    watch.run(forever=False)
    assert len(lines) == 1
    assert "no running func_gateway container on this node" in lines[0] and "fail open" in lines[0]
    assert admission.decide("/async-function/echo") == (204, {})
    watch, _asked = _watch(qa, Engine(), admission, lambda path: {}, lookup=lambda name: [])
    watch.run(forever=False)
    assert "Docker's DNS has no address for nats" in lines[-1]


# -- nginx's side: the unix socket --------------------------------------------------------------------------------
def _ask(qa, path, uri, length=None):
    conn = qa.UnixHTTPConnection(path, timeout=5)
    try:
        headers = {"X-Original-URI": uri}
        if length is not None:
            headers["X-Original-Length"] = length
        conn.request("GET", "/_onmetal/queue-admission", headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("X-Onmetal-Queue-Full")
    finally:
        conn.close()


def test_the_socket_answers_204_or_403_with_the_body_for_nginx(qa, tmp_path):
    clock = FakeClock(1000.0)
    admission = qa.Admission(5, lambda line: None, clock=clock)
    admission.update(_snapshot(qa, clock.now, [channelz(19, 1, 19)]))
    path = str(tmp_path / "run" / "admission.sock")
    server = qa.serve_admission(path, admission)
    try:
        assert oct(os.stat(path).st_mode & 0o777) == "0o660"
        status, full = _ask(qa, path, "/async-function/echo", "12")
        assert status == 403 and json.loads(full)["channel"] == "faas-request"
        assert _ask(qa, path, "/function/echo") == (204, None)
        # keep-alive: nginx reuses its connections to the socket
        conn = qa.UnixHTTPConnection(path, timeout=5)
        for _call in range(3):
            conn.request("GET", "/", headers={"X-Original-URI": "/async-function/x"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 403
        conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_options_of_the_admission_mode(qa):
    options = qa.parse_args(["--queue-admission", "/run/q/a.sock", "--headroom", "10", "--socket-group", "www-data"])
    assert (options["queue_admission"], options["headroom"], options["socket_group"]) == (
        "/run/q/a.sock",
        10,
        "www-data",
    )
    assert options["monitor_port"] == 8222
    for argv, message in (
        (["--queue-admission", "/s", "--headroom", "60"], "is not a percentage from 0 to 50"),
        (["--queue-admission", "/s", "--headroom", "-1"], "is not a percentage from 0 to 50"),
        (["--queue-admission", "rel.sock"], "must be the absolute path of a unix socket"),
        (["--queue-admission", "/s", "--nats-monitor-port", "0"], "is not a TCP port number"),
    ):
        with pytest.raises(SystemExit, match=message):
            qa.parse_args(argv)


# -- against the NATS Streaming double's monitoring (what CI can run instead of upstream's image) ----------------------
def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(port, path, body=b"", client=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"X-Client-Id": client} if client else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


CHANNEL = "/streaming/channelsz?channel=faas-request&subs=1"


def test_the_verdicts_from_the_doubles_monitoring_while_the_worker_is_stopped(qa, tmp_path):
    """The drill queue_full in process: the worker takes 2 calls and stops; the channel fills; the admission refuses
    at max_msgs minus the headroom, and every call it admitted is still in the store."""
    port, monitor = _free_port(), _free_port()
    # a client silent for (0.3 + 0.2) x (1 + 1) = 1 s is closed
    args = ["--store", "memory", "--max_msgs", "20", "-m", str(monitor), "--hbi", "300ms", "--hbt", "200ms",
            "--hbf", "1"]  # fmt: skip
    env = {"PATH": os.environ.get("PATH", ""), "bind_address": "127.0.0.1", "port": str(port)}
    log = open(tmp_path / "nats.log", "wb")  # noqa: SIM115 - closed below
    nats = subprocess.Popen([sys.executable, os.path.join(DOUBLES, "nats_streaming.py"), *args], env=env,
                            stdout=subprocess.PIPE, stderr=log)  # fmt: skip
    try:
        assert nats.stdout.readline().decode().startswith("LISTENING ")
        for client in ("gw", "faas-worker-a"):
            assert _post(port, "/connect", json.dumps({"client_id": client, "wait": 1}).encode())[0] == 200
        for i in range(2):
            assert _post(port, "/channels/faas-request/messages", f"m{i}".encode(), "gw")[0] == 201
        fetch = "/channels/faas-request/fetch?max=2&ack_wait=30&queue=faas&durable=faas-request&max_inflight=2"
        for message in json.loads(_post(port, fetch, client="faas-worker-a")[1])["messages"]:
            assert _post(port, f"/channels/faas-request/ack/{message['sequence']}", client="faas-worker-a")[0] == 200
        deadline = time.monotonic() + 10  # the worker stopped: once its client is closed, the group is a shadow
        while not (qa.monitor_get("127.0.0.1", monitor, CHANNEL).get("subscriptions") or [{}])[0].get("is_offline"):
            assert time.monotonic() < deadline, "the double never closed the silent worker's client"
            time.sleep(0.1)
        lines = []
        clock = FakeClock(1000.0)
        admission = qa.Admission(5, lines.append, clock=clock)

        def monitor_get(address, mport, path):
            return qa.monitor_get("127.0.0.1", monitor, path)

        watch = qa.QueueWatch(Engine(), "func_gateway", monitor, admission, lines.append,
                              netns=lambda pid, work, timeout=30, what="": work(), get=monitor_get,
                              lookup=lambda name: ["127.0.0.1"], clock=clock)  # fmt: skip
        watch.run(forever=False)
        admitted = 0
        for i in range(30):
            if i % 5 == 0:
                clock.now += 2  # a poll now and then, after the calls admitted before it reached NATS
                watch.run(forever=False)
            if admission.decide("/async-function/echo", "2")[0] == 204:
                admitted += 1
                assert _post(port, "/channels/faas-request/messages", b"job")[0] == 201  # gw: silent, closed too
        assert admitted == 19  # max_msgs 20 minus 1 of headroom; the 2 processed calls do not count
        watch.run(forever=False)
        channel = qa.monitor_get("127.0.0.1", monitor, CHANNEL)
        assert qa.channel_backlog(channel)[0] == 19  # nothing admitted was dropped (the 2 processed ones were)
        assert channel["subscriptions"][0]["is_offline"] is True
    finally:
        nats.terminate()
        nats.wait(5)
        log.close()
