# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP client of the OpenFaaS gateway's REST API (gateway 0.18.18 in front of faas-swarm 0.9.0).

Basic auth through Ansible's ``open_url`` (injectable); failures become :class:`OpenFaaSError` with
a message that says what failed and what to check.  Every 2xx is success: upstream answers 202 to
``POST``/``PUT``/``DELETE /system/functions`` and ``POST /system/scale-function/<name>``
(faas-swarm 0.9.0 ``handlers/deploy.go:100``, ``update.go:103``, ``delete.go:84``,
``replicas_updater.go:61``), 201 to ``POST /system/secrets`` and 200 to its ``DELETE``
(``handlers/secrets.go:176``, ``:251``); other providers and the test doubles answer 200.
"""

from __future__ import annotations

import base64
import json
import socket
import time

from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_gateway import gateway_args
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_plan import same_image
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_spec import OpenFaaSError


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

    def _json_list(self, path, what):
        _status, text = self.request("GET", path, what=what)
        try:
            data = json.loads(text or "[]")
        except ValueError:
            data = None
        if data is None and not (text or "").strip():
            data = []
        if not isinstance(data, list):
            raise OpenFaaSError(
                f"GET {self.url}{path} did not return a JSON list (got {text[:200]!r}); "
                "is gateway_url the OpenFaaS gateway?"
            )
        return data

    # --- functions ----------------------------------------------------------------------------

    def list_functions(self):
        return self._json_list("/system/functions", "listing functions")

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

    def scale(self, name, replicas):
        """``POST /system/scale-function/<name>`` (faas-swarm ``replicas_updater.go:16-20`` body)."""
        body = {"serviceName": name, "replicas": int(replicas)}
        return self.request("POST", f"/system/scale-function/{name}", body, what=f"scaling '{name}' to {replicas}")

    # --- secrets --------------------------------------------------------------------------------

    def list_secrets(self):
        """Names of the secrets the provider lists (faas-swarm: those labelled com.openfaas.owner=openfaas)."""
        items = self._json_list("/system/secrets", "listing secrets")
        return sorted(item["name"] for item in items if isinstance(item, dict) and item.get("name"))

    def create_secret(self, name, value):
        return self.request("POST", "/system/secrets", {"name": name, "value": value}, what=f"creating secret '{name}'")

    def update_secret(self, name, value):
        return self.request("PUT", "/system/secrets", {"name": name, "value": value}, what=f"updating secret '{name}'")

    def delete_secret(self, name):
        return self.request("DELETE", "/system/secrets", {"name": name}, what=f"removing secret '{name}'")


def client_from_params(p, open_url):
    """A client for the connection options of ``p`` (:data:`._openfaas_gateway.GATEWAY_ARGS`)."""
    return GatewayClient(open_url=open_url, **gateway_args(p))


def _read(resp):
    try:
        data = resp.read()
    except Exception:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data or ""


def wait_available(client, name, image, timeout, sleep=None, clock=None, interval=1.0):
    """Poll ``GET /system/function/<name>`` until every replica runs the new spec; return the last status.

    faas-swarm counts ``availableReplicas`` as the running tasks that are up to date with the
    service's spec (0.9.0 ``handlers/replica_reader.go:64-83``, filter ``_up-to-date``), so right
    after an update it counts only tasks of the new version.  The wait ends when that count reaches
    the service's replicas (at least 1).  When the image reported is no longer the one deployed,
    Swarm has rolled the update back (``update.go:161-164``: FailureAction rollback) and the wait
    fails at once.
    """
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    deadline = clock() + timeout
    status = None
    while True:
        status = client.get_function(name)
        if status and image and status.get("image") and not same_image(status["image"], image):
            raise OpenFaaSError(
                f"function '{name}' runs image {status['image']} instead of {image}: Swarm rolled the update "
                f"back because the new tasks failed; see 'docker service ps {name} --no-trunc' on a manager"
            )
        want = max(1, int((status or {}).get("replicas") or 0))
        if status and int(status.get("availableReplicas") or 0) >= want:
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
