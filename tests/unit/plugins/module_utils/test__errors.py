# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one error type between module logic and main()."""

from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure


def test_failure_carries_message_and_partial_result():
    exc = ModuleFailure("scheduler 'noop' is not offered by vda", changed=True, devices={"vda": {}})
    assert str(exc) == "scheduler 'noop' is not offered by vda"
    assert exc.fail_kwargs() == {
        "msg": "scheduler 'noop' is not offered by vda",
        "changed": True,
        "devices": {"vda": {}},
    }


def test_domain_errors_subclass_it():
    class ComposeProblem(ModuleFailure):
        pass

    try:
        raise ComposeProblem("bad key 'x'")
    except ModuleFailure as exc:
        assert exc.msg == "bad key 'x'"
        assert exc.result == {}
