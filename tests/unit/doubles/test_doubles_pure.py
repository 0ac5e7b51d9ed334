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
        ("firing", 1, 4, 1, 20, 2),  # gw/handlers/alerthandler.go:103: math.Ceil(4 / 100 * 20) = 1
        ("firing", 1, 5, 1, 10, 2),  # ceil(0.5) = 1
    ],
)
def test_calculate_replicas(status, current, maximum, minimum, factor, expected):
    assert gateway.calculate_replicas(status, current, maximum, minimum, factor) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("128m", 128 * 2**20), ("128Mi", 128 * 2**20), ("1G", 2**30), ("512k", 512 * 1024), ("1048576", 2**20)]
    + [("64 MiB", 64 * 2**20), ("lots", None), ("128mb ", None), ("-1m", None)],
)
def test_parse_memory_as_go_units(value, expected):
    assert faas_swarm.parse_memory(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    # handlers/deploy.go:260-267: strconv.ParseInt -> nano CPUs; "0.5" and "500m" are NOT understood
    [("0.5", None), ("500m", None), ("fast", None), ("2", 2), ("100000000", 100_000_000), ("1e9", None)],
)
def test_parse_cpu_is_parseint_of_nano_cpus(value, expected):
    assert faas_swarm.parse_cpu(value) == expected


def test_unparseable_resources_are_dropped_with_one_log_line_each():
    lines = []
    request = {"limits": {"cpu": "0.5", "memory": "128m"}, "requests": {"cpu": "500m", "memory": "lots"}}
    assert faas_swarm.build_resources(request, lines.append) == {"limits": {"memory": 128 * 2**20}}
    assert lines == [
        "Error parsing cpu limit: *strconv.NumError",
        "Error parsing memory reservations: *errors.errorString",
        "Error parsing cpu reservations: *strconv.NumError",
    ]


def test_service_labels_and_min_replicas():
    request = {"service": "fn", "labels": {"com.openfaas.scale.min": "3", "team": "a"}, "annotations": {"topic": "x"}}
    labels = faas_swarm.service_labels(request)
    assert labels == {
        "function": "true",
        "com.openfaas.function": "fn",
        "com.openfaas.scale.min": "3",
        "team": "a",
        "com.openfaas.annotations.topic": "x",
    }
    assert faas_swarm.min_replicas(labels) == 3
    assert faas_swarm.min_replicas({}) == 1
    assert faas_swarm.min_replicas({"com.openfaas.scale.min": "two"}) == 0  # deploy.go:342-348: Atoi error -> 0


@pytest.mark.parametrize("request_body", [{"image": "x"}, [], None])
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
    # handlers/reader.go:59-67 (FunctionStatus): the image as Swarm has it, no envVars
    assert faas_swarm.function_record(service, 1) == {
        "name": "echo",
        "image": "fn-echo:1@sha256:" + "0" * 64,
        "invocationCount": 0,
        "replicas": 2,
        "envProcess": "cat",
        "availableReplicas": 1,
        "labels": {"function": "true", "com.openfaas.function": "echo"},
        "annotations": {"topic": "t"},
    }
    service["Spec"]["Labels"] = {}
    assert faas_swarm.function_record(service, 0)["annotations"] is None  # a nil map marshals to null


@pytest.mark.parametrize(
    ("request_type", "response_type", "expected"),
    [
        ("image/png", "image/jpeg", "image/png"),  # fp/proxy/proxy.go:176,228: arguments swapped
        ("", "image/jpeg", "image/jpeg"),
        ("", "", "text/plain"),
    ],
)
def test_provider_content_type_is_the_requests(request_type, response_type, expected):
    request_headers = {"Content-Type": request_type} if request_type else {}
    response_headers = [("Content-Type", response_type)] if response_type else []
    assert faas_swarm.content_type(request_headers, response_headers) == expected


@pytest.mark.parametrize(
    ("direct", "suffix", "name", "expected"),
    [
        ("false", "", "echo", "http://provider:8080"),
        ("true", "", "echo", "http://echo:8080"),
        ("true", "func", "echo", "http://echo.func:8080"),  # forwarding_proxy.go:197-203: a dot is added
        ("true", "func", "echo.ns", "http://echo.nsfunc:8080"),
    ],
)
def test_gateway_function_base(monkeypatch, direct, suffix, name, expected):
    env = {"functions_provider_url": "http://provider:8080/", "direct_functions": direct}
    env["direct_functions_suffix"] = suffix
    assert gateway.Config(env).function_base(name) == expected


@pytest.mark.parametrize(("text", "seconds"), [("65s", 65.0), ("8", 8.0), ("bogus", 8.0), ("", 8.0), ("1m", 60.0)])
def test_gateway_timeouts_fall_back_like_parse_int_or_duration(text, seconds):
    assert doublelib.go_duration_or(text, 8.0) == seconds
