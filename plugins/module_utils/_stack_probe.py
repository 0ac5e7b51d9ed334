# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""swarm_stack's read-only probe: answer a run that changes nothing without running the module.

Most runs of a stack change nothing (a re-run of site.yml), yet each paid Ansible's full module cost
(build and ship the module, start an interpreter, import ``ansible.module_utils.basic``), which on
a small VPS is most of the task's time.  The action plugin instead sends one small standard-library
script (``remote_script()``: the engine client of ``_engine_http`` plus ``collect``) that makes the
module's own read requests and prints them as JSON.  On the controller, ``probe_result`` replays
``_stack.run`` -- the module's code, unchanged -- against that snapshot.  Whenever the run would need
anything the snapshot cannot give (a write, a second poll while the stack converges, a file on the
node, a registry lookup, any error) it raises :class:`NeedsModule`, and the action runs the real
module, which starts from scratch.  So a probe result is exactly what the module would have
returned for the same engine state.
"""

import ast
import copy
import functools
import inspect
import json
import os
import sys
import time

from ansible_collections.onmetal.faas.plugins.module_utils import _engine_http
from ansible_collections.onmetal.faas.plugins.module_utils._docker_api import connection_params
from ansible_collections.onmetal.faas.plugins.module_utils._engine_http import build_path, client_from_params
from ansible_collections.onmetal.faas.plugins.module_utils._stack import NodeIO, run
from ansible_collections.onmetal.faas.plugins.module_utils._stack_args import ARGUMENT_SPEC
from ansible_collections.onmetal.faas.plugins.module_utils._stack_client import StackError
from ansible_collections.onmetal.faas.plugins.module_utils._stack_engine import StackRun


class NeedsModule(Exception):
    """The snapshot cannot answer this run; the module must."""


def collect(http, stack, ipvs_probe_path, with_tasks=True):
    """The module's reads for a run of ``stack``, in its order (runs on the managed node).  The task listing
    is the wait's first poll; runs that do not wait (check mode, state=absent, wait=false) skip it."""
    info = http.get("/info")
    label = "com.docker.stack.namespace=" + stack
    services = http.get(build_path("/services", params={"filters": {"label": [label]}})) or []
    networks = http.get("/networks") or []
    secrets = http.get("/secrets") or []
    configs = http.get("/configs") or []
    ids = [s["ID"] for s in services]
    with_tasks = with_tasks and bool(ids)
    tasks = (http.get(build_path("/tasks", params={"filters": {"service": ids}})) or []) if with_tasks else []
    return {
        "stack": stack,
        "info": info,
        "services": services,
        "networks": networks,
        "secrets": secrets,
        "configs": configs,
        "tasks": tasks,
        "requests": 6 if with_tasks else 5,
        "ipvs": os.path.exists(os.path.expanduser(ipvs_probe_path)),
    }


def remote_main():
    """Entry point of the probe script: argv[1] is JSON from :func:`probe_args` (the connection options, name,
    ipvs_probe_path, with_tasks)."""
    args = json.loads(sys.argv[1])
    try:
        http = client_from_params(args, os.environ)
        try:
            out = collect(http, args["name"], args["ipvs_probe_path"], args.get("with_tasks", True))
        finally:
            http.close()
    except Exception as exc:  # noqa: BLE001 - any problem: the module runs and reports it properly
        out = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(out))


@functools.lru_cache(maxsize=1)
def remote_script():
    """Python source of the probe: stdlib only, so any python3 on the node runs it with ``-c``.  Comments and
    docstrings are left out (the command line is shown with -vvv)."""
    source = "\n".join(
        [inspect.getsource(_engine_http), "import sys", inspect.getsource(collect), inspect.getsource(remote_main)]
    )
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\nremote_main()\n"


class SnapshotEngine:
    """The engine interface of ``_stack_client.DockerApiEngine``, answered from a probe's snapshot.

    Reads are served once each, as the module makes them on a run that changes nothing; anything else
    (a write, a registry lookup, a second service listing) raises NeedsModule.
    """

    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.calls = snapshot["requests"]
        self._listed = False

    def info(self):
        return copy.deepcopy(self.snapshot["info"])

    def services(self, stack):
        if stack != self.snapshot["stack"] or self._listed:
            raise NeedsModule("a second listing of the services (the stack is not converged)")
        self._listed = True
        return copy.deepcopy(self.snapshot["services"])

    def networks(self):
        return copy.deepcopy(self.snapshot["networks"])

    def secrets(self):
        return copy.deepcopy(self.snapshot["secrets"])

    def configs(self):
        return copy.deepcopy(self.snapshot["configs"])

    def tasks(self, service_ids):
        known = {s["ID"] for s in self.snapshot["services"]}
        if not set(service_ids) <= known:
            raise NeedsModule("tasks of services the snapshot does not hold")
        return [copy.deepcopy(t) for t in self.snapshot["tasks"] if t.get("ServiceID") in service_ids]

    def __getattr__(self, name):
        # create_*, update_*, remove_*, inspect_service, registry_auth, distribution_digest, ...
        def needs_module(*_args, **_kwargs):
            raise NeedsModule(f"the run needs the engine for {name}")

        return needs_module


def _needs_module(*_args, **_kwargs):
    raise NeedsModule("the run needs the managed node (a file, a wait, or a change)")


def probe_args(params, ipvs_probe_path, check_mode):
    """(the probe script's argument, None) for validated ``params``, or (None, why the module must run).

    ``ipvs_probe_path`` is the task's raw value (expanded on the node, as the module does it).  The connection
    options forwarded are exactly ``DOCKER_COMMON_ARGS``: a new swarm_stack option needs nothing here unless
    the run needs the node for it (then list it with ``compose_files`` and ``resolve_digests``)."""
    if not params["no_op_probe"]:
        return None, "no_op_probe=false"
    if params["state"] == "present" and (params["compose_files"] or params["resolve_digests"]):
        return None, "compose_files or resolve_digests"  # files on the node and registry lookups
    args = connection_params(params)
    args.update(
        name=params["name"],
        ipvs_probe_path=ipvs_probe_path or ARGUMENT_SPEC["ipvs_probe_path"]["default"],
        # the tasks are read by the wait only
        with_tasks=params["state"] == "present" and params["wait"] and not check_mode,
    )
    return args, None


def probe_result(params, snapshot, check_mode, want_diff):
    """The module's result for ``params`` computed from ``snapshot``, or None when the module must run."""
    if "error" in snapshot:
        return None
    engine = SnapshotEngine(snapshot)
    stack_run = StackRun(engine, time.monotonic, _needs_module, before_apply=_needs_module)
    node = NodeIO(_needs_module, None, snapshot["ipvs"])
    try:
        result = run(params, stack_run, node, check_mode, want_diff)
    except (NeedsModule, StackError):
        return None
    result["api_calls"] = engine.calls
    result["no_op_probe"] = True
    return result
