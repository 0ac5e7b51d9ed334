# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connection options of the modules that talk to the Docker Engine API (stdlib client, no Docker SDK).

Their argument spec is ``plugins/module_utils/_docker_api.py`` (``DOCKER_COMMON_ARGS``): change both together.
"""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The engine to talk to, V(unix:///run/docker.sock), V(tcp://10.0.0.1:2376), V(https://10.0.0.1:2376) or
        V(http://127.0.0.1:2375). C(ssh://) is not supported; run the task on the manager instead (C(delegate_to)).
      - When not set, E(DOCKER_HOST) of the managed node is used, and without it the local socket
        C(unix:///var/run/docker.sock).
      - For C(tcp://) addresses, TLS is used as the docker CLI does it, when E(DOCKER_TLS_VERIFY) is set to a non-empty
        value (verify the engine against C(ca.pem)) or E(DOCKER_CERT_PATH) is set; C(ca.pem), C(cert.pem) and
        C(key.pem) are read from E(DOCKER_CERT_PATH), default C(~/.docker). V(https://) always uses TLS.
    type: str
  api_version:
    description:
      - Engine API version to speak, for example V(1.41). V(auto) sends unversioned requests, which the engine
        answers with its own current API version (no extra request).
    type: str
    default: auto
  timeout:
    description:
      - Timeout in seconds of one Engine API request.
    type: int
    default: 60
notes:
  - The Engine API is spoken with the Python standard library (HTTP/1.1 over the engine's socket, one connection per
    run); neither the Docker SDK for Python nor the C(docker) CLI is needed on the managed node.
"""
