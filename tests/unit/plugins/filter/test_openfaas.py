import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.onmetal.faas.plugins.filter.openfaas import FilterModule, timeout_chain


def test_filter_is_registered():
    assert FilterModule().filters()["timeout_chain"] is timeout_chain


def test_filter_returns_chain_durations_and_no_errors():
    chain = timeout_chain("1m")
    assert chain["gateway_write_timeout"] == 65
    assert chain["durations"]["gateway_write_timeout"] == "65s"
    assert chain["durations"]["queue_ack_wait"] == "65s"
    assert chain["errors"] == []


def test_filter_reports_broken_links():
    chain = timeout_chain(60, 1, 5, {"nginx_proxy_read_timeout": 30})
    assert len(chain["errors"]) == 2


def test_filter_turns_bad_values_into_filter_errors():
    with pytest.raises(AnsibleFilterError, match="timeout_chain: openfaas_timeout: expected seconds"):
        timeout_chain("soon")


def test_nginx_timeout_problems_is_registered_and_uses_the_chain_rule():
    filters = FilterModule().filters()
    assert filters["nginx_timeout_problems"](70, 70, 65) == []
    problems = filters["nginx_timeout_problems"](65, 70, 65)
    assert len(problems) == 1 and "raise it above 65" in problems[0]
    with pytest.raises(AnsibleFilterError, match="nginx_timeout_problems: gateway_nginx_proxy_read_timeout"):
        filters["nginx_timeout_problems"](True, 70, 65)
