"""The standard-library Engine API client: address parsing, env settings, HTTP over a unix socket."""

import http.client
import os
import shutil
import socket
import socketserver
import ssl
import threading
import time

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils._engine_http import (
    DEFAULT_UNIX_SOCKET,
    EngineAPIError,
    EngineConfigError,
    EngineHTTP,
    build_path,
    client_from_params,
    connection_problem,
    parse_base_url,
    settings_from_env,
    version_prefix,
)

# --- parse_base_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("unix:///x", {"scheme": "unix", "path": "/x"}),
        ("unix:///var/run/docker.sock", {"scheme": "unix", "path": "/var/run/docker.sock"}),
        ("unix://x", {"scheme": "unix", "path": "/x"}),
        ("/run/user/1000/docker.sock", {"scheme": "unix", "path": "/run/user/1000/docker.sock"}),
        ("tcp://h:2376", {"scheme": "tcp", "host": "h", "port": 2376, "tls": None}),
        ("tcp://h", {"scheme": "tcp", "host": "h", "port": 2375, "tls": None}),
        ("https://h", {"scheme": "tcp", "host": "h", "port": 2376, "tls": True}),
        ("https://h:443", {"scheme": "tcp", "host": "h", "port": 443, "tls": True}),
        ("http://h", {"scheme": "tcp", "host": "h", "port": 2375, "tls": False}),
        ("http://10.0.0.1:2380", {"scheme": "tcp", "host": "10.0.0.1", "port": 2380, "tls": False}),
        ("  tcp://h:2376  ", {"scheme": "tcp", "host": "h", "port": 2376, "tls": None}),
    ],
)
def test_parse_base_url(url, expected):
    assert parse_base_url(url) == expected


@pytest.mark.parametrize(
    "url, message",
    [
        ("ssh://admin@manager", "delegate_to"),
        ("ssh://admin@manager", "scheme ssh:// is not supported"),
        ("npipe:////./pipe/docker_engine", "scheme npipe:// is not supported"),
        ("tcp://h:notaport", "'tcp://h:notaport' is not HOST:PORT"),
        ("tcp://h:2376/path", "is not HOST:PORT"),
        ("tcp://", "is not HOST:PORT"),
        ("unix://", "names no socket"),
        ("", "docker_host is empty"),
        ("   ", "docker_host is empty"),
        (None, "docker_host is empty"),
    ],
)
def test_parse_base_url_rejects(url, message):
    with pytest.raises(EngineConfigError) as err:
        parse_base_url(url)
    assert message in str(err.value)


# --- settings_from_env ------------------------------------------------------------------------


def _pems(directory):
    return {
        "ca": os.path.join(directory, "ca.pem"),
        "cert": os.path.join(directory, "cert.pem"),
        "key": os.path.join(directory, "key.pem"),
    }


def test_settings_from_env_defaults_to_the_local_socket_without_tls():
    assert settings_from_env({}) == {"base_url": "unix://" + DEFAULT_UNIX_SOCKET, "tls": None}
    assert DEFAULT_UNIX_SOCKET == "/var/run/docker.sock"


def test_settings_from_env_reads_docker_host():
    assert settings_from_env({"DOCKER_HOST": "tcp://m1:2375"}) == {"base_url": "tcp://m1:2375", "tls": None}


def test_settings_from_env_tls_verify_with_cert_path():
    env = {"DOCKER_HOST": "tcp://m1:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/etc/docker/client"}
    assert settings_from_env(env) == {
        "base_url": "tcp://m1:2376",
        "tls": dict(verify=True, **_pems("/etc/docker/client")),
    }


def test_settings_from_env_empty_tls_verify_means_off():
    assert settings_from_env({"DOCKER_TLS_VERIFY": ""})["tls"] is None


def test_settings_from_env_cert_path_alone_means_tls_without_verify():
    assert settings_from_env({"DOCKER_CERT_PATH": "/certs"})["tls"] == dict(verify=False, **_pems("/certs"))


def test_settings_from_env_uses_home_when_no_cert_path():
    tls = settings_from_env({"DOCKER_TLS_VERIFY": "1", "HOME": "/home/ops"})["tls"]
    assert tls == dict(verify=True, **_pems("/home/ops/.docker"))


def test_settings_from_env_empty_cert_path_falls_back_to_home():
    tls = settings_from_env({"DOCKER_TLS_VERIFY": "yes", "DOCKER_CERT_PATH": "", "HOME": "/root"})["tls"]
    assert tls == dict(verify=True, **_pems("/root/.docker"))


# --- version_prefix / build_path --------------------------------------------------------------


@pytest.mark.parametrize(
    "value, prefix",
    [("auto", ""), (None, ""), ("", ""), ("1.41", "/v1.41"), ("v1.41", "/v1.41"), (" 1.45 ", "/v1.45")],
)
def test_version_prefix(value, prefix):
    assert version_prefix(value) == prefix


@pytest.mark.parametrize("value", ["latest", "1", "1.41.2", "v1.x", "41"])
def test_version_prefix_rejects(value):
    with pytest.raises(EngineConfigError) as err:
        version_prefix(value)
    assert f"api_version {value!r} is not an Engine API version" in str(err.value)


@pytest.mark.parametrize(
    "template, args, params, expected",
    [
        ("/info", (), None, "/info"),
        ("/services/{0}/update", ("abc",), {"version": 3}, "/services/abc/update?version=3"),
        (
            "/distribution/{0}/json",
            ("reg.example:5000/team/app:1@sha256:0123abcd",),
            None,
            "/distribution/reg.example:5000/team/app:1@sha256:0123abcd/json",
        ),
        ("/networks/{0}", ("my net",), None, "/networks/my%20net"),
        ("/secrets/{0}", ("a?b#c&d",), None, "/secrets/a%3Fb%23c%26d"),
        ("/services/{0}", (42,), None, "/services/42"),
        (
            "/services",
            (),
            {"filters": {"label": ["com.docker.stack.namespace=st"]}},
            "/services?filters=%7B%22label%22%3A+%5B%22com.docker.stack.namespace%3Dst%22%5D%7D",
        ),
        (
            "/x",
            (),
            {"ids": ["b", "a"], "z": {"b": 1, "a": 2}},
            "/x?ids=%5B%22b%22%2C+%22a%22%5D&z=%7B%22a%22%3A+2%2C+%22b%22%3A+1%7D",
        ),
        ("/x", (), {}, "/x"),
    ],
)
def test_build_path(template, args, params, expected):
    assert build_path(template, *args, params=params) == expected


# --- EngineHTTP against the FakeEngine --------------------------------------------------------


def test_get_decodes_json(fake_engine):
    client = EngineHTTP(f"unix://{fake_engine.socket_path}")
    info = client.get("/info")
    client.close()
    assert info == {
        "SystemTime": "2026-11-26T20:00:00Z",
        "Swarm": {"LocalNodeState": "active", "ControlAvailable": True, "NodeID": "node1"},
    }
    method, path, query, body, headers = fake_engine.requests[0]
    assert (method, path, query, body) == ("GET", "/info", {}, None)
    assert (headers["Host"], headers["Accept"]) == ("docker", "application/json")


def test_404_raises_engine_api_error_with_the_engines_message(fake_engine):
    client = EngineHTTP(f"unix://{fake_engine.socket_path}")
    with pytest.raises(EngineAPIError) as err:
        client.get("/services/nope")
    client.close()
    assert (err.value.status, err.value.explanation) == (404, "service nope not found")
    assert (err.value.method, err.value.path) == ("GET", "/services/nope")
    assert str(err.value) == "404 GET /services/nope: service nope not found"


def test_post_sends_json_and_delete_returns_none(fake_engine):
    client = EngineHTTP(f"unix://{fake_engine.socket_path}")
    created = client.post("/networks/create", body={"Name": "st_default", "Driver": "overlay"})
    assert created == {"Id": "net1", "Warning": ""}
    assert client.delete("/networks/net1") is None
    client.close()
    post = fake_engine.requests[0]
    assert (post[0], post[1], post[3]) == ("POST", "/networks/create", {"Name": "st_default", "Driver": "overlay"})
    assert post[4]["Content-Type"] == "application/json"
    assert fake_engine.writes() == [("POST", "/networks/create"), ("DELETE", "/networks/net1")]


def test_one_connection_serves_several_requests(fake_engine):
    client = EngineHTTP(f"unix://{fake_engine.socket_path}")
    client.get("/info")
    client.get("/services")
    with pytest.raises(EngineAPIError):
        client.get("/nowhere")
    client.get("/networks")
    client.close()
    assert [p for _m, p, _q, _b, _h in fake_engine.requests] == ["/info", "/services", "/nowhere", "/networks"]
    assert fake_engine.connections == 1


def test_version_prefix_reaches_the_server(fake_engine):
    client = EngineHTTP(f"unix://{fake_engine.socket_path}", api_version="1.41")
    client.get(build_path("/services", params={"filters": {"label": ["a=b"]}}))
    client.close()
    _m, path, query, _b, _h = fake_engine.requests[0]
    assert (path, query) == ("/v1.41/services", {"filters": '{"label": ["a=b"]}'})


def test_engine_api_error_path_has_no_version_prefix(fake_engine):
    client = EngineHTTP(f"unix://{fake_engine.socket_path}", api_version="v1.44")
    with pytest.raises(EngineAPIError) as err:
        client.get("/services/x")
    client.close()
    assert (err.value.status, err.value.path) == (404, "/services/x")
    assert fake_engine.requests[0][1] == "/v1.44/services/x"


# --- a raw unix-socket server for the HTTP edge cases -----------------------------------------


def _response(status, reason, headers=(), body=b""):
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _json_response(body, status=200, reason="OK"):
    return _response(status, reason, [("Content-Type", "application/json"), ("Content-Length", len(body))], body)


class RawServer:
    """Reads HTTP/1.1 requests and answers with what ``respond(conn_no, method, path)`` returns:
    (bytes, keep_open), or (None, _) to never answer.  keep_open=False closes the connection without
    saying so (no Connection: close), as an engine restart or idle timeout would."""

    def __init__(self, socket_path, respond):
        self.socket_path = socket_path
        self.requests = []  # (conn_no, method, path, body)
        self.connections = 0
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.stop = threading.Event()
        raw = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with raw.lock:
                    raw.connections += 1
                    conn_no = raw.connections
                while True:
                    line = self.rfile.readline()
                    if not line.strip():
                        return
                    method, target, _version = line.decode("latin-1").split(" ", 2)
                    headers = {}
                    while True:
                        header_line = self.rfile.readline()
                        if header_line in (b"\r\n", b"\n", b""):
                            break
                        key, _sep, value = header_line.decode("latin-1").partition(":")
                        headers[key.strip().lower()] = value.strip()
                    body = self.rfile.read(int(headers.get("content-length") or 0))
                    with raw.lock:
                        raw.requests.append((conn_no, method, target, body))
                    answer, keep_open = respond(conn_no, method, target)
                    if answer is None:
                        raw.stop.wait(10)
                        return
                    self.wfile.write(answer)
                    if not keep_open:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        raw.closed.set()
                        return

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(socket_path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def raw_server(tmp_path):
    servers = []

    def start(respond):
        server = RawServer(str(tmp_path / f"raw{len(servers)}.sock"), respond)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_chunked_json_response_is_decoded(raw_server):
    chunks = [b'{"Services": [', b'"a", "b"', b'], "n": 2}']
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    answer = _response(200, "OK", [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")], body)
    server = raw_server(lambda conn, method, path: (answer, True))
    client = EngineHTTP(f"unix://{server.socket_path}")
    assert client.get("/services") == {"Services": ["a", "b"], "n": 2}
    assert client.get("/services") == {"Services": ["a", "b"], "n": 2}
    client.close()
    assert server.connections == 1


def test_non_json_error_body_becomes_the_explanation(raw_server):
    text = b"plugin \xe2\x80\x9cx\xe2\x80\x9d crashed\n"
    answer = _response(
        500, "Internal Server Error", [("Content-Type", "text/plain"), ("Content-Length", len(text))], text
    )
    server = raw_server(lambda conn, method, path: (answer, True))
    client = EngineHTTP(f"unix://{server.socket_path}")
    with pytest.raises(EngineAPIError) as err:
        client.post("/services/create", body={"Name": "x"})
    client.close()
    assert (err.value.status, err.value.explanation) == (500, "plugin \u201cx\u201d crashed")


def test_empty_error_body_falls_back_to_the_reason(raw_server):
    answer = _response(503, "Service Unavailable", [("Content-Length", 0)])
    server = raw_server(lambda conn, method, path: (answer, True))
    client = EngineHTTP(f"unix://{server.socket_path}")
    with pytest.raises(EngineAPIError) as err:
        client.get("/info")
    client.close()
    assert (err.value.status, err.value.explanation) == (503, "Service Unavailable")


def test_non_json_success_body_is_returned_as_text(raw_server):
    answer = _response(200, "OK", [("Content-Type", "text/plain"), ("Content-Length", 2)], b"OK")
    server = raw_server(lambda conn, method, path: (answer, True))
    client = EngineHTTP(f"unix://{server.socket_path}")
    assert client.get("/_ping") == "OK"
    client.close()


def test_connection_close_header_opens_a_new_connection(raw_server):
    answer = _response(
        200, "OK", [("Content-Type", "application/json"), ("Content-Length", 2), ("Connection", "close")], b"{}"
    )
    server = raw_server(lambda conn, method, path: (answer, False))
    client = EngineHTTP(f"unix://{server.socket_path}")
    assert client.get("/a") == {}
    assert client._conn is None
    assert client.post("/b") == {}
    client.close()
    assert [(c, m, p) for c, m, p, _b in server.requests] == [(1, "GET", "/a"), (2, "POST", "/b")]


def _close_after_first_answer(conn, method, path):
    return _json_response(b'{"conn": %d}' % conn), conn != 1


def test_get_is_retried_when_the_kept_alive_connection_was_closed(raw_server):
    server = raw_server(_close_after_first_answer)
    client = EngineHTTP(f"unix://{server.socket_path}")
    assert client.get("/first") == {"conn": 1}
    assert server.closed.wait(5)
    assert client.get("/second") == {"conn": 2}
    assert client.get("/third") == {"conn": 2}
    client.close()
    assert server.connections == 2
    assert [(c, m, p) for c, m, p, _b in server.requests] == [
        (1, "GET", "/first"),
        (2, "GET", "/second"),
        (2, "GET", "/third"),
    ]


def test_post_is_not_retried_when_the_kept_alive_connection_was_closed(raw_server):
    server = raw_server(_close_after_first_answer)
    client = EngineHTTP(f"unix://{server.socket_path}")
    assert client.get("/first") == {"conn": 1}
    assert server.closed.wait(5)
    with pytest.raises((http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
        client.post("/services/create", body={"Name": "x"})
    assert server.connections == 1
    assert client._conn is None
    # the next request starts afresh on a new connection
    assert client.get("/after") == {"conn": 2}
    client.close()
    assert [(c, m, p) for c, m, p, _b in server.requests] == [(1, "GET", "/first"), (2, "GET", "/after")]


def test_a_fresh_get_is_not_retried(raw_server):
    server = raw_server(lambda conn, method, path: (_json_response(b"{}"), False) if conn > 1 else (b"", False))
    client = EngineHTTP(f"unix://{server.socket_path}")
    with pytest.raises(http.client.RemoteDisconnected):
        client.get("/info")
    client.close()
    assert server.connections == 1


def test_an_engine_that_never_answers_times_out(raw_server):
    server = raw_server(lambda conn, method, path: (None, False))
    client = EngineHTTP(f"unix://{server.socket_path}", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(OSError) as err:
        client.get("/info")
    elapsed = time.monotonic() - started
    assert isinstance(err.value, (socket.timeout, TimeoutError))
    assert 0.25 <= elapsed < 2.0
    assert client._conn is None
    assert connection_problem(err.value, client) == (
        f"the Docker engine at unix://{server.socket_path} did not answer within 0.3s; if managers are down, the "
        "swarm may have lost its quorum: check 'docker node ls' on a manager"
    )


# --- connection_problem -----------------------------------------------------------------------


def test_connection_problem_for_a_missing_socket(tmp_path):
    client = EngineHTTP(f"unix://{tmp_path}/missing.sock")
    with pytest.raises(FileNotFoundError) as err:
        client.get("/info")
    message = connection_problem(err.value, client)
    assert message.startswith(f"cannot connect to the Docker engine at unix://{tmp_path}/missing.sock: ")
    assert "No such file or directory" in message
    assert message.endswith("; is dockerd running and is docker_host right?")


def test_connection_problem_for_tls_errors():
    client = EngineHTTP("https://m1:2376")
    message = connection_problem(ssl.SSLError(1, "certificate verify failed"), client)
    assert message.startswith("TLS with the Docker engine at https://m1:2376 failed: ")
    assert "certificate verify failed" in message
    assert "DOCKER_CERT_PATH" in message


def test_connection_problem_is_none_for_other_errors():
    client = EngineHTTP("tcp://m1:2375")
    assert connection_problem(ValueError("x"), client) is None
    assert connection_problem(EngineAPIError(500, "boom"), client) is None


# --- client_from_params -----------------------------------------------------------------------

TLS_ENV = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs"}


def test_client_from_params_applies_env_tls_to_tcp():
    client = client_from_params({"docker_host": "tcp://m1:2376"}, TLS_ENV)
    assert client.address == {"scheme": "tcp", "host": "m1", "port": 2376, "tls": None}
    assert client.tls == dict(verify=True, **_pems("/certs"))
    assert (client.base_url, client.prefix, client.timeout) == ("tcp://m1:2376", "", 60)


def test_client_from_params_applies_env_tls_to_https():
    assert client_from_params({"docker_host": "https://m1"}, TLS_ENV).tls == dict(verify=True, **_pems("/certs"))


def test_client_from_params_https_without_env_tls_verifies_by_default():
    client = client_from_params({"docker_host": "https://m1"}, {})
    assert client.tls == {"verify": True, "ca": None, "cert": None, "key": None}


@pytest.mark.parametrize("host", ["unix:///run/docker.sock", "/run/docker.sock", "http://m1:2375"])
def test_client_from_params_no_tls_for_unix_or_http(host):
    assert client_from_params({"docker_host": host}, TLS_ENV).tls is None


def test_client_from_params_falls_back_to_the_environment():
    env = dict(TLS_ENV, DOCKER_HOST="tcp://m2:2376")
    client = client_from_params({"docker_host": None, "api_version": "1.43", "timeout": 5}, env)
    assert (client.base_url, client.prefix, client.timeout) == ("tcp://m2:2376", "/v1.43", 5)
    assert client.tls == dict(verify=True, **_pems("/certs"))


def test_client_from_params_rejects_a_bad_api_version():
    with pytest.raises(EngineConfigError, match="api_version '2' is not"):
        client_from_params({"docker_host": "tcp://m1:2375", "api_version": "2"}, {})


@pytest.mark.parametrize("host", ["TCP://m1:2376", "m1:2376"])
def test_client_from_params_applies_tls_to_every_tcp_spelling(host):
    client = client_from_params({"docker_host": host}, TLS_ENV)
    assert client.address["scheme"] == "tcp"
    assert client.tls == dict(verify=True, **_pems("/certs"))


def _request_error(host, env):
    client = client_from_params({"docker_host": host, "timeout": 1}, env)
    with pytest.raises(Exception) as err:
        client.get("/info")
    return err.value


def test_missing_client_certificate_names_docker_cert_path(tmp_path):
    # DOCKER_CERT_PATH alone: TLS without verification, so only cert.pem/key.pem are needed.
    err = _request_error("tcp://127.0.0.1:9", {"DOCKER_CERT_PATH": str(tmp_path)})
    assert isinstance(err, EngineConfigError)
    assert str(err) == (
        f"TLS file {tmp_path}/cert.pem not found; set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and "
        "key.pem (default ~/.docker), or unset DOCKER_TLS_VERIFY/DOCKER_CERT_PATH for a plain connection"
    )


def test_missing_client_key_names_docker_cert_path(tmp_path):
    (tmp_path / "cert.pem").write_text("not used")
    err = _request_error("tcp://127.0.0.1:9", {"DOCKER_CERT_PATH": str(tmp_path)})
    assert isinstance(err, EngineConfigError)
    assert "DOCKER_CERT_PATH" in str(err)
    assert f"TLS file {tmp_path}/key.pem not found" in str(err)


def _a_ca_bundle():
    for candidate in (ssl.get_default_verify_paths().cafile, ssl.get_default_verify_paths().openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    pytest.skip("no CA bundle on this host")


def test_missing_client_certificate_with_verify_names_docker_cert_path(tmp_path):
    shutil.copy(_a_ca_bundle(), tmp_path / "ca.pem")
    err = _request_error("tcp://127.0.0.1:9", {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)})
    assert isinstance(err, EngineConfigError)
    assert f"TLS file {tmp_path}/cert.pem not found" in str(err)


def test_missing_cert_directory_with_verify_names_docker_cert_path(tmp_path):
    missing = tmp_path / "no-such-dir"
    err = _request_error("tcp://127.0.0.1:9", {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(missing)})
    assert isinstance(err, EngineConfigError)
    assert "DOCKER_CERT_PATH" in str(err) and f"{missing}/ca.pem" in str(err)
