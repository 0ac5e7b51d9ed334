"""The swarm role refuses bad inventories before it touches any host, with a message that names the
host or value and the fix."""

import re

SWARM_PLAY = """
- name: Swarm preflight
  hosts: all
  gather_facts: false
  roles:
    - onmetal.faas.swarm
"""


def _inventory(managers, workers=(), host_vars=""):
    lines = ["all:", "  vars:", "    ansible_connection: local", "  children:", "    swarm_managers:", "      hosts:"]
    lines += [f"        {h}:" for h in managers]
    lines += ["    swarm_workers:", "      hosts:" + ("" if workers else " {}")]
    lines += [f"        {h}:" for h in workers]
    return "\n".join(lines) + "\n" + host_vars


def _flat(output):
    return re.sub(r"\s+", " ", output)


def test_even_manager_count_is_refused(run_play):
    rc, out = run_play(_inventory(["m1", "m2"]), SWARM_PLAY)
    text = _flat(out)
    assert rc != 0
    assert "has 2 managers (m1, m2)" in text
    assert "swarm_allow_even_managers: true" in text
    assert "tolerate the loss of 0" in text


def test_host_in_both_groups_is_refused(run_play):
    rc, out = run_play(_inventory(["m1", "m2", "m3"], ["m2"]), SWARM_PLAY)
    text = _flat(out)
    assert rc != 0
    assert "m2 is in both 'swarm_managers' and 'swarm_workers'" in text
    assert "remove it from one group" in text


def test_empty_manager_group_is_refused(run_play):
    rc, out = run_play(_inventory([], ["w1"]), SWARM_PLAY)
    text = _flat(out)
    assert rc != 0
    assert "'swarm_managers' is empty or missing" in text


def test_foreign_advertise_address_is_refused(run_play):
    # 192.0.2.10 (TEST-NET-1) is never assigned to this machine; the role must not try to use it.
    rc, out = run_play(_inventory(["m1"]), SWARM_PLAY, {"swarm_advertise_addr": "192.0.2.10"})
    text = _flat(out)
    assert rc != 0
    assert (
        "m1: the advertise address '192.0.2.10' (from swarm_advertise_addr) is not an IPv4 address of this host" in text
    )
    assert "Set swarm_advertise_addr for this host" in text


def test_even_manager_count_passes_preflight_when_allowed(run_play):
    play = """
- name: Swarm preflight only
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the role's preflight checks
      ansible.builtin.include_role:
        name: onmetal.faas.swarm
        tasks_from: preflight.yml
"""
    rc, out = run_play(_inventory(["m1", "m2"]), play, {"swarm_allow_even_managers": True})
    assert rc == 0, out
    assert "keeps its quorum with up to 0 manager(s) down" in _flat(out)
