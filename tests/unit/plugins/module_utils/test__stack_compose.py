"""Compose (3.x subset) -> Engine API ServiceSpec conversion and schema validation."""

import hashlib

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils._stack_compose import (
    _COMPOUND_KINDS,
    _LIST_OR_MAP_KINDS,
    HASH_LABEL,
    STACK_IMAGE_LABEL,
    STACK_LABEL,
    ComposeError,
    compose_warnings,
    merge_compose,
    validate,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_fields import (
    RESTART_POLICY_FIELDS,
    UPDATE_CONFIG_FIELDS,
    convert_fields,
    duration_ns,
    parse_port,
    restart_policy_spec,
    size_bytes,
    update_config_spec,
)
from ansible_collections.onmetal.faas.plugins.module_utils._stack_spec import (
    apply_endpoint_mode,
    content_hash,
    image_has_digest,
    pin_image,
    service_spec,
    stack_files,
    stack_networks,
)


def _spec(svc, compose_extra=None, stack="st"):
    compose = {"services": {"web": svc}}
    compose.update(compose_extra or {})
    validate(compose)
    nets = stack_networks(stack, compose, svc.get("networks") is None)
    secrets = stack_files(stack, compose, "secrets", {k: b"x" for k in compose.get("secrets", {})})
    configs = stack_files(stack, compose, "configs", {k: b"y" for k in compose.get("configs", {})})
    return service_spec(stack, "web", svc, nets, secrets, configs, compose.get("volumes") or {})


@pytest.mark.parametrize(
    "compose, message",
    [
        ({"services": {"web": {"image": "a", "deploy": {"replcas": 2}}}}, "services.web.deploy.replcas: unknown key"),
        (
            {"services": {"web": {"image": "a", "deploy": {"replicas": "2"}}}},
            "services.web.deploy.replicas: expected an integer",
        ),
        ({"services": {"web": {"image": "a", "env_file": "x"}}}, "services.web.env_file: unknown key"),
        (
            {"services": {"web": {"image": "a", "ports": [{"target": "80"}]}}},
            "services.web.ports[0].target: expected an integer",
        ),
        ({"services": {"web": {"image": "a", "environment": "A=1"}}}, "services.web.environment: expected a list"),
        ({"services": {"web": {"command": "x"}}}, "services.web.image: required"),
        ({"services": {}}, "services: at least one service"),
        ({"version": "2.4", "services": {"web": {"image": "a"}}}, "version: '2.4' is not supported"),
        (
            {"services": {"web": {"image": "a", "secrets": ["nope"]}}},
            "services.web.secrets[0]: secret 'nope' is not defined",
        ),
        (
            {"services": {"web": {"image": "a", "networks": ["nope"]}}},
            "services.web.networks: network 'nope' is not defined",
        ),
        (
            {"services": {"web": {"image": "a", "deploy": {"mode": "daemon"}}}},
            "services.web.deploy.mode: 'daemon' is not one of",
        ),
        (
            {"services": {"web": {"image": "a", "deploy": {"mode": "global", "replicas": 2}}}},
            "services.web.deploy.replicas: not allowed with mode: global",
        ),
        (
            {"services": {"web": {"image": "a"}}, "secrets": {"s": {"file": "/x", "external": True}}},
            "mutually exclusive",
        ),
        ({"services": {"web": {"image": "a"}}, "netwroks": {}}, "netwroks: unknown key"),
        (["not", "a", "mapping"], "compose: expected a mapping"),
    ],
)
def test_validate_names_the_offending_path(compose, message):
    with pytest.raises(ComposeError) as err:
        validate(compose)
    assert message in str(err.value)


def test_validate_accepts_extension_keys_and_ignored_keys():
    validate(
        {"x-common": {"a": 1}, "services": {"web": {"image": "a", "build": ".", "x-note": 1, "depends_on": ["b"]}}}
    )


@pytest.mark.parametrize(
    "value, expected",
    [
        ("10s", 10 * 10**9),
        ("1m30s", 90 * 10**9),
        ("500ms", 5 * 10**8),
        ("1h", 3600 * 10**9),
        (2, 2 * 10**9),
        ("1.5s", 15 * 10**8),
    ],
)
def test_duration(value, expected):
    assert duration_ns(value, "p") == expected


@pytest.mark.parametrize("value", ["10", "ten seconds", "", "5s5", True])
def test_duration_rejects(value):
    with pytest.raises(ComposeError, match="p: expected a duration"):
        duration_ns(value, "p")


@pytest.mark.parametrize(
    "value, expected",
    [("512M", 512 * 1024**2), ("1g", 1024**3), ("100k", 102400), (2048, 2048), ("64mb", 64 * 1024**2)],
)
def test_size(value, expected):
    assert size_bytes(value, "p") == expected


@pytest.mark.parametrize(
    "item, expected",
    [
        ("80", [{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"}]),
        ("8080:80", [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]),
        ("53:53/udp", [{"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "ingress"}]),
        (
            "9000-9001:8000-8001",
            [
                {"Protocol": "tcp", "TargetPort": 8000, "PublishedPort": 9000, "PublishMode": "ingress"},
                {"Protocol": "tcp", "TargetPort": 8001, "PublishedPort": 9001, "PublishMode": "ingress"},
            ],
        ),
        (
            {"target": 8080, "published": 80, "mode": "host"},
            [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 80, "PublishMode": "host"}],
        ),
    ],
)
def test_ports(item, expected):
    assert parse_port(item, "p") == expected


@pytest.mark.parametrize(
    "item, message",
    [
        ("127.0.0.1:80:80", "binds a host IP"),
        ("a:b", "is not a port"),
        ("1-3:1-2", "different length"),
        ({"published": 1}, "p.target: required"),
    ],
)
def test_ports_rejected(item, message):
    with pytest.raises(ComposeError, match=message):
        parse_port(item, "p")


def test_env_list_and_mapping_convert_identically():
    as_list = _spec({"image": "a", "environment": ["B=2", "A=1", "FLAG=true"]})
    as_dict = _spec({"image": "a", "environment": {"FLAG": True, "A": 1, "B": "2"}})
    assert as_list == as_dict
    assert as_list["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=1", "B=2", "FLAG=true"]


@pytest.mark.parametrize("env", [["A"], {"A": None}])
def test_env_without_value_is_an_error(env):
    with pytest.raises(ComposeError, match="services.web.environment.* has no value"):
        _spec({"image": "a", "environment": env})


def test_full_service_conversion():
    svc = {
        "image": "ghcr.io/openfaas/gateway:0.18.18",
        "command": "fwatchdog -x 'a b'",
        "entrypoint": ["/bin/sh", "-c"],
        "user": "app",
        "working_dir": "/srv",
        "hostname": "gw",
        "labels": ["tier=front"],
        "stop_grace_period": "30s",
        "healthcheck": {"test": "wget -q -O- localhost:8080/healthz", "interval": "3s", "retries": 2},
        "dns": "10.0.0.2",
        "dns_search": ["svc.local"],
        "extra_hosts": ["db:10.0.0.5"],
        "volumes": [
            "/srv/data:/data:ro",
            "cache:/cache",
            {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": "64M"}},
        ],
        "networks": {"func_functions": {"aliases": ["gateway"]}},
        "secrets": [{"source": "basic-auth-user", "target": "user", "mode": 0o400}],
        "configs": ["prom"],
        "ports": ["8080:8080"],
        "deploy": {
            "replicas": 2,
            "labels": {"team": "faas"},
            "placement": {"constraints": ["node.role == manager", "node.labels.a == 1"]},
            "resources": {"limits": {"cpus": "0.5", "memory": "256M"}, "reservations": {"memory": "64M"}},
            "restart_policy": {"condition": "on-failure", "delay": "5s", "max_attempts": 20, "window": "380s"},
            "update_config": {"parallelism": 1, "order": "start-first", "failure_action": "rollback"},
        },
    }
    extra = {
        "networks": {"func_functions": {"driver": "overlay", "attachable": True, "labels": {"openfaas": "true"}}},
        "secrets": {"basic-auth-user": {"file": "./user.txt"}},
        "configs": {"prom": {"file": "./prom.yml"}},
        "volumes": {"cache": {"driver": "local"}},
    }
    spec = _spec(svc, extra, stack="func")
    c = spec["TaskTemplate"]["ContainerSpec"]
    assert spec["Name"] == "func_web"
    assert spec["Labels"] == {
        "team": "faas",
        STACK_LABEL: "func",
        STACK_IMAGE_LABEL: "ghcr.io/openfaas/gateway:0.18.18",
    }
    assert c["Command"] == ["/bin/sh", "-c"] and c["Args"] == ["fwatchdog", "-x", "a b"]
    assert c["Labels"] == {"tier": "front", STACK_LABEL: "func"}
    assert c["StopGracePeriod"] == 30 * 10**9
    assert c["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q -O- localhost:8080/healthz"],
        "Interval": 3 * 10**9,
        "Retries": 2,
    }
    assert c["DNSConfig"] == {"Nameservers": ["10.0.0.2"], "Search": ["svc.local"]}
    assert c["Hosts"] == ["10.0.0.5 db"]
    assert c["Mounts"] == [
        {
            "Type": "volume",
            "Target": "/cache",
            "Source": "func_cache",
            "VolumeOptions": {"Labels": {STACK_LABEL: "func"}, "DriverConfig": {"Name": "local", "Options": {}}},
        },
        {"Type": "bind", "Target": "/data", "Source": "/srv/data", "ReadOnly": True},
        {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 64 * 1024**2}},
    ]
    assert c["Secrets"] == [
        {
            "File": {"Name": "user", "UID": "0", "GID": "0", "Mode": 0o400},
            "SecretName": "func_basic-auth-user-" + content_hash(b"x")[:12],
        }
    ]
    assert c["Configs"] == [
        {
            "File": {"Name": "/prom", "UID": "0", "GID": "0", "Mode": 0o444},
            "ConfigName": "func_prom-" + content_hash(b"y")[:12],
        }
    ]
    t = spec["TaskTemplate"]
    assert t["Networks"] == [{"Target": "func_func_functions", "Aliases": ["web", "gateway"]}]
    assert t["Placement"] == {"Constraints": ["node.labels.a == 1", "node.role == manager"]}
    assert t["Resources"] == {
        "Limits": {"NanoCPUs": 500000000, "MemoryBytes": 256 * 1024**2},
        "Reservations": {"MemoryBytes": 64 * 1024**2},
    }
    assert t["RestartPolicy"] == {
        "Condition": "on-failure",
        "Delay": 5 * 10**9,
        "MaxAttempts": 20,
        "Window": 380 * 10**9,
    }
    assert spec["Mode"] == {"Replicated": {"Replicas": 2}}
    assert spec["UpdateConfig"] == {"Parallelism": 1, "Order": "start-first", "FailureAction": "rollback"}
    assert spec["EndpointSpec"] == {
        "Mode": "vip",
        "Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 8080, "PublishMode": "ingress"}],
    }
    assert HASH_LABEL not in spec["Labels"]


def test_default_network_and_global_mode():
    spec = _spec({"image": "a", "deploy": {"mode": "global"}})
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "st_default", "Aliases": ["web"]}]
    assert spec["Mode"] == {"Global": {}}


def test_external_network_and_named_objects():
    compose = {
        "services": {"web": {"image": "a", "networks": ["ext"]}},
        "networks": {"ext": {"external": True, "name": "func_functions"}},
        "secrets": {"s": {"external": True}, "t": {"name": "custom"}},
    }
    nets = stack_networks("st", compose, False)
    assert nets == {"ext": {"name": "func_functions", "external": True, "spec": None}}
    files = stack_files("st", compose, "secrets", {"t": b"v"})
    assert files["s"] == {"name": "s", "external": True}
    assert files["t"]["name"] == "custom-" + hashlib.sha256(b"v").hexdigest()[:12]
    assert files["t"]["labels"][STACK_LABEL] == "st"


def test_secret_without_content_is_an_error():
    with pytest.raises(ComposeError, match="secrets.s: no content; give 'file: PATH'.*secret_contents.s"):
        stack_files("st", {"secrets": {"s": {}}}, "secrets", {})


@pytest.mark.parametrize(
    "volume, message",
    [
        ("data", "has no source"),
        ("rel/dir:/x", "volume 'rel/dir' is not defined"),
        ({"type": "bind", "source": "rel", "target": "/x"}, "must be an absolute path"),
    ],
)
def test_volume_errors(volume, message):
    with pytest.raises(ComposeError, match=message):
        _spec({"image": "a", "volumes": [volume]})


def test_endpoint_rewrite_for_dnsrr():
    spec = _spec({"image": "a", "ports": ["8080:80", {"target": 9000, "published": 9000, "mode": "host"}]})
    notes = apply_endpoint_mode(spec, "dnsrr")
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    assert all(p["PublishMode"] == "host" for p in spec["EndpointSpec"]["Ports"])
    assert notes == ["endpoint_mode vip -> dnsrr", "port 8080/tcp published in host mode"]
    assert apply_endpoint_mode(spec, "dnsrr") == []


def test_endpoint_vip_keeps_the_definition():
    spec = _spec({"image": "a", "ports": ["8080:80"]})
    before = repr(spec)
    assert apply_endpoint_mode(spec, "vip") == []
    assert repr(spec) == before


def test_merge_later_files_override_shallowly_per_service():
    base = {
        "version": "3.8",
        "services": {"web": {"image": "a:1", "deploy": {"replicas": 2, "labels": ["x=1"]}}, "db": {"image": "db"}},
    }
    override = {
        "services": {"web": {"deploy": {"replicas": 3}}, "cache": {"image": "c"}},
        "secrets": {"s": {"file": "/s"}},
    }
    merged = merge_compose([base, override])
    assert merged["services"]["web"] == {"image": "a:1", "deploy": {"replicas": 3}}
    assert sorted(merged["services"]) == ["cache", "db", "web"]
    assert merged["secrets"] == {"s": {"file": "/s"}}
    assert merged["version"] == "3.8"


def test_digests():
    assert not image_has_digest("a/b:1")
    pinned = pin_image("a/b:1", "sha256:" + "f" * 64)
    assert pinned == "a/b:1@sha256:" + "f" * 64 and image_has_digest(pinned)
    assert pin_image(pinned, "sha256:" + "0" * 64) == "a/b:1@sha256:" + "0" * 64


def test_content_hash_is_the_sha256_of_str_and_bytes_alike():
    assert content_hash("v") == content_hash(b"v") == hashlib.sha256(b"v").hexdigest()


def test_compose_warnings_list_interpolation_then_ignored_keys():
    compose = {
        "services": {
            "b": {"image": "x", "restart": "always", "build": "."},
            "a": {"image": "x:${TAG}", "environment": ["LIT=$${HOME}"]},
        }
    }
    assert compose_warnings(compose) == [
        "services.a.image: 'x:${TAG}' contains ${...}; compose variable interpolation is not supported, the value "
        "is used as written (template it with Jinja instead, or write $$ for a literal $)",
        "services.b: ignoring keys that swarm does not use: build, restart",
    ]


def _web(**svc):
    return {"services": {"web": dict({"image": "a"}, **svc)}, "networks": {"front": None}}


@pytest.mark.parametrize(
    "svc, message",
    [
        (
            {"environment": "A=1"},
            "services.web.environment: expected a list of KEY=VALUE strings or a mapping, got a string",
        ),
        ({"labels": 3}, "services.web.labels: expected a list of KEY=VALUE strings or a mapping, got an integer"),
        ({"environment": [1]}, "services.web.environment[0]: expected a string, got an integer (1)"),
        ({"environment": {"A": [1]}}, "services.web.environment.A: expected a scalar value, got a list"),
        ({"networks": "front"}, "services.web.networks: expected a list of names or a mapping, got a string"),
        ({"networks": [{"front": {}}]}, "services.web.networks[0]: expected a string, got a mapping ({'front': {}})"),
        ({"networks": {"front": ["x"]}}, "services.web.networks.front: expected a mapping, got a list"),
        (
            {"networks": {"front": {"ipv4": "x"}}},
            "services.web.networks.front.ipv4: unknown key (supported here: aliases)",
        ),
        (
            {"networks": {"front": {"aliases": "x"}}},
            "services.web.networks.front.aliases: expected a list, got a string",
        ),
    ],
)
def test_list_or_map_kinds_check_items_and_name_the_list_form(svc, message):
    with pytest.raises(ComposeError) as err:
        validate(_web(**svc))
    assert str(err.value) == message


def test_list_or_map_kinds_accept_lists_mappings_and_null_items():
    validate(_web(environment=["A=1"], labels={"a": 1, "b": None}, networks=["front"]))
    validate(_web(environment={"A": True, "B": None}, networks={"front": None}))
    validate(_web(networks={"front": {"aliases": ["w"]}}))


def test_list_or_map_kinds_are_registered_as_compound_kinds():
    assert set(_LIST_OR_MAP_KINDS) == {"list_or_map", "list_or_obj_map"}
    assert _COMPOUND_KINDS["list_or_map"] is _COMPOUND_KINDS["list_or_obj_map"]


def test_convert_fields_applies_a_table_in_its_order_and_names_the_key_in_errors():
    table = {"b": ("B", duration_ns), "a": ("A", lambda value, path: (value, path))}
    assert list(convert_fields(table, {"a": 1, "b": "2s", "c": 3}, "x.y")) == ["B", "A"]
    assert convert_fields(table, {"a": 1, "b": "2s"}, "x.y") == {"B": 2 * 10**9, "A": (1, "x.y.a")}
    assert convert_fields(table, {}, "x.y") == {}
    with pytest.raises(ComposeError, match=r"^x\.y\.b: expected a duration"):
        convert_fields(table, {"b": "soon"}, "x.y")


def test_update_config_spec_converts_every_key():
    cfg = {
        "parallelism": 2,
        "delay": "2s",
        "failure_action": "pause",
        "monitor": "1m",
        "max_failure_ratio": "0.25",
        "order": "start-first",
    }
    spec = update_config_spec(cfg, "services.web.deploy.update_config")
    assert spec == {
        "Parallelism": 2,
        "Delay": 2 * 10**9,
        "FailureAction": "pause",
        "Monitor": 60 * 10**9,
        "MaxFailureRatio": 0.25,
        "Order": "start-first",
    }
    assert list(spec) == ["Parallelism", "Delay", "FailureAction", "Monitor", "MaxFailureRatio", "Order"]
    assert sorted(UPDATE_CONFIG_FIELDS) == sorted(k for k in cfg if k != "parallelism")


def test_update_config_spec_defaults_parallelism_to_one_and_skips_an_empty_config():
    assert update_config_spec({"order": "stop-first"}, "p") == {"Parallelism": 1, "Order": "stop-first"}
    assert update_config_spec({"max_failure_ratio": 1}, "p") == {"Parallelism": 1, "MaxFailureRatio": 1.0}
    assert update_config_spec({}, "p") is None and update_config_spec(None, "p") is None


def test_restart_policy_spec_converts_every_key():
    rp = {"condition": "any", "delay": "500ms", "max_attempts": 3, "window": 2}
    spec = restart_policy_spec(rp, "services.web")
    assert spec == {"Condition": "any", "Delay": 5 * 10**8, "MaxAttempts": 3, "Window": 2 * 10**9}
    assert list(spec) == ["Condition", "Delay", "MaxAttempts", "Window"]
    assert sorted(RESTART_POLICY_FIELDS) == sorted(rp)
    assert restart_policy_spec({}, "services.web") == {}


@pytest.mark.parametrize(
    "deploy, path",
    [
        ({"update_config": {"delay": "soon"}}, "services.web.deploy.update_config.delay"),
        ({"update_config": {"monitor": "soon"}}, "services.web.deploy.update_config.monitor"),
        ({"rollback_config": {"delay": "soon"}}, "services.web.deploy.rollback_config.delay"),
        ({"rollback_config": {"monitor": "soon"}}, "services.web.deploy.rollback_config.monitor"),
        ({"restart_policy": {"delay": "soon"}}, "services.web.deploy.restart_policy.delay"),
        ({"restart_policy": {"window": "soon"}}, "services.web.deploy.restart_policy.window"),
    ],
)
def test_deploy_durations_name_their_path(deploy, path):
    with pytest.raises(ComposeError) as err:
        _spec({"image": "a", "deploy": deploy})
    assert str(err.value) == f"{path}: expected a duration such as '10s' or '1m30s', got 'soon'"


def test_rollback_config_converts_like_update_config():
    spec = _spec({"image": "a", "deploy": {"rollback_config": {"failure_action": "continue", "delay": "1s"}}})
    assert spec["RollbackConfig"] == {"Parallelism": 1, "Delay": 10**9, "FailureAction": "continue"}
    assert "UpdateConfig" not in spec
