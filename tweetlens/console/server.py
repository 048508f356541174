"""Serve the console on a loopback address, in a thread of this process."""

from __future__ import annotations

import ipaddress
import threading
from types import TracebackType
from typing import Self

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from tweetlens.console import security

DEFAULT_PORT = 8800


class NotLoopback(ValueError):
    """The console only listens on a loopback address."""


def loopback_host(host: str) -> str:
    """``host`` as an IP literal if it is a loopback address; NotLoopback otherwise.

    The console acts with the user's AWS credentials and has no login: anything that could
    reach it from another machine is refused, whatever the address is called.
    """
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        raise NotLoopback(f"{host!r} is not an IP address; use 127.0.0.1 or ::1") from None
    if not address.is_loopback:
        raise NotLoopback(
            f"{host} is not a loopback address: the console has no login and acts with your "
            "AWS credentials, so it only listens on 127.0.0.1 or ::1"
        )
    return str(address)


class ConsoleServer:
    """``with ConsoleServer(app, port=0) as server:`` serves ``app`` until the block ends."""

    def __init__(self, app: Flask, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        self.app = app
        self.host = loopback_host(host)
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{name}:{self.port}/"

    def start(self) -> None:
        # Threaded: the page's live updates and its thumbnails arrive together.
        self._server = make_server(self.host, self.port, self.app, threaded=True)
        # Port 0 asks the system for a free one: the checks need the real one.
        self.port = self._server.server_port
        security.bind(self.app, self.host, self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="tweetlens-console", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

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
