# SPDX-License-Identifier: GPL-3.0-or-later
"""The NATS Streaming double's store (issue 16): command line, file store across restarts, limits, store errors.

Upstream = nats-streaming-server v0.17.0; the lines are cited in tests/doubles/openfaas/nats_streaming.py and in
the conformance table of docs/test-doubles.md.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import time

import nats_streaming
import pytest
from doubles_harness import DOUBLES, PASSWORD, USER, Callbacks, FunctionHandler, Process, Provider, request, serve

AUTH = (USER, PASSWORD)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        ([], {"store": "memory", "dir": "", "max_msgs": 1000000, "max_bytes": 1024000000, "max_age": 0.0}),
        (
            ["--store", "file", "--dir", "/data", "--cluster_id", "faas-cluster", "--max_msgs", "500"],
            {"store": "file", "dir": "/data", "max_msgs": 500},
        ),
        (
            ["-st=FILE", "-dir=/d", "-mm", "7", "-mb", "2MB", "-ma", "1h30m"],
            {"max_bytes": 2 * 1024**2, "max_age": 5400},
        ),
        (["--max_bytes", "3k", "--max_age", "0"], {"max_bytes": 3000, "max_age": 0.0}),
        (["--max_bytes", "1gb"], {"max_bytes": 1024**3}),
        ([], {"http_port": 0, "hb_interval": 30.0, "hb_timeout": 10.0, "hb_fail_count": 10}),
        (
            ["-m", "8222", "--hbi", "1s", "--hbt", "500ms", "--hbf", "2", "--cluster_id", "faas-cluster"],
            {
                "http_port": 8222,
                "hb_interval": 1.0,
                "hb_timeout": 0.5,
                "hb_fail_count": 2,
                "cluster_id": "faas-cluster",
            },
        ),
        (["--http_port=8223", "--hb_interval", "2s"], {"http_port": 8223, "hb_interval": 2.0}),
    ],
)
def test_flags_as_upstream(argv, want):
    opts = nats_streaming.parse_args(argv)
    assert {key: opts[key] for key in want} == want


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nope", "1"], "flag provided but not defined: -nope"),
        (["--max_msgs", "many"], 'invalid value "many" for flag -max_msgs: parse error'),
        (["--max_bytes", "1TB"], "max_bytes should be a size, got '1TB'"),
        (["--max_age", "1d"], 'invalid value "1d" for flag -max_age: parse error'),
        (["--dir"], "flag needs an argument: -dir"),
    ],
)
def test_bad_flags_are_refused(argv, message):
    with pytest.raises(nats_streaming.FlagError, match=message):
        nats_streaming.parse_args(argv)


def _run(args, timeout=10):
    env = {"PATH": os.environ.get("PATH", ""), "bind_address": "127.0.0.1", "port": "0"}
    return subprocess.run(
        [sys.executable, os.path.join(DOUBLES, "nats_streaming.py"), *args],
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def test_start_up_errors_exit_like_upstream():
    done = _run(["--store", "file"])  # filestore.go:1258-1259, printed and exit 1 (nats-streaming-server.go:163)
    assert (done.returncode, done.stderr) == (1, b"for FILE stores, root directory must be specified\n")
    done = _run(["--max_msgs", "x"])  # flag.ExitOnError
    assert done.returncode == 2
    assert b'invalid value "x" for flag -max_msgs' in done.stderr


def _opts(**kw):
    return {"store": "memory", "dir": "", "max_msgs": 0, "max_bytes": 0, "max_age": 0.0, **kw}


def test_limits_drop_the_oldest_and_never_refuse_a_publish(capsys):
    channel = nats_streaming.Channel("faas-request", _opts(max_msgs=3), None)
    seqs = [channel.publish(f"m{i}".encode()) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]  # every publish succeeds (filestore.go:2791-2796 drops, does not refuse)
    stats = channel.stats()
    assert (stats["stored"], stats["pending"], stats["dropped"]) == (3, 3, 2)
    batch = channel.fetch(10, 0, 30)
    assert [m["sequence"] for m in batch] == [3, 4, 5]  # 1 and 2 were never delivered: lost work
    warnings = [line for line in capsys.readouterr().err.splitlines() if "Reached limits" in line]
    assert len(warnings) == 1  # logged once (ms.hitLimit)
    assert 'Reached limits for store "faas-request" (msgs=3/3' in warnings[0]
    assert warnings[0].endswith("dropping old messages to make room for new ones")


def test_acknowledged_messages_count_towards_the_limits_until_dropped():
    size = nats_streaming.Channel.size("c", b"x" * 100)
    channel = nats_streaming.Channel("c", _opts(max_bytes=3 * size), None)
    for _round in range(3):
        channel.publish(b"x" * 100)
    for message in channel.fetch(3, 0, 30):
        assert channel.ack(message["sequence"])
    assert channel.stats()["stored"] == 3  # kept after the ack (the channel is a log)
    channel.publish(b"y" * 100)
    stats = channel.stats()
    assert (stats["stored"], stats["bytes"], stats["dropped"]) == (3, 3 * size, 0)  # an acked one made room


def test_in_flight_message_dropped_by_a_limit_is_lost():
    channel = nats_streaming.Channel("c", _opts(max_msgs=1), None)
    channel.publish(b"a")
    [first] = channel.fetch(1, 0, 30)
    channel.publish(b"b")
    assert not channel.ack(first["sequence"])  # gone from the store: its ack is refused, it is never redelivered
    assert channel.stats()["dropped"] == 1


def test_max_age_removes_old_messages(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(nats_streaming.time, "time", lambda: clock[0])
    channel = nats_streaming.Channel("c", _opts(max_age=60.0), None)
    channel.publish(b"old")
    clock[0] += 30
    channel.publish(b"new")
    clock[0] += 31  # the first is 61 s old (filestore.go:2875-2935)
    stats = channel.stats()
    assert (stats["stored"], stats["pending"], stats["dropped"]) == (1, 1, 1)


def test_a_store_write_error_fails_the_publish(tmp_path):
    store = nats_streaming.Store(_opts(store="file", dir=str(tmp_path)))
    clients = nats_streaming.Clients(0.0, store.journal)
    store.recover(clients)
    channel = store.channel("faas-request")
    assert channel.publish(b"kept") == 1
    store.journal.file.close()
    store.journal.file = open("/dev/full", "a", encoding="utf-8")  # noqa: SIM115 - ENOSPC on flush
    with pytest.raises(OSError, match="No space left on device"):
        channel.publish(b"refused")
    assert channel.stats()["published"] == 1  # nothing half-stored


def _start_nats(tmp_path, port, store):
    args = ["--store", store, "--cluster_id", "faas-cluster", "--max_msgs", "1000"]
    if store == "file":
        args += ["--dir", str(tmp_path / "store")]
    return Process("nats_streaming.py", {"port": str(port)}, str(tmp_path), args).wait_listening()


def test_file_store_keeps_messages_acks_and_clients_across_a_restart(tmp_path):
    port = _free_port()
    nats = _start_nats(tmp_path, port, "file")
    base = f"http://127.0.0.1:{port}"
    try:
        body = json.dumps({"client_id": "gw-1", "wait": 1}).encode()
        assert request(base + "/connect", "POST", body).status == 200
        for i in range(5):
            assert request(base + "/channels/faas-request/messages", "POST", f"m{i}".encode()).status == 201
        fetched = json.loads(request(base + "/channels/faas-request/fetch?max=2&ack_wait=30", "POST").body)["messages"]
        assert request(f"{base}/channels/faas-request/ack/{fetched[0]['sequence']}", "POST").status == 200
        nats.stop()  # message 2 was in flight, unacknowledged
        nats = _start_nats(tmp_path, port, "file")
        assert request(base + "/ping", "POST", headers={"X-Client-Id": "gw-1"}).status == 200  # client recovered
        stats = json.loads(request(base + "/channels/faas-request").body)
        assert stats == {**stats, "pending": 4, "in_flight": 0, "published": 5, "acked": 1, "stored": 5}
        again = json.loads(request(base + "/channels/faas-request/fetch?max=10", "POST").body)["messages"]
        assert [base64.b64decode(m["data"]) for m in again] == [b"m1", b"m2", b"m3", b"m4"]
        assert request(base + "/channels/faas-request/messages", "POST", b"m5").status == 201
        assert json.loads(request(base + "/channels/faas-request").body)["published"] == 6  # sequences go on
    finally:
        nats.stop()


def test_memory_store_forgets_everything_on_restart(tmp_path):
    port = _free_port()
    nats = _start_nats(tmp_path, port, "memory")
    base = f"http://127.0.0.1:{port}"
    try:
        assert request(base + "/channels/faas-request/messages", "POST", b"m").status == 201
        nats.stop()
        nats = _start_nats(tmp_path, port, "memory")
        assert json.loads(request(base + "/channels/faas-request").body)["stored"] == 0
    finally:
        nats.stop()


@pytest.mark.parametrize(("store", "expected"), [("file", 12), ("memory", 0)])
def test_async_calls_queued_across_a_nats_restart(tmp_path, secrets_dir, store, expected):
    """The drill of issue 16 in process: worker absent, N queued, NATS restarted, worker started: N of N callbacks
    with the file store; none with upstream's memory store (the defect the file store removes)."""
    function, callbacks = serve(FunctionHandler), Callbacks()
    provider = Provider(function.server_address[1])
    port = _free_port()
    procs = {"nats": _start_nats(tmp_path, port, store)}
    try:
        procs["auth"] = Process("basic_auth.py", {"secret_mount_path": secrets_dir}, str(tmp_path)).wait_listening()
        gateway_env = {
            "functions_provider_url": f"http://127.0.0.1:{provider.port}/",
            "direct_functions": "false",
            "faas_nats_address": "127.0.0.1",
            "faas_nats_port": str(port),
            "basic_auth": "true",
            "secret_mount_path": secrets_dir,
            "auth_proxy_url": f"{procs['auth'].url}/validate",
            "metrics_port": "0",
        }
        procs["gateway"] = gateway = Process("gateway.py", gateway_env, str(tmp_path)).wait_listening()
        for i in range(expected or 12):
            answer = request(
                f"{gateway.url}/async-function/echo", "POST", f"job-{i}".encode(), {"X-Callback-Url": callbacks.url}
            )
            assert answer.status == 202
        procs["nats"].stop()
        procs["nats"] = _start_nats(tmp_path, port, store)
        worker_env = {
            "faas_nats_address": "127.0.0.1",
            "faas_nats_port": str(port),
            "faas_gateway_address": "127.0.0.1",
            "faas_gateway_port": str(gateway.port),
            "gateway_invoke": "true",
            "ack_wait": "10s",
        }
        procs["worker"] = Process("queue_worker.py", worker_env, str(tmp_path)).wait_listening()
        bodies = set()
        deadline = time.monotonic() + (10 if expected else 3)
        while time.monotonic() < deadline and len(bodies) < 12:
            try:
                bodies.add(callbacks.get(timeout=max(0.1, deadline - time.monotonic()))[2])
            except Exception:  # noqa: BLE001 - queue.Empty at the deadline
                break
        assert len(bodies) == expected
        assert bodies == {f"JOB-{i}".encode() for i in range(expected)}
    finally:
        for proc in procs.values():
            proc.stop()
        for server in (function, provider.server, callbacks.server):
            server.shutdown()
            server.server_close()


def test_gateway_answers_500_never_202_while_nats_is_down(tmp_path, secrets_dir):
    provider = Provider(1)
    port = _free_port()
    nats = _start_nats(tmp_path, port, "file")
    gateway = None
    try:
        gateway_env = {
            "functions_provider_url": f"http://127.0.0.1:{provider.port}/",
            "faas_nats_address": "127.0.0.1",
            "faas_nats_port": str(port),
            "basic_auth": "false",
            "metrics_port": "0",
        }
        gateway = Process("gateway.py", gateway_env, str(tmp_path)).wait_listening()
        assert request(f"{gateway.url}/async-function/echo", "POST", b"x").status == 202
        nats.stop()
        answer = request(f"{gateway.url}/async-function/echo", "POST", b"x")
        assert answer.status == 500  # queue_proxy.go:67-71: the publish error, never a 202
        assert answer.body.strip()
    finally:
        nats.stop()
        if gateway:
            gateway.stop()
        provider.server.shutdown()
        provider.server.server_close()


# -- the monitoring endpoint (--http_port), as nats-streaming-server v0.17.0's server/monitor.go -----------------------
QUEUE_FETCH = "/channels/faas-request/fetch?max={n}&ack_wait=30&queue=faas&durable=faas-request&max_inflight=2"


def _start_monitored(tmp_path, port, monitor, store="file"):
    """NATS with monitoring on ``monitor``; a client silent for (0.3 + 0.2) x (1 + 1) = 1 s is closed."""
    args = ["--store", store, "--cluster_id", "faas-cluster", "--max_msgs", "50", "--max_bytes", "1MB", "-m",
            str(monitor), "--hbi", "300ms", "--hbt", "200ms", "--hbf", "1"]  # fmt: skip
    if store == "file":
        args += ["--dir", str(tmp_path / "store")]
    return Process("nats_streaming.py", {"port": str(port)}, str(tmp_path), args).wait_listening()


def _connect(base, client_id):
    body = json.dumps({"client_id": client_id, "wait": 1}).encode()
    assert request(base + "/connect", "POST", body).status == 200


def _channelz(monitor, name="faas-request"):
    answer = request(f"http://127.0.0.1:{monitor}/streaming/channelsz?channel={name}&subs=1")
    assert answer.status == 200, answer.body
    assert answer.header("Content-Type") == "application/json"
    return json.loads(answer.body)


SUBSCRIPTIONZ = {  # nss/server/monitor.go:120-134: field -> Go type as JSON
    "client_id": str, "inbox": str, "ack_inbox": str, "queue_name": str, "is_durable": bool, "is_offline": bool,
    "max_inflight": int, "ack_wait": int, "last_sent": int, "pending_count": int, "is_stalled": bool,
}  # fmt: skip


def _check_types(sub):
    assert set(sub) == set(SUBSCRIPTIONZ), sub  # durable_name is omitted for a durable queue member (omitempty)
    for key, kind in SUBSCRIPTIONZ.items():
        # a JSON bool is not a number here: Go's bool and int fields stay apart
        assert isinstance(sub[key], kind) and isinstance(sub[key], bool) == (kind is bool), (key, sub[key])


def test_monitoring_reports_the_durable_queue_group_and_its_offline_shadow(tmp_path):
    """The paths and fields the queue admission reads (roles/openfaas/files/onmetal-faas-endpoints.py): one member
    with its last_sent and pending_count; once its client is gone, the same group as an offline shadow with the last
    client id, the group's last_sent and what it still owes; a new member takes the shadow's place."""
    port, monitor = _free_port(), _free_port()
    nats = _start_monitored(tmp_path, port, monitor)
    base = f"http://127.0.0.1:{port}"
    try:
        _connect(base, "gw")
        _connect(base, "faas-worker-a")
        for i in range(5):
            assert request(base + "/channels/faas-request/messages", "POST", f"m{i}".encode()).status == 201
        worker = {"X-Client-Id": "faas-worker-a"}
        fetched = json.loads(request(base + QUEUE_FETCH.format(n=2), "POST", headers=worker).body)["messages"]
        assert [m["sequence"] for m in fetched] == [1, 2]
        assert request(base + "/channels/faas-request/ack/1", "POST", headers=worker).status == 200
        channel = _channelz(monitor)
        assert {k: channel[k] for k in ("name", "msgs", "first_seq", "last_seq")} == {
            "name": "faas-request", "msgs": 5, "first_seq": 1, "last_seq": 5,
        }  # fmt: skip
        assert channel["bytes"] == sum(nats_streaming.Channel.size("faas-request", f"m{i}".encode()) for i in range(5))
        (member,) = channel["subscriptions"]
        _check_types(member)
        assert member == {
            **member, "client_id": "faas-worker-a", "queue_name": "faas-request:faas", "is_durable": True,
            "is_offline": False, "max_inflight": 2, "ack_wait": 30, "last_sent": 2, "pending_count": 1,
            "is_stalled": False,
        }  # fmt: skip
        # The worker stops (no pings): its client is closed after 1 s and the group stays as its shadow.
        deadline = time.monotonic() + 10
        while not channel["subscriptions"][0]["is_offline"]:
            assert time.monotonic() < deadline, channel
            time.sleep(0.1)
            channel = _channelz(monitor)
        (shadow,) = channel["subscriptions"]
        _check_types(shadow)
        assert {k: shadow[k] for k in ("client_id", "queue_name", "is_offline", "last_sent", "pending_count")} == {
            "client_id": "faas-worker-a", "queue_name": "faas-request:faas", "is_offline": True, "last_sent": 2,
            "pending_count": 1,
        }  # fmt: skip
        # last_seq - last_sent + pending_count = the 4 messages not acknowledged
        assert channel["last_seq"] - shadow["last_sent"] + shadow["pending_count"] == 4
        _connect(base, "faas-worker-b")
        fetched = json.loads(
            request(base + QUEUE_FETCH.format(n=1), "POST", headers={"X-Client-Id": "faas-worker-b"}).body
        )
        (member,) = _channelz(monitor)["subscriptions"]
        assert (member["client_id"], member["is_offline"], member["last_sent"], member["pending_count"]) == (
            "faas-worker-b",
            False,
            3,
            2,
        )  # took over the shadow: message 2 still owed, message 3 just delivered
        assert [m["sequence"] for m in fetched["messages"]] == [3]
    finally:
        nats.stop()


def test_monitoring_storez_lists_and_errors_as_upstream(tmp_path):
    port, monitor = _free_port(), _free_port()
    nats = _start_monitored(tmp_path, port, monitor, store="memory")
    base, mon = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{monitor}"
    try:
        storez = json.loads(request(mon + "/streaming/storez").body)
        assert storez["type"] == "MEMORY" and storez["cluster_id"] == "faas-cluster"
        assert storez["limits"] == {
            "max_channels": 100, "max_msgs": 50, "max_bytes": 1024**2, "max_age": 0, "max_subscriptions": 1000,
            "max_inactivity": 0,
        }  # fmt: skip
        empty = json.loads(request(mon + "/streaming/channelsz?subs=1").body)
        assert (empty["total"], empty["count"], empty["limit"]) == (0, 0, 1024)
        assert "channels" not in empty and "names" not in empty  # omitempty
        missing = request(mon + "/streaming/channelsz?channel=faas-request&subs=1")
        assert (missing.status, missing.body) == (404, b"Channel faas-request not found\n")
        for name in ("faas-request", "resize-queue"):
            assert request(f"{base}/channels/{name}/messages", "POST", b"x").status == 201
        listed = json.loads(request(mon + "/streaming/channelsz?subs=1").body)
        assert [c["name"] for c in listed["channels"]] == ["faas-request", "resize-queue"]
        assert all("subscriptions" not in c for c in listed["channels"])  # nobody subscribed: omitempty
        assert json.loads(request(mon + "/streaming/channelsz").body)["names"] == ["faas-request", "resize-queue"]
        assert json.loads(request(mon + "/streaming/channelsz?offset=1&limit=1").body)["names"] == ["resize-queue"]
        storez = json.loads(request(mon + "/streaming/storez").body)
        sizes = sum(nats_streaming.Channel.size(name, b"x") for name in ("faas-request", "resize-queue"))
        assert (storez["total_msgs"], storez["total_bytes"]) == (2, sizes)
        assert request(mon + "/varz").status == 404  # the NATS server's own pages are not imitated
    finally:
        nats.stop()


def test_the_queue_group_survives_a_restart_of_the_file_store(tmp_path):
    """After a restart the unprocessed messages are still last_seq - last_sent + pending_count of the group."""
    port, monitor = _free_port(), _free_port()
    nats = _start_monitored(tmp_path, port, monitor)
    base = f"http://127.0.0.1:{port}"
    try:
        _connect(base, "faas-worker-a")
        for i in range(6):
            assert request(base + "/channels/faas-request/messages", "POST", f"m{i}".encode()).status == 201
        worker = {"X-Client-Id": "faas-worker-a"}
        for message in json.loads(request(base + QUEUE_FETCH.format(n=3), "POST", headers=worker).body)["messages"]:
            if message["sequence"] != 2:
                assert (
                    request(f"{base}/channels/faas-request/ack/{message['sequence']}", "POST", headers=worker).status
                    == 200
                )
        nats.stop()
        nats = _start_monitored(tmp_path, port, monitor)
        channel = _channelz(monitor)
        (sub,) = channel["subscriptions"]
        assert sub["queue_name"] == "faas-request:faas" and sub["client_id"] == "faas-worker-a"
        assert channel["last_seq"] - sub["last_sent"] + sub["pending_count"] == 4  # 2, 4, 5, 6
    finally:
        nats.stop()
