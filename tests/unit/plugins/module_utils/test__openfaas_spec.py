"""Tests of the desired function body: validation, CPU conversion to nano-CPUs, scaling labels, hash."""

import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _openfaas_spec as spec

BASE = {
    "name": "resize",
    "image": "127.0.0.1:5000/resize:abc",
    "env": {},
    "env_process": None,
    "labels": {},
    "annotations": {},
    "secrets": [],
    "constraints": [],
    "limits": None,
    "requests": None,
    "scale_min": None,
    "scale_max": None,
    "scale_factor": None,
    "scale_zero": None,
    "scale_zero_duration": None,
    "network": None,
    "read_only_root_filesystem": False,
}


def params(**kw):
    p = dict(BASE)
    p.update(kw)
    return p


def test_desired_request_renders_scale_labels_env_and_hash():
    body = spec.desired_request(
        params(env={"B": 2, "A": True}, scale_min=1, scale_max=5, limits={"memory": "128m", "cpu": None})
    )
    assert body["service"] == "resize"
    assert body["envVars"] == {"A": "true", "B": "2"}
    assert body["labels"][spec.SCALE_MIN_LABEL] == "1"
    assert body["labels"][spec.SCALE_MAX_LABEL] == "5"
    assert body["limits"] == {"memory": "128m"}
    assert "requests" not in body and "network" not in body and "envProcess" not in body
    assert body["labels"][spec.HASH_LABEL] == spec.spec_hash(body)


def test_scale_options_become_the_upstream_labels():
    body = spec.desired_request(params(scale_factor=50, scale_zero=True, scale_zero_duration="15m"))
    assert body["labels"]["com.openfaas.scale.factor"] == "50"
    assert body["labels"]["com.openfaas.scale.zero"] == "true"
    assert body["labels"]["com.openfaas.scale.zero-duration"] == "15m"


@pytest.mark.parametrize(
    "a, b",
    [
        (dict(secrets=["s1", "s2"]), dict(secrets=["s2", "s1", "s1"])),
        (dict(env={"A": "1", "B": "2"}), dict(env={"B": "2", "A": 1})),
        (dict(labels={"x": "1"}, scale_min=1), dict(scale_min=1, labels={"x": 1})),
        (dict(limits={"cpu": "0.5"}), dict(limits={"cpu": "500m"})),
    ],
    ids=["secret-order", "env-order-and-type", "label-order", "cpu-cores-or-millicores"],
)
def test_hash_ignores_ordering_and_types(a, b):
    assert (
        spec.desired_request(params(**a))["labels"][spec.HASH_LABEL]
        == spec.desired_request(params(**b))["labels"][spec.HASH_LABEL]
    )


@pytest.mark.parametrize(
    "change",
    [
        dict(env={"A": "1"}),
        dict(secrets=["s"]),
        dict(limits={"memory": "64m"}),
        dict(constraints=["node.role == worker"]),
        dict(read_only_root_filesystem=True),
        dict(network="functions"),
        dict(requests={"cpu": "500m"}),
    ],
)
def test_hash_covers_fields_the_gateway_does_not_report(change):
    assert (
        spec.desired_request(params())["labels"][spec.HASH_LABEL]
        != spec.desired_request(params(**change))["labels"][spec.HASH_LABEL]
    )


# faas-swarm 0.9.0 parseCPU is strconv.ParseInt(value, 10, 64) as nano-CPUs (handlers/deploy.go:260-267).
@pytest.mark.parametrize(
    "given, nanos",
    [
        ("0.5", "500000000"),
        ("500m", "500000000"),
        ("2", "2000000000"),
        (2, "2000000000"),
        ("1.25", "1250000000"),
        (".25", "250000000"),
        ("1m", "1000000"),
        ("0.001", "1000000"),
        ("1500m", "1500000000"),
        ("0.123456789", "123456789"),
    ],
)
def test_cpu_is_sent_as_integer_nano_cpus(given, nanos):
    assert spec.nano_cpus(given) == nanos
    assert int(nanos) > 0  # what upstream's ParseInt accepts: a plain base-10 integer
    body = spec.desired_request(params(limits={"cpu": given}, requests={"cpu": given}))
    assert body["limits"] == {"cpu": nanos} and body["requests"] == {"cpu": nanos}


@pytest.mark.parametrize(
    "given, needle",
    [
        ("fast", "limits.cpu 'fast' is not a CPU amount; write cores (0.5, 2) or millicores (500m)"),
        ("0.5 cores", "is not a CPU amount"),
        ("-1", "is not a CPU amount"),
        ("1e9", "is not a CPU amount"),
        ("0.5m", "below 0.001 CPU (1m)"),
        ("0.0000000001", "finer than one nano-CPU"),
        ("0", "is zero; leave limits.cpu out for no limit"),
        ("0m", "is zero"),
        ("500000000", "means 500000000 cores; if it is already in nano-CPUs write it as cores (0.5)"),
    ],
)
def test_bad_cpu_is_refused_with_the_fix(given, needle):
    with pytest.raises(spec.OpenFaaSError) as err:
        spec.desired_request(params(limits={"cpu": given}))
    assert needle in err.value.msg


@pytest.mark.parametrize("memory", ["128m", "128Mi", "1g", "512MB", "1048576", "1.5G", "128 m", "64kib"])
def test_memory_formats_accepted(memory):
    assert spec.desired_request(params(limits={"memory": memory}))["limits"]["memory"] == memory


@pytest.mark.parametrize("memory", ["lots", "128  m", "128\tm", "m128", "-1m"])
def test_memory_formats_go_units_refuses(memory):
    with pytest.raises(spec.OpenFaaSError, match="is not a memory size"):
        spec.desired_request(params(limits={"memory": memory}))


@pytest.mark.parametrize(
    "kw, needle",
    [
        (dict(name="Resize"), "function name 'Resize' is not valid"),
        (dict(name="-x"), "is not valid"),
        (dict(name="a" * 64), "at most 63"),
        (dict(image=""), "image is required"),
        (dict(scale_min=3, scale_max=2), "scale min (3) is larger than scale max (2)"),
        (dict(scale_min=25), "scale min (25) is larger than scale max (20, the gateway default)"),
        (dict(scale_min=-1), "scale_min must be 0 or more"),
        (dict(scale_max=0), "com.openfaas.scale.max='0' must be a whole number 1 or more"),
        (dict(scale_factor=101), "com.openfaas.scale.factor='101' must be a whole number 0..100"),
        (dict(labels={"com.openfaas.scale.min": "two"}), "com.openfaas.scale.min='two' must be a whole number"),
        (dict(labels={"com.openfaas.scale.max": "1.5"}), "strconv.Atoi"),
        (dict(labels={"com.openfaas.scale.min": "4", "com.openfaas.scale.max": "2"}), "scale min (4) is larger"),
        (dict(labels={"com.openfaas.scale.zero": "True"}), "must be 'true' or 'false' (lower case"),
        (dict(scale_zero_duration="15 minutes"), "is not a positive Go duration; write for example 15m"),
        (dict(scale_zero_duration="0s"), "is not a positive Go duration"),
        (dict(labels={spec.SCALE_MIN_LABEL: "2"}, scale_min=1), "contradicts scale_min=1"),
        (dict(requests={"cpu": "fast"}), "requests.cpu 'fast' is not a CPU amount"),
        (dict(limits={"gpu": "1"}), "limits has unknown key(s) gpu; it takes memory and cpu"),
        (dict(env={"A": {"nested": 1}}), "env 'A' must be a string"),
    ],
)
def test_desired_request_errors(kw, needle):
    with pytest.raises(spec.OpenFaaSError) as err:
        spec.desired_request(params(**kw))
    assert needle in err.value.msg


@pytest.mark.parametrize(
    "labels",
    [
        {"com.openfaas.scale.min": "0", "com.openfaas.scale.max": "1"},
        {"com.openfaas.scale.factor": "0"},
        {"com.openfaas.scale.factor": "100"},
        {"com.openfaas.scale.zero": "false", "com.openfaas.scale.zero-duration": "1h30m"},
        {"com.openfaas.scale.min": "20"},
    ],
)
def test_scaling_labels_accepted(labels):
    assert spec.desired_request(params(labels=labels))["labels"].items() >= labels.items()


def test_scale_range_defaults():
    assert spec.scale_range(spec.desired_request(params())) == (1, 20)
    assert spec.scale_range(spec.desired_request(params(scale_min=2, scale_max=8))) == (2, 8)


def test_views_hide_provider_labels():
    from ansible_collections.onmetal.faas.tests.unit.plugins._fake_gateway import function_status

    body = spec.desired_request(params(env={"A": "1"}))
    before = spec.view_current(function_status(body))
    assert "function" not in before["labels"] and "com.openfaas.function" not in before["labels"]
    after = spec.view_desired(body)
    assert after["envVars"] == {"A": "1"} and after["image"] == body["image"]
    assert spec.view_current(None) == {} and spec.view_desired(None) == {}
