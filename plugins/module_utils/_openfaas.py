# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""OpenFaaS functions through the gateway's REST API, for the openfaas_function module.

Three layers, the first two pure and unit-tested without a gateway:

* :func:`desired_request` turns the module's options into the body of ``POST``/``PUT
  /system/functions`` (``FunctionDeployment`` of faas-provider: ``service``, ``image``,
  ``envProcess``, ``envVars``, ``labels``, ``annotations``, ``secrets``, ``constraints``,
  ``limits``, ``requests``, ``network``, ``readOnlyRootFilesystem``) and stamps it with a hash of
  itself in the label :data:`HASH_LABEL`.
* :func:`plan` compares that with the function the gateway lists (``GET /system/functions``
  returns ``FunctionStatus``: name, image, replicas, availableReplicas, envProcess, labels and,
  from some providers, annotations -- not env, secrets, limits or constraints) and decides
  ``create``, ``update``, ``delete`` or ``none``.  Fields the gateway does not return are covered by
  the hash; the fields it does return are compared too, so a change made with faas-cli is seen.
* :class:`GatewayClient` speaks HTTP with basic auth through Ansible's ``open_url`` (injectable),
  and turns failures into messages that say what failed and what to check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import time

from ansible.module_utils.urls import open_url as ansible_open_url

HASH_LABEL = "io.onmetal.faas.spec-hash"
SCALE_MIN_LABEL = "com.openfaas.scale.min"
SCALE_MAX_LABEL = "com.openfaas.scale.max"
# Labels the Swarm provider adds to every function; never part of a comparison.
PROVIDER_LABELS = frozenset({"function", "com.openfaas.function", "com.openfaas.uid"})
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MEMORY_RE = re.compile(r"^\d+(\.\d+)?\s*([kmgtp]i?b?|b)?$", re.IGNORECASE)
CPU_RE = re.compile(r"^(\d+(\.\d+)?|\d+m)$")

ARGUMENT_SPEC = dict(
    gateway_url=dict(type="str", default="http://127.0.0.1:8080"),
    username=dict(type="str", default="admin"),
    password=dict(type="str", required=True, no_log=True),
    name=dict(type="str", required=True),
    image=dict(type="str"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    env=dict(type="dict", default={}),
    env_process=dict(type="str"),
    labels=dict(type="dict", default={}),
    annotations=dict(type="dict", default={}),
    secrets=dict(type="list", elements="str", default=[], no_log=False),
    constraints=dict(type="list", elements="str", default=[]),
    limits=dict(type="dict", options=dict(memory=dict(type="str"), cpu=dict(type="str"))),
    requests=dict(type="dict", options=dict(memory=dict(type="str"), cpu=dict(type="str"))),
    scale_min=dict(type="int"),
    scale_max=dict(type="int"),
    network=dict(type="str"),
    read_only_root_filesystem=dict(type="bool", default=False),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="int", default=30),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=120),
)


class OpenFaaSError(Exception):
    """A failure with a message meant for the user; ``status``/``body`` when it came from HTTP."""

    def __init__(self, msg, status=None, body=None):
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.body = body


# --------------------------------------------------------------------------------------------
# Pure planning
# --------------------------------------------------------------------------------------------


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _string_map(value, what):
    out = {}
    for key, item in (value or {}).items():
        if item is None or isinstance(item, (dict, list)):
            raise OpenFaaSError(f"{what} '{key}' must be a string, number or boolean, not {type(item).__name__}")
        out[str(key)] = _text(item)
    return out


def _resources(value, what):
    if not value:
        return None
    out = {}
    memory, cpu = value.get("memory"), value.get("cpu")
    if memory not in (None, ""):
        if not MEMORY_RE.match(str(memory)):
            raise OpenFaaSError(
                f"{what}.memory '{memory}' is not a memory size; use a number with an optional unit such as "
                "128m, 256Mi or 1g (the provider would silently treat it as no limit)"
            )
        out["memory"] = str(memory)
    if cpu not in (None, ""):
        if not CPU_RE.match(str(cpu)):
            raise OpenFaaSError(f"{what}.cpu '{cpu}' is not a CPU amount; use cores (0.5, 2) or millicores (500m)")
        out["cpu"] = str(cpu)
    return out or None


def spec_hash(body):
    """Stable hash of a request body, ignoring the hash label itself."""
    clean = dict(body)
    clean["labels"] = {k: v for k, v in (body.get("labels") or {}).items() if k != HASH_LABEL}
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def desired_request(params):
    """The POST/PUT body for the module's options, validated, with :data:`HASH_LABEL` set."""
    name = params["name"]
    if not NAME_RE.match(name or "") or len(name) > 63:
        raise OpenFaaSError(
            f"function name '{name}' is not valid; use lower-case letters, digits and '-', starting and ending "
            "with a letter or digit, at most 63 characters"
        )
    image = (params.get("image") or "").strip()
    if not image:
        raise OpenFaaSError(f"function '{name}': image is required with state=present")
    labels = _string_map(params.get("labels"), "label")
    for key, option in ((SCALE_MIN_LABEL, "scale_min"), (SCALE_MAX_LABEL, "scale_max")):
        value = params.get(option)
        if value is None:
            continue
        if key in labels and labels[key] != str(value):
            raise OpenFaaSError(
                f"function '{name}': label {key}={labels[key]} contradicts {option}={value}; set only one of them"
            )
        labels[key] = str(value)
    scale_min, scale_max = params.get("scale_min"), params.get("scale_max")
    if scale_min is not None and scale_min < 0:
        raise OpenFaaSError(f"function '{name}': scale_min must be 0 or more, got {scale_min}")
    if scale_max is not None and scale_max < 1:
        raise OpenFaaSError(f"function '{name}': scale_max must be 1 or more, got {scale_max}")
    if scale_min is not None and scale_max is not None and scale_min > scale_max:
        raise OpenFaaSError(f"function '{name}': scale_min ({scale_min}) is larger than scale_max ({scale_max})")
    labels.pop(HASH_LABEL, None)
    body = {
        "service": name,
        "image": image,
        "envVars": _string_map(params.get("env"), "env"),
        "labels": labels,
        "annotations": _string_map(params.get("annotations"), "annotation"),
        "secrets": sorted(set(params.get("secrets") or [])),
        "constraints": list(params.get("constraints") or []),
        "readOnlyRootFilesystem": bool(params.get("read_only_root_filesystem")),
    }
    if params.get("env_process"):
        body["envProcess"] = params["env_process"]
    if params.get("network"):
        body["network"] = params["network"]
    for key in ("limits", "requests"):
        res = _resources(params.get(key), key)
        if res:
            body[key] = res
    body["labels"][HASH_LABEL] = spec_hash(body)
    return body


def find_function(functions, name):
    for item in functions or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def _strip_digest(image):
    return (image or "").split("@", 1)[0]


def _deployed_hash(current):
    for key in ("labels", "annotations"):
        value = (current.get(key) or {}).get(HASH_LABEL)
        if value:
            return value
    return None


def view_current(current):
    """The deployed function as shown in the diff (provider-internal labels left out)."""
    if current is None:
        return {}
    labels = {k: v for k, v in (current.get("labels") or {}).items() if k not in PROVIDER_LABELS}
    view = {"name": current.get("name"), "image": current.get("image"), "labels": labels}
    if current.get("annotations"):
        view["annotations"] = current["annotations"]
    if current.get("envProcess"):
        view["envProcess"] = current["envProcess"]
    return view


def view_desired(body):
    """The desired function as shown in the diff: what the gateway will report, plus the rest."""
    if body is None:
        return {}
    view = {"name": body["service"], "image": body["image"], "labels": dict(body["labels"])}
    if body.get("annotations"):
        view["annotations"] = body["annotations"]
    for key in ("envProcess", "envVars", "secrets", "constraints", "limits", "requests", "network"):
        if body.get(key):
            view[key] = body[key]
    if body.get("readOnlyRootFilesystem"):
        view["readOnlyRootFilesystem"] = True
    return view


def plan(current, desired, state):
    """What to do: ``{"action": create|update|delete|none, "reasons": [...]}``.

    ``current`` is the gateway's entry for the function (or None), ``desired`` the request body
    from :func:`desired_request` (None for state=absent).
    """
    if state == "absent":
        if current is None:
            return {"action": "none", "reasons": []}
        return {"action": "delete", "reasons": ["function is deployed and state=absent"]}
    if current is None:
        return {"action": "create", "reasons": ["function is not deployed"]}
    reasons = []
    deployed_image = current.get("image") or ""
    wanted_image = desired["image"]
    if deployed_image != wanted_image and ("@" in wanted_image or _strip_digest(deployed_image) != wanted_image):
        reasons.append(f"image {deployed_image or '(none)'} -> {wanted_image}")
    if (current.get("envProcess") or "") != (desired.get("envProcess") or ""):
        reasons.append("envProcess differs")
    deployed_labels = current.get("labels") or {}
    changed = sorted(k for k, v in desired["labels"].items() if k != HASH_LABEL and deployed_labels.get(k) != v)
    if changed:
        reasons.append("labels differ: " + ", ".join(changed))
    deployed_annotations = current.get("annotations")
    if deployed_annotations is not None:
        changed = sorted(k for k, v in desired["annotations"].items() if deployed_annotations.get(k) != v)
        if changed:
            reasons.append("annotations differ: " + ", ".join(changed))
    deployed_hash = _deployed_hash(current)
    if deployed_hash != desired["labels"][HASH_LABEL]:
        reasons.append(
            "spec hash differs (env, secrets, limits, constraints or other fields the gateway does not report)"
            if deployed_hash
            else "function was not deployed by this module (no spec hash label)"
        )
    return {"action": "update" if reasons else "none", "reasons": reasons}


# --------------------------------------------------------------------------------------------
# Gateway client
# --------------------------------------------------------------------------------------------


class GatewayClient:
    """Minimal OpenFaaS gateway client.  ``open_url`` is Ansible's (or a fake with its signature)."""

    def __init__(self, url, username, password, open_url, timeout=30, validate_certs=True):
        self.url = url.rstrip("/")
        self.username = username
        self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._open_url = open_url
        self.timeout = timeout
        self.validate_certs = validate_certs

    def request(self, method, path, body=None, what=None):
        """(status, text) of a request; raises :class:`OpenFaaSError` for failures (4xx/5xx included)."""
        url = self.url + path
        what = what or f"{method} {url}"
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            resp = self._open_url(
                url,
                data=data,
                headers=headers,
                method=method,
                timeout=self.timeout,
                validate_certs=self.validate_certs,
                follow_redirects="none",
                force_basic_auth=False,
            )
            status = resp.getcode() if hasattr(resp, "getcode") else resp.status
            return status, _read(resp)
        except OpenFaaSError:
            raise
        except Exception as exc:  # urllib's HTTPError/URLError, socket errors, ssl errors
            status = getattr(exc, "code", None)
            if isinstance(status, int):
                text = _read(exc)
                raise self._http_error(what, status, text) from None
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (socket.timeout, TimeoutError)) or isinstance(exc, (socket.timeout, TimeoutError)):
                raise OpenFaaSError(
                    f"{what}: the OpenFaaS gateway at {self.url} did not answer within {self.timeout}s; "
                    "raise timeout or check the gateway's health"
                ) from None
            raise OpenFaaSError(
                f"{what}: cannot reach the OpenFaaS gateway at {self.url}: {reason}; check that the gateway is "
                "running and that gateway_url is right"
            ) from None

    def _http_error(self, what, status, text):
        if status == 401:
            return OpenFaaSError(
                f"the gateway at {self.url} refused the credentials for user {self.username} (HTTP 401); "
                "check openfaas_credentials_file (or the username and password options)",
                status,
                text,
            )
        detail = (text or "").strip() or "(empty body)"
        if len(detail) > 2000:
            detail = detail[:2000] + "..."
        return OpenFaaSError(f"{what} failed with HTTP {status}: {detail}", status, text)

    def list_functions(self):
        _status, text = self.request("GET", "/system/functions", what="listing functions")
        try:
            data = json.loads(text or "[]")
        except ValueError:
            data = None
        if not isinstance(data, list):
            raise OpenFaaSError(
                f"GET {self.url}/system/functions did not return a JSON list (got {text[:200]!r}); "
                "is gateway_url the OpenFaaS gateway?"
            )
        return data

    def get_function(self, name):
        try:
            _status, text = self.request("GET", f"/system/function/{name}", what=f"reading function '{name}'")
        except OpenFaaSError as exc:
            if exc.status == 404:
                return None
            raise
        try:
            return json.loads(text)
        except ValueError:
            raise OpenFaaSError(f"GET {self.url}/system/function/{name} did not return JSON: {text[:200]!r}") from None

    def deploy(self, body):
        return self.request("POST", "/system/functions", body, what=f"deploying function '{body['service']}'")

    def update(self, body):
        return self.request("PUT", "/system/functions", body, what=f"updating function '{body['service']}'")

    def delete(self, name):
        try:
            return self.request("DELETE", "/system/functions", {"functionName": name}, what=f"removing '{name}'")
        except OpenFaaSError as exc:
            if exc.status == 404:  # already gone (removed concurrently)
                return 404, exc.body
            raise


def _read(resp):
    try:
        data = resp.read()
    except Exception:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data or ""


def wait_available(client, name, image, timeout, sleep=time.sleep, clock=time.monotonic, interval=1.0):
    """Poll ``GET /system/function/<name>`` until availableReplicas >= 1; return the last status."""
    deadline = clock() + timeout
    status = None
    while True:
        status = client.get_function(name)
        if status and int(status.get("availableReplicas") or 0) >= 1:
            return status
        if clock() >= deadline:
            break
        sleep(interval)
    have = int((status or {}).get("availableReplicas") or 0)
    want = int((status or {}).get("replicas") or 0)
    raise OpenFaaSError(
        f"function '{name}' has {have} of {want} replicas available after {timeout}s (image {image}); the image "
        "may not exist or not be pullable from every node, or its container fails the health check; see "
        f"'docker service ps {name} --no-trunc' on a manager"
    )


# --------------------------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------------------------


def run_module(module, open_url=None, sleep=time.sleep):
    """Everything openfaas_function does; ``module`` is an AnsibleModule with :data:`ARGUMENT_SPEC`."""
    open_url = open_url or ansible_open_url
    p = module.params
    result = {"changed": False, "name": p["name"], "state": p["state"]}
    try:
        desired = desired_request(p) if p["state"] == "present" else None
        if desired is None and not NAME_RE.match(p["name"] or ""):
            raise OpenFaaSError(f"function name '{p['name']}' is not valid")
        client = GatewayClient(
            p["gateway_url"], p["username"], p["password"], open_url, p["timeout"], p["validate_certs"]
        )
        current = find_function(client.list_functions(), p["name"])
        the_plan = plan(current, desired, p["state"])
        result.update(action=the_plan["action"], reasons=the_plan["reasons"], changed=the_plan["action"] != "none")
        if desired is not None:
            result["spec_hash"] = desired["labels"][HASH_LABEL]
            result["request"] = desired
        if module._diff:
            after = view_desired(desired)
            # Unchanged means the spec hash matched: the deployed function is the desired one, also in
            # the fields the gateway does not report.
            before = after if the_plan["action"] == "none" else view_current(current)
            result["diff"] = {
                "before": before,
                "after": after,
                "before_header": f"function {p['name']} (gateway)",
                "after_header": f"function {p['name']} (desired)",
            }
        if not module.check_mode:
            action = the_plan["action"]
            if action == "create":
                result["http_status"] = client.deploy(desired)[0]
            elif action == "update":
                result["http_status"] = client.update(desired)[0]
            elif action == "delete":
                result["http_status"] = client.delete(p["name"])[0]
            if p["state"] == "present" and p["wait"]:
                if p.get("scale_min") == 0:
                    module.warn(f"wait=true ignored for '{p['name']}': scale_min=0 means no replica has to run")
                else:
                    result["status"] = wait_available(client, p["name"], desired["image"], p["wait_timeout"], sleep)
    except OpenFaaSError as exc:
        result["msg"] = exc.msg
        if exc.status is not None:
            result["http_status"] = exc.status
        module.fail_json(**result)
    module.exit_json(**result)
