# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""swarm_stack's argument spec, shared by the module and its action plugin (which validates the same way).

The Docker connection options come from ``_docker_api.DOCKER_COMMON_ARGS`` (documented in the
``onmetal.faas.docker_api`` doc fragment).
"""

from ansible_collections.onmetal.faas.plugins.module_utils._docker_api import DOCKER_COMMON_ARGS

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    compose=dict(type="dict"),
    compose_files=dict(type="list", elements="path"),
    project_dir=dict(type="path"),
    secret_contents=dict(type="dict", no_log=True),
    config_contents=dict(type="dict"),
    prune=dict(type="bool", default=False),
    keep_old_versions=dict(type="int", default=1),
    with_registry_auth=dict(type="bool", default=False),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
    wait_max_task_failures=dict(type="int", default=3),
    rollback_on_failure=dict(type="bool", default=True),
    resolve_digests=dict(type="bool", default=False),
    require_digests=dict(type="bool", default=False),
    endpoint_mode=dict(type="str", choices=["auto", "vip", "dnsrr"], default="auto"),
    ipvs_probe_path=dict(type="path", default="/proc/net/ip_vs"),
    no_op_probe=dict(type="bool", default=True),
    **DOCKER_COMMON_ARGS,
)
MUTUALLY_EXCLUSIVE = [("compose", "compose_files")]
REQUIRED_IF = [("state", "present", ("compose", "compose_files"), True)]
