# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of ghcr.io/openfaas/faas-swarm:0.9.0 (OpenFaaS's Docker Swarm provider), which cannot be pulled on
# the test rig. Written for onmetal.faas's tests; no OpenFaaS code is used. Needs python3-docker and the Docker
# socket of a Swarm manager (/var/run/docker.sock, or DOCKER_HOST).
# Upstream = openfaas/faas-swarm tag 0.9.0 with its vendored github.com/openfaas/faas-provider ("fp/" below stands
# for vendor/github.com/openfaas/faas-provider/). Every imitated behaviour cites its line; the conformance table in
# docs/test-doubles.md lists them with the tests that hold this double to them. In short, on REAL Swarm services:
#   GET    /system/functions            name, image, replicas, availableReplicas, envProcess, labels, annotations
#                                       (handlers/reader.go:38-74)
#   POST   /system/functions            202; Docker's error as 400 "Deployment error: ..." (an existing name too)
#   PUT    /system/functions            202; replicas RESET to com.openfaas.scale.min (handlers/update.go:172-174)
#   DELETE /system/functions            {"functionName"} -> 202, 404 "No such service found: <name>."
#   GET    /system/function/<name>      availableReplicas = up-to-date running tasks; 404 with no body
#   POST   /system/scale-function/<name> 202; Docker's error as 500
#   /system/secrets                     secrets labelled com.openfaas.owner=openfaas
#   ANY    /function/<name>[/<path>]    proxied once (no retry) to tasks.<name> (dnsrr=true) or <name>; the reply's
#                                       Content-Type is the REQUEST's when it has one (fp/proxy/proxy.go:176,228)
# CPU values are parsed as whole nano-CPUs; anything else is dropped with one log line (handlers/deploy.go:260-298).
"""OpenFaaS faas-swarm provider test double."""

import json
import re
import socket
import threading
import time
from urllib.parse import urlsplit

import doublelib

try:
    import docker
    from docker import types as dtypes
    from docker.errors import APIError, NotFound
except ImportError:  # only the image has python3-docker; unit tests import the pure helpers
    docker = dtypes = None
    APIError = NotFound = Exception
try:
    from requests.exceptions import RequestException
    from urllib3.util.retry import Retry
except ImportError:
    RequestException, Retry = OSError, None

COMPONENT = "faas-swarm"
ANNOTATION_PREFIX = "com.openfaas.annotations."  # handlers/deploy.go:28
SCALE_MIN = "com.openfaas.scale.min"
# gorilla/mux route variable of fp/serve.go:17,61-73: names of letters, digits, '-', '_' and '.'.
_NAME = re.compile(r"^[-a-zA-Z_0-9.]+$")
# docker/go-units size.go:34 (RAMInBytes, binary multiples), used by handlers/deploy.go:256-258.
_MEMORY = re.compile(r"^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
MAX_RESTARTS = 5  # main.go:38
RESTART_DELAY_NS = 5_000_000_000  # main.go:41
LINUX_ONLY = ["node.platform.os == linux"]  # handlers/deploy.go:30, used when no constraints are given (126-130)
GO_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # net/http request.go isReplayable
PROXY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # fp/proxy/proxy.go:73-84, others 405


class RequestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def parse_memory(value):
    """units.RAMInBytes: '128m', '128Mi', '1G', '512k', '1048576' -> bytes; None when unparseable."""
    match = _MEMORY.match(str(value))
    if not match:
        return None
    unit = (match.group(3) or "").lower()
    return int(float(match.group(1)) * (1024 ** (" kmgtp".index(unit)) if unit else 1))


def parse_cpu(value):
    """handlers/deploy.go:260-267: strconv.ParseInt(value, 10, 64) -> nano CPUs; None when not an integer."""
    text = str(value)
    if not re.fullmatch(r"[+-]?\d+", text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def build_resources(request, logger):
    """handlers/deploy.go:269-336: values that do not parse are dropped with one log line each."""
    out = {}
    # The log lines print the Go error's TYPE (%T), not its message (deploy.go:283,293,312,322).
    for section, key, what in (("limits", "limits", "limit"), ("requests", "reservations", "reservations")):
        given = request.get(section)
        if not isinstance(given, dict):
            continue
        values = {}
        if given.get("memory"):
            parsed = parse_memory(given["memory"])
            if parsed is None:
                logger(f"Error parsing memory {what}: *errors.errorString")
            else:
                values["memory"] = parsed
        if given.get("cpu"):
            parsed = parse_cpu(given["cpu"])
            if parsed is None:
                logger(f"Error parsing cpu {what}: *strconv.NumError")
            else:
                values["cpu"] = parsed
        if values:
            out[key] = values
    return out


def service_labels(request):
    """handlers/deploy.go:353-377: function labels, then the request's labels, then annotations (prefixed)."""
    labels = {"com.openfaas.function": request["service"], "function": "true"}
    labels.update({str(k): str(v) for k, v in (request.get("labels") or {}).items()})
    for key, value in (request.get("annotations") or {}).items():
        name = ANNOTATION_PREFIX + str(key)
        if name in labels:
            raise RequestError(400, f"Keys {key} can not be used as a labels as is clashes with annotations")
        labels[name] = str(value)
    return labels


def min_replicas(labels):
    """handlers/deploy.go:338-351: label com.openfaas.scale.min or 1; a value Atoi rejects gives 0 (upstream bug)."""
    if SCALE_MIN not in labels:
        return 1
    value = str(labels[SCALE_MIN])
    return int(value) if re.fullmatch(r"[+-]?\d+", value) and int(value) >= 0 else 0


def validate_request(request):
    if not isinstance(request, dict) or not isinstance(request.get("service"), str):
        raise RequestError(400, "")  # handlers/deploy.go:39-44: bad JSON -> 400, no body
    return request["service"]


def function_record(service, available):
    """handlers/reader.go:51-70 + replica_reader.go:331-338 (FunctionStatus of fp/types/model.go:61-92)."""
    spec = service["Spec"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    env_process = ""
    for item in container.get("Env") or []:
        if "fprocess=" in item:  # reader.go:76-85 (Contains, then slices the prefix off: upstream quirk)
            env_process = item[len("fprocess=") :]
    labels, annotations = None, None
    for key, value in (spec.get("Labels") or {}).items():
        if key.startswith(ANNOTATION_PREFIX):
            annotations = annotations or {}
            annotations[key[len(ANNOTATION_PREFIX) :]] = value
        else:
            labels = labels or {}
            labels[key] = value
    return {
        "name": spec["Name"],
        "image": container.get("Image", ""),
        "invocationCount": 0,
        "replicas": (spec.get("Mode", {}).get("Replicated") or {}).get("Replicas", 0),
        "envProcess": env_process,
        "availableReplicas": available,
        "labels": labels,
        "annotations": annotations,
    }


def is_function(service):
    """reader.go:53 / delete.go:253: a service is a function when its ContainerSpec has a 'function' label."""
    return bool(
        ((service["Spec"].get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Labels", {}).get("function")
    )


def content_type(request_headers, response_headers):
    """fp/proxy/proxy.go:176,227-240: getContentType is called with (response, request) but declared
    (request, proxyResponse), so the REQUEST's Content-Type wins, then the function's, then text/plain."""
    request_type = request_headers.get("Content-Type") or ""
    response_type = next((v for k, v in response_headers if k.lower() == "content-type"), "")
    return request_type or response_type or "text/plain"


class Swarm:
    """The Docker calls; one lock because the SDK's session is shared between request threads."""

    def __init__(self, client, dnsrr):
        self.api = client.api
        self.dnsrr = dnsrr
        self.lock = threading.Lock()

    def _functions(self):
        # readServices lists every service and keeps functions (reader.go:38-74).
        return [s for s in self.api.services() if is_function(s)]

    def _available(self, name):
        # replica_reader.go:64-84: tasks filtered _up-to-date=true, desired-state running, state running.
        tasks = self.api.tasks(filters={"service": name, "desired-state": "running", "_up-to-date": "true"})
        return sum(1 for t in tasks if t.get("Status", {}).get("State") == "running")

    def list(self):
        with self.lock:
            return [function_record(s, 0) for s in self._functions()]  # reader.go:62: no availableReplicas

    def get(self, name):
        with self.lock:
            found = [s for s in self._functions() if s["Spec"]["Name"] == name]
            if not found:
                raise RequestError(404, "")  # replica_reader.go:43-46
            try:
                available = self._available(name)
            except APIError as exc:  # replica_reader.go:48-53: "Fail-over as 0"
                doublelib.log(COMPONENT, f"getAvailableReplicas for: {name} failed {exc}")
                available = 0
            return function_record(found[0], available)

    def resolve(self, name):
        """handlers/proxy.go:59-106: DNS of tasks.<name> (dnsrr) or the service list (by name)."""
        if self.dnsrr:
            try:
                infos = socket.getaddrinfo(f"tasks.{name}", None, proto=socket.IPPROTO_TCP)
            except OSError as exc:
                raise LookupError(f"lookup tasks.{name}: {exc}") from None
            addresses = [info[4][0] for info in infos]
            if not addresses:
                raise LookupError(f"could not resolve '{name}' using dnsrr")
            return addresses[int(time.time()) % len(addresses)]  # proxy.go:101,108-111: seeded by the second
        with self.lock:
            if not self.api.services(filters={"name": name}):
                raise LookupError(f"could not resolve: {name}")
        return name

    def _secrets(self, names):
        # handlers/secrets.go makeSecretsArray: each name must exist; mounted under its own name.
        refs = []
        for secret_name in names or []:
            found = [s for s in self.api.secrets(filters={"name": secret_name}) if s["Spec"]["Name"] == secret_name]
            if not found:
                raise RequestError(400, f"Deployment error: unable to find secret: {secret_name}")
            refs.append(dtypes.SecretReference(found[0]["ID"], secret_name, filename=secret_name))
        return refs

    def _network(self):
        # deploy.go:67-74,104-121: the first network labelled openfaas=true (env network_name is not read).
        networks = self.api.networks(filters={"label": "openfaas=true"})
        return networks[0]["Name"] if networks else ""

    def _spec(self, request, update=False):
        labels = service_labels(request)
        env = [f"fprocess={request['envProcess']}"] if request.get("envProcess") else []
        env += [f"{k}={v}" for k, v in (request.get("envVars") or {}).items()]  # deploy.go:195-205
        res = build_resources(request, lambda line: doublelib.log(COMPONENT, line))
        resources = None
        if request.get("limits") is not None or request.get("requests") is not None:
            limits, reservations = res.get("limits", {}), res.get("reservations", {})
            resources = dtypes.Resources(
                cpu_limit=limits.get("cpu"),
                mem_limit=limits.get("memory"),
                cpu_reservation=reservations.get("cpu"),
                mem_reservation=reservations.get("memory"),
            )
        container_labels = dict(labels)
        if update:  # update.go:128: only an update stamps com.openfaas.uid, on the container labels
            container_labels["com.openfaas.uid"] = str(time.time_ns() % 1_000_000_000)
        read_only = bool(request.get("readOnlyRootFilesystem"))
        container = dtypes.ContainerSpec(
            request.get("image", ""),
            env=env or None,
            labels=container_labels,
            secrets=self._secrets(request.get("secrets")),
            read_only=read_only,
            mounts=[dtypes.Mount("/tmp", None, type="tmpfs")] if read_only else None,  # deploy.go:176-183
        )
        task = dtypes.TaskTemplate(
            container,
            resources=resources,
            restart_policy=dtypes.RestartPolicy(condition="any", delay=RESTART_DELAY_NS, max_attempts=MAX_RESTARTS),
            placement=dtypes.Placement(constraints=list(request.get("constraints") or LINUX_ONLY)),
            networks=[request.get("network") or self._network()],
        )
        # No endpoint_spec: faas-swarm 0.9.0 never sets one, so functions get Swarm's default (VIP) whatever
        # dnsrr says (deploy.go:146-174; dnsrr only changes how the proxy resolves, proxy.go:61-65).
        spec = {"task_template": task, "name": request["service"], "labels": labels}
        spec["mode"] = dtypes.ServiceMode("replicated", replicas=min_replicas(labels))
        return spec

    def create(self, request):
        validate_request(request)
        with self.lock:
            spec = self._spec(request)
            try:
                self.api.create_service(**spec)
            except APIError as exc:  # deploy.go:86-94: Docker's error (an existing name too) -> 400
                raise RequestError(400, f"Deployment error: {exc.explanation or exc}") from None

    def update(self, request):
        name = validate_request(request)
        with self.lock:
            try:
                service = self.api.inspect_service(name, insert_defaults=True)
            except APIError as exc:  # update.go:42-48
                raise RequestError(404, str(exc.explanation or exc)) from None
            spec = self._spec(request, update=True)
            # update.go:88,157-164: start-first, parallelism 1, rollback on failure, rollback pauses on failure.
            spec["update_config"] = dtypes.UpdateConfig(parallelism=1, failure_action="rollback", order="start-first")
            spec["rollback_config"] = dtypes.RollbackConfig(failure_action="pause")
            if not (service["Spec"].get("Mode") or {}).get("Replicated"):
                spec.pop("mode")
            try:
                self.api.update_service(service["ID"], service["Version"]["Index"], fetch_current_spec=True, **spec)
            except APIError as exc:  # update.go:90-97
                raise RequestError(400, f"Update error: {exc.explanation or exc}") from None

    def delete(self, name):
        with self.lock:
            ids = [s["ID"] for s in self._functions() if s["Spec"]["Name"] == name]
            if not ids:
                raise RequestError(404, f"No such service found: {name}.")  # delete.go:260-264
            try:
                for service_id in ids:
                    self.api.remove_service(service_id)
            except APIError as exc:  # delete.go:274-278: 500, no body
                doublelib.log(COMPONENT, f"Error(s) removing service: {name}: {exc}")
                raise RequestError(500, "") from None

    def scale(self, name, replicas):
        with self.lock:
            try:  # replicas_updater.go:71-89 (SetReplicas): any Docker error -> 500 with its text
                service = self.api.inspect_service(name, insert_defaults=True)
                self.api.update_service(
                    service["ID"],
                    service["Version"]["Index"],
                    mode=dtypes.ServiceMode("replicated", replicas=replicas),
                    fetch_current_spec=True,
                )
            except APIError as exc:
                raise RequestError(500, str(exc.explanation or exc)) from None

    def list_secrets(self):
        with self.lock:  # secrets.go:80-95,121-147: label com.openfaas.owner=openfaas; values are never returned
            return [
                {"name": s["Spec"]["Name"]}
                for s in self.api.secrets()
                if (s["Spec"].get("Labels") or {}).get("com.openfaas.owner") == "openfaas"
            ]

    def create_secret(self, name, value):
        with self.lock:  # secrets.go:149-177: 201, Docker errors 500
            try:
                self.api.create_secret(name, value.encode(), labels={"com.openfaas.owner": "openfaas"})
            except APIError as exc:
                raise RequestError(500, "") from exc

    def delete_secret(self, name):
        with self.lock:
            found = [s for s in self.api.secrets(filters={"name": name}) if s["Spec"]["Name"] == name]
            if not found:
                raise RequestError(404, "")
            if (found[0]["Spec"].get("Labels") or {}).get("com.openfaas.owner") != "openfaas":
                raise RequestError(500, "")
            self.api.remove_secret(found[0]["ID"])


class ProviderHandler(doublelib.Handler):
    component = COMPONENT
    swarm = None
    credentials = None
    proxy_timeout = 10.0  # fp/proxy/proxy.go:90-92: the proxy client's timeout is read_timeout

    def dispatch(self):
        url = urlsplit(self.path)
        path = url.path
        body = self.read_body()
        if path == "/healthz" and self.command == "GET":
            self.reply(200, "")  # handlers/health.go:7-11, fp/serve.go:75-77
            return
        if path.startswith("/function/"):
            self.invoke(path[len("/function/") :], url.query, body)
            return
        if self.credentials and not doublelib.credentials_match(self.headers.get("Authorization"), *self.credentials):
            # fp/auth/basic_auth.go:11-21 (fp/serve.go:34-53 wraps every /system handler)
            self.reply(401, "invalid credentials", headers=[("WWW-Authenticate", 'Basic realm="Restricted"')])
            return
        try:
            self.system(path, body)
        except RequestError as exc:
            self.reply(exc.status, str(exc))
        except (APIError, NotFound, RequestException) as exc:
            # replica_reader.go:28-33 and the other handlers: a failed Docker call is a 500 with its error text
            # (a connection to the engine that broke too: the Go client's error, not a dropped reply).
            doublelib.log(COMPONENT, f"{self.command} {path}: Docker error: {exc}")
            self.reply(500, str(exc))

    def json_body(self, body, message=""):
        try:
            return json.loads(body or b"null")
        except ValueError:
            raise RequestError(400, message) from None

    def system(self, path, body):
        method = self.command
        if path == "/system/functions" and method in ("GET", "POST", "PUT", "DELETE"):  # fp/serve.go:56-59
            if method == "GET":
                self.reply_json(200, self.swarm.list())
            elif method == "POST":
                self.swarm.create(self.json_body(body))
                self.reply(202, "")  # deploy.go:100
            elif method == "PUT":
                self.swarm.update(self.json_body(body))
                self.reply(202, "")  # update.go:103
            else:
                request = self.json_body(body)
                name = request.get("functionName") if isinstance(request, dict) else None
                if not isinstance(name, str) or not name:
                    raise RequestError(400, "")  # delete.go:232-236
                self.swarm.delete(name)
                self.reply(202, "")  # delete.go:279
        elif path.startswith("/system/function/") and method == "GET":
            self.reply_json(200, self.swarm.get(path[len("/system/function/") :]))
        elif path.startswith("/system/scale-function/") and method == "POST":
            msg = "Cannot parse request. Please pass valid JSON."  # replicas_updater.go:40-49
            request = self.json_body(body, msg) if body else {}
            replicas = request.get("replicas", 0) if isinstance(request, dict) else None
            if not isinstance(replicas, int) or replicas < 0:  # a uint64 field: negatives do not unmarshal
                raise RequestError(400, msg)
            self.swarm.scale(path[len("/system/scale-function/") :], replicas)
            self.reply(202, "")  # replicas_updater.go:62
        elif path == "/system/secrets" and method in ("GET", "POST", "PUT", "DELETE"):
            self.secrets(method, body)
        elif path == "/system/info" and method == "GET":
            self.reply_json(
                200,
                {"provider": "faas-swarm", "orchestration": "swarm", "version": {"release": "0.9.0", "sha": "double"}},
            )
        else:
            self.reply(404, "404 page not found\n")  # gorilla/mux NotFoundHandler

    def secrets(self, method, body):
        if method == "GET":
            self.reply_json(200, self.swarm.list_secrets())
            return
        if method == "PUT":
            raise RequestError(405, "")  # secrets.go:52-55
        request = self.json_body(body)
        name = request.get("name") if isinstance(request, dict) else None
        if not isinstance(name, str):
            raise RequestError(400, "")
        if method == "POST":
            self.swarm.create_secret(name, str(request.get("value", "")))
            self.reply(201, "")  # secrets.go:176
        else:
            self.swarm.delete_secret(name)
            self.reply(200, "")

    def invoke(self, rest, query, body):
        """fp/proxy/proxy.go:61-180, one attempt: 404 when unresolvable, 500 when unreachable."""
        name, _sep, subpath = rest.partition("/")
        if self.command not in PROXY_METHODS:
            self.reply(405, "")  # proxy.go:82-84
            return
        if not _NAME.match(name):
            self.reply(404, "404 page not found\n")  # no mux route matches
            return
        try:
            host = self.swarm.resolve(name)
        except LookupError as exc:  # proxy.go:143-149
            doublelib.log(COMPONENT, f"resolver error: cannot find {name}: {exc}")
            self.reply(404, f"Cannot find service: {name}.\n")
            return
        host = f"[{host}]:8080" if ":" in host else f"{host}:8080"  # proxy.go:186-189: the watchdog port
        target = f"http://{host}/{subpath}" + (f"?{query}" if query else "")  # proxy.go:191-196
        headers = doublelib.forwardable_headers(self.headers)  # proxy.go:202: every request header
        names = {k.lower() for k, _v in headers}
        if "x-forwarded-host" not in names and self.headers.get("Host"):  # proxy.go:204-206
            headers.append(("X-Forwarded-Host", self.headers["Host"]))
        if "x-forwarded-for" not in names:  # proxy.go:207-209: RemoteAddr is host:port
            headers.append(("X-Forwarded-For", f"{self.client_address[0]}:{self.client_address[1]}"))
        start = time.monotonic()
        try:
            status, resp_headers, data = doublelib.http_request(target, self.command, body, headers, self.proxy_timeout)
        except doublelib.UpstreamError as exc:  # proxy.go:164-169: no retry
            doublelib.log(COMPONENT, f"error with proxy request to: {target}, {exc}")
            self.reply(500, f"Can't reach service for: {name}.\n")
            return
        doublelib.log(COMPONENT, f"{name} took {time.monotonic() - start:f} seconds")
        out = [(k, v) for k, v in doublelib.response_headers(resp_headers) if k.lower() != "content-type"]
        out.append(("Content-Type", content_type(self.headers, resp_headers)))
        self.reply(status, data, None, out)


def connect_docker():
    """main.go:26-34: the Docker client must answer at start, else the provider exits (log.Fatalf)."""
    if docker is None:
        raise doublelib.ConfigError("python3-docker is not installed; the faas-swarm double needs it")
    try:
        client = docker.from_env(timeout=30)
        if Retry is not None:
            # Go's http.Transport (the upstream Docker client's) sends a GET again on a new connection when a kept-alive
            # one turns out closed before any answer; urllib3 with the SDK's default (no retry) raises instead.
            for adapter in client.api.adapters.values():
                adapter.max_retries = Retry(
                    total=1,
                    connect=1,
                    read=1,
                    status=0,
                    redirect=0,
                    allowed_methods=GO_REPLAYABLE,
                    raise_on_status=False,
                )
        version = client.version()
    except docker.errors.DockerException as exc:
        doublelib.fatal(COMPONENT, f"Error with Docker server: {exc}")
    doublelib.log(COMPONENT, f"Docker API version: {version.get('ApiVersion')}, {version.get('Version')}")
    return client


def main():
    swarm = Swarm(connect_docker(), doublelib.env_bool("dnsrr"))  # types/read_config.go:22
    ProviderHandler.swarm = swarm
    if doublelib.env_bool("basic_auth", False):  # fp/serve.go:34-42: unreadable secrets end the process
        mount = doublelib.env("secret_mount_path", "/run/secrets/")
        try:
            ProviderHandler.credentials = (
                doublelib.read_secret(mount, "basic-auth-user"),
                doublelib.read_secret(mount, "basic-auth-password"),
            )
        except doublelib.ConfigError as exc:
            doublelib.fatal(COMPONENT, str(exc))
    # fp/types/read_config.go:79-80: int seconds or Go durations, default 10s, bad values fall back.
    read_timeout = doublelib.go_duration_or(doublelib.env("read_timeout"), 10.0)
    write_timeout = doublelib.go_duration_or(doublelib.env("write_timeout"), 10.0)
    ProviderHandler.proxy_timeout = read_timeout
    ProviderHandler.timeout = max(read_timeout, write_timeout) + 1
    doublelib.log(COMPONENT, f"dnsrr={swarm.dnsrr} basic_auth={bool(ProviderHandler.credentials)}")
    doublelib.serve(ProviderHandler, 8080)


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main)
