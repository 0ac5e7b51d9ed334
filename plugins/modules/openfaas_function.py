#!/usr/bin/python
# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: openfaas_function
short_description: Deploy, update or remove an OpenFaaS function through the gateway's REST API
version_added: 0.1.0
description:
  - Manages one function with the OpenFaaS gateway's C(/system/functions) API (basic auth) - C(POST)
    creates it, C(PUT) updates it, C(DELETE) removes it - and changes nothing when the deployed function
    already matches.
  - The gateway reports only name, image, replicas, C(envProcess), labels and (with some providers)
    annotations of a function, not its environment, secrets, limits or constraints. The module therefore
    stores a hash of the complete desired request in the label C(io.onmetal.faas.spec-hash) and updates the
    function when that hash, the image, C(envProcess), a desired label or a desired annotation differs.
  - O(scale_min), O(scale_max), O(scale_factor), O(scale_zero) and O(scale_zero_duration) are rendered as the
    labels C(com.openfaas.scale.min), C(.max), C(.factor), C(.zero) and C(.zero-duration); the same labels given
    in O(labels) are checked the same way (whole numbers, min <= max with the gateway's default max 20,
    factor 0..100, zero V(true)/V(false), a Go duration), because the gateway and faas-swarm silently ignore
    or misread bad values.
  - CPU amounts are sent as the integer nano-CPUs faas-swarm 0.9.0 parses (V(0.5) and V(500m) become
    C(500000000)); faas-swarm silently applies no limit to any other format.
  - On an update faas-swarm resets the replicas to C(com.openfaas.scale.min); the module scales the function
    back to the replica count it had before (within min and max), so a redeploy does not undo auto-scaling.
    During the rolling update the count dips to the minimum for a moment.
  - With O(wait=true) the module polls C(GET /system/function/<name>) until C(availableReplicas) (the running
    tasks that are up to date with the new spec) reaches the function's replicas, and fails after
    O(wait_timeout) with a message that names the image (a missing image shows up this way, since the gateway
    accepts any image name), or at once when Swarm has rolled the update back.
author:
  - onmetal.faas developers (@onmetal)
extends_documentation_fragment:
  - onmetal.faas.openfaas_gateway
attributes:
  check_mode:
    description: Reads the deployed functions and reports the plan; calls no write endpoint.
    support: full
  diff_mode:
    description: Returns the deployed function (as the gateway reports it) and the desired one.
    support: full
  platform:
    description: Any host that reaches the gateway over HTTP(S).
    support: full
    platforms: posix
options:
  name:
    description:
      - Function name (lower-case letters, digits and C(-), at most 63 characters); also the path in
        C(/function/<name>).
    type: str
    required: true
  image:
    description:
      - Image of the function, pullable by every node that may run it (for example from the registry
        service on the swarm, V(127.0.0.1:5000/resize:3f2a...)).
      - Required with O(state=present).
    type: str
  state:
    description: Whether the function should be deployed.
    type: str
    choices: [present, absent]
    default: present
  env:
    description: Environment variables of the function (the request's C(envVars)); values are turned into strings.
    type: dict
    default: {}
  env_process:
    description: The C(fprocess) command for watchdog-based images (C(envProcess)).
    type: str
  labels:
    description: Labels of the function's service; values are turned into strings.
    type: dict
    default: {}
  annotations:
    description: Annotations of the function.
    type: dict
    default: {}
  secrets:
    description: Names of OpenFaaS (Swarm) secrets mounted under C(/var/openfaas/secrets/).
    type: list
    elements: str
    default: []
  constraints:
    description: Swarm placement constraints, for example V(node.role == worker).
    type: list
    elements: str
    default: []
  limits:
    description: Resource limits; a memory size such as V(128m) and a CPU amount such as V(0.5) or V(500m).
    type: dict
    suboptions:
      memory:
        description: Memory limit (V(128m), V(256Mi), V(1g)).
        type: str
      cpu:
        description:
          - CPU limit in cores (V(0.5), V(2)) or millicores (V(500m)), at least V(1m); sent as nano-CPUs.
        type: str
  requests:
    description: Resource reservations, same format as O(limits).
    type: dict
    suboptions:
      memory:
        description: Memory reservation.
        type: str
      cpu:
        description: CPU reservation.
        type: str
  scale_min:
    description: Minimum replicas (label C(com.openfaas.scale.min)); the Swarm provider starts this many.
    type: int
  scale_max:
    description: Maximum replicas (label C(com.openfaas.scale.max)); the gateway's default is 20.
    type: int
  scale_factor:
    description: Percent of O(scale_max) the gateway adds per alert (label C(com.openfaas.scale.factor)), 0 to 100.
    type: int
  scale_zero:
    description: Whether an idler may scale the function to zero (label C(com.openfaas.scale.zero)).
    type: bool
  scale_zero_duration:
    description:
      - Idle time before scaling to zero, a Go duration such as V(15m) (label C(com.openfaas.scale.zero-duration)).
    type: str
  network:
    description: Overlay network of the function; omit to use the provider's default network.
    type: str
  read_only_root_filesystem:
    description: Run the function with a read-only root filesystem.
    type: bool
    default: false
  wait:
    description:
      - After deploying (or when nothing changed), wait until every replica runs the current spec (at least one).
    type: bool
    default: false
  wait_timeout:
    description: Seconds O(wait=true) waits before failing.
    type: int
    default: 120
notes:
  - faas-swarm 0.9.0 keeps the old environment when an update sends none (C(handlers/update.go:166-170)), so
    removing the last entry of O(env) leaves the variables in place until the function is deployed again.
  - The gateway accepts an image name that does not exist; use O(wait=true) to find out.
seealso:
  - name: OpenFaaS gateway REST API
    description: The API this module calls.
    link: https://docs.openfaas.com/reference/rest-api/
"""

EXAMPLES = r"""
- name: Deploy the resizer from the swarm's registry and wait for a replica
  onmetal.faas.openfaas_function:
    gateway_url: http://127.0.0.1:8080
    password: "{{ openfaas_password }}"
    name: resize
    image: 127.0.0.1:5000/resize:3f2a9c0d1e7b
    env:
      write_timeout: 10s
    scale_min: 1
    scale_max: 5
    limits:
      memory: 128m
    wait: true

- name: Remove a function
  onmetal.faas.openfaas_function:
    password: "{{ openfaas_password }}"
    name: old-function
    state: absent
"""

RETURN = r"""
action:
  description: What the module did (or would do in check mode).
  returned: always
  type: str
  choices: [create, update, delete, none]
  sample: update
reasons:
  description: Why the function is created, updated or removed.
  returned: always
  type: list
  elements: str
  sample: ["image 127.0.0.1:5000/resize:aaa -> 127.0.0.1:5000/resize:bbb"]
spec_hash:
  description: Hash of the desired request, stored in the label C(io.onmetal.faas.spec-hash).
  returned: when O(state=present)
  type: str
  sample: 0f5c3b2a9d8e7f6a5b4c3d2e1f0a9b8c
request:
  description: The body sent (or that would be sent) to C(POST)/C(PUT /system/functions).
  returned: when O(state=present)
  type: dict
  sample:
    service: resize
    image: 127.0.0.1:5000/resize:3f2a9c0d1e7b
    envVars: {}
    labels: {com.openfaas.scale.min: "1", io.onmetal.faas.spec-hash: 0f5c3b2a9d8e7f6a5b4c3d2e1f0a9b8c}
http_status:
  description: HTTP status of the write request (or of the failed request).
  returned: when a write request was made or a request failed
  type: int
  sample: 202
replicas:
  description: Replicas the function keeps across the update (faas-swarm would reset them to the minimum).
  returned: when O(state=present) and the function is updated
  type: int
  sample: 5
status:
  description: The function's status from C(GET /system/function/<name>) after waiting.
  returned: when O(wait=true) and not in check mode
  type: dict
  sample: {name: resize, image: 127.0.0.1:5000/resize:3f2a9c0d1e7b, replicas: 1, availableReplicas: 1}
"""

import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.urls import open_url  # noqa: E402

from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas import ARGUMENT_SPEC, run  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ("image",))],
        supports_check_mode=True,
    )
    try:
        result = run(module.params, open_url, sleep=time.sleep, check_mode=module.check_mode, want_diff=module._diff)
    except ModuleFailure as exc:
        module.fail_json(**exc.fail_kwargs())
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
