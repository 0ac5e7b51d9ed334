# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Registry credentials for the X-Registry-Auth header, read from the docker CLI's config.json.

Lookup order for a registry (as the docker CLI does it): ``credHelpers[registry]``, then an
``auths`` entry (``auth`` = base64 "user:password", or ``identitytoken``), then ``credsStore``.
Credential helpers are programs ``docker-credential-<name>`` that read the server address on stdin
and print {"ServerURL", "Username", "Secret"}; running them is injected (``run_helper``) so this
module stays pure.
"""

import base64
import json
import os

from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure

DOCKER_HUB = "docker.io"
DOCKER_HUB_INDEX = "https://index.docker.io/v1/"


class RegistryAuthError(ModuleFailure):
    """The docker client configuration or a credential helper cannot give the credentials; the message says why."""


def registry_of(image):
    """'reg.example:5000/team/app:1' -> 'reg.example:5000'; 'library/busybox', 'busybox' -> 'docker.io'."""
    name = image.split("@", 1)[0]
    first, sep, _rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return _normalise(first)
    return DOCKER_HUB


def _normalise(key):
    """config.json keys may be URLs ('https://reg:5000/v2/'); compare by host[:port]."""
    text = key
    if "://" in text:
        text = text.split("://", 1)[1]
    host = text.split("/", 1)[0]
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return DOCKER_HUB
    return host


def config_path(environ):
    base = environ.get("DOCKER_CONFIG") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def parse_config(text, path="config.json"):
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise RegistryAuthError(
            f"{path} is not valid JSON ({exc}); fix or remove it (docker login rewrites it)"
        ) from None
    if not isinstance(data, dict):
        raise RegistryAuthError(
            f"{path} must hold a JSON object; fix or remove it (docker login rewrites it)"
        ) from None
    return data


def credentials(config, registry, run_helper):
    """{"username", "password"} or {"identitytoken"} (plus "serveraddress") for ``registry``, or None."""
    server = DOCKER_HUB_INDEX if registry == DOCKER_HUB else registry
    helpers = {_normalise(k): v for k, v in (config.get("credHelpers") or {}).items()}
    if registry in helpers:
        return _from_helper(helpers[registry], server, run_helper)
    for key, entry in (config.get("auths") or {}).items():
        if _normalise(key) != registry or not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            return {"identitytoken": entry["identitytoken"], "serveraddress": server}
        if entry.get("auth"):
            try:
                user, sep, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                sep = ""
            if not sep:
                raise RegistryAuthError(
                    f"the 'auth' entry for {key} in the docker config is not base64 of user:password; run "
                    f"'docker login {registry}' again"
                )
            return {"username": user, "password": password, "serveraddress": server}
        if entry.get("username"):
            return {"username": entry["username"], "password": entry.get("password", ""), "serveraddress": server}
    if config.get("credsStore"):
        return _from_helper(config["credsStore"], server, run_helper)
    return None


def _from_helper(name, server, run_helper):
    program = f"docker-credential-{name}"
    rc, out, err = run_helper(program, server)
    if rc != 0:
        if "credentials not found" in (out + err).lower():
            return None
        raise RegistryAuthError(f"{program} get failed for {server} (rc={rc}): {(err or out).strip()}")
    try:
        answer = json.loads(out)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise RegistryAuthError(f"{program} get printed no JSON object for {server}; check the helper ({program})")
    if answer.get("Username") == "<token>":
        return {"identitytoken": answer.get("Secret", ""), "serveraddress": server}
    return {"username": answer.get("Username", ""), "password": answer.get("Secret", ""), "serveraddress": server}


def header(creds):
    """The X-Registry-Auth header value: URL-safe base64 of the JSON credentials."""
    return base64.urlsafe_b64encode(json.dumps(creds, sort_keys=True).encode("utf-8")).decode("ascii")


def auth_lookup(environ, read_file, run_helper):
    """A callable image -> X-Registry-Auth header (or None), reading the docker config once, when first needed."""
    cache = {}

    def lookup(image):
        if "config" not in cache:
            path = config_path(environ)
            try:
                text = read_file(path)
            except FileNotFoundError:
                text = ""
            cache["config"] = parse_config(text, path)
        registry = registry_of(image)
        if registry not in cache:
            creds = credentials(cache["config"], registry, run_helper)
            cache[registry] = header(creds) if creds else None
        return cache[registry]

    return lookup
