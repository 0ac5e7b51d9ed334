"""The stack's services as the role renders them: the async queue's placement and store (issue 16), the checks of
tasks/nats.yml (bad settings, moving the queue) with a fake ``docker`` on PATH, and the functions overlay's anchor
(issue 13).

The stack is rendered by Ansible's own template lookup with the role's defaults and vars, then converted by
swarm_stack's planning code (build_desired), so what is asserted is the service spec the engine would get.
"""

import importlib
import json
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(ROOT, "roles", "openfaas")

INVENTORY = """
all:
  vars:
    ansible_connection: local
  children:
    swarm_managers:
      hosts:
        m1:
"""

RENDER = f"""
- name: Render the OpenFaaS stack with the role's defaults and vars
  hosts: m1
  gather_facts: false
  vars_files:
    - {ROLE}/defaults/main.yml
    - {ROLE}/vars/main.yml
  tasks:
    - name: Print the stack
      ansible.builtin.debug:
        msg: "STACK{{{{ lookup('ansible.builtin.template', stack) | from_yaml | to_json }}}}END"
      vars:
        stack: {ROLE}/templates/stack.yml.j2
        __openfaas_dnsrr: true
        __openfaas_credentials: {{username: a, password: b}}
"""

NATS_ONLY = """
- name: The queue's placement only
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the role's nats tasks
      ansible.builtin.include_role:
        name: onmetal.faas.openfaas
        tasks_from: nats.yml
"""


def _flat(output):
    return re.sub(r"\s+", " ", output)


def _build_desired():
    """swarm_stack's planning code, importable once run_play has linked the collection under .cache/."""
    path = os.path.join(ROOT, ".cache", "collections")
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module("ansible_collections.onmetal.faas.plugins.module_utils._stack_spec").build_desired


def _stack(run_play, extra=None):
    rc, out = run_play(INVENTORY, RENDER, extra)
    assert rc == 0, out
    text = out.replace('\\"', '"')
    return json.loads(text[text.index("STACK") + 5 : text.rindex("END")])


def test_file_store_on_a_volume_pinned_to_the_labelled_node(run_play):
    compose = _stack(run_play)
    nats = compose["services"]["nats"]
    assert nats["command"] == [
        "--store", "file", "--cluster_id", "faas-cluster", "--max_msgs", "1000000",
        "--max_bytes", "1073741824", "--max_age", "72h", "--http_port", "8222", "--dir", "/data",
    ]  # fmt: skip
    configs = {name: "x" for name in compose.get("configs", {})}
    spec = _build_desired()("func", compose, {"basic-auth-user": "a", "basic-auth-password": "b"}, configs, "dnsrr")
    task = spec["services"]["nats"]["TaskTemplate"]
    assert task["Placement"]["Constraints"] == ["node.labels.onmetal.faas.nats == true"]
    (mount,) = task["ContainerSpec"]["Mounts"]
    assert (mount["Type"], mount["Source"], mount["Target"]) == ("volume", "func_nats-store", "/data")
    assert spec["services"]["nats"]["UpdateConfig"]["Order"] == "stop-first"


def test_memory_store_is_upstreams_layout(run_play):
    compose = _stack(run_play, {"openfaas_nats_store": "memory", "openfaas_nats_max_age": "0"})
    nats = compose["services"]["nats"]
    assert nats["command"][:2] == ["--store", "memory"]
    assert "--dir" not in nats["command"]
    assert "volumes" not in nats and "volumes" not in compose
    assert "placement" not in nats["deploy"]


def test_network_anchor_keeps_the_functions_overlay_on_every_node(run_play):
    compose = _stack(run_play)
    anchor = compose["services"]["network-anchor"]
    assert anchor["networks"] == ["functions"]
    assert "ports" not in anchor and "labels" not in anchor["deploy"]  # nothing dials it; faas-swarm lists it not
    configs = {name: "x" for name in compose.get("configs", {})}
    spec = _build_desired()("func", compose, {"basic-auth-user": "a", "basic-auth-password": "b"}, configs, "dnsrr")
    service = spec["services"]["network-anchor"]
    assert service["Mode"] == {"Global": {}}
    assert service["EndpointSpec"]["Mode"] == "dnsrr"
    task = service["TaskTemplate"]
    container = task["ContainerSpec"]
    assert container["Image"] == compose["services"]["gateway"]["image"]  # already on every node
    assert container["Command"] == ["sleep", "2147483647"]
    assert container["StopSignal"] == "SIGKILL"
    assert container["Healthcheck"] == {"Test": ["NONE"]}
    assert "function" not in service.get("Labels", {})
    assert task["Resources"]["Limits"]["MemoryBytes"] == 16 * 1024 * 1024
    assert "Placement" not in task or not task["Placement"].get("Constraints")  # workers too


def test_network_anchor_can_be_left_out(run_play):
    compose = _stack(run_play, {"openfaas_functions_network_anchor": False})
    assert "network-anchor" not in compose["services"]


def _fake_docker(docker_on_path, labelled, node_id):
    docker_on_path(
        "#!/bin/sh\n"
        'case "$1 $2" in\n'
        f"  'node ls') printf '%s' '{labelled}' ;;\n"
        f"  'info --format') echo '{node_id}' ;;\n"
        '  *) echo "unexpected docker $*" >&2; exit 1 ;;\n'
        "esac\n"
    )


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"openfaas_nats_max_age": "3d"}, 'openfaas_nats_max_age="3d" must be a Go duration'),
        ({"openfaas_nats_node": "m9"}, 'openfaas_nats_node="m9" must be empty (the first manager) or one of'),
        ({"openfaas_nats_max_msgs": -1}, "openfaas_nats_max_msgs=-1 and"),
        ({"openfaas_queue_admission_headroom": 60}, "openfaas_queue_admission_headroom=60 must be a percentage from 0"),
    ],
)
def test_bad_queue_settings_are_refused(run_play, docker_on_path, extra, named):
    _fake_docker(docker_on_path, "", "node-m1")
    rc, out = run_play(INVENTORY, NATS_ONLY, extra)
    assert rc != 0
    assert named in _flat(out)


def test_moving_the_queue_is_refused_without_move_ok(run_play, docker_on_path):
    _fake_docker(docker_on_path, "node-old\n", "node-m1")
    rc, out = run_play(INVENTORY, NATS_ONLY)
    text = _flat(out)
    assert rc != 0
    assert "The async queue lives on swarm node(s) node-old (label onmetal.faas.nats)" in text
    assert "work still queued on the old node's volume 'func_nats-store' is left behind" in text
    assert "set openfaas_nats_move_ok: true" in text
