"""Tests of the openfaas_function planner (pure) and of the replica count an update keeps."""

from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas_plan as plan_mod
from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas_spec as spec
from ansible_collections.onmetal.faas.tests.unit.plugins._fake_gateway import function_status
from ansible_collections.onmetal.faas.tests.unit.plugins.module_utils.test__openfaas_spec import params


def deployed(body, **extra):
    """What faas-swarm lists after a deploy of ``body``."""
    item = function_status(body)
    item.update(extra)
    return item


def test_plan_create_when_absent():
    assert plan_mod.plan(None, spec.desired_request(params()), "present")["action"] == "create"


def test_plan_noop_when_deployed_by_us():
    body = spec.desired_request(params(scale_min=1, env={"A": "1"}))
    assert plan_mod.plan(deployed(body), body, "present") == {"action": "none", "reasons": []}


def test_plan_noop_after_an_update_added_the_uid_label():
    body = spec.desired_request(params())
    current = deployed(body)
    current["labels"]["com.openfaas.uid"] = "12345"  # faas-swarm update.go:128
    assert plan_mod.plan(current, body, "present")["action"] == "none"


def test_plan_noop_when_provider_pins_the_digest():
    body = spec.desired_request(params())
    current = deployed(body, image=body["image"] + "@sha256:" + "0" * 64)
    assert plan_mod.plan(current, body, "present")["action"] == "none"


def test_plan_update_on_image_change():
    old = spec.desired_request(params())
    new = spec.desired_request(params(image="127.0.0.1:5000/resize:def"))
    result = plan_mod.plan(deployed(old), new, "present")
    assert result["action"] == "update"
    assert "image 127.0.0.1:5000/resize:abc -> 127.0.0.1:5000/resize:def" in result["reasons"]


def test_plan_update_on_hidden_field_change():
    old = spec.desired_request(params())
    new = spec.desired_request(params(env={"A": "1"}))
    result = plan_mod.plan(deployed(old), new, "present")
    assert result["action"] == "update"
    assert result["reasons"][0].startswith("spec hash differs")


def test_plan_update_when_cpu_was_sent_in_the_old_format():
    body = spec.desired_request(params(limits={"cpu": "0.5"}))
    old = dict(body, limits={"cpu": "0.5"})  # what earlier versions sent, which faas-swarm ignored
    old["labels"] = dict(body["labels"], **{spec.HASH_LABEL: spec.spec_hash(old)})
    assert plan_mod.plan(deployed(old), body, "present")["action"] == "update"


def test_plan_update_when_function_was_deployed_elsewhere():
    body = spec.desired_request(params())
    foreign = deployed(body)
    del foreign["labels"][spec.HASH_LABEL]
    result = plan_mod.plan(foreign, body, "present")
    assert result["action"] == "update"
    assert "no spec hash label" in result["reasons"][-1]


def test_plan_sees_label_drift_and_annotations():
    body = spec.desired_request(params(labels={"team": "media"}, annotations={"topic": "images"}))
    current = deployed(body, annotations={"topic": "other"})
    current["labels"]["team"] = "ops"
    reasons = plan_mod.plan(current, body, "present")["reasons"]
    assert "labels differ: team" in reasons
    assert "annotations differ: topic" in reasons


def test_plan_with_null_annotations_as_faas_swarm_lists_them():
    body = spec.desired_request(params())
    current = deployed(body, annotations=None)  # reader.go:87-104 leaves the map nil
    assert plan_mod.plan(current, body, "present")["action"] == "none"


def test_plan_hash_found_in_annotations():
    body = spec.desired_request(params())
    current = deployed(body)
    current["annotations"] = {spec.HASH_LABEL: current["labels"].pop(spec.HASH_LABEL)}
    assert plan_mod.plan(current, body, "present")["action"] == "none"


def test_plan_absent():
    body = spec.desired_request(params())
    assert plan_mod.plan(deployed(body), None, "absent")["action"] == "delete"
    assert plan_mod.plan(None, None, "absent")["action"] == "none"


def test_find_function():
    assert plan_mod.find_function([{"name": "a"}, {"name": "b"}], "b") == {"name": "b"}
    assert plan_mod.find_function([], "b") is None


def test_replicas_to_keep_within_the_new_range():
    body = spec.desired_request(params(scale_min=1, scale_max=5))
    assert plan_mod.replicas_to_keep(deployed(body, replicas=4), body) == 4  # auto-scaled: kept
    assert plan_mod.replicas_to_keep(deployed(body, replicas=9), body) == 5  # above the new max
    assert plan_mod.replicas_to_keep(deployed(body, replicas=0), body) == 1  # below the new min
    default = spec.desired_request(params())
    assert plan_mod.replicas_to_keep(deployed(default, replicas=30), default) == 20  # the gateway's max
    assert plan_mod.replicas_to_keep(None, body) is None
    assert plan_mod.replicas_to_keep(deployed(body, replicas=None), body) is None
