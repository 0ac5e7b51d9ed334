# Copyright (c) onmetal.faas contributors
# MIT License (see galaxy.yml)
"""Connection options of the modules that talk to the Docker Engine API through the Docker SDK."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The engine to talk to, as a Docker SDK base URL (C(unix:///run/docker.sock), C(tcp://10.0.0.1:2376)).
      - When not set, the E(DOCKER_HOST), E(DOCKER_TLS_VERIFY) and E(DOCKER_CERT_PATH) environment variables of the
        managed node are used, and without them the local socket C(unix:///var/run/docker.sock).
    type: str
  api_version:
    description:
      - Engine API version to speak. V(auto) asks the engine (one extra request).
    type: str
    default: auto
  timeout:
    description:
      - Timeout in seconds of one Engine API request.
    type: int
    default: 60
requirements:
  - Docker SDK for Python (C(docker)) >= 5.0 on the managed node.
"""
