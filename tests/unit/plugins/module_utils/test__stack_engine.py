"""Engine-side helpers: manager check, convergence, waiting, digest resolution (with fakes)."""

import dataclasses
import datetime

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils._engine_http import EngineAPIError, EngineHTTP
from ansible_collections.onmetal.faas.plugins.module_utils._stack_client import (
    DockerApiEngine,
    StackError,
    _repository,
    check_manager,
    resolve_digests,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_engine import (
    StackRun,
    WaitPolicy,
    parse_time,
    service_status,
)
from ansible_collections.onmetal.faas.tests.unit.plugins._fake_engine import FakeClock

T0 = "2026-11-26T20:00:00.000000000Z"
SINCE = parse_time(T0)


def _service(replicas=1, update_state=None, message="", global_mode=False, name="st_web", sid="s1"):
    svc = {
        "ID": sid,
        "Spec": {"Name": name, "Mode": {"Global": {}} if global_mode else {"Replicated": {"Replicas": replicas}}},
    }
    if update_state:
        svc["UpdateStatus"] = {"State": update_state, "Message": message}
    return svc


def _task(state, desired="running", ts="2026-11-26T20:00:05.5Z", err=None, slot=1, sid="s1"):
    status = {"State": state, "Timestamp": ts}
    if err:
        status["Err"] = err
    return {"ID": "t" * 25, "ServiceID": sid, "Slot": slot, "DesiredState": desired, "Status": status}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-26T20:00:00.123456789Z", datetime.datetime(2026, 11, 26, 20, 0, 0, 123456, datetime.timezone.utc)),
        ("2026-11-26T20:00:00Z", datetime.datetime(2026, 11, 26, 20, 0, 0, 0, datetime.timezone.utc)),
        ("2026-11-26T21:00:00.5+01:00", datetime.datetime(2026, 11, 26, 20, 0, 0, 500000, datetime.timezone.utc)),
        ("", None),
        ("garbage", None),
    ],
)
def test_parse_time(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "info, message",
    [
        ({"Swarm": {"LocalNodeState": "inactive"}}, r"not part of a swarm \(LocalNodeState=inactive\)"),
        (
            {"Swarm": {"LocalNodeState": "active", "ControlAvailable": False, "NodeID": "n1"}},
            "node n1 is a swarm worker",
        ),
    ],
)
def test_check_manager_refuses(info, message):
    with pytest.raises(StackError, match=message):
        check_manager(info)


def test_check_manager_accepts_a_manager():
    check_manager({"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}})


def test_converged_when_replicas_run():
    status = service_status(_service(2), [_task("running", slot=1), _task("running", slot=2)], SINCE, 3)
    assert (status["state"], status["running"], status["desired"]) == ("converged", 2, 2)


def test_pending_while_updating_or_starting():
    assert service_status(_service(1, "updating"), [_task("running")], SINCE, 3)["state"] == "pending"
    assert service_status(_service(1), [_task("starting")], SINCE, 3)["state"] == "pending"
    assert service_status(_service(2), [_task("running")], SINCE, 3)["state"] == "pending"


def test_failed_after_repeated_rejections_names_the_error():
    tasks = [
        _task("rejected", desired="shutdown", err="No such image: nope:1", ts=f"2026-11-26T20:00:0{i}Z")
        for i in range(1, 4)
    ]
    status = service_status(_service(1), tasks + [_task("preparing")], SINCE, 3)
    assert status["state"] == "failed"
    assert status["message"] == "task 1 is rejected: No such image: nope:1"


def test_old_failures_do_not_count():
    tasks = [_task("failed", desired="shutdown", err="boom", ts=f"2026-11-26T19:59:0{i}Z") for i in range(1, 5)]
    status = service_status(_service(1), tasks + [_task("starting")], SINCE, 3)
    assert status["state"] == "pending" and status["message"] == ""


def test_paused_update_is_a_failure():
    status = service_status(
        _service(1, "paused", "update paused due to failure or early termination of task x"), [], SINCE, 0
    )
    assert status["state"] == "failed" and "update paused" in status["message"]


def test_swarm_own_rollback_is_a_failure_unless_we_rolled_back():
    assert service_status(_service(1, "rollback_completed"), [_task("running")], SINCE, 3)["state"] == "failed"
    assert (
        service_status(_service(1, "rollback_completed"), [_task("running")], SINCE, 3, rolling_back=True)["state"]
        == "converged"
    )


def test_an_old_rollback_of_an_untouched_service_is_history():
    status = service_status(_service(1, "rollback_completed"), [_task("running")], SINCE, 3, fresh=False)
    assert status["state"] == "converged"


def test_global_service_needs_at_least_one_task():
    assert service_status(_service(global_mode=True), [], SINCE, 3)["state"] == "pending"
    assert service_status(_service(global_mode=True), [_task("running")], SINCE, 3)["state"] == "converged"


class _PollingEngine:
    def __init__(self, rounds):
        self.rounds = rounds
        self.calls = 0

    def services(self, stack):
        return [_service(1)]

    def tasks(self, ids):
        self.calls += 1
        return self.rounds[min(self.calls - 1, len(self.rounds) - 1)]


def test_wait_polls_until_converged():
    engine = _PollingEngine([[_task("preparing")], [_task("starting")], [_task("running")]])
    clock = FakeClock()
    statuses = StackRun(engine, clock, clock.sleep).wait("st", ["st_web"], WaitPolicy(30, 3), SINCE)
    assert statuses[0]["state"] == "converged" and engine.calls == 3 and clock.now == 2.0


def test_wait_times_out_with_the_task_message():
    engine = _PollingEngine(
        [[_task("pending", err="no suitable node (scheduling constraints not satisfied on 1 node)")]]
    )
    clock = FakeClock()
    with pytest.raises(StackError) as err:
        StackRun(engine, clock, clock.sleep).wait("st", ["st_web"], WaitPolicy(5, 3), SINCE)
    assert "service st_web did not converge within 5s (0/1 tasks running): task 1 is pending: no suitable node" in str(
        err.value
    )
    assert err.value.details["statuses"][0]["state"] == "pending"


def test_wait_fails_fast_on_rejections():
    rejected = [
        _task("rejected", desired="shutdown", err="secret not found", ts=f"2026-11-26T20:00:0{i}Z") for i in range(3)
    ]
    engine = _PollingEngine([rejected])
    clock = FakeClock()
    with pytest.raises(StackError, match="service st_web did not converge .*rejected: secret not found"):
        StackRun(engine, clock, clock.sleep).wait("st", ["st_web"], WaitPolicy(300, 3), SINCE)
    assert clock.now == 0.0


class _RolloutEngine:
    """Right after an update: the old task still runs and UpdateStatus shows the previous update for a
    while; then the swarm starts the new one and completes it."""

    def __init__(self, statuses):
        self.statuses = statuses
        self.polls = 0

    def services(self, stack):
        self.polls += 1
        svc = _service(1)
        state = self.statuses[min(self.polls - 1, len(self.statuses) - 1)]
        if state:
            svc["UpdateStatus"] = dict(state)
        return [svc]

    def tasks(self, ids):
        return [_task("running")]


OLD_UPDATE = {"State": "completed", "StartedAt": "2026-11-26T19:00:00Z"}
NEW_UPDATE = {"State": "updating", "StartedAt": "2026-11-26T20:00:01Z"}
NEW_DONE = {"State": "completed", "StartedAt": "2026-11-26T20:00:01Z"}


def test_wait_does_not_take_the_old_tasks_for_a_finished_rollout():
    engine = _RolloutEngine([OLD_UPDATE, NEW_UPDATE, NEW_DONE])
    clock = FakeClock()
    statuses = StackRun(engine, clock, clock.sleep).wait(
        "st", ["st_web"], WaitPolicy(30, 3), SINCE, rollout={"st_web": OLD_UPDATE["StartedAt"]}
    )
    assert statuses[0]["state"] == "converged" and engine.polls == 3
    # without the rollout hint the first poll already looked converged: the race this guards against
    engine = _RolloutEngine([OLD_UPDATE, NEW_UPDATE, NEW_DONE])
    assert (
        StackRun(engine, clock, clock.sleep).wait("st", ["st_web"], WaitPolicy(30, 3), SINCE)[0]["state"] == "converged"
    )
    assert engine.polls == 1


def test_wait_accepts_a_change_the_swarm_does_not_roll_out_after_the_grace():
    engine = _RolloutEngine([None])
    clock = FakeClock()
    statuses = StackRun(engine, clock, clock.sleep).wait(
        "st", ["st_web"], WaitPolicy(30, 3, rollout_grace=3), SINCE, rollout={"st_web": None}
    )
    assert statuses[0]["state"] == "converged" and engine.polls == 4 and clock.now == 3.0


def test_wait_policy_defaults_and_is_frozen():
    policy = WaitPolicy(30, 3)
    assert (policy.interval, policy.rollout_grace, policy.rolling_back) == (1.0, 15.0, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.timeout = 60


def test_wait_polls_at_the_policy_interval():
    engine = _PollingEngine([[_task("preparing")], [_task("starting")], [_task("running")]])
    clock = FakeClock()
    StackRun(engine, clock, clock.sleep).wait("st", ["st_web"], WaitPolicy(30, 3, interval=0.5), SINCE)
    assert engine.calls == 3 and clock.now == 1.0


def test_wait_after_a_rollback_takes_the_completed_rollback_for_convergence():
    class _RolledBack(_PollingEngine):
        def services(self, stack):
            return [_service(1, "rollback_completed")]

    clock = FakeClock()
    run = StackRun(_RolledBack([[_task("running")]]), clock, clock.sleep)
    with pytest.raises(StackError, match="swarm rolled the update back itself"):
        run.wait("st", ["st_web"], WaitPolicy(30, 0), SINCE)
    statuses = run.wait("st", ["st_web"], WaitPolicy(30, 0, rolling_back=True), SINCE)
    assert statuses[0]["state"] == "converged"
    # a service this run did not touch: its old rollback is history either way
    assert run.wait("st", ["st_web"], WaitPolicy(30, 0), SINCE, fresh=set())[0]["state"] == "converged"


def test_wait_uses_the_given_listing_for_the_first_check_only():
    class _Counting(_PollingEngine):
        listings = 0

        def services(self, stack):
            self.listings += 1
            return super().services(stack)

    engine = _Counting([[_task("starting")], [_task("running")]])
    clock = FakeClock()
    StackRun(engine, clock, clock.sleep).wait("st", ["st_web"], WaitPolicy(30, 3), SINCE, services=[_service(1)])
    assert engine.calls == 2 and engine.listings == 1


class _DigestEngine:
    def __init__(self, registry=None, local=None):
        self.registry = registry or {}
        self.local = local or {}

    def distribution_digest(self, image):
        if image in self.registry:
            return self.registry[image]
        raise RuntimeError("Get https://registry-1.docker.io/v2/: dial tcp: no route to host")

    def local_repo_digests(self, image):
        if image in self.local:
            return self.local[image]
        raise RuntimeError(f"No such image: {image}")


def test_resolve_digests_prefers_the_registry_then_the_local_store():
    engine = _DigestEngine(
        registry={"reg:5000/a:1": "sha256:aaa"},
        local={"reg:5000/b:2": ["other/b@sha256:000", "reg:5000/b@sha256:bbb"]},
    )
    assert resolve_digests(engine, ["reg:5000/a:1", "reg:5000/b:2"], {}) == {
        "reg:5000/a:1": "sha256:aaa",
        "reg:5000/b:2": "sha256:bbb",
    }


def test_resolve_digests_failure_names_the_service():
    with pytest.raises(StackError) as err:
        resolve_digests(_DigestEngine(), ["web:v1"], {"web:v1": ["web", "admin"]})
    text = str(err.value)
    assert "image 'web:v1' of service(s) web, admin" in text and "no route to host" in text and "No such image" in text


@pytest.mark.parametrize(
    "image, repo",
    [
        ("a/b:1", "a/b"),
        ("reg:5000/a/b:1@sha256:x", "reg:5000/a/b"),
        ("reg:5000/a", "reg:5000/a"),
        ("busybox", "busybox"),
    ],
)
def test_repository(image, repo):
    assert _repository(image) == repo


def test_engine_adapter_sends_the_raw_spec_rollback_flag_and_auth(fake_engine):
    engine = DockerApiEngine(EngineHTTP(f"unix://{fake_engine.socket_path}"), auth_lookup=lambda image: "hdr-" + image)
    sid = engine.create_service({"Name": "x", "Labels": {}}, "auth")
    engine.update_service(sid, 1, {"Name": "x", "Labels": {"v": "2"}}, None, rollback=True)
    create, update = fake_engine.requests
    assert (create[0], create[1], create[3], create[4]["X-Registry-Auth"]) == (
        "POST",
        "/services/create",
        {"Name": "x", "Labels": {}},
        "auth",
    )
    assert (update[1], update[2]) == (f"/services/{sid}/update", {"version": "1", "rollback": "previous"})
    assert "X-Registry-Auth" not in update[4]
    assert engine.calls == 2
    assert engine.registry_auth("a:1") == "hdr-a:1"
    assert DockerApiEngine(None).registry_auth("a:1") is None


def test_an_update_always_carries_a_placement(fake_engine):
    # Engine 20.10 panics on every manager when an update drops the Placement of a constrained service.
    engine = DockerApiEngine(EngineHTTP(f"unix://{fake_engine.socket_path}"))
    spec = {"Name": "x", "Labels": {}, "TaskTemplate": {"ContainerSpec": {"Image": "a:1"}}}
    sid = engine.create_service({"Name": "x", "Labels": {}, "TaskTemplate": {"Placement": {"Constraints": ["a"]}}})
    engine.update_service(sid, 1, spec)
    assert fake_engine.requests[-1][3]["TaskTemplate"] == {"ContainerSpec": {"Image": "a:1"}, "Placement": {}}
    assert spec["TaskTemplate"] == {"ContainerSpec": {"Image": "a:1"}}  # the caller's spec is left alone
    kept = {"Name": "x", "TaskTemplate": {"Placement": {"Constraints": ["node.role == manager"]}}}
    engine.update_service(sid, 2, kept)
    assert fake_engine.requests[-1][3] == kept


def test_engine_adapter_objects_round_trip(fake_engine):
    engine = DockerApiEngine(EngineHTTP(f"unix://{fake_engine.socket_path}"))
    secret_id = engine.create_secret("st_pw-1", b"\x00value", {"k": "v"})
    assert fake_engine.requests[-1][3] == {"Name": "st_pw-1", "Data": "AHZhbHVl", "Labels": {"k": "v"}}
    net_id = engine.create_network({"Name": "st_n", "Driver": "overlay", "Labels": {}, "Options": {}})
    assert "Options" not in fake_engine.requests[-1][3] and fake_engine.requests[-1][3]["Scope"] == "swarm"
    assert [s["ID"] for s in engine.secrets()] == [secret_id]
    engine.remove_secret(secret_id)
    engine.remove_network(net_id)
    assert engine.secrets() == [] and [n["Name"] for n in engine.networks()] == ["ingress"]
    with pytest.raises(EngineAPIError) as err:
        engine.remove_config("nope")
    assert err.value.status == 404 and err.value.explanation == "config nope not found"
    assert engine.calls == 8
