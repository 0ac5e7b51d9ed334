# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data swarm_stack's layers hand each other: desired objects, current state, plan, result.

Plain dicts at run time (the module returns them as JSON), described here as TypedDicts so a reader
sees every key in one place.  Spec dicts (``ServiceSpec``, ``NetworkSpec``) keep the Engine API's own
shape and are not re-typed.
"""

try:
    from typing import TypedDict
except ImportError:  # Python 3.7 on the managed node: the same dicts, without the annotations' checks
    TypedDict = dict


class StackObject(TypedDict, total=False):
    """A desired network, secret or config (``_stack_spec.stack_networks`` / ``stack_files``)."""

    name: str  # the full object name: <stack>_<key>, content-addressed for secrets and configs
    external: bool
    spec: dict  # networks: the NetworkSpec (None when external)
    base: str  # secrets/configs: the name without the content hash
    hash: str  # secrets/configs: SHA-256 of the content
    labels: dict


class Desired(TypedDict):
    """``_stack_spec.build_desired``: what the compose definition asks for."""

    services: dict  # {short name: ServiceSpec}
    networks: dict  # {compose key: StackObject}
    secrets: dict  # {compose key: StackObject}
    configs: dict  # {compose key: StackObject}
    rewrites: dict  # {short name: [endpoint-mode rewrites]}
    warnings: list


class Current(TypedDict):
    """``_stack_client.read_current``: what the swarm runs."""

    services: dict  # {full name: service as the engine lists it (ID, Version, Spec, UpdateStatus)}
    networks: dict  # {name: network} of all networks
    network_names: dict  # {network ID: name}
    secrets: dict  # {name: secret, with Labels lifted from its Spec}
    configs: dict  # {name: config, with Labels lifted from its Spec}


class ServicesPlan(TypedDict, total=False):
    create: list
    update: list
    remove: list
    unchanged: list
    orphaned: list
    drift: dict  # {full name: [spec paths changed by hand]}
    changes: dict  # {full name: [spec paths the update changes]} (added by the run)


class NetworksPlan(TypedDict, total=False):
    create: list
    remove: list
    missing: list  # external networks that do not exist
    conflicts: list  # messages: a stack network whose definition changed


class FilesPlan(TypedDict, total=False):
    create: list
    remove: list
    prune_after_success: list  # old versions beyond keep_old_versions
    missing: list  # external secrets/configs that do not exist


class Plan(TypedDict):
    """``_stack_plan.compute_plan``: the module's RV(plan)."""

    services: ServicesPlan
    networks: NetworksPlan
    secrets: FilesPlan
    configs: FilesPlan


class StackResult(TypedDict, total=False):
    """``_stack.run``: the module's result (its RETURN documentation names each key)."""

    changed: bool
    stack: str
    actions: list
    warnings: list
    services: list
    plan: Plan
    endpoint_mode: dict
    diff: dict
    pruned_old_versions: list
    api_calls: int
