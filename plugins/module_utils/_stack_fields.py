# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compose values -> Engine API fields (durations, sizes, ports, mounts, healthchecks, resources, ...).

The conversion layer under ``_stack_spec``: each function turns one compose value (already
validated by ``_stack_compose.validate``) into the Engine API's JSON shape, and raises
``ComposeError`` naming the path when the value cannot be converted.  Pure functions.
"""

import re
import shlex

from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import (
    STACK_LABEL,
    ComposeError,
    check_choice,
)

# --------------------------------------------------------------------------------------------
# Scalars


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def duration_ns(value, path):
    """'1m30s', '500ms', '10s' -> nanoseconds (int).  Plain numbers are seconds."""
    if isinstance(value, bool):
        raise ComposeError(f"{path}: expected a duration such as '10s' or '1m30s', got {value!r}")
    if isinstance(value, (int, float)):
        return int(value * 10**9)
    text = str(value).strip()
    pos = 0
    total = 0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ComposeError(f"{path}: expected a duration such as '10s' or '1m30s', got {value!r}")
    return int(total)


def size_bytes(value, path):
    """'512M', '1g', '100k', 2048 -> bytes (binary units, as compose uses them)."""
    if isinstance(value, bool):
        raise ComposeError(f"{path}: expected a size such as '512M' or '1G', got {value!r}")
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(str(value).strip())
    if not match:
        raise ComposeError(f"{path}: expected a size such as '512M' or '1G', got {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def nano_cpus(value, path):
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise ComposeError(f"{path}: expected a number of CPUs such as '0.5', got {value!r}") from None
    if isinstance(value, bool) or cpus < 0:
        raise ComposeError(f"{path}: expected a number of CPUs such as '0.5', got {value!r}")
    return int(round(cpus * 10**9))


def str_value(value):
    """Compose stringifies scalar values in environment/labels maps; YAML booleans become 'true'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------------
# Conversion helpers


def kv_pairs(value, path, allow_missing=False):
    """list of 'K=V' or mapping -> ordered dict of str -> str (last wins)."""
    result = {}
    if isinstance(value, list):
        for i, item in enumerate(value):
            key, sep, val = item.partition("=")
            if not sep:
                if allow_missing:
                    result[key] = None
                    continue
                raise ComposeError(
                    f"{path}[{i}]: {item!r} has no value; write {item}=VALUE (values are not taken from the "
                    "environment of the managed node)"
                )
            result[key] = val
    elif isinstance(value, dict):
        for key, val in value.items():
            if val is None:
                if allow_missing:
                    result[str(key)] = None
                    continue
                raise ComposeError(
                    f"{path}.{key}: has no value; give it one (values are not taken from the environment of the "
                    "managed node)"
                )
            result[str(key)] = str_value(val)
    return result


def labels_map(value, path):
    return {k: ("" if v is None else v) for k, v in kv_pairs(value or {}, path, allow_missing=True).items()}


def split_command(value):
    if isinstance(value, list):
        return [str_value(v) for v in value]
    return shlex.split(value)


def scoped_name(stack, name):
    return f"{stack}_{name}"


def parse_port(item, path):
    """Short or long port syntax -> list of EndpointSpec port dicts."""
    if isinstance(item, dict):
        if "target" not in item:
            raise ComposeError(f"{path}.target: required")
        port = {
            "Protocol": item.get("protocol", "tcp"),
            "TargetPort": item["target"],
            "PublishMode": item.get("mode", "ingress"),
        }
        if item.get("published") is not None:
            port["PublishedPort"] = item["published"]
        check_choice(port["Protocol"], ("tcp", "udp", "sctp"), path + ".protocol")
        check_choice(port["PublishMode"], ("ingress", "host"), path + ".mode")
        return [port]
    text = str(item)
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        check_choice(proto, ("tcp", "udp", "sctp"), path)
    parts = text.split(":")
    if len(parts) == 3:
        raise ComposeError(
            f"{path}: {item!r} binds a host IP; swarm services cannot publish on a specific IP (use a long-syntax "
            "port with mode: host, or a firewall)"
        )
    if len(parts) > 3:
        raise ComposeError(f"{path}: {item!r} is not a port such as '8080:80' or '80/udp'")
    try:
        targets = _port_range(parts[-1])
        published = _port_range(parts[0]) if len(parts) == 2 else None
    except ValueError:
        raise ComposeError(f"{path}: {item!r} is not a port such as '8080:80' or '80/udp'") from None
    if published is not None and len(published) != len(targets):
        raise ComposeError(f"{path}: {item!r} maps port ranges of different length")
    ports = []
    for i, target in enumerate(targets):
        port = {"Protocol": proto, "TargetPort": target, "PublishMode": "ingress"}
        if published is not None:
            port["PublishedPort"] = published[i]
        ports.append(port)
    return ports


def _port_range(text):
    if "-" in text:
        low, high = text.split("-", 1)
        low, high = int(low), int(high)
        if high < low:
            raise ValueError(text)
        return list(range(low, high + 1))
    return [int(text)]


# Field tables: compose key -> (Engine API key, converter(value, path)), in the order the API object is written.


def _as_is(value, path):
    return value


def _as_float(value, path):
    return float(value)


def convert_fields(table, section, where):
    """The API fields of a compose mapping ``section`` by ``table``; a converter's errors name ``where.KEY``."""
    return {api: convert(section[key], f"{where}.{key}") for key, (api, convert) in table.items() if key in section}


# deploy.update_config and deploy.rollback_config; Parallelism is set before these (see update_config_spec).
UPDATE_CONFIG_FIELDS = {
    "delay": ("Delay", duration_ns),
    "failure_action": ("FailureAction", _as_is),
    "monitor": ("Monitor", duration_ns),
    "max_failure_ratio": ("MaxFailureRatio", _as_float),
    "order": ("Order", _as_is),
}

# deploy.restart_policy
RESTART_POLICY_FIELDS = {
    "condition": ("Condition", _as_is),
    "delay": ("Delay", duration_ns),
    "max_attempts": ("MaxAttempts", _as_is),
    "window": ("Window", duration_ns),
}


def update_config_spec(cfg, path):
    """deploy.update_config or deploy.rollback_config (``path`` names it) -> UpdateConfig; None when empty."""
    if not cfg:
        return None
    out = {"Parallelism": cfg.get("parallelism", 1)}  # compose's default, the engine's would be 0 (all)
    out.update(convert_fields(UPDATE_CONFIG_FIELDS, cfg, path))
    return out


def file_refs(refs, section, stack_objects, path):
    """Service secrets/configs -> API references (IDs are filled in at apply time)."""
    out = []
    for i, ref in enumerate(refs or []):
        if isinstance(ref, str):
            ref = {"source": ref}
        source = ref["source"]
        obj = stack_objects[source]
        default_target = source if section == "secrets" else "/" + source
        mode = ref.get("mode", 0o444)
        entry = {
            "File": {
                "Name": ref.get("target", default_target),
                "UID": str(ref.get("uid", "0")),
                "GID": str(ref.get("gid", "0")),
                "Mode": mode,
            },
            ("SecretName" if section == "secrets" else "ConfigName"): obj["name"],
        }
        if not isinstance(mode, int):
            raise ComposeError(f"{path}[{i}].mode: expected an integer such as 0o440 (288), got {mode!r}")
        out.append(entry)
    key = "SecretName" if section == "secrets" else "ConfigName"
    return sorted(out, key=lambda e: (e[key], e["File"]["Name"]))


def volume_mounts(volumes, stack, top_volumes, path):
    mounts = []
    for i, vol in enumerate(volumes or []):
        where = f"{path}[{i}]"
        if isinstance(vol, str):
            parts = vol.split(":")
            if len(parts) == 1:
                raise ComposeError(
                    f"{where}: {vol!r} has no source; anonymous volumes are not supported, write SOURCE:TARGET"
                )
            if len(parts) > 3:
                raise ComposeError(f"{where}: {vol!r} is not SOURCE:TARGET[:ro|rw]")
            source, target = parts[0], parts[1]
            mode = parts[2] if len(parts) == 3 else "rw"
            check_choice(mode, ("ro", "rw"), where + " (mode)")
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
            vol = {"type": kind, "source": source, "target": target, "read_only": mode == "ro"}
        kind = vol.get("type", "volume")
        check_choice(kind, ("bind", "volume", "tmpfs"), where + ".type")
        if not vol.get("target"):
            raise ComposeError(f"{where}.target: required")
        mount = {"Type": kind, "Target": vol["target"]}
        if vol.get("read_only"):
            mount["ReadOnly"] = True
        if kind == "bind":
            source = vol.get("source") or ""
            if not source.startswith("/"):
                raise ComposeError(
                    f"{where}.source: {source!r} must be an absolute path on the nodes (relative paths are relative "
                    "to the docker CLI's directory, which a swarm has not)"
                )
            mount["Source"] = source
            if vol.get("bind", {}).get("propagation"):
                mount["BindOptions"] = {"Propagation": vol["bind"]["propagation"]}
        elif kind == "volume":
            source = vol.get("source")
            if not source:
                raise ComposeError(f"{where}.source: required (anonymous volumes are not supported)")
            if source not in top_volumes:
                raise ComposeError(
                    f"{where}: volume {source!r} is not defined in the top-level 'volumes:' section; add it there"
                )
            top = top_volumes[source] or {}
            external = top.get("external")
            if external:
                mount["Source"] = (external.get("name") if isinstance(external, dict) else None) or top.get(
                    "name", source
                )
            else:
                mount["Source"] = top.get("name") or scoped_name(stack, source)
                opts = {
                    "Labels": dict(labels_map(top.get("labels"), f"volumes.{source}.labels"), **{STACK_LABEL: stack})
                }
                if top.get("driver") or top.get("driver_opts"):
                    opts["DriverConfig"] = {
                        "Name": top.get("driver", "local"),
                        "Options": {k: str_value(v) for k, v in (top.get("driver_opts") or {}).items()},
                    }
                if vol.get("volume", {}).get("nocopy"):
                    opts["NoCopy"] = True
                mount["VolumeOptions"] = opts
        else:
            if vol.get("source"):
                raise ComposeError(f"{where}.source: tmpfs mounts take no source")
            if vol.get("tmpfs", {}).get("size") is not None:
                mount["TmpfsOptions"] = {"SizeBytes": size_bytes(vol["tmpfs"]["size"], where + ".tmpfs.size")}
        mounts.append(mount)
    return sorted(mounts, key=lambda m: m["Target"])


def healthcheck_spec(hc, path):
    if hc is None:
        return None
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    out = {}
    test = hc.get("test")
    if test is not None:
        if isinstance(test, str):
            out["Test"] = ["CMD-SHELL", test]
        else:
            out["Test"] = [str_value(t) for t in test]
            if out["Test"] and out["Test"][0] not in ("CMD", "CMD-SHELL", "NONE"):
                raise ComposeError(f"{path}.test: a list must start with CMD, CMD-SHELL or NONE, got {test[0]!r}")
    for key, api in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if key in hc:
            out[api] = duration_ns(hc[key], f"{path}.{key}")
    if "retries" in hc:
        out["Retries"] = hc["retries"]
    return out


def dns_config(svc):
    dns = {}
    if "dns" in svc:
        dns["Nameservers"] = [svc["dns"]] if isinstance(svc["dns"], str) else list(svc["dns"])
    if "dns_search" in svc:
        dns["Search"] = [svc["dns_search"]] if isinstance(svc["dns_search"], str) else list(svc["dns_search"])
    if "dns_opt" in svc:
        dns["Options"] = list(svc["dns_opt"])
    return dns


def extra_hosts(hosts, path):
    """extra_hosts (list of HOST:IP or mapping) -> ContainerSpec.Hosts ("IP HOST")."""
    if isinstance(hosts, dict):
        pairs = [(ip, host) for host, ip in hosts.items()]
    else:
        pairs = []
        for i, entry in enumerate(hosts):
            host, sep, ip = entry.partition(":")
            if not sep:
                raise ComposeError(f"{path}.extra_hosts[{i}]: {entry!r} is not HOST:IP")
            pairs.append((ip, host))
    return [f"{ip} {host}" for ip, host in pairs]


def resources_spec(resources, path):
    res = {}
    for key, api in (("limits", "Limits"), ("reservations", "Reservations")):
        part = resources.get(key) or {}
        out = {}
        if "cpus" in part:
            out["NanoCPUs"] = nano_cpus(part["cpus"], f"{path}.deploy.resources.{key}.cpus")
        if "memory" in part:
            out["MemoryBytes"] = size_bytes(part["memory"], f"{path}.deploy.resources.{key}.memory")
        if "pids" in part:
            out["Pids"] = part["pids"]
        if out:
            res[api] = out
    return res


def restart_policy_spec(rp, path):
    """deploy.restart_policy of the service at ``path`` -> RestartPolicy."""
    return convert_fields(RESTART_POLICY_FIELDS, rp, path + ".deploy.restart_policy")


def placement_spec(placement):
    pl = {}
    if placement.get("constraints"):
        pl["Constraints"] = sorted(placement["constraints"])
    if placement.get("preferences"):
        pl["Preferences"] = [{"Spread": {"SpreadDescriptor": p["spread"]}} for p in placement["preferences"]]
    if "max_replicas_per_node" in placement:
        pl["MaxReplicas"] = placement["max_replicas_per_node"]
    return pl
