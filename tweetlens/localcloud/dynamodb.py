"""DynamoDB fixes for moto: one request at a time, and one rollback snapshot per transaction.

moto's ``TransactWriteItems`` deep-copies the target table for its rollback, once per item of
the transaction, while other threads of the server write to the same table: the copy can fail
("dictionary changed size during iteration", an InternalServerError to the caller) and its
cost grows with the table times the items. Requests are serialised here, as they are consistent
in DynamoDB, and a transaction snapshots each table once.
"""

from __future__ import annotations

import copy
import functools
import threading
import types
from collections.abc import Callable
from typing import Any, Final

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

from tweetlens.localcloud._patching import PatchSet

SERIALISED_OPERATIONS: Final = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "batch_get_item",
    "batch_write_item",
    "query",
    "scan",
    "transact_get_items",
    "transact_write_items",
)


class _SnapshotOnce:
    """``copy.deepcopy`` that, inside a transaction, copies each object once."""

    def __init__(self) -> None:
        self._local = threading.local()

    def deepcopy(self, obj: Any, memo: dict[int, Any] | None = None) -> Any:
        cache: dict[int, Any] | None = getattr(self._local, "cache", None)
        if cache is None:
            return copy.deepcopy(obj, memo)
        if id(obj) not in cache:
            cache[id(obj)] = copy.deepcopy(obj, memo)
        return cache[id(obj)]

    def transaction(self, run: Callable[[], Any]) -> Any:
        self._local.cache = {}
        try:
            return run()
        finally:
            self._local.cache = None


def install(patches: PatchSet) -> None:
    """Serialise moto's DynamoDB data-plane requests; snapshot a transaction's tables once."""
    lock = threading.RLock()
    for operation in SERIALISED_OPERATIONS:
        patches.replace(
            DynamoHandler, operation, _serialised(getattr(DynamoHandler, operation), lock)
        )
    snapshots = _SnapshotOnce()
    shim = types.SimpleNamespace(**{name: getattr(copy, name) for name in ("copy", "error")})
    shim.deepcopy = snapshots.deepcopy
    patches.replace(dynamodb_models, "copy", shim)
    original: Callable[..., Any] = DynamoDBBackend.transact_write_items

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
        return snapshots.transaction(lambda: original(backend, transact_items))

    patches.replace(DynamoDBBackend, "transact_write_items", transact_write_items)


def _serialised(handler: Callable[[Any], Any], lock: threading.RLock) -> Callable[[Any], Any]:
    @functools.wraps(handler)
    def serialised(response: Any) -> Any:
        with lock:
            return handler(response)

    return serialised
