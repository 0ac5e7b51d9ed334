# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compose file (format 3.x, the subset ``docker stack deploy`` accepts): schema, validation, merging.

The lowest layer of swarm_stack's compose path.  Pure functions over plain dicts (no Docker, no
files, no clock): :func:`validate` checks a document against the supported subset and raises
:class:`ComposeError` naming the path of the offending key; :func:`merge_compose` merges several
files; :func:`compose_warnings` lists what is accepted but not done.  Also the names of the labels
the stack's objects carry, used by every layer above.  The conversion to Engine API objects is
``_stack_spec`` (over the field conversions of ``_stack_fields``).
"""

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
_LIST_OR_MAP = ("list_or_map", _SCALAR)  # environment, labels, sysctls, extra_hosts


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
    "networks": ("list_or_obj_map", _obj({"aliases": _LIST_STR})),
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


# Scalar checkers: kind -> (accepts(value), what is expected, whether the message shows the value)
_SCALAR_KINDS = {
    "str": (lambda v: isinstance(v, str), "a string", True),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", True),
    "bool": (lambda v: isinstance(v, bool), "true or false", True),
    "num": (lambda v: isinstance(v, (int, float, str)) and not isinstance(v, bool), "a number", True),
    "scalar": (lambda v: isinstance(v, (str, int, float, bool)), "a scalar value", False),
}


def _check(value, checker, path):
    kind = checker[0]
    if kind == "any":
        return
    if kind in _SCALAR_KINDS:
        accepts, expected, show = _SCALAR_KINDS[kind]
        if not accepts(value):
            got = f"{_type_name(value)} ({value!r})" if show else _type_name(value)
            raise ComposeError(f"{path}: expected {expected}, got {got}")
        return
    compound = _COMPOUND_KINDS.get(kind)
    if compound is None:  # pragma: no cover - programming error
        raise AssertionError(kind)
    compound(value, checker, path)


def _check_str_or_list(value, checker, path):
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, _SCALAR, f"{path}[{i}]")
    elif not isinstance(value, str):
        raise ComposeError(f"{path}: expected a string or a list of strings, got {_type_name(value)}")


def _check_list(value, checker, path):
    if not isinstance(value, list):
        raise ComposeError(f"{path}: expected a list, got {_type_name(value)}")
    for i, item in enumerate(value):
        _check(item, checker[1], f"{path}[{i}]")


def _check_map(value, checker, path):
    if not isinstance(value, dict):
        raise ComposeError(f"{path}: expected a mapping, got {_type_name(value)}")
    for key, item in value.items():
        _check(item, checker[1], f"{path}.{key}")


def _check_nested_obj(value, checker, path):
    if value is None and checker[2]:
        return
    _check_obj(value, checker[1], path)


def _check_value_or_obj(value, checker, path):
    kind = checker[0]
    if isinstance(value, dict):
        _check_obj(value, checker[1], path)
    elif kind == "str_or_obj" and not isinstance(value, str):
        raise ComposeError(f"{path}: expected a string or a mapping, got {_type_name(value)}")
    elif kind == "scalar_or_obj" and not isinstance(value, (str, int)):
        raise ComposeError(f"{path}: expected a string, a number or a mapping, got {_type_name(value)}")
    elif kind == "bool_or_obj" and not isinstance(value, bool):
        raise ComposeError(f"{path}: expected true, false or a mapping, got {_type_name(value)}")


# List-or-mapping kinds: a list of strings, or a mapping whose non-null items are checked with the checker's
# second element.  kind -> the list form, as the error message names it.
_LIST_OR_MAP_KINDS = {
    "list_or_map": "a list of KEY=VALUE strings",  # ("list_or_map", _SCALAR): environment, labels, ...
    "list_or_obj_map": "a list of names",  # ("list_or_obj_map", _obj(...)): a service's networks
}


def _check_list_or_map(value, checker, path):
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, _STR, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if item is not None:
                _check(item, checker[1], f"{path}.{key}")
    else:
        listed = _LIST_OR_MAP_KINDS[checker[0]]
        raise ComposeError(f"{path}: expected {listed} or a mapping, got {_type_name(value)}")


_COMPOUND_KINDS = {
    "str_or_list": _check_str_or_list,
    "list": _check_list,
    "map": _check_map,
    "list_or_map": _check_list_or_map,
    "obj": _check_nested_obj,
    "str_or_obj": _check_value_or_obj,
    "scalar_or_obj": _check_value_or_obj,
    "bool_or_obj": _check_value_or_obj,
    "list_or_obj_map": _check_list_or_map,
}


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
        check_choice(deploy.get("mode"), ("replicated", "global"), f"services.{name}.deploy.mode")
        check_choice(deploy.get("endpoint_mode"), ("vip", "dnsrr"), f"services.{name}.deploy.endpoint_mode")
        for cfg in ("update_config", "rollback_config"):
            c = deploy.get(cfg) or {}
            where = f"services.{name}.deploy.{cfg}"
            check_choice(c.get("failure_action"), ("continue", "pause", "rollback"), where + ".failure_action")
            check_choice(c.get("order"), ("start-first", "stop-first"), where + ".order")
        rp = deploy.get("restart_policy") or {}
        check_choice(
            rp.get("condition"), ("none", "on-failure", "any"), f"services.{name}.deploy.restart_policy.condition"
        )
        if deploy.get("mode") == "global" and "replicas" in deploy:
            raise ComposeError(f"services.{name}.deploy.replicas: not allowed with mode: global")
    for section in ("secrets", "configs"):
        for key, item in (compose.get(section) or {}).items():
            item = item or {}
            if item.get("external") and item.get("file"):
                raise ComposeError(f"{section}.{key}: 'file' and 'external' are mutually exclusive")
    return compose


def check_choice(value, choices, path):
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


def compose_warnings(compose):
    """Warnings for a valid compose document: ``${...}`` interpolation (not done) and the service keys that
    swarm ignores (:data:`IGNORED_SERVICE_KEYS`), in the order the module reports them."""
    warnings = [
        f"{path}: {text!r} contains ${{...}}; compose variable interpolation is not supported, the value is used "
        "as written (template it with Jinja instead, or write $$ for a literal $)"
        for path, text in _interpolations(compose, "")
    ]
    for name in sorted(compose["services"]):
        ignored = sorted(k for k in compose["services"][name] if k in IGNORED_SERVICE_KEYS)
        if ignored:
            warnings.append("services.{}: ignoring keys that swarm does not use: {}".format(name, ", ".join(ignored)))
    return warnings


def _interpolations(value, path):
    """(path, text) of every string that looks like compose variable interpolation."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _interpolations(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _interpolations(item, f"{path}[{i}]")
    elif isinstance(value, str) and "${" in value.replace("$$", ""):
        yield path, value
