# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small Docker Engine API client on the Python standard library.

Why not the Docker SDK: swarm_stack's no-op run makes a handful of GET requests, and importing the
SDK (requests, urllib3, websocket, paramiko probes) cost more than all of them together.  This
client speaks HTTP/1.1 over the engine's unix socket, or TCP with optional TLS, keeps one
connection open for all requests of a run, and reads ``DOCKER_HOST`` / ``DOCKER_TLS_VERIFY`` /
``DOCKER_CERT_PATH`` the way the docker CLI does.

Without an explicit API version the requests are unversioned, which the engine answers with its
own current API version (no negotiation request).

This file is shipped to managed nodes as source: swarm_stack's read-only probe
(``_stack_probe.remote_script``) sends it, with ``inspect.getsource``, inside a ``python3 -c``
command.  It must stay standard-library only and import nothing from the collection (nor from
Ansible); the modules' connection options it reads are ``_docker_api.DOCKER_COMMON_ARGS``.
"""

import http.client
import json
import os
import re
import socket
import ssl
import urllib.parse

DEFAULT_UNIX_SOCKET = "/var/run/docker.sock"
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)$")


class EngineAPIError(Exception):
    """The engine answered with an HTTP error status.  ``explanation`` is the engine's own message."""

    def __init__(self, status, explanation, method="", path=""):
        super().__init__(f"{status} {method} {path}: {explanation}".strip())
        self.status = status
        self.explanation = explanation
        self.method = method
        self.path = path


class EngineConfigError(ValueError):
    """docker_host / api_version / TLS settings that cannot work; the message says how to fix them."""


def parse_base_url(url):
    """'unix:///run/docker.sock' | 'tcp://host:2376' | 'https://host:2376' | 'http://host:2375'
    -> {"scheme": "unix", "path": ...} or {"scheme": "tcp", "host": ..., "port": ..., "tls": bool|None}.

    ``tls`` is True for https://, False for http:// and None for tcp:// (decided by the TLS settings).
    """
    text = (url or "").strip()
    if not text:
        raise EngineConfigError("docker_host is empty; expected e.g. unix:///var/run/docker.sock or tcp://HOST:2376")
    if text.startswith("unix://"):
        path = text[len("unix://") :]
        if not path:
            raise EngineConfigError(f"docker_host {url!r} names no socket; expected unix:///var/run/docker.sock")
        return {"scheme": "unix", "path": path if path.startswith("/") else "/" + path}
    if text.startswith("/"):
        return {"scheme": "unix", "path": text}
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    scheme = scheme.lower()
    if scheme not in ("tcp", "http", "https"):
        raise EngineConfigError(
            f"docker_host {url!r}: scheme {scheme}:// is not supported; expected unix://PATH, tcp://HOST:PORT, "
            "http://HOST:PORT or https://HOST:PORT. For ssh:// run the task on the manager itself (delegate_to) "
            "and leave docker_host unset."
        )
    parsed = urllib.parse.urlsplit("//" + rest)
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if not parsed.hostname or port == -1 or parsed.path not in ("", "/"):
        raise EngineConfigError(f"docker_host {url!r} is not HOST:PORT; expected e.g. tcp://10.0.0.1:2376")
    tls = {"tcp": None, "http": False, "https": True}[scheme]
    if port is None:
        port = 2376 if tls else 2375
    return {"scheme": "tcp", "host": parsed.hostname, "port": port, "tls": tls}


def settings_from_env(environ):
    """The engine address and TLS settings from the environment, as the docker CLI reads them.

    Returns {"base_url": ..., "tls": None | {"verify": bool, "ca": path|None, "cert": path|None, "key": path|None}}.
    TLS is on when DOCKER_TLS_VERIFY is set to a non-empty value or DOCKER_CERT_PATH is set; the
    certificates (ca.pem, cert.pem, key.pem) come from DOCKER_CERT_PATH or ~/.docker.
    """
    base_url = environ.get("DOCKER_HOST") or "unix://" + DEFAULT_UNIX_SOCKET
    verify_env = environ.get("DOCKER_TLS_VERIFY")
    verify = verify_env is not None and verify_env != ""
    cert_path = environ.get("DOCKER_CERT_PATH") or ""
    if not (verify or cert_path):
        return {"base_url": base_url, "tls": None}
    cert_path = cert_path or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".docker")
    return {
        "base_url": base_url,
        "tls": {
            "verify": verify,
            "ca": os.path.join(cert_path, "ca.pem"),
            "cert": os.path.join(cert_path, "cert.pem"),
            "key": os.path.join(cert_path, "key.pem"),
        },
    }


def version_prefix(api_version):
    """'auto' / None -> '' (unversioned: the engine's current API); '1.41' or 'v1.41' -> '/v1.41'."""
    if api_version in (None, "", "auto"):
        return ""
    match = _VERSION_RE.match(str(api_version).strip())
    if not match:
        raise EngineConfigError(
            f"api_version {api_version!r} is not an Engine API version; expected 'auto' or MAJOR.MINOR such as 1.41"
        )
    return "/v{}.{}".format(*match.groups())


def build_path(template, *args, params=None):
    """'/services/{0}/update', 'id' -> '/services/id/update?version=3'; arguments are percent-quoted
    (slashes and colons stay, as image references need them)."""
    path = template.format(*(urllib.parse.quote(str(a), safe="/:@") for a in args))
    if params:
        query = {k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v) for k, v in params.items()}
        path += "?" + urllib.parse.urlencode(query)
    return path


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _ssl_context(tls):
    for key in ("ca", "cert", "key"):
        if tls.get(key) and not os.path.exists(tls[key]) and (key != "ca" or tls.get("verify")):
            raise EngineConfigError(
                f"TLS file {tls[key]} not found; set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and "
                "key.pem (default ~/.docker), or unset DOCKER_TLS_VERIFY/DOCKER_CERT_PATH for a plain connection"
            )
    if tls.get("verify"):
        context = ssl.create_default_context(cafile=tls.get("ca") if tls.get("ca") else None)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.get("cert"):
        context.load_cert_chain(tls["cert"], tls.get("key"))
    return context


class EngineHTTP:
    """One engine, one keep-alive connection.  ``request`` returns the decoded JSON body (or None)."""

    def __init__(self, base_url, api_version="auto", timeout=60, tls=None):
        self.address = parse_base_url(base_url)
        self.base_url = base_url
        self.prefix = version_prefix(api_version)
        self.timeout = timeout
        self.tls = tls
        if self.address["scheme"] == "tcp" and self.address["tls"] is True and tls is None:
            self.tls = {"verify": True, "ca": None, "cert": None, "key": None}
        if self.address["scheme"] == "tcp" and self.address["tls"] is False:
            self.tls = None
        self._conn = None

    def _connection(self):
        if self._conn is None:
            if self.address["scheme"] == "unix":
                self._conn = _UnixHTTPConnection(self.address["path"], self.timeout)
            elif self.tls:
                self._conn = http.client.HTTPSConnection(
                    self.address["host"], self.address["port"], timeout=self.timeout, context=_ssl_context(self.tls)
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self.address["host"], self.address["port"], timeout=self.timeout
                )
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method, path, body=None, headers=None):
        """Send one request; ``path`` from :func:`build_path`, ``body`` is sent as JSON."""
        send_headers = {"Host": "docker", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        if payload is not None or method in ("POST", "PUT"):
            send_headers["Content-Length"] = str(len(payload or b""))
        send_headers.update(headers or {})
        full = self.prefix + path
        # A kept-alive connection the engine closed in between fails before any answer; reads are safe
        # to send again, writes are not (a create might have happened).
        attempts = 2 if method in ("GET", "HEAD") and self._conn is not None else 1
        for attempt in range(attempts):
            conn = self._connection()
            try:
                conn.request(method, full, body=payload, headers=send_headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == attempts - 1:
                    raise
            except Exception:
                self.close()
                raise
        if response.will_close:
            self.close()
        if response.status >= 400:
            raise EngineAPIError(response.status, _error_text(data, response.reason), method, path)
        if not data:
            return None
        if (response.getheader("Content-Type") or "").startswith("application/json"):
            return json.loads(data.decode("utf-8"))
        return data.decode("utf-8", "replace")

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None, headers=None):
        return self.request("POST", path, body=body, headers=headers)

    def delete(self, path):
        return self.request("DELETE", path)


def _error_text(data, reason):
    text = data.decode("utf-8", "replace").strip() if data else ""
    try:
        message = json.loads(text).get("message")
    except (ValueError, AttributeError):
        message = None
    return message or text or reason or "no message"


def client_from_params(params, environ):
    """EngineHTTP from the modules' docker_host / api_version / timeout options and the environment."""
    if params.get("docker_host"):
        address = parse_base_url(params["docker_host"])
        tls = settings_from_env(environ)["tls"] if address["scheme"] == "tcp" and address["tls"] is not False else None
        settings = {"base_url": params["docker_host"], "tls": tls}
    else:
        settings = settings_from_env(environ)
    return EngineHTTP(
        settings["base_url"], params.get("api_version") or "auto", params.get("timeout") or 60, settings["tls"]
    )


def connection_problem(exc, client):
    """A user's message for an OSError talking to the engine, or None for other errors."""
    where = client.base_url
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return (
            f"the Docker engine at {where} did not answer within {client.timeout}s; if managers are down, the swarm "
            "may have lost its quorum: check 'docker node ls' on a manager"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS with the Docker engine at {where} failed: {exc}; check DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) "
            "and DOCKER_TLS_VERIFY"
        )
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError, PermissionError, ConnectionError, OSError)):
        return f"cannot connect to the Docker engine at {where}: {exc}; is dockerd running and is docker_host right?"
    return None
