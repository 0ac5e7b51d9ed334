"""The openfaas role's side of the queue admission (issue 16): its systemd unit runs the endpoint keeper's program
with options the program accepts, and NATS Streaming serves the monitoring port the program asks."""

import importlib.util
import os
import shlex

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(ROOT, "roles", "openfaas")


def _keeper():
    path = os.path.join(ROLE, "files", "onmetal-faas-endpoints.py")
    spec = importlib.util.spec_from_file_location("onmetal_faas_endpoints_unit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _exec_start(unit):
    (line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def test_the_unit_runs_the_program_with_options_it_accepts(render_role_template):
    unit = render_role_template(
        "openfaas", "onmetal-faas-queue-admission.service.j2", {"openfaas_queue_admission_headroom": 10}
    ).read_text()
    argv = _exec_start(unit)
    assert argv[:3] == ["/usr/bin/python3", "-I", "/usr/local/sbin/onmetal-faas-endpoints"]
    options = _keeper().parse_args(argv[3:])
    assert options == {
        **options,
        "queue_admission": "/run/onmetal-faas-queue/admission.sock",
        "headroom": 10,
        "socket_group": "www-data",
        "monitor_port": 8222,
        "service": "func_gateway",
    }
    assert "RuntimeDirectory=onmetal-faas-queue\n" in unit  # the socket's directory


def test_the_program_polls_the_port_the_stack_gives_nats():
    with open(os.path.join(ROLE, "vars", "main.yml"), encoding="utf-8") as handle:
        role_vars = yaml.safe_load(handle)
    with open(os.path.join(ROLE, "templates", "stack.yml.j2"), encoding="utf-8") as handle:
        stack = handle.read()
    assert "'--http_port', __openfaas_nats_monitor_port | string" in stack
    assert role_vars["__openfaas_nats_monitor_port"] == _keeper().parse_args([])["monitor_port"]
    assert os.path.dirname(role_vars["__openfaas_queue_admission_socket"]) == "/run/onmetal-faas-queue"
