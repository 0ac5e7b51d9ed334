# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the OpenFaaS test doubles (the harness is in doubles_harness.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from doubles_harness import PASSWORD, USER, Callbacks, FunctionHandler, Process, Provider, serve  # noqa: E402


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("secrets")
    (path / "basic-auth-user").write_text(USER + "\n")
    (path / "basic-auth-password").write_text(PASSWORD + "\n")
    return str(path)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, secrets_dir):
    """function + provider stub + nats + basic-auth + gateway (auth via plugin) + queue-worker."""
    logs = str(tmp_path_factory.mktemp("logs"))
    function = serve(FunctionHandler)
    provider = Provider(function.server_address[1])
    callbacks = Callbacks()
    procs = []
    try:
        nats = Process("nats_streaming.py", {}, logs).wait_listening()
        procs.append(nats)
        auth = Process("basic_auth.py", {"secret_mount_path": secrets_dir}, logs).wait_listening()
        procs.append(auth)
        gateway_env = {
            "functions_provider_url": f"http://127.0.0.1:{provider.port}/",
            "direct_functions": "false",
            "faas_nats_address": "127.0.0.1",
            "faas_nats_port": str(nats.port),
            "read_timeout": "5s",
            "write_timeout": "5s",
            "upstream_timeout": "4s",
            "basic_auth": "true",
            "secret_mount_path": secrets_dir,
            "auth_proxy_url": f"{auth.url}/validate",
            "auth_proxy_pass_body": "false",
            "scale_from_zero": "true",
            "metrics_port": "0",
        }
        gateway = Process("gateway.py", gateway_env, logs).wait_listening()
        procs.append(gateway)
        worker_env = {
            "faas_nats_address": "127.0.0.1",
            "faas_nats_port": str(nats.port),
            "faas_gateway_address": "127.0.0.1",
            "faas_gateway_port": str(gateway.port),
            "gateway_invoke": "true",
            "max_inflight": "2",
            "ack_wait": "10s",
            "write_debug": "true",
        }
        worker = Process("queue_worker.py", worker_env, logs).wait_listening()
        procs.append(worker)
        yield {
            "gateway": gateway,
            "nats": nats,
            "auth": auth,
            "worker": worker,
            "provider": provider,
            "callbacks": callbacks,
            "function": function,
            "logs": logs,
        }
    finally:
        for proc in procs:
            proc.stop()
        for server in (function, provider.server, callbacks.server):
            server.shutdown()
            server.server_close()
