"""The openfaas scenario's host state, read on each manager with pytest-testinfra over Molecule's inventory: the
services the openfaas role installs next to the swarm (the endpoint keeper with its readiness gate and faas-swarm's
engine proxy, the idler) run and are restarted by systemd, and the files that hold a credential or the engine's
power are root's alone.

verify.yml runs it first (molecule/common/testinfra.yml); what goes through the gateway and the swarm's services over
the network stays in the verify playbooks.
"""

import json


def _unit(host, name):
    fields = host.check_output(f"systemctl show {name} -p ActiveState -p Restart -p ExecStart")
    return dict(line.split("=", 1) for line in fields.splitlines() if "=" in line)


def test_the_endpoint_keeper_runs_its_gate_and_engine_proxy_and_is_restarted_when_it_stops(host):
    unit = _unit(host, "onmetal-faas-endpoints.service")
    assert unit["ActiveState"] == "active", unit
    assert unit["Restart"] == "always", unit
    assert "--engine-proxy /run/onmetal-faas/engine.sock" in unit["ExecStart"], unit["ExecStart"]
    assert "--gate 8081 --gateway-service func_gateway --provider http://faas-swarm:8080/ ;" in unit["ExecStart"]


def test_the_engine_proxy_socket_is_root_s_and_its_group_s_only(host):
    sock = host.file("/run/onmetal-faas/engine.sock")
    assert sock.is_socket
    assert (sock.user, sock.mode) == ("root", 0o660)


def test_the_idler_runs_with_a_private_credentials_file(host):
    unit = _unit(host, "onmetal-faas-idler.service")
    assert unit["ActiveState"] == "active", unit
    creds = host.file("/etc/onmetal-faas-idler.json")
    assert creds.exists
    assert (creds.user, creds.group, creds.mode) == ("root", "root", 0o600)
    # the file holds the gateway's credentials the idler logs in with, and nothing is printed here
    assert set(json.loads(host.check_output("cat /etc/onmetal-faas-idler.json"))) >= {"username", "password"}
