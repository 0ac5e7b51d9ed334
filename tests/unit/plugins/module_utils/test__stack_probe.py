"""The read-only probe of the swarm_stack action plugin: the remote script, the snapshot engine, and
that a probe answer equals the module's answer (the module's run() against the same engine)."""

import copy
import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils._engine_http import EngineHTTP
from ansible_collections.onmetal.faas.plugins.module_utils._stack import NodeIO, run
from ansible_collections.onmetal.faas.plugins.module_utils._stack_args import ARGUMENT_SPEC
from ansible_collections.onmetal.faas.plugins.module_utils._stack_client import DockerApiEngine
from ansible_collections.onmetal.faas.plugins.module_utils._stack_engine import StackRun
from ansible_collections.onmetal.faas.plugins.module_utils._stack_probe import (
    NeedsModule,
    SnapshotEngine,
    collect,
    probe_args,
    probe_result,
    remote_script,
)

COMPOSE = {
    "services": {"web": {"image": "probe/web:1", "environment": {"A": "1"}, "secrets": ["tok"]}},
    "secrets": {"tok": {}},
}


def _params(**overrides):
    params = {key: spec.get("default") for key, spec in ARGUMENT_SPEC.items()}
    params.update(name="pt", compose=copy.deepcopy(COMPOSE), secret_contents={"tok": "v1"}, endpoint_mode="vip")
    params.update(overrides)
    return params


def _module_run(fake_engine, params, check_mode=False, want_diff=False):
    """What the module computes: run() over the real HTTP client against the engine double."""
    engine = DockerApiEngine(EngineHTTP(f"unix://{fake_engine.socket_path}"))
    result = run(params, StackRun(engine, time.monotonic, time.sleep), NodeIO(None), check_mode, want_diff)
    result["api_calls"] = engine.calls
    return result


def _snapshot(fake_engine, stack="pt", with_tasks=True):
    http = EngineHTTP(f"unix://{fake_engine.socket_path}")
    try:
        return collect(http, stack, "/nonexistent/ip_vs", with_tasks)
    finally:
        http.close()


def test_collect_makes_the_modules_reads(fake_engine):
    _module_run(fake_engine, _params())
    fake_engine.requests.clear()
    snap = _snapshot(fake_engine)
    assert [(m, p) for m, p, _q, _b, _h in fake_engine.requests] == [
        ("GET", "/info"),
        ("GET", "/services"),
        ("GET", "/networks"),
        ("GET", "/secrets"),
        ("GET", "/configs"),
        ("GET", "/tasks"),
    ]
    assert json.loads(fake_engine.requests[1][2]["filters"]) == {"label": ["com.docker.stack.namespace=pt"]}
    assert [s["Spec"]["Name"] for s in snap["services"]] == ["pt_web"]
    assert snap["requests"] == 6 and snap["ipvs"] is False and len(snap["tasks"]) == 1


def test_collect_skips_the_task_listing_without_services_or_a_wait(fake_engine):
    snap = _snapshot(fake_engine, "nothing")
    assert snap["services"] == [] and snap["tasks"] == [] and snap["requests"] == 5
    _module_run(fake_engine, _params())
    fake_engine.requests.clear()
    snap = _snapshot(fake_engine, with_tasks=False)
    assert len(snap["services"]) == 1 and snap["tasks"] == [] and snap["requests"] == 5
    assert "/tasks" not in [p for _m, p, _q, _b, _h in fake_engine.requests]


def _run_script(args, env=None, cwd=None):
    """The probe as the action plugin sends it: python -I -c SCRIPT ARGS_JSON (no site, no PYTHONPATH)."""
    return subprocess.run(
        [sys.executable, "-I", "-c", remote_script(), json.dumps(args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_the_remote_script_runs_on_a_bare_python(fake_engine, tmp_path):
    """The script is standard library only: run it with -I (no site, no PYTHONPATH) in an empty directory."""
    _module_run(fake_engine, _params())
    args = {
        "name": "pt",
        "docker_host": None,
        "api_version": "auto",
        "timeout": 5,
        "ipvs_probe_path": "~/no-ip_vs",
    }
    env = {"DOCKER_HOST": f"unix://{fake_engine.socket_path}", "HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    proc = _run_script(args, env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    snap = json.loads(proc.stdout)
    assert [s["Spec"]["Name"] for s in snap["services"]] == ["pt_web"]
    assert snap["requests"] == 6 and snap["ipvs"] is False
    # ~ expanded on the node: a file there flips the IPVS answer
    (tmp_path / "no-ip_vs").write_text("")
    assert json.loads(_run_script(args, env).stdout)["ipvs"] is True


def test_the_remote_script_reports_errors_as_json(tmp_path):
    args = {"name": "pt", "docker_host": f"unix://{tmp_path}/none.sock", "timeout": 5, "ipvs_probe_path": "/x"}
    proc = _run_script(args)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["error"].startswith("FileNotFoundError")
    assert probe_result(_params(), json.loads(proc.stdout), False, False) is None


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("want_diff", [False, True])
def test_a_no_op_answer_equals_the_modules(fake_engine, check_mode, want_diff):
    _module_run(fake_engine, _params())
    module = _module_run(fake_engine, _params(), check_mode=check_mode, want_diff=want_diff)
    probed = probe_result(_params(), _snapshot(fake_engine, with_tasks=not check_mode), check_mode, want_diff)
    assert probed.pop("no_op_probe") is True
    assert probed == module
    assert probed["changed"] is False


def test_a_change_needs_the_module_but_check_mode_is_answered(fake_engine):
    _module_run(fake_engine, _params())
    changed = _params(compose={**COMPOSE, "services": {"web": {**COMPOSE["services"]["web"], "image": "probe/web:2"}}})
    assert probe_result(changed, _snapshot(fake_engine), False, False) is None
    checked = probe_result(changed, _snapshot(fake_engine, with_tasks=False), True, True)
    module = _module_run(fake_engine, changed, check_mode=True, want_diff=True)
    assert checked.pop("no_op_probe") and checked == module
    assert checked["changed"] and checked["plan"]["services"]["update"] == ["pt_web"]


def test_a_new_secret_value_needs_the_module(fake_engine):
    _module_run(fake_engine, _params())
    assert probe_result(_params(secret_contents={"tok": "v2"}), _snapshot(fake_engine), False, False) is None


def test_a_stack_that_is_not_converged_needs_the_module(fake_engine):
    _module_run(fake_engine, _params())
    snap = _snapshot(fake_engine)
    snap["tasks"][0]["Status"]["State"] = "starting"
    assert probe_result(_params(), snap, False, False) is None


def test_files_on_the_node_and_digests_need_the_module(fake_engine):
    _module_run(fake_engine, _params())
    with_file = _params(compose={**COMPOSE, "secrets": {"tok": {"file": "/etc/tok"}}}, secret_contents=None)
    assert probe_result(with_file, _snapshot(fake_engine), True, False) is None
    assert probe_result(_params(resolve_digests=True), _snapshot(fake_engine), True, False) is None


def test_a_worker_or_a_bad_compose_needs_the_module(fake_engine):
    snap = _snapshot(fake_engine)
    worker = copy.deepcopy(snap)
    worker["info"]["Swarm"]["ControlAvailable"] = False
    assert probe_result(_params(), worker, True, False) is None
    assert probe_result(_params(compose={"services": {"web": {"imagee": "x"}}}), snap, True, False) is None


def test_absent_is_answered_when_nothing_is_left(fake_engine):
    answer = probe_result(_params(state="absent", compose=None), _snapshot(fake_engine), False, False)
    assert answer["changed"] is False and answer["no_op_probe"] is True and answer["api_calls"] == 5
    _module_run(fake_engine, _params())
    assert probe_result(_params(state="absent", compose=None), _snapshot(fake_engine), False, False) is None


def test_the_snapshot_engine_serves_each_read_once_and_refuses_writes(fake_engine):
    _module_run(fake_engine, _params())
    engine = SnapshotEngine(_snapshot(fake_engine))
    assert [s["Spec"]["Name"] for s in engine.services("pt")] == ["pt_web"]
    with pytest.raises(NeedsModule, match="second listing"):
        engine.services("pt")
    with pytest.raises(NeedsModule, match="create_service"):
        engine.create_service({}, None)
    with pytest.raises(NeedsModule, match="tasks of services"):
        engine.tasks(["unknown-id"])
    assert engine.calls == 6


def _scale_by_hand(fake_engine, name, replicas):
    """What `docker service scale NAME=N` leaves: the spec's replicas changed, the hash label untouched."""
    (svc,) = [s for s in fake_engine.services if s["Spec"]["Name"] == name]
    svc["Spec"]["Mode"] = {"Replicated": {"Replicas": replicas}}


@pytest.mark.parametrize("want_diff", [False, True])
def test_drift_is_planned_by_the_probe_like_the_module(fake_engine, want_diff):
    _module_run(fake_engine, _params())
    _scale_by_hand(fake_engine, "pt_web", 0)
    # check mode: the probe answers, with the module's plan and diff
    checked = probe_result(_params(), _snapshot(fake_engine, with_tasks=False), True, want_diff)
    module = _module_run(fake_engine, _params(), check_mode=True, want_diff=want_diff)
    assert checked.pop("no_op_probe") and checked == module
    assert checked["changed"] and checked["plan"]["services"]["drift"] == {"pt_web": ["Mode.Replicated.Replicas"]}
    if want_diff:
        before = checked["diff"]["before"]["services"]["pt_web"]
        assert before["Mode"] == {"Replicated": {"Replicas": 0}}
    # a real run must correct it: the probe hands over to the module
    assert probe_result(_params(), _snapshot(fake_engine), False, False) is None
    fixed = _module_run(fake_engine, _params())
    assert fixed["changed"] and fixed["plan"]["services"]["update"] == ["pt_web"]
    again = probe_result(_params(), _snapshot(fake_engine), False, False)
    assert again["changed"] is False and again["plan"]["services"]["drift"] == {}


def test_probe_args_forward_the_connection_options_and_the_node_inputs():
    params = _params(docker_host="tcp://10.0.0.1:2376", api_version="1.41", timeout=5)
    args, why = probe_args(params, None, check_mode=False)
    assert why is None
    assert args == {
        "docker_host": "tcp://10.0.0.1:2376",
        "api_version": "1.41",
        "timeout": 5,
        "name": "pt",
        "ipvs_probe_path": "/proc/net/ip_vs",
        "with_tasks": True,
    }
    assert probe_args(params, "~/ip_vs", check_mode=True)[0]["ipvs_probe_path"] == "~/ip_vs"
    assert probe_args(params, None, check_mode=True)[0]["with_tasks"] is False
    assert probe_args(_params(state="absent"), None, check_mode=False)[0]["with_tasks"] is False


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"no_op_probe": False}, "no_op_probe=false"),
        ({"compose_files": ["/srv/a.yml"]}, "compose_files or resolve_digests"),
        ({"resolve_digests": True}, "compose_files or resolve_digests"),
    ],
)
def test_probe_args_name_why_the_module_must_run(overrides, why):
    assert probe_args(_params(**overrides), None, check_mode=False) == (None, why)
