"""Every request the emulator serves, counted the way AWS bills it.

One hook at moto's request layer (its WSGI dispatcher) sees every call an application makes —
from its functions, from Step Functions' service integrations, from the queue pollers — without
knowing any application. Each request is counted by service and action; DynamoDB requests are
also converted into on-demand read and write request units, estimated from the item sizes on
the wire (AWS: 1 write unit per 1 KB written, 2 in a transaction; 1 read unit per 4 KB read
strongly consistent, half that eventually consistent, 2 in a transaction; a refused
conditional write still consumes its write units).

Calls made by an observer — the local cloud's own idle check, a benchmark reading its results —
are not the application's and are left out: their clients carry ``OBSERVER_USER_AGENT`` in
their User-Agent (``Emulator.observer_client``).
"""

from __future__ import annotations

import io
import json
import math
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from pydantic import BaseModel, ConfigDict, Field

from tweetlens.localcloud._patching import PatchSet

OBSERVER_USER_AGENT: Final = "localcloud-observer"
WRITE_UNIT_BYTES: Final = 1024
READ_UNIT_BYTES: Final = 4096
# Bodies larger than this are not read for sizes (an S3 upload); they are still counted.
MAX_INSPECTED_BODY: Final = 1024 * 1024

_WRITE_ACTIONS: Final = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
_JSON_TARGET_SERVICES: Final = frozenset({"dynamodb", "logs"})


class RequestStats(BaseModel):
    """What the application asked of the emulator since the log was installed or reset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # "service:Action" (REST services without an action name: "s3:GET", "s3:PUT" …) → count.
    requests: dict[str, int] = Field(default_factory=dict)
    dynamodb_read_units: float = 0.0
    dynamodb_write_units: float = 0.0
    # Bytes of log events sent with CloudWatch Logs PutLogEvents (what ingestion bills).
    logs_put_bytes: int = 0

    def count(self, service: str, actions: Iterable[str] | None = None) -> int:
        """Requests to ``service`` (only ``actions`` of it, when given)."""
        wanted = None if actions is None else set(actions)
        total = 0
        for key, value in self.requests.items():
            key_service, _, action = key.partition(":")
            if key_service == service and (wanted is None or action in wanted):
                total += value
        return total


class RequestLog:
    """Counts the application's requests to the emulator; ``install`` into a ``PatchSet``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._read_units = 0.0
        self._write_units = 0.0
        self._logs_bytes = 0

    def install(self, patches: PatchSet) -> None:
        original = DomainDispatcherApplication.__call__
        log = self

        def counted(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
            if OBSERVER_USER_AGENT in environ.get("HTTP_USER_AGENT", ""):
                return original(app, environ, start_response)
            service = _service(environ)
            inspect = service in _JSON_TARGET_SERVICES or _is_form(environ)
            body = _take_body(environ) if inspect else b""
            status: list[int] = []

            def recording_start_response(code: str, headers: Any, *args: Any) -> Any:
                status.append(int(code.split(" ", 1)[0]))
                return start_response(code, headers, *args)

            chunks = list(original(app, environ, recording_start_response))
            log._record(environ, service, body, b"".join(chunks), status[0] if status else 0)
            return chunks

        patches.replace(DomainDispatcherApplication, "__call__", counted)

    def stats(self) -> RequestStats:
        with self._lock:
            return RequestStats(
                requests=dict(self._requests),
                dynamodb_read_units=self._read_units,
                dynamodb_write_units=self._write_units,
                logs_put_bytes=self._logs_bytes,
            )

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._read_units = self._write_units = 0.0
            self._logs_bytes = 0

    def _record(
        self, environ: dict[str, Any], service: str, body: bytes, response: bytes, status: int
    ) -> None:
        action = _action(environ, body)
        read_units = write_units = 0.0
        logs_bytes = 0
        if service == "dynamodb":
            read_units, write_units = dynamodb_units(action, body, response, status)
        elif service == "logs" and action == "PutLogEvents" and status == 200:
            logs_bytes = _log_event_bytes(body)
        with self._lock:
            self._requests[f"{service}:{action}"] += 1
            self._read_units += read_units
            self._write_units += write_units
            self._logs_bytes += logs_bytes


def _service(environ: dict[str, Any]) -> str:
    """The signing name in the SigV4 credential scope (``…/us-east-1/sqs/aws4_request``)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        scope = auth.split(",")[0].split()[1]
        return str(scope.split("/")[3]).lower()
    except IndexError:
        return "unsigned"


def _action(environ: dict[str, Any], body: bytes) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    # Query protocol (SNS, CloudWatch, STS…): Action in the URL or the form body.
    form = str(environ.get("QUERY_STRING", "")) + "&" + body.decode("utf-8", "replace")
    for part in form.split("&"):
        if part.startswith("Action="):
            return part.removeprefix("Action=")
    # REST protocols (S3, Lambda): the method is what S3 bills by (PUT/COPY/POST/LIST vs GET).
    return str(environ.get("REQUEST_METHOD", "?"))


def _is_form(environ: dict[str, Any]) -> bool:
    return str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded")


def _take_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back for moto to read."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    if length <= 0 or length > MAX_INSPECTED_BODY:
        return b""
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _log_event_bytes(body: bytes) -> int:
    """CloudWatch Logs bills each event's message in UTF-8 plus 26 bytes of overhead."""
    try:
        events = json.loads(body).get("logEvents", [])
    except (ValueError, AttributeError):
        return 0
    return sum(len(str(event.get("message", "")).encode("utf-8")) + 26 for event in events)


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute name lengths plus value sizes (UTF-8 bytes)."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    if kind in {"S", "B"}:
        return len(str(inner).encode("utf-8"))
    if kind == "N":
        return (len(str(inner).lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind in {"SS", "BS", "NS"}:
        return sum(_value_size({kind[0]: member}) for member in inner)
    if kind == "L":
        return 3 + sum(1 + _value_size(member) for member in inner)
    if kind == "M":
        return 3 + sum(
            1 + len(name.encode("utf-8")) + _value_size(member) for name, member in inner.items()
        )
    return 0


def _units(size: int, unit_bytes: int) -> int:
    return max(1, math.ceil(size / unit_bytes))


def dynamodb_units(action: str, body: bytes, response: bytes, status: int) -> tuple[float, float]:
    """(read units, write units) one DynamoDB request consumes, estimated from its items."""
    try:
        request = json.loads(body or b"{}")
        answer = json.loads(response or b"{}") if status == 200 else {}
    except ValueError:
        return 0.0, 0.0
    conditional_failure = status == 400 and b"ConditionalCheckFailed" in response
    if status != 200 and not conditional_failure:
        return 0.0, 0.0  # throttled or invalid: nothing consumed
    read_factor = 1.0 if request.get("ConsistentRead") else 0.5
    if action in _WRITE_ACTIONS:
        item = request.get("Item") or request.get("Key") or {}
        return 0.0, float(_units(item_size(item), WRITE_UNIT_BYTES))
    if action == "TransactWriteItems":
        units = 0
        for entry in request.get("TransactItems", []):
            (_, operation), *_ = entry.items()
            written = operation.get("Item") or operation["Key"]
            units += 2 * _units(item_size(written), WRITE_UNIT_BYTES)
        return 0.0, float(units)
    if action == "BatchWriteItem":
        units = 0
        for writes in request.get("RequestItems", {}).values():
            for write in writes:
                put = write.get("PutRequest", {}).get("Item")
                key = write.get("DeleteRequest", {}).get("Key", {})
                units += _units(item_size(put or key), WRITE_UNIT_BYTES)
        return 0.0, float(units)
    if action == "GetItem":
        size = item_size(answer.get("Item", {}))
        return read_factor * _units(size, READ_UNIT_BYTES), 0.0
    if action == "BatchGetItem":
        read = 0.0
        for table, items in answer.get("Responses", {}).items():
            factor = 1.0 if request["RequestItems"][table].get("ConsistentRead") else 0.5
            read += sum(factor * _units(item_size(item), READ_UNIT_BYTES) for item in items)
        return read, 0.0
    if action in {"Query", "Scan"}:
        size = sum(item_size(item) for item in answer.get("Items", []))
        return read_factor * _units(size, READ_UNIT_BYTES), 0.0
    if action == "TransactGetItems":
        sizes = [item_size(r.get("Item", {})) for r in answer.get("Responses", [])]
        return sum(2.0 * _units(size, READ_UNIT_BYTES) for size in sizes), 0.0
    return 0.0, 0.0
