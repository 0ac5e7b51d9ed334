# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan a stack deployment: compare the desired objects (``_stack_spec.build_desired``) with what the swarm runs.

Pure functions over plain data.  The engine layers (``_stack_client``, ``_stack_engine``) read the current state
into the snapshot shape documented on :func:`compute_plan` and applies the plan.
"""

import copy
import hashlib
import json

from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import (
    HASH_LABEL,
    LOGICAL_NAME_LABEL,
    STACK_LABEL,
    ComposeError,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_drift import (
    live_for_compare,
    normalise,
    spec_drift,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_spec import image_has_digest, pin_image
from ansible_collections.onmetal.faas.plugins.module_utils._stack_types import Current, Desired, Plan


def spec_hash(spec):
    """Hash of a normalised definition: key order never matters, list order does."""
    clean = copy.deepcopy(spec)
    (clean.get("Labels") or {}).pop(HASH_LABEL, None)
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def images_to_resolve(desired):
    """Images (without digest) of the desired services, sorted."""
    return sorted(
        {
            s["TaskTemplate"]["ContainerSpec"]["Image"]
            for s in desired["services"].values()
            if not image_has_digest(s["TaskTemplate"]["ContainerSpec"]["Image"])
        }
    )


def pin_images(desired, digests):
    """Rewrite images to ``repo:tag@digest`` using ``digests`` (image -> digest)."""
    for spec in desired["services"].values():
        container = spec["TaskTemplate"]["ContainerSpec"]
        digest = digests.get(container["Image"])
        if digest:
            container["Image"] = pin_image(container["Image"], digest)


def check_digests(desired):
    """Raise ComposeError naming every service whose image has no digest."""
    missing = [
        "{} ({})".format(short, spec["TaskTemplate"]["ContainerSpec"]["Image"])
        for short, spec in sorted(desired["services"].items())
        if not image_has_digest(spec["TaskTemplate"]["ContainerSpec"]["Image"])
    ]
    if missing:
        raise ComposeError(
            "require_digests: these services use an image without a digest: {}; pin them as repo:tag@sha256:... "
            "or set resolve_digests: true to let the engine resolve the tags".format(", ".join(missing))
        )


def finalize(desired):
    """Stamp each service spec with the hash of its normalised definition."""
    for spec in desired["services"].values():
        spec["Labels"][HASH_LABEL] = spec_hash(spec)
    return desired


# --------------------------------------------------------------------------------------------
# Current state helpers


def _created_key(obj):
    return obj.get("CreatedAt") or ""


# --------------------------------------------------------------------------------------------
# The plan


def compute_plan(stack, desired: Desired, current: Current, prune, keep_old_versions) -> Plan:
    """Compare desired objects with a snapshot of the swarm.

    ``current`` is plain data:
      ``services``: {full name: {"ID", "Version", "Spec", ...}} of services labelled with the stack;
      ``networks``: {name: {"Id", "Labels"}} of all networks (external references are looked up by name);
      ``secrets`` / ``configs``: {name: {"ID", "Labels", "CreatedAt"}} of all secrets/configs.
    Only objects labelled ``com.docker.stack.namespace=<stack>`` are ever removed.

    Returns the plan: per kind, the names to create/update/remove, plus ``missing`` external
    references and ``conflicts`` that make the deployment impossible.
    """
    plan = {
        "services": _plan_services(desired, current, prune),
        "networks": _plan_networks(stack, desired, current, prune),
    }
    for section in ("secrets", "configs"):
        plan[section] = _plan_files(stack, section, desired, current, prune, keep_old_versions)
    return plan


def _plan_services(desired, current, prune):
    out = {"create": [], "update": [], "remove": [], "unchanged": [], "orphaned": [], "drift": {}}
    desired_names = set()
    for spec in desired["services"].values():
        name = spec["Name"]
        desired_names.add(name)
        have = current["services"].get(name)
        if have is None:
            out["create"].append(name)
            continue
        if (have.get("Spec", {}).get("Labels") or {}).get(HASH_LABEL) != spec["Labels"][HASH_LABEL]:
            out["update"].append(name)  # the definition changed since the last apply
            continue
        # same definition as last applied: unchanged only if nobody changed the running spec since
        drift = spec_drift(spec, have.get("Spec"), current.get("network_names"))
        if drift:
            out["update"].append(name)
            out["drift"][name] = drift
        else:
            out["unchanged"].append(name)
    for name in sorted(current["services"]):
        if name not in desired_names:
            out["remove" if prune else "orphaned"].append(name)
    return out


def _plan_networks(stack, desired, current, prune):
    out = {"create": [], "remove": [], "missing": [], "conflicts": []}
    wanted_nets = set()
    for key, net in sorted(desired["networks"].items()):
        wanted_nets.add(net["name"])
        have = current["networks"].get(net["name"])
        if net["external"]:
            if have is None:
                out["missing"].append(net["name"])
            continue
        net_hash = spec_hash(net["spec"])
        if have is None:
            out["create"].append(net["name"])
        else:
            have_hash = (have.get("Labels") or {}).get(HASH_LABEL)
            if have_hash and have_hash != net_hash:
                out["conflicts"].append(
                    "network {} (networks.{}) exists with a different definition; networks are immutable: "
                    "remove the stack (state: absent) or give the network a new name".format(net["name"], key)
                )
    for name, have in sorted(current["networks"].items()):
        if name in wanted_nets:
            continue
        if (have.get("Labels") or {}).get(STACK_LABEL) == stack and prune:
            out["remove"].append(name)
    return out


def _plan_files(stack, section, desired, current, prune, keep_old_versions):
    """Secrets or configs: create the new content-addressed versions, keep ``keep_old_versions`` old ones."""
    sect = {"create": [], "remove": [], "prune_after_success": [], "missing": []}
    wanted = {}
    for _key, obj in sorted(desired[section].items()):
        if obj["external"]:
            if obj["name"] not in current[section]:
                sect["missing"].append(obj["name"])
            continue
        wanted[obj["base"]] = obj["name"]
        if obj["name"] not in current[section]:
            sect["create"].append(obj["name"])
    by_base = {}
    for name, have in current[section].items():
        labels = have.get("Labels") or {}
        if labels.get(STACK_LABEL) != stack:
            continue
        by_base.setdefault(labels.get(LOGICAL_NAME_LABEL, name), []).append((name, have))
    for base, items in sorted(by_base.items()):
        if base not in wanted:
            if prune:
                sect["remove"].extend(sorted(n for n, _h in items))
            continue
        old = sorted((i for i in items if i[0] != wanted[base]), key=lambda i: _created_key(i[1]), reverse=True)
        keep = max(keep_old_versions, 0)
        sect["prune_after_success"].extend(sorted(n for n, _h in old[keep:]))
    return sect


def plan_changes(plan):
    """True when applying the plan changes the swarm (pruning old secret versions included)."""
    s = plan["services"]
    n = plan["networks"]
    return bool(
        s["create"]
        or s["update"]
        or s["remove"]
        or n["create"]
        or n["remove"]
        or any(plan[k]["create"] or plan[k]["remove"] or plan[k]["prune_after_success"] for k in ("secrets", "configs"))
    )


def plan_errors(plan, desired):
    """Messages for references that do not exist and conflicts; empty when the plan can be applied."""
    errors = list(plan["networks"]["conflicts"])
    users = {}
    for short, spec in desired["services"].items():
        task = spec["TaskTemplate"]
        for att in task.get("Networks") or []:
            users.setdefault(("network", att["Target"]), []).append(short)
        for ref in task["ContainerSpec"].get("Secrets") or []:
            users.setdefault(("secret", ref["SecretName"]), []).append(short)
        for ref in task["ContainerSpec"].get("Configs") or []:
            users.setdefault(("config", ref["ConfigName"]), []).append(short)
    for kind, section in (("network", "networks"), ("secret", "secrets"), ("config", "configs")):
        for name in plan[section]["missing"]:
            errors.append(
                "external {} {!r} does not exist (used by service(s) {}); create it first or define it in the "
                "compose file's '{}:' section instead of external: true".format(
                    kind, name, ", ".join(sorted(users.get((kind, name), ["none"]))), section
                )
            )
    return errors


def service_diff(desired, current, plan, network_names):
    """Before/after per service for Ansible's diff mode (only services that change): the declarable fields,
    normalised as the drift check compares them (``_stack_drift.normalise``), so the diff shows what the run
    changes and nothing the engine filled in."""
    before = {}
    after = {}
    by_name = {spec["Name"]: spec for spec in desired["services"].values()}
    for name in plan["services"]["create"] + plan["services"]["update"]:
        if name in current["services"]:
            before[name] = live_for_compare(by_name[name], current["services"][name].get("Spec"), network_names)
        after[name] = normalise(by_name[name])
    for name in plan["services"]["remove"]:
        before[name] = normalise(current["services"][name].get("Spec"), network_names)
    return {"before": {"services": before}, "after": {"services": after}}


def update_changes(desired, current, plan):
    """{service: dotted paths that the update changes} for the plan summary; a service whose definition hash
    changed while its declarable fields did not (a new collection version) lists the hash label."""
    by_name = {spec["Name"]: spec for spec in desired["services"].values()}
    out = {}
    for name in plan["services"]["update"]:
        live = current["services"][name].get("Spec")
        out[name] = spec_drift(by_name[name], live, current["network_names"]) or [f"Labels.{HASH_LABEL}"]
    return out
