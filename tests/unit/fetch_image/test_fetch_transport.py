"""The real pinned HTTPS opener against a loopback TLS server with a throwaway certificate.

The only tests of this function that open sockets, and only to 127.0.0.1: they prove that the
connection goes to the given address while SNI, the Host header and certificate verification
all use the original host name, and that transport failures become the named errors.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fetch_image.errors import BlockedUrl, ImageHostError
from fetch_image.transport import pinned_https_opener, system_resolver
from tweetlens.tls import write_certificates

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

SERVER_NAME = "images.test"
LOOPBACK = "127.0.0.1"


@dataclass
class ImageServer:
    """What the loopback server saw, and where it listens."""

    port: int
    ca_path: Path
    server_names: list[str | None] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)


def _handler_for(server: ImageServer, png: bytes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append(
                {
                    "path": self.path,
                    "host": self.headers.get("Host", ""),
                    "accept-encoding": self.headers.get("Accept-Encoding", ""),
                }
            )
            if self.path == "/slow.png":
                time.sleep(1.5)
            if self.path == "/trickle.png":
                # Each piece arrives well inside the read timeout, the whole body does not.
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "4")
                self.end_headers()
                for byte in png[:4]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            if self.path == "/truncated.png":
                # Promise more than is sent, then hang up.
                self.send_header("Content-Length", str(len(png) + 1000))
                self.end_headers()
                self.wfile.write(png)
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

    return Handler


@pytest.fixture
def image_server(tmp_path: Path, png_bytes: bytes) -> Iterator[ImageServer]:
    """A TLS server on 127.0.0.1 presenting a certificate for images.test (a CA of its own)."""
    certificates = write_certificates(tmp_path, SERVER_NAME)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.chain, certificates.key)
    record = ImageServer(port=0, ca_path=certificates.ca)
    context.sni_callback = lambda _sock, name, _ctx: record.server_names.append(name)
    httpd = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(record, png_bytes))
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    record.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield record
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _open(server: ImageServer, host: str, target: str, read_timeout: float = 5.0) -> bytes:
    response = pinned_https_opener(
        address=LOOPBACK,
        port=server.port,
        host=host,
        target=target,
        connect_timeout=2.0,
        read_timeout=read_timeout,
    )
    try:
        assert response.status == 200
        return b"".join(response.chunks)
    finally:
        response.close()


def test_connects_to_the_address_and_verifies_the_host_name(
    image_server: ImageServer, monkeypatch: pytest.MonkeyPatch, png_bytes: bytes
) -> None:
    # GIVEN a trust store holding only the server's CA, via SSL_CERT_FILE
    monkeypatch.setenv("SSL_CERT_FILE", str(image_server.ca_path))
    # WHEN the opener asks 127.0.0.1 for images.test's image
    body = _open(image_server, SERVER_NAME, "/cat.png?size=small")
    # THEN TLS verified the certificate for images.test, sent as SNI and as the Host header
    assert body == png_bytes
    assert image_server.server_names == [SERVER_NAME]
    assert image_server.requests == [
        {
            "path": "/cat.png?size=small",
            "host": f"{SERVER_NAME}:{image_server.port}",
            "accept-encoding": "identity",
        }
    ]


def test_certificate_for_another_name_is_refused(
    image_server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a trusted certificate that names images.test only
    monkeypatch.setenv("SSL_CERT_FILE", str(image_server.ca_path))
    # WHEN the opener connects to the same address as another host
    # THEN verification fails (a refusal), and no request is sent
    with pytest.raises(BlockedUrl) as raised:
        _open(image_server, "other.test", "/cat.png")
    assert str(raised.value) == "TLS certificate of 'other.test' failed verification"
    assert image_server.server_names == ["other.test"]
    assert image_server.requests == []


def test_untrusted_certificate_is_refused(
    image_server: ImageServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a trust store holding some other certificate
    other = write_certificates(tmp_path, "unrelated.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(other.ca))
    # WHEN the opener connects with the right host name
    # THEN the chain does not verify, and no request is sent
    with pytest.raises(BlockedUrl) as raised:
        _open(image_server, SERVER_NAME, "/cat.png")
    assert str(raised.value) == "TLS certificate of 'images.test' failed verification"
    assert image_server.requests == []


def test_slow_answer_is_a_read_timeout(
    image_server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a server that takes 1.5 s to answer
    monkeypatch.setenv("SSL_CERT_FILE", str(image_server.ca_path))
    # WHEN the opener waits at most 0.3 s for it
    # THEN it is a transient host error
    with pytest.raises(ImageHostError) as raised:
        _open(image_server, SERVER_NAME, "/slow.png", read_timeout=0.3)
    assert str(raised.value) == "'images.test' did not answer in time"


def test_trickling_body_is_handed_over_piece_by_piece(
    image_server: ImageServer, monkeypatch: pytest.MonkeyPatch, png_bytes: bytes
) -> None:
    # GIVEN a server that sends its body one byte every 0.2 s
    monkeypatch.setenv("SSL_CERT_FILE", str(image_server.ca_path))
    response = pinned_https_opener(
        address=LOOPBACK,
        port=image_server.port,
        host=SERVER_NAME,
        target="/trickle.png",
        connect_timeout=2.0,
        read_timeout=1.0,
    )
    # WHEN the body is read
    try:
        chunks = list(response.chunks)
    finally:
        response.close()
    # THEN every piece is handed over as it arrives, so the fetcher's wall-clock deadline is
    # checked between them (a read of a full chunk would wait for the whole body)
    assert b"".join(chunks) == png_bytes[:4]
    assert len(chunks) == 4


def test_body_cut_short_is_a_host_error(
    image_server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a server that hangs up before sending the length it announced
    monkeypatch.setenv("SSL_CERT_FILE", str(image_server.ca_path))
    # WHEN the body is read
    # THEN it is a transient host error, not a short image
    with pytest.raises(ImageHostError) as raised:
        _open(image_server, SERVER_NAME, "/truncated.png")
    assert str(raised.value) == "connection to 'images.test' broke off"


def test_refused_connection_is_a_host_error() -> None:
    # GIVEN a loopback port nobody listens on
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]
    # WHEN the opener connects to it
    # THEN it is a transient host error
    with pytest.raises(ImageHostError) as raised:
        pinned_https_opener(
            address=LOOPBACK,
            port=port,
            host=SERVER_NAME,
            target="/cat.png",
            connect_timeout=2.0,
            read_timeout=2.0,
        )
    assert str(raised.value) == "could not connect to 'images.test'"


def test_system_resolver_lists_each_address_once() -> None:
    # GIVEN localhost, which /etc/hosts resolves without any network
    # WHEN it is resolved
    addresses = system_resolver("localhost", 443)
    # THEN loopback is among the answers, with no duplicates across socket types
    assert "127.0.0.1" in addresses
    assert len(addresses) == len(set(addresses))
