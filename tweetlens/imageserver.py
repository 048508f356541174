"""A loopback HTTPS image host: real photos, and every way a download can go wrong.

The local cloud points the demo posts' photo URLs here instead of ``pbs.twimg.com``. The
server speaks real TLS with a certificate for ``localhost`` signed by a throw-away CA made
at start; the CA's PEM file is exposed so the fetch function's worker can trust it through
``SSL_CERT_FILE`` exactly as it trusts the public CAs in AWS.

Routes:

* ``/media/<name>.jpg`` - a shipped photo (``tweetlens/images/<name>.jpg``)
* ``/unique/<tag>/<name>.jpg`` - that photo with a JPEG comment naming ``<tag>``: a distinct
  image (its own URL and bytes) per tag, for workloads of many unique images

Every response waits ``response_delay`` seconds first (0 unless set): a host's latency.
* ``/faults/404``, ``/faults/410``, ``/faults/500`` - that status, a short text body
* ``/faults/flaky-<key>`` - 500 for the first ``flaky_failures`` requests per key, then a photo
* ``/faults/slow`` - a photo whose body pauses longer than a read timeout between chunks
* ``/faults/too-large`` - more than 15 MB of JPEG-prefixed bytes, chunked, no Content-Length
* ``/faults/not-an-image`` - plain text served as ``image/jpeg``
* ``/faults/redirect-private`` - 302 to the instance metadata address
* ``/faults/reset`` - the TCP connection is reset without a response
* ``/faults/unavailable-<key>`` - 503 for the first ``flaky_failures`` requests per key, then
  a photo (a host shedding load, then recovering)
* ``/faults/trickle-<ms>`` - a photo sent in ``TRICKLE_PARTS`` parts with ``<ms>``
  milliseconds between them (at most ``MAX_TRICKLE_PAUSE_MS``): a very slow body that still
  arrives within a read timeout
* ``/faults/hold-<ms>-<key>`` - the first request per key trickles like ``trickle-<ms>``, the
  later ones get the photo at once: an execution held long enough to be stopped or to time
  out, whose next attempt succeeds
"""

from __future__ import annotations

import datetime
import logging
import math
import re
import shutil
import socket
import ssl
import struct
import tempfile
import threading
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from tweetlens.tls import write_certificates

logger = logging.getLogger(__name__)

IMAGES_DIR: Final = Path(__file__).resolve().parent / "images"
HOSTNAME: Final = "localhost"
LOOPBACK: Final = "127.0.0.1"
# Where a hostile redirect would send a fetcher: the EC2/Lambda instance metadata service.
PRIVATE_REDIRECT_TARGET: Final = (
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/"
)
NOT_AN_IMAGE_BODY: Final = b"<html><body>This is not the photo you are looking for.</body></html>\n"
# Rekognition's S3 object limit is 15 MiB; the oversized body goes one MiB past it.
TOO_LARGE_BYTES: Final = 16 * 1024 * 1024
_JPEG_PREFIX: Final = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
_CHUNK_BYTES: Final = 64 * 1024
_CERT_VALIDITY: Final = datetime.timedelta(days=2)
TRICKLE_PARTS: Final = 4
MAX_TRICKLE_PAUSE_MS: Final = 60_000


class ImageServerError(Exception):
    """The image server cannot start (no photos, bad configuration)."""


class UnknownPhoto(ImageServerError):
    """A photo name that is not among the shipped photos."""


def _generate_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Write a fresh CA and a ``localhost`` leaf cert; return (ca, leaf chain, leaf key)."""
    files = write_certificates(
        directory,
        HOSTNAME,
        addresses=(LOOPBACK,),
        ca_name="tweetlens local image CA",
        validity=_CERT_VALIDITY,
    )
    return files.ca, files.chain, files.key


class _TlsHttpServer(ThreadingHTTPServer):
    """Threaded HTTP server whose TLS handshake runs in the request's own thread.

    Wrapping the listening socket with ``do_handshake_on_connect=False`` keeps a client that
    connects and says nothing from blocking ``accept`` for everyone else.
    """

    daemon_threads = True
    block_on_close = False
    image_server: ImageServer

    def __init__(self, context: ssl.SSLContext, image_server: ImageServer) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )
        self.image_server = image_server

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that give up (a fetcher enforcing its size limit, a timed-out read) are the
        # point of the fault routes, not server errors.
        logger.debug("image server connection ended early", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TlsHttpServer
    timeout = 30

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(format, *args)

    def do_GET(self) -> None:
        owner = self.server.image_server
        path = self.path.split("?", 1)[0]
        owner._count(path)
        delay = owner.response_delay
        if delay > 0:
            owner._stopping.wait(delay)
        if path.startswith("/media/") and path.endswith(".jpg"):
            self._send_photo(path.removeprefix("/media/").removesuffix(".jpg"))
        elif (unique := _unique(path)) is not None:
            tag, name = unique
            try:
                body = tagged_photo(owner.photo_bytes(name), tag)
            except UnknownPhoto:
                self._send_bytes(HTTPStatus.NOT_FOUND, b"404 Not Found\n", "text/plain")
            else:
                self._send_bytes(HTTPStatus.OK, body, "image/jpeg")
        elif path in {"/faults/404", "/faults/410", "/faults/500"}:
            status = HTTPStatus(int(path.removeprefix("/faults/")))
            self._send_bytes(status, f"{status.value} {status.phrase}\n".encode(), "text/plain")
        elif path.startswith("/faults/flaky-") and len(path) > len("/faults/flaky-"):
            if owner._flaky_should_fail(path.removeprefix("/faults/flaky-")):
                self._send_bytes(
                    HTTPStatus.INTERNAL_SERVER_ERROR, b"500 Internal Server Error\n", "text/plain"
                )
            else:
                self._send_photo(owner.flaky_photo)
        elif path == "/faults/slow":
            self._send_slowly(owner.photo_bytes(owner.flaky_photo))
        elif path == "/faults/too-large":
            self._send_too_large()
        elif path == "/faults/not-an-image":
            self._send_bytes(HTTPStatus.OK, NOT_AN_IMAGE_BODY, "image/jpeg")
        elif path == "/faults/redirect-private":
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", PRIVATE_REDIRECT_TARGET)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/faults/reset":
            self._reset()
        elif path.startswith("/faults/unavailable-") and len(path) > len("/faults/unavailable-"):
            # Its own counter namespace: an unavailable key never uses up a flaky key's failures.
            if owner._flaky_should_fail("unavailable:" + path.removeprefix("/faults/unavailable-")):
                self._send_bytes(
                    HTTPStatus.SERVICE_UNAVAILABLE, b"503 Service Unavailable\n", "text/plain"
                )
            else:
                self._send_photo(owner.flaky_photo)
        elif (hold := _hold(path)) is not None:
            pause_ms, key = hold
            if owner._first_request("hold:" + key):
                self._send_in_parts(owner.photo_bytes(owner.flaky_photo), pause_ms / 1000)
            else:
                self._send_photo(owner.flaky_photo)
        elif (pause := _trickle_pause_ms(path)) is not None:
            self._send_in_parts(owner.photo_bytes(owner.flaky_photo), pause / 1000)
        else:
            self._send_bytes(HTTPStatus.NOT_FOUND, b"404 Not Found\n", "text/plain")

    def _send_bytes(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_photo(self, name: str) -> None:
        try:
            body = self.server.image_server.photo_bytes(name)
        except UnknownPhoto:
            self._send_bytes(HTTPStatus.NOT_FOUND, b"404 Not Found\n", "text/plain")
            return
        self._send_bytes(HTTPStatus.OK, body, "image/jpeg")

    def _send_slowly(self, body: bytes) -> None:
        owner = self.server.image_server
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for start in range(0, len(body), owner.slow_chunk_bytes):
            self.wfile.write(body[start : start + owner.slow_chunk_bytes])
            self.wfile.flush()
            # Wakes at once when the server stops, so a test never waits for the trickle.
            if owner._stopping.wait(owner.slow_pause_seconds):
                self.close_connection = True
                return

    def _send_in_parts(self, body: bytes, pause_seconds: float) -> None:
        owner = self.server.image_server
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        part = -(-len(body) // TRICKLE_PARTS)
        for index, start in enumerate(range(0, len(body), part)):
            if index and owner._stopping.wait(pause_seconds):
                self.close_connection = True
                return
            self.wfile.write(body[start : start + part])
            self.wfile.flush()

    def _send_too_large(self) -> None:
        owner = self.server.image_server
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        filler = b"\x00" * _CHUNK_BYTES
        sent = 0
        first = True
        while sent < owner.too_large_bytes:
            chunk = (_JPEG_PREFIX + filler)[:_CHUNK_BYTES] if first else filler
            chunk = chunk[: owner.too_large_bytes - sent]
            first = False
            self.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            if owner._stopping.is_set():
                self.close_connection = True
                return
        self.wfile.write(b"0\r\n\r\n")

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN: the client sees
        # "connection reset by peer", as when a CDN edge drops a connection.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        raw = socket.socket(fileno=self.connection.detach())
        raw.close()


_UNIQUE_TAG: Final = re.compile(r"^/unique/([A-Za-z0-9_-]{1,64})/([A-Za-z0-9_-]{1,64})\.jpg$")


def _unique(path: str) -> tuple[str, str] | None:
    match = _UNIQUE_TAG.match(path)
    return None if match is None else (match.group(1), match.group(2))


def tagged_photo(jpeg: bytes, tag: str) -> bytes:
    """``jpeg`` with a comment segment (COM) holding ``tag`` right after its SOI marker.

    Decoders skip comments, so the picture is the same; the bytes (and their digest) differ.
    """
    if not jpeg.startswith(b"\xff\xd8"):
        raise ImageServerError("not a JPEG")
    comment = f"tweetlens:{tag}".encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]


def _trickle_pause_ms(path: str) -> int | None:
    """The pause of a ``/faults/trickle-<ms>`` path, or None for any other path."""
    digits = path.removeprefix("/faults/trickle-")
    if digits == path or not digits.isdigit() or int(digits) > MAX_TRICKLE_PAUSE_MS:
        return None
    return int(digits)


def _hold(path: str) -> tuple[int, str] | None:
    """(pause in ms, key) of a ``/faults/hold-<ms>-<key>`` path, or None for any other path."""
    rest = path.removeprefix("/faults/hold-")
    pause, _, key = rest.partition("-")
    if rest == path or not key or not pause.isdigit() or int(pause) > MAX_TRICKLE_PAUSE_MS:
        return None
    return int(pause), key


class ImageServer:
    """HTTPS server on 127.0.0.1 serving the shipped photos and the fault routes.

    Use as a context manager::

        with ImageServer() as server:
            url = server.media_url("chelsea")   # https://localhost:<port>/media/chelsea.jpg
            os.environ["SSL_CERT_FILE"] = str(server.ca_file)
    """

    def __init__(
        self,
        images_dir: Path = IMAGES_DIR,
        *,
        flaky_failures: int = 2,
        flaky_photo: str = "chelsea",
        slow_pause_seconds: float = 15.0,
        slow_chunk_bytes: int = 1024,
        too_large_bytes: int = TOO_LARGE_BYTES,
        response_delay: float = 0.0,
    ) -> None:
        self._photos = {path.stem: path for path in sorted(images_dir.glob("*.jpg"))}
        if not self._photos:
            raise ImageServerError(f"no .jpg photos in {images_dir}")
        if flaky_photo not in self._photos:
            raise UnknownPhoto(f"flaky photo {flaky_photo!r} is not in {images_dir}")
        if flaky_failures < 0 or slow_pause_seconds <= 0 or slow_chunk_bytes <= 0:
            raise ImageServerError("flaky_failures, slow pause and chunk must be positive")
        self.flaky_failures = flaky_failures
        self.flaky_photo = flaky_photo
        self.slow_pause_seconds = slow_pause_seconds
        self.slow_chunk_bytes = slow_chunk_bytes
        self.too_large_bytes = too_large_bytes
        self.response_delay = 0.0
        self.set_response_delay(response_delay)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._flaky_seen: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._cert_dir: Path | None = None
        self._ca_file: Path | None = None
        self._httpd: _TlsHttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Generate the certificates, bind a free port and serve in a background thread."""
        if self._httpd is not None:
            raise ImageServerError("image server already started")
        self._stopping.clear()
        self._cert_dir = Path(tempfile.mkdtemp(prefix="tweetlens-imageserver-"))
        ca_path, chain_path, key_path = _generate_certificates(self._cert_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(chain_path, key_path)
        self._httpd = _TlsHttpServer(context, self)
        self._ca_file = ca_path
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="tweetlens-imageserver",
            daemon=True,
        )
        self._thread.start()
        logger.info("image server listening on %s", self.base_url)

    def stop(self) -> None:
        """Stop serving, wake trickling responses and delete the certificates."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._cert_dir is not None:
            shutil.rmtree(self._cert_dir, ignore_errors=True)
        self._httpd = None
        self._thread = None
        self._cert_dir = None
        self._ca_file = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise ImageServerError("image server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"https://{HOSTNAME}:{self.port}"

    @property
    def host(self) -> str:
        """``host:port`` as the fetch function's ``ALLOWED_IMAGE_HOSTS`` wants it."""
        return f"{HOSTNAME}:{self.port}"

    @property
    def allowed_network(self) -> str:
        """The CIDR for the fetch function's ``EXTRA_ALLOWED_NETWORKS``."""
        return f"{LOOPBACK}/32"

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the server certificate (for ``SSL_CERT_FILE``)."""
        if self._ca_file is None:
            raise ImageServerError("image server is not running")
        return self._ca_file

    def media_url(self, name: str) -> str:
        if name not in self._photos:
            raise UnknownPhoto(f"no photo named {name!r}")
        return f"{self.base_url}/media/{name}.jpg"

    def unique_url(self, name: str, tag: str) -> str:
        """A distinct image made from photo ``name``: its own URL and its own bytes."""
        if name not in self._photos:
            raise UnknownPhoto(f"no photo named {name!r}")
        url_path = f"/unique/{tag}/{name}.jpg"
        if _unique(url_path) is None:
            raise ImageServerError(f"tag {tag!r} must be 1-64 of [A-Za-z0-9_-]")
        return self.base_url + url_path

    def set_response_delay(self, seconds: float) -> None:
        """Every response waits ``seconds`` before its first byte from now on."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ImageServerError("the response delay must be zero or more seconds")
        self.response_delay = seconds

    def fault_url(self, fault: str) -> str:
        return f"{self.base_url}/faults/{fault}"

    # -- content and counters ----------------------------------------------------------

    @property
    def photo_names(self) -> list[str]:
        return list(self._photos)

    def photo_bytes(self, name: str) -> bytes:
        path = self._photos.get(name)
        if path is None:
            raise UnknownPhoto(f"no photo named {name!r}")
        return path.read_bytes()

    def request_count(self, path: str) -> int:
        """How many GET requests reached ``path`` (query string ignored)."""
        with self._lock:
            return self._counts[path]

    def request_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._flaky_seen.clear()

    def _count(self, path: str) -> None:
        with self._lock:
            self._counts[path] += 1

    def _first_request(self, key: str) -> bool:
        with self._lock:
            self._flaky_seen[key] += 1
            return self._flaky_seen[key] == 1

    def _flaky_should_fail(self, key: str) -> bool:
        with self._lock:
            self._flaky_seen[key] += 1
            return self._flaky_seen[key] <= self.flaky_failures
