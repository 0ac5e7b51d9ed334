# SPDX-License-Identifier: GPL-3.0-or-later
# TEST DOUBLE of ghcr.io/openfaas/faas-swarm:0.9.0 (OpenFaaS's Docker Swarm provider), which cannot be pulled on
# the test rig. Written for onmetal.faas's tests; no OpenFaaS code is used. Needs python3-docker and the Docker
# socket of a Swarm manager (/var/run/docker.sock, or DOCKER_HOST).
# Implements the faas-provider REST API that the gateway calls, on REAL Swarm services:
#   GET    /system/functions                 list: name, image, replicas, availableReplicas (running tasks),
#                                            envProcess, labels, annotations, invocationCount (0: the gateway counts)
#   POST   /system/functions                 create a service (202); 409 when it exists
#   PUT    /system/functions                 update a service (200; keeps its replica count); 404 when unknown
#   DELETE /system/functions                 {"functionName": name} -> 200; 404 when unknown
#   GET    /system/function/<name>           one function, 404 when unknown
#   POST   /system/scale-function/<name>     {"replicas": n} -> 200
#   GET/POST/DELETE /system/secrets          Swarm secrets labelled openfaas=true
#   GET    /system/info, /healthz
#   ANY    /function/<name>[/<path>]         proxied to http://tasks.<name>:8080 (dnsrr=true) or http://<name>:8080,
#                                            connection failures retried while replicas start (function_connect_retry)
# Services are created as faas-swarm does: named after the function, labels function=true,
# com.openfaas.function=<name>, com.openfaas.uid, the request's labels (annotations as
# com.openfaas.annotations.<key>), env from envVars plus fprocess=<envProcess>, secrets by name (mounted at
# /run/secrets/<name>), limits/requests (memory "128m"/"128Mi"; cpu "0.5" cores or "500m"), constraints,
# replicas = label com.openfaas.scale.min (default 1), attached to env network_name (default func_functions),
# endpoint mode dnsrr when env dnsrr=true. /system/* needs basic auth when basic_auth=true (credentials from
# secret_mount_path), as the provider does upstream. Env also: read_timeout, write_timeout (Go durations), port.
"""OpenFaaS faas-swarm provider test double."""

import json
import re
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

COMPONENT = "faas-swarm"
ANNOTATION_PREFIX = "com.openfaas.annotations."
SCALE_MIN = "com.openfaas.scale.min"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?$", re.IGNORECASE)


class RequestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def parse_memory(value):
    """'128m', '128Mi', '1G', '1048576' -> bytes (binary multiples, as Docker's CLI does)."""
    match = _MEMORY.match(str(value).strip())
    if not match:
        raise RequestError(400, f"memory {value!r} is not a size; use e.g. 128m, 128Mi or 1G")
    unit = (match.group(2) or "b").lower()[0]
    return int(float(match.group(1)) * 1024 ** "bkmgt".index(unit))


def parse_cpu(value):
    """'0.5' (cores), '500m' (millicores) or an integer >= 1000 (nano CPUs) -> nano CPUs."""
    text = str(value).strip()
    try:
        if text.endswith("m"):
            return int(float(text[:-1]) * 1_000_000)
        number = float(text)
    except ValueError:
        raise RequestError(400, f"cpu {value!r} is not a quantity; use cores (0.5) or millicores (500m)") from None
    return int(number) if number >= 1000 else int(number * 1_000_000_000)


def service_labels(request, uid=None):
    name = request["service"]
    labels = {"function": "true", "com.openfaas.function": name, "com.openfaas.uid": uid or str(time.time_ns())}
    labels.update({str(k): str(v) for k, v in (request.get("labels") or {}).items()})
    labels.update({ANNOTATION_PREFIX + str(k): str(v) for k, v in (request.get("annotations") or {}).items()})
    return labels


def min_replicas(labels):
    try:
        return max(0, int(labels.get(SCALE_MIN, 1)))
    except (TypeError, ValueError):
        raise RequestError(400, f"label {SCALE_MIN}={labels.get(SCALE_MIN)!r} is not an integer") from None


def validate_request(request):
    if not isinstance(request, dict):
        raise RequestError(400, "body must be a JSON object with at least 'service' and 'image'")
    name, image = request.get("service"), request.get("image")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RequestError(400, f"service {name!r} is not a valid function name (lower-case letters, digits, '-')")
    if not isinstance(image, str) or not image:
        raise RequestError(400, f"image is required for function {name}")
    return name


def function_record(service, available):
    spec = service["Spec"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    env = dict(item.split("=", 1) for item in container.get("Env") or [] if "=" in item)
    all_labels = spec.get("Labels") or {}
    labels = {k: v for k, v in all_labels.items() if not k.startswith(ANNOTATION_PREFIX)}
    annotations = {k[len(ANNOTATION_PREFIX) :]: v for k, v in all_labels.items() if k.startswith(ANNOTATION_PREFIX)}
    image = container.get("Image", "")
    return {
        "name": spec["Name"],
        "image": image.split("@sha256:", 1)[0],
        "replicas": (spec.get("Mode", {}).get("Replicated") or {}).get("Replicas", 0),
        "availableReplicas": available,
        "envProcess": env.pop("fprocess", ""),
        "envVars": env,
        "labels": labels,
        "annotations": annotations,
        "invocationCount": 0,
    }


class Swarm:
    """The Docker calls; one lock because the SDK's session is shared between request threads."""

    def __init__(self, client, network, dnsrr):
        self.api = client.api
        self.network = network
        self.dnsrr = dnsrr
        self.lock = threading.Lock()

    def _service(self, name):
        for service in self.api.services(filters={"name": name, "label": "function=true"}):
            if service["Spec"]["Name"] == name:
                return service
        return None

    def _available(self, service_id):
        tasks = self.api.tasks(filters={"service": service_id, "desired-state": "running"})
        return sum(1 for t in tasks if t.get("Status", {}).get("State") == "running")

    def list(self):
        with self.lock:
            services = self.api.services(filters={"label": "function=true"})
            return [function_record(s, self._available(s["ID"])) for s in services]

    def get(self, name):
        with self.lock:
            service = self._service(name)
            if service is None:
                raise RequestError(404, f"function {name} not found")
            return function_record(service, self._available(service["ID"]))

    def _secrets(self, names):
        refs = []
        for secret_name in names or []:
            found = [s for s in self.api.secrets(filters={"name": secret_name}) if s["Spec"]["Name"] == secret_name]
            if not found:
                raise RequestError(400, f"secret {secret_name} does not exist; create it in the Swarm first")
            refs.append(dtypes.SecretReference(found[0]["ID"], secret_name, filename=secret_name))
        return refs

    def _spec(self, request, replicas):
        name = request["service"]
        labels = service_labels(request)
        env = {str(k): str(v) for k, v in (request.get("envVars") or {}).items()}
        if request.get("envProcess"):
            env["fprocess"] = request["envProcess"]
        limits, requests = request.get("limits") or {}, request.get("requests") or {}
        resources = dtypes.Resources(
            cpu_limit=parse_cpu(limits["cpu"]) if limits.get("cpu") else None,
            mem_limit=parse_memory(limits["memory"]) if limits.get("memory") else None,
            cpu_reservation=parse_cpu(requests["cpu"]) if requests.get("cpu") else None,
            mem_reservation=parse_memory(requests["memory"]) if requests.get("memory") else None,
        )
        container = dtypes.ContainerSpec(
            request["image"],
            env=[f"{k}={v}" for k, v in sorted(env.items())],
            labels={"com.openfaas.function": name, "function": "true"},
            secrets=self._secrets(request.get("secrets")),
            read_only=bool(request.get("readOnlyRootFilesystem")) or None,
        )
        task = dtypes.TaskTemplate(
            container,
            resources=resources,
            restart_policy=dtypes.RestartPolicy(condition="any", delay=5_000_000_000, max_attempts=20),
            placement=dtypes.Placement(constraints=list(request.get("constraints") or [])),
            networks=[self.network],
        )
        return {
            "task_template": task,
            "name": name,
            "labels": labels,
            "mode": dtypes.ServiceMode("replicated", replicas=replicas),
            "endpoint_spec": dtypes.EndpointSpec(mode="dnsrr" if self.dnsrr else "vip"),
        }

    def create(self, request):
        name = validate_request(request)
        with self.lock:
            if self._service(name) is not None:
                raise RequestError(409, f"function {name} already exists; use PUT to update it")
            spec = self._spec(request, min_replicas(service_labels(request)))
            self.api.create_service(**spec)

    def update(self, request):
        name = validate_request(request)
        with self.lock:
            service = self._service(name)
            if service is None:
                raise RequestError(404, f"function {name} not found")
            current = (service["Spec"].get("Mode", {}).get("Replicated") or {}).get("Replicas", 1)
            spec = self._spec(request, current or min_replicas(service_labels(request)))
            self.api.update_service(service["ID"], service["Version"]["Index"], fetch_current_spec=True, **spec)

    def delete(self, name):
        with self.lock:
            service = self._service(name)
            if service is None:
                raise RequestError(404, f"function {name} not found")
            self.api.remove_service(service["ID"])

    def scale(self, name, replicas):
        with self.lock:
            service = self._service(name)
            if service is None:
                raise RequestError(404, f"function {name} not found")
            self.api.update_service(
                service["ID"],
                service["Version"]["Index"],
                mode=dtypes.ServiceMode("replicated", replicas=replicas),
                fetch_current_spec=True,
            )

    def list_secrets(self):
        with self.lock:
            return [{"name": s["Spec"]["Name"]} for s in self.api.secrets(filters={"label": "openfaas=true"})]

    def create_secret(self, name, value):
        with self.lock:
            self.api.create_secret(name, value.encode(), labels={"openfaas": "true"})

    def delete_secret(self, name):
        with self.lock:
            found = [s for s in self.api.secrets(filters={"name": name}) if s["Spec"]["Name"] == name]
            if not found:
                raise RequestError(404, f"secret {name} not found")
            self.api.remove_secret(found[0]["ID"])


class ProviderHandler(doublelib.Handler):
    component = COMPONENT
    swarm = None
    credentials = None
    invoke_timeout = 8.0
    connect_retry = 10.0

    def dispatch(self):
        url = urlsplit(self.path)
        path = url.path
        body = self.read_body()
        if path == "/healthz":
            self.reply(200, "OK")
            return
        if path.startswith("/function/"):
            self.invoke(path[len("/function/") :], url.query, body)
            return
        if self.credentials and not doublelib.credentials_match(self.headers.get("Authorization"), *self.credentials):
            self.reply(401, "Unauthorized\n", headers=[("WWW-Authenticate", 'Basic realm="Restricted"')])
            return
        try:
            self.system(path, body)
        except RequestError as exc:
            self.reply(exc.status, f"{exc}\n")
        except (APIError, NotFound) as exc:
            doublelib.log(COMPONENT, f"{self.command} {path}: Docker error: {exc}")
            self.reply(500, f"Docker error: {exc}\n")

    def json_body(self, body):
        try:
            return json.loads(body or b"null")
        except ValueError:
            raise RequestError(400, "request body is not JSON") from None

    def system(self, path, body):
        method = self.command
        if path == "/system/functions":
            if method == "GET":
                self.reply_json(200, self.swarm.list())
            elif method == "POST":
                self.swarm.create(self.json_body(body))
                self.reply(202, "")
            elif method == "PUT":
                self.swarm.update(self.json_body(body))
                self.reply(200, "")
            elif method == "DELETE":
                request = self.json_body(body)
                name = request.get("functionName") if isinstance(request, dict) else None
                if not name:
                    raise RequestError(400, 'body must be {"functionName": "<name>"}')
                self.swarm.delete(name)
                self.reply(200, "")
            else:
                self.reply(405, "method not allowed\n")
        elif path.startswith("/system/function/") and method == "GET":
            self.reply_json(200, self.swarm.get(path[len("/system/function/") :]))
        elif path.startswith("/system/scale-function/") and method == "POST":
            request = self.json_body(body)
            replicas = request.get("replicas") if isinstance(request, dict) else None
            if not isinstance(replicas, int) or replicas < 0:
                raise RequestError(400, 'body must be {"replicas": <integer >= 0>}')
            self.swarm.scale(path[len("/system/scale-function/") :], replicas)
            self.reply(200, "")
        elif path == "/system/secrets":
            self.secrets(method, self.json_body(body) if method != "GET" else None)
        elif path == "/system/info" and method == "GET":
            self.reply_json(
                200,
                {
                    "provider": "faas-swarm",
                    "orchestration": "swarm",
                    "version": {"release": "0.9.0", "sha": "onmetal-test-double"},
                },
            )
        else:
            self.reply(404, f"{method} {path} is not implemented by the faas-swarm test double\n")

    def secrets(self, method, request):
        if method == "GET":
            self.reply_json(200, self.swarm.list_secrets())
            return
        name = request.get("name") if isinstance(request, dict) else None
        if not name:
            raise RequestError(400, 'body must be {"name": "<secret>", "value": "<text>"}')
        if method == "POST":
            self.swarm.create_secret(name, str(request.get("value", "")))
            self.reply(201, "")
        elif method == "DELETE":
            self.swarm.delete_secret(name)
            self.reply(200, "")
        else:
            self.reply(405, "Swarm secrets are immutable: delete and create instead\n")

    def invoke(self, rest, query, body):
        name, _sep, subpath = rest.partition("/")
        if not _NAME.match(name):
            self.reply(400, f"{name!r} is not a valid function name\n")
            return
        host = f"tasks.{name}" if self.swarm.dnsrr else name
        target = f"http://{host}:8080/{subpath}" + (f"?{query}" if query else "")
        headers = doublelib.forwardable_headers(self.headers)
        try:
            status, resp_headers, data = doublelib.http_request(
                target, self.command, body, headers, self.invoke_timeout, connect_retry_for=self.connect_retry
            )
        except doublelib.UpstreamError as exc:
            doublelib.log(COMPONENT, f"invoke {name}: {exc}")
            self.reply(502, f"cannot reach function {name}: {exc}\n")
            return
        self.reply(status, data, None, doublelib.response_headers(resp_headers))


def connect_docker():
    if docker is None:
        raise doublelib.ConfigError("python3-docker is not installed; the faas-swarm double needs it")
    deadline = time.monotonic() + 30
    while True:
        try:
            client = docker.from_env(timeout=30)
            client.ping()
            if not client.info().get("Swarm", {}).get("ControlAvailable"):
                raise doublelib.ConfigError(
                    "the Docker engine behind the socket is not a Swarm manager; place faas-swarm on a manager"
                )
            return client
        except docker.errors.DockerException as exc:
            if time.monotonic() > deadline:
                raise doublelib.ConfigError(
                    f"cannot reach Docker ({exc}); mount /var/run/docker.sock of a Swarm manager or set DOCKER_HOST"
                ) from None
            time.sleep(1)


def main():
    swarm = Swarm(connect_docker(), doublelib.env("network_name", "func_functions"), doublelib.env_bool("dnsrr"))
    ProviderHandler.swarm = swarm
    if doublelib.env_bool("basic_auth", False):
        mount = doublelib.env("secret_mount_path", "/run/secrets/")
        ProviderHandler.credentials = (
            doublelib.read_secret(mount, "basic-auth-user"),
            doublelib.read_secret(mount, "basic-auth-password"),
        )
    read_timeout = doublelib.env_duration("read_timeout", "8s")
    write_timeout = doublelib.env_duration("write_timeout", "8s")
    ProviderHandler.invoke_timeout = write_timeout
    ProviderHandler.connect_retry = doublelib.env_duration("function_connect_retry", "10s")
    ProviderHandler.timeout = max(read_timeout, write_timeout) + 1
    doublelib.log(
        COMPONENT, f"network={swarm.network} dnsrr={swarm.dnsrr} basic_auth={bool(ProviderHandler.credentials)}"
    )
    doublelib.serve(ProviderHandler, 8080)


if __name__ == "__main__":
    doublelib.main_guard(COMPONENT, main)
