"""The whole run (plan, check mode, apply, wait, rollback, absent) against an in-memory swarm."""

import copy

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils._stack import (
    NodeIO,
    choose_endpoint_mode,
    describe,
    load_compose,
    read_contents,
    run,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_client import StackError
from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import HASH_LABEL, STACK_LABEL
from ansible_collections.onmetal.faas.plugins.module_utils._stack_engine import StackRun
from ansible_collections.onmetal.faas.tests.unit.plugins._fake_engine import FakeClock

NOW = "2026-11-26T20:00:00Z"
LATER = "2026-11-26T20:00:01Z"


class FakeSwarm:
    """A swarm in memory with the DockerApiEngine interface.  Services whose image is in
    ``bad_images`` get rejected tasks ("No such image"), others run all their replicas."""

    def __init__(self, manager=True):
        self.manager = manager
        self.services_by_id = {}
        self.networks_by_id = {"n-ingress": {"Id": "n-ingress", "Name": "ingress", "Labels": {}}}
        self.secrets_by_id = {}
        self.configs_by_id = {}
        self.bad_images = set()
        self.refuse = set()
        self.writes = []
        self.reads = 0
        self._n = 0

    def _id(self, prefix):
        self._n += 1
        return f"{prefix}{self._n}"

    # reads
    def info(self):
        self.reads += 1
        return {
            "SystemTime": NOW,
            "Swarm": {"LocalNodeState": "active", "ControlAvailable": self.manager, "NodeID": "n"},
        }

    def services(self, stack):
        self.reads += 1
        return [
            copy.deepcopy(s)
            for s in self.services_by_id.values()
            if s["Spec"]["Labels"].get(STACK_LABEL) == stack or (stack is None and STACK_LABEL in s["Spec"]["Labels"])
        ]

    def tasks(self, ids):
        self.reads += 1
        tasks = []
        for sid in ids:
            if sid not in self.services_by_id:
                continue  # removed service: its tasks are gone
            spec = self.services_by_id[sid]["Spec"]
            image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
            if image in self.bad_images:
                for _attempt in range(3):
                    tasks.append(
                        {
                            "ServiceID": sid,
                            "Slot": 1,
                            "DesiredState": "shutdown",
                            "Status": {"State": "rejected", "Err": f"No such image: {image}", "Timestamp": LATER},
                        }
                    )
                continue
            for slot in range(spec["Mode"]["Replicated"]["Replicas"]):
                tasks.append(
                    {"ServiceID": sid, "Slot": slot + 1, "DesiredState": "running", "Status": {"State": "running"}}
                )
        return tasks

    def networks(self):
        self.reads += 1
        return list(copy.deepcopy(self.networks_by_id).values())

    def secrets(self):
        self.reads += 1
        return [
            {"ID": i, "Spec": {"Name": s["Name"], "Labels": s["Labels"]}, "CreatedAt": s["CreatedAt"]}
            for i, s in self.secrets_by_id.items()
        ]

    def configs(self):
        self.reads += 1
        return []

    def inspect_service(self, sid):
        self.reads += 1
        return copy.deepcopy(self.services_by_id[sid])

    def registry_auth(self, image):
        return "AUTH"

    def distribution_digest(self, image):
        raise RuntimeError("no registry")

    def local_repo_digests(self, image):
        return [image.split(":")[0] + "@sha256:" + "e" * 64]

    # writes
    def create_network(self, spec):
        nid = self._id("n")
        self.networks_by_id[nid] = {"Id": nid, "Name": spec["Name"], "Labels": spec["Labels"]}
        self.writes.append(("create_network", spec["Name"]))
        return nid

    def remove_network(self, nid):
        self.writes.append(("remove_network", self.networks_by_id.pop(nid)["Name"]))

    def create_secret(self, name, data, labels):
        sid = self._id("sec")
        self.secrets_by_id[sid] = {
            "Name": name,
            "Labels": labels,
            "Data": data,
            "CreatedAt": f"2026-11-26T20:00:{self._n:02d}Z",
        }
        self.writes.append(("create_secret", name))
        return sid

    def remove_secret(self, sid):
        self.writes.append(("remove_secret", self.secrets_by_id.pop(sid)["Name"]))

    def create_config(self, name, data, labels):  # pragma: no cover - not used by these fixtures
        raise AssertionError("unexpected")

    def remove_config(self, cid):  # pragma: no cover
        raise AssertionError("unexpected")

    def create_service(self, spec, auth=None):
        for att in spec["TaskTemplate"]["Networks"]:
            if att["Target"] not in {n["Name"] for n in self.networks_by_id.values()}:
                raise RuntimeError(f"network {att['Target']} not found")
        for ref in spec["TaskTemplate"]["ContainerSpec"].get("Secrets") or []:
            assert self.secrets_by_id[ref["SecretID"]]["Name"] == ref["SecretName"]
        sid = self._id("svc")
        self.services_by_id[sid] = {"ID": sid, "Version": {"Index": 1}, "Spec": copy.deepcopy(spec)}
        self.writes.append(("create_service", spec["Name"], auth))
        return sid

    def update_service(self, sid, version, spec, auth=None, rollback=False):
        if spec["Name"] in self.refuse and not rollback:
            raise RuntimeError("rpc error: code = InvalidArgument desc = refused")
        svc = self.services_by_id[sid]
        assert version == svc["Version"]["Index"], "stale version index"
        if rollback:
            svc["Spec"], svc["PreviousSpec"] = svc["PreviousSpec"], svc["Spec"]
            svc["UpdateStatus"] = {"State": "rollback_completed"}
        else:
            svc["PreviousSpec"], svc["Spec"] = svc["Spec"], copy.deepcopy(spec)
            svc["UpdateStatus"] = {"State": "completed"}
        svc["Version"]["Index"] += 1
        self.writes.append(("rollback_service" if rollback else "update_service", spec["Name"]))

    def remove_service(self, sid):
        self.writes.append(("remove_service", self.services_by_id.pop(sid)["Spec"]["Name"]))


COMPOSE = {
    "version": "3.8",
    "services": {
        "web": {"image": "stacktest/web:v1", "ports": ["28080:8080"], "secrets": ["token"]},
        "worker": {"image": "stacktest/worker:v1", "environment": {"MODE": "batch"}},
    },
    "secrets": {"token": {}},
}


def _params(**over):
    params = {
        "name": "st",
        "state": "present",
        "compose": copy.deepcopy(COMPOSE),
        "compose_files": None,
        "project_dir": None,
        "secret_contents": {"token": "s3cret"},
        "config_contents": None,
        "prune": False,
        "keep_old_versions": 1,
        "with_registry_auth": False,
        "wait": True,
        "wait_timeout": 30,
        "wait_max_task_failures": 3,
        "rollback_on_failure": True,
        "resolve_digests": False,
        "require_digests": False,
        "endpoint_mode": "auto",
    }
    params.update(over)
    return params


def _run(swarm, params, check_mode=False, diff=False, ipvs=False, files=None):
    clock = FakeClock()

    def read_file(path):
        if files is None or path not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[path]

    return run(params, StackRun(swarm, clock, clock.sleep), NodeIO(read_file, _yaml, ipvs), check_mode, diff)


def _yaml(text):
    import json

    return json.loads(text)


def test_four_step_pattern_check_apply_apply_check():
    swarm = FakeSwarm()
    checked = _run(swarm, _params(), check_mode=True, diff=True)
    assert checked["changed"] and swarm.writes == []
    assert checked["plan"]["services"]["create"] == ["st_web", "st_worker"]
    assert sorted(checked["diff"]["after"]["services"]) == ["st_web", "st_worker"]
    assert checked["diff"]["before"]["services"] == {}

    applied = _run(swarm, _params(), diff=True)
    assert applied["changed"]
    kinds = [w[0] for w in swarm.writes]
    assert kinds == ["create_network", "create_secret", "create_service", "create_service"]
    assert all(s["converged"] and s["running"] == 1 for s in applied["services"])

    swarm.writes.clear()
    again = _run(swarm, _params(), diff=True)
    assert not again["changed"] and swarm.writes == [] and again["actions"] == []
    assert again["plan"]["services"]["unchanged"] == ["st_web", "st_worker"]
    assert again["diff"] == {"before": {"services": {}}, "after": {"services": {}}}

    checked_again = _run(swarm, _params(), check_mode=True)
    assert not checked_again["changed"] and swarm.writes == []


def test_hand_edited_env_is_drift_seen_in_check_mode_and_corrected():
    swarm = FakeSwarm()
    _run(swarm, _params())
    (worker,) = [s for s in swarm.services_by_id.values() if s["Spec"]["Name"] == "st_worker"]
    # `docker service update --env-add EXTRA=1 st_worker`: the env grows, the hash label stays
    worker["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"].append("EXTRA=1")
    swarm.writes.clear()
    checked = _run(swarm, _params(), check_mode=True, diff=True)
    assert checked["changed"] and swarm.writes == []
    assert checked["plan"]["services"]["drift"] == {"st_worker": ["TaskTemplate.ContainerSpec.Env"]}
    assert checked["plan"]["services"]["changes"] == {"st_worker": ["TaskTemplate.ContainerSpec.Env"]}
    diff = {side: checked["diff"][side]["services"]["st_worker"] for side in ("before", "after")}
    envs = [diff[side]["TaskTemplate"]["ContainerSpec"]["Env"] for side in ("before", "after")]
    assert envs == [["EXTRA=1", "MODE=batch"], ["MODE=batch"]]
    applied = _run(swarm, _params())
    assert applied["changed"] and [w[:2] for w in swarm.writes] == [("update_service", "st_worker")]
    assert worker["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["MODE=batch"]
    swarm.writes.clear()
    again = _run(swarm, _params(), check_mode=True)
    assert not again["changed"] and again["plan"]["services"]["drift"] == {}


def test_no_op_costs_only_reads():
    swarm = FakeSwarm()
    _run(swarm, _params())
    swarm.reads = 0
    swarm.writes.clear()
    _run(swarm, _params())
    # info, services, networks, secrets, configs, tasks (the wait reuses the listed services)
    assert swarm.reads == 6 and swarm.writes == []


def test_endpoint_mode_auto_without_ipvs_rewrites_and_reports():
    swarm = FakeSwarm()
    result = _run(swarm, _params())
    web = swarm.services_by_id[next(i for i, s in swarm.services_by_id.items() if s["Spec"]["Name"] == "st_web")]
    assert web["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"
    assert web["Spec"]["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
    assert result["endpoint_mode"]["mode"] == "dnsrr"
    assert result["endpoint_mode"]["rewritten"]["web"] == [
        "endpoint_mode vip -> dnsrr",
        "port 28080/tcp published in host mode",
    ]


def test_with_ipvs_keeps_vip():
    swarm = FakeSwarm()
    result = _run(swarm, _params(), ipvs=True)
    assert result["endpoint_mode"] == {"mode": "vip", "reason": "auto: IPVS present on this node", "rewritten": {}}


@pytest.mark.parametrize(
    "requested, ipvs, mode",
    [("auto", True, "vip"), ("auto", False, "dnsrr"), ("vip", False, "vip"), ("dnsrr", True, "dnsrr")],
)
def test_choose_endpoint_mode(requested, ipvs, mode):
    assert choose_endpoint_mode(requested, ipvs)[0] == mode


def test_secret_rotation_updates_the_user_and_prunes_after_keep():
    swarm = FakeSwarm()
    _run(swarm, _params())
    first = {s["Name"] for s in swarm.secrets_by_id.values()}
    swarm.writes.clear()
    second = _run(swarm, _params(secret_contents={"token": "rotated"}))
    assert second["plan"]["services"]["update"] == ["st_web"]
    assert second["plan"]["services"]["unchanged"] == ["st_worker"]
    assert [w[0] for w in swarm.writes] == ["create_secret", "update_service"]
    assert {s["Name"] for s in swarm.secrets_by_id.values()} > first  # old one kept (keep_old_versions=1)
    swarm.writes.clear()
    third = _run(swarm, _params(secret_contents={"token": "third"}))
    assert third["pruned_old_versions"] == sorted(first)
    assert ("remove_secret", sorted(first)[0]) in swarm.writes
    assert "s3cret" not in repr(third) and "rotated" not in repr(third)


def test_failed_update_rolls_back_and_says_so():
    swarm = FakeSwarm()
    _run(swarm, _params())
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["web"]["image"] = "stacktest/web:nope"
    swarm.bad_images.add("stacktest/web:nope")
    with pytest.raises(StackError) as err:
        _run(swarm, _params(compose=compose))
    text = str(err.value)
    assert (
        "service st_web did not converge (0/1 tasks running): task 1 is rejected: No such image: stacktest/web:nope"
        in text
    )
    assert "Rolled back: st_web (previous spec restored); the previous version is running again" in text
    assert err.value.details["rolled_back"]["updated"] == ["st_web"]
    web = next(s for s in swarm.services_by_id.values() if s["Spec"]["Name"] == "st_web")
    assert web["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "stacktest/web:v1"
    # the previous definition is in place again: a no-op, and the old rollback status is not an error
    again = _run(swarm, _params())
    assert not again["changed"] and all(s["converged"] for s in again["services"])


def test_failed_create_removes_the_new_service_when_rolling_back():
    swarm = FakeSwarm()
    swarm.bad_images.add("stacktest/worker:v1")
    with pytest.raises(StackError, match=r"st_worker \(created by this run, removed\)"):
        _run(swarm, _params())
    # every service this run created is removed: the stack is back to its state before the run
    assert swarm.services_by_id == {}


def test_failed_update_without_rollback_leaves_it():
    swarm = FakeSwarm()
    _run(swarm, _params())
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["web"]["image"] = "stacktest/web:nope"
    swarm.bad_images.add("stacktest/web:nope")
    with pytest.raises(StackError) as err:
        _run(swarm, _params(compose=compose, rollback_on_failure=False))
    assert "rolled_back" not in err.value.details and "Rolled back" not in str(err.value)


def test_worker_node_fails_before_anything():
    swarm = FakeSwarm(manager=False)
    with pytest.raises(StackError, match="is a swarm worker, not a manager"):
        _run(swarm, _params())
    assert swarm.writes == []


def test_compose_error_is_reported_with_path_and_nothing_applied():
    swarm = FakeSwarm()
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["web"]["deploy"] = {"replcas": 2}
    with pytest.raises(StackError, match=r"compose: services\.web\.deploy\.replcas: unknown key"):
        _run(swarm, _params(compose=compose))
    assert swarm.writes == []


def test_missing_external_secret_fails_before_applying():
    swarm = FakeSwarm()
    compose = copy.deepcopy(COMPOSE)
    compose["secrets"] = {"token": {"external": True}}
    with pytest.raises(StackError, match="external secret 'token' does not exist .used by service.s. web."):
        _run(swarm, _params(compose=compose, secret_contents=None))
    assert swarm.writes == []


def test_resolve_and_require_digests():
    swarm = FakeSwarm()
    result = _run(swarm, _params(resolve_digests=True, require_digests=True))
    assert all(s["image"].endswith("@sha256:" + "e" * 64) for s in result["services"])
    with pytest.raises(StackError, match=r"require_digests: .*web \(stacktest/web:v1\), worker"):
        _run(FakeSwarm(), _params(require_digests=True))


def test_prune_and_absent():
    swarm = FakeSwarm()
    _run(swarm, _params())
    compose = copy.deepcopy(COMPOSE)
    del compose["services"]["worker"]
    kept = _run(swarm, _params(compose=compose))
    assert kept["plan"]["services"]["orphaned"] == ["st_worker"] and not kept["changed"]
    pruned = _run(swarm, _params(compose=compose, prune=True))
    assert pruned["plan"]["services"]["remove"] == ["st_worker"]
    assert ("remove_service", "st_worker") in swarm.writes

    swarm.writes.clear()
    checked = _run(swarm, _params(state="absent"), check_mode=True, diff=True)
    assert checked["changed"] and swarm.writes == [] and list(checked["diff"]["before"]["services"]) == ["st_web"]
    gone = _run(swarm, _params(state="absent"))
    assert gone["changed"]
    assert [w[0] for w in swarm.writes] == ["remove_service", "remove_network", "remove_secret"]
    assert not _run(swarm, _params(state="absent"))["changed"]


def test_registry_auth_is_sent_only_when_asked():
    swarm = FakeSwarm()
    _run(swarm, _params(with_registry_auth=True))
    assert {w[2] for w in swarm.writes if w[0] == "create_service"} == {"AUTH"}
    swarm2 = FakeSwarm()
    _run(swarm2, _params())
    assert {w[2] for w in swarm2.writes if w[0] == "create_service"} == {None}


def test_hash_label_is_written():
    swarm = FakeSwarm()
    _run(swarm, _params())
    assert all(len(s["Spec"]["Labels"][HASH_LABEL]) == 64 for s in swarm.services_by_id.values())


def test_compose_files_are_merged_and_relative_secret_files_read_from_project_dir():
    files = {
        "/srv/app/base.yml": b'{"services": {"web": {"image": "a:1", "secrets": ["pw"]}}, '
        b'"secrets": {"pw": {"file": "pw.txt"}}}',
        "/srv/app/prod.yml": b'{"services": {"web": {"image": "a:2"}}}',
        "/srv/app/pw.txt": b"hunter2",
    }
    params = _params(compose=None, compose_files=["/srv/app/base.yml", "/srv/app/prod.yml"], secret_contents=None)
    result = _run(FakeSwarm(), params, files=files)
    assert result["services"][0]["image"] == "a:2"
    compose = load_compose(params, files.__getitem__, _yaml)
    assert read_contents(compose, params, files.__getitem__) == {"secrets": {"pw": b"hunter2"}, "configs": {}}


def test_unreadable_files_name_the_path():
    params = _params(compose=None, compose_files=["/nope.yml"])
    with pytest.raises(StackError, match="compose_files: cannot read /nope.yml: No such file or directory"):
        _run(FakeSwarm(), params, files={})
    params = _params(
        compose={"services": {"w": {"image": "a", "secrets": ["pw"]}}, "secrets": {"pw": {"file": "/x/pw"}}},
        secret_contents=None,
    )
    with pytest.raises(StackError, match="secrets.pw.file: cannot read /x/pw on the managed node"):
        _run(FakeSwarm(), params, files={})


def test_unknown_secret_contents_key_is_an_error():
    with pytest.raises(StackError, match="secret_contents: nope not defined"):
        _run(FakeSwarm(), _params(secret_contents={"token": "a", "nope": "b"}))


def test_refused_request_rolls_back_what_was_already_updated():
    swarm = FakeSwarm()
    _run(swarm, _params())
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["web"]["environment"] = {"X": "1"}
    compose["services"]["worker"]["environment"] = {"MODE": "stream"}
    swarm.refuse.add("st_worker")
    with pytest.raises(StackError) as err:
        _run(swarm, _params(compose=compose))
    text = str(err.value)
    assert text.startswith("engine refused to update service st_worker: rpc error")
    assert "Rolled back: st_web (previous spec restored)" in text
    assert err.value.details["changed"] is True
    web = next(s for s in swarm.services_by_id.values() if s["Spec"]["Name"] == "st_web")
    assert "Env" not in web["Spec"]["TaskTemplate"]["ContainerSpec"]


def test_describe_lists_stacks_and_reports_services():
    swarm = FakeSwarm()
    _run(swarm, _params())
    _run(swarm, _params(name="other", secret_contents={"token": "x"}))
    assert describe({"name": None}, swarm) == {
        "stacks": [{"name": "other", "services": 2}, {"name": "st", "services": 2}]
    }
    report = describe({"name": "st"}, swarm)
    assert [s["name"] for s in report["services"]] == ["st_web", "st_worker"]
    web = report["services"][0]
    assert web["service"] == "web" and web["converged"] and web["managed"] and len(web["applied_hash"]) == 64
    assert web["ports"] == [{"published": 28080, "target": 8080, "protocol": "tcp", "mode": "host"}]
    assert report["networks"] == ["st_default"] and report["secrets"][0].startswith("st_token-")
    assert describe({"name": "nope"}, swarm)["stacks"] == []


def test_stale_network_listing_is_repaired():
    swarm = FakeSwarm()
    real_networks = swarm.networks
    swarm.networks = lambda: real_networks() + [{"Id": "stale", "Name": "st_default", "Labels": {STACK_LABEL: "st"}}]
    result = _run(swarm, _params())
    assert result["plan"]["networks"]["create"] == []
    assert "created network st_default (the engine listed a stale copy of it)" in result["actions"]
    assert [w[0] for w in swarm.writes].count("create_service") == 2


def test_unknown_network_error_is_reported():
    swarm = FakeSwarm()
    swarm.create_network = lambda spec: "nid"  # pretend to create, the network never appears
    with pytest.raises(StackError, match="engine refused to create service st_web: network st_default not found"):
        _run(swarm, _params())
