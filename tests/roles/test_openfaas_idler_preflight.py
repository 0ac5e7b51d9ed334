"""The openfaas role refuses an idler that could not work, before it installs anything of it: without the gateway's
scale_from_zero (nothing would wake a function at zero), without monitoring (no call counts), and with settings the
idler program itself rejects (it checks them on the controller: one parser for the role and the program).

The plays run only the role's tasks/idler.yml with a local connection; each refusal is the first task that fails.
"""

import re

IDLER_ONLY = """
- name: OpenFaaS idler only
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the role's idler tasks
      ansible.builtin.include_role:
        name: onmetal.faas.openfaas
        tasks_from: idler.yml
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


def test_idler_without_scale_from_zero_is_refused(run_play):
    rc, out = run_play(INVENTORY, IDLER_ONLY, {"openfaas_idler": True, "openfaas_scale_from_zero": False})
    text = _flat(out)
    assert rc != 0
    assert (
        "openfaas_idler is true but openfaas_scale_from_zero is false: a function the idler scales to zero would "
        "answer every call with an error, since only the gateway's scale_from_zero wakes it." in text
    )
    assert "Set openfaas_scale_from_zero: true (its cost: while the swarm has no leader" in text
    assert "Install the idler program" not in text


def test_idler_without_monitoring_is_refused_with_both_reasons(run_play):
    rc, out = run_play(
        INVENTORY,
        IDLER_ONLY,
        {"openfaas_idler": True, "openfaas_scale_from_zero": False, "openfaas_monitoring": False},
    )
    text = _flat(out)
    assert rc != 0
    assert "wakes it; and openfaas_monitoring is false: the gateway takes the call counts the idler watches" in text


def test_bad_default_duration_is_refused_by_the_idler_itself(run_play):
    rc, out = run_play(
        INVENTORY,
        IDLER_ONLY,
        {"openfaas_idler": True, "openfaas_scale_from_zero": True, "openfaas_idler_default_duration": "15"},
    )
    text = _flat(out)
    assert rc != 0
    assert (
        "onmetal-faas-idler: openfaas_idler_default_duration: '15' is not a Go duration; expected a number with a "
        "unit such as 90s, 15m or 1h30m. Nothing of the idler was installed." in text
    )
    assert "Install the idler program" not in text


def test_zero_interval_is_refused(run_play):
    rc, out = run_play(
        INVENTORY, IDLER_ONLY, {"openfaas_idler": True, "openfaas_scale_from_zero": True, "openfaas_idler_interval": 0}
    )
    assert rc != 0
    assert "openfaas_idler_interval 0: expected a number of seconds above 0, such as 30" in _flat(out)
