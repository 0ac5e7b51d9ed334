"""Shared harness for module-level tests: AnsibleModule's exit_json/fail_json/warn raise ModuleExit."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ModuleExit(Exception):
    """Raised instead of exiting; carries the module's result and whether it failed."""

    def __init__(self, result, failed):
        super().__init__(result.get("msg"))
        self.result = result
        self.failed = failed


def patch_exits(monkeypatch):
    """Make AnsibleModule raise ModuleExit (warnings are collected into the result)."""

    def exit_json(self, **kwargs):
        kwargs["warnings"] = list(getattr(self, "_test_warnings", []))
        raise ModuleExit(kwargs, False)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise ModuleExit(kwargs, True)

    def warn(self, warning):
        self._test_warnings = getattr(self, "_test_warnings", []) + [warning]

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", warn)


def run_module(module, args, check=False, diff=False):
    """Run ``module.main()`` with ``args`` (check/diff mode as asked) and return its ModuleExit."""
    args = dict(args)
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    with patch_module_args(args), pytest.raises(ModuleExit) as exc:
        module.main()
    # results must be JSON-serialisable, as Ansible will send them
    json.dumps(exc.value.result)
    return exc.value
