"""The auto-scaling chain's timing holds together: Prometheus scrapes the gateway often enough that the alert
rule's rate window holds two samples, and evaluates rules at least as often as the rule's ``for`` period.

Before this test the gateway was scraped every 15 s while the rule took ``rate(...[10s])``: the rate never had
two samples, the rule never fired and functions never scaled (issue: auto-scaling never fires). The templates are
rendered with the role's own defaults and vars, as Ansible renders them.
"""

import json
import os
import re

import jinja2
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(ROOT, "roles", "openfaas")


def _seconds(text):
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    assert match, f"not a Prometheus duration: {text!r}"
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _render(name, extra=None):
    context = {}
    for part in ("defaults", "vars"):
        with open(os.path.join(ROLE, part, "main.yml"), encoding="utf-8") as handle:
            context.update({k: v for k, v in yaml.safe_load(handle).items() if not str(v).startswith("{{")})
    context.update(extra or {})
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(ROLE, "templates")), undefined=jinja2.StrictUndefined
    )
    env.filters["to_json"] = json.dumps  # JSON is YAML, as with Ansible's to_json
    return yaml.safe_load(env.get_template(name).render(**context))


@pytest.fixture(scope="module")
def prometheus():
    return _render("prometheus.yml.j2")


@pytest.fixture(scope="module")
def rule():
    rules = _render("alert.rules.yml.j2")
    (group,) = rules["groups"]
    (alert,) = [r for r in group["rules"] if r["alert"] == "APIHighInvocationRate"]
    return alert


def _gateway_scrape(prometheus):
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "gateway"]
    return _seconds(job.get("scrape_interval", prometheus["global"]["scrape_interval"]))


def test_rate_window_holds_two_gateway_scrapes(prometheus, rule):
    window = _seconds(re.search(r"gateway_function_invocation_total\{[^}]*\}\[(\w+)\]", rule["expr"]).group(1))
    assert window >= 2 * _gateway_scrape(prometheus), (window, _gateway_scrape(prometheus))


def test_rules_are_evaluated_within_the_for_period(prometheus, rule):
    assert _seconds(prometheus["global"]["evaluation_interval"]) <= _seconds(rule["for"])


def test_gateway_scrape_at_least_as_often_as_upstream(prometheus):
    # Upstream's prometheus.yml (openfaas/faas 0.18 series) scrapes the gateway every 5 s; the role scrapes more often.
    assert _gateway_scrape(prometheus) <= 5
    assert prometheus["scrape_configs"][1]["dns_sd_configs"][0]["names"] == ["tasks.gateway"]
    assert prometheus["scrape_configs"][1]["dns_sd_configs"][0]["port"] == 8082


def test_rule_threshold_comes_from_the_role_variable():
    alert = _render("alert.rules.yml.j2", {"openfaas_scale_alert_rps": 42})["groups"][0]["rules"][0]
    assert alert["expr"].endswith("> 42")


def test_alert_chain_fits_the_scale_up_goal(prometheus, rule):
    # Worst case from the load's start to the gateway's scale call: two scrapes for a rate, one evaluation to go
    # pending, the rule's `for`, one more evaluation to fire, then Alertmanager's group_wait. Issue 13's goal is the
    # second replica serving within 20 s; a task needs about 1-2 s to start on the rig, so the chain gets 18 s.
    alertmanager = _render("alertmanager.yml.j2", {"__openfaas_credentials": {"username": "admin"}})
    evaluation = _seconds(prometheus["global"]["evaluation_interval"])
    chain = (
        2 * _gateway_scrape(prometheus)
        + 2 * evaluation
        + _seconds(rule["for"])
        + _seconds(alertmanager["route"]["group_wait"])
    )
    assert chain <= 18, chain
