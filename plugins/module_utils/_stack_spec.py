# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compose -> the stack's desired Swarm objects: networks, secrets, configs and service specs.

Pure functions only: no Docker, no files, no clock.  :func:`build_desired` validates the compose
document (``_stack_compose``) and converts it, field by field (``_stack_fields``), into the Engine
API's own JSON shape (``ServiceSpec`` with ``TaskTemplate``, ``ContainerSpec`` ...), so the engine
layer can send it unchanged.  Planning (``_stack_plan``) starts from its result.
"""

import hashlib

from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import (
    HASH_LABEL,
    LOGICAL_NAME_LABEL,
    STACK_IMAGE_LABEL,
    STACK_LABEL,
    ComposeError,
    compose_warnings,
    validate,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_fields import (
    dns_config,
    duration_ns,
    extra_hosts,
    file_refs,
    healthcheck_spec,
    kv_pairs,
    labels_map,
    parse_port,
    placement_spec,
    resources_spec,
    restart_policy_spec,
    scoped_name,
    split_command,
    str_value,
    update_config_spec,
    volume_mounts,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_types import Desired


def content_hash(data):
    """SHA-256 (hex) of a secret's or config's content (str or bytes)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def build_desired(stack, compose, secret_contents, config_contents, endpoint_mode) -> Desired:
    """Validate ``compose`` and build the desired objects.

    Returns ``{"services": {short: spec}, "networks": {...}, "secrets": {...}, "configs": {...},
    "rewrites": {short: [notes]}, "warnings": [...]}``.  Service specs carry no hash label yet;
    call ``_stack_plan.finalize`` after pinning images.
    """
    validate(compose)
    warnings = compose_warnings(compose)
    networks = stack_networks(stack, compose, uses_default_network(compose))
    secrets = stack_files(stack, compose, "secrets", secret_contents)
    configs = stack_files(stack, compose, "configs", config_contents)
    top_volumes = compose.get("volumes") or {}
    services = {}
    rewrites = {}
    for name in sorted(compose["services"]):
        spec = service_spec(stack, name, compose["services"][name], networks, secrets, configs, top_volumes)
        notes = apply_endpoint_mode(spec, endpoint_mode)
        if notes:
            rewrites[name] = notes
        services[name] = spec
    return {
        "services": services,
        "networks": networks,
        "secrets": secrets,
        "configs": configs,
        "rewrites": rewrites,
        "warnings": warnings,
    }


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
            "Options": {k: str_value(v) for k, v in (net.get("driver_opts") or {}).items()},
            "Labels": dict(labels_map(net.get("labels"), f"networks.{key}.labels"), **{STACK_LABEL: stack}),
        }
        ipam = net.get("ipam")
        if ipam:
            spec["IPAM"] = {
                "Driver": ipam.get("driver", "default"),
                "Config": [{"Subnet": c["subnet"]} for c in ipam.get("config") or [] if c.get("subnet")],
                "Options": {k: str_value(v) for k, v in (ipam.get("options") or {}).items()},
            }
        result[key] = {"name": name, "external": False, "spec": spec}
    return result


def stack_files(stack, compose, section, contents):
    """Compose secrets/configs -> {logical: {name, external, base, hash, labels}}.

    ``contents`` maps the logical name to its bytes (read by the caller from ``file:`` or taken from
    the module's ``secret_contents``/``config_contents``); :func:`content_hash` names the version.
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
        labels = dict(labels_map(item.get("labels"), f"{section}.{key}.labels"))
        labels.update({STACK_LABEL: stack, LOGICAL_NAME_LABEL: base, HASH_LABEL: digest})
        result[key] = {"name": name, "external": False, "base": base, "hash": digest, "labels": labels}
    return result


def service_spec(stack, name, svc, networks, secrets, configs, top_volumes):
    """One compose service -> Engine API ServiceSpec (without the applied-hash label)."""
    path = f"services.{name}"
    deploy = svc.get("deploy") or {}
    container = _container_spec(stack, svc, secrets, configs, top_volumes, path)
    task = _task_template(container, deploy, svc, path)
    task["Networks"] = _attachments(name, svc.get("networks"), networks)

    spec = {"Name": scoped_name(stack, name), "TaskTemplate": task}
    labels = labels_map(deploy.get("labels"), path + ".deploy.labels")
    labels[STACK_LABEL] = stack
    labels[STACK_IMAGE_LABEL] = svc["image"]
    spec["Labels"] = labels

    if deploy.get("mode") == "global":
        spec["Mode"] = {"Global": {}}
    else:
        spec["Mode"] = {"Replicated": {"Replicas": deploy.get("replicas", 1)}}

    for key, api in (("update_config", "UpdateConfig"), ("rollback_config", "RollbackConfig")):
        cfg = update_config_spec(deploy.get(key), f"{path}.deploy.{key}")
        if cfg:
            spec[api] = cfg
    spec["EndpointSpec"] = _endpoint_spec(svc, deploy, path)
    return spec


_CONTAINER_FIELDS = (
    ("working_dir", "Dir"),
    ("user", "User"),
    ("hostname", "Hostname"),
    ("stop_signal", "StopSignal"),
    ("tty", "TTY"),
    ("stdin_open", "OpenStdin"),
    ("read_only", "ReadOnly"),
    ("init", "Init"),
)


def _container_spec(stack, svc, secrets, configs, top_volumes, path):
    """TaskTemplate.ContainerSpec of one service."""
    container = {"Image": svc["image"]}
    clabels = labels_map(svc.get("labels"), path + ".labels")
    clabels[STACK_LABEL] = stack
    container["Labels"] = clabels
    if "entrypoint" in svc:
        container["Command"] = split_command(svc["entrypoint"])
    if "command" in svc:
        container["Args"] = split_command(svc["command"])
    if "environment" in svc:
        env = kv_pairs(svc["environment"], path + ".environment")
        container["Env"] = [f"{k}={env[k]}" for k in sorted(env)]
    for key, api in _CONTAINER_FIELDS:
        if key in svc:
            container[api] = svc[key]
    if "stop_grace_period" in svc:
        container["StopGracePeriod"] = duration_ns(svc["stop_grace_period"], path + ".stop_grace_period")
    hc = healthcheck_spec(svc.get("healthcheck"), path + ".healthcheck")
    if hc is not None:
        container["Healthcheck"] = hc
    dns = dns_config(svc)
    if dns:
        container["DNSConfig"] = dns
    if "extra_hosts" in svc:
        container["Hosts"] = extra_hosts(svc["extra_hosts"], path)
    for key, api in (("cap_add", "CapabilityAdd"), ("cap_drop", "CapabilityDrop")):
        if key in svc:
            container[api] = sorted(svc[key])
    if "sysctls" in svc:
        container["Sysctls"] = kv_pairs(svc["sysctls"], path + ".sysctls")
    mounts = volume_mounts(svc.get("volumes"), stack, top_volumes, path + ".volumes")
    if mounts:
        container["Mounts"] = mounts
    if svc.get("secrets"):
        container["Secrets"] = file_refs(svc["secrets"], "secrets", secrets, path + ".secrets")
    if svc.get("configs"):
        container["Configs"] = file_refs(svc["configs"], "configs", configs, path + ".configs")
    return container


def _task_template(container, deploy, svc, path):
    """TaskTemplate without the networks: container, resources, restart policy, placement, log driver."""
    task = {"ContainerSpec": container}
    res = resources_spec(deploy.get("resources") or {}, path)
    if res:
        task["Resources"] = res
    rp = deploy.get("restart_policy")
    if rp:
        task["RestartPolicy"] = restart_policy_spec(rp, path)
    pl = placement_spec(deploy.get("placement") or {})
    if pl:
        task["Placement"] = pl
    if svc.get("logging"):
        task["LogDriver"] = {
            "Name": svc["logging"].get("driver", "json-file"),
            "Options": {k: str_value(v) for k, v in (svc["logging"].get("options") or {}).items()},
        }
    return task


def _attachments(name, svc_nets, networks):
    """TaskTemplate.Networks: the service's networks (the stack's default one without ``networks:``), the
    service name first among the aliases."""
    if svc_nets is None:
        svc_nets = {"default": None}
    elif isinstance(svc_nets, list):
        svc_nets = {n: None for n in svc_nets}
    attachments = []
    for net, opts in svc_nets.items():
        aliases = [name] + [a for a in ((opts or {}).get("aliases") or []) if a != name]
        attachments.append({"Target": networks[net]["name"], "Aliases": aliases})
    return sorted(attachments, key=lambda a: a["Target"])


def _endpoint_spec(svc, deploy, path):
    endpoint = {"Mode": deploy.get("endpoint_mode", "vip")}
    ports = []
    for i, item in enumerate(svc.get("ports") or []):
        ports.extend(parse_port(item, f"{path}.ports[{i}]"))
    if ports:
        endpoint["Ports"] = sorted(ports, key=lambda p: (p["TargetPort"], p["Protocol"], p.get("PublishedPort", 0)))
    return endpoint


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
