"""Test kit for FetchImageFunction: DNS and HTTPS stand-ins that record every call, sample
events and the test environment.

A module rather than conftest.py so test modules can import the types; its name is unique
because pytest puts each test folder on sys.path.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fetch_image.transport import RawResponse

# Public addresses the fake DNS gives the allow-listed hosts (Fastly's, which serves X media).
PBS_ADDRESS = "151.101.36.159"
EXAMPLE_ADDRESS = "93.184.215.14"

EVENTS_DIR = Path(__file__).resolve().parents[3] / "events"
IMAGES_BUCKET = "tweetlens-images-example"
# What the template sets in AWS, plus a second allow-listed host on its own port so the
# host:port rules and redirects between hosts can be exercised.
TEST_ENVIRONMENT = {
    "ALLOWED_IMAGE_HOSTS": "pbs.twimg.com,images.example.org:8443",
    "EXTRA_ALLOWED_NETWORKS": "",
    "MAX_IMAGE_BYTES": "15728640",
    "CONNECT_TIMEOUT_SECONDS": "3",
    "READ_TIMEOUT_SECONDS": "10",
}


def load_fetch_event(name: str) -> dict[str, Any]:
    """A sample event from events/, the file `sam local invoke -e` uses too."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return event


@dataclass
class FakeResolver:
    """DNS as a dictionary; an unknown name fails as getaddrinfo does."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answers[host])


@dataclass
class Reply:
    """One scripted HTTP response; ``body`` chunks are handed out lazily and counted."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Iterable[bytes] = ()
    chunks_read: int = 0
    closed: bool = False

    def to_raw(self) -> RawResponse:
        def chunks() -> Iterator[bytes]:
            for chunk in self.body:
                self.chunks_read += 1
                yield chunk

        def close() -> None:
            self.closed = True

        return RawResponse(
            status=self.status,
            headers={name.lower(): value for name, value in self.headers.items()},
            chunks=chunks(),
            close=close,
        )


@dataclass(frozen=True)
class OpenerCall:
    address: str
    port: int
    host: str
    target: str
    connect_timeout: float
    read_timeout: float


@dataclass
class FakeOpener:
    """HTTPS as a dictionary keyed by (host, port, target); records what was asked."""

    replies: dict[tuple[str, int, str], Reply] = field(default_factory=dict)
    calls: list[OpenerCall] = field(default_factory=list)
    error: Exception | None = None

    def __call__(
        self,
        *,
        address: str,
        port: int,
        host: str,
        target: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> RawResponse:
        self.calls.append(OpenerCall(address, port, host, target, connect_timeout, read_timeout))
        if self.error is not None:
            raise self.error
        return self.replies[(host, port, target)].to_raw()

    def serve(self, host: str, target: str, reply: Reply, port: int = 443) -> Reply:
        self.replies[(host, port, target)] = reply
        return reply
