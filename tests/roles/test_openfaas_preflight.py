"""The openfaas role refuses an inconsistent timeout chain before it touches the engine or any host, with a
message that names the values and the fix.

The chain check is the role's first task (run_once, pure templating), so the broken-chain tests run the whole
role with a local connection: it stops there. The passing test runs only the role's preflight, with a fake
``docker`` first on PATH that answers ``docker version`` like a Docker 20.10 engine does.
"""

import re

OPENFAAS_PLAY = """
- name: OpenFaaS preflight
  hosts: all
  gather_facts: false
  roles:
    - onmetal.faas.openfaas
"""

PREFLIGHT_ONLY = """
- name: OpenFaaS preflight only
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the role's preflight checks
      ansible.builtin.include_role:
        name: onmetal.faas.openfaas
        tasks_from: preflight.yml
"""

INVENTORY = """
all:
  vars:
    ansible_connection: local
  children:
    swarm_managers:
      hosts:
        m1:
"""


def _flat(output):
    return re.sub(r"\s+", " ", output)


def test_nginx_shorter_than_gateway_write_is_refused(run_play):
    rc, out = run_play(INVENTORY, OPENFAAS_PLAY, {"openfaas_timeout_overrides": {"nginx_proxy_read_timeout": 60}})
    text = _flat(out)
    assert rc != 0
    assert "The OpenFaaS timeout chain is inconsistent (openfaas_timeout=60," in text
    assert (
        "nginx proxy_read_timeout 60s must be longer than the gateway's gateway_write_timeout 65s, or nginx "
        "returns 504 for calls the gateway still serves; raise nginx_proxy_read_timeout above 65s" in text
    )
    # It stopped at the chain: the engine was never asked.
    assert "Read the engine's API range" not in text


def test_exec_longer_than_upstream_is_refused(run_play):
    rc, out = run_play(INVENTORY, OPENFAAS_PLAY, {"openfaas_timeout_overrides": {"function_exec_timeout": "2m"}})
    text = _flat(out)
    assert rc != 0
    assert "function exec_timeout 120s is longer than the gateway's upstream_timeout 60s" in text
    assert "raise gateway_upstream_timeout to at least 120s" in text


def test_consistent_chain_passes_preflight(run_play, docker_on_path):
    docker_on_path("#!/bin/sh\necho '1.12 1.41 20.10.24'\n")
    rc, out = run_play(INVENTORY, PREFLIGHT_ONLY, {"openfaas_timeout": "90s"})
    assert rc == 0, out
    assert "Check that the timeout chain holds" in out


SWARM = (
    '{"LocalNodeState": "active", "Managers": 0, "RemoteManagers": [{"NodeID": "a", "Addr": "10.0.0.2:2377"}, '
    '{"NodeID": "b", "Addr": "10.0.0.1:2377"}, {"NodeID": "c", "Addr": "10.0.0.3:2377"}]}'
)


def _docker_without_leader(docker_on_path, stderr):
    docker_on_path(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  node) echo '{stderr}' >&2; exit 1 ;;\n"
        f"  info) echo '{SWARM}' ;;\n"
        "  *) echo '1.12 1.41 20.10.24' ;;\n"
        "esac\n"
    )


def test_a_swarm_without_leader_stops_the_role_with_the_quorum_message(run_play, docker_on_path):
    # Before, the queue's placement (docker node ls --filter node.label=...) failed first with the engine's raw error,
    # and the quorum_lost drill did not find the quorum message.
    no_leader = "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader."
    _docker_without_leader(docker_on_path, no_leader)
    rc, out = run_play(INVENTORY, PREFLIGHT_ONLY)
    text = _flat(out)
    assert rc != 0
    assert f"Swarm quorum lost: m1 answered {no_leader} The swarm has no leader" in text
    assert "(nothing was changed)" in text and "start the managers that are down" in text
    assert "The swarm has 3 manager(s) (10.0.0.1:2377, 10.0.0.2:2377, 10.0.0.3:2377) and needs 2 ((N/2)+1)" in text
    assert "'docker swarm init --force-new-cluster --advertise-addr <its address>'" in text


def test_another_node_ls_error_is_not_a_quorum_loss(run_play, docker_on_path):
    _docker_without_leader(docker_on_path, "Error response from daemon: This node is not a swarm manager.")
    rc, out = run_play(INVENTORY, PREFLIGHT_ONLY)
    assert rc == 0, out
    assert "Swarm quorum lost" not in out
