"""The engine-restart hook of openfaas (templates/engine-restart-dns.sh.j2) as the role renders it: it runs the
endpoint keeper's --wait-dns against the node's engine after the restart, and it sorts before gateway_nginx's hook
in docker_engine's hook directory, so nginx sends calls to the local gateway only once that gateway resolves the
functions (the rolling-restart drill lost 293 calls in 18 s without it)."""

import http.server
import os
import shutil
import socketserver
import subprocess
import threading

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAM = os.path.join(ROOT, "roles", "openfaas", "files", "onmetal-faas-endpoints.py")


def role_vars(role):
    with open(os.path.join(ROOT, "roles", role, "vars", "main.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_the_dns_hook_runs_before_nginx_is_given_the_local_gateway_back():
    hook_dir = role_vars("docker_engine")["__docker_engine_hook_dir"]
    dns_hook = role_vars("openfaas")["__openfaas_restart_hook"]
    nginx_hook = role_vars("gateway_nginx")["__gateway_nginx_hook"]
    assert os.path.dirname(dns_hook) == hook_dir == os.path.dirname(nginx_hook)
    # docker_engine runs the hooks in the order of the shell's glob: the names sort in the order they must run
    assert sorted([nginx_hook, dns_hook]) == [dns_hook, nginx_hook]


@pytest.fixture
def hook(render_role_template, tmp_path):
    extra = {"__openfaas_endpoints_program": PROGRAM, "__openfaas_restart_dns_wait": 1, "openfaas_stack_name": "func"}
    path = render_role_template("openfaas", "engine-restart-dns.sh.j2", extra, dest=tmp_path / "40-openfaas-dns")
    os.chmod(path, 0o755)
    return path


def test_before_restart_does_nothing_and_a_wrong_phase_is_refused(hook):
    before = subprocess.run([str(hook), "before-restart"], capture_output=True, text=True, timeout=30, check=False)
    assert (before.returncode, before.stdout, before.stderr) == (0, "", "")
    wrong = subprocess.run([str(hook), "sideways"], capture_output=True, text=True, timeout=30, check=False)
    assert wrong.returncode == 2 and "usage:" in wrong.stderr


class Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not os.path.exists("/usr/bin/python3"),
    reason="needs root, unshare(1) and /usr/bin/python3 (the hook's interpreter)",
)
def test_after_restart_waits_on_the_node_engine_and_says_why_it_gave_up(hook, tmp_path):
    """The hook's program talks to /var/run/docker.sock: here a private mount of an empty /run holds an engine
    stand-in whose node has not rejoined the swarm, so the wait gives up after its bound (1 s) and says why."""
    asked = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 - http.server's name
            asked.append(self.path)
            body = b'{"Swarm": {"NodeID": "", "LocalNodeState": "pending", "ControlAvailable": false}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    server = Engine(str(run_dir / "docker.sock"), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f'mount --bind "{run_dir}" /run && exec "{hook}" after-restart',
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("onmetal-faas-endpoints: after 1 s, the engine is not an active swarm manager yet.")
    assert asked and set(asked) == {"/info"}
