# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compose file (format 3.x, the subset ``docker stack deploy`` accepts) -> Swarm API objects.

Pure functions only: no Docker, no files, no clock.  Everything here is unit-tested from plain
dicts.  The output uses the Engine API's own JSON shape (``ServiceSpec`` with ``TaskTemplate``,
``ContainerSpec`` ...), so the engine layer can send it unchanged.
"""

import re
import shlex

from ansible_collections.onmetal.faas.plugins.module_utils._errors import ModuleFailure

STACK_LABEL = "com.docker.stack.namespace"
STACK_IMAGE_LABEL = "com.docker.stack.image"
HASH_LABEL = "io.onmetal.faas.applied-hash"
LOGICAL_NAME_LABEL = "io.onmetal.faas.logical-name"

# Keys that `docker stack deploy` ignores; we accept them and warn, like it does.
IGNORED_SERVICE_KEYS = ("build", "container_name", "depends_on", "restart", "links", "expose")


class ComposeError(ModuleFailure):
    """A compose document that cannot be deployed; the message names the offending path."""


# --------------------------------------------------------------------------------------------
# Scalars


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def _duration_ns(value, path):
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


def _size_bytes(value, path):
    """'512M', '1g', '100k', 2048 -> bytes (binary units, as compose uses them)."""
    if isinstance(value, bool):
        raise ComposeError(f"{path}: expected a size such as '512M' or '1G', got {value!r}")
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(str(value).strip())
    if not match:
        raise ComposeError(f"{path}: expected a size such as '512M' or '1G', got {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _nano_cpus(value, path):
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise ComposeError(f"{path}: expected a number of CPUs such as '0.5', got {value!r}") from None
    if isinstance(value, bool) or cpus < 0:
        raise ComposeError(f"{path}: expected a number of CPUs such as '0.5', got {value!r}")
    return int(round(cpus * 10**9))


def _str_value(value):
    """Compose stringifies scalar values in environment/labels maps; YAML booleans become 'true'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------------
# Schema validation


def _type_name(value):
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer"}.get(
        type(value), type(value).__name__
    )


# A schema is a dict: key -> checker.  A checker is a tuple naming the accepted shape.
_STR = ("str",)
_INT = ("int",)
_BOOL = ("bool",)
_NUM = ("num",)  # int, float or numeric string
_SCALAR = ("scalar",)  # str/int/float/bool
_STR_OR_LIST = ("str_or_list",)
_LIST_STR = ("list", _STR)
_MAP_SCALAR = ("map", _SCALAR)
_LIST_OR_MAP = ("list_or_map",)  # environment, labels, sysctls, extra_hosts
_ANY_MAP = ("map", ("any",))


def _obj(schema, allow_null=False):
    return ("obj", schema, allow_null)


_UPDATE_CONFIG = _obj(
    {
        "parallelism": _INT,
        "delay": _SCALAR,
        "failure_action": _STR,
        "monitor": _SCALAR,
        "max_failure_ratio": _NUM,
        "order": _STR,
    }
)

_DEPLOY = _obj(
    {
        "mode": _STR,
        "replicas": _INT,
        "endpoint_mode": _STR,
        "labels": _LIST_OR_MAP,
        "placement": _obj(
            {
                "constraints": _LIST_STR,
                "preferences": ("list", _obj({"spread": _STR})),
                "max_replicas_per_node": _INT,
            }
        ),
        "resources": _obj(
            {
                "limits": _obj({"cpus": _NUM, "memory": _SCALAR, "pids": _INT}),
                "reservations": _obj({"cpus": _NUM, "memory": _SCALAR}),
            }
        ),
        "restart_policy": _obj({"condition": _STR, "delay": _SCALAR, "max_attempts": _INT, "window": _SCALAR}),
        "update_config": _UPDATE_CONFIG,
        "rollback_config": _UPDATE_CONFIG,
    }
)

_FILE_REF = ("str_or_obj", {"source": _STR, "target": _STR, "uid": _SCALAR, "gid": _SCALAR, "mode": _INT})

_SERVICE = {
    "image": _STR,
    "command": _STR_OR_LIST,
    "entrypoint": _STR_OR_LIST,
    "environment": _LIST_OR_MAP,
    "working_dir": _STR,
    "user": _STR,
    "hostname": _STR,
    "labels": _LIST_OR_MAP,
    "secrets": ("list", _FILE_REF),
    "configs": ("list", _FILE_REF),
    "networks": ("list_or_obj_map", {"aliases": _LIST_STR}),
    "ports": ("list", ("scalar_or_obj", {"target": _INT, "published": _INT, "protocol": _STR, "mode": _STR})),
    "healthcheck": _obj(
        {
            "test": _STR_OR_LIST,
            "interval": _SCALAR,
            "timeout": _SCALAR,
            "retries": _INT,
            "start_period": _SCALAR,
            "disable": _BOOL,
        }
    ),
    "volumes": (
        "list",
        (
            "str_or_obj",
            {
                "type": _STR,
                "source": _STR,
                "target": _STR,
                "read_only": _BOOL,
                "volume": _obj({"nocopy": _BOOL}),
                "bind": _obj({"propagation": _STR}),
                "tmpfs": _obj({"size": _SCALAR}),
            },
        ),
    ),
    "deploy": _DEPLOY,
    "stop_grace_period": _SCALAR,
    "stop_signal": _STR,
    "dns": _STR_OR_LIST,
    "dns_search": _STR_OR_LIST,
    "dns_opt": _LIST_STR,
    "extra_hosts": _LIST_OR_MAP,
    "tty": _BOOL,
    "stdin_open": _BOOL,
    "read_only": _BOOL,
    "init": _BOOL,
    "cap_add": _LIST_STR,
    "cap_drop": _LIST_STR,
    "sysctls": _LIST_OR_MAP,
    "logging": _obj({"driver": _STR, "options": _MAP_SCALAR}),
}
for _key in IGNORED_SERVICE_KEYS:
    _SERVICE[_key] = ("any",)

_NETWORK = {
    "driver": _STR,
    "driver_opts": _MAP_SCALAR,
    "attachable": _BOOL,
    "internal": _BOOL,
    "labels": _LIST_OR_MAP,
    "external": ("bool_or_obj", {"name": _STR}),
    "name": _STR,
    "ipam": _obj({"driver": _STR, "config": ("list", _obj({"subnet": _STR})), "options": _MAP_SCALAR}),
}
_SECRET = {
    "file": _STR,
    "external": ("bool_or_obj", {"name": _STR}),
    "name": _STR,
    "labels": _LIST_OR_MAP,
}
_VOLUME = {
    "driver": _STR,
    "driver_opts": _MAP_SCALAR,
    "external": ("bool_or_obj", {"name": _STR}),
    "labels": _LIST_OR_MAP,
    "name": _STR,
}

_TOP = {
    "version": _SCALAR,
    "services": ("map", _obj(_SERVICE)),
    "networks": ("map", _obj(_NETWORK, allow_null=True)),
    "secrets": ("map", _obj(_SECRET, allow_null=True)),
    "configs": ("map", _obj(_SECRET, allow_null=True)),
    "volumes": ("map", _obj(_VOLUME, allow_null=True)),
}


def _check(value, checker, path):
    kind = checker[0]
    if kind == "any":
        return
    if kind == "str":
        if not isinstance(value, str):
            raise ComposeError(f"{path}: expected a string, got {_type_name(value)} ({value!r})")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ComposeError(f"{path}: expected an integer, got {_type_name(value)} ({value!r})")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ComposeError(f"{path}: expected true or false, got {_type_name(value)} ({value!r})")
    elif kind == "num":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ComposeError(f"{path}: expected a number, got {_type_name(value)} ({value!r})")
    elif kind == "scalar":
        if not isinstance(value, (str, int, float, bool)):
            raise ComposeError(f"{path}: expected a scalar value, got {_type_name(value)}")
    elif kind == "str_or_list":
        if isinstance(value, list):
            for i, item in enumerate(value):
                _check(item, _SCALAR, f"{path}[{i}]")
        elif not isinstance(value, str):
            raise ComposeError(f"{path}: expected a string or a list of strings, got {_type_name(value)}")
    elif kind == "list":
        if not isinstance(value, list):
            raise ComposeError(f"{path}: expected a list, got {_type_name(value)}")
        for i, item in enumerate(value):
            _check(item, checker[1], f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, dict):
            raise ComposeError(f"{path}: expected a mapping, got {_type_name(value)}")
        for key, item in value.items():
            _check(item, checker[1], f"{path}.{key}")
    elif kind == "list_or_map":
        if isinstance(value, list):
            for i, item in enumerate(value):
                _check(item, _STR, f"{path}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                if item is not None:
                    _check(item, _SCALAR, f"{path}.{key}")
        else:
            raise ComposeError(f"{path}: expected a list of KEY=VALUE strings or a mapping, got {_type_name(value)}")
    elif kind == "obj":
        if value is None and checker[2]:
            return
        _check_obj(value, checker[1], path)
    elif kind in ("str_or_obj", "scalar_or_obj"):
        if isinstance(value, dict):
            _check_obj(value, checker[1], path)
        elif kind == "str_or_obj" and not isinstance(value, str):
            raise ComposeError(f"{path}: expected a string or a mapping, got {_type_name(value)}")
        elif kind == "scalar_or_obj" and not isinstance(value, (str, int)):
            raise ComposeError(f"{path}: expected a string, a number or a mapping, got {_type_name(value)}")
    elif kind == "bool_or_obj":
        if isinstance(value, dict):
            _check_obj(value, checker[1], path)
        elif not isinstance(value, bool):
            raise ComposeError(f"{path}: expected true, false or a mapping, got {_type_name(value)}")
    elif kind == "list_or_obj_map":
        if isinstance(value, list):
            for i, item in enumerate(value):
                _check(item, _STR, f"{path}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                if item is not None:
                    _check_obj(item, checker[1], f"{path}.{key}")
        else:
            raise ComposeError(f"{path}: expected a list of names or a mapping, got {_type_name(value)}")
    else:  # pragma: no cover - programming error
        raise AssertionError(kind)


def _check_obj(value, schema, path):
    if not isinstance(value, dict):
        raise ComposeError(f"{path}: expected a mapping, got {_type_name(value)}")
    for key, item in value.items():
        sub = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and key.startswith("x-"):
            continue
        if key not in schema:
            known = ", ".join(sorted(k for k in schema if k not in IGNORED_SERVICE_KEYS))
            raise ComposeError(f"{sub}: unknown key (supported here: {known})")
        _check(item, schema[key], sub)


def validate(compose):
    """Validate a compose document against the supported 3.x subset; raise ComposeError naming the path."""
    if not isinstance(compose, dict):
        raise ComposeError(f"compose: expected a mapping (a parsed compose file), got {_type_name(compose)}")
    _check_obj(compose, _TOP, "")
    version = compose.get("version")
    if version is not None and not str(version).startswith("3"):
        raise ComposeError(f"version: {version!r} is not supported; swarm stacks use compose file format 3.x")
    services = compose.get("services")
    if not services:
        raise ComposeError("services: at least one service is required")
    for name, svc in services.items():
        if not svc.get("image"):
            raise ComposeError(f"services.{name}.image: required (swarm cannot build images; build and push first)")
        for section in ("secrets", "configs"):
            defined = compose.get(section) or {}
            for i, ref in enumerate(svc.get(section) or []):
                source = ref if isinstance(ref, str) else ref.get("source")
                if not source:
                    raise ComposeError(f"services.{name}.{section}[{i}].source: required")
                if source not in defined:
                    raise ComposeError(
                        f"services.{name}.{section}[{i}]: {section[:-1]} {source!r} is not defined in the top-level "
                        f"'{section}:' section; add it there (file: PATH, or external: true if it already exists)"
                    )
        nets = svc.get("networks") or []
        defined_nets = compose.get("networks") or {}
        for net in nets:
            if net not in defined_nets and net != "default":
                raise ComposeError(
                    f"services.{name}.networks: network {net!r} is not defined in the top-level 'networks:' section; "
                    "add it there (or with external: true if it already exists)"
                )
        deploy = svc.get("deploy") or {}
        _choice(deploy.get("mode"), ("replicated", "global"), f"services.{name}.deploy.mode")
        _choice(deploy.get("endpoint_mode"), ("vip", "dnsrr"), f"services.{name}.deploy.endpoint_mode")
        for cfg in ("update_config", "rollback_config"):
            c = deploy.get(cfg) or {}
            where = f"services.{name}.deploy.{cfg}"
            _choice(c.get("failure_action"), ("continue", "pause", "rollback"), where + ".failure_action")
            _choice(c.get("order"), ("start-first", "stop-first"), where + ".order")
        rp = deploy.get("restart_policy") or {}
        _choice(rp.get("condition"), ("none", "on-failure", "any"), f"services.{name}.deploy.restart_policy.condition")
        if deploy.get("mode") == "global" and "replicas" in deploy:
            raise ComposeError(f"services.{name}.deploy.replicas: not allowed with mode: global")
    for section in ("secrets", "configs"):
        for key, item in (compose.get(section) or {}).items():
            item = item or {}
            if item.get("external") and item.get("file"):
                raise ComposeError(f"{section}.{key}: 'file' and 'external' are mutually exclusive")
    return compose


def _choice(value, choices, path):
    if value is not None and value not in choices:
        raise ComposeError("{}: {!r} is not one of {}".format(path, value, ", ".join(choices)))


def merge_compose(documents):
    """Merge compose documents in order: later files override earlier ones.

    Top-level sections (services, networks, secrets, configs, volumes) are merged per entry; a
    service present in several files is merged shallowly, key by key (a later ``deploy:`` replaces
    the whole earlier ``deploy:``).
    """
    merged = {}
    for doc in documents:
        if not isinstance(doc, dict):
            raise ComposeError(f"compose file: expected a mapping at the top level, got {_type_name(doc)}")
        for key, value in doc.items():
            if key in ("services", "networks", "secrets", "configs", "volumes") and isinstance(value, dict):
                section = merged.setdefault(key, {})
                for name, item in value.items():
                    if key == "services" and isinstance(item, dict) and isinstance(section.get(name), dict):
                        combined = dict(section[name])
                        combined.update(item)
                        section[name] = combined
                    else:
                        section[name] = item
            else:
                merged[key] = value
    return merged


# --------------------------------------------------------------------------------------------
# Conversion helpers


def _kv_pairs(value, path, allow_missing=False):
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
            result[str(key)] = _str_value(val)
    return result


def _labels(value, path):
    return {k: ("" if v is None else v) for k, v in _kv_pairs(value or {}, path, allow_missing=True).items()}


def _split_command(value):
    if isinstance(value, list):
        return [_str_value(v) for v in value]
    return shlex.split(value)


def scoped_name(stack, name):
    return f"{stack}_{name}"


def _parse_port(item, path):
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
        _choice(port["Protocol"], ("tcp", "udp", "sctp"), path + ".protocol")
        _choice(port["PublishMode"], ("ingress", "host"), path + ".mode")
        return [port]
    text = str(item)
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        _choice(proto, ("tcp", "udp", "sctp"), path)
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


def _update_config(cfg, path):
    if not cfg:
        return None
    out = {"Parallelism": cfg.get("parallelism", 1)}  # compose's default, the engine's would be 0 (all)
    if "delay" in cfg:
        out["Delay"] = _duration_ns(cfg["delay"], path + ".delay")
    if "failure_action" in cfg:
        out["FailureAction"] = cfg["failure_action"]
    if "monitor" in cfg:
        out["Monitor"] = _duration_ns(cfg["monitor"], path + ".monitor")
    if "max_failure_ratio" in cfg:
        out["MaxFailureRatio"] = float(cfg["max_failure_ratio"])
    if "order" in cfg:
        out["Order"] = cfg["order"]
    return out


def _file_refs(refs, section, stack_objects, path):
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


def _mounts(volumes, stack, top_volumes, path):
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
            _choice(mode, ("ro", "rw"), where + " (mode)")
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
            vol = {"type": kind, "source": source, "target": target, "read_only": mode == "ro"}
        kind = vol.get("type", "volume")
        _choice(kind, ("bind", "volume", "tmpfs"), where + ".type")
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
                opts = {"Labels": dict(_labels(top.get("labels"), f"volumes.{source}.labels"), **{STACK_LABEL: stack})}
                if top.get("driver") or top.get("driver_opts"):
                    opts["DriverConfig"] = {
                        "Name": top.get("driver", "local"),
                        "Options": {k: _str_value(v) for k, v in (top.get("driver_opts") or {}).items()},
                    }
                if vol.get("volume", {}).get("nocopy"):
                    opts["NoCopy"] = True
                mount["VolumeOptions"] = opts
        else:
            if vol.get("source"):
                raise ComposeError(f"{where}.source: tmpfs mounts take no source")
            if vol.get("tmpfs", {}).get("size") is not None:
                mount["TmpfsOptions"] = {"SizeBytes": _size_bytes(vol["tmpfs"]["size"], where + ".tmpfs.size")}
        mounts.append(mount)
    return sorted(mounts, key=lambda m: m["Target"])


def _healthcheck(hc, path):
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
            out["Test"] = [_str_value(t) for t in test]
            if out["Test"] and out["Test"][0] not in ("CMD", "CMD-SHELL", "NONE"):
                raise ComposeError(f"{path}.test: a list must start with CMD, CMD-SHELL or NONE, got {test[0]!r}")
    for key, api in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if key in hc:
            out[api] = _duration_ns(hc[key], f"{path}.{key}")
    if "retries" in hc:
        out["Retries"] = hc["retries"]
    return out


# --------------------------------------------------------------------------------------------
# Top-level objects


def stack_networks(stack, compose, services_use_default):
    """Compose networks -> {logical: {name, external, spec}}; adds '<stack>_default' when used."""
    result = {}
    declared = dict(compose.get("networks") or {})
    if services_use_default and "default" not in declared:
        declared["default"] = {}
    for key, net in declared.items():
        net = net or {}
        external = net.get("external")
        if external:
            name = (external.get("name") if isinstance(external, dict) else None) or net.get("name") or key
            result[key] = {"name": name, "external": True, "spec": None}
            continue
        name = net.get("name") or scoped_name(stack, key)
        driver = net.get("driver", "overlay")
        spec = {
            "Name": name,
            "Driver": driver,
            "Attachable": bool(net.get("attachable", False)),
            "Internal": bool(net.get("internal", False)),
            "Options": {k: _str_value(v) for k, v in (net.get("driver_opts") or {}).items()},
            "Labels": dict(_labels(net.get("labels"), f"networks.{key}.labels"), **{STACK_LABEL: stack}),
        }
        ipam = net.get("ipam")
        if ipam:
            spec["IPAM"] = {
                "Driver": ipam.get("driver", "default"),
                "Config": [{"Subnet": c["subnet"]} for c in ipam.get("config") or [] if c.get("subnet")],
                "Options": {k: _str_value(v) for k, v in (ipam.get("options") or {}).items()},
            }
        result[key] = {"name": name, "external": False, "spec": spec}
    return result


def stack_files(stack, compose, section, contents, content_hash):
    """Compose secrets/configs -> {logical: {name, external, base, hash, labels}}.

    ``contents`` maps the logical name to its bytes (read by the caller from ``file:`` or taken from
    the module's ``secret_contents``/``config_contents``); ``content_hash`` hashes bytes.
    Managed objects get a content-addressed name ``<base>-<hash12>`` so that a new value is a new
    object and the services that use it are updated (Swarm secrets and configs are immutable).
    """
    result = {}
    for key, item in (compose.get(section) or {}).items():
        item = item or {}
        external = item.get("external")
        if external:
            name = (external.get("name") if isinstance(external, dict) else None) or item.get("name") or key
            result[key] = {"name": name, "external": True}
            continue
        if key not in contents:
            raise ComposeError(
                f"{section}.{key}: no content; give 'file: PATH' (a path on the managed node) or pass the value in the "
                f"module option {section[:-1]}_contents.{key}"
            )
        base = item.get("name") or scoped_name(stack, key)
        digest = content_hash(contents[key])
        name = f"{base}-{digest[:12]}"
        if len(name) > 64:
            raise ComposeError(
                f"{section}.{key}: the name {name!r} is longer than Swarm's 64 characters; give a shorter 'name:'"
            )
        labels = dict(_labels(item.get("labels"), f"{section}.{key}.labels"))
        labels.update({STACK_LABEL: stack, LOGICAL_NAME_LABEL: base, HASH_LABEL: digest})
        result[key] = {"name": name, "external": False, "base": base, "hash": digest, "labels": labels}
    return result


def service_spec(stack, name, svc, networks, secrets, configs, top_volumes):
    """One compose service -> Engine API ServiceSpec (without the applied-hash label)."""
    path = f"services.{name}"
    deploy = svc.get("deploy") or {}
    full_name = scoped_name(stack, name)

    container = {"Image": svc["image"]}
    clabels = _labels(svc.get("labels"), path + ".labels")
    clabels[STACK_LABEL] = stack
    container["Labels"] = clabels
    if "entrypoint" in svc:
        container["Command"] = _split_command(svc["entrypoint"])
    if "command" in svc:
        container["Args"] = _split_command(svc["command"])
    if "environment" in svc:
        env = _kv_pairs(svc["environment"], path + ".environment")
        container["Env"] = [f"{k}={env[k]}" for k in sorted(env)]
    for key, api in (("working_dir", "Dir"), ("user", "User"), ("hostname", "Hostname"), ("stop_signal", "StopSignal")):
        if key in svc:
            container[api] = svc[key]
    for key, api in (("tty", "TTY"), ("stdin_open", "OpenStdin"), ("read_only", "ReadOnly"), ("init", "Init")):
        if key in svc:
            container[api] = svc[key]
    if "stop_grace_period" in svc:
        container["StopGracePeriod"] = _duration_ns(svc["stop_grace_period"], path + ".stop_grace_period")
    hc = _healthcheck(svc.get("healthcheck"), path + ".healthcheck")
    if hc is not None:
        container["Healthcheck"] = hc
    dns = {}
    if "dns" in svc:
        dns["Nameservers"] = [svc["dns"]] if isinstance(svc["dns"], str) else list(svc["dns"])
    if "dns_search" in svc:
        dns["Search"] = [svc["dns_search"]] if isinstance(svc["dns_search"], str) else list(svc["dns_search"])
    if "dns_opt" in svc:
        dns["Options"] = list(svc["dns_opt"])
    if dns:
        container["DNSConfig"] = dns
    if "extra_hosts" in svc:
        hosts = svc["extra_hosts"]
        if isinstance(hosts, dict):
            pairs = [(ip, host) for host, ip in hosts.items()]
        else:
            pairs = []
            for i, entry in enumerate(hosts):
                host, sep, ip = entry.partition(":")
                if not sep:
                    raise ComposeError(f"{path}.extra_hosts[{i}]: {entry!r} is not HOST:IP")
                pairs.append((ip, host))
        container["Hosts"] = [f"{ip} {host}" for ip, host in pairs]
    for key, api in (("cap_add", "CapabilityAdd"), ("cap_drop", "CapabilityDrop")):
        if key in svc:
            container[api] = sorted(svc[key])
    if "sysctls" in svc:
        container["Sysctls"] = _kv_pairs(svc["sysctls"], path + ".sysctls")
    mounts = _mounts(svc.get("volumes"), stack, top_volumes, path + ".volumes")
    if mounts:
        container["Mounts"] = mounts
    if svc.get("secrets"):
        container["Secrets"] = _file_refs(svc["secrets"], "secrets", secrets, path + ".secrets")
    if svc.get("configs"):
        container["Configs"] = _file_refs(svc["configs"], "configs", configs, path + ".configs")

    task = {"ContainerSpec": container}

    resources = deploy.get("resources") or {}
    res = {}
    for key, api in (("limits", "Limits"), ("reservations", "Reservations")):
        part = resources.get(key) or {}
        out = {}
        if "cpus" in part:
            out["NanoCPUs"] = _nano_cpus(part["cpus"], f"{path}.deploy.resources.{key}.cpus")
        if "memory" in part:
            out["MemoryBytes"] = _size_bytes(part["memory"], f"{path}.deploy.resources.{key}.memory")
        if "pids" in part:
            out["Pids"] = part["pids"]
        if out:
            res[api] = out
    if res:
        task["Resources"] = res

    rp = deploy.get("restart_policy")
    if rp:
        policy = {}
        if "condition" in rp:
            policy["Condition"] = rp["condition"]
        if "delay" in rp:
            policy["Delay"] = _duration_ns(rp["delay"], path + ".deploy.restart_policy.delay")
        if "max_attempts" in rp:
            policy["MaxAttempts"] = rp["max_attempts"]
        if "window" in rp:
            policy["Window"] = _duration_ns(rp["window"], path + ".deploy.restart_policy.window")
        task["RestartPolicy"] = policy

    placement = deploy.get("placement") or {}
    pl = {}
    if placement.get("constraints"):
        pl["Constraints"] = sorted(placement["constraints"])
    if placement.get("preferences"):
        pl["Preferences"] = [{"Spread": {"SpreadDescriptor": p["spread"]}} for p in placement["preferences"]]
    if "max_replicas_per_node" in placement:
        pl["MaxReplicas"] = placement["max_replicas_per_node"]
    if pl:
        task["Placement"] = pl

    if svc.get("logging"):
        task["LogDriver"] = {
            "Name": svc["logging"].get("driver", "json-file"),
            "Options": {k: _str_value(v) for k, v in (svc["logging"].get("options") or {}).items()},
        }

    svc_nets = svc.get("networks")
    if svc_nets is None:
        svc_nets = {"default": None}
    elif isinstance(svc_nets, list):
        svc_nets = {n: None for n in svc_nets}
    attachments = []
    for net, opts in svc_nets.items():
        aliases = [name] + [a for a in ((opts or {}).get("aliases") or []) if a != name]
        attachments.append({"Target": networks[net]["name"], "Aliases": aliases})
    task["Networks"] = sorted(attachments, key=lambda a: a["Target"])

    spec = {"Name": full_name, "TaskTemplate": task}
    labels = _labels(deploy.get("labels"), path + ".deploy.labels")
    labels[STACK_LABEL] = stack
    labels[STACK_IMAGE_LABEL] = svc["image"]
    spec["Labels"] = labels

    if deploy.get("mode") == "global":
        spec["Mode"] = {"Global": {}}
    else:
        spec["Mode"] = {"Replicated": {"Replicas": deploy.get("replicas", 1)}}

    for key, api in (("update_config", "UpdateConfig"), ("rollback_config", "RollbackConfig")):
        cfg = _update_config(deploy.get(key), f"{path}.deploy.{key}")
        if cfg:
            spec[api] = cfg

    endpoint = {"Mode": deploy.get("endpoint_mode", "vip")}
    ports = []
    for i, item in enumerate(svc.get("ports") or []):
        ports.extend(_parse_port(item, f"{path}.ports[{i}]"))
    if ports:
        endpoint["Ports"] = sorted(ports, key=lambda p: (p["TargetPort"], p["Protocol"], p.get("PublishedPort", 0)))
    spec["EndpointSpec"] = endpoint
    return spec


def apply_endpoint_mode(spec, mode):
    """Rewrite a ServiceSpec for a swarm without IPVS; return the list of rewrites made (text).

    ``mode`` 'dnsrr': services get EndpointSpec.Mode dnsrr and ingress ports become host-mode ports
    (the routing mesh needs IPVS).  ``mode`` 'vip': nothing is rewritten.
    """
    notes = []
    if mode != "dnsrr":
        return notes
    endpoint = spec.setdefault("EndpointSpec", {})
    if endpoint.get("Mode", "vip") != "dnsrr":
        notes.append("endpoint_mode {} -> dnsrr".format(endpoint.get("Mode", "vip")))
        endpoint["Mode"] = "dnsrr"
    for port in endpoint.get("Ports") or []:
        if port.get("PublishMode", "ingress") != "host":
            notes.append(
                "port {}/{} published in host mode".format(
                    port.get("PublishedPort", port["TargetPort"]), port["Protocol"]
                )
            )
            port["PublishMode"] = "host"
    return notes


def uses_default_network(compose):
    return any(svc.get("networks") is None for svc in (compose.get("services") or {}).values())


def image_has_digest(image):
    return "@sha256:" in image or "@sha512:" in image


def pin_image(image, digest):
    """'repo:tag' + 'sha256:...' -> 'repo:tag@sha256:...' (an existing digest is replaced)."""
    return "{}@{}".format(image.split("@", 1)[0], digest)
