# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Drift: does the spec a swarm runs still say what the stack declares?

The applied-hash label only proves what swarm_stack wrote last; ``docker service scale`` or
``docker service update --env-add`` change the running spec and leave the label alone.  So a service
is unchanged only when its live spec, normalised, equals the desired spec on every field the compose
subset can declare (:data:`DECLARABLE`).  Pure functions over the Engine API's JSON.

Normalised away, because the engine or the docker CLI fills them in without anyone declaring them
(real Engine 20.10 JSON in tests/unit/plugins/module_utils/fixtures/engine_specs.json):
defaults (``_stack_plan.clean_spec``: Isolation, Runtime, restart/update defaults ...), object IDs,
network IDs (mapped to names), ``ForceUpdate`` (``docker service update --force``: a restart
counter, not a definition), list order where the engine does not care (env, constraints,
capabilities, mounts, ports, secrets, configs, networks), and a digest that the docker CLI appends to
an image reference (``repo:tag`` -> ``repo:tag@sha256:...``) when the stack declares none.
Fields outside :data:`DECLARABLE` (say ``Ulimits`` set by hand) are not compared: the stack cannot
declare them.
"""

import copy

from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import HASH_LABEL
from ansible_collections.onmetal.faas.plugins.module_utils._stack_spec import image_has_digest

_UPDATE_DEFAULTS = (
    ("Parallelism", 1),
    ("Delay", 0),
    ("FailureAction", "pause"),
    ("Monitor", 5 * 10**9),
    ("MaxFailureRatio", 0),
    ("Order", "stop-first"),
)
# Values the engine fills in when a spec leaves them out; dropped on both sides of a diff.
_ENGINE_DEFAULTS = (
    (
        (("TaskTemplate", "ForceUpdate"), 0),
        (("TaskTemplate", "Runtime"), "container"),
        (("TaskTemplate", "ContainerSpec", "Isolation"), "default"),
        (("TaskTemplate", "ContainerSpec", "StopGracePeriod"), 10 * 10**9),
        (("TaskTemplate", "RestartPolicy", "Condition"), "any"),
        (("TaskTemplate", "RestartPolicy", "Delay"), 5 * 10**9),
        (("TaskTemplate", "RestartPolicy", "MaxAttempts"), 0),
        (("EndpointSpec", "Mode"), "vip"),
    )
    + tuple((("UpdateConfig", key), value) for key, value in _UPDATE_DEFAULTS)
    + tuple((("RollbackConfig", key), value) for key, value in _UPDATE_DEFAULTS)
)


def _drop_empty(obj):
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            value = _drop_empty(value)
            if value in ({}, [], None):
                continue
            out[key] = value
        return out
    if isinstance(obj, list):
        return [_drop_empty(v) for v in obj]
    return obj


def clean_spec(spec, network_names=None):
    """A spec as the engine returns it -> the shape we write (for diffs): engine defaults,
    object IDs and our own hash label removed, network IDs mapped to names."""
    spec = copy.deepcopy(spec or {})
    for path, default in _ENGINE_DEFAULTS:
        parent = spec
        for key in path[:-1]:
            parent = parent.get(key) or {}
        if parent.get(path[-1]) == default:
            parent.pop(path[-1], None)
    (spec.get("Labels") or {}).pop(HASH_LABEL, None)
    task = spec.get("TaskTemplate") or {}
    (task.get("Placement") or {}).pop("Platforms", None)
    container = task.get("ContainerSpec") or {}
    for ref in container.get("Secrets") or []:
        ref.pop("SecretID", None)
    for ref in container.get("Configs") or []:
        ref.pop("ConfigID", None)
    for att in task.get("Networks") or []:
        if network_names and att.get("Target") in network_names:
            att["Target"] = network_names[att["Target"]]
    if task.get("Networks"):
        task["Networks"] = sorted(task["Networks"], key=lambda a: a.get("Target", ""))
    return _drop_empty(spec)


# Every field of a ServiceSpec that _stack_compose.service_spec can write; True: the whole subtree.
_UPDATE = {key: True for key in ("Parallelism", "Delay", "FailureAction", "Monitor", "MaxFailureRatio", "Order")}
DECLARABLE = {
    "Name": True,
    "Labels": True,
    "Mode": True,
    "UpdateConfig": _UPDATE,
    "RollbackConfig": _UPDATE,
    "EndpointSpec": {"Mode": True, "Ports": True},
    "TaskTemplate": {
        "ContainerSpec": {
            key: True
            for key in (
                "Image",
                "Labels",
                "Command",
                "Args",
                "Env",
                "Dir",
                "User",
                "Hostname",
                "StopSignal",
                "TTY",
                "OpenStdin",
                "ReadOnly",
                "Init",
                "StopGracePeriod",
                "Healthcheck",
                "DNSConfig",
                "Hosts",
                "CapabilityAdd",
                "CapabilityDrop",
                "Sysctls",
                "Mounts",
                "Secrets",
                "Configs",
            )
        },  # fmt: skip
        "Resources": True,
        "RestartPolicy": True,
        "Placement": {"Constraints": True, "Preferences": True, "MaxReplicas": True},
        "LogDriver": True,
        "Networks": True,
    },
}

# list fields whose order the engine ignores -> the key they are sorted by
_UNORDERED = (
    (("TaskTemplate", "ContainerSpec", "Env"), None),
    (("TaskTemplate", "ContainerSpec", "CapabilityAdd"), None),
    (("TaskTemplate", "ContainerSpec", "CapabilityDrop"), None),
    (("TaskTemplate", "ContainerSpec", "Hosts"), None),
    (("TaskTemplate", "ContainerSpec", "Mounts"), lambda m: (m.get("Target", ""), m.get("Type", ""))),
    (("TaskTemplate", "ContainerSpec", "Secrets"), lambda r: (r.get("SecretName", ""), r["File"]["Name"])),
    (("TaskTemplate", "ContainerSpec", "Configs"), lambda r: (r.get("ConfigName", ""), r["File"]["Name"])),
    (("TaskTemplate", "Placement", "Constraints"), None),
    (("TaskTemplate", "Networks"), lambda a: a.get("Target", "")),
    (
        ("EndpointSpec", "Ports"),
        lambda p: (p.get("TargetPort", 0), p.get("Protocol", "tcp"), p.get("PublishedPort", 0)),
    ),
)
# values a missing key stands for, per list item
_PORT_DEFAULTS = (("Protocol", "tcp"), ("PublishMode", "ingress"))


def _project(value, allowed):
    if allowed is True or not isinstance(value, dict):
        return value
    return {key: _project(item, allowed[key]) for key, item in value.items() if key in allowed}


def _at(spec, path):
    for key in path:
        if not isinstance(spec, dict):
            return None
        spec = spec.get(key)
    return spec


def normalise(spec, network_names=None):
    """A ServiceSpec (ours or the engine's) -> the declarable fields in one canonical form."""
    spec = clean_spec(spec, network_names)
    task = spec.get("TaskTemplate") or {}
    task.pop("ForceUpdate", None)
    # 0 means "no limit" for these; an engine may write it out
    for part in ("Limits", "Reservations"):
        values = (task.get("Resources") or {}).get(part) or {}
        for key in [k for k, v in values.items() if v == 0]:
            del values[key]
    placement = task.get("Placement") or {}
    if placement.get("MaxReplicas") == 0:
        del placement["MaxReplicas"]
    spec = _drop_empty(spec)
    for port in _at(spec, ("EndpointSpec", "Ports")) or []:
        for key, default in _PORT_DEFAULTS:
            port.setdefault(key, default)
    for path, key in _UNORDERED:
        parent = _at(spec, path[:-1])
        if isinstance(parent, dict) and isinstance(parent.get(path[-1]), list):
            parent[path[-1]] = sorted(parent[path[-1]], key=key)
    return _project(spec, DECLARABLE)


def live_for_compare(desired, live, network_names=None):
    """``live`` normalised for comparison with ``desired`` (a spec we write): a digest the CLI appended to
    the declared ``repo:tag`` counts as the declared reference."""
    have = normalise(live, network_names)
    want_image = _at(desired, ("TaskTemplate", "ContainerSpec", "Image"))
    container = _at(have, ("TaskTemplate", "ContainerSpec"))
    have_image = (container or {}).get("Image")
    if (
        isinstance(want_image, str)
        and isinstance(have_image, str)
        and not image_has_digest(want_image)
        and image_has_digest(have_image)
        and have_image.split("@", 1)[0] == want_image
    ):
        container["Image"] = want_image
    return have


def spec_drift(desired, live, network_names=None):
    """Dotted paths of the declarable fields where the live spec differs from ``desired``; [] when equal."""
    return changed_paths(live_for_compare(desired, live, network_names), normalise(desired))


def changed_paths(before, after, prefix=""):
    """Dotted paths that differ between two plain structures (for a compact plan summary)."""
    if isinstance(before, dict) and isinstance(after, dict):
        paths = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{prefix}.{key}" if prefix else str(key)
            if key not in before or key not in after:
                paths.append(sub)
            else:
                paths.extend(changed_paths(before[key], after[key], sub))
        return paths
    return [] if before == after else [prefix or "."]
