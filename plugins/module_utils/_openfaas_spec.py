# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The desired OpenFaaS function: validated options -> the body of ``POST``/``PUT /system/functions``.

Pure code, unit-tested without a gateway.  The body is faas-provider's ``FunctionDeployment``
(``service``, ``image``, ``envProcess``, ``envVars``, ``labels``, ``annotations``, ``secrets``,
``constraints``, ``limits``, ``requests``, ``network``, ``readOnlyRootFilesystem``), stamped with a
hash of itself in the label :data:`HASH_LABEL`.  Values are written the way faas-swarm 0.9.0 parses
them, because it drops what it cannot parse with one log line and no error:

* CPU: ``parseCPU`` is ``strconv.ParseInt(value, 10, 64)`` read as nano-CPUs
  (faas-swarm 0.9.0 ``handlers/deploy.go:260-267``, used at ``:290-298`` and ``:319-327``), so the
  cores (``0.5``) and millicores (``500m``) users write are converted here to the integer string
  (``500000000``);
* memory: ``units.RAMInBytes`` (``deploy.go:256-258``), whose pattern allows one optional space
  between number and unit;
* replicas: ``getMinReplicas`` reads ``com.openfaas.scale.min`` with ``strconv.Atoi`` and turns a
  bad value into 0 replicas (``deploy.go:338-351``); the gateway reads ``.max`` and ``.factor`` the
  same way and ignores a factor outside 0..100 (openfaas/faas 11ff356c
  ``gateway/plugin/external.go:96-113``).
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation

from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure

HASH_LABEL = "io.onmetal.faas.spec-hash"
SCALE_MIN_LABEL = "com.openfaas.scale.min"
SCALE_MAX_LABEL = "com.openfaas.scale.max"
SCALE_FACTOR_LABEL = "com.openfaas.scale.factor"
SCALE_ZERO_LABEL = "com.openfaas.scale.zero"
SCALE_ZERO_DURATION_LABEL = "com.openfaas.scale.zero-duration"
# The gateway's defaults when a label is absent (gateway/scaling/ranges.go:5-11).
DEFAULT_SCALE_MIN = 1
DEFAULT_SCALE_MAX = 20
# Labels the Swarm provider adds to every function (deploy.go:354-357, update.go:128); never compared.
PROVIDER_LABELS = frozenset({"function", "com.openfaas.function", "com.openfaas.uid"})
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# go-units RAMInBytes: ^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$ (one optional space, binary units).
MEMORY_RE = re.compile(r"^\d+(\.\d+)? ?([kmgtp]i?b?|b)?$", re.IGNORECASE)
CPU_RE = re.compile(r"^(?P<number>\d+(\.\d+)?|\.\d+)(?P<milli>m?)$")
GO_DURATION_RE = re.compile(r"^((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$")
NANO = 10**9
# Swarm refuses a CPU limit or reservation below 0.001 CPU; above this many cores a value is almost
# certainly nano-CPUs written by someone who knew faas-swarm's format.
MIN_NANO_CPUS = 10**6
MAX_CORES = 1024


class OpenFaaSError(ModuleFailure):
    """A failure with a message meant for the user; ``status``/``body`` when it came from HTTP.

    Its partial result carries ``http_status`` when there is one; :func:`with_result` adds what the
    module had already found out or done.
    """

    def __init__(self, msg, status=None, body=None):
        super().__init__(msg, **({} if status is None else {"http_status": status}))
        self.status = status
        self.body = body

    def with_result(self, result):
        """This error with ``result`` (the module's result so far) as its partial result, ``http_status`` on top."""
        self.result = dict(result, **self.result)
        return self


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _string_map(value, what):
    out = {}
    for key, item in (value or {}).items():
        if item is None or isinstance(item, (dict, list)):
            raise OpenFaaSError(f"{what} '{key}' must be a string, number or boolean, not {type(item).__name__}")
        out[str(key)] = _text(item)
    return out


def nano_cpus(value, what="cpu"):
    """Cores (``0.5``, ``2``) or millicores (``500m``) -> the integer nano-CPU string faas-swarm parses."""
    text = _text(value).strip()
    match = CPU_RE.match(text)
    hint = "write cores (0.5, 2) or millicores (500m); faas-swarm would silently apply no limit to anything else"
    if not match:
        raise OpenFaaSError(f"{what} '{value}' is not a CPU amount; {hint}")
    try:
        cores = Decimal(match.group("number"))
    except InvalidOperation:  # pragma: no cover - the pattern only lets decimals through
        raise OpenFaaSError(f"{what} '{value}' is not a CPU amount; {hint}") from None
    if match.group("milli"):
        cores = cores / 1000
    nanos = cores * NANO
    if nanos != nanos.to_integral_value():
        raise OpenFaaSError(f"{what} '{value}' is finer than one nano-CPU (0.000000001 cores); round it")
    if nanos == 0:
        raise OpenFaaSError(f"{what} '{value}' is zero; leave {what} out for no limit")
    if nanos < MIN_NANO_CPUS:
        raise OpenFaaSError(f"{what} '{value}' is below 0.001 CPU (1m), the smallest amount Swarm accepts")
    if cores > MAX_CORES:
        raise OpenFaaSError(
            f"{what} '{value}' means {cores} cores; if it is already in nano-CPUs write it as cores "
            f"({cores / NANO}) or millicores; this module converts to nano-CPUs itself"
        )
    return str(int(nanos))


def _resources(value, what):
    if not value:
        return None
    unknown = sorted(set(value) - {"memory", "cpu"})
    if unknown:
        raise OpenFaaSError(f"{what} has unknown key(s) {', '.join(unknown)}; it takes memory and cpu")
    out = {}
    memory, cpu = value.get("memory"), value.get("cpu")
    if memory not in (None, ""):
        if not MEMORY_RE.match(_text(memory)):
            raise OpenFaaSError(
                f"{what}.memory '{memory}' is not a memory size; use a number with an optional unit such as "
                "128m, 256Mi or 1g (the provider would silently treat it as no limit)"
            )
        out["memory"] = _text(memory)
    if cpu not in (None, ""):
        out["cpu"] = nano_cpus(cpu, f"{what}.cpu")
    return out or None


def _int_label(labels, key, name, low, high=None):
    value = labels.get(key)
    if value is None:
        return None
    if not re.match(r"^\d+$", value) or int(value) < low or (high is not None and int(value) > high):
        span = f"{low}..{high}" if high is not None else f"{low} or more"
        raise OpenFaaSError(
            f"function '{name}': label {key}={value!r} must be a whole number {span}; the gateway and faas-swarm "
            "read it with strconv.Atoi and silently fall back (or run 0 replicas) on anything else"
        )
    return int(value)


def check_scaling(labels, name):
    """Validate the scaling label contract; return ``(min, max)`` with the gateway's defaults filled in."""
    low = _int_label(labels, SCALE_MIN_LABEL, name, 0)
    high = _int_label(labels, SCALE_MAX_LABEL, name, 1)
    _int_label(labels, SCALE_FACTOR_LABEL, name, 0, 100)
    eff_low = DEFAULT_SCALE_MIN if low is None else low
    eff_high = DEFAULT_SCALE_MAX if high is None else high
    if eff_low > eff_high:
        raise OpenFaaSError(
            f"function '{name}': scale min ({eff_low}) is larger than scale max ({eff_high}"
            f"{'' if high is not None else ', the gateway default'}); lower the minimum or raise the maximum"
        )
    zero = labels.get(SCALE_ZERO_LABEL)
    if zero is not None and zero not in ("true", "false"):
        raise OpenFaaSError(
            f"function '{name}': label {SCALE_ZERO_LABEL}={zero!r} must be 'true' or 'false' (lower case, as the "
            "idler compares it)"
        )
    duration = labels.get(SCALE_ZERO_DURATION_LABEL)
    if duration is not None and (not GO_DURATION_RE.match(duration) or not re.search(r"[1-9]", duration)):
        raise OpenFaaSError(
            f"function '{name}': label {SCALE_ZERO_DURATION_LABEL}={duration!r} is not a positive Go duration; "
            "write for example 15m, 1h30m or 90s"
        )
    return eff_low, eff_high


def spec_hash(body):
    """Stable hash of a request body, ignoring the hash label itself."""
    clean = dict(body)
    clean["labels"] = {k: v for k, v in (body.get("labels") or {}).items() if k != HASH_LABEL}
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# option name -> label, for the options that are only a label
SCALE_OPTIONS = (
    ("scale_min", SCALE_MIN_LABEL),
    ("scale_max", SCALE_MAX_LABEL),
    ("scale_factor", SCALE_FACTOR_LABEL),
    ("scale_zero", SCALE_ZERO_LABEL),
    ("scale_zero_duration", SCALE_ZERO_DURATION_LABEL),
)


def check_name(name):
    if not NAME_RE.match(name or "") or len(name) > 63:
        raise OpenFaaSError(
            f"function name '{name}' is not valid; use lower-case letters, digits and '-', starting and ending "
            "with a letter or digit, at most 63 characters"
        )


def desired_request(params):
    """The POST/PUT body for the module's options, validated, with :data:`HASH_LABEL` set."""
    name = params["name"]
    check_name(name)
    image = (params.get("image") or "").strip()
    if not image:
        raise OpenFaaSError(f"function '{name}': image is required with state=present")
    labels = _string_map(params.get("labels"), "label")
    for option, key in SCALE_OPTIONS:
        value = params.get(option)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise OpenFaaSError(f"function '{name}': {option} must be 0 or more, got {value}")
        if key in labels and labels[key] != _text(value):
            raise OpenFaaSError(
                f"function '{name}': label {key}={labels[key]} contradicts {option}={_text(value)}; set only one"
            )
        labels[key] = _text(value)
    check_scaling(labels, name)
    labels.pop(HASH_LABEL, None)
    body = {
        "service": name,
        "image": image,
        "envVars": _string_map(params.get("env"), "env"),
        "labels": labels,
        "annotations": _string_map(params.get("annotations"), "annotation"),
        "secrets": sorted(set(params.get("secrets") or [])),
        "constraints": list(params.get("constraints") or []),
        "readOnlyRootFilesystem": bool(params.get("read_only_root_filesystem")),
    }
    if params.get("env_process"):
        body["envProcess"] = params["env_process"]
    if params.get("network"):
        body["network"] = params["network"]
    for key in ("limits", "requests"):
        res = _resources(params.get(key), key)
        if res:
            body[key] = res
    body["labels"][HASH_LABEL] = spec_hash(body)
    return body


def scale_range(body):
    """``(min, max)`` replicas of a request body, with the gateway's defaults."""
    return check_scaling(body["labels"], body["service"])


def view_current(current):
    """The deployed function as shown in the diff (provider-internal labels left out)."""
    if current is None:
        return {}
    labels = {k: v for k, v in (current.get("labels") or {}).items() if k not in PROVIDER_LABELS}
    view = {"name": current.get("name"), "image": current.get("image"), "labels": labels}
    if current.get("annotations"):
        view["annotations"] = current["annotations"]
    if current.get("envProcess"):
        view["envProcess"] = current["envProcess"]
    return view


def view_desired(body):
    """The desired function as shown in the diff: what the gateway will report, plus the rest."""
    if body is None:
        return {}
    view = {"name": body["service"], "image": body["image"], "labels": dict(body["labels"])}
    if body.get("annotations"):
        view["annotations"] = body["annotations"]
    for key in ("envProcess", "envVars", "secrets", "constraints", "limits", "requests", "network"):
        if body.get(key):
            view[key] = body[key]
    if body.get("readOnlyRootFilesystem"):
        view["readOnlyRootFilesystem"] = True
    return view
