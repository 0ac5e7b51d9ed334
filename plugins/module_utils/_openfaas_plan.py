# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What openfaas_function has to do: pure comparison of the gateway's view with the desired body.

``GET /system/functions`` returns faas-provider's ``FunctionStatus``: name, image, replicas (the
service's spec), envProcess, labels and annotations (faas-swarm 0.9.0 ``handlers/reader.go:51-70``:
the labels with prefix ``com.openfaas.annotations.`` come back as annotations) -- not env, secrets,
limits or constraints.  Fields the gateway does not return are covered by the spec hash; the fields
it does return are compared too, so a change made with faas-cli is seen.
"""

from __future__ import annotations

from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_spec import (
    HASH_LABEL,
    scale_range,
)


def find_function(functions, name):
    for item in functions or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def strip_digest(image):
    return (image or "").split("@", 1)[0]


def same_image(deployed, wanted):
    """True when the deployed image is the wanted one (Swarm may pin a digest onto a tag)."""
    deployed = deployed or ""
    return deployed == wanted or ("@" not in wanted and strip_digest(deployed) == wanted)


def _deployed_hash(current):
    for key in ("labels", "annotations"):
        value = (current.get(key) or {}).get(HASH_LABEL)
        if value:
            return value
    return None


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
    if not same_image(deployed_image, wanted_image):
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


def replicas_to_keep(current, desired):
    """The replica count an update must leave in place, or None when there is nothing to keep.

    faas-swarm's PUT sets the service's replicas to ``com.openfaas.scale.min`` of the request
    (0.9.0 ``handlers/update.go:172-174`` via ``deploy.go:338-351``), so a function the gateway
    had scaled up would drop back on every redeploy.  The count before the update is kept, within
    the new min/max (the max defaults to the gateway's 20, ``gateway/scaling/ranges.go:8``).
    """
    if current is None or desired is None:
        return None
    try:
        before = int(current.get("replicas"))
    except (TypeError, ValueError):
        return None
    low, high = scale_range(desired)
    return max(low, min(high, before))
