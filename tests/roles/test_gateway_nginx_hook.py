"""The engine-restart hook of gateway_nginx (templates/engine-restart-hook.sh.j2) against a real nginx on loopback,
configured by the role's own nginx.conf template: before-restart sends new calls to the other managers' gateways
and returns only once the calls the local gateway holds have finished; after-restart brings the local gateway
back; a configuration nginx refuses is put back as it was and nginx keeps serving.

Without it the rolling engine restart stopped the local gateway under nginx's feet: calls in flight were cut (502).
"""

import os
import shutil
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(NGINX), reason="needs root and nginx (scripts/lib.sh installs it)"
)


def gateway(address, name):
    """A gateway stand-in that says who answered; /function/slow takes 2 s."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            return

        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path.startswith("/function/slow"):
                time.sleep(2)
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((address, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def rig(start_nginx, render_role_template, tmp_path):
    local, peer = gateway("127.0.0.1", "local"), gateway("127.0.0.2", "peer")
    try:
        nginx = start_nginx(
            {
                "gateway_nginx_upstreams": [f"127.0.0.1:{local.server_address[1]}"],
                "openfaas_gateway_port": peer.server_address[1],
                "__gateway_nginx_managers": {"stdout_lines": ["self 10.255.0.1", "10.255.0.1:2377", "127.0.0.2:2377"]},
            }
        )
        hook = render_role_template("gateway_nginx", "engine-restart-hook.sh.j2", nginx["vars"], dest=tmp_path / "hook")
        yield {"conf": nginx["conf"], "hook": str(hook), "url": nginx["url"], "tmp": tmp_path}
    finally:
        for server in (local, peer):
            server.shutdown()
            server.server_close()


def call(rig, path="/function/echo"):
    with urllib.request.urlopen(rig["url"] + path, timeout=10) as resp:
        return resp.read().decode()


def hook(rig, phase):
    return subprocess.run(["sh", rig["hook"], phase], capture_output=True, text=True, timeout=120, check=False)


def test_before_restart_moves_calls_to_the_peers_after_the_local_calls_finished(rig):
    assert {call(rig) for _call in range(5)} == {"local"}
    slow = {}
    thread = threading.Thread(target=lambda: slow.update(answer=call(rig, "/function/slow")))
    thread.start()
    time.sleep(0.3)  # the slow call is with the local gateway
    start = time.monotonic()
    done = hook(rig, "before-restart")
    took = time.monotonic() - start
    thread.join(10)
    assert done.returncode == 0, done.stderr
    assert "marked down" in done.stdout
    assert slow == {"answer": "local"}  # the call the local gateway held was answered, not cut
    assert took >= 1.0  # the hook waited for the old worker that held it
    assert " down; # onmetal:local-gateway" in rig["conf"].read_text()
    assert {call(rig) for _call in range(5)} == {"peer"}
    again = hook(rig, "before-restart")
    assert again.returncode == 0 and "already as wanted" in again.stdout
    back = hook(rig, "after-restart")
    assert back.returncode == 0 and "back in use" in back.stdout
    assert " down;" not in rig["conf"].read_text()
    time.sleep(0.5)
    assert {call(rig) for _call in range(5)} == {"local"}


def test_a_configuration_nginx_refuses_is_put_back_and_nginx_keeps_serving(rig):
    broken = rig["conf"].read_text() + "\nthis_is_not_a_directive on;\n"
    rig["conf"].write_text(broken)
    done = hook(rig, "before-restart")
    assert done.returncode == 1 and "nginx -t failed" in done.stderr
    assert rig["conf"].read_text() == broken  # as it was before the hook, not half edited
    assert call(rig) == "local"
    usage = hook(rig, "sideways")
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_the_hook_lives_where_docker_engine_runs_hooks():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "roles", "docker_engine", "vars", "main.yml"), encoding="utf-8") as handle:
        hook_dir = yaml.safe_load(handle)["__docker_engine_hook_dir"]
    with open(os.path.join(root, "roles", "gateway_nginx", "vars", "main.yml"), encoding="utf-8") as handle:
        hook = yaml.safe_load(handle)["__gateway_nginx_hook"]
    assert os.path.dirname(hook) == hook_dir
