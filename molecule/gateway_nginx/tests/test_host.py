"""The gateway_nginx scenario's host state, read on each node with pytest-testinfra over Molecule's inventory: the
login and become, the nginx package, service, listening ports, running configuration and self-signed certificate.

verify.yml runs it first (pytest --hosts=ansible://all --ansible-inventory=$MOLECULE_INVENTORY_FILE); what calls
modules or goes through nginx over HTTP (the role refusing a bad value, the check-mode run, calls from the controller
and from the node) stays in verify.yml.
"""

import re

import pytest
import testinfra

# The write timeout of the scenario's gateway (what the openfaas role would publish): the floor of nginx's timeouts.
GATEWAY_WRITE_TIMEOUT = 65


def test_the_converge_logged_in_as_a_normal_user_and_became_root(host):
    """Issue 15 item 6: Molecule connects as the scenario's user (ansible_user onmetal, docker exec -u onmetal) and
    the project's playbooks become root through sudo."""
    assert host.check_output("id -un") == "onmetal"
    with host.sudo():
        assert host.check_output("id -un") == "root"


def test_nginx_is_installed_runs_under_systemd_and_starts_at_boot(host):
    assert host.package("nginx").is_installed
    nginx = host.service("nginx")
    assert nginx.is_running
    assert nginx.is_enabled


@pytest.mark.parametrize("port", [80, 443])
def test_nginx_listens_on_every_address(host, port):
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_the_configuration_holds_the_timeout_chain_upstream_keepalive_and_hardening(host):
    with host.sudo():  # nginx -T reads root-only files (the TLS key)
        conf = host.check_output("nginx -T")
    # The read and send timeouts of the sync function route.
    route = r"location /function/ \{[^}]*proxy_read_timeout (\d+)s;[^}]*proxy_send_timeout (\d+)s;"
    function_timeouts = [int(seconds) for pair in re.findall(route, conf) for seconds in pair]
    assert len(function_timeouts) == 2, conf
    assert min(function_timeouts) >= GATEWAY_WRITE_TIMEOUT, function_timeouts
    for pattern in [
        r"proxy_http_version 1\.1;",
        r'proxy_set_header Connection "";',
        r"upstream onmetal_gateway \{[^}]*keepalive 64;",
        r"server 127\.0\.0\.1:8080 ",
        r"server_tokens off;",
        r"ssl_protocols TLSv1\.2 TLSv1\.3;",
        r"client_max_body_size 50M;",
        r"keepalive_timeout 65s;",
        r"keepalive_requests 100000;",
        r"client_body_buffer_size 128k;",
    ]:
        assert re.search(pattern, conf), f"{pattern} not in nginx -T:\n{conf}"


def test_the_self_signed_certificate_names_the_nodes_address_and_127_0_0_1(host):
    """Issue 14 item 6: the generated certificate names the node's address and 127.0.0.1, so a client given the
    certificate verifies it (verify.yml makes that call from the controller with curl --cacert)."""
    if host.ansible.get_variables().get("gateway_nginx_tls_cert"):
        pytest.skip("the node serves a certificate supplied as a variable")
    name = host.backend.get_hostname()
    address = testinfra.get_host("local://").check_output(
        "docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' %s", name
    )
    with host.sudo():
        names = host.check_output("openssl x509 -noout -ext subjectAltName -in /etc/nginx/tls/gateway.crt")
    assert re.search(r"IP Address:" + re.escape(address) + r"(,|$)", names), names
    assert re.search(r"IP Address:127\.0\.0\.1(,|$)", names), names
