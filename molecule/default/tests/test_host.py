"""The default scenario's host state, read on each node with pytest-testinfra over Molecule's inventory: the node's
own engine reports an active swarm member with the expected role, and a manager listens on the manager port at its
advertised address only.

verify.yml runs it first (molecule/common/testinfra.yml); the cluster checks that start services and call
onmetal.faas.swarm_stack stay in verify.yml.
"""

import pytest


def _is_manager(host):
    return "swarm_managers" in host.ansible.get_variables()["group_names"]


def test_the_node_is_an_active_swarm_member_with_the_expected_role(host):
    state = host.check_output("docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'").split()
    assert state[0] == "active", state
    assert (state[1] == "true") == _is_manager(host), f"(state, is-manager) {state}"


def test_a_manager_listens_on_2377_at_its_advertised_address_and_nowhere_else(host):
    """Issue 15: the manager port on the advertised address only, not on every interface (a VPS's public one)."""
    if not _is_manager(host):
        pytest.skip("a worker has no manager port")
    address = host.check_output("docker info --format '{{.Swarm.NodeAddr}}'")
    listeners = host.check_output("ss -Hltn 'sport = :2377' | awk '{print $4}'").splitlines()
    assert listeners == [f"{address}:2377"], f"swarm address {address}, listeners on 2377: {listeners}"
