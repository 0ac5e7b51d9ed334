# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""swarm_stack's view of the engine: the Engine API requests it makes, and what it reads.

The engine is an object with the small interface of :class:`DockerApiEngine` (one Engine API request
per method, over the standard-library client in ``_engine_http``); unit tests pass a fake with the
same methods.  Reading the stack (:func:`read_current`), checking that the node is a manager,
resolving image digests, and the error type of the stack layers (:class:`StackError`) live here;
applying a plan and waiting is ``_stack_engine``.
"""

import base64

from ansible_collections.onmetal.faas.plugins.module_utils._engine_http import build_path
from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure
from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import STACK_LABEL
from ansible_collections.onmetal.faas.plugins.module_utils._stack_types import Current


class StackError(ModuleFailure):
    """A failure with a message for the user; ``details`` (the partial result) is merged into the module result."""

    @property
    def details(self):
        return self.result


# What managers answer when Raft has no leader: at once ("does not have a leader"), or after the engine's
# own deadline while an election cannot complete ("rpc error: ... context deadline exceeded").
QUORUM_HINTS = ("does not have a leader", "context deadline exceeded")


def quorum_lost(text):
    """True when an engine error says that the swarm's managers have lost their quorum."""
    return any(hint in text for hint in QUORUM_HINTS)


def quorum_message(error, info=None):
    """The user's message for a quorum loss.  ``info``: the engine's ``/info`` answer (optional), for the
    manager count and the managers this node knows of."""
    swarm = (info or {}).get("Swarm") or {}
    known = sorted(m.get("Addr", "?") for m in swarm.get("RemoteManagers") or [])
    # Without a leader the engine may report Managers=0; the managers it knows of are still listed.
    managers = swarm.get("Managers") or len(known)
    count = (
        f"The swarm has {managers} manager(s) ({', '.join(known)}) and needs {managers // 2 + 1} ((N/2)+1) of them "
        "online"
        if managers
        else "A swarm of N managers needs (N/2)+1 of them online"
    )
    return (
        f"swarm quorum lost: the managers have no leader, so the swarm refuses every management operation "
        f"({error.strip()}). {count}; containers that run keep running. Fix: start the managers that are down (their "
        "hosts and docker engines) and re-run. Only if they are lost for good: run 'docker swarm init "
        "--force-new-cluster --advertise-addr <its address>' on one surviving manager, then re-run the playbook "
        "to rejoin the others."
    )


def with_placement(spec):
    """``spec`` with a ``TaskTemplate.Placement`` (an empty one when the service declares no placement), as
    ``docker service update`` and ``docker stack deploy`` send it. An update without the field makes Engine 20.10
    (swarmkit before moby/swarmkit#2950) dereference the missing Placement in the orchestrator's updater while the
    service's tasks still carry the old constraints: the leader panics, and so does every manager that takes over
    (moby/moby#37883), so a stack that drops a service's constraints would take the whole swarm down. Hashes and
    diffs are unaffected: the planner drops empty fields on both sides."""
    task = spec.get("TaskTemplate")
    if not isinstance(task, dict) or task.get("Placement") is not None:
        return spec
    spec = dict(spec)
    spec["TaskTemplate"] = dict(task, Placement={})
    return spec


class DockerApiEngine:
    """The engine operations swarm_stack needs, over an :class:`._engine_http.EngineHTTP` client.

    Every method is one Engine API request, so the number of calls a run makes is easy to reason
    about (and is counted in ``calls``).  ``auth_lookup(image)`` returns the X-Registry-Auth header
    for the image's registry, or None.
    """

    def __init__(self, http, auth_lookup=None):
        self.http = http
        self._auth_lookup = auth_lookup
        self.calls = 0

    def _get(self, template, *args, params=None):
        self.calls += 1
        return self.http.get(build_path(template, *args, params=params))

    def _post(self, template, *args, body=None, headers=None, params=None):
        self.calls += 1
        return self.http.post(build_path(template, *args, params=params), body=body, headers=headers)

    def _delete(self, template, *args):
        self.calls += 1
        return self.http.delete(build_path(template, *args))

    def info(self):
        return self._get("/info")

    def services(self, stack):
        """Services of one stack; with ``stack=None`` the services of every stack."""
        label = STACK_LABEL if stack is None else f"{STACK_LABEL}={stack}"
        return self._get("/services", params={"filters": {"label": [label]}}) or []

    def tasks(self, service_ids):
        return self._get("/tasks", params={"filters": {"service": list(service_ids)}}) or []

    def networks(self):
        return self._get("/networks") or []

    def secrets(self):
        return self._get("/secrets") or []

    def configs(self):
        return self._get("/configs") or []

    def create_network(self, spec):
        body = {
            "Name": spec["Name"],
            "Driver": spec.get("Driver"),
            "Internal": spec.get("Internal", False),
            "Attachable": spec.get("Attachable", False),
            "Labels": spec.get("Labels") or {},
        }
        if spec.get("Options"):
            body["Options"] = spec["Options"]
        if spec.get("IPAM"):
            body["IPAM"] = spec["IPAM"]
        if spec.get("Driver") == "overlay":
            body["Scope"] = "swarm"
        return self._post("/networks/create", body=body)["Id"]

    def remove_network(self, net_id):
        self._delete("/networks/{0}", net_id)

    def _create_object(self, kind, name, data, labels):
        body = {"Name": name, "Data": base64.b64encode(data).decode("ascii"), "Labels": labels or {}}
        return self._post(f"/{kind}/create", body=body)["ID"]

    def create_secret(self, name, data, labels):
        return self._create_object("secrets", name, data, labels)

    def remove_secret(self, secret_id):
        self._delete("/secrets/{0}", secret_id)

    def create_config(self, name, data, labels):
        return self._create_object("configs", name, data, labels)

    def remove_config(self, config_id):
        self._delete("/configs/{0}", config_id)

    def registry_auth(self, image):
        """The X-Registry-Auth header for the image's registry from the client's config, or None."""
        return self._auth_lookup(image) if self._auth_lookup is not None else None

    def create_service(self, spec, auth_header=None):
        headers = {"X-Registry-Auth": auth_header} if auth_header else None
        return self._post("/services/create", body=spec, headers=headers)["ID"]

    def update_service(self, service_id, version, spec, auth_header=None, rollback=False):
        headers = {"X-Registry-Auth": auth_header} if auth_header else None
        spec = with_placement(spec)
        params = {"version": version}
        if rollback:
            params["rollback"] = "previous"
        return self._post("/services/{0}/update", service_id, body=spec, headers=headers, params=params)

    def inspect_service(self, service_id):
        return self._get("/services/{0}", service_id)

    def remove_service(self, service_id):
        self._delete("/services/{0}", service_id)

    def distribution_digest(self, image):
        self.calls += 1
        auth = self.registry_auth(image)
        headers = {"X-Registry-Auth": auth} if auth else None
        answer = self.http.request("GET", build_path("/distribution/{0}/json", image), headers=headers)
        return answer["Descriptor"]["digest"]

    def local_repo_digests(self, image):
        return self._get("/images/{0}/json", image).get("RepoDigests") or []


# --------------------------------------------------------------------------------------------
# Reading


def check_manager(info):
    swarm = info.get("Swarm") or {}
    state = swarm.get("LocalNodeState", "inactive")
    if state != "active":
        raise StackError(
            f"this engine is not part of a swarm (LocalNodeState={state}); initialise one first "
            "(onmetal.faas swarm role or 'docker swarm init') or point docker_host at a manager"
        )
    if not swarm.get("ControlAvailable"):
        raise StackError(
            "node {} is a swarm worker, not a manager; stacks can only be deployed from a manager node: run this task "
            "on a manager (e.g. delegate_to: the first host of your managers group)".format(swarm.get("NodeID", "?"))
        )


def read_current(engine, stack) -> Current:
    """Snapshot of the stack as the swarm runs it (shape documented in _stack_plan.compute_plan)."""
    services = {s["Spec"]["Name"]: s for s in engine.services(stack)}
    networks = {}
    network_names = {}
    for net in engine.networks():
        networks[net["Name"]] = net
        network_names[net["Id"]] = net["Name"]
    secrets = {s["Spec"]["Name"]: dict(s, Labels=s["Spec"].get("Labels") or {}) for s in engine.secrets()}
    configs = {c["Spec"]["Name"]: dict(c, Labels=c["Spec"].get("Labels") or {}) for c in engine.configs()}
    return {
        "services": services,
        "networks": networks,
        "network_names": network_names,
        "secrets": secrets,
        "configs": configs,
    }


def resolve_digests(engine, images, image_services):
    """Image -> digest via the engine: the registry first (distribution API), then the repo digests
    the local image store knows.  Raises StackError naming the service when neither works."""
    digests = {}
    for image in images:
        repo = _repository(image)
        try:
            digests[image] = engine.distribution_digest(image)
            continue
        except Exception as exc:  # noqa: BLE001 - any engine/registry error: try the local store
            registry_error = str(exc)
        try:
            local = [d for d in engine.local_repo_digests(image) if d.split("@", 1)[0] == repo]
        except Exception as exc:  # noqa: BLE001
            local = []
            registry_error += f"; local image: {exc}"
        if local:
            digests[image] = local[0].split("@", 1)[1]
            continue
        raise StackError(
            "resolve_digests: cannot resolve image {!r} of service(s) {} to a digest: registry: {}; the local image "
            "store has no repo digest for it either. Push the image to a registry the engine can reach, or pin it "
            "as repo:tag@sha256:...".format(image, ", ".join(image_services.get(image, [])), registry_error)
        )
    return digests


def _repository(image):
    """'reg:5000/a/b:tag@sha256:x' -> 'reg:5000/a/b' (no docker.io normalisation)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: len(name) - len(last[-1])] + last[-1].split(":", 1)[0]
    return name


def stack_objects(current, stack):
    """Names of the stack's own networks/secrets/configs in a snapshot (for state=absent plans)."""
    out = {}
    for section, id_key in (("networks", "Id"), ("secrets", "ID"), ("configs", "ID")):
        out[section] = sorted(
            n
            for n, o in current[section].items()
            if (o.get("Labels") or {}).get(STACK_LABEL) == stack and o.get(id_key)
        )
    return out
