# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Apply a stack plan, wait for convergence, roll back: swarm_stack's run object (:class:`StackRun`).

The engine (``_stack_client.DockerApiEngine`` or a fake with its methods), the clock and ``sleep``
are injected; :class:`StackRun` holds them with the action log and what was done.
"""

import copy
import datetime
import re
import time
from dataclasses import dataclass, field

from ansible_collections.onmetal.faas.plugins.module_utils._stack_client import StackError
from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import (
    HASH_LABEL,
    STACK_LABEL,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_plan import spec_hash

# --------------------------------------------------------------------------------------------
# Applying


def _with_ids(spec, secret_ids, config_ids):
    spec = copy.deepcopy(spec)
    container = spec["TaskTemplate"]["ContainerSpec"]
    for ref in container.get("Secrets") or []:
        ref["SecretID"] = secret_ids[ref["SecretName"]]
    for ref in container.get("Configs") or []:
        ref["ConfigID"] = config_ids[ref["ConfigName"]]
    return spec


@dataclass
class Done:
    """What a run did so far, filled in as the work proceeds (a failed request still leaves it right)."""

    created: list = field(default_factory=list)
    created_ids: dict = field(default_factory=dict)  # {service name: ID}
    updated: list = field(default_factory=list)
    removed: list = field(default_factory=list)


@dataclass(frozen=True)
class WaitPolicy:
    """How :meth:`StackRun.wait` polls and judges.

    ``timeout``: seconds until the wait gives up.  ``max_failures``: failed tasks (since the run's start) that
    fail a service at once; 0 never does.  ``rolling_back``: the wait follows a rollback, so a rollback the
    swarm completed is what is waited for, not a failure.  ``interval``: seconds between polls.
    ``rollout_grace``: see :meth:`StackRun.wait`.
    """

    timeout: float
    max_failures: int
    interval: float = 1.0
    rollout_grace: float = 15.0
    rolling_back: bool = False


class StackRun:
    """One run against the engine (kubernetes.core's service-object style): the engine, the clock and ``sleep``,
    the action log (``actions``, the module's RV(actions)) and what was done (``done``, for the rollback).

    ``before_apply(result)``, when given, is called once a run must change something, before the first write
    (the action plugin's no-op probe uses it to hand over to the module).
    """

    def __init__(self, engine, clock, sleep, before_apply=None):
        self.engine = engine
        self.clock = clock
        self.sleep = sleep
        self.before_apply = before_apply
        self.actions = []
        self.done = Done()

    def apply(self, plan, desired, current, contents, with_registry_auth):
        """Apply a computed plan.  ``contents`` = {"secrets": {name: bytes}, "configs": {...}} keyed by the
        content-addressed object name."""
        engine, log, done = self.engine, self.actions, self.done
        for name in plan["services"]["remove"]:
            _engine_call(engine.remove_service, f"remove service {name}", current["services"][name]["ID"])
            done.removed.append(name)
            log.append(f"removed service {name}")

        nets_by_name = {n["name"]: n for n in desired["networks"].values()}
        for name in plan["networks"]["create"]:
            spec = copy.deepcopy(nets_by_name[name]["spec"])
            spec["Labels"][HASH_LABEL] = spec_hash(nets_by_name[name]["spec"])
            _engine_call(engine.create_network, f"create network {name}", spec)
            log.append(f"created network {name}")

        ids = self._create_objects(plan, desired, current, contents)
        by_full = {spec["Name"]: spec for spec in desired["services"].values()}
        for name in plan["services"]["create"]:
            spec = _with_ids(by_full[name], ids["secrets"], ids["configs"])
            auth = engine.registry_auth(spec["TaskTemplate"]["ContainerSpec"]["Image"]) if with_registry_auth else None
            done.created_ids[name] = _service_call(
                engine, nets_by_name, log, engine.create_service, f"create service {name}", spec, auth
            )
            done.created.append(name)
            log.append(f"created service {name}")
        for name in plan["services"]["update"]:
            have = current["services"][name]
            spec = _with_ids(by_full[name], ids["secrets"], ids["configs"])
            force = (have["Spec"].get("TaskTemplate") or {}).get("ForceUpdate")
            if force:
                spec["TaskTemplate"]["ForceUpdate"] = force
            auth = engine.registry_auth(spec["TaskTemplate"]["ContainerSpec"]["Image"]) if with_registry_auth else None
            what = f"update service {name}"
            args = (have["ID"], have["Version"]["Index"], spec, auth)
            _service_call(engine, nets_by_name, log, engine.update_service, what, *args)
            done.updated.append(name)
            log.append(f"updated service {name}")

        removed_ids = [current["services"][name]["ID"] for name in plan["services"]["remove"]]
        nets = [(current["networks"][name]["Id"], name) for name in plan["networks"]["remove"]]
        _remove_networks(engine, nets, removed_ids, self.sleep)
        log.extend(f"removed network {name}" for _id, name in nets)
        for section, remove in (("secrets", engine.remove_secret), ("configs", engine.remove_config)):
            for name in plan[section]["remove"]:
                _engine_call(remove, f"remove {section[:-1]} {name}", current[section][name]["ID"])
                log.append(f"removed {section[:-1]} {name}")
        return done

    def _create_objects(self, plan, desired, current, contents):
        """Create the plan's secrets and configs; -> {section: {name: ID}} of every object the services can use."""
        ids = {}
        for section, create in (("secrets", self.engine.create_secret), ("configs", self.engine.create_config)):
            ids[section] = {name: obj["ID"] for name, obj in current[section].items()}
            by_name = {o["name"]: o for o in desired[section].values() if not o["external"]}
            for name in plan[section]["create"]:
                ids[section][name] = _engine_call(
                    create, f"create {section[:-1]} {name}", name, contents[section][name], by_name[name]["labels"]
                )
                self.actions.append(f"created {section[:-1]} {name}")
        return ids

    def prune_old_versions(self, plan, current):
        return prune_old_versions(self.engine, plan, current, self.actions)

    def remove_stack(self, current, stack):
        return remove_stack(self.engine, current, stack, self.actions, self.sleep)

    def rollback(self, current):
        return rollback(self.engine, self.done, current, self.actions)

    def wait(self, stack, names, policy, since, services=None, fresh=None, rollout=None):
        """Poll until every named service converged; -> their statuses (:func:`service_status`), or StackError
        naming the failed service(s).

        ``policy``: a :class:`WaitPolicy`.  ``since`` (datetime or None): task failures older than this belong
        to earlier deployments.  ``services`` (optional): a fresh list of the stack's services to use for the
        first check, which saves one request when nothing was changed.  ``fresh``: names created/updated by this
        run (default: all).  ``rollout``: {name: UpdateStatus.StartedAt before this run's update} for services
        whose task template this run changed.  Right after such an update the old tasks still run and the
        engine may not show the new update yet, which looks converged; such a service counts as pending
        until its UpdateStatus shows a new update (different StartedAt), for at most ``policy.rollout_grace``
        seconds (changes the orchestrator does not roll out, e.g. a constraint the node still meets,
        never start one)."""
        engine, clock, sleep = self.engine, self.clock, self.sleep
        timeout = policy.timeout
        started = clock()
        deadline = started + timeout
        while True:
            listed = services if services is not None else engine.services(stack)
            services = None
            by_name = {s["Spec"]["Name"]: s for s in listed}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise StackError("service(s) {} disappeared while waiting".format(", ".join(missing)))
            ids = [by_name[n]["ID"] for n in names]
            tasks = engine.tasks(ids) if ids else []
            per_service = {}
            for task in tasks:
                per_service.setdefault(task.get("ServiceID"), []).append(task)
            statuses = [
                service_status(
                    by_name[n],
                    per_service.get(by_name[n]["ID"], []),
                    since,
                    policy.max_failures,
                    policy.rolling_back,
                    fresh is None or n in fresh,
                )
                for n in names
            ]
            if rollout and clock() - started < policy.rollout_grace:
                for status in statuses:
                    name = status["name"]
                    if name in rollout and status["state"] == "converged":
                        now = (by_name[name].get("UpdateStatus") or {}).get("StartedAt")
                        if not now or now == rollout[name]:
                            status["state"] = "pending"
                            status["message"] = "waiting for the swarm to start rolling out the new spec"
            failed = [s for s in statuses if s["state"] == "failed"]
            if failed:
                raise StackError(_status_text("did not converge", failed), statuses=statuses)
            if all(s["state"] == "converged" for s in statuses):
                return statuses
            if clock() >= deadline:
                late = [s for s in statuses if s["state"] != "converged"]
                raise StackError(_status_text(f"did not converge within {timeout}s", late), statuses=statuses)
            sleep(policy.interval)


_NETWORK_NOT_FOUND = re.compile(r"network (\S+) not found")


def _service_call(engine, networks, log, func, what, *args):
    """Create/update a service; when the engine says one of the stack's own networks is not found,
    create it and try once more.  Right after a network was removed (``docker stack rm`` returns
    before the tasks are gone) engines still list a stale copy for a few seconds, so the plan
    believed it existed."""
    try:
        return func(*args)
    except Exception as exc:  # noqa: BLE001
        match = _NETWORK_NOT_FOUND.search(_explain(exc))
        net = networks.get(match.group(1)) if match else None
        if net is None or net["external"]:
            raise StackError(f"engine refused to {what}: {_explain(exc)}") from None
    spec = copy.deepcopy(net["spec"])
    spec["Labels"][HASH_LABEL] = spec_hash(net["spec"])
    _engine_call(engine.create_network, f"create network {net['name']}", spec)
    log.append(f"created network {net['name']} (the engine listed a stale copy of it)")
    return _engine_call(func, what, *args)


def _engine_call(func, what, *args):
    try:
        return func(*args)
    except StackError:
        raise
    except Exception as exc:  # noqa: BLE001 - EngineAPIError and connection errors
        raise StackError(f"engine refused to {what}: {_explain(exc)}") from None


def _explain(exc):
    text = getattr(exc, "explanation", None) or str(exc)
    return text if isinstance(text, str) else text.decode("utf-8", "replace")


def _remove_network(engine, net_id, name, sleep, attempts=15):
    for attempt in range(attempts):
        try:
            engine.remove_network(net_id)
            return
        except Exception as exc:  # noqa: BLE001
            text = _explain(exc)
            if "not found" in text:
                return  # already gone (removed concurrently, or a retry after the engine finished it)
            if "active endpoints" not in text and "in use" not in text or attempt == attempts - 1:
                raise StackError(f"engine refused to remove network {name}: {text}") from None
            sleep(1)


def _remove_networks(engine, networks, removed_service_ids, sleep, polls=30):
    """Remove networks once the tasks of removed services are gone, then wait until the engine no
    longer lists them (a node keeps a stale copy while containers on it shut down; a deploy right
    after would otherwise see the network and not create it)."""
    if not networks:
        return
    if removed_service_ids:
        for _poll in range(polls):
            try:
                if not engine.tasks(removed_service_ids):
                    break
            except Exception:  # noqa: BLE001 - engines answer "not found" once a removed service is gone
                break
            sleep(1)
    for net_id, name in networks:
        _remove_network(engine, net_id, name, sleep)
    names = {name for _id, name in networks}
    for _poll in range(polls):
        if not names & {n["Name"] for n in engine.networks()}:
            return
        sleep(1)


def prune_old_versions(engine, plan, current, log):
    removed = []
    for section, remove in (("secrets", engine.remove_secret), ("configs", engine.remove_config)):
        for name in plan[section]["prune_after_success"]:
            try:
                remove(current[section][name]["ID"])
            except Exception as exc:  # noqa: BLE001 - still used by a service outside the stack
                log.append(f"kept old {section[:-1]} {name}: {_explain(exc)}")
                continue
            removed.append(name)
            log.append(f"pruned old {section[:-1]} {name}")
    return removed


def remove_stack(engine, current, stack, log, sleep=time.sleep):
    """state=absent: services first, then networks, secrets and configs with the stack label."""
    removed = {"services": [], "networks": [], "secrets": [], "configs": []}
    for name, svc in sorted(current["services"].items()):
        _engine_call(engine.remove_service, f"remove service {name}", svc["ID"])
        removed["services"].append(name)
    nets = [
        (net["Id"], name)
        for name, net in sorted(current["networks"].items())
        if (net.get("Labels") or {}).get(STACK_LABEL) == stack
    ]
    _remove_networks(engine, nets, [svc["ID"] for svc in current["services"].values()], sleep)
    removed["networks"] = [name for _id, name in nets]
    for section, remove in (("secrets", engine.remove_secret), ("configs", engine.remove_config)):
        for name, obj in sorted(current[section].items()):
            if (obj.get("Labels") or {}).get(STACK_LABEL) == stack:
                _engine_call(remove, f"remove {section[:-1]} {name}", obj["ID"])
                removed[section].append(name)
    for kind, names in removed.items():
        log.extend(f"removed {kind[:-1]} {n}" for n in names)
    return removed


# --------------------------------------------------------------------------------------------
# Waiting


_TS_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def parse_time(text):
    """Engine RFC 3339 timestamps (nanoseconds, any offset) -> aware datetime; None when absent."""
    if not text:
        return None
    match = _TS_RE.match(text)
    if not match:
        return None
    base, frac, zone = match.groups()
    frac = (frac or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone
    return datetime.datetime.fromisoformat(f"{base}.{frac}{zone}")


FAILED_TASK_STATES = ("failed", "rejected", "orphaned")


def service_status(service, tasks, since, max_failures, rolling_back=False, fresh=True):
    """Pure convergence check of one service from its inspect data and its tasks.

    Returns {"name", "state": converged|pending|failed, "running", "desired", "message"}.
    ``since`` (datetime or None): failures older than this belong to earlier deployments.
    ``fresh``: the service was created or updated by this run; a rollback the swarm did on its own
    is then a failure of this run, while for an untouched service it is history.
    """
    spec = service["Spec"]
    name = spec["Name"]
    mode = spec.get("Mode") or {}
    update = service.get("UpdateStatus") or {}
    active = [t for t in tasks if t.get("DesiredState") == "running"]
    running = [t for t in active if (t.get("Status") or {}).get("State") == "running"]
    desired = len(active) if "Global" in mode else (mode.get("Replicated") or {}).get("Replicas", 1)
    result = {"name": name, "running": len(running), "desired": desired, "state": "pending", "message": ""}

    recent = sorted(
        (t for t in tasks if t.get("Status", {}).get("State") in FAILED_TASK_STATES or t.get("Status", {}).get("Err")),
        key=lambda t: (
            parse_time(t.get("Status", {}).get("Timestamp"))
            or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
        ),
        reverse=True,
    )
    if since is not None:
        recent = [t for t in recent if (parse_time(t.get("Status", {}).get("Timestamp")) or since) >= since]
    failures = [t for t in recent if t["Status"].get("State") in FAILED_TASK_STATES]
    if recent:
        result["message"] = _task_text(recent[0])

    state = update.get("State")
    if state in ("paused", "rollback_paused"):
        result["state"] = "failed"
        result["message"] = "update {}: {}".format(state, update.get("Message", "")) + (
            "; last task: {}".format(result["message"]) if result["message"] else ""
        )
        return result
    if state == "rollback_completed" and fresh and not rolling_back:
        result["state"] = "failed"
        result["message"] = "swarm rolled the update back itself (update_config.failure_action: rollback): {}".format(
            update.get("Message", ""),
        ) + ("; last task: {}".format(result["message"]) if result["message"] else "")
        return result
    pending = state in ("updating", "rollback_started")
    if not pending and len(running) == desired and len(active) == desired and ("Global" not in mode or desired > 0):
        result["state"] = "converged"
        result["message"] = ""
        return result
    if max_failures and len(failures) >= max_failures:
        result["state"] = "failed"
    return result


def _task_text(task):
    status = task.get("Status") or {}
    slot = task.get("Slot")
    label = "task %s" % (slot if slot is not None else task.get("ID", "?")[:12])
    text = "{} is {}".format(label, status.get("State", "?"))
    if status.get("Err"):
        text += ": {}".format(status["Err"])
    elif status.get("Message"):
        text += " ({})".format(status["Message"])
    return text


def _status_text(what, statuses):
    parts = []
    for s in statuses:
        text = "service {} {} ({}/{} tasks running)".format(s["name"], what, s["running"], s["desired"])
        if s["message"]:
            text += ": {}".format(s["message"])
        parts.append(text)
    return "; ".join(parts)


def rollback(engine, done, current, log):
    """Roll updated services back to their previous spec; remove services created by this run (``done``: a
    :class:`Done`)."""
    rolled = {"updated": [], "removed_created": [], "errors": []}
    for name in done.updated:
        try:
            svc = engine.inspect_service(current["services"][name]["ID"])
            engine.update_service(svc["ID"], svc["Version"]["Index"], svc["Spec"], None, True)
            rolled["updated"].append(name)
            log.append(f"rolled back service {name} to its previous spec")
        except Exception as exc:  # noqa: BLE001
            rolled["errors"].append(f"rollback of {name} failed: {_explain(exc)}")
    for name in done.created:
        try:
            engine.remove_service(done.created_ids[name])
            rolled["removed_created"].append(name)
            log.append(f"removed service {name} created by this run")
        except Exception as exc:  # noqa: BLE001
            rolled["errors"].append(f"removal of {name} failed: {_explain(exc)}")
    return rolled
