# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of ghcr.io/openfaas/gateway:0.18.18 (the OpenFaaS API gateway, Swarm flavour), which cannot be
# pulled on the test rig. Written for onmetal.faas's tests; no OpenFaaS code is used.
# Implements the gateway's documented REST API and environment variables:
#   GET  /healthz                       200 OK (no auth)
#   ANY  /function/<name>[/<path>]      sync invocation (no auth): forwarded to the provider's /function/<name>
#                                       (direct_functions=false) or to http://<name><direct_functions_suffix>:8080
#                                       (direct_functions=true); body, headers, status returned; X-Call-Id,
#                                       X-Start-Time added upstream, X-Duration-Seconds added to the response;
#                                       scale_from_zero=true scales a function at 0 replicas up first.
#   POST /async-function/<name>[/<path>] 202 + X-Call-Id (no auth); the request (method, path, query, headers
#                                       incl. X-Callback-Url, body) is queued on channel faas-request of the
#                                       NATS service (faas_nats_address:faas_nats_port).
#   /system/functions (GET list with invocationCount, POST 202, PUT, DELETE {"functionName"}),
#   /system/function/<name>, /system/scale-function/<name>, /system/info and the rest of /system/*
#                                       proxied to functions_provider_url (basic auth required).
#   POST /system/alert                  Alertmanager webhook: firing -> replicas += max * factor%, capped at
#                                       com.openfaas.scale.max; resolved -> com.openfaas.scale.min.
#   GET  /metrics (also on :8082 as upstream) Prometheus text: gateway_function_invocation_total{function_name,code},
#                                       gateway_functions_seconds_{sum,count}, gateway_service_count.
# Auth with basic_auth=true: credentials from <secret_mount_path>/basic-auth-user|basic-auth-password; /system/*
# is validated by auth_proxy_url (the basic-auth plugin; body passed only with auth_pass_body=true) when set,
# else against those credentials; the gateway also presents them to the provider, as upstream does.
# Timeouts: read_timeout, write_timeout, upstream_timeout (Go durations).
"""OpenFaaS gateway test double."""

import base64
import json
import os
import threading
import time
import uuid
from urllib.parse import urlsplit

import doublelib

COMPONENT = "gateway"
SCALE_MIN, SCALE_MAX, SCALE_FACTOR = "com.openfaas.scale.min", "com.openfaas.scale.max", "com.openfaas.scale.factor"


class Config:
    def __init__(self, env):
        self.provider_url = env.get("functions_provider_url", "")
        if not self.provider_url.startswith("http://"):
            raise doublelib.ConfigError(
                f"functions_provider_url={self.provider_url!r}: set it to the provider, e.g. http://faas-swarm:8080/"
            )
        if not self.provider_url.endswith("/"):
            self.provider_url += "/"
        self.direct_functions = doublelib.env_bool("direct_functions", False)
        self.direct_suffix = env.get("direct_functions_suffix", "")
        self.nats_address = env.get("faas_nats_address", "")
        self.nats_port = doublelib.env_int("faas_nats_port", 4222)
        self.nats_channel = env.get("faas_nats_channel", "faas-request")
        self.read_timeout = doublelib.env_duration("read_timeout", "8s")
        self.write_timeout = doublelib.env_duration("write_timeout", "8s")
        self.upstream_timeout = doublelib.env_duration("upstream_timeout", env.get("write_timeout") or "8s")
        self.basic_auth = doublelib.env_bool("basic_auth", False)
        self.secret_mount_path = env.get("secret_mount_path") or "/run/secrets/"
        self.auth_proxy_url = env.get("auth_proxy_url", "")
        self.auth_pass_body = doublelib.env_bool("auth_pass_body", False)
        self.scale_from_zero = doublelib.env_bool("scale_from_zero", False)
        self.credentials = None
        if self.basic_auth:
            self.credentials = (
                doublelib.read_secret(self.secret_mount_path, "basic-auth-user"),
                doublelib.read_secret(self.secret_mount_path, "basic-auth-password"),
            )


class Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.invocations = {}  # (function, code) -> count
        self.seconds = {}  # function -> [sum, count]

    def observe(self, function, code, seconds):
        with self.lock:
            self.invocations[(function, str(code))] = self.invocations.get((function, str(code)), 0) + 1
            total = self.seconds.setdefault(function, [0.0, 0])
            total[0] += seconds
            total[1] += 1

    def count(self, function):
        with self.lock:
            return sum(n for (fn, _code), n in self.invocations.items() if fn == function)

    def render(self, replicas):
        def esc(value):
            return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

        lines = [
            "# HELP gateway_function_invocation_total Function metrics",
            "# TYPE gateway_function_invocation_total counter",
        ]
        with self.lock:
            for (fn, code), n in sorted(self.invocations.items()):
                lines.append(f'gateway_function_invocation_total{{code="{esc(code)}",function_name="{esc(fn)}"}} {n}')
            lines += [
                "# HELP gateway_functions_seconds Function time taken",
                "# TYPE gateway_functions_seconds summary",
            ]
            for fn, (total, n) in sorted(self.seconds.items()):
                lines.append(f'gateway_functions_seconds_sum{{function_name="{esc(fn)}"}} {total:.6f}')
                lines.append(f'gateway_functions_seconds_count{{function_name="{esc(fn)}"}} {n}')
        lines += ["# HELP gateway_service_count Service replicas", "# TYPE gateway_service_count gauge"]
        for fn, n in sorted(replicas.items()):
            lines.append(f'gateway_service_count{{function_name="{esc(fn)}"}} {n}')
        return "\n".join(lines) + "\n"


def calculate_replicas(status, current, maximum, minimum, factor):
    """Alertmanager scaling rule of the OpenFaaS gateway: step = max * factor / 100."""
    step = int(maximum / 100 * factor)
    if status == "firing" and step > 0:
        return min(current + step, maximum)
    return minimum


def _label_int(labels, key, default):
    try:
        return int((labels or {}).get(key, default))
    except (TypeError, ValueError):
        return default


class GatewayHandler(doublelib.Handler):
    component = COMPONENT
    config = None
    metrics = None
    ready_cache = {}  # function -> monotonic time it was last seen with available replicas
    ready_lock = threading.Lock()

    # -- helpers ---------------------------------------------------------------------------------
    def provider_headers(self):
        if self.config.credentials:
            token = base64.b64encode(":".join(self.config.credentials).encode()).decode()
            return [("Authorization", f"Basic {token}")]
        return []

    def provider(self, method, path, payload=None):
        headers = self.provider_headers()
        return doublelib.http_json(
            self.config.provider_url + path, method, payload, headers, self.config.upstream_timeout
        )

    def authorized(self, body):
        cfg = self.config
        if not cfg.basic_auth:
            return True
        auth = self.headers.get("Authorization")
        if cfg.auth_proxy_url:
            headers = [("Authorization", auth)] if auth else []
            try:
                status, _headers, _data = doublelib.http_request(
                    cfg.auth_proxy_url,
                    "POST" if cfg.auth_pass_body else "GET",
                    body if cfg.auth_pass_body else b"",
                    headers,
                    cfg.upstream_timeout,
                )
            except doublelib.UpstreamError as exc:
                doublelib.log(COMPONENT, f"auth_proxy_url unreachable: {exc}")
                return False
            return status == 200
        return doublelib.credentials_match(auth, *cfg.credentials)

    # -- routing ---------------------------------------------------------------------------------
    def dispatch(self):
        url = urlsplit(self.path)
        path = url.path
        body = self.read_body()
        if path == "/healthz":
            self.reply(200, "OK")
        elif path == "/metrics":
            self.handle_metrics()
        elif path.startswith("/function/"):
            self.handle_invoke(path[len("/function/") :], url.query, body)
        elif path.startswith("/async-function/"):
            self.handle_async(path[len("/async-function/") :], url.query, body)
        elif path.startswith("/system/"):
            if not self.authorized(body):
                self.reply(401, "Unauthorized\n", headers=[("WWW-Authenticate", 'Basic realm="Restricted"')])
            elif path == "/system/alert":
                self.handle_alert(body)
            elif path == "/system/functions" and self.command == "GET":
                self.handle_list()
            else:
                self.handle_proxy(path, url.query, body)
        elif path in ("/", "/ui", "/ui/"):
            self.reply(200, "OpenFaaS gateway test double (no UI)\n")
        else:
            self.reply(404, "404 page not found\n")

    # -- /system ---------------------------------------------------------------------------------
    def forget_ready(self, name):
        with self.ready_lock:
            self.ready_cache.pop(name, None)

    def handle_proxy(self, path, query, body):
        # Scaling, updating or deleting may take the replicas away: check again before the next call.
        if path.startswith("/system/scale-function/"):
            self.forget_ready(path.rsplit("/", 1)[-1])
        elif path == "/system/functions" and self.command in ("PUT", "DELETE"):
            with self.ready_lock:
                self.ready_cache.clear()
        target = self.config.provider_url + path.lstrip("/") + (f"?{query}" if query else "")
        headers = [(k, v) for k, v in doublelib.forwardable_headers(self.headers) if k.lower() != "authorization"]
        try:
            status, resp_headers, data = doublelib.http_request(
                target, self.command, body, headers + self.provider_headers(), self.config.upstream_timeout
            )
        except doublelib.UpstreamError as exc:
            self.reply(502, f"provider error: {exc}\n")
            return
        self.reply(status, data, None, doublelib.response_headers(resp_headers))

    def handle_list(self):
        try:
            status, functions = self.provider("GET", "system/functions")
        except doublelib.UpstreamError as exc:
            self.reply(502, f"provider error: {exc}\n")
            return
        if status != 200 or not isinstance(functions, list):
            self.reply(status if status != 200 else 502, f"provider answered {status}: {functions}\n")
            return
        for function in functions:
            function["invocationCount"] = self.metrics.count(function.get("name"))
        self.reply_json(200, functions)

    def handle_alert(self, body):
        if self.command != "POST":
            self.reply(405, "method not allowed\n")
            return
        try:
            request = json.loads(body or b"{}")
            alerts = request.get("alerts") or []
        except (ValueError, AttributeError):
            self.reply(400, "alert body is not an Alertmanager webhook JSON document\n")
            return
        results, failed = [], False
        for alert in alerts:
            name = (alert.get("labels") or {}).get("function_name")
            if not name:
                continue
            status = alert.get("status") or request.get("status", "")
            try:
                code, info = self.provider("GET", f"system/function/{name}")
                if code != 200 or not isinstance(info, dict):
                    raise doublelib.UpstreamError(f"GET /system/function/{name} answered {code}")
                labels = info.get("labels") or {}
                self.forget_ready(name)
                wanted = calculate_replicas(
                    status,
                    int(info.get("replicas") or 0),
                    _label_int(labels, SCALE_MAX, 20),
                    _label_int(labels, SCALE_MIN, 1),
                    _label_int(labels, SCALE_FACTOR, 20),
                )
                code, _reply = self.provider(
                    "POST", f"system/scale-function/{name}", {"serviceName": name, "replicas": wanted}
                )
                if code >= 300:
                    raise doublelib.UpstreamError(f"scale-function/{name} answered {code}")
                results.append(f"{name}: {status} -> {wanted} replicas")
            except doublelib.UpstreamError as exc:
                failed = True
                results.append(f"{name}: {exc}")
        doublelib.log(COMPONENT, "alert: " + "; ".join(results))
        self.reply(500 if failed else 200, "\n".join(results) + "\n")

    def handle_metrics(self):
        replicas = {}
        try:
            status, functions = self.provider("GET", "system/functions")
            if status == 200 and isinstance(functions, list):
                replicas = {f.get("name"): f.get("replicas", 0) for f in functions}
        except doublelib.UpstreamError:
            pass
        self.reply(200, self.metrics.render(replicas), "text/plain; version=0.0.4; charset=utf-8")

    # -- invocations ---------------------------------------------------------------------------------
    def ensure_ready(self, name):
        """scale_from_zero: scale a function at zero replicas to its minimum and wait for a replica."""
        with self.ready_lock:
            if time.monotonic() - self.ready_cache.get(name, -1e9) < 5.0:
                return None
        deadline = time.monotonic() + self.config.upstream_timeout
        scaled = False
        while True:
            code, info = self.provider("GET", f"system/function/{name}")
            if code == 404:
                return (404, f"function {name} not found\n")
            if code != 200 or not isinstance(info, dict):
                return (502, f"provider answered {code} for function {name}\n")
            if int(info.get("availableReplicas") or 0) > 0:
                with self.ready_lock:
                    self.ready_cache[name] = time.monotonic()
                return None
            if not scaled and int(info.get("replicas") or 0) == 0:
                minimum = max(1, _label_int(info.get("labels"), SCALE_MIN, 1))
                code, _reply = self.provider(
                    "POST", f"system/scale-function/{name}", {"serviceName": name, "replicas": minimum}
                )
                if code >= 300:
                    return (502, f"scaling {name} from zero failed: provider answered {code}\n")
                doublelib.log(COMPONENT, f"scaled {name} from zero to {minimum}")
                scaled = True
            if time.monotonic() > deadline:
                return (504, f"function {name} has no available replica after {self.config.upstream_timeout}s\n")
            time.sleep(0.1)

    def handle_invoke(self, rest, query, body):
        name, slash, subpath = rest.partition("/")
        if not name:
            self.reply(404, "function name missing\n")
            return
        start = time.monotonic()
        call_id = self.headers.get("X-Call-Id") or str(uuid.uuid4())
        if self.config.scale_from_zero:
            try:
                problem = self.ensure_ready(name)
            except doublelib.UpstreamError as exc:
                problem = (502, f"provider error: {exc}\n")
            if problem:
                self.metrics.observe(name, problem[0], time.monotonic() - start)
                self.reply(problem[0], problem[1], headers=[("X-Call-Id", call_id)])
                return
        suffix = slash + subpath + (f"?{query}" if query else "")
        if self.config.direct_functions:
            target = f"http://{name}{self.config.direct_suffix}:8080/{suffix.lstrip('/')}"
        else:
            target = f"{self.config.provider_url}function/{name}{suffix}"
        headers = [(k, v) for k, v in doublelib.forwardable_headers(self.headers) if k.lower() != "x-call-id"]
        headers += [("X-Call-Id", call_id), ("X-Start-Time", str(time.time_ns()))]
        forwarded = self.headers.get("X-Forwarded-For")
        client = self.client_address[0]
        headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
        headers.append(("X-Forwarded-For", f"{forwarded}, {client}" if forwarded else client))
        try:
            status, resp_headers, data = doublelib.http_request(
                target, self.command, body, headers, self.config.upstream_timeout
            )
        except doublelib.UpstreamError as exc:
            doublelib.log(COMPONENT, f"invoke {name}: {exc}")
            self.forget_ready(name)
            self.metrics.observe(name, 502, time.monotonic() - start)
            self.reply(502, f"cannot reach function {name}: {exc}\n", headers=[("X-Call-Id", call_id)])
            return
        duration = time.monotonic() - start
        self.metrics.observe(name, status, duration)
        out = doublelib.response_headers(resp_headers)
        out = [(k, v) for k, v in out if k.lower() not in ("x-duration-seconds", "x-call-id")]
        out += [("X-Call-Id", call_id), ("X-Duration-Seconds", f"{duration:.6f}")]
        self.reply(status, data, None, out)

    def handle_async(self, rest, query, body):
        name, slash, subpath = rest.partition("/")
        if not name:
            self.reply(404, "function name missing\n")
            return
        if self.command != "POST":
            self.reply(405, "async invocations must use POST\n")
            return
        if not self.config.nats_address:
            self.reply(501, "asynchronous invocation is not configured: set faas_nats_address\n")
            return
        call_id = self.headers.get("X-Call-Id") or str(uuid.uuid4())
        headers = {}
        for key, value in doublelib.forwardable_headers(self.headers):
            headers.setdefault(key, []).append(value)
        headers["X-Call-Id"] = [call_id]
        headers["X-Start-Time"] = [str(time.time_ns())]
        message = {
            "function": name,
            "method": "POST",
            "path": slash + subpath,
            "query": query,
            "headers": headers,
            "body": base64.b64encode(body).decode(),
            "callback_url": self.headers.get("X-Callback-Url", ""),
            "call_id": call_id,
        }
        url = f"http://{self.config.nats_address}:{self.config.nats_port}/channels/{self.config.nats_channel}/messages"
        try:
            status, _headers, data = doublelib.http_request(
                url, "POST", json.dumps(message).encode(), [("Content-Type", "application/json")], 5.0
            )
        except doublelib.UpstreamError as exc:
            self.reply(500, f"cannot queue request: {exc}\n")
            return
        if status != 201:
            self.reply(500, f"cannot queue request: NATS double answered {status}: {data!r}\n")
            return
        doublelib.log(COMPONENT, f"queued async request {call_id} for {name}")
        self.reply(202, b"", headers=[("X-Call-Id", call_id)])


def main():
    config = Config(os.environ)
    GatewayHandler.config = config
    GatewayHandler.metrics = Metrics()
    GatewayHandler.timeout = max(config.read_timeout, config.write_timeout, config.upstream_timeout) + 1
    metrics_port = doublelib.env_int("metrics_port", 8082)
    doublelib.serve(GatewayHandler, 8080, extra_ports=(metrics_port,) if metrics_port >= 0 else ())


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main)
