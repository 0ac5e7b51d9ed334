# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that check addresses before they reach a configuration file (docs in address_problems.yml and
address_scope.yml)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

KINDS = ("network", "listen", "hostport")

_DIGITS = re.compile(r"[0-9]+")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_SEPARATORS = re.compile(r"[\s,;]+")
_EXAMPLE = {"network": "10.0.0.0/24", "listen": "10.0.0.1", "hostport": "gateway:8080"}


def _ipv4_reason(text):
    """Why ``text`` is not a dotted-quad IPv4 address, or None when it is one."""
    parts = text.split(".")
    if len(parts) != 4:
        return f"an IPv4 address has 4 numbers separated by dots, this has {len(parts)}"
    for part in parts:
        if part == "":
            return "it has an empty part between two dots"
        if not _DIGITS.fullmatch(part):
            return f"'{part}' is not a number"
        if len(part) > 1 and part[0] == "0":
            return f"'{part}' has a leading zero (some tools read it as octal); write {int(part)}"
        if int(part) > 255:
            return f"{part} is above 255"
    return None


def _ipv6_reason(text):
    """Why ``text`` is not an IPv6 address usable by nginx, or None when it is one."""
    if "%" in text:
        return "a zone index (%...) cannot be used here; give the address without it"
    try:
        ipaddress.IPv6Address(text)
    except ValueError as exc:
        reason = str(exc)
        return reason[:1].lower() + reason[1:]
    return None


def _ip(text):
    """``(address, None)`` for an IPv4 or IPv6 address, ``(None, reason)`` otherwise."""
    if ":" in text:
        reason = _ipv6_reason(text)
        return (None, f"'{text}' is not an IPv6 address: {reason}") if reason else (ipaddress.ip_address(text), None)
    reason = _ipv4_reason(text)
    return (None, f"'{text}' is not an IPv4 address: {reason}") if reason else (ipaddress.ip_address(text), None)


def _numeric_host(text):
    """True when ``text`` can only be meant as an IPv4 address: a host name never ends in an all-numeric label."""
    return bool(_DIGITS.fullmatch(text.rsplit(".", 1)[-1]))


def _host_name(text):
    return len(text) <= 253 and all(_LABEL.fullmatch(label) for label in text.split("."))


def _network(value):
    """Problems of one ``allow``/``deny`` entry: an address or a network in CIDR notation (prefix length)."""
    if value == "all":
        return (
            "'all' would open the routes to every client; list the networks that may reach them, or write "
            "0.0.0.0/0 and ::/0 if every client is really meant"
        )
    if value.startswith("["):
        inner = value[1:].split("]", 1)[0]
        return f"brackets belong to listen addresses and URLs, not to networks; write {inner}"
    if value.count("/") > 1:
        return "it has more than one '/'; write address/prefix, e.g. 10.0.0.0/24"
    address, slash, prefix = value.partition("/")
    if address == "":
        return "the address before '/' is missing; write address/prefix, e.g. 10.0.0.0/24"
    # A dotted value that starts or ends with a number is meant as an IPv4 address ("10.0.0.x", "10.0.0.300").
    if ":" not in address and not (_numeric_host(address) or _DIGITS.fullmatch(address.split(".")[0])):
        return "not an IP address or network: nginx's allow takes addresses, not host names"
    ip, reason = _ip(address)
    if reason:
        return reason
    if not slash:
        return None
    limit = ip.max_prefixlen
    family = f"IPv{ip.version}"
    if prefix == "":
        return f"the prefix length after '/' is missing; write e.g. {address}/{limit} for this one address"
    if not _DIGITS.fullmatch(prefix):
        if ip.version == 4 and not _ipv4_reason(prefix):
            try:
                length = ipaddress.IPv4Network(f"0.0.0.0/{prefix}").prefixlen
            except ValueError:
                length = None
            if length is not None:
                return f"nginx takes a prefix length, not a netmask; write {address}/{length}"
        return f"the prefix length '/{prefix}' must be a number from 0 to {limit}"
    length = int(prefix)
    if length > limit:
        return (
            f"the prefix length /{length} is out of range: an {family} prefix is /0 to /{limit} "
            f"(/{limit} is a single address)"
        )
    network = ipaddress.ip_network(f"{ip}/{length}", strict=False)
    if network.network_address != ip:
        return (
            f"host bits are set: {ip} is an address inside the network {network}, and nginx would silently allow "
            f"all of {network}; write {network} for the network, or {ip}/{limit} for this one address"
        )
    return None


def _listen(value):
    """Problems of one listen address (the port is added by the caller): *, IPv4, [IPv6] or a host name."""
    if value == "*":
        return None
    if value.startswith("["):
        inner, closed, rest = value[1:].partition("]")
        if not closed:
            return "the closing ']' is missing; write e.g. [::]"
        if rest:
            return f"'{rest}' after the address: give the address alone, e.g. [{inner}] (the port is set separately)"
        if "/" in inner:
            return f"a listen address is one address, not a network; write e.g. [{inner.split('/')[0]}]"
        reason = _ipv6_reason(inner)
        return f"'{inner}' is not an IPv6 address: {reason}" if reason else None
    if "/" in value:
        return (
            f"a listen address is one address, not a network; write e.g. {value.split('/')[0]} "
            "(or * for every IPv4 address)"
        )
    if value.count(":") == 1:
        host = value.split(":")[0]
        return f"give the address without a port, e.g. {host or '*'} (the port is set separately)"
    if ":" in value:
        reason = _ipv6_reason(value)
        if reason:
            return f"'{value}' is not an IPv6 address: {reason}"
        return f"an IPv6 listen address needs brackets; write [{value}]"
    if _numeric_host(value):
        return _ip(value)[1]
    if not _host_name(value):
        return "not '*', an IPv4 address, an [IPv6] address or a host name"
    return None


def _hostport(value):
    """Problems of one ``host:port`` entry (``[IPv6]:port`` for IPv6)."""
    if "://" in value:
        return f"a URL; give host:port only, e.g. {value.split('://', 1)[1].split('/')[0] or 'gateway:8080'}"
    if value.startswith("["):
        inner, closed, rest = value[1:].partition("]")
        if not closed:
            return "the closing ']' is missing; write [IPv6 address]:port"
        reason = _ipv6_reason(inner)
        if reason:
            return f"'{inner}' is not an IPv6 address: {reason}"
        if not rest.startswith(":"):
            return f"the port is missing; write [{inner}]:8080 (with the real port)"
        port = rest[1:]
    else:
        host, colon, port = value.rpartition(":")
        if not colon:
            return f"the port is missing; write {value}:8080 (with the real port)"
        if ":" in host:
            return "an IPv6 address needs brackets; write [IPv6 address]:port"
        if host == "":
            return "the host is missing; write host:port"
        if _numeric_host(host):
            reason = _ip(host)[1]
            if reason:
                return reason
        elif not _host_name(host):
            return f"'{host}' is neither an IPv4 address nor a host name"
    if not _DIGITS.fullmatch(port) or not 1 <= int(port) <= 65535:
        return f"the port '{port}' must be a number from 1 to 65535"
    return None


_CHECKS = {"network": _network, "listen": _listen, "hostport": _hostport}


def _entry(value, kind):
    """The problem of one entry (a sentence without the entry's name), or None."""
    if not isinstance(value, str):
        return f"is {value!r} ({type(value).__name__}), not a string; quote it, e.g. '{_EXAMPLE[kind]}'"
    if value.strip() == "":
        return "is empty"
    if _SEPARATORS.search(value):
        pieces = [piece for piece in _SEPARATORS.split(value) if piece]
        valid = pieces and all(_CHECKS[kind](piece) is None for piece in pieces)
        if len(pieces) == 1:
            hint = f"remove it: write '{pieces[0]}'" if valid else "remove it"
        else:
            hint = "give each one as its own list item"
            if valid:
                hint += ": " + ", ".join(f"'{piece}'" for piece in pieces)
        return f"'{value}': a comma, semicolon or space is not part of an entry; {hint}"
    problem = _CHECKS[kind](value)
    return f"'{value}': {problem}" if problem else None


def address_problems(values, name="value", kind="network"):
    """One sentence per entry of ``values`` that is not a valid address of ``kind``; empty when all are."""
    if kind not in KINDS:
        raise AnsibleFilterError(f"address_problems: kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if values is None:
        return [f"{name} is not set (null); give a list, e.g. ['{_EXAMPLE[kind]}']"]
    if isinstance(values, str):
        pieces = [piece for piece in _SEPARATORS.split(values) if piece] or [_EXAMPLE[kind]]
        return [f"{name} is a string, not a list; write {name}: [{', '.join(repr(p) for p in pieces)}]"]
    if isinstance(values, Mapping) or not hasattr(values, "__iter__"):
        return [f"{name} must be a list, e.g. ['{_EXAMPLE[kind]}']; got {type(values).__name__} {values!r}"]
    problems = []
    for index, value in enumerate(values):
        problem = _entry(value, kind)
        if problem:
            problems.append(f"{name}[{index}] {problem}")
    return problems


# Ranges that the internet does not route to a host: the swarm role lets its control and data traffic use them
# without an opt-in. Anything else (including documentation ranges such as 192.0.2.0/24) counts as public.
_PRIVATE_RANGES = (
    ("loopback", ipaddress.ip_network("127.0.0.0/8")),
    ("RFC 1918", ipaddress.ip_network("10.0.0.0/8")),
    ("RFC 1918", ipaddress.ip_network("172.16.0.0/12")),
    ("RFC 1918", ipaddress.ip_network("192.168.0.0/16")),
    ("CGNAT, RFC 6598", ipaddress.ip_network("100.64.0.0/10")),
    ("loopback", ipaddress.ip_network("::1/128")),
    ("ULA, RFC 4193", ipaddress.ip_network("fc00::/7")),
)


def address_scope(value):
    """``public`` or the private range ``value`` is in (``RFC 1918``, ``ULA, RFC 4193``, ``CGNAT, RFC 6598``,
    ``loopback``)."""
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError as exc:
        raise AnsibleFilterError(f"address_scope: {value!r} is not an IPv4 or IPv6 address") from exc
    for scope, network in _PRIVATE_RANGES:
        if address.version == network.version and address in network:
            return scope
    return "public"


class FilterModule:
    """Address filters."""

    def filters(self):
        return {"address_problems": address_problems, "address_scope": address_scope}
