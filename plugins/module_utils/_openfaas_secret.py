# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The openfaas_secret module's work: plan against ``/system/secrets``, then apply once.

What faas-swarm 0.9.0 (behind gateway 0.18.18, which forwards ``/system/secrets`` for GET, PUT,
POST and DELETE: openfaas/faas 11ff356c ``gateway/main.go:227``) offers, ``handlers/secrets.go``:

* ``GET`` lists ``[{"name", "value"}]`` of the Swarm secrets labelled ``com.openfaas.owner=openfaas``
  (``:121-147``).  Swarm never returns secret data, so ``value`` is always empty: the API cannot tell
  whether a deployed value differs from the desired one, and it sets no other label (``:160-168``),
  so no hash can be stored beside the secret either.
* ``POST {"name", "value"}`` answers 201 (``:176``), 500 with an empty body on any Swarm error, a
  name that exists included (``:169-175``, ``:61-64``).
* ``PUT`` always answers 405 with an empty body: "faas-swarm is unable to update secrets, delete and
  re-create or use a new name" (``:52-55``; ``updateSecret`` is never called).
* ``DELETE {"name"}`` answers 200 (``:251``), 404 for an unknown name and 500 (empty body) when the
  secret is not labelled for OpenFaaS or Swarm refuses, e.g. because a function uses it (``:221-249``).

Hence the two ways to know a value is current: ``append_hash`` names the secret after its value
(``<name>-<first 12 hex digits of sha256(value)>``), so a new value is a new secret and functions
roll to it; or ``force`` replaces an existing secret on every run (PUT, else DELETE + POST).
"""

from __future__ import annotations

import hashlib
import re

from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_client import client_from_params
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_gateway import GATEWAY_ARGS
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_spec import OpenFaaSError

ARGUMENT_SPEC = dict(
    GATEWAY_ARGS,
    name=dict(type="str", required=True),
    value=dict(type="str", no_log=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    append_hash=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
)

# swarmkit's rule for object names (and the file name under /var/openfaas/secrets/).
SECRET_NAME_RE = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9._-]*[a-zA-Z0-9])?$")
MAX_NAME = 64
MAX_VALUE = 500 * 1024  # swarmkit refuses secret data above 500 KiB
HIDDEN = "(hidden)"


def value_hash(value):
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def secret_name(params):
    """The name the secret gets: ``name``, or ``name-<hash of value>`` with append_hash."""
    name = params["name"] or ""
    value = params.get("value")
    if params.get("append_hash"):
        if value is None:
            raise OpenFaaSError(f"secret '{name}': append_hash needs the value (the name is derived from it)")
        name = f"{name}-{value_hash(value)}"
    if not SECRET_NAME_RE.match(name) or len(name) > MAX_NAME:
        raise OpenFaaSError(
            f"secret name '{name}' is not valid; use letters, digits, '.', '_' and '-', starting and ending with a "
            f"letter or digit, at most {MAX_NAME} characters"
            + (" (with the 13 characters append_hash adds)" if params.get("append_hash") else "")
        )
    if params["state"] == "present":
        if value is None:
            raise OpenFaaSError(f"secret '{name}': value is required with state=present")
        size = len(value.encode("utf-8"))
        if size == 0 or size > MAX_VALUE:
            raise OpenFaaSError(
                f"secret '{name}': the value has {size} bytes; Swarm stores 1 byte to 500 KiB per secret"
            )
    return name


def plan(existing, name, state, force):
    """``{"action": create|replace|delete|none, "reasons": [...]}`` for the listed secret names."""
    present = name in existing
    if state == "absent":
        if present:
            return {"action": "delete", "reasons": ["secret exists and state=absent"]}
        return {"action": "none", "reasons": []}
    if not present:
        return {"action": "create", "reasons": ["secret does not exist"]}
    if force:
        return {"action": "replace", "reasons": ["force=true replaces the value (the API cannot show it)"]}
    return {"action": "none", "reasons": []}


def diff(name, action, present):
    before = {"name": name, "value": HIDDEN} if present else {}
    if action == "delete":
        after = {}
    elif action == "replace":
        after = {"name": name, "value": "(hidden; replaced)"}
    elif action == "create" or present:
        after = {"name": name, "value": HIDDEN}
    else:
        after = {}
    return {"before": before, "after": after, "before_header": f"secret {name} (gateway)", "after_header": name}


def _in_use_hint(name):
    return (
        f"Swarm refuses to remove a secret that a function uses, and faas-swarm hides the reason: remove "
        f"'{name}' from the functions' secrets first, or use append_hash so that a new value gets a new name"
    )


def _create(client, name, value, result):
    try:
        result["http_status"] = client.create_secret(name, value)[0]
    except OpenFaaSError as exc:
        if exc.status is not None and name in client.list_secrets():
            result.update(action="none", changed=False)
            result["reasons"] = [f"secret was created concurrently (the gateway answered HTTP {exc.status})"]
            return
        if exc.status == 500:
            raise OpenFaaSError(
                f"{exc.msg}; faas-swarm hides Swarm's reason: most often a Swarm secret named '{name}' exists "
                "without the label com.openfaas.owner=openfaas (made with 'docker secret create'), which the "
                "gateway does not list; remove it or pick another name",
                exc.status,
                exc.body,
            ) from None
        raise


def _delete(client, name, result):
    try:
        result["http_status"] = client.delete_secret(name)[0]
    except OpenFaaSError as exc:
        if exc.status == 404:
            result["http_status"] = 404
            return
        if exc.status == 500:
            raise OpenFaaSError(f"{exc.msg}; {_in_use_hint(name)}", exc.status, exc.body) from None
        raise


def _replace(client, name, value, result):
    try:
        result["http_status"] = client.update_secret(name, value)[0]
        return
    except OpenFaaSError as exc:
        if exc.status != 405:
            raise
    # faas-swarm cannot update (secrets.go:52-55): remove and create again.
    _delete(client, name, result)
    try:
        result["http_status"] = client.create_secret(name, value)[0]
    except OpenFaaSError as exc:
        raise OpenFaaSError(
            f"{exc.msg}; secret '{name}' was removed to be replaced and could not be created again: re-run",
            exc.status,
            exc.body,
        ) from None


def run(params, open_url, check_mode=False, want_diff=False):
    """Everything openfaas_secret does, for ``params`` valid against :data:`ARGUMENT_SPEC`.

    Returns the result; raises :class:`OpenFaaSError` (a ``ModuleFailure``) with the partial result.
    """
    p = params
    result = {"changed": False, "state": p["state"]}
    try:
        name = secret_name(p)
        result["secret_name"] = name
        client = client_from_params(p, open_url)
        existing = client.list_secrets()
        the_plan = plan(existing, name, p["state"], p["force"])
        result.update(action=the_plan["action"], reasons=the_plan["reasons"], changed=the_plan["action"] != "none")
        if want_diff:
            result["diff"] = diff(name, the_plan["action"], name in existing)
        if not check_mode:
            action = the_plan["action"]
            if action == "create":
                _create(client, name, p["value"], result)
            elif action == "replace":
                _replace(client, name, p["value"], result)
            elif action == "delete":
                _delete(client, name, result)
    except OpenFaaSError as exc:
        raise exc.with_result(result) from None
    return result
