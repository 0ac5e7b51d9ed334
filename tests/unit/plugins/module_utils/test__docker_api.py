"""The Docker connection options: one argument spec, held together with the doc fragment that documents it."""

import yaml

from ansible_collections.onmetal.faas.plugins.doc_fragments.docker_api import ModuleDocFragment
from ansible_collections.onmetal.faas.plugins.module_utils._docker_api import DOCKER_COMMON_ARGS, connection_params
from ansible_collections.onmetal.faas.plugins.module_utils._stack_args import ARGUMENT_SPEC


def test_the_spec_matches_the_doc_fragment():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert sorted(documented) == sorted(DOCKER_COMMON_ARGS)
    for name, spec in DOCKER_COMMON_ARGS.items():
        assert documented[name]["type"] == spec["type"]
        assert documented[name].get("default") == spec.get("default")


def test_swarm_stack_takes_the_common_options():
    assert {k: ARGUMENT_SPEC[k] for k in DOCKER_COMMON_ARGS} == DOCKER_COMMON_ARGS


def test_connection_params_pick_the_connection_options():
    params = {"name": "st", "docker_host": "unix:///run/docker.sock", "api_version": "auto", "timeout": 60}
    assert connection_params(params) == {"docker_host": "unix:///run/docker.sock", "api_version": "auto", "timeout": 60}
    assert connection_params({}) == {"docker_host": None, "api_version": None, "timeout": None}
