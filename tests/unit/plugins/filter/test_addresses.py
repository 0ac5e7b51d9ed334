import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.onmetal.faas.plugins.filter.addresses import FilterModule, address_problems, address_scope

NAME = "gateway_nginx_admin_cidrs"


def _one(value, kind="network", name=NAME):
    problems = address_problems([value], name, kind)
    assert len(problems) == 1, problems
    return problems[0]


def test_filter_is_registered():
    assert FilterModule().filters()["address_problems"] is address_problems


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1/32",
        "::1/128",
        "10.0.0.0/24",
        "192.0.2.7",
        "0.0.0.0/0",
        "::/0",
        "2001:db8::/64",
        "2001:db8::7",
        "::ffff:10.0.0.1",
        "172.16.0.0/12",
    ],
)
def test_valid_networks_have_no_problems(value):
    assert address_problems([value], NAME) == []


def test_defaults_of_the_role_are_valid():
    assert address_problems(["127.0.0.1/32", "::1/128"], NAME) == []
    assert address_problems(["*"], "gateway_nginx_listen_addresses", "listen") == []
    assert address_problems(["127.0.0.1:8080"], "gateway_nginx_upstreams", "hostport") == []


def test_empty_list_has_no_problems():
    assert address_problems([], NAME) == []


def test_prefix_beyond_32_names_variable_value_and_range():
    assert _one("10.0.0.0/33") == (
        "gateway_nginx_admin_cidrs[0] '10.0.0.0/33': the prefix length /33 is out of range: an IPv4 prefix is "
        "/0 to /32 (/32 is a single address)"
    )


def test_prefix_beyond_128_for_ipv6():
    assert "an IPv6 prefix is /0 to /128" in _one("2001:db8::/129")


def test_octet_above_255():
    assert _one("10.0.0.300/24") == (
        "gateway_nginx_admin_cidrs[0] '10.0.0.300/24': '10.0.0.300' is not an IPv4 address: 300 is above 255"
    )


def test_trailing_comma_suggests_the_value_without_it():
    assert _one("10.0.0.0/24,") == (
        "gateway_nginx_admin_cidrs[0] '10.0.0.0/24,': a comma, semicolon or space is not part of an entry; "
        "remove it: write '10.0.0.0/24'"
    )


def test_two_networks_in_one_item_are_split_in_the_hint():
    assert _one("10.0.0.0/24, 10.1.0.0/16").endswith("give each one as its own list item: '10.0.0.0/24', '10.1.0.0/16'")


def test_separator_without_valid_pieces_gives_no_suggestion():
    assert _one("10.0.0.0/33,").endswith("is not part of an entry; remove it")


def test_host_bits_set_names_the_network_it_probably_means():
    assert _one("10.0.0.1/24") == (
        "gateway_nginx_admin_cidrs[0] '10.0.0.1/24': host bits are set: 10.0.0.1 is an address inside the network "
        "10.0.0.0/24, and nginx would silently allow all of 10.0.0.0/24; write 10.0.0.0/24 for the network, or "
        "10.0.0.1/32 for this one address"
    )


def test_host_bits_set_ipv6():
    problem = _one("2001:db8::1/64")
    assert "inside the network 2001:db8::/64" in problem
    assert "or 2001:db8::1/128 for this one address" in problem


def test_index_points_at_the_bad_entry_only():
    problems = address_problems(["127.0.0.1/32", "10.0.0.0/33", "::1/128", "10.0.0.300"], NAME)
    assert [p.split(" ", 1)[0] for p in problems] == ["gateway_nginx_admin_cidrs[1]", "gateway_nginx_admin_cidrs[3]"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.0/255.255.255.0", "nginx takes a prefix length, not a netmask; write 10.0.0.0/24"),
        ("10.0.0.0/", "the prefix length after '/' is missing; write e.g. 10.0.0.0/32 for this one address"),
        ("10.0.0.0/2x", "the prefix length '/2x' must be a number from 0 to 32"),
        ("10.0.0.0/24/8", "it has more than one '/'"),
        ("/24", "the address before '/' is missing"),
        ("10.0.0/24", "'10.0.0' is not an IPv4 address: an IPv4 address has 4 numbers separated by dots, this has 3"),
        ("10..0.1", "it has an empty part between two dots"),
        ("10.0.0.x/24", "'10.0.0.x' is not an IPv4 address: 'x' is not a number"),
        ("010.0.0.0/8", "'010' has a leading zero (some tools read it as octal); write 10"),
        ("fe80::1%eth0", "a zone index (%...) cannot be used here"),
        ("2001:db8::g/64", "'2001:db8::g' is not an IPv6 address: only hex digits permitted"),
        ("[::1]", "brackets belong to listen addresses and URLs, not to networks; write ::1"),
        ("gateway", "nginx's allow takes addresses, not host names"),
        ("all", "'all' would open the routes to every client"),
        ("", "is empty"),
    ],
)
def test_network_typos(value, expected):
    assert expected in _one(value)


def test_entry_that_is_not_a_string():
    assert _one(10) == "gateway_nginx_admin_cidrs[0] is 10 (int), not a string; quote it, e.g. '10.0.0.0/24'"


def test_a_string_instead_of_a_list():
    assert address_problems("10.0.0.0/24,10.1.0.0/16", NAME) == [
        "gateway_nginx_admin_cidrs is a string, not a list; write gateway_nginx_admin_cidrs: "
        "['10.0.0.0/24', '10.1.0.0/16']"
    ]


def test_null_and_mapping():
    assert address_problems(None, NAME) == [
        "gateway_nginx_admin_cidrs is not set (null); give a list, e.g. ['10.0.0.0/24']"
    ]
    assert address_problems({"a": 1}, NAME)[0].startswith("gateway_nginx_admin_cidrs must be a list")
    assert address_problems(5, NAME)[0].startswith("gateway_nginx_admin_cidrs must be a list")


def test_default_name():
    assert address_problems(["10.0.0.0/33"])[0].startswith("value[0] '10.0.0.0/33':")


def test_unknown_kind_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="kind must be one of network, listen, hostport; got 'cidr'"):
        address_problems([], NAME, "cidr")


LISTEN = "gateway_nginx_listen_addresses"


@pytest.mark.parametrize("value", ["*", "[::]", "[::1]", "10.0.0.1", "0.0.0.0", "localhost", "node-1.example.org"])
def test_valid_listen_addresses(value):
    assert address_problems([value], LISTEN, "listen") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("::", "'::': an IPv6 listen address needs brackets; write [::]"),
        ("10.0.0.300", "'10.0.0.300' is not an IPv4 address: 300 is above 255"),
        ("10.0.0.1:8443", "give the address without a port, e.g. 10.0.0.1 (the port is set separately)"),
        ("[::]:443", "':443' after the address: give the address alone, e.g. [::]"),
        ("0.0.0.0/0", "a listen address is one address, not a network; write e.g. 0.0.0.0"),
        ("[::/0]", "a listen address is one address, not a network; write e.g. [::]"),
        ("[::1", "the closing ']' is missing"),
        ("[fe80::1%eth0]", "a zone index (%...) cannot be used here"),
        ("-bad-", "not '*', an IPv4 address, an [IPv6] address or a host name"),
        ("2001:db8::g", "is not an IPv6 address"),
    ],
)
def test_listen_typos(value, expected):
    assert expected in _one(value, "listen", LISTEN)


UPSTREAMS = "gateway_nginx_upstreams"


@pytest.mark.parametrize(
    "value", ["127.0.0.1:8080", "[::1]:8080", "gateway:8080", "openfaas_gateway:8080", "tasks.gateway:65535"]
)
def test_valid_upstreams(value):
    assert address_problems([value], UPSTREAMS, "hostport") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://gateway:8080", "a URL; give host:port only, e.g. gateway:8080"),
        ("gateway", "the port is missing; write gateway:8080 (with the real port)"),
        ("gateway:0", "the port '0' must be a number from 1 to 65535"),
        ("gateway:99999", "the port '99999' must be a number from 1 to 65535"),
        ("gateway:http", "the port 'http' must be a number from 1 to 65535"),
        ("::1:8080", "an IPv6 address needs brackets; write [IPv6 address]:port"),
        ("[::1]", "the port is missing; write [::1]:8080"),
        ("[::1:8080", "the closing ']' is missing"),
        ("[::g]:8080", "'::g' is not an IPv6 address"),
        ("10.0.0.300:8080", "'10.0.0.300' is not an IPv4 address: 300 is above 255"),
        (":8080", "the host is missing"),
        ("-gw-:8080", "'-gw-' is neither an IPv4 address nor a host name"),
    ],
)
def test_upstream_typos(value, expected):
    assert expected in _one(value, "hostport", UPSTREAMS)


@pytest.mark.parametrize(
    ("value", "scope"),
    [
        ("10.0.0.5", "RFC 1918"),
        ("172.16.0.1", "RFC 1918"),
        ("172.31.255.254", "RFC 1918"),
        ("192.168.1.10", "RFC 1918"),
        ("172.29.50.2", "RFC 1918"),  # the lab's node network
        ("100.64.0.1", "CGNAT, RFC 6598"),
        ("100.127.255.254", "CGNAT, RFC 6598"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("fd12:3456::1", "ULA, RFC 4193"),
        ("fc00::1", "ULA, RFC 4193"),
        # Public: what a VPS's default route carries, and ranges Python's is_private calls private.
        ("203.0.113.5", "public"),
        ("192.0.2.10", "public"),
        ("198.51.100.7", "public"),
        ("172.32.0.1", "public"),
        ("100.128.0.1", "public"),
        ("169.254.1.1", "public"),
        ("2001:db8::5", "public"),
        ("2a01:4f8::1", "public"),
        (" 10.0.0.5 ", "RFC 1918"),
    ],
)
def test_address_scope(value, scope):
    assert address_scope(value) == scope


@pytest.mark.parametrize("value", ["10.0.0.0/8", "gateway", "", "10.0.0.256"])
def test_address_scope_refuses_what_is_not_an_address(value):
    with pytest.raises(AnsibleFilterError, match="is not an IPv4 or IPv6 address"):
        address_scope(value)


def test_address_scope_is_registered():
    assert FilterModule().filters()["address_scope"] is address_scope
