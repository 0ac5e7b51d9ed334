"""The swarm role's quorum check (tasks/state.yml): a manager that answers 'no leader' (or does not answer within
the bound) stops the play with the manager count, the (N/2)+1 managers needed, the managers Ansible reached and
the fix; a swarm with a leader, or an unrelated engine error, does not.

No engine is needed: a fake ``docker`` first on PATH answers ``docker info`` with a swarm state and
``docker node ls`` with the error under test. Managers that are "down" fail a first task, so they leave the play
the way unreachable hosts do.
"""

import json
import re

import pytest

STATE_PLAY = """
- name: Swarm state with some managers down
  hosts: all
  gather_facts: false
  tasks:
    - name: Simulate the managers that are down
      ansible.builtin.fail:
        msg: simulated down
      when: inventory_hostname not in up_hosts

    - name: Read the swarm state
      ansible.builtin.include_role:
        name: onmetal.faas.swarm
        tasks_from: state.yml
"""

NO_LEADER = (
    "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader. "
    "It's possible that too few managers are online."
)
DEADLINE = "Error response from daemon: rpc error: code = DeadlineExceeded desc = context deadline exceeded"


def _inventory(managers):
    lines = ["all:", "  vars:", "    ansible_connection: local", "  children:", "    swarm_managers:", "      hosts:"]
    lines += [f"        {h}:" for h in managers]
    lines += ["    swarm_workers:", "      hosts: {}"]
    return "\n".join(lines) + "\n"


def _flat(output):
    return re.sub(r"\s+", " ", output)


@pytest.fixture
def fake_docker(docker_on_path):
    """Install a fake docker: ``info`` prints the swarm state, ``node ls`` prints ``stderr`` and exits ``rc``."""

    def _install(managers_reported, node_ls_rc, node_ls_stderr=""):
        state = {
            "LocalNodeState": "active",
            "ControlAvailable": True,
            "NodeID": "node1",
            "Managers": managers_reported,
            "Cluster": {"ID": "cluster1"},
        }
        docker_on_path(
            "#!/bin/sh\n"
            'case "$1" in\n'
            f"  info) echo '{json.dumps(state)}' ;;\n"
            f"  node) printf '%s\\n' \"{node_ls_stderr}\" >&2; exit {node_ls_rc} ;;\n"
            '  *) echo "fake docker: unexpected $*" >&2; exit 99 ;;\n'
            "esac\n"
        )

    return _install


def test_two_of_three_managers_down(run_play, fake_docker):
    fake_docker(managers_reported=3, node_ls_rc=1, node_ls_stderr=NO_LEADER)
    rc, out = run_play(_inventory(["m1", "m2", "m3"]), STATE_PLAY, {"up_hosts": ["m1"]})
    text = _flat(out)
    assert rc != 0
    assert (
        "Swarm quorum lost: the swarm has no leader, so no management operation (deploy, update, join, node change) "
        f"can succeed; containers that run keep running. m1 answered: {NO_LEADER}." in text
    )
    assert (
        "The swarm has 3 manager(s) and needs 2 ((N/2)+1) of them online; managers Ansible reached: m1; "
        "not reached: m2, m3." in text
    )
    assert "'docker swarm init --force-new-cluster --advertise-addr <its address>'" in text
    assert "Choose the bootstrap manager" not in text


def test_leaderless_engine_reporting_zero_managers_counts_the_inventory(run_play, fake_docker):
    # Without a leader the engine may report Managers=0; the inventory's five managers are counted instead.
    fake_docker(managers_reported=0, node_ls_rc=1, node_ls_stderr=DEADLINE)
    rc, out = run_play(_inventory(["m1", "m2", "m3", "m4", "m5"]), STATE_PLAY, {"up_hosts": ["m1", "m2"]})
    text = _flat(out)
    assert rc != 0
    assert f"m1, m2 answered: {DEADLINE}." in text
    assert (
        "The swarm has 5 manager(s) and needs 3 ((N/2)+1) of them online; managers Ansible reached: m1, m2; "
        "not reached: m3, m4, m5." in text
    )


def test_engine_count_above_the_inventory_wins(run_play, fake_docker):
    # The inventory lists 3 managers, the swarm has 5: the need comes from the larger count.
    fake_docker(managers_reported=5, node_ls_rc=1, node_ls_stderr=NO_LEADER)
    rc, out = run_play(_inventory(["m1", "m2", "m3"]), STATE_PLAY, {"up_hosts": ["m1"]})
    text = _flat(out)
    assert rc != 0
    assert "The swarm has 5 manager(s) and needs 3 ((N/2)+1) of them online" in text


def test_no_answer_within_the_bound(run_play, fake_docker):
    # timeout(1) exits 124 when docker node ls did not answer in time; there is no stderr to quote.
    fake_docker(managers_reported=3, node_ls_rc=124)
    rc, out = run_play(_inventory(["m1", "m2", "m3"]), STATE_PLAY, {"up_hosts": ["m1"]})
    text = _flat(out)
    assert rc != 0
    assert "m1 answered: no answer within 20 s (rc 124)." in text
    assert "needs 2 ((N/2)+1)" in text


def test_swarm_with_a_leader_passes(run_play, fake_docker):
    fake_docker(managers_reported=3, node_ls_rc=0)
    rc, out = run_play(_inventory(["m1", "m2", "m3"]), STATE_PLAY, {"up_hosts": ["m1", "m2", "m3"]})
    assert rc == 0, out
    assert "quorum lost" not in out
    assert "Choose the bootstrap manager" in out


def test_unrelated_engine_error_is_not_a_quorum_loss(run_play, fake_docker):
    fake_docker(managers_reported=3, node_ls_rc=1, node_ls_stderr="permission denied while trying to connect")
    rc, out = run_play(_inventory(["m1", "m2", "m3"]), STATE_PLAY, {"up_hosts": ["m1", "m2", "m3"]})
    assert rc == 0, out
    assert "quorum lost" not in out
