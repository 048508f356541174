"""The AWS emulator: moto's threaded server on a free loopback port, reached over real HTTP."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import boto3
import botocore.session
from aws_lambda_powertools import Logger
from botocore.config import Config
from moto.core.base_backend import AccountSpecificBackend
from moto.core.config import default_user_config
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from tweetlens.localcloud.errors import EmulatorError
from tweetlens.localcloud.requestlog import OBSERVER_USER_AGENT

logger = Logger(service="localcloud")

HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
# moto's default account: resources created through CloudFormation land in it.
ACCOUNT_ID = "123456789012"
FAKE_ACCESS_KEY_ID = "localcloud"
FAKE_SECRET_ACCESS_KEY = "localcloud"  # noqa: S105 - not a secret: the emulator accepts any key


# How often the server's loop looks for a stop request. moto's ThreadedMotoServer keeps
# socketserver's 0.5 s, which every stop waited out: a whole `tweetlens invoke` is ~3 s.
SHUTDOWN_POLL_SECONDS = 0.02


class _MotoServer:
    """moto's ThreadedMotoServer (same application and request handler), stopping quickly."""

    def __init__(self, host: str, port: int) -> None:
        self._server: BaseWSGIServer = make_server(
            host,
            port,
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="localcloud-emulator",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # serve_forever closes the socket on its way out (werkzeug's server does).
        self._server.shutdown()
        self._thread.join()


def _session_sharing_moto_data() -> boto3.session.Session:
    """A boto3 session that reads botocore's data files through moto's own session's loader.

    A new session loads botocore's endpoint data and each service model again (about 0.2 s
    for the first clients of a deploy); moto has loaded the endpoints already, to list
    regions. The loader only reads and caches files, so sharing it shares no state that
    matters; the session itself (and its clients) stays this emulator's own.
    """
    moto_session = AccountSpecificBackend.get_session()._session
    core = botocore.session.get_session()
    core.register_component("data_loader", moto_session.get_component("data_loader"))
    return boto3.session.Session(botocore_session=core)


class _LazyClient:
    """A boto3 client made by ``make`` when one of its attributes is first read."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make()
        return getattr(self._client, name)


def free_port() -> int:
    """A port that was free on the loopback interface a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Emulator:
    """moto in server mode inside this process.

    moto keeps its state in module-level backends, so only one emulator may run per process;
    starting one resets every backend so that a previous run leaves nothing behind.
    """

    _running: Emulator | None = None

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self.port = 0
        self._server: _MotoServer | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_execute_state_machine = False
        self._clients: dict[str, Any] = {}
        self._observer_clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        # One session for every client: a new session loads botocore's service models again
        # (about 0.1 s a client), one session reuses them. Sessions are not thread-safe, so
        # clients are made under the lock; the clients themselves are.
        self._session = _session_sharing_moto_data()
        self._session_lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise EmulatorError("the emulator is not running")
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            return
        if Emulator._running is not None:
            raise EmulatorError("another local cloud emulator is already running in this process")
        self.port = free_port()
        # The Step Functions interpreter calls the other services back on MOTO_PORT.
        self._set_env("MOTO_PORT", str(self.port))
        sfn_config = default_user_config["stepfunctions"]
        self._saved_execute_state_machine = sfn_config.get("execute_state_machine", False)
        sfn_config["execute_state_machine"] = True
        moto_api_backend.reset()
        # One access-log line per request would drown the functions' own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        try:
            server = _MotoServer(HOST, self.port)
        except OSError as exc:
            raise EmulatorError(f"cannot start moto on {HOST}:{self.port}: {exc}") from exc
        server.start()
        self._server = server
        Emulator._running = self
        logger.info("Emulator started", endpoint_url=self.endpoint_url)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        self._clients.clear()
        self._observer_clients.clear()
        Emulator._running = None
        moto_api_backend.reset()
        default_user_config["stepfunctions"]["execute_state_machine"] = (
            self._saved_execute_state_machine
        )
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        logger.info("Emulator stopped")

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` bound to the emulator with fake credentials.

        Clients are cached: building one costs about 0.1 s and they are thread-safe.
        """
        with self._clients_lock:
            if service not in self._clients:
                with self._session_lock:
                    self._clients[service] = self._new_client(service)
            return self._clients[service]

    def lazy_client(self, service: str) -> Any:
        """``client(service)``, made on first use: for parts that may never call (the event
        bus of a cloud that runs one invocation), so no service model is loaded for them."""
        return _LazyClient(lambda: self.client(service))

    def observer_client(self, service: str) -> Any:
        """A cached client whose calls are not the application's: the request log leaves
        them out (it reads ``OBSERVER_USER_AGENT`` in the User-Agent)."""
        with self._clients_lock:
            if service not in self._observer_clients:
                self._observer_clients[service] = self.new_client(
                    service, user_agent_extra=OBSERVER_USER_AGENT
                )
            return self._observer_clients[service]

    def new_client(self, service: str, *, user_agent_extra: str | None = None) -> Any:
        """A fresh, uncached client (for a caller that wants its own connection pool)."""
        with self._session_lock:
            return self._new_client(service, user_agent_extra=user_agent_extra)

    def _new_client(self, service: str, *, user_agent_extra: str | None = None) -> Any:
        return self._session.client(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=FAKE_ACCESS_KEY_ID,
            aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
            # No client-side retries: the emulator is local and deterministic, and a caller
            # testing throttling or faults must see each error exactly once.
            # No host prefix (StartSyncExecution's "sync-"): the emulator is one loopback host.
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1},
                user_agent_extra=user_agent_extra,
                inject_host_prefix=False,
            ),
        )

    def _set_env(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value
