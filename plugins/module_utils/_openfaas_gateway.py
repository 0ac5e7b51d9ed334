# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connection options shared by every module that talks to the OpenFaaS gateway, declared once.

The argument spec half of the doc fragment ``onmetal.faas.openfaas_gateway``
(``plugins/doc_fragments/openfaas_gateway.py``), as community.docker pairs ``DOCKER_COMMON_ARGS`` with its
``docker`` fragment: a module adds ``extends_documentation_fragment: onmetal.faas.openfaas_gateway`` to its
DOCUMENTATION and ``**GATEWAY_ARGS`` to its argument spec. tests/unit/plugins/module_utils/test__openfaas_gateway.py
holds the two together (names, types, defaults, required, no_log).
"""

from __future__ import annotations

GATEWAY_ARGS = dict(
    gateway_url=dict(type="str", default="http://127.0.0.1:8080"),
    username=dict(type="str", default="admin"),
    password=dict(type="str", required=True, no_log=True),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="int", default=30),
)


def gateway_args(params):
    """The connection options out of a module's parameters, as keyword arguments of ``GatewayClient``."""
    return dict(
        url=params["gateway_url"],
        username=params["username"],
        password=params["password"],
        timeout=params["timeout"],
        validate_certs=params["validate_certs"],
    )
