# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The OpenFaaS timeout chain, derived from one number and checked for consistency.

A request passes nginx, the gateway, the provider and the function's watchdog; the async path passes
NATS and the queue-worker. Each hop has a timeout, and a hop that gives up before the one behind it
turns a slow but healthy call into a 502/504 (or, for async calls, a redelivery). The chain that
holds is (all values in seconds):

    function exec_timeout  <=  gateway upstream_timeout  <  gateway read_timeout / write_timeout
                           <   nginx proxy_read_timeout
    queue-worker ack_wait  >=  exec_timeout * max_inflight

``derive`` computes the chain from one timeout (the longest a function may run) and a margin, lets
the user override single links, and ``check`` lists every broken link with the values and the fix.
"""

from __future__ import annotations

import re

LINKS = (
    "function_exec_timeout",
    "gateway_upstream_timeout",
    "gateway_read_timeout",
    "gateway_write_timeout",
    "nginx_proxy_read_timeout",
    "queue_ack_wait",
)

_DURATION = re.compile(r"^\s*(?:(\d+)h)?\s*(?:(\d+)m(?!s))?\s*(?:(\d+)s)?\s*$")


def parse_seconds(value, name="timeout"):
    """Seconds from an int, a digit string or a Go-style duration such as ``1m5s``."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected seconds or a duration like '65s', got {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    elif isinstance(value, str) and value.strip() and _DURATION.match(value):
        hours, minutes, secs = (int(part or 0) for part in _DURATION.match(value).groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError(f"{name}: expected seconds or a duration like '65s' or '1m5s', got {value!r}")
    if seconds <= 0:
        raise ValueError(f"{name}: must be more than 0 seconds, got {value!r}")
    return seconds


def derive(timeout, max_inflight=1, margin=5, overrides=None):
    """The chain for functions that may run ``timeout`` seconds; ``overrides`` replace single links."""
    base = parse_seconds(timeout, "openfaas_timeout")
    margin = parse_seconds(margin, "margin")
    if isinstance(max_inflight, bool) or int(max_inflight) < 1:
        raise ValueError(f"max_inflight: expected a whole number >= 1, got {max_inflight!r}")
    max_inflight = int(max_inflight)
    chain = {
        "function_exec_timeout": base,
        "gateway_upstream_timeout": base,
        "gateway_read_timeout": base + margin,
        "gateway_write_timeout": base + margin,
        "nginx_proxy_read_timeout": base + 2 * margin,
        "queue_ack_wait": base * max_inflight + margin,
    }
    for key, value in (overrides or {}).items():
        if key not in LINKS:
            raise ValueError(f"unknown timeout {key!r}; the chain has: {', '.join(LINKS)}")
        if value is None or value == "":
            continue
        chain[key] = parse_seconds(value, key)
    chain["max_inflight"] = max_inflight
    return chain


def check(chain):
    """Every broken link of ``chain`` as a sentence naming both values and the fix."""
    errors = []

    def need(ok, text):
        if not ok:
            errors.append(text)

    exec_t = chain["function_exec_timeout"]
    upstream = chain["gateway_upstream_timeout"]
    need(
        exec_t <= upstream,
        f"function exec_timeout {exec_t}s is longer than the gateway's upstream_timeout {upstream}s: the gateway "
        f"would cut functions off; raise gateway_upstream_timeout to at least {exec_t}s",
    )
    for link in ("gateway_read_timeout", "gateway_write_timeout"):
        value = chain[link]
        need(
            upstream < value,
            f"gateway upstream_timeout {upstream}s must be shorter than {link} {value}s, so the gateway answers "
            f"with its own error before the connection closes; raise {link} above {upstream}s",
        )
    nginx = chain["nginx_proxy_read_timeout"]
    for link in ("gateway_read_timeout", "gateway_write_timeout"):
        value = chain[link]
        need(
            nginx_outlasts(nginx, value),
            f"nginx proxy_read_timeout {nginx}s must be longer than the gateway's {link} {value}s, or nginx "
            f"returns 504 for calls the gateway still serves; raise nginx_proxy_read_timeout above {value}s",
        )
    ack = chain["queue_ack_wait"]
    inflight = chain.get("max_inflight", 1)
    need(
        ack >= exec_t * inflight,
        f"queue-worker ack_wait {ack}s is shorter than exec_timeout {exec_t}s x max_inflight {inflight}: NATS would "
        f"redeliver async calls that are still running; raise queue_ack_wait to at least {exec_t * inflight}s",
    )
    return errors


def nginx_outlasts(nginx, gateway):
    """The chain's one rule between nginx and the gateway: nginx waits LONGER than the gateway may take.

    Equal values would lose no call either (the gateway arms its write timeout when it has read the request headers,
    nginx arms proxy_read_timeout only after it sent the whole request), but a bound with no margin gains nothing, so
    the chain and gateway_nginx's own settings (``check_nginx``) both ask for more, and both through this function.
    """
    return gateway < nginx


def check_nginx(proxy_read, proxy_send, gateway_write):
    """gateway_nginx's own settings against the gateway's write timeout, by the chain's rule (``nginx_outlasts``):
    one sentence per setting that breaks it, naming both values and the fix; empty when both hold."""
    gateway = parse_seconds(gateway_write, "gateway_nginx_gateway_write_timeout")
    errors = []
    for name, value in (
        ("gateway_nginx_proxy_read_timeout", proxy_read),
        ("gateway_nginx_proxy_send_timeout", proxy_send),
    ):
        seconds = parse_seconds(value, name)
        if not nginx_outlasts(seconds, gateway):
            errors.append(
                f"{name} ({seconds} s) must be longer than the gateway's write timeout "
                f"gateway_nginx_gateway_write_timeout ({gateway} s), or nginx answers 504 to functions that the "
                f"gateway still allows to run; raise it above {gateway}"
            )
    return errors


def go_duration(seconds):
    """``65`` -> ``'65s'``, the form the gateway, provider and queue-worker read."""
    return f"{int(seconds)}s"
