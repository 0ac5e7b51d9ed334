"""onmetal-faas-endpoints (roles/openfaas/files): function services go to dnsrr mode, nothing else changes.

faas-swarm 0.9.0 creates every function as a VIP service (handlers/deploy.go sets no EndpointSpec), which needs
IPVS; the program switches them to dnsrr. Tested through its real HTTP client against the in-memory engine double
on a unix socket, with specs shaped like the ones faas-swarm creates.
"""

import copy

import pytest

from ansible_collections.onmetal.faas.tests.unit.plugins._fake_engine import FakeEngine


@pytest.fixture
def endpoints(keeper):
    return keeper


def faas_swarm_spec(name, **extra):
    """A ServiceSpec as faas-swarm 0.9.0's handlers/deploy.go builds it (labels from buildLabels)."""
    spec = {
        "Name": name,
        "Labels": {"com.openfaas.function": name, "function": "true", "com.openfaas.scale.min": "1"},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "127.0.0.1:5000/resize:abc", "Labels": {"com.openfaas.function": name}},
            "Networks": [{"Target": "func_functions"}],
            "RestartPolicy": {"Condition": "any", "Delay": 5000000000, "MaxAttempts": 5},
        },
        "Mode": {"Replicated": {"Replicas": 1}},
    }
    spec.update(extra)
    return spec


@pytest.fixture
def engine(tmp_path):
    fake = FakeEngine(str(tmp_path / "docker.sock"))
    yield fake
    fake.close()


def test_needs_dnsrr(endpoints):
    vip = {"ID": "s1", "Spec": faas_swarm_spec("resize")}
    assert endpoints.needs_dnsrr(vip) == "function service resize is in vip mode"
    explicit_vip = {"ID": "s1", "Spec": faas_swarm_spec("resize", EndpointSpec={"Mode": "vip"})}
    assert endpoints.needs_dnsrr(explicit_vip) == "function service resize is in vip mode"
    assert endpoints.needs_dnsrr({"Spec": faas_swarm_spec("resize", EndpointSpec={"Mode": "dnsrr"})}) is None
    published = faas_swarm_spec("web", EndpointSpec={"Mode": "vip", "Ports": [{"TargetPort": 8080}]})
    assert endpoints.needs_dnsrr({"Spec": published}) is None
    stack_service = {"Spec": {"Name": "func_gateway", "Labels": {"com.docker.stack.namespace": "func"}}}
    assert endpoints.needs_dnsrr(stack_service) is None


def test_sweep_switches_functions_and_leaves_the_rest(endpoints, engine):
    engine.services = [
        {"ID": "f1", "Version": {"Index": 3}, "Spec": faas_swarm_spec("resize")},
        {"ID": "f2", "Version": {"Index": 4}, "Spec": faas_swarm_spec("echo", EndpointSpec={"Mode": "dnsrr"})},
        {"ID": "g1", "Version": {"Index": 5}, "Spec": {"Name": "func_gateway", "Labels": {"x": "y"}}},
    ]
    before = copy.deepcopy(engine.services[0]["Spec"])
    lines = []
    assert endpoints.sweep(endpoints.Engine(engine.socket_path), lines.append) == 1
    assert engine.writes() == [("POST", "/services/f1/update")]
    after = engine.services[0]["Spec"]
    assert after["EndpointSpec"] == {"Mode": "dnsrr"}
    assert after["UpdateConfig"] == {"Order": "start-first"}
    assert {k: v for k, v in after.items() if k not in ("EndpointSpec", "UpdateConfig")} == before
    assert lines == ["function service resize is in vip mode: switched to dnsrr"]
    # A second sweep finds nothing to do.
    assert endpoints.sweep(endpoints.Engine(engine.socket_path), lines.append) == 0
    assert len(engine.writes()) == 1


def test_dnsrr_spec_keeps_the_update_settings_and_starts_first(endpoints):
    spec = faas_swarm_spec("resize", UpdateConfig={"Parallelism": 1, "FailureAction": "pause", "Order": "stop-first"})
    new = endpoints.dnsrr_spec(spec)
    assert new["UpdateConfig"] == {"Parallelism": 1, "FailureAction": "pause", "Order": "start-first"}
    assert spec["UpdateConfig"]["Order"] == "stop-first"  # the input is not changed


def test_convert_reads_again_after_a_concurrent_update(endpoints, engine):
    engine.services = [{"ID": "f1", "Version": {"Index": 3}, "Spec": faas_swarm_spec("resize")}]

    class RacingEngine(endpoints.Engine):
        """The first update loses a race: faas-swarm (or another manager) updated the service in between."""

        raced = False

        def call(self, method, url, body=None):
            if method == "POST" and not self.raced:
                self.raced = True
                engine.services[0]["Version"]["Index"] += 1
            return super().call(method, url, body)

    lines = []
    assert endpoints.convert(RacingEngine(engine.socket_path), "f1", lines.append) is True
    assert engine.services[0]["Spec"]["EndpointSpec"] == {"Mode": "dnsrr"}
    assert "update answered 500" in lines[0] and "retrying" in lines[0]
    assert lines[1] == "function service resize is in vip mode: switched to dnsrr"


def test_run_follows_created_services(endpoints, engine):
    engine.services = []

    class EventEngine(endpoints.Engine):
        """Events as the engine streams them; a function is created after the sweep."""

        def events(self):
            def stream():
                engine.services.append({"ID": "f9", "Version": {"Index": 1}, "Spec": faas_swarm_spec("late")})
                yield {"Type": "service", "Action": "create", "Actor": {"ID": "f9", "Attributes": {"name": "late"}}}
                yield {"Type": "service", "Action": "remove", "Actor": {"ID": "gone"}}

            return stream()

    lines = []
    endpoints.run(EventEngine(engine.socket_path), lines.append, sleep=lambda s: None, forever=False)
    assert engine.services[0]["Spec"]["EndpointSpec"] == {"Mode": "dnsrr"}
    assert lines == ["function service late is in vip mode: switched to dnsrr"]


def test_run_survives_an_engine_that_is_gone(endpoints, tmp_path):
    lines = []
    endpoints.run(endpoints.Engine(str(tmp_path / "missing.sock")), lines.append, forever=False)
    assert lines and lines[0].startswith("engine: ") and lines[0].endswith("again in 2 s")


def test_only_the_leader_converts(endpoints, engine):
    """Managers that are not the leader leave new functions alone (concurrent updates by several managers left
    stale records in Docker's DNS); the leader converts them."""
    engine.services = [{"ID": "f1", "Version": {"Index": 3}, "Spec": faas_swarm_spec("resize")}]

    class EventEngine(endpoints.Engine):
        def events(self):
            def stream():
                engine.services.append({"ID": "f2", "Version": {"Index": 1}, "Spec": faas_swarm_spec("late")})
                yield {"Type": "service", "Action": "create", "Actor": {"ID": "f2"}}

            return stream()

    lines = []
    engine.leader = False
    endpoints.run(EventEngine(engine.socket_path), lines.append, sleep=lambda s: None, forever=False)
    assert engine.writes() == [] and lines == []
    engine.leader = None  # no quorum: nobody can tell who leads, nobody converts
    engine.services.pop()
    endpoints.run(EventEngine(engine.socket_path), lines.append, sleep=lambda s: None, forever=False)
    assert engine.writes() == [] and lines == []
    engine.leader = True
    engine.services.pop()
    endpoints.run(EventEngine(engine.socket_path), lines.append, sleep=lambda s: None, forever=False)
    assert sorted(lines) == [
        "function service late is in vip mode: switched to dnsrr",
        "function service resize is in vip mode: switched to dnsrr",
    ]


def test_a_new_leader_catches_up_at_its_first_event(endpoints, engine):
    engine.services = [{"ID": "f1", "Version": {"Index": 3}, "Spec": faas_swarm_spec("resize")}]
    engine.leader = False

    class EventEngine(endpoints.Engine):
        def events(self):
            def stream():
                engine.leader = True  # the leader changed while this manager was following events
                yield {"Type": "service", "Action": "update", "Actor": {"ID": "other"}}

            return stream()

    lines = []
    endpoints.run(EventEngine(engine.socket_path), lines.append, sleep=lambda s: None, forever=False)
    assert lines == ["function service resize is in vip mode: switched to dnsrr"]
