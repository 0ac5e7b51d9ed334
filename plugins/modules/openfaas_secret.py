#!/usr/bin/python
# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: openfaas_secret
short_description: Create, replace or remove an OpenFaaS secret through the gateway's REST API
version_added: 0.1.0
description:
  - Manages one secret with the OpenFaaS gateway's C(/system/secrets) API (basic auth). Functions mount it
    under C(/var/openfaas/secrets/<name>) when they list it in their C(secrets).
  - The API never returns a secret's value and (with faas-swarm 0.9.0) stores no label beside it, so the
    module cannot see whether a deployed value differs from O(value). Choose how a new value reaches the
    functions. With O(append_hash=true) the secret is named C(<name>-<first 12 hex digits of sha256(value)>)
    (returned as RV(secret_name)); a new value is a new secret, functions that list the new name roll to it,
    and re-runs with the same value change nothing. With O(force=true) an existing secret is replaced on every
    run. Otherwise an existing secret is left as it is.
  - faas-swarm 0.9.0 cannot update a secret (C(PUT) answers 405); O(force=true) then removes the secret and
    creates it again, which Swarm refuses while a function uses the secret. Prefer O(append_hash=true) for
    secrets that functions use.
author:
  - onmetal.faas developers (@onmetal)
extends_documentation_fragment:
  - onmetal.faas.openfaas_gateway
attributes:
  check_mode:
    description: Lists the secrets and reports the plan; calls no write endpoint.
    support: full
  diff_mode:
    description: Shows whether the secret exists before and after; the value is never shown, not even as a hash.
    support: full
  platform:
    description: Any host that reaches the gateway over HTTP(S).
    support: full
    platforms: posix
options:
  name:
    description:
      - Secret name (letters, digits, C(.), C(_) and C(-), starting and ending with a letter or digit, at most
        64 characters including what O(append_hash) adds).
    type: str
    required: true
  value:
    description:
      - The secret's content, 1 byte to 500 KiB. Required with O(state=present) and with O(append_hash=true).
    type: str
  state:
    description: Whether the secret should exist.
    type: str
    choices: [present, absent]
    default: present
  append_hash:
    description:
      - Name the secret C(<name>-<hash>) after its value, so that a changed value creates a new secret.
      - The hash is the first 12 hex digits of the value's SHA-256; anyone who can list secrets sees it, so use
        this for high-entropy values (keys, generated passwords), not for short guessable ones.
    type: bool
    default: false
  force:
    description:
      - With O(state=present), replace an existing secret's value on every run (reports a change every time).
    type: bool
    default: false
notes:
  - Secrets created with C(docker secret create) lack the label C(com.openfaas.owner=openfaas); faas-swarm
    neither lists nor removes them, and creating one of the same name fails with HTTP 500.
seealso:
  - module: onmetal.faas.openfaas_function
  - name: OpenFaaS gateway REST API
    description: The API this module calls.
    link: https://docs.openfaas.com/reference/rest-api/
"""

EXAMPLES = r"""
- name: Store the S3 key under a name derived from its value
  onmetal.faas.openfaas_secret:
    password: "{{ openfaas_password }}"
    name: s3-secret-key
    value: "{{ vault_s3_secret_key }}"
    append_hash: true
  register: s3_key

- name: Deploy a function that reads it from /var/openfaas/secrets/
  onmetal.faas.openfaas_function:
    password: "{{ openfaas_password }}"
    name: resize
    image: 127.0.0.1:5000/resize:3f2a9c0d1e7b
    secrets: ["{{ s3_key.secret_name }}"]
    env:
      s3_secret_key_secret: "{{ s3_key.secret_name }}"

- name: Remove a secret
  onmetal.faas.openfaas_secret:
    password: "{{ openfaas_password }}"
    name: old-token
    state: absent
"""

RETURN = r"""
secret_name:
  description: Name of the secret (with the value's hash when O(append_hash=true)).
  returned: when the options are valid
  type: str
  sample: s3-secret-key-4f1c2a9b7d3e
action:
  description: What the module did (or would do in check mode).
  returned: when the options are valid
  type: str
  choices: [create, replace, delete, none]
  sample: create
reasons:
  description: Why the secret is created, replaced or removed.
  returned: when the options are valid
  type: list
  elements: str
  sample: ["secret does not exist"]
http_status:
  description: HTTP status of the last write request (or of the failed request).
  returned: when a write request was made or a request failed
  type: int
  sample: 201
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.urls import open_url  # noqa: E402

from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._openfaas_secret import ARGUMENT_SPEC, run  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ("value",)), ("append_hash", True, ("value",))],
        supports_check_mode=True,
    )
    try:
        result = run(module.params, open_url, check_mode=module.check_mode, want_diff=module._diff)
    except ModuleFailure as exc:
        module.fail_json(**exc.fail_kwargs())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
