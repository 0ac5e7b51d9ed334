# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The openfaas_function module's work: options -> plan -> the gateway's REST API.

Layers, the first two pure and unit-tested without a gateway:

* :mod:`._openfaas_spec` turns the options into the ``POST``/``PUT /system/functions`` body, in the
  formats faas-swarm 0.9.0 parses (CPU in nano-CPUs, scaling labels checked);
* :mod:`._openfaas_plan` compares that body with the function the gateway lists and decides
  ``create``, ``update``, ``delete`` or ``none``, and the replica count an update keeps;
* :mod:`._openfaas_client` speaks HTTP;
* :func:`run` here applies the plan once, unless in check mode.

The module contract (docs: plugins/module_utils/_errors.py): :func:`run` takes the parameters, the
check and diff flags and the I/O (``open_url``, ``sleep``), and returns the result or raises
:class:`OpenFaaSError` (a ``ModuleFailure``) carrying the partial result; only ``main()`` talks to
``AnsibleModule``.
"""

from __future__ import annotations

from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_client import client_from_params, wait_available
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_gateway import GATEWAY_ARGS
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_plan import (
    find_function,
    plan,
    replicas_to_keep,
)
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_spec import (
    HASH_LABEL,
    OpenFaaSError,
    check_name,
    desired_request,
    view_current,
    view_desired,
)

ARGUMENT_SPEC = dict(
    GATEWAY_ARGS,
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
    scale_factor=dict(type="int"),
    scale_zero=dict(type="bool"),
    scale_zero_duration=dict(type="str"),
    network=dict(type="str"),
    read_only_root_filesystem=dict(type="bool", default=False),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=120),
)

# Answers of POST /system/functions when the service exists: faas-swarm 0.9.0 turns Swarm's name
# conflict into 400 "Deployment error: ..." (handlers/deploy.go:86-93); other providers say 409.
_EXISTS_STATUSES = (400, 409)


def _create(client, desired, result):
    """POST; when the function appeared since it was listed (400/409), update it instead."""
    try:
        result["http_status"] = client.deploy(desired)[0]
    except OpenFaaSError as exc:
        if exc.status not in _EXISTS_STATUSES or client.get_function(desired["service"]) is None:
            raise
        result["action"] = "update"
        result["reasons"].append(f"function was created concurrently (the gateway answered HTTP {exc.status})")
        result["http_status"] = client.update(desired)[0]


def _update(client, current, desired, result):
    """PUT, then scale back to the replica count from before (faas-swarm resets it to scale.min)."""
    keep = replicas_to_keep(current, desired)
    result["http_status"] = client.update(desired)[0]
    if keep is None:
        return
    status = client.get_function(desired["service"]) or {}
    if int(status.get("replicas") or 0) != keep:
        client.scale(desired["service"], keep)
    result["replicas"] = keep


def run(params, open_url, sleep=None, check_mode=False, want_diff=False):
    """Everything openfaas_function does, for ``params`` valid against :data:`ARGUMENT_SPEC`.

    Returns the result (warnings under ``warnings``); raises :class:`OpenFaaSError` with the partial result.
    """
    p = params
    result = {"changed": False, "name": p["name"], "state": p["state"]}
    try:
        desired = desired_request(p) if p["state"] == "present" else None
        if desired is None:
            check_name(p["name"])
        client = client_from_params(p, open_url)
        current = find_function(client.list_functions(), p["name"])
        the_plan = plan(current, desired, p["state"])
        result.update(action=the_plan["action"], reasons=the_plan["reasons"], changed=the_plan["action"] != "none")
        if desired is not None:
            result["spec_hash"] = desired["labels"][HASH_LABEL]
            result["request"] = desired
        if the_plan["action"] == "update":
            keep = replicas_to_keep(current, desired)
            if keep is not None:
                result["replicas"] = keep
        if want_diff:
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
        if not check_mode:
            _apply(client, p, the_plan["action"], current, desired, result, sleep)
    except OpenFaaSError as exc:
        raise exc.with_result(result) from None
    return result


def _apply(client, p, action, current, desired, result, sleep):
    """The one write the plan asks for, then the wait for replicas when asked."""
    if action == "create":
        _create(client, desired, result)
    elif action == "update":
        _update(client, current, desired, result)
    elif action == "delete":
        result["http_status"] = client.delete(p["name"])[0]
    if p["state"] == "present" and p["wait"]:
        if p.get("scale_min") == 0 or desired["labels"].get("com.openfaas.scale.min") == "0":
            result.setdefault("warnings", []).append(
                f"wait=true ignored for '{p['name']}': scale_min=0 means no replica has to run"
            )
        else:
            result["status"] = wait_available(client, p["name"], desired["image"], p["wait_timeout"], sleep)
