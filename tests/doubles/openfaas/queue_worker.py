# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of ghcr.io/openfaas/queue-worker:0.11.2 (OpenFaaS's asynchronous invocation worker), which cannot
# be pulled on the test rig. Written for onmetal.faas's tests; no OpenFaaS code is used.
# Implements the queue-worker's documented behaviour and environment variables: it subscribes to the
# channel faas-request (faas_nats_channel) on the NATS service at faas_nats_address:faas_nats_port (here: the
# HTTP protocol of the nats_streaming.py double), runs up to max_inflight requests at once, invokes each
# function through the gateway (gateway_invoke=true: http://<faas_gateway_address>:<faas_gateway_port>/function/
# <name><faas_function_suffix>) or directly (http://<name><faas_function_suffix>:8080/) with the original method,
# path, query, headers and body, and POSTs the function's response body to the request's X-Callback-Url
# with X-Call-Id, X-Function-Status, X-Function-Name, X-Duration-Seconds and the function's Content-Type.
# A message is acknowledged after its callback; an unacknowledged message is redelivered after ack_wait
# (Go duration). write_debug=true logs bodies.
# Bounded retries (this double's own settings): connection failures and status codes listed in
# retry_http_codes ("429,502,503,504") are retried max_retry_attempts times (3) with a delay starting at
# initial_retry_wait ("0.5s"), doubling, capped at max_retry_wait ("10s"); callbacks are retried 3 times.
"""OpenFaaS queue-worker test double."""

import base64
import json
import os
import threading
import time

import doublelib

COMPONENT = "queue-worker"


class Config:
    def __init__(self, env):
        self.nats_address = env.get("faas_nats_address", "nats")
        self.nats_port = doublelib.env_int("faas_nats_port", 4222)
        self.channel = env.get("faas_nats_channel", "faas-request")
        self.gateway_address = env.get("faas_gateway_address", "gateway")
        self.gateway_port = doublelib.env_int("faas_gateway_port", 8080)
        self.gateway_invoke = doublelib.env_bool("gateway_invoke", False)
        self.function_suffix = env.get("faas_function_suffix", "")
        self.max_inflight = max(1, doublelib.env_int("max_inflight", 1))
        self.ack_wait = doublelib.env_duration("ack_wait", "30s")
        self.write_debug = doublelib.env_bool("write_debug", False)
        self.max_retry_attempts = max(1, doublelib.env_int("max_retry_attempts", 3))
        self.initial_retry_wait = doublelib.env_duration("initial_retry_wait", "0.5s")
        self.max_retry_wait = doublelib.env_duration("max_retry_wait", "10s")
        codes = env.get("retry_http_codes", "429,502,503,504")
        try:
            self.retry_codes = {int(c) for c in codes.split(",") if c.strip()}
        except ValueError:
            raise doublelib.ConfigError(f"retry_http_codes={codes!r}: use a comma-separated list of codes") from None
        self.queue_url = f"http://{self.nats_address}:{self.nats_port}/channels/{self.channel}"

    def function_url(self, message):
        name = message["function"] + self.function_suffix
        path = message.get("path") or ""
        query = message.get("query") or ""
        if self.gateway_invoke:
            url = f"http://{self.gateway_address}:{self.gateway_port}/function/{name}{path}"
        else:
            url = f"http://{name}:8080/{path.lstrip('/')}"
        return url + (f"?{query}" if query else "")


def invoke(config, message):
    """Call the function; returns (status, headers, body, seconds). Never raises for upstream failures."""
    body = base64.b64decode(message.get("body") or "")
    headers = [(k, v) for k, values in (message.get("headers") or {}).items() for v in values]
    headers = [(k, v) for k, v in headers if k.lower() not in doublelib.HOP_BY_HOP]
    url = config.function_url(message)
    delay = config.initial_retry_wait
    start = time.monotonic()
    for attempt in range(1, config.max_retry_attempts + 1):
        try:
            status, resp_headers, data = doublelib.http_request(
                url, message.get("method") or "POST", body, headers, config.ack_wait
            )
            if status not in config.retry_codes or attempt == config.max_retry_attempts:
                return status, resp_headers, data, time.monotonic() - start
            reason = f"status {status}"
        except doublelib.UpstreamError as exc:
            if attempt == config.max_retry_attempts:
                text = f"function {message['function']} failed after {attempt} attempts: {exc}\n"
                return 503, [("Content-Type", "text/plain; charset=utf-8")], text.encode(), time.monotonic() - start
            reason = str(exc)
        doublelib.log(COMPONENT, f"{message.get('call_id')}: attempt {attempt} ({reason}); retrying in {delay:.2f}s")
        time.sleep(delay)
        delay = min(delay * 2, config.max_retry_wait)
    raise AssertionError("unreachable")


def post_callback(config, message, status, resp_headers, data, seconds):
    url = message.get("callback_url")
    if not url:
        return
    content_type = next((v for k, v in resp_headers if k.lower() == "content-type"), "")
    headers = [
        ("X-Call-Id", message.get("call_id", "")),
        ("X-Function-Status", str(status)),
        ("X-Function-Name", message["function"]),
        ("X-Duration-Seconds", f"{seconds:.6f}"),
    ]
    if content_type:
        headers.append(("Content-Type", content_type))
    for attempt in range(1, 4):
        try:
            code, _headers, _body = doublelib.http_request(url, "POST", data, headers, config.ack_wait)
            doublelib.log(COMPONENT, f"{message.get('call_id')}: callback {url} answered {code}")
            if code < 500:
                return
        except doublelib.UpstreamError as exc:
            doublelib.log(COMPONENT, f"{message.get('call_id')}: callback attempt {attempt} failed: {exc}")
        time.sleep(0.2 * attempt)


def handle(config, raw):
    try:
        message = json.loads(raw)
        message["function"]  # noqa: B018 - validates the required key
    except (ValueError, KeyError, TypeError):
        doublelib.log(COMPONENT, f"dropping malformed message: {raw[:200]!r}")
        return
    status, resp_headers, data, seconds = invoke(config, message)
    doublelib.log(COMPONENT, f"{message.get('call_id')}: {message['function']} answered {status} in {seconds:.3f}s")
    if config.write_debug:
        doublelib.log(COMPONENT, f"{message.get('call_id')}: body {data[:2000]!r}")
    post_callback(config, message, status, resp_headers, data, seconds)


def worker(config, stop):
    fetch_url = f"{config.queue_url}/fetch?max=1&wait=5&ack_wait={config.ack_wait}"
    while not stop.is_set():
        try:
            status, batch = doublelib.http_json(fetch_url, "POST", timeout=15.0)
        except doublelib.UpstreamError as exc:
            doublelib.log(COMPONENT, f"NATS unavailable ({exc}); retrying in 1s")
            stop.wait(1.0)
            continue
        if status != 200 or not isinstance(batch, dict):
            doublelib.log(COMPONENT, f"fetch answered {status}: {batch!r}")
            stop.wait(1.0)
            continue
        for item in batch.get("messages", []):
            handle(config, base64.b64decode(item["data"]))
            try:
                doublelib.http_request(f"{config.queue_url}/ack/{item['sequence']}", "POST", timeout=5.0)
            except doublelib.UpstreamError as exc:
                doublelib.log(COMPONENT, f"ack of {item['sequence']} failed ({exc}); it will be redelivered")


def main():
    config = Config(os.environ)
    doublelib.log(
        COMPONENT,
        f"subscribing to {config.queue_url} max_inflight={config.max_inflight} ack_wait={config.ack_wait}s "
        f"gateway_invoke={config.gateway_invoke}",
    )
    stop = threading.Event()
    threads = [
        threading.Thread(target=worker, args=(config, stop), daemon=True) for _index in range(config.max_inflight)
    ]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(1.0)
    except KeyboardInterrupt:
        stop.set()


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main)
