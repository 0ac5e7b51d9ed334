"""nginx's admission of async calls (issue 16): the role's nginx.conf asks the openfaas role's queue admission service
(auth_request on its unix socket) before an /async-function/ call reaches the gateway, answers 507 with the
service's JSON when NATS Streaming would drop an unprocessed call to store it, and passes the call on unchecked
when the service is missing or silent (fail open).

The live tests run a real nginx (Debian's, which has http_auth_request_module) on loopback with the role's own
template, a gateway stand-in and the real admission server of roles/openfaas/files/onmetal-faas-endpoints.py.
"""

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(NGINX) or not shutil.which("openssl"),
    reason="needs root, nginx (scripts/lib.sh installs it) and openssl",
)
ON = {"swarm_managers_group": "all"}  # the rendering host is a manager: admission on (openfaas_queue_admission default)


def _yaml(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _keeper():
    path = os.path.join(ROOT, "roles", "openfaas", "files", "onmetal-faas-endpoints.py")
    spec = importlib.util.spec_from_file_location("onmetal_faas_endpoints_nginx", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render(render_role_template, extra=None):
    return render_role_template("gateway_nginx", "nginx.conf.j2", extra).read_text()


def _block(conf, head):
    return re.search(re.escape(head) + r" \{.*?\n    \}", conf, re.S).group(0)


# -- one source of truth for both roles ---------------------------------------------------------------------------
def test_the_two_roles_agree_on_the_switch_the_socket_and_the_group():
    openfaas_vars = _yaml("roles", "openfaas", "vars", "main.yml")
    nginx_vars = _yaml("roles", "gateway_nginx", "vars", "main.yml")
    assert openfaas_vars["__openfaas_queue_admission_socket"] == nginx_vars["__gateway_nginx_queue_admission_socket"]
    assert openfaas_vars["__openfaas_queue_admission_group"] == nginx_vars["__gateway_nginx_user"]
    # gateway_nginx alone (--tags gateway_nginx) falls back to the openfaas role's default
    default = _yaml("roles", "openfaas", "defaults", "main.yml")["openfaas_queue_admission"]
    assert (
        f"openfaas_queue_admission | default({str(default).lower()})" in nginx_vars["__gateway_nginx_queue_admission"]
    )
    assert "swarm_managers_group | default('swarm_managers')" in nginx_vars["__gateway_nginx_queue_admission"]
    assert "swarm_managers_group | default('swarm_managers')" in openfaas_vars["__openfaas_managers"]


# -- the rendered configuration -------------------------------------------------------------------------------------
def test_on_a_manager_async_calls_are_checked_first(render_role_template):
    conf = _render(render_role_template, ON)
    block = _block(conf, "location /async-function/")
    for line in (
        "auth_request /_onmetal/queue-admission;",
        "auth_request_set $onmetal_queue_full $upstream_http_x_onmetal_queue_full;",
        "error_page 403 = @onmetal_queue_full;",
        "error_page 500 = @onmetal_async_unchecked;",
    ):
        assert line in block, line
    check = _block(conf, "location = /_onmetal/queue-admission")
    for line in (
        "internal;",
        "proxy_pass_request_body off;",
        'proxy_set_header Content-Length "";',
        "proxy_set_header X-Original-URI $request_uri;",
        "proxy_set_header X-Original-Length $content_length;",
        "proxy_pass http://onmetal_queue_admission;",
    ):
        assert line in check, line
    assert "server unix:/run/onmetal-faas-queue/admission.sock;" in conf
    assert 'return 507 "$onmetal_queue_full_body\\n";' in _block(conf, "location @onmetal_queue_full")
    unchecked = _block(conf, "location @onmetal_async_unchecked")
    assert "proxy_pass http://onmetal_gateway;" in unchecked and "auth_request" not in unchecked
    assert "auth_request" not in _block(conf, "location /function/")  # sync calls are not queued


@pytest.mark.parametrize(
    "extra",
    [
        {},  # not a manager: the openfaas role runs no admission service here
        {**ON, "openfaas_queue_admission": False},
    ],
)
def test_without_the_admission_nothing_of_it_is_rendered(render_role_template, extra):
    conf = _render(render_role_template, extra)
    for text in ("auth_request", "onmetal_queue", "@onmetal_async_unchecked", "507"):
        assert text not in conf, text


@needs_nginx
@pytest.mark.parametrize(
    "extra",
    [
        {**ON, "gateway_nginx_tls_enabled": False},
        {**ON, "gateway_nginx_tls_enabled": False, "gateway_nginx_rate_limit_functions": True},
        {**ON},  # TLS: the locations are in the HTTPS server
        {"gateway_nginx_tls_enabled": False},
        {**ON, "openfaas_queue_admission": False, "gateway_nginx_tls_enabled": False},
    ],
)
def test_nginx_accepts_the_configuration_with_and_without_the_admission(render_role_template, tmp_path, extra):
    """nginx -t, as the role's template task validates it."""
    cert, key = tmp_path / "gateway.crt", tmp_path / "gateway.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    extra = {
        **extra,
        "gateway_nginx_access_log": str(tmp_path / "access.log"),
        "gateway_nginx_error_log": str(tmp_path / "error.log"),
        "gateway_nginx_tls_cert_path": str(cert),
        "gateway_nginx_tls_key_path": str(key),
        "__gateway_nginx_pid": str(tmp_path / "nginx.pid"),
    }
    conf = render_role_template("gateway_nginx", "nginx.conf.j2", extra, dest=tmp_path / "nginx.conf")
    done = subprocess.run([NGINX, "-t", "-q", "-c", str(conf)], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr


def test_a_rate_limit_status_the_admission_maps_is_refused(run_preflight):
    """403 and 500 are the admission's answers inside the async location: a rate limit answering them would be taken
    for a full queue (507) or for a missing admission (the call passes unchecked)."""
    inventory = "all:\n  hosts:\n    ng1:\n      ansible_connection: local\n"
    limited = {**ON, "gateway_nginx_rate_limit_functions": True}
    rc, out = run_preflight("gateway_nginx", inventory, {**limited, "gateway_nginx_rate_limit_status": 500})
    text = re.sub(r"\s+", " ", out)
    assert rc != 0
    assert "gateway_nginx_rate_limit_status is 500" in text
    assert "Use another status for rate-limited clients (429, the default, or 503)" in text
    rc, out = run_preflight("gateway_nginx", inventory, {**limited, "gateway_nginx_rate_limit_status": 503})
    assert rc == 0, out
    rc, out = run_preflight(
        "gateway_nginx", inventory, {**limited, "gateway_nginx_rate_limit_status": 403, **{"swarm_managers_group": "x"}}
    )
    assert rc == 0, out  # no admission on this host: nothing to confuse


# -- a live nginx -----------------------------------------------------------------------------------------------------
class Gateway:
    """A gateway stand-in: 202 for async calls, and what it received."""

    def __init__(self):
        self.bodies = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return

            def do_POST(self):  # noqa: N802 - http.server's name
                received.append((self.path, self.rfile.read(int(self.headers.get("Content-Length") or 0))))
                status = 202 if self.path.startswith("/async-function/") else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]


@pytest.fixture
def live(start_nginx, tmp_path):
    keeper = _keeper()
    gateway = Gateway()
    sock = str(tmp_path / "admission.sock")
    rig = {"keeper": keeper, "gateway": gateway, "socket": sock, "servers": []}
    try:
        nginx = start_nginx(
            {
                **ON,
                "gateway_nginx_upstreams": [f"127.0.0.1:{gateway.port}"],
                "gateway_nginx_peer_fallback": False,
                "__gateway_nginx_user": "root",  # the socket lives in the test's private directory
                "__gateway_nginx_queue_admission_socket": sock,
            }
        )
        rig["url"] = nginx["url"]
        yield rig
    finally:
        for server in [gateway.server, *rig["servers"]]:
            server.shutdown()
            server.server_close()


def _admission(live, backlog):
    """The real admission server on the socket, with a fresh snapshot whose channel holds ``backlog`` unprocessed
    calls (max_msgs 20, 5% headroom: 19 admitted)."""
    keeper = live["keeper"]
    admission = keeper.Admission(5, lambda line: None, "func_queue-worker")
    storez = {"limits": {"max_msgs": 20, "max_bytes": 0}}
    channel = {"name": "faas-request", "msgs": backlog, "bytes": backlog * 700, "first_seq": 1, "last_seq": backlog}
    admission.update(keeper.queue_snapshot(time.monotonic(), storez, {"channels": [channel]}, {}, "faas-request"))
    live["servers"].append(keeper.serve_admission(live["socket"], admission))
    return admission


def call(live, path="/async-function/echo", body=b"job"):
    req = urllib.request.Request(live["url"] + path, data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@needs_nginx
def test_a_call_with_room_reaches_the_gateway_with_its_body(live):
    _admission(live, backlog=3)
    assert call(live, body=b"hello")[0] == 202
    assert live["gateway"].bodies == [("/async-function/echo", b"hello")]


@needs_nginx
def test_a_full_queue_gets_507_with_the_admissions_json_and_the_gateway_never_sees_the_call(live):
    _admission(live, backlog=19)
    status, headers, body = call(live, "/async-function/echo?x=1", b"x" * 1000)
    assert status == 507
    assert headers["Content-Type"] == "application/json"
    assert headers.get("X-Request-Id")  # the http-level headers are still sent
    data = json.loads(body)
    assert (data["channel"], data["backlog"], data["max_msgs"], data["admits_up_to"]) == ("faas-request", 19, 20, 19)
    assert "raise openfaas_nats_max_msgs" in data["message"]
    assert live["gateway"].bodies == []
    assert call(live, "/function/echo")[0] == 200  # sync calls are not queued: never refused


@needs_nginx
def test_without_the_admission_service_calls_pass_unchecked(live):
    """The service stopped (its socket gone): auth_request fails with 500, and error_page sends the call on."""
    assert not os.path.exists(live["socket"])
    status, _headers, _body = call(live, body=b"still queued")
    assert status == 202
    assert live["gateway"].bodies == [("/async-function/echo", b"still queued")]


@needs_nginx
def test_a_silent_admission_service_costs_one_second_then_the_call_passes(live):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(live["socket"])
    listener.listen(8)  # accepts, never answers
    try:
        started = time.monotonic()
        assert call(live)[0] == 202
        assert 0.9 <= time.monotonic() - started < 5
        assert len(live["gateway"].bodies) == 1
    finally:
        listener.close()


@needs_nginx
def test_a_refusal_without_the_services_body_still_says_what_happened(live):
    class Bare(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            return

        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = live["keeper"].UnixHTTPServer(live["socket"], Bare)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    live["servers"].append(server)
    status, _headers, body = call(live)
    assert status == 507
    assert json.loads(body)["error"] == "async queue full"
