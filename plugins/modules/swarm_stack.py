#!/usr/bin/python
# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: swarm_stack
short_description: Deploy a Docker Swarm stack from a compose definition, plan first
version_added: 0.1.0
description:
  - Deploys a stack (services, networks, secrets, configs) described in compose file format 3.x to a
    Docker Swarm, talking to the Engine API directly (Python standard library; neither the Docker SDK nor
    the C(docker) CLI is needed).
  - B(Plan first.) The compose definition is validated and converted into Engine API service specs
    (a pure function), every object is compared with what the swarm runs, and the sets of services,
    networks, secrets and configs to create, update and remove are computed before anything is
    touched. That plan is returned, also in check mode.
  - B(Idempotent, and drift is corrected.) Every service carries the label C(io.onmetal.faas.applied-hash),
    the SHA-256 of its normalised definition (key order does not matter; environment lists and mappings are
    the same). A different hash means the definition changed. An equal hash is not enough; the running spec
    is compared with the desired one on every field the compose subset can declare (replicas, env, image,
    mounts, labels, command, resources, placement, networks, secrets, configs, ports, update, rollback and
    restart config, healthcheck, endpoint mode, ...), ignoring what the engine or the docker CLI fills in
    (defaults, object IDs, list order, C(ForceUpdate), a digest appended to an undigested image). A hand
    change such as C(docker service scale) or C(docker service update --env-add) is drift; the service is
    updated back, listed in RV(plan.services) C(drift), and shown in check and diff mode. When nothing
    differs no write request is sent at all and RV(changed) is V(false).
  - The objects carry the labels C(com.docker.stack.namespace) and C(com.docker.stack.image), so
    C(docker stack ls), C(docker stack services) and C(docker stack ps) show the stack as usual.
  - >-
    B(Secrets and configs) are immutable in Swarm. Managed ones get content-addressed names,
    C(<stack>_<name>-<first 12 hex digits of SHA-256 of the content>): a new value creates a new object
    and updates the services that use it, which rolls their tasks. After a successful run older versions
    are removed, keeping the O(keep_old_versions) newest so that a rollback still finds them.
  - B(Waiting.) With O(wait=true) the module waits until every service of the stack runs its desired number
    of tasks on the current spec (a task with a healthcheck is only C(running) once healthy) and no update
    is in progress. A failure names the service, the task state and the task's error, for example
    C(No such image) or C(secret not found).
  - B(Rollback.) With O(rollback_on_failure=true), when the wait fails, the services updated by this run
    are rolled back to their previous spec (the engine's own C(rollback=previous) update, as
    C(docker service rollback) does) and the services created by this run are removed; the module still
    fails, and says what was rolled back and whether the previous version runs again.
  - >-
    B(Endpoint mode.) Without IPVS in the kernel, service VIPs and the ingress routing mesh do not work.
    With O(endpoint_mode=auto) the module probes O(ipvs_probe_path) on the node it runs on (a manager);
    when IPVS is missing, or with O(endpoint_mode=dnsrr), every service is rewritten to
    C(endpoint_mode: dnsrr) and every published port to C(mode: host). The result says what was
    rewritten. Pass the C(swarm_effective_endpoint_mode) fact of the swarm role as O(endpoint_mode) to
    decide it once for the cluster.
  - B(Digests.) O(resolve_digests=true) resolves each image tag to a digest through the engine (the registry's
    distribution endpoint, then the repo digests in the local image store) and deploys C(repo:tag@digest), so
    the stack runs exactly the image that was resolved. O(require_digests=true) refuses image references
    without a digest and names the services.
  - Networks are immutable too. A stack network whose definition changed is reported as a conflict before
    anything is applied; remove the stack or rename the network.
  - Compose features outside the supported subset (for example C(env_file), C(${VAR}) interpolation,
    anonymous volumes, host-IP port bindings) are rejected or, for keys C(docker stack deploy) ignores
    as well (C(build), C(container_name), C(depends_on), C(restart), C(links), C(expose)), ignored with a
    warning. Unknown keys fail with the path of the key, for example C(services.web.deploy.replcas).
  - See C(docs/swarm-stack.md) in the collection for the design and the supported compose subset.
author:
  - onmetal.faas developers (@onmetal)
extends_documentation_fragment:
  - onmetal.faas.docker_api
attributes:
  action:
    support: full
    description: An action plugin answers runs that change nothing from a read-only probe (O(no_op_probe)).
  check_mode:
    support: full
    description: Computes and returns the plan (and the diff) without changing anything.
  diff_mode:
    support: full
    description: Returns the service specs before and after, per service that is created, updated or removed.
  platform:
    platforms: posix
    support: full
    description: Runs on a Swarm manager (or with O(docker_host) pointing at one).
options:
  name:
    description:
      - Name of the stack. Objects are named C(<name>_<key>) as with C(docker stack deploy).
    type: str
    required: true
  state:
    description:
      - V(present) deploys the stack; V(absent) removes every service, network, secret and config labelled
        with the stack's namespace.
    type: str
    choices: [present, absent]
    default: present
  compose:
    description:
      - The compose definition as a mapping (compose file format 3.x, the subset C(docker stack deploy) accepts).
      - Mutually exclusive with O(compose_files).
    type: dict
  compose_files:
    description:
      - Paths of compose files B(on the managed node), merged in order.
      - Later files override earlier ones. Top-level sections are merged per entry; a service that appears in
        several files is merged shallowly, key by key (a later C(deploy:) replaces an earlier C(deploy:) entirely).
      - Needs PyYAML on the managed node.
    type: list
    elements: path
  project_dir:
    description:
      - Directory that relative C(file:) paths of secrets and configs are relative to.
      - Defaults to the directory of the first of O(compose_files).
    type: path
  secret_contents:
    description:
      - Values of secrets that the compose definition declares without C(file:) and without C(external:),
        keyed by the secret's key in the compose C(secrets:) section. Never logged.
    type: dict
  config_contents:
    description:
      - Values of configs that the compose definition declares without C(file:) and without C(external:),
        keyed by the config's key in the compose C(configs:) section.
    type: dict
  prune:
    description:
      - Remove services, networks, secrets and configs of the stack that the definition no longer contains.
      - Without it they are kept and listed as C(orphaned) in RV(plan.services).
    type: bool
    default: false
  keep_old_versions:
    description:
      - How many superseded versions of each managed secret and config to keep after a successful run.
    type: int
    default: 1
  with_registry_auth:
    description:
      - Send the registry credentials of the managed node's Docker client configuration to the swarm, so that
        the nodes can pull private images.
      - Read as the docker CLI does, from C($DOCKER_CONFIG/config.json) or C(~/.docker/config.json) of the user the
        module runs as; C(credHelpers), C(auths) and C(credsStore) (through C(docker-credential-NAME get)) in that
        order. The same credentials are used for the registry lookups of O(resolve_digests).
    type: bool
    default: false
  wait:
    description:
      - Wait until every service of the stack runs its desired tasks on its current spec.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for convergence (and again for a rollback to converge).
    type: int
    default: 300
  wait_max_task_failures:
    description:
      - Give up waiting for a service early once this many of its tasks failed or were rejected since the run
        started (Swarm retries forever, for example on C(No such image)). V(0) waits for the full O(wait_timeout).
    type: int
    default: 3
  rollback_on_failure:
    description:
      - When the wait fails (or the engine refuses a request half-way through the apply), roll the services updated
        by this run back to their previous spec and remove the services created by this run.
    type: bool
    default: true
  resolve_digests:
    description:
      - Resolve every image tag to a digest through the engine and deploy by digest.
    type: bool
    default: false
  require_digests:
    description:
      - Refuse to deploy any image reference without a digest (after O(resolve_digests)).
    type: bool
    default: false
  endpoint_mode:
    description:
      - V(auto) uses V(dnsrr) when IPVS is missing on the node the module runs on (see O(ipvs_probe_path)),
        V(vip) otherwise.
      - >-
        V(dnsrr) rewrites every service to C(endpoint_mode: dnsrr) and every published port to C(mode: host).
      - V(vip) keeps the definition as written.
    type: str
    choices: [auto, vip, dnsrr]
    default: auto
  ipvs_probe_path:
    description:
      - File whose existence tells that the kernel has IPVS, for O(endpoint_mode=auto).
    type: path
    default: /proc/net/ip_vs
  no_op_probe:
    description:
      - Let the action plugin answer from a read-only probe when the run changes nothing (and in check mode).
        It sends one small standard-library Python command that makes the module's read requests, and plans on
        the controller with the module's own code. Any run that must write, wait for convergence, read files on
        the node (O(compose_files), C(file:) secrets), resolve digests, or meets an error, runs the module as usual.
      - The result is the module's result for the same engine state, plus RV(no_op_probe=true).
      - V(false) always runs the module.
    type: bool
    default: true
notes:
  - Run it on a swarm manager. On a worker it fails early and says so.
  - The applied-hash label covers the definition, not the image content behind a tag. To roll out a new image
    under the same tag use O(resolve_digests=true).
seealso:
  - module: community.docker.docker_stack
    description: Runs C(docker stack deploy) on every run; no check mode, no diff.
"""

EXAMPLES = r"""
- name: Deploy a web service with a secret, plan first
  onmetal.faas.swarm_stack:
    name: demo
    compose:
      version: "3.8"
      services:
        web:
          image: registry.example.com/web:1.4@sha256:4c5f...
          environment:
            - LOG_LEVEL=info
          secrets:
            - source: api_key
              target: api-key
          ports:
            - target: 8080
              published: 8080
              mode: host
          deploy:
            replicas: 2
            placement:
              constraints: [node.role == manager]
            resources:
              limits: {cpus: "0.5", memory: 128M}
      secrets:
        api_key: {}
    secret_contents:
      api_key: "{{ vault_api_key }}"
    require_digests: true
    endpoint_mode: "{{ swarm_effective_endpoint_mode | default('auto') }}"

- name: Show what would change
  onmetal.faas.swarm_stack:
    name: demo
    compose_files:
      - /srv/demo/docker-compose.yml
      - /srv/demo/docker-compose.prod.yml
    prune: true
  check_mode: true
  diff: true
  register: demo_plan

- name: Remove the stack
  onmetal.faas.swarm_stack:
    name: demo
    state: absent
"""

RETURN = r"""
no_op_probe:
  description: True when the action plugin answered from its read-only probe and the module did not run.
  returned: when the probe answered
  type: bool
  sample: true
changed:
  description: Whether the swarm was (or, in check mode, would be) changed.
  returned: always
  type: bool
plan:
  description: What the run does (or would do). Names are full object names (C(<stack>_<service>)).
  returned: always
  type: dict
  contains:
    services:
      description: >-
        Lists C(create), C(update), C(remove), C(unchanged), C(orphaned) (left alone without O(prune)),
        C(changes), the changed spec paths per updated service, and C(drift), the spec paths changed by hand
        per service whose definition did not change (those services are in C(update) too).
      type: dict
    networks:
      description: Lists C(create), C(remove), C(missing) (external, not found) and C(conflicts).
      type: dict
    secrets:
      description: Lists C(create), C(remove), C(prune_after_success) (old versions) and C(missing).
      type: dict
    configs:
      description: Same as RV(plan.secrets) for configs.
      type: dict
  sample:
    services: {create: [], update: [demo_web, demo_db], remove: [], unchanged: [], orphaned: [],
               changes: {demo_web: [TaskTemplate.ContainerSpec.Image], demo_db: [Mode.Replicated.Replicas]},
               drift: {demo_db: [Mode.Replicated.Replicas]}}
services:
  description: The stack's services as deployed (or as planned in check mode).
  returned: when state=present
  type: list
  elements: dict
  sample:
    - name: demo_web
      service: web
      id: 0b6g2x3...
      image: registry.example.com/web:1.4@sha256:4c5f...
      mode: replicated
      replicas: 2
      running: 2
      desired: 2
      converged: true
      endpoint_mode: dnsrr
      ports: [{published: 8080, target: 8080, protocol: tcp, mode: host}]
endpoint_mode:
  description: The endpoint mode used, why, and the rewrites made per service.
  returned: when state=present
  type: dict
  sample:
    mode: dnsrr
    reason: "auto: IPVS is missing on this node (no routing mesh); using dnsrr and host-mode ports"
    rewritten: {web: ["endpoint_mode vip -> dnsrr", "port 8080/tcp published in host mode"]}
actions:
  description: The write requests made, in order.
  returned: always
  type: list
  elements: str
  sample: ["created secret demo_api_key-9f86d081884c", "updated service demo_web"]
pruned_old_versions:
  description: Old secret/config versions removed after success.
  returned: when something changed
  type: list
  elements: str
rolled_back:
  description: >-
    On a failed wait with O(rollback_on_failure): C(updated) (services restored to their previous spec),
    C(removed_created) and C(errors).
  returned: on failure after a rollback
  type: dict
api_calls:
  description: >-
    Engine API requests the module made (a no-op run of a stack makes 6: info, services, networks, secrets,
    configs, tasks).
  returned: always
  type: int
  sample: 6
statuses:
  description: Per-service convergence when the wait failed (name, state, running, desired, message).
  returned: on a failed wait
  type: list
  elements: dict
"""

import os  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._registry_auth import auth_lookup  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._stack import NodeIO, connect, deploy  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._stack_args import (  # noqa: E402
    ARGUMENT_SPEC,
    MUTUALLY_EXCLUSIVE,
    REQUIRED_IF,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_client import DockerApiEngine  # noqa: E402
from ansible_collections.onmetal.faas.plugins.module_utils._stack_engine import StackRun  # noqa: E402


def _yaml_loader():
    """PyYAML's safe_load, imported only for compose_files (a no-op run with O(compose) does not pay for it)."""
    import yaml

    return yaml.safe_load


def _read_file(path):
    with open(path, "rb") as handle:
        return handle.read()


def _helper_runner(module):
    """Run a docker credential helper ('docker-credential-NAME get', server address on stdin)."""

    def run_helper(program, server):
        path = module.get_bin_path(program)
        if path is None:
            return 127, "", f"{program} is named in the docker config but is not in PATH; install it or edit the config"
        return module.run_command([path, "get"], data=server, binary_data=True)

    return run_helper


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        required_if=REQUIRED_IF,
        supports_check_mode=True,
    )
    parse_yaml = None
    if module.params["compose_files"]:
        try:
            parse_yaml = _yaml_loader()
        except ImportError:
            module.fail_json(msg=missing_required_lib("PyYAML"), exception=traceback.format_exc())

    try:
        http = connect(module.params, os.environ)
    except ModuleFailure as exc:
        module.fail_json(**exc.fail_kwargs())
    engine = DockerApiEngine(http, auth_lookup(os.environ, _read_file, _helper_runner(module)))
    node = NodeIO(_read_file, parse_yaml, os.path.exists(module.params["ipvs_probe_path"]))
    try:
        result = deploy(
            module.params, StackRun(engine, time.monotonic, time.sleep), node, module.check_mode, module._diff
        )
    except ModuleFailure as exc:
        module.fail_json(**exc.fail_kwargs())
    finally:
        http.close()

    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
