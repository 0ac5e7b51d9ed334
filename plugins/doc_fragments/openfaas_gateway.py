# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connection options of the modules that talk to the OpenFaaS gateway's REST API.

Their argument spec is GATEWAY_ARGS in plugins/module_utils/_openfaas_gateway.py, declared once beside this
fragment; tests/unit/plugins/module_utils/test__openfaas_gateway.py holds the two together.
"""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  gateway_url:
    description: Base URL of the OpenFaaS gateway.
    type: str
    default: http://127.0.0.1:8080
  username:
    description: Basic-auth user of the gateway.
    type: str
    default: admin
  password:
    description:
      - Basic-auth password of the gateway. The openfaas role writes it to the controller file named by
        C(openfaas_credentials_file).
    type: str
    required: true
  validate_certs:
    description: Verify the gateway's TLS certificate for C(https) URLs.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each HTTP response of the gateway.
    type: int
    default: 30
"""
