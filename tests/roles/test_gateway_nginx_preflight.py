"""The gateway_nginx role refuses bad variables before it installs anything, naming the values and the fix; its
template renders the design's values (rendered on the controller, no nginx needed)."""

import os
import re

import yaml

ROLE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles", "gateway_nginx"
)

INVENTORY = """
all:
  hosts:
    ng1:
      ansible_connection: local
"""

ROLE_PLAY = """
- name: gateway_nginx preflight
  hosts: all
  gather_facts: false
  roles:
    - onmetal.faas.gateway_nginx
"""


def _flat(output):
    return re.sub(r"\s+", " ", output)


def test_read_timeout_below_gateway_write_timeout_is_refused(run_play):
    rc, out = run_play(INVENTORY, ROLE_PLAY, {"gateway_nginx_proxy_read_timeout": 30})
    text = _flat(out)
    assert rc != 0
    assert "gateway_nginx_proxy_read_timeout (30 s)" in text
    assert "gateway_nginx_gateway_write_timeout (65 s)" in text
    assert "the default is the timeout chain's nginx link, 70 s for openfaas_timeout 60" in text


def test_write_timeout_comes_from_the_openfaas_inputs(run_play):
    """The role alone derives the gateway's write timeout from openfaas_timeout, no fact of the openfaas role."""
    rc, out = run_play(INVENTORY, ROLE_PLAY, {"openfaas_timeout": 300, "gateway_nginx_proxy_read_timeout": 120})
    text = _flat(out)
    assert rc != 0
    assert "gateway_nginx_gateway_write_timeout (305 s)" in text
    assert "310 s for openfaas_timeout 300" in text
    assert "raise it above 305" in text


def test_nginx_waiting_exactly_as_long_as_the_gateway_writes_is_refused(run_play):
    """One rule with the chain (_timeouts.nginx_outlasts): nginx must wait longer than the gateway's write timeout;
    the preflight used to accept equality in Jinja while the chain refused it."""
    rc, out = run_play(INVENTORY, ROLE_PLAY, {"gateway_nginx_proxy_send_timeout": 65})
    text = _flat(out)
    assert rc != 0
    assert (
        "gateway_nginx_proxy_send_timeout (65 s) must be longer than the gateway's write timeout "
        "gateway_nginx_gateway_write_timeout (65 s)" in text
    )
    assert "raise it above 65" in text
    assert "gateway_nginx_proxy_read_timeout (" not in text  # the default read timeout (70 s) holds


def test_overrides_that_break_the_chain_are_refused(run_play):
    rc, out = run_play(INVENTORY, ROLE_PLAY, {"openfaas_timeout_overrides": {"nginx_proxy_read_timeout": 60}})
    text = _flat(out)
    assert rc != 0
    assert "ng1: the OpenFaaS timeout chain is inconsistent (openfaas_timeout=60" in text
    assert "nginx proxy_read_timeout 60s must be longer than the gateway's gateway_write_timeout 65s" in text


def test_chain_fallbacks_are_the_openfaas_defaults():
    """gateway_nginx falls back to the openfaas role's defaults when the chain's inputs are unset: one set of values."""
    roles = os.path.dirname(ROLE)
    with open(os.path.join(roles, "openfaas", "defaults", "main.yml"), encoding="utf-8") as handle:
        openfaas = yaml.safe_load(handle)
    with open(os.path.join(ROLE, "vars", "main.yml"), encoding="utf-8") as handle:
        chain = yaml.safe_load(handle)["__gateway_nginx_chain"]
    expected = {
        "openfaas_timeout": openfaas["openfaas_timeout"],
        "openfaas_queue_max_inflight": openfaas["openfaas_queue_max_inflight"],
        "openfaas_timeout_margin": openfaas["openfaas_timeout_margin"],
        "openfaas_timeout_overrides": openfaas["openfaas_timeout_overrides"],
    }
    found = dict(re.findall(r"(openfaas_\w+) \| default\(([^)]*)\)", chain))
    assert set(found) == set(expected), found
    for name, value in expected.items():
        assert yaml.safe_load(found[name]) == value, (name, found[name], value)


def test_certificate_without_key_is_refused(run_play):
    rc, out = run_play(INVENTORY, ROLE_PLAY, {"gateway_nginx_tls_cert": "-----BEGIN CERTIFICATE-----"})
    text = _flat(out)
    assert rc != 0
    assert "set both gateway_nginx_tls_cert and gateway_nginx_tls_key" in text


def test_malformed_upstream_is_refused(run_play):
    rc, out = run_play(INVENTORY, ROLE_PLAY, {"gateway_nginx_upstreams": ["http://gateway:8080"]})
    text = _flat(out)
    assert rc != 0
    assert 'gateway_nginx_upstreams must list at least one gateway as "host:port"' in text


def _stopped_at(out, task):
    """The run failed at ``task`` of the preflight, changed nothing and ran no task after it."""
    assert re.search(r"ng1\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=1\s", out), out
    assert f"TASK [onmetal.faas.gateway_nginx : {task}]" in out
    tail = out.split(f"TASK [onmetal.faas.gateway_nginx : {task}]", 1)[1]
    assert "TASK [" not in tail, "a task ran after the failed check"
    assert "Install nginx" not in out


def test_admin_cidr_prefix_typo_is_refused_before_anything_changes(run_play):
    rc, out = run_play(INVENTORY, ROLE_PLAY, {"gateway_nginx_admin_cidrs": ["127.0.0.1/32", "10.0.0.0/33"]})
    text = _flat(out)
    assert rc != 0
    assert (
        "ng1: gateway_nginx_admin_cidrs must list IPv4 or IPv6 addresses or networks in CIDR notation (network "
        "address/prefix length, such as 10.0.0.0/24, 192.0.2.7 or 2001:db8::/64); gateway_nginx_admin_cidrs[1] "
        "'10.0.0.0/33': the prefix length /33 is out of range: an IPv4 prefix is /0 to /32 (/32 is a single "
        "address). Nothing was changed on the host: correct the list and re-run." in text
    )
    _stopped_at(out, "Check the admin networks")


def test_every_admin_cidr_typo_is_named_in_one_message(run_play):
    rc, out = run_play(
        INVENTORY,
        ROLE_PLAY,
        {"gateway_nginx_admin_cidrs": ["10.0.0.300/24", "10.0.0.0/24,", "10.0.0.1/24", "2001:db8::/64"]},
    )
    text = _flat(out)
    assert rc != 0
    assert "gateway_nginx_admin_cidrs[0] '10.0.0.300/24': '10.0.0.300' is not an IPv4 address: 300 is above 255" in text
    assert "gateway_nginx_admin_cidrs[1] '10.0.0.0/24,': a comma, semicolon or space is not part of an entry" in text
    assert (
        "gateway_nginx_admin_cidrs[2] '10.0.0.1/24': host bits are set: 10.0.0.1 is an address inside the network "
        "10.0.0.0/24" in text
    )
    assert "write 10.0.0.0/24 for the network, or 10.0.0.1/32 for this one address" in text
    assert "gateway_nginx_admin_cidrs[3]" not in text
    _stopped_at(out, "Check the admin networks")


def test_ipv6_listen_address_without_brackets_is_refused(run_play):
    rc, out = run_play(INVENTORY, ROLE_PLAY, {"gateway_nginx_listen_addresses": ["*", "::"]})
    text = _flat(out)
    assert rc != 0
    assert "gateway_nginx_listen_addresses[1] '::': an IPv6 listen address needs brackets; write [::]" in text
    _stopped_at(out, "Check the listen addresses")


def test_valid_addresses_pass_the_preflight(run_preflight):
    rc, out = run_preflight(
        "gateway_nginx",
        INVENTORY,
        {
            "gateway_nginx_admin_cidrs": ["127.0.0.1/32", "::1/128", "10.0.0.0/8", "192.0.2.7", "2001:db8::/64"],
            "gateway_nginx_listen_addresses": ["*", "[::]"],
            "gateway_nginx_upstreams": ["127.0.0.1:8080", "[::1]:8080", "openfaas_gateway:8080"],
        },
    )
    assert rc == 0, out
    assert "TASK [onmetal.faas.gateway_nginx : Check the admin networks]" in out


def test_old_tls_version_is_refused_by_the_argument_spec(run_play):
    rc, out = run_play(INVENTORY, ROLE_PLAY, {"gateway_nginx_tls_protocols": ["TLSv1.1", "TLSv1.2"]})
    assert rc != 0
    assert "TLSv1.1" in out and "gateway_nginx_tls_protocols" in out


def _render(render_role_template, extra_vars=None):
    return render_role_template("gateway_nginx", "nginx.conf.j2", extra_vars).read_text()


def test_defaults_render_the_design_values(render_role_template):
    conf = _render(render_role_template)
    for line in [
        "keepalive_timeout 65s;",
        "keepalive_requests 100000;",
        "client_body_buffer_size 128k;",
        "client_max_body_size 50M;",
        "server 127.0.0.1:8080 max_fails=3 fail_timeout=10s;",
        "keepalive 64;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_read_timeout 70s;",
        "server_tokens off;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "proxy_set_header X-Request-Id $onmetal_request_id;",
        "allow 127.0.0.1/32;",
        "allow ::1/128;",
        "return 301 https://$host$request_uri;",
    ]:
        assert line in conf, line
    function_block = re.search(r"location /function/ \{[^}]*\}", conf).group(0)
    assert "limit_req" not in function_block
    admin_block = re.search(r"location /system/ \{[^}]*\}", conf).group(0)
    assert "deny all;" in admin_block and "limit_req zone=onmetal_admin" in admin_block


def test_no_keepalive_and_plain_http(render_role_template):
    conf = _render(
        render_role_template,
        {"gateway_nginx_upstream_keepalive": 0, "gateway_nginx_tls_enabled": False, "gateway_nginx_http_port": 8000},
    )
    assert "proxy_http_version" not in conf
    assert "keepalive 64" not in conf
    assert "ssl_certificate" not in conf
    assert "return 301" not in conf
    assert "listen *:8000 default_server;" in conf


def test_function_rate_limit_and_timeout_chain(render_role_template):
    conf = _render(
        render_role_template,
        {
            "gateway_nginx_rate_limit_functions": True,
            "openfaas_timeout": 300,
            "gateway_nginx_https_port": 8443,
        },
    )
    assert "limit_req_zone $binary_remote_addr zone=onmetal_functions:10m rate=100r/s;" in conf
    function_block = re.search(r"location /function/ \{[^}]*\}", conf).group(0)
    assert "limit_req zone=onmetal_functions burst=200 nodelay;" in function_block
    assert "proxy_read_timeout 310s;" in function_block
    assert "proxy_send_timeout 310s;" in function_block
    assert "return 301 https://$host:8443$request_uri;" in conf


def test_gateway_nginx_alone_renders_the_chain_of_openfaas_timeout(render_role_template):
    """Issue 15 item 2: the layer alone (--tags gateway_nginx, no openfaas role, no published fact) renders nginx's
    link of the chain for openfaas_timeout 300 (310 s), not the 70 s of the default chain."""
    conf = _render(render_role_template, {"openfaas_timeout": 300})
    for block in (re.search(r"location /function/ \{[^}]*\}", conf).group(0), conf):
        assert "proxy_read_timeout 310s;" in block
        assert "proxy_send_timeout 310s;" in block
    assert "proxy_read_timeout 70s;" not in conf
    margin = _render(render_role_template, {"openfaas_timeout": 300, "openfaas_timeout_margin": 10})
    assert "proxy_read_timeout 320s;" in margin


def test_other_managers_gateways_are_backup_upstreams(render_role_template):
    managers = {"stdout_lines": ["self 10.0.0.1", "10.0.0.1:2377", "10.0.0.2:2377", "[fd00::3]:2377", ""]}
    conf = _render(render_role_template, {"__gateway_nginx_managers": managers, "openfaas_gateway_port": 8081})
    upstream = re.search(r"upstream onmetal_gateway \{[^}]*\}", conf).group(0)
    servers = [line.strip() for line in upstream.splitlines() if line.strip().startswith("server ")]
    assert servers == [
        "server 127.0.0.1:8080 max_fails=3 fail_timeout=10s; # onmetal:local-gateway",
        "server 10.0.0.2:8081 max_fails=3 fail_timeout=10s backup;",
        "server [fd00::3]:8081 max_fails=3 fail_timeout=10s backup;",
    ]
    listed = _render(
        render_role_template,
        {"__gateway_nginx_managers": managers, "gateway_nginx_upstreams": ["127.0.0.1:8080", "10.0.0.2:8080"]},
    )
    assert "server 10.0.0.2:8080 max_fails=3 fail_timeout=10s;" in listed  # already an upstream: not twice
    assert "10.0.0.2:8080 max_fails=3 fail_timeout=10s backup" not in listed
    off = _render(render_role_template, {"__gateway_nginx_managers": managers, "gateway_nginx_peer_fallback": False})
    assert " backup;" not in off
    alone = _render(render_role_template)  # no swarm (the discovery found nothing): no backup
    assert " backup;" not in alone
