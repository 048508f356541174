"""Turn one batch of route queue records into ClassifyImage executions.

Every record ends in exactly one of these ways: an execution is started for it, it is a
duplicate (its URL is DONE, or another record of the batch carries it), an execution for its
URL is running, it is rejected to its route's dead-letter queue, or it is left on the queue as
a batch item failure because something outside the message went wrong. A DONE result, a
RUNNING execution or a permanent failure (``classifier.lookup``: its one dead letter says why)
makes a message a duplicate: a URL whose last execution failed transiently, or a replay of a
dead letter, gets a new execution with the next name, allowed to take over the ended one's claim.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import ValidationError

from classifier.backoff import Jitter, redelivery_delay
from classifier.express import ExpressRetry, ExpressRunner
from classifier.lookup import (
    Claim,
    DoneLookupFailed,
    ended_for_good,
    find_claims,
    repeats_failure,
)
from classifier.models import (
    RECORD_OUTCOME_KEY,
    FailureMetric,
    Outcome,
    RecordOutcomeLog,
    Rejection,
    RouteQueueEvent,
    RouteQueueRecord,
)
from classifier.observability import logger, tracer
from classifier.pacing import Slot, StartLimiter
from classifier.settings import ClassifierSettings
from common.closing import sqs_safe
from common.letters import LetterMarkers
from common.messages import (
    NO_EXECUTION,
    ClassifyRequest,
    PhotoMessage,
    execution_arn,
    execution_name,
    execution_sequence,
    message_token,
    url_digest,
)
from common.validation import summarize
from tweetlens_naming import SOURCE_MESSAGE_ID_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef
    from mypy_boto3_stepfunctions import SFNClient

# Message attributes count towards the SQS message size limit and the rejected body is
# forwarded whole, so the reason stays short.
MAX_REASON_CHARS = 1_024
# JSON keys of an invalid body end up in the reason (pydantic reports unknown fields by name):
# ``summarize`` keeps each short; only characters SQS accepts in a String attribute are kept
# (common.closing.sqs_safe, shared with the dead letters).

# The message of the one log line per record (see Batch.handle_record).
RECORD_PROCESSED = "Record processed"
# An execution in one of these states owns its URL: a message for it is a duplicate.
LIVE_STATUSES = frozenset({"RUNNING", "SUCCEEDED"})
# Names tried when racing other classifiers for the next execution name of one URL.
MAX_NAME_ATTEMPTS = 3
# Marker items of rejection letters: pk = REJECTION#<source queue ARN>#<SQS message id>. The
# classifier's role may write only items whose key starts so (dynamodb:LeadingKeys).
REJECTION_PREFIX = "REJECTION#"
# Longer than SQS keeps a message (at most 14 days): every redelivery finds the marker.
REJECTION_MARKER_DAYS = 15
# STANDARD: a limited start is only made while this much of the invocation is left after its
# wait. StartExecution answers in well under a second; the rest is room for a retry after a
# quick error and for the batch response. A start that stalls may still run the invocation
# into its timeout (one attempt to its read timeout already spends the margin; all of them
# take 27 s: settings.stepfunctions_config): the batch then comes back, and each execution's
# name refuses a second start of its image, so nothing is lost or started twice.
START_MARGIN_SECONDS = 5.0

# Error codes that say "not now" rather than "never": the record is received again later.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        # Step Functions: too many open executions; they finish and make room.
        "ExecutionLimitExceeded",
        "KmsThrottlingException",
        "KmsThrottled",
    }
)


class InvalidEvent(Exception):
    """The invocation event is not an SQS batch of well-formed records: a wrong caller."""


class UnknownSourceQueue(Exception):
    """A record from a queue ROUTE_DLQ_URLS does not list, whose body is no valid message of a
    known route either: nothing the deployment trusts says where it belongs."""


class RecordNotInBatch(Exception):
    """The record handler got a record that ``open_batch`` never saw: a wiring bug."""


class DeadLetterSendFailed(Exception):
    """A rejected message could not be put on its route's dead-letter queue."""


class ExecutionStartFailed(Exception):
    """StartExecution failed for a valid message; ``transient`` tells whether waiting helps."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class StartDeferred(ExecutionStartFailed):
    """STANDARD: the record's paced start would come too late for this invocation; it is
    handed back untouched (a batch item failure) and started by a later delivery."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)


def is_transient(error: Exception) -> bool:
    """Whether an AWS call that raised ``error`` may succeed if simply tried again later."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_ERROR_CODES or status == 429 or status >= 500
    return isinstance(error, BotoConnectionError | HTTPClientError)


def parse_body(body: str) -> Rejection | PhotoMessage:
    """Validate a record body into a ``PhotoMessage``, or say why it can never be one."""
    try:
        return PhotoMessage.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        error = "NotJson" if any(e["type"] == "json_invalid" for e in errors) else "InvalidMessage"
        return Rejection(error=error, reason=_attribute_safe(summarize(exc, root="body")))


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _attribute_safe(text: str) -> str:
    cleaned = sqs_safe(text)
    if len(cleaned) <= MAX_REASON_CHARS:
        return cleaned
    return cleaned[: MAX_REASON_CHARS - 3] + "..."


@dataclass(frozen=True)
class RecordRoute:
    """Where a record belongs: its route, and the dead-letter queue a rejection of it goes to."""

    route: str
    dead_letter_queue_url: str


def route_record(
    settings: ClassifierSettings, source_queue_arn: str, parsed: PhotoMessage | Rejection
) -> RecordRoute:
    """The route of a record, from what the deployment trusts; ``UnknownSourceQueue`` if none.

    A record from a route queue belongs to that queue's route, whatever its body says. A record
    from a queue the deployment does not know (a hand-made event: ``sam local generate-event sqs
    receive-message`` names its queue MyQueue) is routed by its validated message, and only to
    a route of ROUTE_DLQ_URLS_BY_ROUTE: the event's sender can never pick a queue outside the
    environment. A body that failed validation names no route, so such a record is refused.
    """
    route = settings.route_of_queue(source_queue_arn)
    if route is not None:
        return RecordRoute(route, settings.route_dlq_urls[source_queue_arn])
    known = settings.route_dlq_urls_by_route
    if isinstance(parsed, Rejection):
        raise UnknownSourceQueue(
            f"record from unknown queue {source_queue_arn} is no valid message "
            f"({parsed.error}), so nothing names its route"
        )
    if parsed.route not in known:
        raise UnknownSourceQueue(
            f"record from unknown queue {source_queue_arn} names route {parsed.route!r}, "
            f"not one of {', '.join(sorted(known))}"
        )
    return RecordRoute(parsed.route, known[parsed.route])


def _count[T: (Outcome, FailureMetric)](metrics: Metrics, metric: T) -> T:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=1)
    return metric


def _closed_for(claim: Claim, message: PhotoMessage, record: RouteQueueRecord) -> bool:
    """Whether the claim is closed after a permanent failure that ``message`` only repeats."""
    return claim.failed_for_good and repeats_failure(
        claim, message, message_token(record.messageId), claim.error
    )


# A record's key in the pre-pass. SQS gives every record of a batch its own receipt handle;
# a hand-made event may not (every record `sam local generate-event` makes has the same ids),
# so the body is part of the key and records that differ never share a plan.
type _RecordKey = tuple[str, str, str]


def _key(record: RouteQueueRecord) -> _RecordKey:
    return (record.receiptHandle, record.messageId, record.body)


@dataclass(frozen=True)
class _Planned:
    """What the pre-pass learnt about one record, keyed by ``_key``."""

    parsed: PhotoMessage | Rejection
    # The record's route, or why it has none (raised by the record handler).
    route: RecordRoute | UnknownSourceQueue
    owns_url: bool


class Classifier:
    """Long-lived per container: settings, clients and metrics; opens one ``Batch`` per event."""

    def __init__(
        self,
        *,
        settings: ClassifierSettings,
        sqs: SQSClient,
        stepfunctions: SFNClient,
        dynamodb: DynamoDBClient,
        metrics: Metrics,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        # Draws the backoff of a record that failed transiently (classifier.backoff).
        jitter: Jitter = random.randint,
        # Draws the start limiter's retry jitter (classifier.pacing).
        start_jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.settings = settings
        self.sqs = sqs
        self.stepfunctions = stepfunctions
        self.dynamodb = dynamodb
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.jitter = jitter
        rate = settings.start_rate
        # STANDARD: the starts of all invocations together are limited (classifier.pacing).
        self.limiter = (
            None
            if rate is None
            else StartLimiter(
                rate,
                dynamodb=dynamodb,
                table=settings.results_table,
                clock=clock,
                sleep=sleep,
                jitter=start_jitter,
            )
        )
        self.markers = LetterMarkers(dynamodb, settings.results_table, REJECTION_MARKER_DAYS, clock)
        self.express = ExpressRunner(
            settings=settings,
            stepfunctions=stepfunctions,
            dynamodb=dynamodb,
            sqs=sqs,
            markers=self.markers,
            clock=clock,
            is_transient=is_transient,
        )

    def check_event(self, event: object) -> list[dict[str, Any]]:
        """The event's records, once the whole event is known to be an SQS batch.

        An event source mapping never sends a record without a body, receipt handle or source
        ARN, so such an event comes from a wrong trigger or a hand-made invoke. Refusing it
        whole, before any record is touched, names the problem once; left to the record
        handler, each record would become an anonymous batch item failure received again and
        again, and a record without ``messageId`` would break the batch response itself.
        """
        try:
            RouteQueueEvent.model_validate(event)
        except ValidationError as exc:
            problems = _attribute_safe(summarize(exc, root="event"))
            logger.error("Event is not an SQS batch; no record was touched", problems=problems)
            _count(self.metrics, FailureMetric.CONFIGURATION)
            raise InvalidEvent(f"not an SQS batch event: {problems}") from exc
        records: list[dict[str, Any]] = cast("dict[str, Any]", event)["Records"]
        return records

    # The Batch it returns is no JSON document for X-Ray metadata.
    @tracer.capture_method(capture_response=False)
    def open_batch(
        self,
        raw_records: Iterable[Mapping[str, Any]],
        remaining_ms: Callable[[], int] | None = None,
    ) -> Batch:
        """Validate every body and look up all their URLs in one go, before any record is handled.

        ``remaining_ms`` is the invocation's time left (the Lambda context's): with EXPRESS, a
        record is only run while an execution started now can end before the invocation does.

        Raises ``DoneLookupFailed`` when ResultsTable cannot answer: no record has been touched
        yet, so failing the whole invocation lets SQS hand the same batch back later.
        """
        planned: dict[_RecordKey, _Planned] = {}
        # URL -> key of the one record of the batch that may start its execution.
        owners: dict[str, _RecordKey] = {}
        for raw in raw_records:
            try:
                record = RouteQueueRecord.model_validate(raw)
            except ValidationError:
                # Not an SQS record at all: BatchProcessor reports it as a failure by itself.
                continue
            parsed = parse_body(record.body)
            try:
                route: RecordRoute | UnknownSourceQueue = route_record(
                    self.settings, record.eventSourceARN, parsed
                )
            except UnknownSourceQueue as exc:
                route = exc
            key = _key(record)
            planned[key] = _Planned(parsed=parsed, route=route, owns_url=False)
            if isinstance(parsed, PhotoMessage) and isinstance(route, RecordRoute):
                owners.setdefault(parsed.url, key)
        for key in owners.values():
            planned[key] = replace(planned[key], owns_url=True)
        try:
            claims = find_claims(
                self.dynamodb, self.settings.results_table, owners.keys(), self.sleep
            )
        except DoneLookupFailed as exc:
            # Keys left unprocessed have no cause and are a capacity problem, hence transient.
            transient = exc.__cause__ is None or is_transient(cast("Exception", exc.__cause__))
            logger.error(
                "Could not look up known URLs; the whole batch will be received again",
                transient=transient,
                exc_info=True,
            )
            _count(
                self.metrics, FailureMetric.TRANSIENT if transient else FailureMetric.CONFIGURATION
            )
            raise
        return Batch(self, planned, claims, remaining_ms)


class Batch:
    """One invocation's view: which records carry new URLs, and the record handler."""

    def __init__(
        self,
        classifier: Classifier,
        planned: Mapping[_RecordKey, _Planned],
        claims: Mapping[str, Claim],
        remaining_ms: Callable[[], int] | None = None,
    ) -> None:
        self._classifier = classifier
        self._remaining_ms = remaining_ms
        self._settings = classifier.settings
        self._planned = planned
        self.claims = claims
        # Name of the execution the record being handled started or joined ("" for none).
        self._execution = ""
        # What the record's Express execution billed (StartSyncExecution's billingDetails).
        self._billing: dict[str, int] | None = None
        # URL -> how the batch's record owning it ended (None: left on its queue), the
        # execution it started or joined, and whether it only repeated a failure for good;
        # its copies later in the batch are settled from it.
        self._owner_outcomes: dict[str, tuple[Outcome | None, str, bool]] = {}
        # The record being handled was settled as a repeat of a failure for good.
        self._repeated = False
        # The record being handled is a copy that runs as its URL's owner (see _handle).
        self._took_over = False

    @tracer.capture_method
    def handle_record(self, record: RouteQueueRecord) -> Outcome:
        """Record handler for Powertools' ``BatchProcessor``: an exception = batch item failure."""
        logger.append_keys(message_id=record.messageId)
        self._execution = ""
        self._billing = None
        self._repeated = False
        self._took_over = False
        try:
            outcome = self._handle(record)
        except Exception:
            self._settle(record, None)
            raise
        finally:
            keys = dict(logger.get_current_keys())
            # The record carries them: the outcome line need not repeat them as keys.
            logger.remove_keys(["message_id", "url_sha256", "route"])
        self._settle(record, outcome)
        # One line per record with its outcome and the execution it started or joined, as a
        # versioned record under its own key: the per-route accounting (the demo, the chaos
        # run, a Logs Insights query) reads it, not the aggregated metrics nor the line's words
        # (docs/architecture.md, "Classifier outcomes"). It is the only INFO line of a record
        # that went as expected: CloudWatch Logs bills every byte, per image.
        logged = RecordOutcomeLog(
            message_id=record.messageId,
            outcome=outcome,
            event_source_arn=record.eventSourceARN,
            route=_str_or_none(keys.get("route")),
            url_sha256=_str_or_none(keys.get("url_sha256")),
            execution=self._execution,
            billing=self._billing,
        )
        # ``billing`` only when an execution billed something: other fields keep their shape.
        record_outcome = {
            RECORD_OUTCOME_KEY: logged.model_dump(
                mode="json", exclude={"billing"} if logged.billing is None else None
            )
        }
        logger.info(RECORD_PROCESSED, extra=record_outcome)
        return outcome

    def _settle(self, record: RouteQueueRecord, outcome: Outcome | None) -> None:
        """Remember how the record owning a URL ended, for the batch's other copies of it."""
        planned = self._planned.get(_key(record))
        if (
            planned is not None
            and (planned.owns_url or self._took_over)
            and isinstance(planned.parsed, PhotoMessage)
        ):
            self._owner_outcomes[planned.parsed.url] = (outcome, self._execution, self._repeated)

    def _handle(self, record: RouteQueueRecord) -> Outcome:
        planned = self._planned.get(_key(record))
        if planned is None:
            raise RecordNotInBatch(f"record {record.messageId} was not in the opened batch")
        if isinstance(planned.route, UnknownSourceQueue):
            logger.error(
                "Record from a queue missing in ROUTE_DLQ_URLS without a valid message of a "
                "known route; fix the deployment or the event",
                event_source_arn=record.eventSourceARN,
                problem=str(planned.route),
            )
            self._count(FailureMetric.CONFIGURATION)
            raise planned.route
        if isinstance(planned.parsed, Rejection):
            return self._reject(record, planned.route.dead_letter_queue_url, planned.parsed)
        message = planned.parsed
        logger.append_keys(url_sha256=url_digest(message.url), route=message.route)
        if message.route != planned.route.route:
            # The queue decides where the record belongs; the message's route is its data.
            logger.warning(
                "Message route differs from its queue's route",
                queue_route=planned.route.route,
            )
        claim = self.claims.get(message.url)
        if claim is not None and claim.done:
            # The outcome line says so (Duplicate, with the execution that classified it).
            self._execution = _name_of(claim.execution)
            return self._count(Outcome.DUPLICATE)
        if claim is not None and _closed_for(claim, message, record):
            # Another post of a gone photo, under either workflow type: its dead letter is sent.
            return self._repeated_failure(claim.execution, claim.error)
        if not planned.owns_url:
            if not self._owner_only_repeated(message.url):
                return self._copy_of_owner(message)
            # The URL's record before this one only repeated its failure for good, which this
            # one does not (a replay, or the failed message itself): its outcome covers nothing
            # here, so this record runs, and owns the URL for the batch's later copies.
            self._took_over = True
        if self._settings.workflow_type == "EXPRESS":
            return self._run_express(record, message, claim)
        return self._start(record, message, claim)

    def _copy_of_owner(self, message: PhotoMessage) -> Outcome:
        """Settle a record whose URL an earlier record of this batch carries, from how that
        record ended: records run one after the other, so its outcome is known, and this one
        costs no request and no execution. Whatever it was, the URL is taken care of: done,
        running, dead-lettered, or left on its queue for SQS to deliver again (this copy is
        then redundant with it)."""
        owner_outcome, owner_execution, _ = self._owner_outcomes.get(message.url, (None, "", False))
        self._execution = owner_execution
        if owner_outcome is None:
            logger.info("Copy of a record left on its queue in this batch", attempt=message.attempt)
        return self._count(Outcome.DUPLICATE)

    def _owner_only_repeated(self, url: str) -> bool:
        """Whether the batch's record owning ``url`` was settled as a repeat of its failure."""
        owner = self._owner_outcomes.get(url)
        return owner is not None and owner[2]

    def _run_express(
        self, record: RouteQueueRecord, message: PhotoMessage, claim: Claim | None
    ) -> Outcome:
        try:
            result = self._classifier.express.run(
                message=message,
                message_id=record.messageId,
                claim=claim,
                source_queue_arn=record.eventSourceARN,
                # The rejection marker's key: "this SQS message was dead-lettered".
                letter_cause=f"{REJECTION_PREFIX}{record.eventSourceARN}#{record.messageId}",
                remaining_ms=self._remaining_ms,
            )
        except ExpressRetry as exc:
            self._count(FailureMetric.TRANSIENT if exc.transient else FailureMetric.CONFIGURATION)
            if exc.back_off:
                self._back_off(record)
            raise
        self._execution = result.execution
        self._billing = result.billing
        return self._count(result.outcome)

    def _back_off(self, record: RouteQueueRecord) -> None:
        """Make SQS deliver the record again after a short backoff instead of the queue's
        visibility timeout (classifier.backoff). It stays a batch item failure either way: if
        the call fails, the record simply comes back later."""
        queue_url = self._settings.route_queue_url(record.eventSourceARN)
        if queue_url is None:
            # A hand-made event's record, routed by its message: no queue of ours holds it.
            return
        receives = _receive_count(record)
        delay = redelivery_delay(receives, self._classifier.jitter)
        try:
            self._classifier.sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record.receiptHandle, VisibilityTimeout=delay
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning(
                "Could not shorten the record's visibility; it comes back after the queue's "
                "visibility timeout",
                error=str(exc)[:MAX_REASON_CHARS],
            )
            return
        logger.info("Record will be delivered again soon", delay_seconds=delay, receives=receives)

    def _reject(self, record: RouteQueueRecord, dlq_url: str, rejection: Rejection) -> Outcome:
        """One letter per message, however often its batch is delivered (see common.letters)."""
        cause = f"{REJECTION_PREFIX}{record.eventSourceARN}#{record.messageId}"
        try:
            if self._classifier.markers.already_sent(cause):
                logger.info("Rejected message already dead-lettered", error=rejection.error)
                return self._count(Outcome.REJECTED)
        except (ClientError, BotoCoreError) as exc:
            transient = is_transient(exc)
            logger.error("Could not record a rejection", transient=transient, exc_info=True)
            self._count(FailureMetric.TRANSIENT if transient else FailureMetric.CONFIGURATION)
            raise DeadLetterSendFailed(f"rejection marker for {record.messageId}: {exc}") from exc
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            "error": {"DataType": "String", "StringValue": rejection.error},
            "reason": {"DataType": "String", "StringValue": rejection.reason},
        }
        if record.messageId:
            # The letter gets an id of its own: the rejected message's id goes with it, or
            # nothing ties the letter to the message it ends (three of SQS's ten attributes).
            # SQS refuses an empty value, which only a hand-made event's record could give.
            attributes[SOURCE_MESSAGE_ID_ATTRIBUTE] = {
                "DataType": "String",
                "StringValue": record.messageId,
            }
        try:
            self._classifier.sqs.send_message(
                QueueUrl=dlq_url, MessageBody=record.body, MessageAttributes=attributes
            )
        except (ClientError, BotoCoreError) as exc:
            transient = is_transient(exc)
            logger.error(
                "Could not send a rejected message to its dead-letter queue",
                dead_letter_queue=dlq_url,
                error=rejection.error,
                transient=transient,
                exc_info=True,
            )
            self._count(FailureMetric.TRANSIENT if transient else FailureMetric.CONFIGURATION)
            raise DeadLetterSendFailed(f"SendMessage to {dlq_url} failed: {exc}") from exc
        try:
            self._classifier.markers.mark_sent(cause)
        except (ClientError, BotoCoreError):
            # The letter is out, so the record is done. Failing it now would only bring it back
            # after the visibility timeout, find the marker PENDING and send a second letter;
            # the marker stays PENDING and expires with its TTL.
            logger.warning(
                "Could not mark the rejection's letter sent; the record is done all the same",
                exc_info=True,
            )
        logger.warning(
            "Rejected message sent to its dead-letter queue",
            error=rejection.error,
            reason=rejection.reason,
            dead_letter_queue=dlq_url,
        )
        return self._count(Outcome.REJECTED)

    def _start(
        self, record: RouteQueueRecord, message: PhotoMessage, claim: Claim | None
    ) -> Outcome:
        """Start the next execution for the URL unless a live one owns it.

        The name is the claim owner's sequence + 1. Racing classifiers compute the same name,
        so one of them gets ExecutionAlreadyExists: if that execution lives, this record is in
        flight; if it already ended, the claim is read again and the next name tried.
        """
        tried = 0
        for _ in range(MAX_NAME_ATTEMPTS):
            supersedes = NO_EXECUTION
            if claim is not None and claim.in_progress and claim.execution:
                status, error = self._described(claim.execution)
                if status in LIVE_STATUSES:
                    logger.info("An execution for this image is running", execution=claim.execution)
                    self._execution = _name_of(claim.execution)
                    return self._count(Outcome.IN_FLIGHT)
                # Ended without a result; its dead letter is the closer's job, which has not
                # closed the claim yet. Failed for good, the message is a duplicate of it, as
                # it is once the claim is closed; otherwise the next execution takes it over.
                if ended_for_good(status, error) and repeats_failure(
                    claim, message, message_token(record.messageId), error
                ):
                    return self._repeated_failure(claim.execution, error)
                supersedes = claim.execution
            sequence = max(execution_sequence(claim.execution) if claim else 0, tried) + 1
            name = execution_name(message.url, sequence)
            started = self._start_named(record, message, name, supersedes)
            if started is not None:
                return started
            tried = sequence
            claim = self._reread(message.url)
            if claim is not None and claim.done:
                self._execution = _name_of(claim.execution)
                return self._count(Outcome.DUPLICATE)
            if claim is not None and _closed_for(claim, message, record):
                return self._repeated_failure(claim.execution, claim.error)
        raise ExecutionStartFailed(
            f"no free execution name for {url_digest(message.url)} after {tried}", transient=True
        )

    def _start_named(
        self, record: RouteQueueRecord, message: PhotoMessage, name: str, supersedes: str
    ) -> Outcome | None:
        """STARTED or IN_FLIGHT; None when the name belongs to an execution that ended."""
        limiter = self._classifier.limiter
        # Before the clock is read: the lease counts from after the wait.
        slot = None if limiter is None else self._take_slot(limiter, name)
        started = False
        try:
            now = int(self._classifier.clock())
            request = ClassifyRequest(
                message=message,
                requested_at=now,
                lease_expires_at=now + self._settings.claim_lease_seconds,
                source_queue_arn=record.eventSourceARN,
                supersedes=supersedes,
            )
            outcome = self._call_start(message, name, request, supersedes)
            started = outcome is Outcome.STARTED
            return outcome
        finally:
            if limiter is not None and slot is not None and not started:
                # No execution ran: the slot cost DetectLabels nothing, another start has it.
                self._give_back(limiter, slot)

    def _take_slot(self, limiter: StartLimiter, name: str) -> Slot:
        """Wait for a start slot shared with every invocation, or defer the record when the
        slot would leave less than ``START_MARGIN_SECONDS`` of the invocation."""
        budget = (
            None
            if self._remaining_ms is None
            else self._remaining_ms() / 1_000 - START_MARGIN_SECONDS
        )
        try:
            slot = limiter.acquire(budget)
        except (ClientError, BotoCoreError) as exc:
            raise self._start_failed(name, exc) from exc
        if slot is None:
            # Handed back without a backoff: the slots are taken for the rest of the
            # invocation, and the queue's visibility timeout (6 x the function's) brings the
            # record back once they have passed.
            logger.info(
                "Too little time left for this record's limited start; deferred",
                budget_seconds=None if budget is None else round(budget, 3),
                execution_name=name,
            )
            self._count(FailureMetric.TRANSIENT)
            raise StartDeferred(f"deferred: no start slot for {name} within the time left")
        return slot

    def _give_back(self, limiter: StartLimiter, slot: Slot) -> None:
        """Release a slot that started nothing; failing to only costs that slot."""
        try:
            limiter.release(slot)
        except (ClientError, BotoCoreError):
            logger.warning("Could not give back an unused start slot", exc_info=True)

    def _call_start(
        self,
        message: PhotoMessage,
        name: str,
        request: ClassifyRequest,
        supersedes: str,
    ) -> Outcome | None:
        """StartExecution itself; see ``_start_named``."""
        try:
            response = self._classifier.stepfunctions.start_execution(
                stateMachineArn=self._settings.state_machine_arn,
                name=name,
                input=request.model_dump_json(),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise self._start_failed(name, exc) from exc
            arn = execution_arn(self._settings.state_machine_arn, name)
            if self._status(arn) in LIVE_STATUSES:
                # A redelivery of work under way, or another classifier won the race.
                logger.info("Execution already exists", execution_name=name)
                self._execution = name
                return self._count(Outcome.IN_FLIGHT)
            logger.info("Execution name used by an ended execution", execution_name=name)
            return None
        except BotoCoreError as exc:
            raise self._start_failed(name, exc) from exc
        logger.info(
            "Execution started",
            execution_arn=response["executionArn"],
            attempt=message.attempt,
            supersedes=supersedes,
        )
        self._execution = name
        return self._count(Outcome.STARTED)

    def _status(self, arn: str) -> str:
        """The status of an execution of this state machine; errors leave the record queued."""
        return self._described(arn)[0]

    def _described(self, arn: str) -> tuple[str, str]:
        """An execution's status and error ("" unless it failed); see ``_status``."""
        try:
            described = self._classifier.stepfunctions.describe_execution(executionArn=arn)
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in {
                "ExecutionDoesNotExist"
            }:
                return "NOT_FOUND", ""
            raise self._start_failed(arn, exc) from exc
        return str(described["status"]), str(described.get("error") or "")

    def _repeated_failure(self, execution: str, error: str) -> Outcome:
        """A message for a URL whose execution failed for good: a duplicate of that failure,
        whose one dead letter says why; a redrive of the letter runs it again."""
        logger.info(
            "Image failed for good; this message is a duplicate", execution=execution, error=error
        )
        self._execution = _name_of(execution)
        self._repeated = True
        return self._count(Outcome.DUPLICATE)

    def _reread(self, url: str) -> Claim | None:
        try:
            claims = find_claims(
                self._classifier.dynamodb,
                self._settings.results_table,
                [url],
                self._classifier.sleep,
            )
        except DoneLookupFailed as exc:
            cause = cast("Exception", exc.__cause__ or exc)
            raise ExecutionStartFailed(str(exc), transient=is_transient(cause)) from exc
        return claims.get(url)

    def _start_failed(self, name: str, exc: Exception) -> ExecutionStartFailed:
        # Either way the record stays on its queue. A transient error clears by itself; any
        # other (StateMachineDoesNotExist, InvalidArn, AccessDenied, ...) means the deployment
        # is broken, not the message: it is retried until the redrive policy moves it to the
        # route's dead-letter queue, where it waits to be sent back once the stack is fixed.
        transient = is_transient(exc)
        if transient:
            logger.warning("StartExecution failed; record will be retried", execution_name=name)
            self._count(FailureMetric.TRANSIENT)
        else:
            logger.error(
                "StartExecution refused a valid message; check the deployment",
                execution_name=name,
                state_machine_arn=self._settings.state_machine_arn,
                exc_info=True,
            )
            self._count(FailureMetric.CONFIGURATION)
        return ExecutionStartFailed(f"StartExecution {name} failed: {exc}", transient=transient)

    def _count[T: (Outcome, FailureMetric)](self, metric: T) -> T:
        return _count(self._classifier.metrics, metric)


def _receive_count(record: RouteQueueRecord) -> int:
    """How often SQS has delivered the record, this delivery included (1 if unreadable)."""
    count = record.attributes.ApproximateReceiveCount
    return int(count) if count.isdigit() else 1


def _name_of(execution: str) -> str:
    """An execution's name from its ARN (the part after the last colon)."""
    return execution.rpartition(":")[2]
