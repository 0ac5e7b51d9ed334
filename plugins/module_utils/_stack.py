# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""swarm_stack's single entry point: plan, then (unless check mode) apply, wait, roll back.

All I/O is injected: the engine (see ``_stack_engine.DockerApiEngine``), ``read_file`` for
``compose_files`` and ``file:`` secrets, ``parse_yaml``, the IPVS probe result, the clock and
``sleep``.  ``run`` returns the module result or raises ``StackError``.
"""

import os

from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import (
    HASH_LABEL,
    STACK_LABEL,
    ComposeError,
    merge_compose,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_drift import normalise
from ansible_collections.onmetal.faas.plugins.module_utils._stack_engine import (
    StackError,
    apply_plan,
    check_manager,
    parse_time,
    prune_old_versions,
    read_current,
    remove_stack,
    resolve_digests,
    rollback,
    service_status,
    stack_objects,
    wait_for_services,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_plan import (
    build_desired,
    check_digests,
    compute_plan,
    finalize,
    images_to_resolve,
    pin_images,
    plan_changes,
    plan_errors,
    service_diff,
    update_changes,
)


def choose_endpoint_mode(requested, ipvs_present):
    """-> (mode, why).  'auto' picks dnsrr when the kernel has no IPVS (no routing mesh, no VIPs)."""
    if requested in ("vip", "dnsrr"):
        return requested, "set by the endpoint_mode option"
    if ipvs_present:
        return "vip", "auto: IPVS present on this node"
    return "dnsrr", "auto: IPVS is missing on this node (no routing mesh); using dnsrr and host-mode ports"


def load_compose(params, read_file, parse_yaml):
    """The compose document: the ``compose`` option, or the ``compose_files`` merged in order."""
    if params.get("compose") is not None:
        return params["compose"]
    documents = []
    for path in params.get("compose_files") or []:
        try:
            text = read_file(path)
        except OSError as exc:
            raise StackError(f"compose_files: cannot read {path}: {exc.strerror or exc}") from None
        try:
            doc = parse_yaml(text)
        except Exception as exc:  # noqa: BLE001 - yaml errors carry the position
            raise StackError(f"compose_files: {path} is not valid YAML: {exc}") from None
        documents.append(doc if doc is not None else {})
    try:
        return merge_compose(documents)
    except ComposeError as exc:
        raise StackError(str(exc)) from None


def _project_dir(params):
    if params.get("project_dir"):
        return params["project_dir"]
    files = params.get("compose_files") or []
    return os.path.dirname(os.path.abspath(files[0])) if files else None


def read_contents(compose, params, read_file):
    """{'secrets': {key: bytes}, 'configs': {key: bytes}} from ``file:`` and the *_contents options."""
    out = {}
    base = _project_dir(params)
    for section, option in (("secrets", "secret_contents"), ("configs", "config_contents")):
        given = params.get(option) or {}
        contents = {}
        for key, item in (compose.get(section) or {}).items() if isinstance(compose, dict) else ():
            item = item or {}
            if not isinstance(item, dict) or item.get("external"):
                continue
            if key in given:
                value = given[key]
                contents[key] = value.encode("utf-8") if isinstance(value, str) else value
            elif isinstance(item.get("file"), str):
                path = item["file"]
                if not os.path.isabs(path):
                    if not base:
                        raise StackError(
                            f"{section}.{key}.file: {path!r} is relative; set project_dir (or use an absolute path)"
                        )
                    path = os.path.join(base, path)
                try:
                    contents[key] = read_file(path)
                except OSError as exc:
                    raise StackError(
                        f"{section}.{key}.file: cannot read {path} on the managed node: {exc.strerror or exc}"
                    ) from None
        unknown = sorted(set(given) - set(contents))
        if unknown:
            raise StackError(
                f"{option}: {', '.join(unknown)} not defined (without external: true) in the compose file's "
                f"'{section}:' section"
            )
        out[section] = contents
    return out


def _service_summary(spec, short, status=None, service_id=None):
    container = spec["TaskTemplate"]["ContainerSpec"]
    endpoint = spec.get("EndpointSpec") or {}
    mode = spec.get("Mode") or {}
    item = {
        "name": spec["Name"],
        "service": short,
        "image": container["Image"],
        "mode": "global" if "Global" in mode else "replicated",
        "endpoint_mode": endpoint.get("Mode", "vip"),
        "ports": [
            {
                "published": p.get("PublishedPort"),
                "target": p["TargetPort"],
                "protocol": p["Protocol"],
                "mode": p.get("PublishMode", "ingress"),
            }
            for p in endpoint.get("Ports") or []
        ],
    }
    if "Replicated" in mode:
        item["replicas"] = mode["Replicated"].get("Replicas", 1)
    if service_id:
        item["id"] = service_id
    if status:
        item["running"] = status["running"]
        item["desired"] = status["desired"]
        item["converged"] = status["state"] == "converged"
    return item


def _absent(engine, stack, check_mode, want_diff, result, sleep, before_apply=None):
    current = read_current(engine, stack)
    objects = stack_objects(current, stack)
    plan = {
        "services": {"create": [], "update": [], "remove": sorted(current["services"]), "unchanged": []},
        "networks": {"create": [], "remove": objects["networks"]},
        "secrets": {"create": [], "remove": objects["secrets"]},
        "configs": {"create": [], "remove": objects["configs"]},
    }
    result["plan"] = plan
    result["changed"] = bool(current["services"] or any(objects.values()))
    if want_diff:
        result["diff"] = {
            "before": {
                "services": {
                    n: normalise(s.get("Spec"), current["network_names"]) for n, s in current["services"].items()
                }
            },
            "after": {"services": {}},
        }
    if result["changed"] and not check_mode:
        if before_apply is not None:
            before_apply(result)
        remove_stack(engine, current, stack, result["actions"], sleep)
    return result


def _fail(exc, params, engine, stack, plan, current, done, result, clock, sleep):
    """Raise the failure of an apply or a wait, after rolling back what this run did (if asked)."""
    details = dict(exc.details)
    details.update(plan=plan, actions=result["actions"], changed=bool(result["actions"]))
    if not (params["rollback_on_failure"] and (done["updated"] or done["created"])):
        raise StackError(str(exc), **details) from None
    rolled = rollback(engine, done, current, result["actions"])
    details["rolled_back"] = rolled
    restored = [f"{n} (previous spec restored)" for n in rolled["updated"]]
    removed = [f"{n} (created by this run, removed)" for n in rolled["removed_created"]]
    msg = f"{exc}. Rolled back: " + (", ".join(restored + removed) or "nothing")
    if rolled["updated"]:
        after = engine.info()
        try:
            wait_for_services(
                engine,
                stack,
                rolled["updated"],
                params["wait_timeout"],
                0,
                parse_time(after.get("SystemTime")),
                clock,
                sleep,
                rolling_back=True,
            )
            msg += "; the previous version is running again"
            details["rollback_converged"] = True
        except StackError as rexc:
            msg += f"; the rollback did not converge either: {rexc}"
            details["rollback_converged"] = False
    if rolled["errors"]:
        msg += "; rollback errors: " + "; ".join(rolled["errors"])
    raise StackError(msg, **details) from None


def run(params, engine, read_file, parse_yaml, ipvs_present, check_mode, want_diff, clock, sleep, before_apply=None):
    """``before_apply(result)``, when given, is called once the plan says a real run must change something,
    before the first write (the action plugin's no-op probe uses it to hand over to the module)."""
    stack = params["name"]
    result = {"changed": False, "stack": stack, "actions": [], "warnings": [], "services": []}

    info = engine.info()
    check_manager(info)
    since = parse_time(info.get("SystemTime"))

    if params["state"] == "absent":
        return _absent(engine, stack, check_mode, want_diff, result, sleep, before_apply)

    mode, why = choose_endpoint_mode(params["endpoint_mode"], ipvs_present)
    compose = load_compose(params, read_file, parse_yaml)
    try:
        contents = read_contents(compose, params, read_file)
        desired = build_desired(stack, compose, contents["secrets"], contents["configs"], mode)
    except ComposeError as exc:
        raise StackError(f"compose: {exc}") from None
    result["warnings"].extend(desired["warnings"])
    result["endpoint_mode"] = {"mode": mode, "reason": why, "rewritten": desired["rewrites"]}

    if params["resolve_digests"]:
        users = {}
        for short, spec in desired["services"].items():
            users.setdefault(spec["TaskTemplate"]["ContainerSpec"]["Image"], []).append(short)
        pin_images(desired, resolve_digests(engine, images_to_resolve(desired), users))
    if params["require_digests"]:
        try:
            check_digests(desired)
        except ComposeError as exc:
            raise StackError(str(exc)) from None
    finalize(desired)

    current = read_current(engine, stack)
    plan = compute_plan(stack, desired, current, params["prune"], params["keep_old_versions"])
    errors = plan_errors(plan, desired)
    if errors:
        raise StackError("; ".join(errors), plan=plan)
    by_full = {spec["Name"]: (short, spec) for short, spec in desired["services"].items()}
    plan["services"]["changes"] = update_changes(desired, current, plan)
    result["plan"] = plan
    result["changed"] = plan_changes(plan)
    if want_diff:
        result["diff"] = service_diff(desired, current, plan, current["network_names"])

    service_names = sorted(by_full)
    if check_mode:
        result["services"] = [
            _service_summary(spec, short, service_id=(current["services"].get(name) or {}).get("ID"))
            for name, (short, spec) in sorted(by_full.items())
        ]
        return result

    named_contents = {}
    for section in ("secrets", "configs"):
        named_contents[section] = {
            obj["name"]: contents[section][key] for key, obj in desired[section].items() if not obj["external"]
        }
    done = {"created": [], "created_ids": {}, "updated": [], "removed": []}
    if result["changed"] and before_apply is not None:
        before_apply(result)
    if result["changed"]:
        try:
            apply_plan(
                engine,
                plan,
                desired,
                current,
                named_contents,
                params["with_registry_auth"],
                result["actions"],
                sleep,
                done,
            )
        except StackError as exc:
            _fail(exc, params, engine, stack, plan, current, done, result, clock, sleep)

    statuses = {}
    if params["wait"] and service_names:
        try:
            for status in wait_for_services(
                engine,
                stack,
                service_names,
                params["wait_timeout"],
                params["wait_max_task_failures"],
                since,
                clock,
                sleep,
                services=None if result["changed"] else list(current["services"].values()),
                fresh=set(done["created"]) | set(done["updated"]),
                rollout={
                    name: (current["services"][name].get("UpdateStatus") or {}).get("StartedAt")
                    for name in done["updated"]
                    if any(p.startswith("TaskTemplate") for p in plan["services"]["changes"].get(name, []))
                },
            ):
                statuses[status["name"]] = status
        except StackError as exc:
            _fail(exc, params, engine, stack, plan, current, done, result, clock, sleep)

    if result["changed"]:
        result["pruned_old_versions"] = prune_old_versions(engine, plan, current, result["actions"])

    fresh_ids = dict(done["created_ids"])
    for name, svc in current["services"].items():
        fresh_ids.setdefault(name, svc["ID"])
    result["services"] = [
        _service_summary(spec, short, statuses.get(name), fresh_ids.get(name))
        for name, (short, spec) in sorted(by_full.items())
    ]
    return result


def describe(params, engine):
    """swarm_stack_info: every stack (name given: one stack) with services, tasks and objects."""
    info = engine.info()
    check_manager(info)
    stack = params.get("name")
    if not stack:
        counts = {}
        for svc in engine.services(None):
            name = (svc["Spec"].get("Labels") or {}).get(STACK_LABEL)
            counts[name] = counts.get(name, 0) + 1
        return {"stacks": [{"name": n, "services": c} for n, c in sorted(counts.items())]}
    current = read_current(engine, stack)
    services = list(current["services"].values())
    tasks = engine.tasks([s["ID"] for s in services]) if services else []
    by_service = {}
    for task in tasks:
        by_service.setdefault(task.get("ServiceID"), []).append(task)
    out = []
    for svc in sorted(services, key=lambda s: s["Spec"]["Name"]):
        spec = svc["Spec"]
        status = service_status(svc, by_service.get(svc["ID"], []), None, 0, fresh=False)
        labels = spec.get("Labels") or {}
        item = _service_summary(spec, spec["Name"][len(stack) + 1 :], status, svc["ID"])
        item["update_state"] = (svc.get("UpdateStatus") or {}).get("State")
        item["applied_hash"] = labels.get(HASH_LABEL)
        item["managed"] = HASH_LABEL in labels
        item["message"] = status["message"]
        out.append(item)
    objects = stack_objects(current, stack)
    return {
        "stacks": [{"name": stack, "services": len(out)}] if out or any(objects.values()) else [],
        "services": out,
        "networks": objects["networks"],
        "secrets": objects["secrets"],
        "configs": objects["configs"],
    }
