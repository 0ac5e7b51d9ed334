# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker Engine connection options, declared once (community.docker's common-args pattern).

Documented in ``plugins/doc_fragments/docker_api.py``; every module that talks to the engine
(swarm_stack, swarm_stack_info) merges :data:`DOCKER_COMMON_ARGS` into its argument spec, and
swarm_stack's read-only probe forwards exactly these options to the node
(``_engine_http.client_from_params`` reads them there).  A new connection option is added here, in
the doc fragment and in ``client_from_params``.
"""

DOCKER_COMMON_ARGS = dict(
    docker_host=dict(type="str"),
    api_version=dict(type="str", default="auto"),
    timeout=dict(type="int", default=60),
)


def connection_params(params):
    """The connection options out of a module's validated parameters."""
    return {key: params.get(key) for key in DOCKER_COMMON_ARGS}
