"""The URL and address rules that keep the download from reaching anything but image hosts.

Three checks, each independent of the others so that one mistake does not open the door:
the URL must be https to an allow-listed host name (never an IP literal, in any spelling),
and every address that host resolves to must be public (or inside an explicitly exempted
network). The caller connects to one of the checked addresses itself, so a second DNS answer
can never be used.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fetch_image.errors import BlockedUrl, ImageHostError

HTTPS_PORT = 443
MAX_PORT = 65_535

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A host name after IDNA encoding: dot-separated LDH labels of 1 to 63 characters.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# WHATWG URL parsers read a host whose last label is a number as an IPv4 address, so such a
# host is treated as an IP literal even when inet_aton rejects it (e.g. ``1.2.3.4.5``).
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
# Characters that have no business in a URL and that parsers disagree about.
_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
# Everything RFC 3986 allows in a path or query stays as it is, existing escapes included;
# anything else (non-ASCII) is percent-encoded.
_SAFE_TARGET_CHARS = "/?:@!$&'()*+,;=-._~%"
MAX_HOST_LENGTH = 253

# Ranges ``is_global`` misses or that Python versions disagree on (3.12.1 calls 192.0.0.8
# global); listed explicitly so the rule does not depend on the runtime's patch level.
_BLOCKED_IPV4 = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network", includes the unspecified address
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, includes the instance metadata service
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes the limited broadcast address
    )
)
# Only global unicast (2000::/3) is ever public in IPv6; these are the non-public parts of it.
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_BLOCKED_IPV6 = tuple(
    ipaddress.IPv6Network(cidr)
    for cidr in (
        "2001::/23",  # IETF protocol assignments, includes Teredo (2001::/32)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
# Forms that carry an IPv4 address inside an IPv6 one; the IPv4 address decides.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
# Never exempted, whatever EXTRA_ALLOWED_NETWORKS says: the instance metadata services.
METADATA_ADDRESSES = (
    ipaddress.IPv4Address("169.254.169.254"),
    ipaddress.IPv6Address("fd00:ec2::254"),
)


@dataclass(frozen=True)
class HostPort:
    """An allow-list entry or the host and port a URL names (host normalised)."""

    host: str
    port: int

    def __str__(self) -> str:
        return self.host if self.port == HTTPS_PORT else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ImageUrl:
    """A URL that passed the URL rules: what to connect to and what to ask for."""

    host: str
    port: int
    target: str  # path and query, as sent on the request line


def normalise_host(raw_host: str) -> str:
    """Lower-cased IDNA (A-label) form of a host name, trailing dot removed.

    Raises ``BlockedUrl`` for IP literals in any spelling and for anything that is not a
    syntactically valid DNS name.
    """
    if not raw_host:
        raise BlockedUrl("url has no host")
    if ":" in raw_host or raw_host.startswith("["):
        raise BlockedUrl("host is an IPv6 address literal; only host names are allowed")
    try:
        host = raw_host.encode("idna").decode("ascii").lower()
    except UnicodeError as error:
        raise BlockedUrl("host is not a valid internationalised domain name") from error
    host = host.removesuffix(".")
    literal = ip_literal(host)
    if literal is not None:
        raise BlockedUrl(
            f"host {host!r} is an IP address literal ({literal}); only host names are allowed"
        )
    labels = host.split(".")
    if len(host) > MAX_HOST_LENGTH or not all(_LABEL.match(label) for label in labels):
        raise BlockedUrl(f"host {host!r} is not a valid DNS name")
    return host


def ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes when it is an IP literal, else None.

    Besides the standard forms, C's ``inet_aton`` (and so ``getaddrinfo`` and many URL
    parsers) accepts decimal (``2130706433``), octal (``0177.0.0.1``), hex (``0x7f.1``) and
    short (``127.1``) IPv4 spellings: they are all literals here.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        pass
    last_label = host.rsplit(".", 1)[-1]
    if _NUMERIC_LABEL.match(last_label):
        # Not a valid address in any spelling, but parsers that follow WHATWG would still
        # treat it as one; an address that cannot be shown is reported as unspecified.
        return ipaddress.IPv4Address(0)
    return None


def parse_image_url(url: str, allowed: Iterable[HostPort]) -> ImageUrl:
    """Check a URL against the URL rules and return where to connect and what to request."""
    if _FORBIDDEN_URL_CHARS.search(url):
        raise BlockedUrl("url contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError as error:
        raise BlockedUrl("url is not a valid URL (bad host or port)") from error
    if parts.scheme != "https":
        raise BlockedUrl(f"url scheme {parts.scheme or '(none)'!r} is not allowed; use https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise BlockedUrl("url must not carry credentials")
    host = normalise_host(parts.hostname or "")
    port = HTTPS_PORT if explicit_port is None else explicit_port
    if not 0 < port <= MAX_PORT:
        raise BlockedUrl(f"port {port} is not a valid port")
    candidate = HostPort(host, port)
    if candidate not in set(allowed):
        raise BlockedUrl(f"host {str(candidate)!r} is not on the image host allow-list")
    target = quote(parts.path or "/", safe=_SAFE_TARGET_CHARS)
    if parts.query:
        target = f"{target}?{quote(parts.query, safe=_SAFE_TARGET_CHARS)}"
    return ImageUrl(host=host, port=port, target=target)


def parse_allowed_host(entry: str) -> HostPort:
    """One ALLOWED_IMAGE_HOSTS entry, ``host`` (port 443) or ``host:port``."""
    host_part, separator, port_part = entry.strip().rpartition(":")
    if not separator:
        host_part, port_part = port_part, str(HTTPS_PORT)
    if not port_part.isascii() or not port_part.isdigit() or not 0 < int(port_part) <= MAX_PORT:
        raise ValueError(f"allowed host {entry!r} has an invalid port")
    try:
        host = normalise_host(host_part)
    except BlockedUrl as error:
        raise ValueError(f"allowed host {entry!r}: {error}") from error
    return HostPort(host, int(port_part))


def parse_address(address: str) -> IPAddress:
    """An address as a resolver returns it (an IPv6 zone index such as ``%eth0`` is dropped)."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError as error:
        raise BlockedUrl(f"resolver returned {address!r}, which is not an IP address") from error


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, -compatible, 6to4 or NAT64 IPv6 address carries."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _IPV4_COMPATIBLE or address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True when the address is public unicast on the internet, in IPv4 or IPv6 form."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return _is_public_ipv4(inner)
        return _is_public_ipv6(address)
    return _is_public_ipv4(address)


def _has_special_flag(address: IPAddress) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _is_public_ipv4(address: ipaddress.IPv4Address) -> bool:
    if _has_special_flag(address):
        return False
    return not any(address in network for network in _BLOCKED_IPV4)


def _is_public_ipv6(address: ipaddress.IPv6Address) -> bool:
    if address not in _IPV6_GLOBAL_UNICAST or address.is_site_local:
        return False
    if address in _NAT64_LOCAL_USE or _has_special_flag(address):
        return False
    return not any(address in network for network in _BLOCKED_IPV6)


def check_addresses(
    host: str, addresses: Iterable[str], exempt: Iterable[IPNetwork]
) -> list[IPAddress]:
    """Every resolved address, checked; one refused address refuses the host.

    All must pass, not just the one used, so a host cannot mix a public address with an
    internal one and rely on which is tried first.
    """
    exempt_networks = tuple(exempt)
    checked: list[IPAddress] = []
    for raw in addresses:
        address = parse_address(raw)
        exempted = address not in METADATA_ADDRESSES and any(
            address in network for network in exempt_networks
        )
        if not exempted and not is_public(address):
            raise BlockedUrl(f"host {host!r} resolves to non-public address {address}")
        if address not in checked:
            checked.append(address)
    if not checked:
        raise ImageHostError(f"host {host!r} resolved to no address")
    return checked
