"""After an engine restart (onmetal-faas-endpoints --wait-dns, run by the openfaas engine-restart hook): wait until
this node's gateway task resolves every name it dials before gateway_nginx sends it calls again.

The rolling-restart drill lost 293 calls in 18 s without it: the restarted node's gateway answered 502 ("no address
associated with hostname") until Docker's DNS there had the function's records.
"""

import os
import shutil
import subprocess
import time

import pytest

from ansible_collections.onmetal.faas.tests.unit.plugins._fake_engine import FakeClock

GATEWAY_ENV = [
    "PATH=/usr/bin",
    "functions_provider_url=http://127.0.0.1:8081/",
    "auth_proxy_url=http://basic-auth-plugin:8080/validate",
    "faas_nats_address=nats",
    "direct_functions=true",
]


@pytest.fixture
def ep(keeper):
    return keeper


def test_targets_are_the_names_the_gateway_dials_that_have_tasks(ep):
    running = {"func_basic-auth-plugin": 3, "func_nats": 0, "func_faas-swarm": 3, "resize": 2, "idle": 0}
    targets = ep.gateway_targets(GATEWAY_ENV, ["http://faas-swarm:8080/"], running, ["resize", "idle"], "func_")
    # 127.0.0.1 (the readiness gate) is an address; NATS and idle have no running task, so nothing can resolve them
    assert targets == ["basic-auth-plugin", "faas-swarm", "resize"]


def test_a_host_whose_service_is_unknown_is_waited_for(ep):
    env = ["functions_provider_url=http://provider.example:8080/", "faas_nats_address=10.0.0.5"]
    assert ep.gateway_targets(env, [], {}, [], "func_") == ["provider.example"]
    assert ep.gateway_targets(["auth_proxy_url=http://[fd00::1]:8080/"], [], {}, [], "func_") == []


def test_a_dns_error_is_no_address(ep):
    answers = {"resize": ["10.0.1.5"], "thumbs": []}

    def lookup(name):
        if name == "nats":
            raise OSError("timed out")
        return answers[name]

    assert ep.unresolved(["resize", "thumbs", "nats"], lookup) == ["thumbs", "nats"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare(1)")
def test_names_are_asked_inside_the_gateway_network_namespace(ep):
    holder = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{holder.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline, "unshare did not make a namespace"
            time.sleep(0.05)
        theirs = os.readlink(f"/proc/{holder.pid}/ns/net")
        seen = []

        def lookup(name):
            seen.append(os.readlink("/proc/thread-self/ns/net"))
            return ["10.0.1.5"] if name == "resize" else []

        assert ep.unresolved_in(holder.pid, ["resize", "thumbs"], lookup=lookup) == ["thumbs"]
        assert seen == [theirs, theirs]
        assert os.readlink("/proc/thread-self/ns/net") != theirs  # the caller stays where it was
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(OSError, match=f"/proc/{holder.pid}/"):  # gone: said, not hidden
        ep.unresolved_in(holder.pid, ["resize"], lookup=lambda name: [])


class Swarm:
    """The Engine API calls RestartWait makes, answered from a small model of one manager node."""

    def __init__(self):
        self.state, self.control, self.availability = "active", True, "active"
        self.gateway_service = True
        self.gateway_tasks = [{"ID": "t1"}]
        self.containers = {"c1": 4242}
        self.services = [
            {"ID": "s-gw", "Spec": {"Name": "func_gateway"}},
            {"ID": "s-fs", "Spec": {"Name": "func_faas-swarm"}},
            {"ID": "s-rs", "Spec": {"Name": "resize", "Labels": {"com.openfaas.function": "resize"}}},
        ]
        self.running = {"s-gw": 1, "s-fs": 1, "s-rs": 2}
        self.urls = []

    def call(self, method, url, body=None):
        self.urls.append(url)
        path = url.split("?")[0]
        if path == "/info":
            return 200, {"Swarm": {"NodeID": "n1", "LocalNodeState": self.state, "ControlAvailable": self.control}}
        if path == "/nodes/n1":
            return 200, {"Spec": {"Availability": self.availability}}
        if path == "/services/func_gateway":
            return (200, {}) if self.gateway_service else (404, {"message": "service func_gateway not found"})
        if path == "/tasks" and "func_gateway" in url:
            return 200, self.gateway_tasks
        if path == "/tasks":
            return 200, [
                {"ServiceID": sid, "Status": {"State": "running"}} for sid, n in self.running.items() for _i in range(n)
            ] + [{"ServiceID": "s-rs", "Status": {"State": "starting"}}]
        if path == "/containers/json":
            return 200, [{"Id": cid} for cid in self.containers]
        if path == "/services":
            return 200, self.services
        if path.startswith("/containers/"):
            cid = path.split("/")[2]
            return 200, {"State": {"Pid": self.containers[cid]}, "Config": {"Env": GATEWAY_ENV}}
        return 500, {"message": f"unexpected {url}"}


def waiter(ep, swarm, dns, clock=None):
    asked = []

    def check_names(pid, names):
        asked.append((pid, list(names)))
        return [name for name in names if name not in dns]

    wait = ep.RestartWait(
        swarm, "func_gateway", ["http://faas-swarm:8080/"], check_names=check_names, clock=clock or (lambda: 0.0)
    )
    return wait, asked


def test_done_once_the_gateway_resolves_every_name(ep):
    swarm = Swarm()
    wait, asked = waiter(ep, swarm, {"faas-swarm", "resize", "basic-auth-plugin", "nats"})
    assert wait.check() == (
        True,
        "this node's gateway resolves the 4 names it dials (basic-auth-plugin, faas-swarm, nats, resize)",
    )
    # basic-auth-plugin and nats have no service in this model: waited for as names the engine does not know
    assert asked == [(4242, ["basic-auth-plugin", "faas-swarm", "nats", "resize"])]


def test_not_done_while_a_function_has_no_address_and_the_message_names_it(ep):
    swarm = Swarm()
    swarm.services.append({"ID": "s-nats", "Spec": {"Name": "func_nats"}})
    swarm.services.append({"ID": "s-ba", "Spec": {"Name": "func_basic-auth-plugin"}})
    swarm.running.update({"s-nats": 1, "s-ba": 3})
    wait, asked = waiter(ep, swarm, {"faas-swarm", "nats", "basic-auth-plugin"})
    assert wait.check() == (False, "gateway c1 cannot resolve yet: resize")
    assert asked == [(4242, ["basic-auth-plugin", "faas-swarm", "nats", "resize"])]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"state": "pending"}, (False, "the engine is not an active swarm manager yet")),
        ({"control": False}, (False, "the engine is not an active swarm manager yet")),
        ({"availability": "drain"}, (True, "the node is drain: no gateway task runs here")),
        ({"gateway_service": False}, (True, "no service func_gateway: nothing to wait for")),
        ({"containers": {}}, (False, "the func_gateway task on this node is not running yet")),
    ],
)
def test_the_node_and_its_gateway_task_first(ep, change, expected):
    swarm = Swarm()
    for key, value in change.items():
        setattr(swarm, key, value)
    wait, asked = waiter(ep, swarm, set())
    assert wait.check() == expected
    assert asked == []


def test_a_node_given_no_gateway_task_is_waited_for_a_grace_period(ep):
    swarm = Swarm()
    swarm.gateway_tasks = []
    now = [100.0]
    wait, _asked = waiter(ep, swarm, set(), clock=lambda: now[0])
    assert wait.check() == (False, "no func_gateway task is scheduled on this node yet")
    now[0] += wait.GRACE
    assert wait.check() == (True, "no func_gateway task is scheduled on this node")


def test_an_engine_error_names_the_call(ep):
    swarm = Swarm()
    swarm.call = lambda method, url, body=None: (503, {"message": "This node is not a swarm manager."})
    wait, _asked = waiter(ep, swarm, set())
    with pytest.raises(OSError, match="GET /info answered 503: .*not a swarm manager"):
        wait.check()


class Script:
    def __init__(self, answers):
        self.answers = list(answers)

    def check(self):
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_wait_asks_every_second_until_done(ep):
    clock, lines = FakeClock(), []
    script = Script([OSError("connection refused"), (False, "gateway c1 cannot resolve yet: resize"), (True, "ok")])
    assert ep.wait_dns(script, 120, lines.append, clock=clock, sleep=clock.sleep) == 0
    assert clock.now == 2 and lines == ["onmetal-faas-endpoints: ok"]


def test_wait_gives_up_after_its_bound_and_says_what_is_missing(ep):
    clock, lines = FakeClock(), []
    script = Script([(False, "gateway c1 cannot resolve yet: resize")])
    assert ep.wait_dns(script, 5, lines.append, clock=clock, sleep=clock.sleep) == 1
    assert clock.now == 5
    assert lines[0].startswith("onmetal-faas-endpoints: after 5 s, gateway c1 cannot resolve yet: resize. ")
    assert "other managers' gateways" in lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--wait-dns", "0"], "--wait-dns '0' is not a number of seconds"), (["--wait-dns", "x"], "'x'")],
)
def test_wait_arguments(ep, argv, message):
    with pytest.raises(SystemExit, match=message):
        ep.parse_args(argv)
    assert ep.parse_args(["--wait-dns", "120", "--provider", "http://faas-swarm:8080/"])["wait_dns"] == 120
