# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of ghcr.io/openfaas/gateway:0.18.18 (the OpenFaaS API gateway, Swarm flavour), which cannot be
# pulled on the test rig. Written for onmetal.faas's tests; no OpenFaaS code is used.
# Upstream = openfaas/faas at 11ff356c, tree gateway/ ("gw/" below); every imitated behaviour cites its line and the
# conformance table in docs/test-doubles.md lists them with the tests that hold this double to them. In short:
#   start-up: with faas_nats_address set, NATS Streaming is connected BEFORE anything listens; failure ends the
#             process with exit 1 and the client's error (gw/main.go:151-161), e.g. "nats: no servers available".
#   ANY  /function/<name>[/<path>]  forwarded once to the provider's /function/<name>/<path> (direct_functions=false)
#             or to http://<name>[.<direct_functions_suffix>]:8080/<path>; request headers kept (X-Forwarded-Host/
#             -For only when absent), response headers and status passed through, NO X-Call-Id/X-Start-Time/
#             X-Duration-Seconds (gw/main.go:144,179: the call-id middleware is not on this route); an unreachable
#             or timed-out upstream gives 502 with an empty body (gw/handlers/forwarding_proxy.go:130-135).
#             scale_from_zero=true: gw/scaling/function_scaler.go (5 s cache, 50 ms polls, 1000 polls, then the
#             request is forwarded anyway).
#   POST /async-function/<name>[/<path>]  202, X-Call-Id in the reply only when the request had none; queued on
#             faas_nats_channel; 500 when the function cannot be looked up or the queue fails.
#   GET  /healthz   forwarded to the provider's /healthz (gw/main.go:257-258).
#   /system/*       basic auth through auth_proxy_url (the plugin; gw/handlers/external_auth.go), proxied to
#             functions_provider_url with the gateway's credentials; /system/functions GET adds invocationCount.
#   POST /system/alert  Alertmanager webhook, gw/handlers/alerthandler.go (step = ceil(max * factor / 100)).
#   :8082 /metrics, /healthz only (gw/main.go:275-296); 8080 has no /metrics.
#   upstream connections: functions, /system routes, /healthz and the external auth call share ONE keep-alive
#             client (gw/types/proxy_client.go:14-49, gw/main.go:72-75): idle connections pooled per host:port up to
#             max_idle_conns_per_host / max_idle_conns (default 1024, gw/types/readconfig.go:144-165), kept 90 s,
#             most recent reused first, none reused after "Connection: close"; new ones dialled the Go way, each
#             resolved address in turn with its share of upstream_timeout (at least 2 s), not the whole of it.
#             The plugin calls (get/set replicas, gw/plugin/external.go) open a new connection each time.
"""OpenFaaS gateway test double."""

import base64
import json
import math
import os
import re
import threading
import time
import uuid
from urllib.parse import urlsplit

import doublelib

COMPONENT = "gateway"
SCALE_MIN, SCALE_MAX, SCALE_FACTOR = "com.openfaas.scale.min", "com.openfaas.scale.max", "com.openfaas.scale.factor"
# gw/scaling/ranges.go:4-11
DEFAULT_MIN, DEFAULT_MAX, DEFAULT_FACTOR = 1, 20, 20
# gw/main.go:136-142
MAX_POLL_COUNT, SET_SCALE_RETRIES, POLL_INTERVAL, CACHE_EXPIRY = 1000, 20, 0.05, 5.0
# gw/main.go:153-154: NATS reconnect attempts and delay step
NATS_MAX_RECONNECT, NATS_RECONNECT_DELAY = 60, 2.0
_NAME = re.compile(r"^[-a-zA-Z_0-9.]+$")  # gw/main.go:24 NameExpression
# gw/handlers/forwarding_proxy.go:248-258, removed from requests sent upstream
HOP_HEADERS = ("connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te")
HOP_HEADERS += ("trailer", "transfer-encoding", "upgrade", "content-length", "host")


class Config:
    """gw/types/readconfig.go:56-180 (timeouts: whole seconds or Go durations, default 8s, bad values fall back)."""

    def __init__(self, env):
        # gw/types/readconfig.go:144-165: 1024 each unless set; not an integer (strconv.Atoi) is an error that
        # gw/main.go:29-34 turns into log.Fatalln before anything else is checked.
        self.max_idle_conns = self.idle_setting(env, "max_idle_conns")
        self.max_idle_conns_per_host = self.idle_setting(env, "max_idle_conns_per_host")
        self.provider_url = env.get("functions_provider_url", "")
        if not self.provider_url.startswith("http://"):
            # gw/main.go:39-41
            doublelib.fatal(COMPONENT, "You must provide an external provider via 'functions_provider_url' env-var.")
        if not self.provider_url.endswith("/"):
            self.provider_url += "/"
        self.direct_functions = env.get("direct_functions", "").lower() == "true"
        self.direct_suffix = env.get("direct_functions_suffix", "")
        self.namespace = env.get("function_namespace", "")
        self.nats_address = env.get("faas_nats_address", "")
        self.nats_port = doublelib.env_int("faas_nats_port", 4222)
        self.nats_channel = env.get("faas_nats_channel") or "faas-request"
        self.read_timeout = doublelib.go_duration_or(env.get("read_timeout"), 8.0)
        self.write_timeout = doublelib.go_duration_or(env.get("write_timeout"), 8.0)
        self.upstream_timeout = doublelib.go_duration_or(env.get("upstream_timeout"), 8.0)
        self.basic_auth = env.get("basic_auth", "").lower() == "true"
        self.secret_mount_path = env.get("secret_mount_path") or "/var/openfaas/secrets/"
        self.auth_proxy_url = env.get("auth_proxy_url", "")
        self.auth_pass_body = env.get("auth_proxy_pass_body", "").lower() == "true"
        self.scale_from_zero = env.get("scale_from_zero", "").lower() == "true"
        self.credentials = None
        if self.basic_auth:
            try:
                self.credentials = (
                    doublelib.read_secret(self.secret_mount_path, "basic-auth-user"),
                    doublelib.read_secret(self.secret_mount_path, "basic-auth-password"),
                )
            except doublelib.ConfigError as exc:
                doublelib.fatal(COMPONENT, str(exc), code=2)  # gw/main.go:53-57: log.Panicf

    @staticmethod
    def idle_setting(env, name):
        raw = env.get(name, "")
        if not raw:
            return 1024
        if not re.fullmatch(r"[+-]?\d+", raw) or not -(2**63) <= int(raw) < 2**63:
            doublelib.fatal(COMPONENT, f"invalid value for {name}: {raw}")
        return int(raw)

    def function_base(self, name):
        """gw/handlers/forwarding_proxy.go:168-206: the provider, or the function as host (direct_functions)."""
        if not self.direct_functions:
            return self.provider_url.rstrip("/")
        suffix = ""
        if self.direct_suffix:
            if "." in name and not name.endswith("."):
                suffix = self.direct_suffix.replace(self.namespace, "")
            else:
                suffix = "." + self.direct_suffix
        return f"http://{name}{suffix}:8080"


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
    """gw/handlers/alerthandler.go:99-116: step = ceil(max / 100 * factor)."""
    step = int(math.ceil(maximum / 100 * factor))
    if status == "firing" and step > 0:
        return min(current + step, maximum)
    return minimum


def _label_uint(labels, key, default):
    """gw/plugin/external.go:168-183: Atoi, else the default; negatives wrap like Go's uint64 conversion."""
    raw = str((labels or {}).get(key, ""))
    if not re.fullmatch(r"[+-]?\d+", raw):
        return default
    return int(raw) % 2**64


def replicas_query(labels, function):
    """gw/plugin/external.go:96-123: replicas, min, max, factor (factor outside 0..100 falls back to 20)."""
    factor = _label_uint(labels, SCALE_FACTOR, DEFAULT_FACTOR)
    return {
        "replicas": int(function.get("replicas") or 0),
        "available": int(function.get("availableReplicas") or 0),
        "min": _label_uint(labels, SCALE_MIN, DEFAULT_MIN),
        "max": _label_uint(labels, SCALE_MAX, DEFAULT_MAX),
        "factor": factor if 0 <= factor <= 100 else DEFAULT_FACTOR,
        "annotations": function.get("annotations") or {},
    }


class QueryError(Exception):
    pass


class GatewayHandler(doublelib.Handler):
    component = COMPONENT
    config = None
    metrics = None
    nats = None
    # gw/main.go:72-75 and gw/types/proxy_client.go:14-49: ONE keep-alive client (the Go http.DefaultClient with a
    # pooled Transport) for functions, /system routes, /healthz and, being http.DefaultClient, the external auth
    # handler (gw/handlers/external_auth.go:24). Built in main(); the scaler's plugin calls do not use it.
    transport = None
    scale_cache = {}  # gw/scaling/function_cache.go: name -> (time, query)
    queue_cache = {}  # a second cache of the same kind for async lookups (gw/main.go:163-164)
    cache_lock = threading.Lock()

    # -- helpers ---------------------------------------------------------------------------------
    def provider_headers(self):
        if self.config.credentials:  # gw/pkg/middleware/basic_auth_injector.go
            token = base64.b64encode(":".join(self.config.credentials).encode()).decode()
            return [("Authorization", f"Basic {token}")]
        return []

    def get_replicas(self, name):
        """gw/plugin/external.go:55-124 (3 s dial timeout, no keep-alive); raises QueryError as upstream errs."""
        url = f"{self.config.provider_url}system/function/{name}?namespace={self.config.namespace}"
        try:
            status, _headers, data = doublelib.http_request(url, "GET", b"", self.provider_headers(), 3.0)
        except doublelib.UpstreamError as exc:
            raise QueryError(str(exc)) from None
        if status != 200:
            raise QueryError(f"server returned non-200 status code ({status}) for function, {name}")
        try:
            function = json.loads(data)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
        return replicas_query(function.get("labels"), function)

    def set_replicas(self, name, count):
        """gw/plugin/external.go:127-166; a provider that cannot be reached makes upstream panic (nil response):
        the connection is closed without an answer."""
        url = f"{self.config.provider_url}system/scale-function/{name}?namespace={self.config.namespace}"
        body = json.dumps({"serviceName": name, "replicas": count}).encode()
        try:
            status, _h, _d = doublelib.http_request(url, "POST", body, self.provider_headers(), 3.0)
        except doublelib.UpstreamError as exc:
            doublelib.log(COMPONENT, f"{url} {exc}; http: panic serving {self.client_address[0]}")
            raise ConnectionAbortedError(str(exc)) from None
        if status not in (200, 202):
            return f"error scaling HTTP code {status}, {url}"
        return None

    def cached(self, cache, name):
        with self.cache_lock:
            hit = cache.get(name)
        if hit and time.monotonic() - hit[0] < CACHE_EXPIRY:
            return hit[1]
        return None

    def remember(self, cache, name, query):
        with self.cache_lock:
            cache[name] = (time.monotonic(), query)

    def authorized(self, body):
        """gw/handlers/external_auth.go:12-46: GET auth_proxy_url with the request's headers; 200 lets the call
        through, any other answer is passed back; an unreachable plugin (or none configured) is 500."""
        cfg = self.config
        if not cfg.credentials:
            return True
        headers = doublelib.forwardable_headers(self.headers)
        data = body if cfg.auth_pass_body else b""
        try:
            status, resp_headers, resp_body = self.transport.request(
                cfg.auth_proxy_url, "GET", data, headers, cfg.upstream_timeout
            )
        except doublelib.UpstreamError as exc:
            doublelib.log(COMPONENT, f"ExternalAuthHandler: {exc}")
            self.reply(500, f"{exc}\n")
            return False
        if status == 200:
            return True
        self.reply(status, resp_body, None, doublelib.response_headers(resp_headers))
        return False

    def forward(self, base, path, query, body, auth=False):
        """gw/handlers/forwarding_proxy.go:78-152: one attempt within upstream_timeout; 502 with no body."""
        url = base + path + (f"?{query}" if query else "")
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_HEADERS]
        names = {k.lower() for k, _v in headers}
        if self.headers.get("Host") and "x-forwarded-host" not in names:
            headers.append(("X-Forwarded-Host", self.headers["Host"]))
        if "x-forwarded-for" not in names:
            headers.append(("X-Forwarded-For", f"{self.client_address[0]}:{self.client_address[1]}"))
        if auth:
            headers = [(k, v) for k, v in headers if k.lower() != "authorization"] + self.provider_headers()
        try:
            # forwarding_proxy.go:127-130: proxyClient.Do on the shared pooled client (gw/main.go:72-75)
            status, resp_headers, data = self.transport.request(
                url, self.command, body, headers, self.config.upstream_timeout
            )
        except doublelib.UpstreamError as exc:
            doublelib.log(COMPONENT, f"error with upstream request to: {path}, {exc}")
            self.reply(502, b"", None)
            return 502
        self.reply(status, data, None, doublelib.response_headers(resp_headers))
        return status

    # -- routing (gw/main.go:210-260) ----------------------------------------------------------------
    def dispatch(self):
        url = urlsplit(self.path)
        path, method = url.path, self.command
        body = self.read_body()
        try:
            self.route(path, method, url.query, body)
        except ConnectionAbortedError:
            self.close_connection = True  # upstream's handler panicked: net/http drops the connection

    def route(self, path, method, query, body):
        function = re.match(r"^/function/([^/]+)(/.*)?$", path)
        asynchronous = re.match(r"^/async-function/([^/]+)(/.*)?$", path)
        if function and _NAME.match(function.group(1)):
            self.handle_invoke(function.group(1), function.group(2) or "", query, body)
        elif asynchronous and _NAME.match(asynchronous.group(1)) and self.nats and method == "POST":
            self.handle_async(asynchronous.group(1), asynchronous.group(2) or "", query, body)
        elif path == "/healthz" and method == "GET":
            self.forward(self.config.provider_url.rstrip("/"), path, query, body, auth=True)
        elif path == "/system/alert" and method == "POST":
            if self.authorized(body):
                self.handle_alert(body)
        elif path == "/system/functions" and method == "GET":
            if self.authorized(body):
                self.handle_list()
        elif self.system_route(path, method):
            if self.authorized(body):
                self.forward(self.config.provider_url.rstrip("/"), path, query, body, auth=True)
        elif path == "/" and method == "GET":
            self.reply(301, "", headers=[("Location", "/ui/")])
        elif path.startswith("/ui/") and method == "GET":
            if self.authorized(body):
                self.reply(200, "OpenFaaS gateway test double (no UI)\n")
        elif self.known_path(path):
            self.reply(405, "")  # gorilla/mux 1.7.3 (gw/Gopkg.lock): a route whose method differs answers 405
        else:
            self.reply(404, "404 page not found\n")

    def known_path(self, path):
        if re.fullmatch(r"/(async-function/[^/]+(/.*)?|healthz|system/alert|system/functions|ui/.*|)", path):
            return bool(self.nats) or not path.startswith("/async-function/")
        return any(self.system_route(path, method) for method in ("GET", "POST", "PUT", "DELETE"))

    @staticmethod
    def system_route(path, method):
        name = r"[-a-zA-Z_0-9.]+"
        routes = (
            (r"/system/info", ("GET",)),
            (rf"/system/function/{name}", ("GET",)),
            (r"/system/functions", ("POST", "PUT", "DELETE")),
            (rf"/system/scale-function/{name}", ("POST",)),
            (r"/system/secrets", ("GET", "PUT", "POST", "DELETE")),
            (r"/system/logs", ("GET",)),
            (r"/system/namespaces", ("GET",)),
        )
        return any(re.fullmatch(pattern, path) and method in methods for pattern, methods in routes)

    # -- /system ---------------------------------------------------------------------------------
    def handle_list(self):
        """The provider's list plus invocationCount (gw/metrics/add_metrics.go; upstream asks Prometheus, the
        double counts itself). Anything but a 200 list is passed through as the provider sent it."""
        url = self.config.provider_url + "system/functions"
        try:
            # gw/main.go:117,178: a forwarding proxy handler, so the shared pooled client too
            status, headers, data = self.transport.request(
                url, "GET", b"", self.provider_headers(), self.config.upstream_timeout
            )
        except doublelib.UpstreamError:
            self.reply(502, b"", None)
            return
        try:
            functions = json.loads(data) if status == 200 else None
        except ValueError:
            functions = None
        if not isinstance(functions, list):
            self.reply(status, data, None, doublelib.response_headers(headers))
            return
        for function in functions:
            function["invocationCount"] = self.metrics.count(function.get("name"))
        self.reply_json(200, functions)

    def handle_alert(self, body):
        """gw/handlers/alerthandler.go:19-97: one GetReplicas per alert; an unreadable function is skipped
        (no error, 200); no scale call when the count does not change; scale errors -> 500 "[i] <error>"."""
        try:
            request = json.loads(body)
            alerts = request.get("alerts") or []
        except (ValueError, AttributeError):
            self.reply(400, "Unable to parse alert, bad format.")
            return
        errors = []
        for alert in alerts:
            name = ((alert.get("labels") or {}).get("function_name") or "").rsplit(".", 1)[0]
            if not name:
                continue
            try:
                query = self.get_replicas(name)
            except QueryError as exc:
                doublelib.log(COMPONENT, f"alert: {name}: {exc}")
                continue
            wanted = calculate_replicas(
                alert.get("status", ""), query["replicas"], query["max"], query["min"], query["factor"]
            )
            doublelib.log(COMPONENT, f"[Scale] function={name} {query['replicas']} => {wanted}.")
            if wanted == query["replicas"]:
                continue
            error = self.set_replicas(name, wanted)
            if error:
                errors.append(error)
        if errors:
            self.reply(500, "".join(f"[{i}] {e}\n" for i, e in enumerate(errors)))
        else:
            self.reply(200, "")

    # -- invocations ---------------------------------------------------------------------------------
    def scale_from_zero(self, name):
        """gw/scaling/function_scaler.go:34-136 and gw/handlers/scaling.go:27-59. Returns None to go on."""
        cached = self.cached(self.scale_cache, name)
        if cached and cached["available"] > 0:
            return None
        try:
            query = self.get_replicas(name)
        except QueryError as exc:  # scaling.go:35-42: any lookup error is a 404
            return (404, f"error finding function {name}.{self.config.namespace}: {exc}")
        self.remember(self.scale_cache, name, query)
        if query["available"] > 0:
            return None
        minimum = query["min"] if query["min"] > 0 else 1
        error = None
        for attempt in range(SET_SCALE_RETRIES):  # function_scaler.go:66-86,140-156
            try:
                query = self.get_replicas(name)
                self.remember(self.scale_cache, name, query)
                error = None
                if query["replicas"] == 0:
                    doublelib.log(COMPONENT, f"[Scale {attempt}] function={name} 0 => {minimum} requested")
                    failed = self.set_replicas(name, minimum)
                    error = f"unable to scale function [{name}], err: {failed}" if failed else None
            except QueryError as exc:
                error = str(exc)
            if error is None:
                break
            time.sleep(POLL_INTERVAL)
        if error:
            return (500, f"error finding function {name}.{self.config.namespace}: {error}")
        start = time.monotonic()
        for _poll in range(MAX_POLL_COUNT):  # function_scaler.go:97-127
            try:
                query = self.get_replicas(name)
            except QueryError as exc:
                return (500, f"error finding function {name}.{self.config.namespace}: {exc}")
            self.remember(self.scale_cache, name, query)
            if query["available"] > 0:
                doublelib.log(COMPONENT, f"[Scale] function={name} 0 => {query['available']} successful")
                return None
            time.sleep(POLL_INTERVAL)
        # function_scaler.go:130-135: after the last poll the result says "available" and the call goes on.
        doublelib.log(COMPONENT, f"[Scale] function={name} still not ready after {time.monotonic() - start:.1f}s")
        return None

    def handle_invoke(self, name, subpath, query, body):
        start = time.monotonic()
        if self.config.scale_from_zero:
            problem = self.scale_from_zero(name)
            if problem:
                self.reply(problem[0], problem[1], None)
                return
        if self.config.direct_functions:  # FunctionPrefixTrimmingURLPathTransformer
            base, path = self.config.function_base(name), subpath
        else:  # TransparentURLPathTransformer: the whole /function/<name>/... path
            base, path = self.config.function_base(name), f"/function/{name}{subpath}"
        status = self.forward(base, path, query, body)
        self.metrics.observe(name, status, time.monotonic() - start)

    def handle_async(self, name, subpath, query, body):
        """gw/handlers/queue_proxy.go:23-75 behind the call-id middleware (gw/handlers/callid_middleware.go)."""
        reply_headers = []
        headers = {}
        for key, value in self.headers.items():
            headers.setdefault(key, []).append(value)
        if not self.headers.get("X-Call-Id"):
            call_id = str(uuid.uuid4())
            headers["X-Call-Id"] = [call_id]
            reply_headers.append(("X-Call-Id", call_id))
        stamp = str(time.time_ns())
        headers.setdefault("X-Start-Time", []).append(stamp)
        reply_headers.append(("X-Start-Time", stamp))
        annotations = self.cached(self.queue_cache, name)
        if annotations is None:
            try:
                found = self.get_replicas(name)
            except QueryError as exc:  # queue_proxy.go:45-49
                self.reply(500, f"{exc}\n", headers=reply_headers)
                return
            self.remember(self.queue_cache, name, found)
            annotations = found
        channel = (annotations.get("annotations") or {}).get("com.openfaas.queue") or self.config.nats_channel
        message = {
            "function": name,
            "method": self.command,
            "path": subpath,
            "query": query,
            "headers": headers,
            "host": self.headers.get("Host", ""),
            "body": base64.b64encode(body).decode(),
            "callback_url": self.headers.get("X-Callback-Url", ""),
        }
        try:
            self.nats.publish(channel, json.dumps(message).encode())
        except doublelib.NatsError as exc:  # queue_proxy.go:67-71
            self.reply(500, f"{exc}\n", headers=reply_headers)
            return
        self.reply(202, b"", None, reply_headers)


class MetricsHandler(doublelib.Handler):
    """gw/main.go:275-296: the metrics server on 8082 serves /metrics and /healthz only."""

    component = COMPONENT
    gateway = None

    def dispatch(self):
        self.read_body()
        path = urlsplit(self.path).path
        if path == "/metrics":
            replicas = {}
            cfg = GatewayHandler.config
            try:  # gw/metrics/exporter.go: gateway_service_count from the provider's list
                status, _h, data = doublelib.http_request(
                    cfg.provider_url + "system/functions", "GET", b"", GatewayHandler.provider_headers(self), 3.0
                )
                if status == 200:
                    replicas = {f.get("name"): f.get("replicas", 0) for f in json.loads(data)}
            except (doublelib.UpstreamError, ValueError, AttributeError):
                pass
            text = GatewayHandler.metrics.render(replicas)
            self.reply(200, text, "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/healthz":
            self.reply(200, "OK")  # gw/handlers/healthhandler.go
        else:
            self.reply(404, "404 page not found\n")


def main():
    config = Config(os.environ)
    GatewayHandler.config = config
    GatewayHandler.metrics = Metrics()
    GatewayHandler.transport = doublelib.Transport(config.max_idle_conns, config.max_idle_conns_per_host)
    GatewayHandler.timeout = max(config.read_timeout, config.write_timeout, config.upstream_timeout) + 1
    MetricsHandler.config = config  # provider_headers() reads it
    if config.nats_address:  # gw/main.go:151-161: connect first; a failure is log.Fatalln (exit 1)
        doublelib.log(COMPONENT, "Async enabled: Using NATS Streaming.")
        client_id = "faas-publisher-" + (os.uname().nodename or "gateway")
        nats = doublelib.StanConn(
            COMPONENT, config.nats_address, config.nats_port, client_id, NATS_MAX_RECONNECT, NATS_RECONNECT_DELAY
        )
        try:
            nats.connect()
        except doublelib.NatsError as exc:
            doublelib.fatal(COMPONENT, str(exc))
        nats.start_pings()
        GatewayHandler.nats = nats
    metrics_port = doublelib.env_int("metrics_port", 8082)
    doublelib.serve_pair(GatewayHandler, 8080, MetricsHandler, metrics_port)


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main)
