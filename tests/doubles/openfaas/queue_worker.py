# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of ghcr.io/openfaas/queue-worker:0.11.2 (OpenFaaS's asynchronous invocation worker), which cannot
# be pulled on the test rig. Written for onmetal.faas's tests; no OpenFaaS code is used.
# Upstream = openfaas/nats-queue-worker at 8e9eefd ("qw/" below); the conformance table in docs/test-doubles.md
# lists each behaviour with the test that holds this double to it. In short:
#   start-up: connects to NATS Streaming (here: the HTTP protocol of nats_streaming.py) once; a failure panics,
#             exit 2, "can't connect to nats://<addr>:<port>: <client error>" (qw/main.go:211-213, types.go:45-57).
#   each message: POST (always POST, qw/main.go:81) to http://<gateway>/function/<name><path> (gateway_invoke=true)
#             or http://<name><faas_function_suffix>:8080<path> with the queued headers and body; ONE attempt, no
#             retry, no overall timeout (30 s dial timeout, qw/main.go:232-254); an unreachable function counts as
#             503 with an empty body (qw/main.go:96-141).
#   callback: POST to X-Callback-Url, once, with the function's response headers, X-Duration-Seconds ("%f"),
#             X-Function-Status, X-Function-Name and X-Call-Id (qw/main.go:256-297).
#   ack: after the handler (invocation and callback) returns, in both auto-ack (max_inflight 1) and manual-ack
#             mode (qw/types.go:67-101); unacknowledged messages come back after ack_wait.
#   NATS lost later: reconnect attempts i = 0..faas_max_reconnect-1 (120) wait i * faas_reconnect_delay (2s)
#             (qw/types.go:121-145, readconfig.go:15-17).
"""OpenFaaS queue-worker test double."""

import base64
import json
import os
import re
import threading
import time

import doublelib

COMPONENT = "queue-worker"
DIAL_TIMEOUT = 30.0  # qw/main.go:232-243: makeClient, net.Dialer{Timeout: 30 * time.Second}, keep-alives off


def _go_duration(name, default):
    """qw/readconfig.go:119-139: time.ParseDuration; a bad value is logged and the default kept."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip() == "0" or not re.fullmatch(r"\d+(\.\d+)?", raw.strip()):  # "30" has no unit: invalid in Go
        try:
            return doublelib.go_duration(raw, name)
        except doublelib.ConfigError:
            pass
    doublelib.log(COMPONENT, f"{name} error: time: invalid duration {raw!r}")
    return default


def _atoi(name, default):
    raw = os.environ.get(name)
    if raw is None:
        return default
    if re.fullmatch(r"[+-]?\d+", raw):
        return int(raw)
    doublelib.log(COMPONENT, f"{name} error: strconv.Atoi: parsing {raw!r}: invalid syntax")
    return default


class Config:
    """qw/readconfig.go:19-162."""

    def __init__(self, env):
        self.nats_address = env.get("faas_nats_address", "nats")
        self.nats_port = _atoi("faas_nats_port", 4222)
        self.channel = env.get("faas_nats_channel") or "faas-request"
        self.queue_group = env.get("faas_nats_queue_group") or "faas"  # qw/readconfig.go:54-58
        self.gateway_address = env.get("faas_gateway_address", "gateway")
        port = env.get("faas_gateway_port", "8080")
        if not re.fullmatch(r"[+-]?\d+", port):  # readconfig.go:66-73: an error, and main panics on it
            doublelib.fatal(COMPONENT, f"converting faas_gateway_port {port} to int error", code=2)
        self.gateway_port = int(port)
        self.gateway_invoke = env.get("gateway_invoke") in ("1", "true")
        self.function_suffix = env.get("faas_function_suffix", "")
        self.max_inflight = max(1, _atoi("max_inflight", 1))  # types.go:70-72
        self.max_reconnect = _atoi("faas_max_reconnect", 120)
        self.reconnect_delay = _go_duration("faas_reconnect_delay", 2.0)
        self.ack_wait = _go_duration("ack_wait", 30.0)
        self.write_debug = env.get("write_debug") in ("1", "true")

    def function_url(self, message):
        """qw/main.go:337-363 (the suffix is appended without a dot)."""
        query = message.get("query") or ""
        qs = "?" + query.lstrip("?") if query else ""
        path = message.get("path") or "/"
        name = message["function"]
        if self.gateway_invoke:
            return f"http://{self.gateway_address}:{self.gateway_port}/function/{name.strip('/')}{path}{qs}"
        return f"http://{name}{self.function_suffix}:8080{path}{qs}"


def invoke(config, message):
    """One POST; returns (status, headers or None, body). qw/main.go:80-158."""
    body = base64.b64decode(message.get("body") or "")
    headers = [(k, v) for k, values in (message.get("headers") or {}).items() for v in values]
    headers = [(k, v) for k, v in headers if k.lower() not in doublelib.HOP_BY_HOP]
    try:
        # no client timeout upstream (only a 30 s dial timeout, Go's serial dial: qw/main.go:232-238); ack_wait
        # bounds it in practice: redelivery
        status, resp_headers, data = doublelib.http_request(
            config.function_url(message), "POST", body, headers, timeout=3600, dial_timeout=DIAL_TIMEOUT
        )
    except doublelib.UpstreamError as exc:
        doublelib.log(COMPONENT, f"Error invoking {message['function']}, error: {exc}")
        return 503, None, b""
    return status, resp_headers, data


def post_callback(message, status, resp_headers, data, started):
    """qw/main.go:256-297: function headers copied, then the four X- headers set; one attempt."""
    url = message.get("callback_url")
    if not url:
        return
    headers = [(k, v) for k, v in (resp_headers or []) if k.lower() not in doublelib.HOP_BY_HOP]
    overrides = {
        "X-Duration-Seconds": f"{time.monotonic() - started:f}",
        "X-Function-Status": str(status),
        "X-Function-Name": message["function"],
    }
    call_id = ((message.get("headers") or {}).get("X-Call-Id") or [""])[0]
    if call_id:
        overrides["X-Call-Id"] = call_id
    headers = [(k, v) for k, v in headers if k.lower() not in {o.lower() for o in overrides}]
    headers += list(overrides.items())
    try:
        code, _h, _b = doublelib.http_request(url, "POST", data, headers, timeout=3600, dial_timeout=DIAL_TIMEOUT)
        doublelib.log(COMPONENT, f"Posted result for {message['function']} to callback-url: {url}, status: {code}")
    except doublelib.UpstreamError as exc:
        doublelib.log(COMPONENT, f"Error posting to callback-url: error posting result to URL {url} {exc}")


def handle(config, raw, counter):
    started = time.monotonic()
    try:
        message = json.loads(raw)
        message["function"]  # noqa: B018 - validates the required key
    except (ValueError, KeyError, TypeError):  # qw/main.go:64-69: logged, then acknowledged like any other
        doublelib.log(COMPONENT, f"[#{counter}] Unmarshal error with data {raw[:200]!r}")
        return
    status, resp_headers, data = invoke(config, message)
    doublelib.log(COMPONENT, f"[#{counter}] Invoked: {message['function']} [{status}]")
    if config.write_debug:
        doublelib.log(COMPONENT, data.decode("utf-8", "replace"))
    post_callback(message, status, resp_headers, data, started)


def worker(config, conn, counter, lock):
    # A member of the durable queue group: DurableName = the channel with "." as "_", the queue group, MaxInflight
    # (qw/types.go:75-80,96-101).
    durable = config.channel.replace(".", "_")
    fetch = (
        f"channels/{config.channel}/fetch?max=1&wait=5&ack_wait={config.ack_wait}"
        f"&queue={config.queue_group}&durable={durable}&max_inflight={config.max_inflight}"
    )
    while not conn.stop.is_set():
        if not conn.connected.wait(1.0):
            continue
        try:
            status, _h, data = conn.request(fetch, b"", timeout=15.0)
            batch = json.loads(data) if status == 200 else {}
        except (doublelib.UpstreamError, ValueError):
            conn.stop.wait(1.0)  # the pinger notices a lost server and runs the reconnect loop
            continue
        for item in batch.get("messages", []):
            with lock:
                counter[0] += 1
                number = counter[0]
            handle(config, base64.b64decode(item["data"]), number)
            try:  # acknowledged after the handler returns (qw/types.go:82-88; stan auto-ack likewise)
                conn.request(f"channels/{config.channel}/ack/{item['sequence']}", b"")
            except doublelib.UpstreamError as exc:
                doublelib.log(COMPONENT, f"ack of {item['sequence']} failed ({exc}); it will be redelivered")


def main():
    config = Config(os.environ)
    url = f"nats://{config.nats_address}:{config.nats_port}"
    client_id = "faas-worker-" + (os.uname().nodename or "worker")
    conn = doublelib.StanConn(
        COMPONENT, config.nats_address, config.nats_port, client_id, config.max_reconnect, config.reconnect_delay
    )
    doublelib.log(COMPONENT, f"Connect: {url}")
    try:
        conn.connect()
    except doublelib.NatsError as exc:  # qw/main.go:211-213: log.Panic
        doublelib.fatal(COMPONENT, f"can't connect to {url}: {exc}", code=2)
    doublelib.log(
        COMPONENT,
        f"Listening on [{config.channel}], clientID=[{client_id}], qgroup=[{config.queue_group}] "
        f"maxInFlight=[{config.max_inflight}]",
    )
    conn.start_pings()
    counter, lock = [0], threading.Lock()
    threads = [
        threading.Thread(target=worker, args=(config, conn, counter, lock), daemon=True)
        for _index in range(config.max_inflight)
    ]
    for thread in threads:
        thread.start()
    print("LISTENING 0", flush=True)
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(1.0)
    except KeyboardInterrupt:
        conn.stop.set()


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main)
