# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for the OpenFaaS layer: the timeout chain, faas-cli stack files."""

from __future__ import annotations

import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas_stack, _timeouts


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


def nginx_timeout_problems(proxy_read_timeout, proxy_send_timeout, gateway_write_timeout):
    """gateway_nginx's proxy_read/proxy_send timeouts against the gateway's write timeout, by the chain's rule."""
    try:
        return _timeouts.check_nginx(proxy_read_timeout, proxy_send_timeout, gateway_write_timeout)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"nginx_timeout_problems: {exc}") from exc


def _read_text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def openfaas_stack_functions(paths, langs=_openfaas_stack.DEFAULT_LANGS):
    """The ``openfaas_functions`` entries of faas-cli stack files on the controller, in order."""
    if isinstance(paths, str):
        paths = [paths]
    entries = []
    for path in paths or []:
        path = str(path)
        try:
            text = _read_text(path)
        except OSError as exc:
            raise AnsibleFilterError(f"stack file {path} cannot be read: {exc.strerror}") from None
        try:
            entries.extend(_openfaas_stack.stack_functions(text, path, _read_text, yaml.safe_load, langs=langs))
        except _openfaas_stack.StackError as exc:
            raise AnsibleFilterError(f"stack file {exc}") from None
    return entries


class FilterModule:
    """OpenFaaS filters."""

    def filters(self):
        return {
            "timeout_chain": timeout_chain,
            "nginx_timeout_problems": nginx_timeout_problems,
            "openfaas_stack_functions": openfaas_stack_functions,
        }
