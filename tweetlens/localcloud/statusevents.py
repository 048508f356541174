"""Step Functions "Execution Status Change" events, which moto never sends.

In AWS, every status change of a **STANDARD** workflow execution (RUNNING, SUCCEEDED,
FAILED, TIMED_OUT, ABORTED) is sent to the account's default event bus with source
``aws.states``, on a **best effort** basis; EXPRESS workflows send none. The local cloud
emits them in the same shape, taking the workflow type declared in the template (moto runs
every state machine as STANDARD).

Best effort is reproducible on purpose, so that an application can prove it does not depend
on every event arriving::

    cloud.status_events.enabled = False                       # Step Functions sends nothing
    cloud.status_events.drop = lambda event: event["detail"]["status"] == "FAILED"
    cloud.status_events.drop = drop_fraction(0.5, seed=7)     # lose about half
    cloud.status_events.dropped()                              # what was lost

``LocalCloud(..., status_change_events=False)`` starts with them off.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from tweetlens.localcloud.activity import Activity

SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"
HISTORY_LIMIT = 10_000
_ENDED_OK = ("RUNNING", "SUCCEEDED")

EventFilter = Callable[[Mapping[str, Any]], bool]


def epoch_millis(moment: datetime | None) -> int | None:
    return None if moment is None else round(moment.timestamp() * 1000)


def status_change_event(
    *,
    execution_arn: str,
    state_machine_arn: str,
    name: str,
    status: str,
    start_date: datetime,
    stop_date: datetime | None,
    execution_input: str,
    output: str | None,
    error: str | None,
    cause: str | None,
    account: str,
    region: str,
    at: datetime,
) -> dict[str, Any]:
    """The event Step Functions puts on the default bus, with every field AWS sends."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": state_machine_arn,
            "name": name,
            "status": status,
            "startDate": epoch_millis(start_date),
            "stopDate": epoch_millis(stop_date),
            "input": execution_input,
            "inputDetails": {"included": True},
            "output": output,
            "outputDetails": {"included": True} if output is not None else None,
            "error": error,
            "cause": cause,
            "stateMachineVersionArn": None,
            "stateMachineAliasArn": None,
            "redriveCount": 0,
            "redriveDate": None,
            "redriveStatus": "NOT_REDRIVABLE" if status in _ENDED_OK else "REDRIVABLE",
            "redriveStatusReason": f"Execution is {status} and cannot be redriven"
            if status in _ENDED_OK
            else None,
        },
    }


def drop_fraction(fraction: float, *, seed: int = 0) -> EventFilter:
    """A ``drop`` filter that loses about ``fraction`` of the events, reproducibly."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be between 0 and 1")
    generator = random.Random(seed)  # noqa: S311 - fault injection, not cryptography
    lock = threading.Lock()

    def drop(_: Mapping[str, Any]) -> bool:
        with lock:
            return generator.random() < fraction

    return drop


class StatusChangeEmitter:
    """Turns moto's execution status changes into events on the default bus."""

    def __init__(
        self,
        put: Callable[[dict[str, Any]], None],
        *,
        declared_types: Mapping[str, str],
        activity: Activity,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.drop: EventFilter | None = None
        self._put = put
        self._declared_types = dict(declared_types)
        self._activity = activity
        self._lock = threading.Lock()
        self._changing = 0
        self._dropped: deque[dict[str, Any]] = deque(maxlen=HISTORY_LIMIT)

    def declare_types(self, types_by_arn: Mapping[str, str]) -> None:
        """The workflow type of each deployed state machine, by ARN, as the template says."""
        with self._lock:
            self._declared_types = dict(types_by_arn)

    @contextmanager
    def changing(self) -> Iterator[None]:
        self._activity.started()
        with self._lock:
            self._changing += 1
        try:
            yield
        finally:
            with self._lock:
                self._changing -= 1

    def pending(self) -> int:
        """Status changes under way and not yet on the bus."""
        with self._lock:
            return self._changing

    def dropped(self) -> list[dict[str, Any]]:
        """Events lost to ``drop``, oldest first."""
        with self._lock:
            return list(self._dropped)

    def __call__(self, execution: Any, status: str) -> None:
        if not self.enabled or not self._is_standard(execution):
            return
        event = self._event(execution, status)
        drop = self.drop
        if drop is not None and drop(event):
            with self._lock:
                self._dropped.append(event)
            return
        self._put(event)

    def _is_standard(self, execution: Any) -> bool:
        # The template's type first; a machine created through the API keeps the type it was
        # created with (moto's ``type``), even though moto runs it as STANDARD.
        declared = self._declared_types.get(execution.state_machine_arn)
        kind = declared or getattr(execution.state_machine, "type", None) or "STANDARD"
        return str(kind) == "STANDARD"

    def _event(self, execution: Any, status: str) -> dict[str, Any]:
        succeeded = status == "SUCCEEDED"
        return status_change_event(
            execution_arn=execution.exec_arn,
            state_machine_arn=execution.state_machine_arn,
            name=execution.name,
            status=status,
            start_date=execution.start_date,
            stop_date=None if status == "RUNNING" else execution.stop_date,
            execution_input=execution.execution_input,
            output=json.dumps(execution.output, separators=(",", ":")) if succeeded else None,
            error=None if status == "RUNNING" else execution.error,
            cause=None if status == "RUNNING" else execution.cause,
            account=execution.account_id,
            region=execution.region_name,
            at=datetime.now(UTC),
        )
