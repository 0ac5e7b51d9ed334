"""The planner: desired state vs. a snapshot of the swarm, with fixtures."""

import copy

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import (
    HASH_LABEL,
    LOGICAL_NAME_LABEL,
    STACK_LABEL,
    ComposeError,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_drift import changed_paths, clean_spec
from ansible_collections.onmetal.faas.plugins.module_utils._stack_plan import (
    check_digests,
    compute_plan,
    finalize,
    images_to_resolve,
    pin_images,
    plan_changes,
    plan_errors,
    service_diff,
    spec_hash,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_spec import build_desired

DIGEST = "sha256:" + "d" * 64


def _compose(**web):
    svc = {"image": "stacktest/web:v1", "environment": ["A=1", "B=2"], "deploy": {"replicas": 1}}
    svc.update(web)
    return {
        "version": "3.8",
        "services": {"web": svc, "worker": {"image": "stacktest/worker:v1", "secrets": ["token"]}},
        "secrets": {"token": {}},
    }


def _desired(compose, token=b"t1", mode="vip"):
    return finalize(build_desired("st", compose, {"token": token}, {}, mode))


def _snapshot(desired, stack="st"):
    """What the swarm would hold after applying ``desired`` (engine-shaped)."""
    services = {}
    for spec in desired["services"].values():
        services[spec["Name"]] = {"ID": "id-" + spec["Name"], "Version": {"Index": 7}, "Spec": copy.deepcopy(spec)}
    networks = {}
    for net in desired["networks"].values():
        if not net["external"]:
            labels = dict(net["spec"]["Labels"], **{HASH_LABEL: spec_hash(net["spec"])})
            networks[net["name"]] = {"Id": "nid-" + net["name"], "Name": net["name"], "Labels": labels}
    secrets = {}
    for obj in desired["secrets"].values():
        if not obj["external"]:
            secrets[obj["name"]] = {
                "ID": "sid-" + obj["name"],
                "Labels": obj["labels"],
                "CreatedAt": "2026-01-02T00:00:00Z",
            }
    return {"services": services, "networks": networks, "network_names": {}, "secrets": secrets, "configs": {}}


def _plan(desired, current, prune=False, keep=1):
    return compute_plan("st", desired, current, prune, keep)


def test_first_deploy_creates_everything():
    desired = _desired(_compose())
    empty = {"services": {}, "networks": {}, "network_names": {}, "secrets": {}, "configs": {}}
    plan = _plan(desired, empty)
    assert plan["services"]["create"] == ["st_web", "st_worker"]
    assert plan["networks"]["create"] == ["st_default"]
    assert plan["secrets"]["create"] == ["st_token-" + desired["secrets"]["token"]["hash"][:12]]
    assert plan_changes(plan)


def test_identical_definition_is_a_no_op():
    desired = _desired(_compose())
    plan = _plan(desired, _snapshot(desired))
    assert plan["services"]["unchanged"] == ["st_web", "st_worker"]
    assert not plan_changes(plan)


def test_key_order_does_not_matter():
    one = _compose(deploy={"replicas": 2, "resources": {"limits": {"memory": "64M", "cpus": "0.5"}}})
    two = _compose(deploy={"resources": {"limits": {"cpus": "0.5", "memory": "64M"}}, "replicas": 2})
    two["services"] = dict(reversed(list(two["services"].items())))
    desired_one = _desired(one)
    plan = _plan(_desired(two), _snapshot(desired_one))
    assert not plan_changes(plan)


@pytest.mark.parametrize(
    "env",
    [{"B": "2", "A": "1"}, ["B=2", "A=1"], {"A": 1, "B": 2}],
)
def test_environment_list_or_mapping_is_the_same_definition(env):
    current = _snapshot(_desired(_compose()))
    plan = _plan(_desired(_compose(environment=env)), current)
    assert not plan_changes(plan)


def test_changed_environment_updates_only_that_service():
    current = _snapshot(_desired(_compose()))
    desired = _desired(_compose(environment={"A": "1", "B": "3"}))
    plan = _plan(desired, current)
    assert plan["services"]["update"] == ["st_web"]
    assert plan["services"]["unchanged"] == ["st_worker"]
    diff = service_diff(desired, current, plan, {})
    before = diff["before"]["services"]["st_web"]["TaskTemplate"]["ContainerSpec"]["Env"]
    after = diff["after"]["services"]["st_web"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert (before, after) == (["A=1", "B=2"], ["A=1", "B=3"])
    assert changed_paths(diff["before"]["services"]["st_web"], diff["after"]["services"]["st_web"]) == [
        "TaskTemplate.ContainerSpec.Env"
    ]


def test_image_tag_vs_digest_is_a_change():
    current = _snapshot(_desired(_compose()))
    desired = build_desired("st", _compose(), {"token": b"t1"}, {}, "vip")
    assert images_to_resolve(desired) == ["stacktest/web:v1", "stacktest/worker:v1"]
    pin_images(desired, {"stacktest/web:v1": DIGEST})
    finalize(desired)
    assert desired["services"]["web"]["TaskTemplate"]["ContainerSpec"]["Image"] == "stacktest/web:v1@" + DIGEST
    plan = _plan(desired, current)
    assert plan["services"]["update"] == ["st_web"]
    # the same digest again: no change
    assert not plan_changes(_plan(desired, _snapshot(desired)))


def test_require_digests_names_the_services():
    desired = build_desired("st", _compose(image="stacktest/web:v1@" + DIGEST), {"token": b"t"}, {}, "vip")
    with pytest.raises(ComposeError, match=r"worker \(stacktest/worker:v1\)") as err:
        check_digests(desired)
    assert "web" not in str(err.value).split(":", 1)[1].split(";")[0]


def test_secret_content_change_gives_new_name_and_updates_users():
    old = _desired(_compose(), token=b"old")
    current = _snapshot(old)
    new = _desired(_compose(), token=b"new")
    old_name = old["secrets"]["token"]["name"]
    new_name = new["secrets"]["token"]["name"]
    assert old_name != new_name and new_name.startswith("st_token-")
    plan = _plan(new, current)
    assert plan["secrets"]["create"] == [new_name]
    assert plan["services"]["update"] == ["st_worker"]
    assert plan["services"]["unchanged"] == ["st_web"]
    # keep one old version by default, nothing to prune yet
    assert plan["secrets"]["prune_after_success"] == []
    assert _plan(new, current, keep=0)["secrets"]["prune_after_success"] == [old_name]


def test_old_secret_versions_are_pruned_keeping_the_newest():
    new = _desired(_compose(), token=b"v3")
    current = _snapshot(new)
    for i, day in ((1, "01"), (2, "02")):
        current["secrets"][f"st_token-old{i}"] = {
            "ID": f"x{i}",
            "CreatedAt": f"2026-01-{day}T00:00:00Z",
            "Labels": {STACK_LABEL: "st", LOGICAL_NAME_LABEL: "st_token"},
        }
    current["secrets"]["other_token-1"] = {"ID": "o", "Labels": {STACK_LABEL: "other", LOGICAL_NAME_LABEL: "st_token"}}
    plan = _plan(new, current, keep=1)
    assert plan["secrets"]["prune_after_success"] == ["st_token-old1"]
    assert plan_changes(plan)


@pytest.mark.parametrize("prune, removed, orphaned", [(True, ["st_old"], []), (False, [], ["st_old"])])
def test_removed_service_with_and_without_prune(prune, removed, orphaned):
    desired = _desired(_compose())
    current = _snapshot(desired)
    current["services"]["st_old"] = {
        "ID": "id-old",
        "Version": {"Index": 1},
        "Spec": {"Name": "st_old", "Labels": {STACK_LABEL: "st"}},
    }
    plan = _plan(desired, current, prune=prune)
    assert plan["services"]["remove"] == removed
    assert plan["services"]["orphaned"] == orphaned
    assert plan_changes(plan) is prune


def test_prune_removes_only_this_stacks_networks():
    desired = _desired(_compose())
    current = _snapshot(desired)
    current["networks"]["st_gone"] = {"Id": "n1", "Labels": {STACK_LABEL: "st"}}
    current["networks"]["other_net"] = {"Id": "n2", "Labels": {STACK_LABEL: "other"}}
    current["networks"]["bridge"] = {"Id": "n3", "Labels": {}}
    assert _plan(desired, current, prune=True)["networks"]["remove"] == ["st_gone"]
    assert _plan(desired, current, prune=False)["networks"]["remove"] == []


def test_changed_network_definition_is_a_conflict():
    desired = _desired(_compose())
    current = _snapshot(desired)
    current["networks"]["st_default"]["Labels"][HASH_LABEL] = "0" * 64
    plan = _plan(desired, current)
    errors = plan_errors(plan, desired)
    assert len(errors) == 1 and "network st_default (networks.default) exists with a different definition" in errors[0]


def test_missing_external_objects_are_reported_with_their_users():
    compose = _compose(networks=["func"])
    compose["networks"] = {"func": {"external": True, "name": "func_functions"}}
    compose["secrets"] = {"token": {"external": True}}
    desired = finalize(build_desired("st", compose, {}, {}, "vip"))
    empty = {"services": {}, "networks": {}, "network_names": {}, "secrets": {}, "configs": {}}
    errors = plan_errors(_plan(desired, empty), desired)
    assert any("external network 'func_functions' does not exist (used by service(s) web)" in e for e in errors)
    assert any("external secret 'token' does not exist (used by service(s) worker)" in e for e in errors)


def test_endpoint_mode_change_updates_services():
    current = _snapshot(_desired(_compose(ports=["8080:80"])))
    desired = _desired(_compose(ports=["8080:80"]), mode="dnsrr")
    assert desired["rewrites"] == {
        "web": ["endpoint_mode vip -> dnsrr", "port 8080/tcp published in host mode"],
        "worker": ["endpoint_mode vip -> dnsrr"],
    }
    assert _plan(desired, current)["services"]["update"] == ["st_web", "st_worker"]


def test_clean_spec_drops_engine_defaults_and_ids():
    engine_spec = {
        "Name": "st_web",
        "Labels": {HASH_LABEL: "h", STACK_LABEL: "st"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "a",
                "Isolation": "default",
                "StopGracePeriod": 10 * 10**9,
                "DNSConfig": {},
                "Secrets": [{"SecretID": "xyz", "SecretName": "s", "File": {"Name": "s"}}],
            },
            "Resources": {"Limits": {}, "Reservations": {}},
            "RestartPolicy": {"Condition": "any", "Delay": 5 * 10**9, "MaxAttempts": 0},
            "Placement": {"Platforms": [{"Architecture": "amd64"}]},
            "Networks": [{"Target": "netid1", "Aliases": ["web"]}],
            "ForceUpdate": 0,
            "Runtime": "container",
        },
        "UpdateConfig": {
            "Parallelism": 1,
            "FailureAction": "pause",
            "Monitor": 5 * 10**9,
            "MaxFailureRatio": 0,
            "Order": "stop-first",
        },
        "EndpointSpec": {"Mode": "vip"},
    }
    assert clean_spec(engine_spec, {"netid1": "st_default"}) == {
        "Name": "st_web",
        "Labels": {STACK_LABEL: "st"},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "a", "Secrets": [{"SecretName": "s", "File": {"Name": "s"}}]},
            "Networks": [{"Target": "st_default", "Aliases": ["web"]}],
        },
    }


def test_spec_hash_ignores_its_own_label_and_key_order():
    a = {"Name": "x", "Labels": {"a": "1", "b": "2"}}
    b = {"Labels": {"b": "2", "a": "1", HASH_LABEL: "whatever"}, "Name": "x"}
    assert spec_hash(a) == spec_hash(b)
    assert spec_hash(a) != spec_hash({"Name": "y", "Labels": {"a": "1", "b": "2"}})


def test_interpolation_is_not_done_but_warned_about():
    compose = _compose(environment=["A=${HOME}", "B=$$literal"])
    desired = build_desired("st", compose, {"token": b"t"}, {}, "vip")
    assert len(desired["warnings"]) == 1
    assert desired["warnings"][0].startswith("services.web.environment[0]: 'A=${HOME}' contains ${...}")
    assert desired["services"]["web"]["TaskTemplate"]["ContainerSpec"]["Env"][0] == "A=${HOME}"
