"""Drift detection against real Engine API JSON.

fixtures/engine_specs.json holds what Docker Engine 20.10 returned for a stack deployed by swarm_stack's own
run() from fixtures' WIDE_COMPOSE (every field kind of the compose subset), and the same services after hand
changes with the docker CLI (scale, --env-add/--env-rm, --force, --label-add, --image); see
fixtures/capture_engine_specs.py, which wrote it.  A true no-op must compare equal on that JSON; each hand change
and each edited field kind must show up as drift on its own path.
"""

import copy
import json
import os

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import HASH_LABEL
from ansible_collections.onmetal.faas.plugins.module_utils._stack_drift import normalise, spec_drift
from ansible_collections.onmetal.faas.plugins.module_utils._stack_plan import (
    compute_plan,
    finalize,
    service_diff,
    update_changes,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_spec import build_desired

with open(os.path.join(os.path.dirname(__file__), "fixtures", "engine_specs.json")) as _fh:
    ENGINE = json.load(_fh)
NETWORK_NAMES = {n["Id"]: n["Name"] for n in ENGINE["networks"]}
DIGEST = "sha256:" + "a" * 64


def _desired():
    desired = build_desired("drift", ENGINE["compose"], {"token": b"s3cret"}, {"conf": b"a=1\n"}, "dnsrr")
    return finalize(desired)


DESIRED = {spec["Name"]: spec for spec in _desired()["services"].values()}
LIVE = {svc["Spec"]["Name"]: svc for svc in ENGINE["deployed"]}


def _live(name="drift_web"):
    return copy.deepcopy(LIVE[name]["Spec"])


def _current(services):
    return {
        "services": {s["Spec"]["Name"]: s for s in services},
        "networks": {n["Name"]: n for n in ENGINE["networks"]},
        "network_names": NETWORK_NAMES,
        "secrets": {},
        "configs": {},
    }


def test_fixture_covers_the_field_kinds():
    container = _live()["TaskTemplate"]["ContainerSpec"]
    for key in ("Env", "Mounts", "Secrets", "Configs", "Healthcheck", "Labels", "Args", "Command", "Hosts"):
        assert key in container
    assert set(LIVE) == {"drift_web", "drift_api", "drift_worker", "drift_plain"}


@pytest.mark.parametrize("name", sorted(LIVE))
def test_deployed_engine_json_is_no_drift(name):
    # the engine filled in Isolation, Runtime, ForceUpdate, update/rollback defaults and network IDs
    assert LIVE[name]["Spec"]["TaskTemplate"]["ContainerSpec"].get("Isolation") == "default"
    assert spec_drift(DESIRED[name], LIVE[name]["Spec"], NETWORK_NAMES) == []


CLI_EXPECTED = {
    ("service", "scale", "-d", "drift_web=0"): ["Mode.Replicated.Replicas"],
    ("service", "update", "-d", "--env-add", "Z=hand", "drift_api"): ["TaskTemplate.ContainerSpec.Env"],
    ("service", "update", "-d", "--env-rm", "Z", "drift_api"): [],
    ("service", "update", "-d", "--force", "drift_plain"): [],
    ("service", "update", "-d", "--label-add", "hand=1", "drift_plain"): ["Labels.hand"],
    ("service", "update", "-d", "--image", "drift/other:2", "--no-resolve-image", "drift_worker"): [
        "TaskTemplate.ContainerSpec.Image"
    ],
}


@pytest.mark.parametrize("change", ENGINE["cli"], ids=lambda c: " ".join(c["args"][1:]))
def test_hand_changes_with_the_docker_cli(change):
    name = "drift_" + change["service"]
    assert change["after"]["Spec"]["Labels"][HASH_LABEL] == DESIRED[name]["Labels"][HASH_LABEL]  # label untouched
    assert spec_drift(DESIRED[name], change["after"]["Spec"], NETWORK_NAMES) == CLI_EXPECTED[tuple(change["args"])]


def _set(spec, path, value):
    *parents, last = path
    for key in parents:
        spec = spec.setdefault(key, {})
    spec[last] = value


def _del(spec, path):
    *parents, last = path
    for key in parents:
        spec = spec[key]
    del spec[last]


C = ("TaskTemplate", "ContainerSpec")
T = ("TaskTemplate",)
DRIFTS = [
    # (id, edit of the live web spec, expected drift paths)
    ("replicas", lambda s: _set(s, ("Mode", "Replicated", "Replicas"), 5), ["Mode.Replicated.Replicas"]),
    (
        "env value",
        lambda s: s["TaskTemplate"]["ContainerSpec"]["Env"].__setitem__(0, "A_VAR=9"),
        [".".join(C + ("Env",))],
    ),
    ("env removed", lambda s: s["TaskTemplate"]["ContainerSpec"]["Env"].pop(), [".".join(C + ("Env",))]),
    ("image", lambda s: _set(s, C + ("Image",), "onmetal-rig/probe:old"), [".".join(C + ("Image",))]),
    (
        "mount read-only",
        lambda s: s["TaskTemplate"]["ContainerSpec"]["Mounts"][0].__setitem__("ReadOnly", True),
        [".".join(C + ("Mounts",))],
    ),
    ("mount removed", lambda s: s["TaskTemplate"]["ContainerSpec"]["Mounts"].pop(1), [".".join(C + ("Mounts",))]),
    ("service label", lambda s: _set(s, ("Labels", "team"), "core"), ["Labels.team"]),
    ("service label removed", lambda s: _del(s, ("Labels", "team")), ["Labels.team"]),
    ("container label", lambda s: _set(s, C + ("Labels", "x"), "1"), [".".join(C + ("Labels", "x"))]),
    ("command", lambda s: _set(s, C + ("Args",), ["httpd", "-f"]), [".".join(C + ("Args",))]),
    ("entrypoint", lambda s: _del(s, C + ("Command",)), [".".join(C + ("Command",))]),
    (
        "cpu limit",
        lambda s: _set(s, T + ("Resources", "Limits", "NanoCPUs"), 10**9),
        ["TaskTemplate.Resources.Limits.NanoCPUs"],
    ),
    (
        "memory reservation",
        lambda s: _del(s, T + ("Resources", "Reservations", "MemoryBytes")),
        ["TaskTemplate.Resources.Reservations.MemoryBytes"],
    ),
    (
        "constraint",
        lambda s: _set(s, T + ("Placement", "Constraints"), ["node.role == worker"]),
        ["TaskTemplate.Placement.Constraints"],
    ),
    ("max replicas", lambda s: _set(s, T + ("Placement", "MaxReplicas"), 1), ["TaskTemplate.Placement.MaxReplicas"]),
    ("network left", lambda s: s["TaskTemplate"]["Networks"].pop(0), ["TaskTemplate.Networks"]),
    ("alias", lambda s: s["TaskTemplate"]["Networks"][1]["Aliases"].append("extra"), ["TaskTemplate.Networks"]),
    ("secret removed", lambda s: s["TaskTemplate"]["ContainerSpec"]["Secrets"].pop(0), [".".join(C + ("Secrets",))]),
    (
        "config mode",
        lambda s: s["TaskTemplate"]["ContainerSpec"]["Configs"][0]["File"].__setitem__("Mode", 0o400),
        [".".join(C + ("Configs",))],
    ),
    (
        "published port",
        lambda s: s["EndpointSpec"]["Ports"][1].__setitem__("PublishedPort", 28080),
        ["EndpointSpec.Ports"],
    ),
    (
        "port added",
        lambda s: s["EndpointSpec"]["Ports"].append({"Protocol": "tcp", "TargetPort": 9, "PublishMode": "host"}),
        ["EndpointSpec.Ports"],
    ),
    ("update parallelism", lambda s: _set(s, ("UpdateConfig", "Parallelism"), 1), ["UpdateConfig.Parallelism"]),
    ("update order", lambda s: _set(s, ("UpdateConfig", "Order"), "stop-first"), ["UpdateConfig.Order"]),
    (
        "rollback action (all defaults now)",
        lambda s: _set(s, ("RollbackConfig", "FailureAction"), "pause"),
        ["RollbackConfig"],
    ),
    (
        "restart condition",
        lambda s: _set(s, T + ("RestartPolicy", "Condition"), "any"),
        ["TaskTemplate.RestartPolicy.Condition"],
    ),
    ("restart delay", lambda s: _set(s, T + ("RestartPolicy", "Delay"), 10**9), ["TaskTemplate.RestartPolicy.Delay"]),
    (
        "healthcheck interval",
        lambda s: _set(s, C + ("Healthcheck", "Interval"), 10**10),
        [".".join(C + ("Healthcheck", "Interval"))],
    ),
    ("healthcheck removed", lambda s: _del(s, C + ("Healthcheck",)), [".".join(C + ("Healthcheck",))]),
    ("endpoint mode", lambda s: _set(s, ("EndpointSpec", "Mode"), "vip"), ["EndpointSpec.Mode"]),
    ("stop grace period", lambda s: _set(s, C + ("StopGracePeriod",), 10**10), [".".join(C + ("StopGracePeriod",))]),
    ("user", lambda s: _set(s, C + ("User",), "root"), [".".join(C + ("User",))]),
    ("read only", lambda s: _del(s, C + ("ReadOnly",)), [".".join(C + ("ReadOnly",))]),
    ("hosts", lambda s: _set(s, C + ("Hosts",), []), [".".join(C + ("Hosts",))]),
    (
        "sysctl",
        lambda s: _set(s, C + ("Sysctls", "net.core.somaxconn"), "128"),
        [".".join(C + ("Sysctls", "net.core.somaxconn"))],
    ),
    (
        "capability",
        lambda s: _set(s, C + ("CapabilityAdd",), ["NET_ADMIN", "SYS_TIME"]),
        [".".join(C + ("CapabilityAdd",))],
    ),
    (
        "dns",
        lambda s: _set(s, C + ("DNSConfig", "Nameservers"), ["1.1.1.1"]),
        [".".join(C + ("DNSConfig", "Nameservers"))],
    ),
    (
        "log option",
        lambda s: _set(s, T + ("LogDriver", "Options", "max-size"), "1m"),
        ["TaskTemplate.LogDriver.Options.max-size"],
    ),
]


@pytest.mark.parametrize("edit, expected", [d[1:] for d in DRIFTS], ids=[d[0] for d in DRIFTS])
def test_drift_in_each_field_kind(edit, expected):
    live = _live()
    edit(live)
    assert spec_drift(DESIRED["drift_web"], live, NETWORK_NAMES) == expected


def _shuffle(spec):
    container = spec["TaskTemplate"]["ContainerSpec"]
    for key in ("Env", "Mounts", "Secrets", "CapabilityAdd"):
        container[key] = list(reversed(container[key]))
    spec["TaskTemplate"]["Networks"].reverse()
    spec["EndpointSpec"]["Ports"].reverse()


NO_OPS = [
    ("engine reorders lists", _shuffle),
    ("--force bumps ForceUpdate", lambda s: _set(s, T + ("ForceUpdate",), 3)),
    ("the CLI appends a digest", lambda s: _set(s, C + ("Image",), "onmetal-rig/probe:current@" + DIGEST)),
    ("port protocol left to its default", lambda s: s["EndpointSpec"]["Ports"][1].pop("Protocol") and None),
    ("update defaults written out", lambda s: _set(s, ("RollbackConfig", "Monitor"), 5 * 10**9)),
    ("restart defaults on a service without a policy", None),
    (
        "a field the stack cannot declare",
        lambda s: _set(s, C + ("Ulimits",), [{"Name": "nofile", "Soft": 1, "Hard": 2}]),
    ),
    ("platforms the CLI adds", lambda s: _set(s, T + ("Placement", "Platforms"), [{"OS": "linux"}])),
    ("empty values", lambda s: _set(s, C + ("Privileges",), {}) or _set(s, C + ("DNSConfig", "Options"), [])),
    ("zero means no limit", lambda s: _set(s, T + ("Resources", "Reservations", "Pids"), 0)),
]


@pytest.mark.parametrize("edit", [n[1] for n in NO_OPS], ids=[n[0] for n in NO_OPS])
def test_engine_normalisations_are_no_drift(edit):
    if edit is None:  # engine defaults on the plain service (it declares no restart/update config)
        live = _live("drift_plain")
        live["TaskTemplate"]["RestartPolicy"] = {"Condition": "any", "Delay": 5 * 10**9, "MaxAttempts": 0}
        live["UpdateConfig"] = {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * 10**9, "Order": "stop-first"}
        assert spec_drift(DESIRED["drift_plain"], live, NETWORK_NAMES) == []
        return
    live = _live()
    edit(live)
    assert spec_drift(DESIRED["drift_web"], live, NETWORK_NAMES) == []


def test_zero_limits_written_out_are_no_drift():
    live = _live("drift_plain")  # declares no resources and no placement
    _set(live, T + ("Resources", "Limits"), {"NanoCPUs": 0, "MemoryBytes": 0, "Pids": 0})
    _set(live, T + ("Placement", "MaxReplicas"), 0)
    assert spec_drift(DESIRED["drift_plain"], live, NETWORK_NAMES) == []
    _set(live, T + ("Placement", "MaxReplicas"), 1)
    assert spec_drift(DESIRED["drift_plain"], live, NETWORK_NAMES) == ["TaskTemplate.Placement"]


def test_a_declared_digest_must_match():
    desired = copy.deepcopy(DESIRED["drift_web"])
    desired["TaskTemplate"]["ContainerSpec"]["Image"] = "onmetal-rig/probe:current@" + DIGEST
    live = _live()
    live["TaskTemplate"]["ContainerSpec"]["Image"] = "onmetal-rig/probe:current@sha256:" + "b" * 64
    assert spec_drift(desired, live, NETWORK_NAMES) == ["TaskTemplate.ContainerSpec.Image"]
    live["TaskTemplate"]["ContainerSpec"]["Image"] = "onmetal-rig/probe:current"  # digest dropped by hand
    assert spec_drift(desired, live, NETWORK_NAMES) == ["TaskTemplate.ContainerSpec.Image"]


def test_a_digest_on_another_tag_is_drift():
    live = _live()
    live["TaskTemplate"]["ContainerSpec"]["Image"] = "onmetal-rig/probe:old@" + DIGEST
    assert spec_drift(DESIRED["drift_web"], live, NETWORK_NAMES) == ["TaskTemplate.ContainerSpec.Image"]


def test_plan_updates_drifted_services_with_the_same_hash():
    scaled = [c["after"] for c in ENGINE["cli"] if c["args"][1] == "scale"][0]
    services = [scaled] + [s for s in ENGINE["deployed"] if s["Spec"]["Name"] != "drift_web"]
    desired = _desired()
    current = _current(services)
    plan = compute_plan("drift", desired, current, prune=False, keep_old_versions=1)
    assert plan["services"]["update"] == ["drift_web"]
    assert plan["services"]["drift"] == {"drift_web": ["Mode.Replicated.Replicas"]}
    assert sorted(plan["services"]["unchanged"]) == ["drift_api", "drift_plain", "drift_worker"]
    assert update_changes(desired, current, plan) == {"drift_web": ["Mode.Replicated.Replicas"]}
    diff = service_diff(desired, current, plan, NETWORK_NAMES)
    before, after = diff["before"]["services"]["drift_web"], diff["after"]["services"]["drift_web"]
    assert before["Mode"] == {"Replicated": {"Replicas": 0}} and after["Mode"] == {"Replicated": {"Replicas": 2}}
    # nothing else differs: the diff shows the drifted field only
    assert {k: v for k, v in before.items() if k != "Mode"} == {k: v for k, v in after.items() if k != "Mode"}


def test_no_op_plan_on_the_engines_json():
    plan = compute_plan("drift", _desired(), _current(ENGINE["deployed"]), prune=False, keep_old_versions=1)
    assert plan["services"]["update"] == [] and plan["services"]["drift"] == {}


def test_a_changed_definition_is_an_update_even_when_fields_match():
    # the hash stays the shortcut for "definitely changed"
    services = copy.deepcopy(ENGINE["deployed"])
    services[0]["Spec"]["Labels"][HASH_LABEL] = "0" * 64
    desired = _desired()
    current = _current(services)
    plan = compute_plan("drift", desired, current, prune=False, keep_old_versions=1)
    name = services[0]["Spec"]["Name"]
    assert plan["services"]["update"] == [name] and plan["services"]["drift"] == {}
    assert update_changes(desired, current, plan) == {name: [f"Labels.{HASH_LABEL}"]}


def test_normalise_maps_network_ids_and_drops_ids():
    out = normalise(_live(), NETWORK_NAMES)
    assert [a["Target"] for a in out["TaskTemplate"]["Networks"]] == ["drift_back", "drift_front"]
    assert all("SecretID" not in r for r in out["TaskTemplate"]["ContainerSpec"]["Secrets"])
    assert HASH_LABEL not in out["Labels"]
