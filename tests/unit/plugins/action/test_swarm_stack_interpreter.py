"""The swarm_stack action plugin picks the managed node's python the way Ansible picks it for the module
(ansible-core's ``module_common._get_shebang``): host var, then the INTERPRETER_PYTHON config setting from
the environment or ansible.cfg (templated), then the discovered fact for 'auto*'; None only when discovery
has not run yet.  Real ansible-core config and templating; only the task and connection are stand-ins."""

import types

import pytest
from ansible import constants as C
from ansible.config.manager import ConfigManager
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

try:  # ansible-core >= 2.19 renders only trusted templates (inventory and config values are trusted)
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - ansible-core < 2.19 renders every string

    def trust_as_template(value):
        return value


from ansible_collections.onmetal.faas.plugins.action.swarm_stack import ActionModule


def _resolve(task_vars, delegate_to=None, remote_is_local=False):
    """ActionModule._interpreter with the templar a task gets (the task's variables available)."""
    action = ActionModule.__new__(ActionModule)  # only the attributes _interpreter reads
    action._task = types.SimpleNamespace(delegate_to=delegate_to)
    action._connection = types.SimpleNamespace(_remote_is_local=remote_is_local)
    action._templar = Templar(loader=DataLoader(), variables=task_vars)
    return action._interpreter(task_vars)


@pytest.fixture
def config(monkeypatch, tmp_path):
    """Point ansible-core's global config at an ansible.cfg of the test's choosing (None: no file)."""
    monkeypatch.delenv("ANSIBLE_PYTHON_INTERPRETER", raising=False)

    def use(ini_text=None):
        path = None
        if ini_text is not None:
            path = tmp_path / "ansible.cfg"
            path.write_text(ini_text)
        monkeypatch.setattr(C, "config", ConfigManager(str(path) if path else None))

    use(None)
    return use


def test_host_var_wins(config):
    config("[defaults]\ninterpreter_python = /from/cfg/python3\n")
    assert _resolve({"ansible_python_interpreter": "/opt/venv/bin/python"}) == "/opt/venv/bin/python"


def test_host_var_is_templated(config):
    task_vars = {"ansible_python_interpreter": trust_as_template("{{ venv }}/bin/python"), "venv": "/srv/v"}
    assert _resolve(task_vars) == "/srv/v/bin/python"


def test_ansible_cfg_interpreter_python(config):
    # the case of issue 14: set in ansible.cfg, no host var, no discovery fact
    config("[defaults]\ninterpreter_python = /usr/bin/python3\n")
    assert _resolve({}) == "/usr/bin/python3"


def test_ansible_cfg_value_is_templated(config):
    config("[defaults]\ninterpreter_python = {{ node_venv }}/bin/python\n")
    assert _resolve({"node_venv": "/opt/nv"}) == "/opt/nv/bin/python"


def test_environment_variable(config, monkeypatch):
    config("[defaults]\ninterpreter_python = /from/cfg/python3\n")
    monkeypatch.setenv("ANSIBLE_PYTHON_INTERPRETER", "/from/env/python3")
    assert _resolve({}) == "/from/env/python3"


@pytest.mark.parametrize("mode", ["auto", "auto_silent", "auto_legacy", "auto_legacy_silent"])
def test_auto_uses_the_discovered_fact(config, mode):
    config(f"[defaults]\ninterpreter_python = {mode}\n")
    facts = {"ansible_facts": {"discovered_interpreter_python": "/usr/bin/python3.11"}}
    assert _resolve(facts) == "/usr/bin/python3.11"


def test_auto_without_discovery_is_unknown(config):
    config("[defaults]\ninterpreter_python = auto_silent\n")
    assert _resolve({"ansible_facts": {}}) is None


def test_default_config_without_facts_is_unknown(config):
    assert _resolve({"ansible_facts": {}}) is None


def test_delegated_host_vars(config):
    task_vars = {
        "ansible_python_interpreter": "/on/the/inventory/host",
        "ansible_delegated_vars": {"mgr1": {"ansible_python_interpreter": "/on/mgr1/python3"}},
    }
    assert _resolve(task_vars, delegate_to="mgr1") == "/on/mgr1/python3"


def test_remote_is_local_uses_the_playbook_python(config):
    assert _resolve({"ansible_playbook_python": "/ctl/python"}, remote_is_local=True) == "/ctl/python"


def test_interpreter_with_arguments_is_a_command_line(config):
    # the shell runs the module as "<shebang command> <module>", word-split: the probe does the same
    assert _resolve({"ansible_python_interpreter": "/usr/bin/env python3"}) == "/usr/bin/env python3"


def test_the_shebang_ansible_replaces_is_the_modules():
    from ansible_collections.onmetal.faas.plugins.action import swarm_stack as action
    from ansible_collections.onmetal.faas.plugins.modules import swarm_stack as module

    with open(module.__file__) as handle:
        assert handle.readline().strip() == "#!" + action.MODULE_SHEBANG_INTERPRETER
