# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""swarm_stack's single entry point: plan, then (unless check mode) apply, wait, roll back.

All I/O is injected: the run object (``_stack_engine.StackRun``: the engine, see
``_stack_client.DockerApiEngine``, the clock, ``sleep`` and the action log) and :class:`NodeIO`
(``read_file`` for ``compose_files`` and ``file:`` secrets, ``parse_yaml``, the IPVS probe result).
:func:`run` returns the module result or raises ``StackError``; :func:`deploy` and
:func:`describe_module` are the modules' whole logic (result, or ``ModuleFailure``), so main() only
talks to AnsibleModule.
"""

import os
from dataclasses import dataclass
from typing import Callable, Optional

from ansible_collections.onmetal.faas.plugins.module_utils._engine_http import (
    EngineAPIError,
    EngineConfigError,
    client_from_params,
    connection_problem,
)
from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure
from ansible_collections.onmetal.faas.plugins.module_utils._registry_auth import RegistryAuthError
from ansible_collections.onmetal.faas.plugins.module_utils._stack_client import (
    StackError,
    check_manager,
    quorum_lost,
    quorum_message,
    read_current,
    resolve_digests,
    stack_objects,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import (
    HASH_LABEL,
    STACK_LABEL,
    ComposeError,
    merge_compose,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_drift import normalise
from ansible_collections.onmetal.faas.plugins.module_utils._stack_engine import WaitPolicy, parse_time, service_status
from ansible_collections.onmetal.faas.plugins.module_utils._stack_plan import (
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
from ansible_collections.onmetal.faas.plugins.module_utils._stack_spec import build_desired
from ansible_collections.onmetal.faas.plugins.module_utils._stack_types import StackResult


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


@dataclass
class NodeIO:
    """What a run reads on the managed node: ``read_file(path) -> bytes`` (``compose_files``, ``file:`` secrets),
    ``parse_yaml(text)`` (None when no compose_files are given) and whether the kernel has IPVS."""

    read_file: Callable
    parse_yaml: Optional[Callable] = None
    ipvs_present: bool = False


def _new_result(stack):
    return {"changed": False, "stack": stack, "actions": [], "warnings": [], "services": []}


def _absent(stack_run, stack, check_mode, want_diff, result):
    current = read_current(stack_run.engine, stack)
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
        if stack_run.before_apply is not None:
            stack_run.before_apply(result)
        stack_run.remove_stack(current, stack)
    return result


def _fail(exc, params, stack_run, stack, plan, current, result):
    """Raise the failure of an apply or a wait, after rolling back what this run did (if asked)."""
    done = stack_run.done
    details = dict(exc.details)
    details.update(plan=plan, actions=result["actions"], changed=bool(result["actions"]))
    if not (params["rollback_on_failure"] and (done.updated or done.created)):
        raise StackError(str(exc), **details) from None
    rolled = stack_run.rollback(current)
    details["rolled_back"] = rolled
    restored = [f"{n} (previous spec restored)" for n in rolled["updated"]]
    removed = [f"{n} (created by this run, removed)" for n in rolled["removed_created"]]
    msg = f"{exc}. Rolled back: " + (", ".join(restored + removed) or "nothing")
    if rolled["updated"]:
        after = stack_run.engine.info()
        try:
            since = parse_time(after.get("SystemTime"))
            policy = WaitPolicy(params["wait_timeout"], 0, rolling_back=True)
            stack_run.wait(stack, rolled["updated"], policy, since)
            msg += "; the previous version is running again"
            details["rollback_converged"] = True
        except StackError as rexc:
            msg += f"; the rollback did not converge either: {rexc}"
            details["rollback_converged"] = False
    if rolled["errors"]:
        msg += "; rollback errors: " + "; ".join(rolled["errors"])
    raise StackError(msg, **details) from None


def desired_state(params, stack_run, node, result):
    """The desired objects of the run (validated, endpoint mode applied, images pinned, hashed)."""
    mode, why = choose_endpoint_mode(params["endpoint_mode"], node.ipvs_present)
    compose = load_compose(params, node.read_file, node.parse_yaml)
    try:
        contents = read_contents(compose, params, node.read_file)
        desired = build_desired(params["name"], compose, contents["secrets"], contents["configs"], mode)
    except ComposeError as exc:
        raise StackError(f"compose: {exc}") from None
    result["warnings"].extend(desired["warnings"])
    result["endpoint_mode"] = {"mode": mode, "reason": why, "rewritten": desired["rewrites"]}

    if params["resolve_digests"]:
        users = {}
        for short, spec in desired["services"].items():
            users.setdefault(spec["TaskTemplate"]["ContainerSpec"]["Image"], []).append(short)
        pin_images(desired, resolve_digests(stack_run.engine, images_to_resolve(desired), users))
    if params["require_digests"]:
        try:
            check_digests(desired)
        except ComposeError as exc:
            raise StackError(str(exc)) from None
    finalize(desired)
    named_contents = {
        section: {obj["name"]: contents[section][key] for key, obj in desired[section].items() if not obj["external"]}
        for section in ("secrets", "configs")
    }
    return desired, named_contents


def _plan(params, desired, current, want_diff, result):
    plan = compute_plan(params["name"], desired, current, params["prune"], params["keep_old_versions"])
    errors = plan_errors(plan, desired)
    if errors:
        raise StackError("; ".join(errors), plan=plan)
    plan["services"]["changes"] = update_changes(desired, current, plan)
    result["plan"] = plan
    result["changed"] = plan_changes(plan)
    if want_diff:
        result["diff"] = service_diff(desired, current, plan, current["network_names"])
    return plan


def _wait(params, stack_run, service_names, since, plan, current, changed):
    """{name: status} once every service converged (the wait's own StackError otherwise)."""
    done = stack_run.done
    statuses = {}
    for status in stack_run.wait(
        params["name"],
        service_names,
        WaitPolicy(params["wait_timeout"], params["wait_max_task_failures"]),
        since,
        services=None if changed else list(current["services"].values()),
        fresh=set(done.created) | set(done.updated),
        rollout={
            name: (current["services"][name].get("UpdateStatus") or {}).get("StartedAt")
            for name in done.updated
            if any(p.startswith("TaskTemplate") for p in plan["services"]["changes"].get(name, []))
        },
    ):
        statuses[status["name"]] = status
    return statuses


def run(params, stack_run, node, check_mode=False, want_diff=False) -> StackResult:
    """swarm_stack's run: the module result, or StackError.  ``stack_run`` (:class:`._stack_engine.StackRun`)
    holds the engine, clock, sleep and the action log; ``node`` (:class:`NodeIO`) what is read on the node."""
    stack = params["name"]
    result = _new_result(stack)
    result["actions"] = stack_run.actions

    info = stack_run.engine.info()
    check_manager(info)
    since = parse_time(info.get("SystemTime"))

    if params["state"] == "absent":
        return _absent(stack_run, stack, check_mode, want_diff, result)

    desired, named_contents = desired_state(params, stack_run, node, result)
    current = read_current(stack_run.engine, stack)
    plan = _plan(params, desired, current, want_diff, result)
    by_full = {spec["Name"]: (short, spec) for short, spec in desired["services"].items()}
    if check_mode:
        result["services"] = [
            _service_summary(spec, short, service_id=(current["services"].get(name) or {}).get("ID"))
            for name, (short, spec) in sorted(by_full.items())
        ]
        return result

    if result["changed"]:
        if stack_run.before_apply is not None:
            stack_run.before_apply(result)
        try:
            stack_run.apply(plan, desired, current, named_contents, params["with_registry_auth"])
        except StackError as exc:
            _fail(exc, params, stack_run, stack, plan, current, result)

    statuses = {}
    if params["wait"] and by_full:
        try:
            statuses = _wait(params, stack_run, sorted(by_full), since, plan, current, result["changed"])
        except StackError as exc:
            _fail(exc, params, stack_run, stack, plan, current, result)

    if result["changed"]:
        result["pruned_old_versions"] = stack_run.prune_old_versions(plan, current)

    fresh_ids = dict(stack_run.done.created_ids)
    for name, svc in current["services"].items():
        fresh_ids.setdefault(name, svc["ID"])
    result["services"] = [
        _service_summary(spec, short, statuses.get(name), fresh_ids.get(name))
        for name, (short, spec) in sorted(by_full.items())
    ]
    return result


def _quorum(engine, msg):
    """Replace an engine error that means 'no leader' with the quorum message (counts from /info)."""
    if not quorum_lost(msg):
        return msg
    try:
        info = engine.info()
    except Exception:  # noqa: BLE001 - the message works without the counts
        info = None
    return quorum_message(msg, info)


def deploy(params, stack_run, node, check_mode=False, want_diff=False):
    """The module's whole logic: :func:`run` plus ``api_calls``, every failure turned into ModuleFailure with the
    module's message (quorum loss explained, connection problems named) and the partial result."""
    engine = stack_run.engine
    try:
        result = run(params, stack_run, node, check_mode, want_diff)
    except StackError as exc:
        details = dict(exc.details)
        details.setdefault("changed", False)
        raise ModuleFailure(_quorum(engine, str(exc)), api_calls=engine.calls, **details) from None
    except EngineAPIError as exc:
        raise ModuleFailure(_quorum(engine, f"Docker engine error: {exc}"), api_calls=engine.calls) from None
    except (RegistryAuthError, EngineConfigError) as exc:
        raise ModuleFailure(str(exc), api_calls=engine.calls) from None
    except OSError as exc:  # no socket, refused, TLS, or the engine did not answer in time
        raise ModuleFailure(connection_problem(exc, engine.http), api_calls=engine.calls) from None
    result["api_calls"] = engine.calls
    return result


def connect(params, environ):
    """The engine client from the connection options (``_docker_api.DOCKER_COMMON_ARGS``); ModuleFailure when the
    settings cannot work."""
    try:
        return client_from_params(params, environ)
    except EngineConfigError as exc:
        raise ModuleFailure(str(exc)) from None


def describe_module(params, engine):
    """swarm_stack_info's whole logic: :func:`describe`, failures as ModuleFailure with the module's message."""
    http = engine.http
    try:
        return describe(params, engine)
    except StackError as exc:
        raise ModuleFailure(str(exc), **exc.details) from None
    except EngineAPIError as exc:
        raise ModuleFailure(f"Docker engine error at {http.base_url}: {exc}") from None
    except OSError as exc:
        raise ModuleFailure(connection_problem(exc, http)) from None


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
