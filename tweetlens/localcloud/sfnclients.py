"""One boto3 client per service for moto's Step Functions interpreter, not one per task.

moto's interpreter calls ``boto_client_for`` for every Task it runs (each Lambda invoke, each
DynamoDB or aws-sdk integration): a new boto3 client costs about 50 ms of CPU, more than the
call it makes, and a profile of the local cloud under load found ~12 % of its time there.
Clients are thread-safe and hold no per-call state, and ``boto_client_for`` ignores the
state's credentials (it always signs with fixed fake keys), so one client per region, service
and destination (intercepted in-process by ``mock_aws``, or the server's port) serves every
task alike.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from moto.core.models import botocore_stubber
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.utils import boto_client

from tweetlens.localcloud._patching import PatchSet

# Every module of moto's interpreter that imported ``boto_client_for`` by name.
_PREFIX = "moto.stepfunctions.parser.asl.component.state.exec."
CALLERS = (
    "moto.stepfunctions.parser.asl.utils.boto_client",
    _PREFIX + "state_task.lambda_eval_utils",
    _PREFIX + "state_task.service.state_task_service_aws_sdk",
    _PREFIX + "state_task.service.state_task_service_batch",
    _PREFIX + "state_task.service.state_task_service_dynamodb",
    _PREFIX + "state_task.service.state_task_service_ecs",
    _PREFIX + "state_task.service.state_task_service_events",
    _PREFIX + "state_task.service.state_task_service_glue",
    _PREFIX + "state_task.service.state_task_service_sfn",
    _PREFIX + "state_task.service.state_task_service_sns",
    _PREFIX + "state_task.service.state_task_service_sqs",
    _PREFIX + "state_task.service.state_task_service_unsupported",
    _PREFIX + "state_map.item_reader.eval.resource_eval_s3",
    _PREFIX + "state_map.result_writer.resource_eval.resource_eval_s3",
)


class ClientCache:
    """The clients made so far, keyed by what makes two of them differ."""

    def __init__(self, prepare: Callable[[Any], None] = lambda client: None) -> None:
        self._clients: dict[tuple[str, str, bool, int], Any] = {}
        self._lock = threading.Lock()
        self._original = boto_client.boto_client_for
        self._prepare = prepare

    def __call__(self, region: str, service: str, state_credentials: Any = None) -> Any:
        # Intercepted clients have no endpoint; server clients point at the port: the two must
        # never be mixed up, so both are part of the key.
        key = (region, service, bool(botocore_stubber.enabled), int(moto_server_port()))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._original(region, service, state_credentials)
                self._prepare(client)
                self._clients[key] = client
            return client

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)


def install_client_cache(
    patches: PatchSet, prepare: Callable[[Any], None] = lambda client: None
) -> ClientCache:
    """Make every caller of ``boto_client_for`` share cached clients until ``patches`` restore;
    ``prepare`` is given each new client (``taskclock.register_on``)."""
    cache = ClientCache(prepare)
    for name in CALLERS:
        module = importlib.import_module(name)
        if hasattr(module, "boto_client_for"):
            patches.replace(module, "boto_client_for", cache)
    return cache
