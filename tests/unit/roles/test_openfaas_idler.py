"""The openfaas role's idler (roles/openfaas/files/onmetal-faas-idler.py): the pure part with a fake clock, then the
program as a whole, run as a process against the fake gateway (tests/unit/plugins/_fake_gateway.py, real HTTP on
127.0.0.1) and a fake engine on a unix socket (tests/unit/plugins/_fake_engine.py) that says who leads.

The program is loaded by path: the file the role copies to the managers is the file under test.
"""

import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.onmetal.faas.tests.unit.plugins._fake_engine import FakeEngine
from ansible_collections.onmetal.faas.tests.unit.plugins._fake_gateway import FakeGateway

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROGRAM = os.path.join(ROOT, "roles", "openfaas", "files", "onmetal-faas-idler.py")

_spec = importlib.util.spec_from_file_location("onmetal_faas_idler", PROGRAM)
idler = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = idler  # dataclasses look their module up there
_spec.loader.exec_module(idler)

ZERO = {"com.openfaas.scale.zero": "true"}


def fn(name, count=0, replicas=1, **labels):
    return {"name": name, "invocationCount": count, "replicas": replicas, "labels": {**ZERO, **labels}}


# -- durations and labels --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [("15m", 900), ("90s", 90), ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0.5), (".5s", 0.5), (" 10s ", 10)],
)
def test_go_durations(text, seconds):
    assert idler.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text, says",
    [
        ("15", "is not a Go duration; expected a number with a unit such as 90s, 15m or 1h30m"),
        ("15 m", "is not a Go duration"),
        ("15min", "is not a Go duration"),
        ("-5m", "is not a Go duration"),
        ("", "is not a Go duration"),
        ("0s", "is not a positive duration; expected at least 1s"),
        ("0", "is not a Go duration"),
    ],
)
def test_bad_durations_are_named(text, says):
    with pytest.raises(idler.DurationError) as err:
        idler.parse_duration(text)
    assert repr(text) in str(err.value) and says in str(err.value)


def test_labels_select_and_time_a_function():
    assert idler.read_policy("a", {}, 900) == idler.Policy(False)
    assert idler.read_policy("a", None, 900) == idler.Policy(False)
    assert idler.read_policy("a", {"com.openfaas.scale.zero": "false"}, 900) == idler.Policy(False)
    assert idler.read_policy("a", ZERO, 900) == idler.Policy(True, 900)
    assert idler.read_policy("a", {**ZERO, "com.openfaas.scale.zero-duration": "10s"}, 900) == idler.Policy(True, 10)
    assert idler.read_policy("a", {**ZERO, "com.openfaas.scale.zero-duration": ""}, 900) == idler.Policy(True, 900)


def test_bad_labels_disable_idling_with_the_value_and_the_fix():
    yes = idler.read_policy("a", {"com.openfaas.scale.zero": "yes"}, 900)
    assert not yes.enabled
    assert yes.problem == (
        'function a: label com.openfaas.scale.zero=\'yes\' is neither "true" nor "false"; not idling it '
        '(set com.openfaas.scale.zero: "true" to scale it to zero when idle)'
    )
    bad = idler.read_policy("a", {**ZERO, "com.openfaas.scale.zero-duration": "15"}, 900)
    assert not bad.enabled
    assert bad.problem.startswith("function a: label com.openfaas.scale.zero-duration: '15' is not a Go duration")


# -- idle tracking with a fake clock ---------------------------------------------------------------


def test_idle_after_the_period_since_first_seen():
    tracker = idler.Tracker(default_seconds=60)
    fns = [fn("a", count=5, **{"com.openfaas.scale.zero-duration": "30s"}), fn("b", count=5)]
    assert tracker.observe(fns, 1000) == ([], [])
    assert tracker.observe(fns, 1029) == ([], [])
    assert tracker.observe(fns, 1030)[0] == [idler.Action("a", 30, 30)]
    actions = tracker.observe(fns, 1060)[0]
    assert [a.name for a in actions] == ["a", "b"]


def test_a_call_restarts_the_period():
    tracker = idler.Tracker(default_seconds=30)
    tracker.observe([fn("a", count=1)], 0)
    assert tracker.observe([fn("a", count=2)], 25) == ([], [])
    assert tracker.observe([fn("a", count=2)], 54) == ([], [])
    assert tracker.observe([fn("a", count=2)], 55)[0] == [idler.Action("a", 30, 30)]


def test_a_counter_that_goes_down_counts_as_activity():
    """A restarted gateway (or Prometheus without its samples) lowers the sum: not a sign of idleness."""
    tracker = idler.Tracker(default_seconds=30)
    tracker.observe([fn("a", count=40)], 0)
    assert tracker.observe([fn("a", count=3)], 29) == ([], [])
    assert tracker.observe([fn("a", count=3)], 58) == ([], [])
    assert tracker.observe([fn("a", count=3)], 59)[0] == [idler.Action("a", 30, 30)]


def test_never_a_function_without_the_label_or_already_at_zero():
    tracker = idler.Tracker(default_seconds=1)
    plain = {"name": "plain", "invocationCount": 0, "replicas": 3, "labels": {"function": "true"}}
    zero = fn("zero", replicas=0)
    odd = fn("odd", replicas=-1)
    unknown = {"name": "unknown", "invocationCount": 0, "labels": ZERO}
    for now in range(0, 100, 10):
        assert tracker.observe([plain, zero, odd, unknown], now) == ([], [])


def test_a_woken_function_gets_a_full_period_before_its_first_call_shows():
    tracker = idler.Tracker(default_seconds=30)
    tracker.observe([fn("a", count=7)], 0)
    assert tracker.observe([fn("a", count=7)], 30)[0]
    tracker.scaled("a", 30)
    tracker.observe([fn("a", count=7, replicas=0)], 100)  # at zero for a while
    # Woken by a call that Prometheus has not scraped yet: the count is unchanged.
    assert tracker.observe([fn("a", count=7, replicas=1)], 110) == ([], [])
    assert tracker.observe([fn("a", count=7, replicas=1)], 129) == ([], [])
    assert tracker.observe([fn("a", count=7, replicas=1)], 130)[0] == [idler.Action("a", 30, 30)]


def test_labelled_later_or_removed_and_redeployed_starts_counting_again():
    tracker = idler.Tracker(default_seconds=30)
    tracker.observe([fn("a")], 0)
    tracker.observe([{**fn("a"), "labels": {}}], 20)
    assert tracker.observe([fn("a")], 40) == ([], [])
    tracker.observe([], 50)
    assert tracker.observe([fn("a")], 60) == ([], [])
    assert tracker.observe([fn("a")], 90)[0] == [idler.Action("a", 30, 30)]


def test_a_bad_label_is_logged_once_and_again_after_a_fix():
    tracker = idler.Tracker(default_seconds=30)
    bad = fn("a", **{"com.openfaas.scale.zero-duration": "soon"})
    notes = tracker.observe([bad], 0)[1]
    assert notes == [
        "function a: label com.openfaas.scale.zero-duration: 'soon' is not a Go duration; expected a number with a "
        "unit such as 90s, 15m or 1h30m; not idling it"
    ]
    assert tracker.observe([bad], 100) == ([], [])
    tracker.observe([fn("a")], 110)
    assert tracker.observe([bad], 120)[1] == notes


def test_garbage_from_the_gateway_is_ignored():
    tracker = idler.Tracker(default_seconds=1)
    assert tracker.observe(None, 0) == ([], [])
    assert tracker.observe([None, 3, {"name": 5}, {"labels": ZERO}], 0) == ([], [])
    assert tracker.observe([fn("a", count="12")], 0) == ([], [])
    assert tracker.observe([fn("a", count="12")], 10) == ([], [])  # no number: no idle time is counted


# -- the leader --------------------------------------------------------------------------------------


def info(state="active", control=True):
    return {"Swarm": {"LocalNodeState": state, "ControlAvailable": control, "NodeID": "n1"}}


@pytest.mark.parametrize(
    "the_info, node, leads, why",
    [
        (info(), {"ManagerStatus": {"Leader": True}}, True, "this manager leads the swarm"),
        (info(), {"ManagerStatus": {"Reachability": "reachable"}}, False, "another manager leads the swarm"),
        (info(), None, False, "the swarm's node list did not answer (no leader: quorum lost?)"),
        (info(control=False), None, False, "this node is a swarm worker, not a manager"),
        (info(state="inactive"), None, False, "not in an active swarm (LocalNodeState='inactive')"),
        ({}, None, False, "not in an active swarm (LocalNodeState=None)"),
    ],
)
def test_only_the_leader_acts(the_info, node, leads, why):
    result = idler.is_leader(the_info, node)
    assert result[0] is leads and why in result[1]


class StubEngine:
    def __init__(self, leads):
        self.leads = leads

    def leader(self):
        return self.leads, "stub"


def test_a_follower_watches_and_takes_over_with_what_it_saw(tmp_path):
    clock = [0.0]
    lines = []
    with FakeGateway() as gw:
        gw.functions["a"] = {"service": "a", "image": "x/a:1", "labels": {**ZERO}}
        engine = StubEngine(False)
        run = idler.Idler(
            idler.Tracker(30),
            idler.Gateway(gw.url, "admin", "s3cret"),
            engine,
            clock=lambda: clock[0],
            log=lines.append,
        )
        for clock[0] in (0, 15, 30, 45):
            assert run.step() == []
        assert gw.writes() == []
        engine.leads = True  # the leader was lost; this manager leads now and knows "a" is idle for 45 s
        clock[0] = 46
        assert run.step() == ["a"]
    assert gw.writes() == [("POST", "/system/scale-function/a", {"serviceName": "a", "replicas": 0})]
    assert lines == [
        "watching only: stub",
        "acting: stub",
        "scale-to-zero function=a idle_seconds=46 zero_duration_seconds=30 status=202",
    ]


def test_a_failed_scale_is_logged_and_retried(tmp_path):
    clock = [0.0]
    lines = []
    with FakeGateway() as gw:
        gw.functions["a"] = {"service": "a", "image": "x/a:1", "labels": {**ZERO}}
        run = idler.Idler(
            idler.Tracker(30),
            idler.Gateway(gw.url, "admin", "wrong"),
            StubEngine(True),
            clock=lambda: clock[0],
            log=lines.append,
        )
        assert run.step() == []
    assert lines[0].startswith(f"gateway unreachable, nothing scaled: GET {gw.url}/system/functions answered 401")


# -- the program as a process ------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path):
    fake = FakeEngine(str(tmp_path / "docker.sock"))
    yield fake
    fake.close()


def test_the_engine_socket_says_who_leads(engine, tmp_path):
    client = idler.Engine(engine.socket_path)
    assert client.leader() == (True, "this manager leads the swarm")
    engine.leader = False
    assert client.leader() == (False, "another manager leads the swarm")
    engine.leader = None
    assert client.leader() == (False, "the swarm's node list did not answer (no leader: quorum lost?)")
    engine.manager = False
    assert client.leader() == (False, "this node is a swarm worker, not a manager")
    gone = idler.Engine(str(tmp_path / "nothing.sock")).leader()
    assert gone[0] is False and "nothing.sock did not answer" in gone[1]


def _run_program(tmp_path, gw, engine, *extra):
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"username": "admin", "password": "s3cret"}))
    creds.chmod(0o600)
    cmd = [sys.executable, PROGRAM, "--gateway", gw.url, "--credentials", str(creds)]
    cmd += ["--docker-socket", engine.socket_path, "--interval", "0.1", "--default-duration", "1h", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _until(predicate, limit=30.0):
    end = time.monotonic() + limit  # a bound on the wait, not an assertion on time
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _polled_after_a_write(gw):
    methods = [r[0] for r in list(gw.requests)]
    return "POST" in methods and "GET" in methods[methods.index("POST") :]


def test_the_program_scales_an_idle_labelled_function_to_zero(tmp_path, engine):
    with FakeGateway() as gw:
        gw.functions["sleepy"] = {
            "service": "sleepy",
            "image": "x/sleepy:1",
            "labels": {**ZERO, "com.openfaas.scale.zero-duration": "1s"},
        }
        gw.functions["busy"] = {"service": "busy", "image": "x/busy:1", "labels": {**ZERO}}
        gw.functions["plain"] = {"service": "plain", "image": "x/plain:1", "labels": {}}
        proc = _run_program(tmp_path, gw, engine)
        try:
            # a poll after the scale call: the program has logged it by then
            assert _until(lambda: _polled_after_a_write(gw)), "the idler never scaled anything"
            polls_before = sum(1 for r in list(gw.requests) if r[:2] == ("GET", "/system/functions"))
        finally:
            proc.terminate()
            out = proc.communicate(timeout=10)[0]
    assert gw.writes() == [("POST", "/system/scale-function/sleepy", {"serviceName": "sleepy", "replicas": 0})]
    assert gw.replicas == {"sleepy": 0}
    assert polls_before >= 2  # it watched before it acted
    line = [x for x in out.splitlines() if x.startswith("scale-to-zero ")]
    assert len(line) == 1, out
    idle = float(line[0].split("idle_seconds=")[1].split()[0])
    assert idle >= 1 and "function=sleepy" in line[0] and "zero_duration_seconds=1 status=202" in line[0]
    assert "acting: this manager leads the swarm" in out


def test_the_program_on_a_follower_scales_nothing(tmp_path, engine):
    engine.leader = False
    with FakeGateway() as gw:
        gw.functions["sleepy"] = {
            "service": "sleepy",
            "image": "x/sleepy:1",
            "labels": {**ZERO, "com.openfaas.scale.zero-duration": "100ms"},
        }
        proc = _run_program(tmp_path, gw, engine)
        try:
            assert _until(lambda: sum(1 for r in list(gw.requests) if r[0] == "GET") >= 10)
        finally:
            proc.terminate()
            out = proc.communicate(timeout=10)[0]
    assert gw.writes() == []
    assert "watching only: another manager leads the swarm" in out


@pytest.mark.parametrize(
    "args, says",
    [
        (["--default-duration", "15"], "openfaas_idler_default_duration: '15' is not a Go duration"),
        (["--interval", "0"], "openfaas_idler_interval 0: expected a number of seconds above 0"),
    ],
)
def test_bad_settings_stop_the_program_with_the_value(args, says):
    proc = subprocess.run([sys.executable, PROGRAM, "--validate", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and says in proc.stderr


def test_unreadable_credentials_are_named(tmp_path):
    missing = tmp_path / "none.json"
    proc = subprocess.run(
        [sys.executable, PROGRAM, "--credentials", str(missing)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert f"cannot read the gateway credentials from {missing}" in proc.stderr
