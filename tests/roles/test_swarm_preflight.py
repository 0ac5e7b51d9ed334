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


# Network facts of a VPS-like host (public address on the default route, a private network on eth1, the engine's
# bridge), returned by a test-only module written next to the play: the role reads these instead of this machine's.
FAKE_FACTS_MODULE = """#!/usr/bin/python
# Test double (tests/roles/test_swarm_preflight.py): returns fixed network facts, like setup's network subset.
import json
facts = {
    "default_ipv4": {"address": "203.0.113.5", "interface": "eth0"},
    "all_ipv4_addresses": ["203.0.113.5", "10.0.0.5", "172.17.0.1"],
    "interfaces": ["lo", "eth0", "eth1", "docker0"],
    "lo": {"ipv4": {"address": "127.0.0.1"}},
    "eth0": {"ipv4": {"address": "203.0.113.5"}},
    "eth1": {"ipv4": {"address": "10.0.0.5"}},
    "docker0": {"ipv4": {"address": "172.17.0.1"}},
}
print(json.dumps({"changed": False, "ansible_facts": facts}))
"""

PREFLIGHT_PLAY = """
- name: Swarm preflight only, on a host with a public default route
  hosts: all
  gather_facts: false
  tasks:
    - name: Load the host's network facts
      fake_network_facts:
    - name: Run the role's preflight checks
      ansible.builtin.include_role:
        name: onmetal.faas.swarm
        tasks_from: preflight.yml
"""


def _preflight(run_play, tmp_path, managers, extra_vars):
    (tmp_path / "library").mkdir(exist_ok=True)
    (tmp_path / "library" / "fake_network_facts.py").write_text(FAKE_FACTS_MODULE)
    return run_play(_inventory(managers), PREFLIGHT_PLAY, extra_vars)


def test_even_manager_count_passes_preflight_when_allowed(run_play, tmp_path):
    rc, out = _preflight(
        run_play, tmp_path, ["m1", "m2"], {"swarm_allow_even_managers": True, "swarm_advertise_interface": "eth1"}
    )
    assert rc == 0, out
    assert "keeps its quorum with up to 0 manager(s) down" in _flat(out)


def test_public_advertise_address_is_refused(run_play, tmp_path):
    """Issue 15 item 4: the default route's public address is not advertised without an opt-in."""
    rc, out = _preflight(run_play, tmp_path, ["m1"], {})
    text = _flat(out)
    assert rc != 0
    assert (
        "m1: the advertise address '203.0.113.5' (from the default route, interface eth0) is public: the swarm's "
        "manager API (2377/tcp), gossip (7946/tcp+udp) and the overlay data path (VXLAN 4789/udp, unencrypted unless "
        "the network is encrypted) would cross the internet." in text
    )
    assert "(private addresses of this host: eth1 10.0.0.5)" in text
    assert "172.17.0.1" not in text.split("is public", 1)[1]
    assert "swarm_allow_public_advertise: true" in text
    assert "Look for IPVS and VXLAN support" not in out


def test_public_advertise_address_given_by_hand_is_refused(run_play, tmp_path):
    rc, out = _preflight(run_play, tmp_path, ["m1"], {"swarm_advertise_addr": "203.0.113.5"})
    assert rc != 0
    assert "m1: the advertise address '203.0.113.5' (from swarm_advertise_addr) is public" in _flat(out)


def test_private_interface_or_opt_in_passes(run_play, tmp_path):
    rc, out = _preflight(run_play, tmp_path, ["m1"], {"swarm_advertise_interface": "eth1"})
    assert rc == 0, out
    rc, out = _preflight(run_play, tmp_path, ["m1"], {"swarm_allow_public_advertise": True})
    assert rc == 0, out
