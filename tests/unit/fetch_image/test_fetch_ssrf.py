"""The SSRF table: every URL, address and redirect the download must refuse, and why."""

from __future__ import annotations

import ipaddress

import pytest
from fetch_testkit import PBS_ADDRESS, FakeOpener, FakeResolver, Reply

from fetch_image.addresses import (
    HostPort,
    check_addresses,
    ip_literal,
    is_public,
    normalise_host,
    parse_image_url,
)
from fetch_image.errors import BlockedUrl, ImageHostError
from fetch_image.fetcher import download
from fetch_image.settings import FetchSettings

ALLOWED = frozenset({HostPort("pbs.twimg.com", 443), HostPort("images.example.org", 8443)})


# ---------------------------------------------------------------- URL rules


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://pbs.twimg.com/media/a.jpg", "url scheme 'http' is not allowed; use https"),
        ("ftp://pbs.twimg.com/media/a.jpg", "url scheme 'ftp' is not allowed; use https"),
        ("file:///etc/passwd", "url scheme 'file' is not allowed; use https"),
        ("//pbs.twimg.com/media/a.jpg", "url scheme '(none)' is not allowed; use https"),
        ("https://user:secret@pbs.twimg.com/a.jpg", "url must not carry credentials"),
        ("https://user@pbs.twimg.com/a.jpg", "url must not carry credentials"),
        ("https://pbs.twimg.com@evil.example/a.jpg", "url must not carry credentials"),
        (
            "https://pbs.twimg.com\\@evil.example/a.jpg",
            "url contains whitespace, control characters or backslashes",
        ),
        (
            "https://pbs.twimg.com/a b.jpg",
            "url contains whitespace, control characters or backslashes",
        ),
        (
            "https://pbs.twimg.com/a.jpg\r\nX-Injected: 1",
            "url contains whitespace, control characters or backslashes",
        ),
        ("https:///a.jpg", "url has no host"),
        ("https://evil.example/a.jpg", "host 'evil.example' is not on the image host allow-list"),
        (
            "https://pbs.twimg.com.evil.example/a.jpg",
            "host 'pbs.twimg.com.evil.example' is not on the image host allow-list",
        ),
        ("https://twimg.com/a.jpg", "host 'twimg.com' is not on the image host allow-list"),
        (
            "https://evilpbs.twimg.com/a.jpg",
            "host 'evilpbs.twimg.com' is not on the image host allow-list",
        ),
        ("https://pbs.twimg.co/a.jpg", "host 'pbs.twimg.co' is not on the image host allow-list"),
        # Look-alikes: a dotted s, and a Cyrillic er (U+0440) in place of the Latin p.
        (
            "https://pb\u1e61.twimg.com/a.jpg",
            "host 'xn--pb-yzs.twimg.com' is not on the image host allow-list",
        ),
        (
            "https://\u0440bs.twimg.com/a.jpg",
            "host 'xn--bs-kmc.twimg.com' is not on the image host allow-list",
        ),
        (
            "https://pbs.twimg.com:8443/a.jpg",
            "host 'pbs.twimg.com:8443' is not on the image host allow-list",
        ),
        (
            "https://images.example.org/a.png",
            "host 'images.example.org' is not on the image host allow-list",
        ),
        ("https://pbs.twimg.com:0/a.jpg", "port 0 is not a valid port"),
        ("https://pbs.twimg.com:99999/a.jpg", "url is not a valid URL (bad host or port)"),
        ("https://pbs.twimg.com%2e/a.jpg", "host 'pbs.twimg.com%2e' is not a valid DNS name"),
        ("https://pbs_twimg.com/a.jpg", "host 'pbs_twimg.com' is not a valid DNS name"),
        ("https://pbs..twimg.com/a.jpg", "host is not a valid internationalised domain name"),
    ],
)
def test_url_rule_refuses(url: str, reason: str) -> None:
    # GIVEN a URL that breaks one URL rule
    # WHEN it is checked
    # THEN it is refused with the readable reason
    with pytest.raises(BlockedUrl) as raised:
        parse_image_url(url, ALLOWED)
    assert str(raised.value) == reason


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("169.254.169.254", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("8.8.8.8", "8.8.8.8"),
        # Not an address in any spelling, but WHATWG parsers read a numeric last label as one.
        ("1.2.3.4.5", "0.0.0.0"),
        ("images.0x10", "0.0.0.0"),
    ],
)
def test_ipv4_literals_in_any_spelling_are_refused_without_the_allow_list(
    spelling: str, address: str
) -> None:
    # GIVEN a host written as an IPv4 literal in some spelling
    # WHEN it is normalised (before and independently of the allow-list)
    # THEN it is recognised as that address and refused
    assert ip_literal(spelling.removesuffix(".")) == ipaddress.ip_address(address)
    with pytest.raises(BlockedUrl) as raised:
        normalise_host(spelling)
    assert str(raised.value) == (
        f"host {spelling.removesuffix('.')!r} is an IP address literal ({address}); "
        "only host names are allowed"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://[::ffff:127.0.0.1]/a.jpg",
        "https://[::1]/a.jpg",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://[0:0:0:0:0:ffff:7f00:1]/a.jpg",
    ],
)
def test_ipv6_literals_are_refused(url: str) -> None:
    # GIVEN a URL whose host is an IPv6 literal
    # WHEN it is checked
    # THEN it is refused as a literal
    with pytest.raises(BlockedUrl) as raised:
        parse_image_url(url, ALLOWED)
    assert str(raised.value) == "host is an IPv6 address literal; only host names are allowed"


@pytest.mark.parametrize(
    ("url", "host", "port", "target"),
    [
        ("https://pbs.twimg.com/media/a.jpg", "pbs.twimg.com", 443, "/media/a.jpg"),
        ("https://PBS.TwImg.COM./media/a.jpg", "pbs.twimg.com", 443, "/media/a.jpg"),
        ("https://pbs.twimg.com:443/media/a.jpg#x", "pbs.twimg.com", 443, "/media/a.jpg"),
        # Full-width letters map to ASCII under IDNA: the same host, not a look-alike.
        ("https://\uff50\uff42\uff53.twimg.com/a.jpg", "pbs.twimg.com", 443, "/a.jpg"),
        (
            "https://pbs.twimg.com/media/a?format=jpg&name=large",
            "pbs.twimg.com",
            443,
            "/media/a?format=jpg&name=large",
        ),
        ("https://pbs.twimg.com", "pbs.twimg.com", 443, "/"),
        ("https://pbs.twimg.com/caf\u00e9%20.jpg", "pbs.twimg.com", 443, "/caf%C3%A9%20.jpg"),
        ("https://images.example.org:8443/b.png", "images.example.org", 8443, "/b.png"),
    ],
)
def test_url_rule_accepts_and_normalises(url: str, host: str, port: int, target: str) -> None:
    # GIVEN an https URL to an allow-listed host and port
    # WHEN it is checked
    # THEN the host is normalised and the request target is clean ASCII
    image_url = parse_image_url(url, ALLOWED)
    assert (image_url.host, image_url.port, image_url.target) == (host, port, target)


# ---------------------------------------------------------------- address rules

BLOCKED_ADDRESSES = [
    "127.0.0.1",
    "127.53.0.1",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # EC2 instance metadata
    "169.254.170.2",  # ECS task credentials
    "100.64.0.1",  # shared address space
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fd00:ec2::254",  # EC2 instance metadata over IPv6
    "fc00::1",
    "fec0::1",  # site-local
    "ff02::1",
    "100::1",  # discard-only
    "2001:db8::1",
    "2001::1",  # Teredo
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::ffff:100.64.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b:1::1",  # local-use NAT64
]


@pytest.mark.parametrize("address", BLOCKED_ADDRESSES)
def test_address_rule_refuses(address: str) -> None:
    # GIVEN a host that resolves to a non-public address
    # WHEN its addresses are checked
    # THEN it is refused, naming the address
    with pytest.raises(BlockedUrl) as raised:
        check_addresses("pbs.twimg.com", [address], ())
    shown = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    assert str(raised.value) == f"host 'pbs.twimg.com' resolves to non-public address {shown}"


@pytest.mark.parametrize(
    "address",
    [
        PBS_ADDRESS,
        "8.8.8.8",
        "2606:4700::6810:84e5",
        "2a04:4e42::159",
        "::ffff:151.101.36.159",  # IPv4-mapped form of a public address
        "64:ff9b::9765:249f",  # NAT64 (DNS64 in an IPv6-only subnet) of a public address
    ],
)
def test_address_rule_accepts_public_addresses(address: str) -> None:
    # GIVEN a public address, in IPv4, IPv6, mapped or NAT64 form
    # WHEN it is judged
    # THEN it is public
    assert is_public(ipaddress.ip_address(address)) is True


def test_every_resolved_address_must_be_public() -> None:
    # GIVEN a host with one public and one private address
    # WHEN its addresses are checked
    # THEN the host is refused even though the first address is public
    with pytest.raises(BlockedUrl) as raised:
        check_addresses("pbs.twimg.com", [PBS_ADDRESS, "10.0.0.1"], ())
    assert str(raised.value) == "host 'pbs.twimg.com' resolves to non-public address 10.0.0.1"


def test_resolver_answer_that_is_not_an_address_is_refused() -> None:
    # GIVEN a resolver that answers with something that is not an address
    # WHEN it is checked
    # THEN it is refused
    with pytest.raises(BlockedUrl) as raised:
        check_addresses("pbs.twimg.com", ["localhost"], ())
    assert str(raised.value) == "resolver returned 'localhost', which is not an IP address"


def test_empty_resolution_is_a_host_error() -> None:
    # GIVEN a resolver that answers with no address at all
    # WHEN it is checked
    # THEN it is a (transient) host error
    with pytest.raises(ImageHostError) as raised:
        check_addresses("pbs.twimg.com", [], ())
    assert str(raised.value) == "host 'pbs.twimg.com' resolved to no address"


def test_extra_allowed_networks_exempt_the_local_image_server() -> None:
    # GIVEN loopback exempted, as the local cloud configures it
    exempt = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    # WHEN a host resolving to loopback is checked
    checked = check_addresses("images.localhost", ["127.0.0.1", "::1", "127.0.0.1"], exempt)
    # THEN its addresses pass, once each, in the resolver's order
    assert checked == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]


def test_extra_allowed_networks_exempt_nothing_else() -> None:
    # GIVEN loopback exempted
    exempt = (ipaddress.ip_network("127.0.0.0/8"),)
    # WHEN a host resolving to a private address is checked
    # THEN it is still refused
    with pytest.raises(BlockedUrl) as raised:
        check_addresses("pbs.twimg.com", ["10.1.2.3"], exempt)
    assert str(raised.value) == "host 'pbs.twimg.com' resolves to non-public address 10.1.2.3"


@pytest.mark.parametrize(
    ("network", "address"),
    [("169.254.0.0/16", "169.254.169.254"), ("fd00:ec2::/64", "fd00:ec2::254")],
)
def test_metadata_addresses_are_never_exempt(network: str, address: str) -> None:
    # GIVEN an exemption that would cover the instance metadata service (settings refuse it;
    # the address rule does not rely on that)
    exempt = (ipaddress.ip_network(network),)
    # WHEN the metadata address is checked
    # THEN it is refused
    with pytest.raises(BlockedUrl) as raised:
        check_addresses("pbs.twimg.com", [address], exempt)
    assert str(raised.value) == f"host 'pbs.twimg.com' resolves to non-public address {address}"


# ---------------------------------------------------------------- through the download


def test_ip_literal_url_never_reaches_dns_or_network(
    settings: FetchSettings, resolver: FakeResolver, opener: FakeOpener
) -> None:
    # GIVEN the metadata service's URL written as a decimal literal
    # WHEN it is downloaded
    # THEN it is refused before any lookup or connection
    with pytest.raises(BlockedUrl):
        download(
            "https://2852039166/latest/meta-data/",
            settings=settings,
            resolver=resolver,
            opener=opener,
        )
    assert resolver.calls == []
    assert opener.calls == []


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "10.0.0.1", "::1"])
def test_allow_listed_name_resolving_to_private_address_is_never_connected(
    address: str, settings: FetchSettings, opener: FakeOpener
) -> None:
    # GIVEN the allow-listed host resolving to an internal address (DNS poisoned or rebound)
    resolver = FakeResolver(answers={"pbs.twimg.com": [address]})
    # WHEN it is downloaded
    # THEN it is refused after the lookup and before any connection
    with pytest.raises(BlockedUrl) as raised:
        download("https://pbs.twimg.com/a.jpg", settings=settings, resolver=resolver, opener=opener)
    assert str(raised.value) == f"host 'pbs.twimg.com' resolves to non-public address {address}"
    assert resolver.calls == [("pbs.twimg.com", 443)]
    assert opener.calls == []


REDIRECT_TARGETS = [
    ("http://pbs.twimg.com/a.jpg", "url scheme 'http' is not allowed; use https"),
    (
        "https://169.254.169.254/latest/meta-data/",
        "host '169.254.169.254' is an IP address literal (169.254.169.254); "
        "only host names are allowed",
    ),
    (
        "//2130706433/a.jpg",
        "host '2130706433' is an IP address literal (127.0.0.1); only host names are allowed",
    ),
    (
        "https://[::ffff:127.0.0.1]/a.jpg",
        "host is an IPv6 address literal; only host names are allowed",
    ),
    ("https://evil.example/a.jpg", "host 'evil.example' is not on the image host allow-list"),
    ("https://user:pw@pbs.twimg.com/a.jpg", "url must not carry credentials"),
    (
        "https://pbs.twimg.com:8443/a.jpg",
        "host 'pbs.twimg.com:8443' is not on the image host allow-list",
    ),
    # Allow-listed, but its DNS answer is internal.
    (
        "https://images.example.org:8443/a.png",
        "host 'images.example.org' resolves to non-public address 10.0.0.7",
    ),
]


@pytest.mark.parametrize(("location", "reason"), REDIRECT_TARGETS)
def test_redirect_to_blocked_target_is_refused(
    location: str, reason: str, settings: FetchSettings, opener: FakeOpener
) -> None:
    # GIVEN an allowed image host that redirects to a target breaking one rule
    resolver = FakeResolver(
        answers={"pbs.twimg.com": [PBS_ADDRESS], "images.example.org": ["10.0.0.7"]}
    )
    first = opener.serve("pbs.twimg.com", "/a.jpg", Reply(302, {"Location": location}))
    # WHEN it is downloaded
    # THEN the redirect is refused with that rule's reason, and nothing else is requested
    with pytest.raises(BlockedUrl) as raised:
        download("https://pbs.twimg.com/a.jpg", settings=settings, resolver=resolver, opener=opener)
    assert str(raised.value) == reason
    assert [call.target for call in opener.calls] == ["/a.jpg"]
    assert first.closed is True
