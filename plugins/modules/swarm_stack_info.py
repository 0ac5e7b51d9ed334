#!/usr/bin/python
# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: swarm_stack_info
short_description: Report Docker Swarm stacks, their services, tasks and objects
version_added: 0.1.0
description:
  - Without O(name), lists the stacks of the swarm (services labelled C(com.docker.stack.namespace)).
  - With O(name), reports every service of that stack (image, mode, replicas, running tasks, convergence, update
    state, endpoint mode, published ports, and whether it is managed by M(onmetal.faas.swarm_stack), that is carries
    its applied-hash label) and the stack's networks, secrets and configs.
  - Read only. Works for stacks deployed by C(docker stack deploy) too.
author:
  - onmetal.faas developers (@onmetal)
extends_documentation_fragment:
  - onmetal.faas.docker_api
attributes:
  check_mode:
    support: full
    description: Read only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, there is nothing to diff.
  platform:
    platforms: posix
    support: full
    description: Runs on a Swarm manager (or with O(docker_host) pointing at one).
options:
  name:
    description:
      - Stack to report. Without it, the list of stacks.
    type: str
seealso:
  - module: onmetal.faas.swarm_stack
"""

EXAMPLES = r"""
- name: List the stacks
  onmetal.faas.swarm_stack_info:
  register: stacks

- name: Check that every service of the func stack runs
  onmetal.faas.swarm_stack_info:
    name: func
  register: func
  failed_when: func.services | rejectattr('converged') | list | length > 0
"""

RETURN = r"""
stacks:
  description: Stacks with their number of services.
  returned: always
  type: list
  elements: dict
  sample: [{name: func, services: 5}]
services:
  description: Services of the stack named by O(name).
  returned: when O(name) is given
  type: list
  elements: dict
  sample:
    - name: func_gateway
      service: gateway
      id: nti4jznn3ejd...
      image: ghcr.io/openfaas/gateway:0.18.18
      mode: replicated
      replicas: 1
      running: 1
      desired: 1
      converged: true
      update_state: completed
      endpoint_mode: dnsrr
      ports: [{published: 8080, target: 8080, protocol: tcp, mode: host}]
      managed: true
      applied_hash: 964b7ae3a659...
      message: ""
networks:
  description: Networks labelled with the stack.
  returned: when O(name) is given
  type: list
  elements: str
secrets:
  description: Secrets labelled with the stack.
  returned: when O(name) is given
  type: list
  elements: str
configs:
  description: Configs labelled with the stack.
  returned: when O(name) is given
  type: list
  elements: str
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.onmetal.faas.plugins.module_utils._docker_api import DOCKER_COMMON_ARGS  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._stack import connect, describe_module  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._stack_client import DockerApiEngine  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec=dict(name=dict(type="str"), **DOCKER_COMMON_ARGS),
        supports_check_mode=True,
    )
    try:
        http = connect(module.params, os.environ)
    except ModuleFailure as exc:
        module.fail_json(**exc.fail_kwargs())
    try:
        result = describe_module(module.params, DockerApiEngine(http))
    except ModuleFailure as exc:
        module.fail_json(**exc.fail_kwargs())
    finally:
        http.close()
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
