# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one error type between a module's logic and its main().

Every module follows one contract: its logic (in module_utils) takes parameters and injected I/O and
either returns the result dict or raises ModuleFailure. Only main() talks to AnsibleModule: it calls
exit_json with the result, or fail_json with the failure's message and the partial result it carries
(what was already done, so the user sees it). Domain errors (compose, engine, sysfs, gateway) subclass
ModuleFailure, so main() catches one type.
"""


class ModuleFailure(Exception):
    """A failure to report with fail_json: a message that names the value and the fix, plus a partial result."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.msg = msg
        self.result = result

    def fail_kwargs(self):
        """The keyword arguments for AnsibleModule.fail_json (msg and the partial result)."""
        kwargs = dict(self.result)
        kwargs["msg"] = self.msg
        return kwargs
