# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure helpers of the OpenFaaS test doubles: durations, credentials, scaling rule, service specs."""

import base64

import doublelib
import faas_swarm
import gateway
import pytest


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("65s", 65.0), ("1m5s", 65.0), ("500ms", 0.5), ("2h", 7200.0), ("8", 8.0), ("1.5s", 1.5), ("5m5s", 305.0)],
)
def test_go_duration(text, seconds):
    assert doublelib.go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5 s", "s", "10x", "1m-5s"])
def test_go_duration_rejects_garbage_naming_the_variable(text):
    with pytest.raises(doublelib.ConfigError, match="ack_wait"):
        doublelib.go_duration(text, "ack_wait")


def _basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (_basic("admin", "pw"), True),
        (_basic("admin", "pw:with:colons"), False),
        (_basic("admin", "other"), False),
        (_basic("root", "pw"), False),
        ("Bearer abc", False),
        ("Basic !!!notbase64", False),
        ("Basic " + base64.b64encode(b"no-colon").decode(), False),
        (None, False),
    ],
)
def test_credentials_match(header, expected):
    assert doublelib.credentials_match(header, "admin", "pw") is expected


def test_password_may_contain_colons():
    assert doublelib.credentials_match(_basic("admin", "a:b"), "admin", "a:b")


@pytest.mark.parametrize(
    ("status", "current", "maximum", "minimum", "factor", "expected"),
    [
        ("firing", 1, 20, 1, 20, 5),
        ("firing", 17, 20, 1, 20, 20),
        ("firing", 1, 20, 1, 0, 1),  # factor 0 disables scaling: back to min
        ("resolved", 15, 20, 2, 20, 2),
        ("firing", 1, 4, 1, 20, 1),  # step rounds down to 0 as upstream
    ],
)
def test_calculate_replicas(status, current, maximum, minimum, factor, expected):
    assert gateway.calculate_replicas(status, current, maximum, minimum, factor) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("128m", 128 * 2**20), ("128Mi", 128 * 2**20), ("1G", 2**30), ("512k", 512 * 1024), ("1048576", 2**20)],
)
def test_parse_memory(value, expected):
    assert faas_swarm.parse_memory(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.5", 500_000_000), ("500m", 500_000_000), ("2", 2_000_000_000), ("100000000", 100_000_000)],
)
def test_parse_cpu(value, expected):
    assert faas_swarm.parse_cpu(value) == expected


@pytest.mark.parametrize(("func", "value"), [(faas_swarm.parse_memory, "lots"), (faas_swarm.parse_cpu, "fast")])
def test_resource_parse_errors_are_400(func, value):
    with pytest.raises(faas_swarm.RequestError) as err:
        func(value)
    assert err.value.status == 400


def test_service_labels_and_min_replicas():
    request = {"service": "fn", "labels": {"com.openfaas.scale.min": "3", "team": "a"}, "annotations": {"topic": "x"}}
    labels = faas_swarm.service_labels(request, uid="42")
    assert labels == {
        "function": "true",
        "com.openfaas.function": "fn",
        "com.openfaas.uid": "42",
        "com.openfaas.scale.min": "3",
        "team": "a",
        "com.openfaas.annotations.topic": "x",
    }
    assert faas_swarm.min_replicas(labels) == 3
    assert faas_swarm.min_replicas({}) == 1


@pytest.mark.parametrize("request_body", [{"image": "x"}, {"service": "Bad_Name", "image": "x"}, {"service": "ok"}, []])
def test_validate_request_rejects(request_body):
    with pytest.raises(faas_swarm.RequestError) as err:
        faas_swarm.validate_request(request_body)
    assert err.value.status == 400


def test_function_record_from_swarm_service():
    service = {
        "ID": "abc",
        "Spec": {
            "Name": "echo",
            "Labels": {"function": "true", "com.openfaas.function": "echo", "com.openfaas.annotations.topic": "t"},
            "Mode": {"Replicated": {"Replicas": 2}},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "fn-echo:1@sha256:" + "0" * 64, "Env": ["fprocess=cat", "A=b=c"]}
            },
        },
    }
    assert faas_swarm.function_record(service, 1) == {
        "name": "echo",
        "image": "fn-echo:1",
        "replicas": 2,
        "availableReplicas": 1,
        "envProcess": "cat",
        "envVars": {"A": "b=c"},
        "labels": {"function": "true", "com.openfaas.function": "echo"},
        "annotations": {"topic": "t"},
        "invocationCount": 0,
    }
