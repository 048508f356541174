"""Name resolution and the pinned HTTPS connection: the fetcher's only contact with the network.

``Resolver`` and ``Opener`` are the seam tests (and the local cloud) replace; the fetcher never
opens a socket itself. ``pinned_https_opener`` connects to an address the fetcher has already
checked, so no second DNS lookup can send it elsewhere (DNS rebinding), while TLS still
verifies the certificate against the original host name.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from fetch_image.errors import BlockedUrl, ImageHostError

CHUNK_BYTES = 64 * 1024
USER_AGENT = "tweetlens-fetch-image/1.0"


class Resolver(Protocol):
    """Every address a host name resolves to, as strings; raises ``OSError`` on failure."""

    def __call__(self, host: str, port: int) -> list[str]: ...


@dataclass
class RawResponse:
    """A response whose body has not been read yet."""

    status: int
    headers: Mapping[str, str]  # lower-case names
    chunks: Iterator[bytes]
    close: Callable[[], None]


class Opener(Protocol):
    """Send ``GET target`` to ``address:port`` as ``host``; raises the fetcher's errors."""

    def __call__(
        self,
        *,
        address: str,
        port: int,
        host: str,
        target: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> RawResponse: ...


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives for a TCP connection, in its preference order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _certificate_rejected(error: BaseException) -> bool:
    """True when an SSL failure comes from certificate or host name verification."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError | ssl.CertificateError):
            return True
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


def _transport_error(error: HTTPError, host: str) -> Exception:
    """The fetcher's error for a urllib3 failure talking to ``host``."""
    if isinstance(error, SSLError):
        if _certificate_rejected(error):
            # Retrying cannot make a certificate valid for this name; it is a refusal.
            return BlockedUrl(f"TLS certificate of {host!r} failed verification")
        return ImageHostError(f"TLS handshake with {host!r} failed")
    if isinstance(error, NewConnectionError):
        return ImageHostError(f"could not connect to {host!r}")
    if isinstance(error, ConnectTimeoutError):
        return ImageHostError(f"connecting to {host!r} timed out")
    if isinstance(error, ReadTimeoutError):
        return ImageHostError(f"{host!r} did not answer in time")
    if isinstance(error, ProtocolError):
        return ImageHostError(f"connection to {host!r} broke off")
    return ImageHostError(f"HTTP exchange with {host!r} failed ({type(error).__name__})")


def pinned_https_opener(
    *,
    address: str,
    port: int,
    host: str,
    target: str,
    connect_timeout: float,
    read_timeout: float,
) -> RawResponse:
    """GET ``target`` over HTTPS from ``address``, verifying the certificate for ``host``.

    The SSL context is urllib3's default one, which loads the system trust store and so
    honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``. ``server_hostname`` sets SNI and makes
    OpenSSL check the certificate against ``host`` rather than the address connected to.
    Redirects, retries and content decoding are all off: the fetcher decides on each.
    """
    pool = urllib3.HTTPSConnectionPool(
        host=address,
        port=port,
        server_hostname=host,
        cert_reqs=ssl.CERT_REQUIRED,
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        retries=False,
        maxsize=1,
    )
    headers = {
        "Host": host if port == 443 else f"{host}:{port}",
        "User-Agent": USER_AGENT,
        "Accept": "image/jpeg, image/png",
        # A compressed body would be inflated by the reader, beyond the size cap's reach.
        "Accept-Encoding": "identity",
        "Connection": "close",
    }
    try:
        response = pool.urlopen(
            "GET",
            target,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            decode_content=False,
            assert_same_host=False,
        )
    except HTTPError as error:
        pool.close()
        raise _transport_error(error, host) from error
    except OSError as error:
        pool.close()
        raise ImageHostError(f"could not talk to {host!r} ({type(error).__name__})") from error

    def chunks() -> Iterator[bytes]:
        # read1 returns whatever has arrived (up to CHUNK_BYTES) instead of waiting for a full
        # chunk: a host trickling one byte at a time never trips the per-read timeout, so the
        # caller must see every piece to enforce its wall-clock deadline.
        try:
            while chunk := response.read1(CHUNK_BYTES, decode_content=False):
                yield chunk
        except HTTPError as error:
            raise _transport_error(error, host) from error
        except OSError as error:
            reason = type(error).__name__
            raise ImageHostError(f"reading from {host!r} failed ({reason})") from error

    def close() -> None:
        response.release_conn()
        response.close()
        pool.close()

    return RawResponse(
        status=response.status,
        headers={name.lower(): response.headers[name] for name in response.headers},
        chunks=chunks(),
        close=close,
    )
