"""Every role reads the swarm's managers one way: the inventory group named by swarm_managers_group, the swarm
role's variable, whose default (swarm_managers) the other roles repeat as their fallback.

A static scan of the roles holds the expression together; a play with a renamed group shows that the hosts the
roles pick follow the variable.
"""

import glob
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CANONICAL = "groups[swarm_managers_group | default('swarm_managers')] | default([])"


def _role_files():
    for pattern in ("roles/*/tasks/*.yml", "roles/*/vars/*.yml", "roles/*/defaults/*.yml", "roles/*/templates/*.j2"):
        yield from sorted(glob.glob(os.path.join(ROOT, pattern)))


def test_the_fallback_is_the_swarm_roles_default():
    with open(os.path.join(ROOT, "roles", "swarm", "defaults", "main.yml"), encoding="utf-8") as handle:
        assert yaml.safe_load(handle)["swarm_managers_group"] == "swarm_managers"


def test_roles_read_the_managers_group_one_way():
    found = {}
    for path in _role_files():
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        rel = os.path.relpath(path, ROOT)
        # Any other spelling: the group's name written out, or the variable without the swarm role's fallback.
        assert not re.search(r"groups\s*(\[\s*['\"]swarm_managers['\"]|\.swarm_managers)", text), rel
        assert "groups[swarm_managers_group]" not in text, rel
        for line in text.splitlines():
            if "groups[swarm_managers_group" in line:
                assert CANONICAL in line, f"{rel}: {line.strip()}"
                found[rel] = line.strip()
    # One internal variable per role holds it (and the rest of the role uses that variable).
    assert sorted(found) == [
        "roles/async_demo/vars/main.yml",
        "roles/docker_engine/vars/main.yml",
        "roles/functions/vars/main.yml",
        "roles/gateway_nginx/vars/main.yml",
        "roles/openfaas/vars/main.yml",
        "roles/swarm/vars/main.yml",
    ]


RENAMED = """
all:
  vars:
    ansible_connection: local
    swarm_managers_group: mgrs
  children:
    mgrs:
      hosts:
        m1:
        m2:
    swarm_managers:
      hosts:
        other:
"""

PLAY = """
- name: Hosts the roles pick
  hosts: m1
  gather_facts: false
  tasks:
    - name: Load the functions role's defaults and vars
      ansible.builtin.include_role:
        name: onmetal.faas.functions
        tasks_from: credentials
        public: true
      vars:
        functions_gateway_password: x
    - name: Load the async_demo role's defaults and vars
      ansible.builtin.include_vars:
        file: "{{ item }}"
      loop:
        - "{{ root }}/roles/async_demo/defaults/main.yml"
        - "{{ root }}/roles/async_demo/vars/main.yml"
    - name: Show them
      ansible.builtin.debug:
        msg: "PICKED {{ functions_build_host }} {{ async_demo_deploy_host }} {{ __functions_nodes | join(',') }}"
"""


def test_a_renamed_managers_group_is_followed(run_play):
    rc, out = run_play(RENAMED, PLAY, {"root": ROOT})
    assert rc == 0, out
    assert "PICKED m1 m1 m1,m2" in out
