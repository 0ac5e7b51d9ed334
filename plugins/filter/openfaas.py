# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for the OpenFaaS layer: the timeout chain."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.onmetal.faas.plugins.module_utils import _timeouts


def timeout_chain(timeout, max_inflight=1, margin=5, overrides=None):
    """Derive the chain from one timeout and report its broken links in ``errors``."""
    try:
        chain = _timeouts.derive(timeout, max_inflight=max_inflight, margin=margin, overrides=overrides)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"timeout_chain: {exc}") from exc
    result = dict(chain)
    result["errors"] = _timeouts.check(chain)
    result["durations"] = {key: _timeouts.go_duration(chain[key]) for key in _timeouts.LINKS}
    return result


class FilterModule:
    """OpenFaaS filters."""

    def filters(self):
        return {"timeout_chain": timeout_chain}
