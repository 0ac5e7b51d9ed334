"""Shared harness for module-level tests: AnsibleModule's exit_json/fail_json/warn raise ModuleExit."""

from __future__ import annotations

from ansible.module_utils import basic


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
