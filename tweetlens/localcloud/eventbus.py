"""The local EventBridge: events put on a bus reach the targets of the rules they match.

moto stores rules and accepts ``PutEvents`` but never invokes a Lambda function or starts an
execution for them, and never fires a schedule. Here every event, whether put through the
emulator's ``PutEvents`` endpoint, by ``LocalCloud.put_events`` or by the local cloud itself
(Step Functions status changes), is queued, then matched on a dispatcher thread against every
deployed rule of its bus that is ENABLED at that moment (``EnableRule``/``DisableRule`` are
honoured), and delivered to each target of each matching rule:

* a Lambda function: an asynchronous invocation (``asyncinvoke``), with Lambda's retries;
* an SQS queue: ``SendMessage`` (a FIFO queue gets the target's ``MessageGroupId`` and the
  event id as deduplication id);
* a state machine: ``StartExecution`` with a generated unique name.

Schedule rules hand their scheduled event to ``deliver_scheduled``, which skips matching.
A failed delivery (bad ``InputPath``, a target that vanished) is logged as an error and kept
in ``deliveries()``; it is not retried. Rules created through the API after the deploy are
not delivered: an event matching one is logged as a warning.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import moto.s3.models as s3_models
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from moto.events.exceptions import ValidationException
from moto.events.models import EventBus as MotoEventBus
from moto.events.models import EventsBackend, events_backends

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.activity import Activity
from tweetlens.localcloud.asyncinvoke import AsyncInvoker
from tweetlens.localcloud.eventinput import RuleContext, TargetInputError, render_input
from tweetlens.localcloud.eventpatterns import EventPatternError, matches, validate_pattern
from tweetlens.localcloud.eventrules import DEFAULT_BUS, bus_name
from tweetlens.localcloud.models import (
    BusEvent,
    EventDelivery,
    EventRuleConfig,
    RuleTargetConfig,
)

logger = Logger(service="localcloud")

HISTORY_LIMIT = 10_000
MAX_PUT_EVENTS_ENTRIES = 10


def event_time(moment: datetime) -> str:
    """EventBridge's ``time`` field: ISO 8601 UTC to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Pending:
    event: dict[str, Any]
    bus: str
    received: datetime
    rule: EventRuleConfig | None  # set for a scheduled event: deliver to this rule only


class EventBus:
    """Every event bus of the deployed stack, with its rules and their targets."""

    def __init__(
        self,
        rules: Mapping[str, EventRuleConfig],
        *,
        account_id: str,
        region: str,
        sqs: Any,
        stepfunctions: Any,
        async_invoker: AsyncInvoker,
        activity: Activity,
    ) -> None:
        self._rules = dict(rules)
        self._account_id = account_id
        self._region = region
        self._sqs = sqs
        self._sfn = stepfunctions
        self._async = async_invoker
        self._activity = activity
        self._queue: deque[_Pending] = deque()
        self._dispatching = 0
        self._condition = threading.Condition()
        self._stopped = False
        self._queue_urls: dict[str, str] = {}
        self._warned_rules: set[str] = set()
        self._events: deque[BusEvent] = deque(maxlen=HISTORY_LIMIT)
        self._deliveries: deque[EventDelivery] = deque(maxlen=HISTORY_LIMIT)
        self._thread = threading.Thread(target=self._run, name="event-bus", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        with self._condition:
            self._stopped = True
            dropped = len(self._queue)
            self._queue.clear()
            self._condition.notify_all()
        if dropped:
            logger.warning("Events dropped at shutdown", count=dropped)
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- accepting events ------------------------------------------------------------------

    def put(self, event: dict[str, Any], bus: str = DEFAULT_BUS) -> None:
        """Queue a complete event (version, id, detail-type, source, …) on a bus."""
        self._enqueue(_Pending(event, bus_name(bus), datetime.now(UTC), None))

    def deliver_scheduled(self, rule: EventRuleConfig, event: dict[str, Any]) -> None:
        """Queue a schedule rule's event for that rule's targets only."""
        self._enqueue(_Pending(event, rule.event_bus_name, datetime.now(UTC), rule))

    def put_entries(self, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``PutEvents``: one result per entry, an ``EventId`` or an ``ErrorCode``."""
        if len(entries) > MAX_PUT_EVENTS_ENTRIES:
            raise ValidationException(
                "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' "
                "failed to satisfy constraint: Member must have length less than or equal to 10"
            )
        return [self._put_entry(entry) for entry in entries]

    def _put_entry(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        for field in ("Source", "DetailType", "Detail"):
            if not entry.get(field):
                return {
                    "ErrorCode": "InvalidArgument",
                    "ErrorMessage": f"Parameter {field} is not valid. Reason: {field} is a "
                    "required argument.",
                }
        try:
            detail = json.loads(entry["Detail"])
        except ValueError:
            detail = None
        if not isinstance(detail, dict):
            return {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
        bus = bus_name(str(entry.get("EventBusName") or DEFAULT_BUS))
        backend: EventsBackend = events_backends[self._account_id][self._region]
        if bus not in backend.event_buses:
            return {
                "ErrorCode": "ResourceNotFoundException",
                "ErrorMessage": f"Event bus {bus} does not exist.",
            }
        at = entry.get("Time")
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": self._account_id,
            "time": event_time(
                datetime.fromtimestamp(float(at), UTC) if at is not None else datetime.now(UTC)
            ),
            "region": self._region,
            "resources": list(entry.get("Resources") or []),
            "detail": detail,
        }
        self.put(event, bus)
        return {"EventId": event["id"]}

    def _enqueue(self, pending: _Pending) -> None:
        self._activity.started()
        with self._condition:
            if self._stopped:
                logger.warning("Event after shutdown dropped", event_id=pending.event.get("id"))
                return
            self._queue.append(pending)
            self._condition.notify()

    # -- what happened ---------------------------------------------------------------------

    def in_flight(self) -> int:
        """Events queued or being delivered."""
        with self._condition:
            return len(self._queue) + self._dispatching

    def history(self) -> list[BusEvent]:
        with self._condition:
            return list(self._events)

    def deliveries(self) -> list[EventDelivery]:
        with self._condition:
            return list(self._deliveries)

    # -- dispatching -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._stopped:
                    self._condition.wait()
                if self._stopped:
                    return
                pending = self._queue.popleft()
                self._dispatching += 1
            try:
                self._dispatch(pending)
            except Exception:
                logger.exception("Event dispatch failed", event_id=pending.event.get("id"))
            finally:
                with self._condition:
                    self._dispatching -= 1

    def _dispatch(self, pending: _Pending) -> None:
        if pending.rule is not None:
            matched = [pending.rule]
        else:
            matched = [
                rule
                for rule in self._rules.values()
                if rule.event_bus_name == pending.bus
                and rule.event_pattern is not None
                and self._enabled(rule)
                and matches(rule.event_pattern, pending.event)
            ]
            self._warn_undeployed_matches(pending)
        with self._condition:
            self._events.append(
                BusEvent(
                    bus_name=pending.bus,
                    event=pending.event,
                    matched_rules=[rule.logical_id for rule in matched],
                    at=pending.received.timestamp(),
                )
            )
        for rule in matched:
            self.deliver(rule, pending.event, received=pending.received)

    def _enabled(self, rule: EventRuleConfig) -> bool:
        # Read from the emulator each time, so EnableRule/DisableRule take effect at once.
        backend: EventsBackend = events_backends[self._account_id][self._region]
        bus = backend.event_buses.get(rule.event_bus_name)
        stored = None if bus is None else bus.rules.get(rule.name)
        return stored is not None and stored.state == "ENABLED"

    def _warn_undeployed_matches(self, pending: _Pending) -> None:
        backend: EventsBackend = events_backends[self._account_id][self._region]
        bus = backend.event_buses.get(pending.bus)
        deployed = {rule.name for rule in self._rules.values()}
        for name, stored in ({} if bus is None else dict(bus.rules)).items():
            pattern = stored.event_pattern.get_pattern()
            if name in deployed or name in self._warned_rules or not pattern:
                continue
            try:
                validate_pattern(pattern)
                matched = matches(pattern, pending.event)
            except EventPatternError:
                matched = False
            if matched:
                self._warned_rules.add(name)
                logger.warning(
                    "Event matches a rule created after the deploy; its targets get nothing",
                    rule=name,
                    event_id=pending.event.get("id"),
                )

    # -- delivering ------------------------------------------------------------------------

    def deliver(
        self, rule: EventRuleConfig, event: Mapping[str, Any], *, received: datetime
    ) -> list[EventDelivery]:
        """Hand ``event`` to every target of ``rule`` now (no matching, whatever its state)."""
        context = RuleContext(rule_name=rule.name, rule_arn=rule.arn, ingestion_time=received)
        deliveries = [self._deliver_to(rule, target, event, context) for target in rule.targets]
        with self._condition:
            self._deliveries.extend(deliveries)
        return deliveries

    def _deliver_to(
        self,
        rule: EventRuleConfig,
        target: RuleTargetConfig,
        event: Mapping[str, Any],
        context: RuleContext,
    ) -> EventDelivery:
        payload: str | None = None
        try:
            payload = render_input(target, event, context)
            detail = self._senders()[target.kind](rule, target, event, payload)
            delivered = True
        except (TargetInputError, ClientError, ValueError) as exc:
            detail, delivered = str(exc), False
            logger.error(
                "Event delivery failed",
                rule=rule.logical_id,
                target=target.id,
                target_arn=target.arn,
                event_id=event.get("id"),
                reason=detail,
            )
        return EventDelivery(
            rule_logical_id=rule.logical_id,
            target_id=target.id,
            target_arn=target.arn,
            kind=target.kind,
            event_id=str(event.get("id", "")),
            payload=payload,
            delivered=delivered,
            detail=detail,
            at=datetime.now(UTC).timestamp(),
        )

    def _senders(
        self,
    ) -> dict[str, Callable[[EventRuleConfig, RuleTargetConfig, Mapping[str, Any], str], str]]:
        return {"lambda": self._invoke, "sqs": self._send, "states": self._start}

    def _invoke(
        self,
        rule: EventRuleConfig,
        target: RuleTargetConfig,
        event: Mapping[str, Any],
        payload: str,
    ) -> str:
        # Lambda accepts only JSON for an asynchronous invocation.
        self._async.submit(target.arn, _json(payload), source=f"rule {rule.logical_id}")
        return "queued for asynchronous invocation"

    def _send(
        self,
        rule: EventRuleConfig,
        target: RuleTargetConfig,
        event: Mapping[str, Any],
        payload: str,
    ) -> str:
        queue_url = self._queue_url(target.arn)
        arguments: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": payload}
        if queue_url.endswith(".fifo"):
            arguments["MessageGroupId"] = target.message_group_id or rule.name
            arguments["MessageDeduplicationId"] = str(event.get("id", uuid.uuid4()))
        message_id: str = self._sqs.send_message(**arguments)["MessageId"]
        return message_id

    def _start(
        self,
        rule: EventRuleConfig,
        target: RuleTargetConfig,
        event: Mapping[str, Any],
        payload: str,
    ) -> str:
        _json(payload)
        execution_arn: str = self._sfn.start_execution(
            stateMachineArn=target.arn, name=str(uuid.uuid4()), input=payload
        )["executionArn"]
        return execution_arn

    def _queue_url(self, arn: str) -> str:
        if arn not in self._queue_urls:
            _, _, _, _, owner, name = arn.split(":")
            response = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=owner)
            self._queue_urls[arn] = response["QueueUrl"]
        return self._queue_urls[arn]


def _json(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise ValueError(f"the target needs JSON input, got {payload!r}") from exc


def install(patches: PatchSet, bus: EventBus, *, account_id: str, region: str) -> None:
    """Route the emulator's ``PutEvents`` to ``bus``; stop moto delivering events itself."""
    original_put_events = EventsBackend.put_events

    def put_events(backend: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if (backend.account_id, backend.region_name) != (account_id, region):
            return original_put_events(backend, entries)
        return bus.put_entries(entries)

    patches.replace(EventsBackend, "put_events", put_events)
    # moto invokes rule targets itself for S3's CreateBucket, in a shape AWS never sends.
    patches.replace(s3_models, "events_send_notification", lambda *args, **kwargs: None)


def install_cloudformation_fixes(patches: PatchSet) -> None:
    """``Ref`` of an ``AWS::Events::EventBus`` is its name, as in AWS (moto gives its object)."""
    patches.replace(MotoEventBus, "physical_resource_id", property(lambda bus: bus.name))
