# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of onmetal.faas.swarm_stack: a read-only probe first, the module when something must change.

See plugins/module_utils/_stack_probe.py for why and how.  The probe is one remote command (a
standard-library Python script); its snapshot is planned on the controller with the module's own
code.  A run that changes nothing (or a check-mode run) is answered from it; every other run, and
every case the probe does not cover, executes the module as usual.
"""

import json
import shlex

from ansible.errors import AnsibleActionFail
from ansible.executor.interpreter_discovery import InterpreterDiscoveryRequiredError
from ansible.executor.module_common import _get_shebang
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.onmetal.faas.plugins.module_utils._stack_args import (
    ARGUMENT_SPEC,
    MUTUALLY_EXCLUSIVE,
    REQUIRED_IF,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_probe import probe_args as probe_args_for
from ansible_collections.onmetal.faas.plugins.module_utils._stack_probe import probe_result, remote_script

# The interpreter named in the module's shebang (plugins/modules/swarm_stack.py), which Ansible replaces.
MODULE_SHEBANG_INTERPRETER = "/usr/bin/python"
display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        answer, why = self._probe(task_vars)
        if answer is None:
            display.vvv(f"swarm_stack: running the module ({why})", host=self._play_context.remote_addr)
            answer = self._execute_module(task_vars=task_vars)
        result.update(answer)
        return result

    def _interpreter(self, task_vars):
        """The managed node's python exactly as Ansible would pick it for the module; None when only
        interpreter discovery (which runs with the module) can tell.

        ansible-core's own resolution is reused (``ActionBase._configure_module`` -> ``modify_module`` ->
        ``module_common._get_shebang``): the delegated host's vars when delegating; the connection's
        ``ansible_playbook_python`` when the remote is local; else the config setting INTERPRETER_PYTHON,
        which is the host var ``ansible_python_interpreter``, then ``ANSIBLE_PYTHON_INTERPRETER``, then
        ``interpreter_python`` in ansible.cfg, templated; an empty or ``auto*`` value means the fact
        ``discovered_interpreter_python``, and without that fact discovery is required (-> None).
        """
        use_vars = task_vars
        if self._task.delegate_to:
            use_vars = (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to) or {}
        try:
            shebang, interpreter = _get_shebang(
                MODULE_SHEBANG_INTERPRETER,
                use_vars,
                self._templar,
                remote_is_local=bool(getattr(self._connection, "_remote_is_local", False)),
            )
        except InterpreterDiscoveryRequiredError:
            return None
        if not (isinstance(interpreter, str) and interpreter.strip()):
            return None
        # as the shell plugin's build_module_command runs a module: the shebang's command line, unquoted, so
        # "/usr/bin/env python3" works as it does for the module
        return shebang[2:].strip()

    def _probe(self, task_vars):
        """(the module's result from the probe, None) or (None, why the module must run)."""
        if self._task.async_val:
            return None, "async"
        interpreter = self._interpreter(task_vars)
        if interpreter is None:
            return None, "the node's python is not known yet (interpreter discovery runs with the module)"
        try:
            validation, _args = self.validate_argument_spec(
                argument_spec=ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE, required_if=REQUIRED_IF
            )
        except AnsibleActionFail:
            return None, "invalid arguments"  # the module reports them in its own words
        params = validation.validated_parameters
        probe_args, why = probe_args_for(params, self._task.args.get("ipvs_probe_path"), self._play_context.check_mode)
        if probe_args is None:
            return None, why
        command = " ".join(
            [
                # the task's environment (DOCKER_HOST, TLS settings, proxies), as the module would get it
                self._compute_environment_string(),
                interpreter,
                "-c",
                shlex.quote(remote_script()),
                shlex.quote(json.dumps(probe_args)),
            ]
        ).strip()
        try:
            answer = self._low_level_execute_command(command, sudoable=True)
            if answer.get("rc") != 0:
                return None, "the probe exited {}: {}".format(answer.get("rc"), (answer.get("stderr") or "")[-300:])
            snapshot = json.loads(answer.get("stdout") or "")
        except Exception as exc:  # noqa: BLE001 - connection quirks, odd output: the module path handles them
            return None, f"the probe failed: {exc}"
        if not isinstance(snapshot, dict):
            return None, "the probe printed no snapshot"
        if "error" in snapshot:
            return None, "the probe: " + str(snapshot["error"])
        result = probe_result(params, snapshot, self._play_context.check_mode, self._play_context.diff)
        return result, "the run needs the module (a change, a wait, a file or an engine error)"
