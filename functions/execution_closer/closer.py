"""Close ClassifyImage executions that did not succeed: one dead letter each, then claim FAILED.

Two signals find them. Step Functions sends a status-change event for every Standard
execution that ends, but only best effort; so a scheduled sweep also looks, through the sparse
``OpenClaims`` index, for claims whose lease expired without a result. Both end in
``close``, which is safe to run any number of times for one execution: a marker item per
execution records that its letter was sent, so the event, its retries and the sweep agree.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from pydantic import ValidationError

from common.closing import LEASE_EXPIRED_ERROR, MAX_CAUSE_CHARS, RESULT_SORT_KEY, mark_failed
from common.letters import LetterMarkers
from common.messages import (
    RESERVATION_PREFIX,
    ClassifyRequest,
    PhotoMessage,
    is_express_execution,
    url_digest,
)
from execution_closer.models import (
    DEFAULT_ERRORS,
    UNSUCCESSFUL,
    CloseOutcome,
    DetectedBy,
    EndedExecution,
    ExecutionStatus,
    WorkflowDeadLetter,
)
from execution_closer.observability import logger
from execution_closer.settings import CloserSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

# Marker items of sent letters: pk = EXECUTION#<execution ARN> (never an https URL).
MARKER_PREFIX = "EXECUTION#"
OPEN = "OPEN"
# The metric of expired claims a sweep could not close (the tick then fails).
SWEEP_CLOSE_FAILED = "ExpiredClaimCloseFailed"
# The sweep reads expired claims a page (SWEEP_LIMIT) at a time, oldest lease first, and pages
# on so that claims failing at every tick (a page of them at the head of the index) cannot keep
# the later ones open for ever. It stops at MAX_SWEEP_PAGES pages, so one tick has a bounded
# cost (a pile of expired claims is closed over the next ticks), or earlier when less than
# SWEEP_MARGIN_MS of the invocation is left: what it has not reached waits for the next tick,
# and a tick that ends by its timeout would report nothing of what it closed.
MAX_SWEEP_PAGES = 20
SWEEP_MARGIN_MS = 10_000
# Step Functions inputs are at most 256 KiB, as are SQS messages: keep room for the rest
# (WorkflowDeadLetter.body cuts it further when its characters take more bytes).
MAX_RAW_INPUT_CHARS = 200_000


class SweepFailed(Exception):
    """Some expired claims could not be closed; the others were. Raised after all were tried,
    so Lambda counts the tick as an error (the ExecutionCloserErrors alarm) without one claim
    keeping every later claim open."""


@dataclass(frozen=True)
class Closer:
    """Long-lived per container: settings and clients."""

    settings: CloserSettings
    dynamodb: DynamoDBClient
    stepfunctions: SFNClient
    sqs: SQSClient
    metrics: Metrics
    clock: Callable[[], float] = time.time

    def close(self, ended: EndedExecution) -> CloseOutcome:
        """Dead-letter ``ended`` once, then mark its claim FAILED if it still owns it.

        The letter goes first: a closed (FAILED) claim leaves the sweep's index, and a later
        post of an image failed for good is settled as a duplicate of that failure, so a claim
        closed before its letter was sent would be a message lost if the send then failed for
        good. Until the claim is closed the sweep finds it again (its lease expires), and a
        close whose marker says the letter was sent still closes the claim: ``mark_failed`` is
        conditional on this execution owning an open claim, so running it again changes nothing.
        """
        markers = LetterMarkers(
            self.dynamodb, self.settings.results_table, self.settings.marker_days, self.clock
        )
        # A reservation has no execution, and an Express one cannot be described: neither is
        # asked about.
        describable = not ended.arn.startswith(RESERVATION_PREFIX) and not is_express_execution(
            ended.arn
        )
        execution_input = (
            ended.input if ended.input is not None or not describable else self._input_of(ended.arn)
        )
        message = _message_of(execution_input) or _claimed_message(ended.claimed_message)
        if markers.already_sent(MARKER_PREFIX + ended.arn):
            logger.info("Execution already dead-lettered", execution=ended.arn)
            if message is not None:
                # A close that died after the letter (or its retry racing this one).
                self._mark_failed(message, ended)
            return self._count(CloseOutcome.ALREADY_CLOSED)
        letter = WorkflowDeadLetter(
            message=message.model_dump() if message is not None else None,
            input=None if message is not None else _raw_input(execution_input),
            error={"Error": ended.error, "Cause": ended.cause[:MAX_CAUSE_CHARS]},
            execution=ended.arn,
            status=ended.status,
            failed_state=self._failed_state(ended.arn) if describable else None,
            detected_by=ended.detected_by,
        )
        self.sqs.send_message(QueueUrl=self.settings.workflow_dlq_url, MessageBody=letter.body())
        markers.mark_sent(MARKER_PREFIX + ended.arn)
        if message is not None:
            self._mark_failed(message, ended)
        logger.warning(
            "Execution dead-lettered",
            execution=ended.arn,
            status=ended.status.value,
            error=ended.error,
            detected_by=ended.detected_by.value,
            replayable=message is not None,
        )
        return self._count(CloseOutcome.DEAD_LETTERED)

    def sweep(self, time_left_ms: Callable[[], int] | None = None) -> list[CloseOutcome]:
        """Close the executions behind claims whose lease expired without a result.

        ``time_left_ms`` is the invocation's remaining time (the Lambda context's); the sweep
        starts no further claim when less than ``SWEEP_MARGIN_MS`` is left.
        """
        now = int(self.clock())
        outcomes: list[CloseOutcome] = []
        failed: list[str] = []
        expired = 0
        pages = 0
        start_key: dict[str, Any] | None = None
        stopped = ""
        while True:
            query: dict[str, Any] = {
                "TableName": self.settings.results_table,
                "IndexName": self.settings.open_claims_index,
                "KeyConditionExpression": "open_claim = :open AND lease_expires_at < :now",
                "ExpressionAttributeValues": {":open": {"S": OPEN}, ":now": {"N": str(now)}},
                "Limit": self.settings.sweep_limit,
            }
            if start_key:
                query["ExclusiveStartKey"] = start_key
            found = self.dynamodb.query(**query)
            pages += 1
            for item in found.get("Items", []):
                # Checked before each claim, not each page: closing one takes up to six calls,
                # so a page of them can outlast the margin, and a claim cut off by the timeout
                # between its letter and its mark would send its letter again next tick.
                if time_left_ms is not None and time_left_ms() < SWEEP_MARGIN_MS:
                    stopped = "time"
                    break
                expired += 1
                # Each claim on its own: a claim that fails at every tick (a letter SQS refuses
                # for good, a throttled table) must not keep the claims after it open for ever.
                try:
                    ended = self._ended_from_claim(item)
                    if ended is not None:
                        outcomes.append(self.close(ended))
                except Exception:
                    execution = item.get("execution", {}).get("S", "")
                    logger.exception("Could not close an expired claim", execution=execution)
                    failed.append(execution)
            start_key = found.get("LastEvaluatedKey")
            if stopped or not start_key:
                break
            if pages >= MAX_SWEEP_PAGES:
                stopped = "page cap"
                break
        logger.info(
            "Sweep done",
            expired_claims=expired,
            pages=pages,
            closed=len(outcomes),
            failed=len(failed),
            # What stopped it before the end of the index, if anything: the rest waits for the
            # next tick.
            stopped_by=stopped or None,
        )
        if failed:
            self.metrics.add_metric(
                name=SWEEP_CLOSE_FAILED, unit=MetricUnit.Count, value=len(failed)
            )
            raise SweepFailed(f"{len(failed)} expired claim(s) could not be closed: {failed}")
        return outcomes

    # ------------------------------------------------------------------ the sweep's view
    def _ended_from_claim(self, item: dict[str, Any]) -> EndedExecution | None:
        arn = item.get("execution", {}).get("S", "")
        claimed = item.get("message", {}).get("S")
        if arn.startswith(RESERVATION_PREFIX):
            # EXPRESS: the classifier reserved the image and died (or lost its answer) before
            # an execution took the reservation over; there is no execution to describe.
            return EndedExecution(
                arn=arn,
                status=ExecutionStatus.TIMED_OUT,
                error=LEASE_EXPIRED_ERROR,
                cause="the classifier's reservation expired before an execution took it over",
                input=None,
                claimed_message=claimed,
                detected_by=DetectedBy.LEASE_SWEEP,
            )
        if is_express_execution(arn):
            # DescribeExecution does not serve Express executions (and this role may describe
            # only the state machine's `execution:` ARNs): asking would fail this claim at
            # every tick. The lease is the evidence, as for an execution Step Functions no
            # longer knows (below).
            return EndedExecution(
                arn=arn,
                status=ExecutionStatus.TIMED_OUT,
                error=LEASE_EXPIRED_ERROR,
                cause="the claim's lease expired; an Express execution cannot be described",
                input=None,
                claimed_message=claimed,
                detected_by=DetectedBy.LEASE_SWEEP,
            )
        try:
            described = self.stepfunctions.describe_execution(executionArn=arn)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code not in {"ExecutionDoesNotExist", "InvalidArn"}:
                raise
            # An Express execution cannot be described, and a claim may outlive its
            # execution's history: the lease itself is then the evidence.
            return EndedExecution(
                arn=arn or "unknown",
                status=ExecutionStatus.TIMED_OUT,
                error=LEASE_EXPIRED_ERROR,
                cause=f"the claim's lease expired and the execution cannot be described ({code})",
                input=None,
                claimed_message=claimed,
                detected_by=DetectedBy.LEASE_SWEEP,
            )
        status = ExecutionStatus(described["status"])
        if status not in UNSUCCESSFUL:
            # RUNNING past its lease, or SUCCEEDED without owning a result: leave the claim to
            # be superseded by the next message, but stop sweeping it.
            logger.error(
                "Expired claim of an execution that did not fail",
                execution=arn,
                status=status.value,
            )
            self._release(item, arn)
            return None
        return EndedExecution(
            arn=arn,
            status=status,
            error=described.get("error") or DEFAULT_ERRORS[status],
            cause=described.get("cause") or "",
            input=described.get("input"),
            claimed_message=claimed,
            detected_by=DetectedBy.LEASE_SWEEP,
        )

    def _release(self, item: dict[str, Any], arn: str) -> None:
        try:
            self.dynamodb.update_item(
                TableName=self.settings.results_table,
                Key={"pk": item["pk"], "sk": {"S": RESULT_SORT_KEY}},
                UpdateExpression="REMOVE open_claim",
                ConditionExpression="#execution = :me",
                ExpressionAttributeNames={"#execution": "execution"},
                ExpressionAttributeValues={":me": {"S": arn}},
            )
        except ClientError as error:
            if not _conditional_check_failed(error):
                raise

    # ------------------------------------------------------------------ one execution
    def _mark_failed(self, message: PhotoMessage, ended: EndedExecution) -> None:
        owned = mark_failed(
            self.dynamodb,
            self.settings.results_table,
            message,
            execution_arn=ended.arn,
            error=ended.error,
            cause=ended.cause,
        )
        if not owned:
            logger.info(
                "Result item not owned by the ended execution; left alone",
                execution=ended.arn,
                url_sha256=url_digest(message.url),
            )

    def _input_of(self, arn: str) -> str | None:
        """The input the event left out (too large for it), from DescribeExecution."""
        try:
            described = self.stepfunctions.describe_execution(executionArn=arn)
        except ClientError:
            logger.warning("Execution input unavailable", execution=arn, exc_info=True)
            return None
        return described.get("input")

    def _failed_state(self, arn: str) -> str | None:
        """The last state the execution entered: where it failed, timed out or was stopped.

        The history is read forwards: a ClassifyImage history is a few dozen events, and
        reverseOrder is not honoured by every implementation of the API (moto ignores it).
        """
        last: str | None = None
        try:
            pages = self.stepfunctions.get_paginator("get_execution_history").paginate(
                executionArn=arn, PaginationConfig={"PageSize": 1000}
            )
            for page in pages:
                for event in page.get("events", []):
                    entered = event.get("stateEnteredEventDetails")
                    if entered is not None:
                        last = str(entered["name"])
        except ClientError:
            logger.warning("Execution history unavailable", execution=arn, exc_info=True)
            return None
        return last

    def _count(self, outcome: CloseOutcome) -> CloseOutcome:
        self.metrics.add_metric(name=outcome.value, unit=MetricUnit.Count, value=1)
        return outcome


def _message_of(execution_input: str | None) -> PhotoMessage | None:
    if execution_input is None:
        return None
    try:
        return ClassifyRequest.model_validate_json(execution_input).message
    except ValidationError:
        return None


def _claimed_message(claimed: str | None) -> PhotoMessage | None:
    if claimed is None:
        return None
    try:
        return PhotoMessage.model_validate_json(claimed)
    except ValidationError:
        return None


def _raw_input(execution_input: str | None) -> Any:
    """The input as JSON when it is JSON, else as text, cut to fit in a message."""
    if execution_input is None:
        return None
    if len(execution_input) <= MAX_RAW_INPUT_CHARS:
        try:
            return json.loads(execution_input)
        except ValueError:
            return execution_input
    return execution_input[:MAX_RAW_INPUT_CHARS]


def _conditional_check_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
