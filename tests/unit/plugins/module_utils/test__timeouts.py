import pytest

from ansible_collections.onmetal.faas.plugins.module_utils import _timeouts


@pytest.mark.parametrize(
    "value, seconds",
    [(60, 60), ("60", 60), ("65s", 65), ("1m5s", 65), ("5m", 300), ("1h", 3600), ("2h1m1s", 7261), (60.0, 60)],
)
def test_parse_seconds_accepts_ints_strings_and_go_durations(value, seconds):
    assert _timeouts.parse_seconds(value) == seconds


@pytest.mark.parametrize("value", ["", "abc", "5ms", "-3", 0, -5, True, None, "1.5s", [60]])
def test_parse_seconds_rejects_other_values_naming_them(value):
    with pytest.raises(ValueError) as err:
        _timeouts.parse_seconds(value, "openfaas_timeout")
    assert "openfaas_timeout" in str(err.value)


def test_default_chain_for_sixty_seconds_matches_the_upstream_helm_values():
    chain = _timeouts.derive(60)
    assert chain == {
        "function_exec_timeout": 60,
        "gateway_upstream_timeout": 60,
        "gateway_read_timeout": 65,
        "gateway_write_timeout": 65,
        "nginx_proxy_read_timeout": 70,
        "queue_ack_wait": 65,
        "max_inflight": 1,
    }
    assert _timeouts.check(chain) == []


@pytest.mark.parametrize("timeout", [1, 30, 60, 300, "5m", 3600])
@pytest.mark.parametrize("inflight", [1, 4, 16])
@pytest.mark.parametrize("margin", [1, 5, 30])
def test_derived_chains_always_hold(timeout, inflight, margin):
    assert _timeouts.check(_timeouts.derive(timeout, inflight, margin)) == []


def test_ack_wait_scales_with_max_inflight():
    assert _timeouts.derive(60, max_inflight=4)["queue_ack_wait"] == 245


def test_nginx_shorter_than_gateway_write_is_reported_with_both_values_and_the_fix():
    errors = _timeouts.check(_timeouts.derive(60, overrides={"nginx_proxy_read_timeout": 60}))
    assert any(
        "nginx proxy_read_timeout 60s must be longer than the gateway's gateway_write_timeout 65s" in e
        and "raise nginx_proxy_read_timeout above 65s" in e
        for e in errors
    )


def test_exec_longer_than_upstream_is_reported():
    errors = _timeouts.check(_timeouts.derive(60, overrides={"function_exec_timeout": "2m"}))
    assert errors and "function exec_timeout 120s is longer than the gateway's upstream_timeout 60s" in errors[0]


def test_upstream_not_shorter_than_read_is_reported():
    errors = _timeouts.check(_timeouts.derive(60, overrides={"gateway_upstream_timeout": 65}))
    assert len([e for e in errors if "upstream_timeout 65s must be shorter" in e]) == 2


def test_short_ack_wait_is_reported():
    errors = _timeouts.check(_timeouts.derive(60, max_inflight=2, overrides={"queue_ack_wait": "90s"}))
    assert errors == [
        "queue-worker ack_wait 90s is shorter than exec_timeout 60s x max_inflight 2: NATS would redeliver async "
        "calls that are still running; raise queue_ack_wait to at least 120s"
    ]


def test_empty_overrides_keep_the_derived_value():
    assert _timeouts.derive(60, overrides={"queue_ack_wait": "", "gateway_read_timeout": None}) == _timeouts.derive(60)


def test_unknown_override_names_the_links():
    with pytest.raises(ValueError, match="unknown timeout 'nginx_timeout'; the chain has: function_exec_timeout"):
        _timeouts.derive(60, overrides={"nginx_timeout": 10})


@pytest.mark.parametrize("inflight", [0, -1, True])
def test_max_inflight_must_be_positive(inflight):
    with pytest.raises(ValueError, match="max_inflight"):
        _timeouts.derive(60, max_inflight=inflight)


def test_go_duration():
    assert _timeouts.go_duration(65) == "65s"


def test_nginx_must_outlast_the_gateway_one_rule_for_the_chain_and_gateway_nginx():
    assert _timeouts.nginx_outlasts(70, 65) is True
    assert _timeouts.nginx_outlasts(65, 65) is False  # equality: refused by both checks
    chain_errors = _timeouts.check(_timeouts.derive(60, overrides={"nginx_proxy_read_timeout": 65}))
    assert len(chain_errors) == 2  # against the gateway's read and write timeouts (65 s each)
    assert _timeouts.check_nginx(65, 70, 65) == [
        "gateway_nginx_proxy_read_timeout (65 s) must be longer than the gateway's write timeout "
        "gateway_nginx_gateway_write_timeout (65 s), or nginx answers 504 to functions that the gateway still allows "
        "to run; raise it above 65"
    ]


def test_check_nginx_names_each_broken_setting_and_takes_durations():
    assert _timeouts.check_nginx("70", "1m10s", "65s") == []
    errors = _timeouts.check_nginx(30, "1m", 65)
    assert [e.split(" (")[0] for e in errors] == [
        "gateway_nginx_proxy_read_timeout",
        "gateway_nginx_proxy_send_timeout",
    ]
    assert "(30 s)" in errors[0] and "(60 s)" in errors[1]


def test_check_nginx_refuses_values_that_are_not_seconds():
    with pytest.raises(ValueError, match="gateway_nginx_proxy_send_timeout: expected seconds"):
        _timeouts.check_nginx(70, "later", 65)
