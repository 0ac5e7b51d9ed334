"""The TypedDicts of _stack_types describe the dicts the layers really hand each other."""

from ansible_collections.onmetal.faas.plugins.module_utils._stack_client import read_current
from ansible_collections.onmetal.faas.plugins.module_utils._stack_plan import compute_plan, finalize
from ansible_collections.onmetal.faas.plugins.module_utils._stack_spec import build_desired
from ansible_collections.onmetal.faas.plugins.module_utils._stack_types import (
    Current,
    Desired,
    FilesPlan,
    NetworksPlan,
    Plan,
    ServicesPlan,
    StackObject,
)

COMPOSE = {
    "services": {"web": {"image": "nginx:1", "secrets": ["tok"]}},
    "secrets": {"tok": {}, "ext": {"external": True}},
}


class _Engine:
    def services(self, stack):
        return []

    def networks(self):
        return [{"Id": "n1", "Name": "ingress"}]

    def secrets(self):
        return [{"ID": "s1", "Spec": {"Name": "other", "Labels": {}}}]

    def configs(self):
        return []


def test_desired_current_and_plan_have_the_documented_keys():
    desired = finalize(build_desired("st", COMPOSE, {"tok": b"v"}, {}, "vip"))
    assert set(desired) == set(Desired.__annotations__)
    for obj in list(desired["networks"].values()) + list(desired["secrets"].values()):
        assert set(obj) <= set(StackObject.__annotations__)
    current = read_current(_Engine(), "st")
    assert set(current) == set(Current.__annotations__)
    plan = compute_plan("st", desired, current, prune=False, keep_old_versions=1)
    assert set(plan) == set(Plan.__annotations__)
    assert set(plan["services"]) <= set(ServicesPlan.__annotations__)
    assert set(plan["networks"]) == set(NetworksPlan.__annotations__)
    assert set(plan["secrets"]) == set(plan["configs"]) == set(FilesPlan.__annotations__)
