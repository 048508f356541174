"""Run one new image as a synchronous Express execution and settle how it ended.

With ``WORKFLOW_TYPE=EXPRESS`` the classifier starts each new image with
``StartSyncExecution`` and waits: the event source mapping's ``MaximumConcurrency`` then bounds
the images in flight, hence the DetectLabels calls. Express has no name idempotency and Step
Functions neither describes Express executions nor reports their end, so the classifier, which
receives the final status, owns what the execution closer does for Standard:

* ``SUCCEEDED``: done (classified, or found a duplicate by its claim);
* a transient failure (throttled or unavailable after the workflow's own retries): the claim
  is closed (FAILED, so the redelivery takes it over at once) and the record is left on its
  queue for SQS to deliver again, after a short backoff (``classifier.backoff``) rather than
  the queue's visibility timeout (2160 s, 36 minutes);
* any other failure or ``TIMED_OUT``: the claim is closed and exactly one dead letter goes to
  the workflow dead-letter queue, in the closer's shape. A marker per SQS message (the one
  rejections use) keeps it to one letter however often the message is delivered.

Duplicates cost no execution: a DONE result or a permanent failure (``classifier.lookup``) is
settled before this module is reached, a live claim means another delivery is running the image
and waiting for it, and a message already dead-lettered is not run again. A duplicate racing
the first copy (published at once, in another invocation) is stopped by the *reservation*:
before it starts an execution, the classifier writes the result item with the Claim Image
state's condition, owned by ``reservation:<SQS message id>``, and the execution's claim takes it
over (``supersedes``). Only one copy's reservation succeeds; the others find the item held, and
run nothing. A FAILED item is reserved only as it was read and judged (its ``execution`` in the
condition): a copy that read the URL before another message's execution failed for good finds
it changed, and is a duplicate of that failure rather than a second run of a gone image.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from classifier.lookup import (
    FAILED_STATUS,
    IN_PROGRESS_STATUS,
    OPEN_CLAIM,
    RESULT_SORT_KEY,
    START_FAILED_ERROR,
    TRANSIENT_EXECUTION_ERRORS,
    Claim,
    claim_of,
    ended_for_good,
    repeats_failure,
)
from classifier.models import Outcome
from classifier.observability import logger
from classifier.settings import ClassifierSettings
from common.closing import (
    LEASE_EXPIRED_ERROR,
    MAX_CAUSE_CHARS,
    DetectedBy,
    ExecutionStatus,
    WorkflowDeadLetter,
    mark_failed,
)
from common.letters import LetterMarkers
from common.messages import (
    NO_EXECUTION,
    ClassifyRequest,
    PhotoMessage,
    express_execution_name,
    message_token,
    owner_token,
    reservation_id,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_stepfunctions.type_defs import StartSyncExecutionOutputTypeDef

# The error a TIMED_OUT execution's claim is closed with (Express gives none of its own).
TIMEOUT_ERROR = "States.Timeout"


class ExpressRetry(Exception):
    """The record is left on its queue: SQS delivers it again later.

    ``transient`` is False when waiting will not help (the deployment is broken): the redrive
    policy then moves the message to its route's dead-letter queue.

    ``back_off`` is True when the record failed transiently and may run again as soon as the
    failure clears: the classifier then shortens its visibility to a backoff
    (``classifier.backoff``). False leaves it to the queue's visibility timeout: a broken
    deployment, and the records that must not come back soon (this same message running in
    another delivery; a record deferred for lack of time), say why where they are raised.
    """

    def __init__(self, message: str, *, transient: bool, back_off: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.back_off = back_off


@dataclass(frozen=True)
class ExpressResult:
    outcome: Outcome
    # The execution's ARN, or "" when none ran.
    execution: str = ""
    # What the execution billed (StartSyncExecution's billingDetails); None when none ran.
    billing: dict[str, int] | None = None


@dataclass(frozen=True)
class ExpressRunner:
    """Long-lived per container, like the ``Classifier`` that holds it."""

    settings: ClassifierSettings
    stepfunctions: SFNClient
    dynamodb: DynamoDBClient
    sqs: SQSClient
    markers: LetterMarkers
    clock: Callable[[], float]
    is_transient: Callable[[Exception], bool]

    def run(
        self,
        *,
        message: PhotoMessage,
        message_id: str,
        claim: Claim | None,
        source_queue_arn: str,
        letter_cause: str,
        remaining_ms: Callable[[], int] | None,
    ) -> ExpressResult:
        """Run the image to its end unless another delivery owns it; see the module doc."""
        now = int(self.clock())
        token = message_token(message_id)
        if claim is not None and claim.in_progress and claim.lease_expires_at > now:
            return self._owned_elsewhere(claim, message, token)
        if self._guard(lambda: self.markers.sent(letter_cause), "read the letter marker"):
            logger.info("Message already dead-lettered; not running it again")
            return ExpressResult(Outcome.DEAD_LETTERED)
        if claim is not None and _own_failure_without_letter(claim, token):
            # This very message's execution failed for good and SQS refused its letter, so the
            # message came back: send the letter from the closed claim. Running the image again
            # could call DetectLabels a second time when the execution failed after it.
            return self._letter_from_claim(claim, message, letter_cause)
        if remaining_ms is not None and remaining_ms() < self.settings.claim_lease_seconds * 1_000:
            # An execution may take the whole Express limit: one started now could outlive
            # this invocation, whose records would then all be delivered again.
            logger.info("Too little time left to wait for an execution; deferred")
            # No backoff: what came before the start (with one record per EXPRESS
            # invocation, its lookup and the letter marker's read; with a bigger batch, the
            # records before it too) took more than the invocation's margin over the lease, so
            # something is slow right now. Handing the rest back at once would add load
            # where it is slow and spend the message's receives (maxReceiveCount 5) on
            # deferrals; after the queue's visibility timeout the slowness has likely passed.
            raise ExpressRetry("deferred: too little time left in this invocation", transient=True)
        supersedes = (
            claim.execution
            if claim is not None and claim.in_progress and claim.execution
            else NO_EXECUTION
        )
        # The FAILED item judged above (not a duplicate of its failure) may be taken over; any
        # other FAILED item refuses the reservation and is judged in _owned_elsewhere.
        judged = (
            claim.execution
            if claim is not None and claim.status == FAILED_STATUS and claim.execution
            else NO_EXECUTION
        )
        reservation = reservation_id(message_id)
        taken = self._reserve(message, reservation, supersedes, judged, now)
        if taken is not None and _own_failure_without_letter(taken, token):
            # Another delivery of this very message read nothing, ran the image, failed for
            # good and closed the claim since this one's lookup, and has not (yet) marked its
            # letter sent: the claim is settled as above, from its letter, never run again.
            return self._letter_from_claim(taken, message, letter_cause)
        if (
            taken is not None
            and taken.status == FAILED_STATUS
            and not _repeats(taken, message, token)
        ):
            # It failed since the lookup in a way that leaves it open (transiently, or this
            # message is a replay): judged now, so reserved as read, once.
            taken = self._reserve(
                message, reservation, supersedes, taken.execution or NO_EXECUTION, now
            )
        if taken is not None:
            return self._owned_elsewhere(taken, message, token)
        response = self._start(message, message_id, source_queue_arn, reservation, now)
        arn = response["executionArn"]
        status = _ended_status(response.get("status"))
        # billingDetails (duration and memory billed) is what an Express execution costs; it
        # rides on the record's one outcome line (Batch.handle_record), not a line of its own.
        billing = response.get("billingDetails")
        if status is ExecutionStatus.SUCCEEDED:
            # The workflow ends {"status": "DONE", ...} or, when its claim found the image
            # taken (a duplicate racing this one), {"status": "DUPLICATE"}.
            duplicate = _output_status(response.get("output")) == "DUPLICATE"
            return ExpressResult(
                Outcome.DUPLICATE if duplicate else Outcome.CLASSIFIED, arn, _billed(billing)
            )
        error = response.get("error") or (
            TIMEOUT_ERROR if status is ExecutionStatus.TIMED_OUT else "ExecutionFailed"
        )
        cause = response.get("cause") or ""
        # The execution owns the claim once its Claim Image state ran; one that failed before
        # leaves the reservation, closed the same way so no sweep dead-letters it again.
        # Closed before the letter is sent, unlike the closer (which has only the letter to
        # keep the failure): here the SQS record is deleted only once the letter is out. If it
        # cannot be sent the record stays queued, and its redelivery, the claim's own message,
        # sends it from the closed claim (_own_failure_without_letter), running nothing.
        ended = (status, arn)
        if not self._close(message, arn, error, cause, ended):
            self._close(message, reservation, error, cause, ended)
        if status is ExecutionStatus.FAILED and error in TRANSIENT_EXECUTION_ERRORS:
            # No outcome line follows for a record left queued: its billing goes on this one.
            logger.warning(
                "Execution failed transiently; record will be retried",
                execution=arn,
                error=error,
                billing=_billed(billing),
            )
            raise ExpressRetry(
                f"execution {arn} failed with {error}", transient=True, back_off=True
            )
        self._letter(
            message, arn=arn, status=status, error=error, cause=cause, letter_cause=letter_cause
        )
        return ExpressResult(Outcome.DEAD_LETTERED, arn, _billed(billing))

    def _letter_from_claim(
        self, claim: Claim, message: PhotoMessage, letter_cause: str
    ) -> ExpressResult:
        """Send the letter of this message's execution that failed for good, from its closed
        claim (``_own_failure_without_letter``); the marker keeps it to one letter."""
        arn = claim.ended_execution or claim.execution
        self._letter(
            message,
            arn=arn,
            status=_status_of_claim(claim),
            error=claim.error,
            cause=claim.cause,
            letter_cause=letter_cause,
        )
        return ExpressResult(Outcome.DEAD_LETTERED, arn)

    def _owned_elsewhere(self, claim: Claim, message: PhotoMessage, token: str) -> ExpressResult:
        """Settle a record whose URL another delivery holds (a live claim or reservation), that
        is already DONE or that another message's execution failed for good: no execution runs
        for it."""
        if claim.done:
            return ExpressResult(Outcome.DUPLICATE, claim.execution)
        if _repeats(claim, message, token):
            # Another message's execution failed for good since this batch read the URL.
            logger.info("Image failed for good; this message is a duplicate", error=claim.error)
            return ExpressResult(Outcome.DUPLICATE, claim.execution)
        if not claim.in_progress:
            # Not an item the reservation's condition refuses (or no item came with the
            # refusal): the next delivery reads where it stands.
            raise ExpressRetry(
                f"result item is {claim.status or 'unreadable'}; read again on redelivery",
                transient=True,
                back_off=True,
            )
        # Another delivery reserved the image or runs its execution and waits for it; its
        # outcome is that delivery's to settle. (An ended execution's claim is closed at once;
        # only a classifier that died mid-wait leaves one, and its message comes back after
        # the visibility timeout, which outlasts the lease.)
        if _same_delivery(claim, message, token):
            # This very message, delivered twice at once: deleting this copy would lose it if
            # that delivery fails transiently and counts on SQS to deliver it again. Left
            # queued, it comes back after the visibility timeout, once settled. No backoff: the
            # other delivery may run for the whole lease (330 s), and a copy back sooner would
            # only find it running again, spending the message's receives (maxReceiveCount 5)
            # until the redrive policy dead-letters a message that is being classified.
            logger.info("This message is running in another delivery; left on the queue")
            raise ExpressRetry("the same message is running in another delivery", transient=True)
        return ExpressResult(Outcome.IN_FLIGHT, claim.execution)

    def _reserve(
        self, message: PhotoMessage, reservation: str, supersedes: str, judged: str, now: int
    ) -> Claim | None:
        """Reserve the URL's result item for this message; the item that refused it, if any.

        The condition is the Claim Image state's, so a reservation is taken exactly where an
        execution's claim would be, but without the state's ``execution = me``: a reservation
        of this same message id is another delivery of it, left to settle (the claim's own
        ``me`` covers a retried write of one execution, which a new delivery is not). The
        execution then takes the reservation over through ``supersedes``; a duplicate racing
        this one is refused here, before an execution is started for it.

        Each call writes a token of its own: botocore retries a write whose answer was lost (a
        read timeout) with the same request, and that retry is refused by the item the first
        attempt wrote. The token tells that item from another delivery's reservation of the
        same message id, which it would otherwise be taken for (and this message left on its
        queue until the lease ran out, then dead-lettered without ever running).
        """
        token = secrets.token_hex(16)
        try:
            self.dynamodb.update_item(
                TableName=self.settings.results_table,
                Key={"pk": {"S": message.url}, "sk": {"S": RESULT_SORT_KEY}},
                UpdateExpression=(
                    "SET #status = :in_progress, #execution = :me, "
                    "lease_expires_at = :lease_expires_at, open_claim = :open, message = :message, "
                    "reservation_token = :token"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (#status = :failed AND #execution = :judged) OR "
                    "(#status = :in_progress AND lease_expires_at < :requested_at) OR "
                    "#execution = :supersedes"
                ),
                ExpressionAttributeNames={"#status": "status", "#execution": "execution"},
                ExpressionAttributeValues={
                    ":in_progress": {"S": IN_PROGRESS_STATUS},
                    ":failed": {"S": FAILED_STATUS},
                    ":open": {"S": OPEN_CLAIM},
                    ":me": {"S": reservation},
                    ":supersedes": {"S": supersedes},
                    ":judged": {"S": judged},
                    ":lease_expires_at": {"N": str(now + self.settings.claim_lease_seconds)},
                    ":requested_at": {"N": str(now)},
                    ":message": {"S": message.model_dump_json()},
                    ":token": {"S": token},
                },
                # The item that refused the write, in the error: no read for a duplicate.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                self._release_unanswered(message, reservation, token, exc)
                self._refused(exc, "reserve the image")
            item: dict[str, Any] = dict(exc.response.get("Item", {}))  # type: ignore[call-overload]
            if item.get("reservation_token", {}).get("S") == token:
                logger.info("The reservation's answer was lost; its retry found it written")
                return None
            return claim_of(item)
        except BotoCoreError as exc:
            self._release_unanswered(message, reservation, token, exc)
            self._refused(exc, "reserve the image")
        return None

    def _release_unanswered(
        self, message: PhotoMessage, reservation: str, token: str, exc: Exception
    ) -> None:
        """Close a reservation this call may have written though no attempt said so.

        An attempt can commit and lose its answer, then the last attempt fail outright. Left
        IN_PROGRESS, the redelivery would read this very message's live reservation as another
        delivery of it and stay queued, while the closer's sweep dead-lettered the reservation
        at its lease: two ends for one message. Closed as a failed start (transient), the
        redelivery takes it over at once; only this call's write (its token) is closed. When
        DynamoDB refuses this too, the lease is the fallback, as before.
        """
        try:
            mark_failed(
                self.dynamodb,
                self.settings.results_table,
                message,
                execution_arn=reservation,
                error=START_FAILED_ERROR,
                cause=f"the reservation went unanswered: {exc}",
                reservation_token=token,
            )
        except (ClientError, BotoCoreError):
            logger.warning("Could not release an unanswered reservation", exc_info=True)

    def _start(
        self,
        message: PhotoMessage,
        message_id: str,
        source_queue_arn: str,
        reservation: str,
        now: int,
    ) -> StartSyncExecutionOutputTypeDef:
        request = ClassifyRequest(
            message=message,
            requested_at=now,
            lease_expires_at=now + self.settings.claim_lease_seconds,
            source_queue_arn=source_queue_arn,
            supersedes=reservation,
        )
        try:
            return self.stepfunctions.start_sync_execution(
                stateMachineArn=self.settings.state_machine_arn,
                # Express does not dedupe names; this one names the URL and the message.
                name=express_execution_name(message.url, message_id),
                input=request.model_dump_json(),
            )
        except (ClientError, BotoCoreError) as exc:
            transient = self.is_transient(exc)
            # Nothing runs: release the reservation at once rather than let its lease (and
            # the closer's sweep, with a dead letter) end it. If an execution did start and
            # only the answer was lost, it owns the claim and this finds nothing to close.
            self._close(message, reservation, START_FAILED_ERROR, str(exc))
            if transient:
                logger.warning("StartSyncExecution failed; record will be retried")
            else:
                logger.error(
                    "StartSyncExecution refused a valid message; check the deployment",
                    state_machine_arn=self.settings.state_machine_arn,
                    exc_info=True,
                )
            raise ExpressRetry(
                f"StartSyncExecution failed: {exc}", transient=transient, back_off=transient
            ) from exc

    def _close(
        self,
        message: PhotoMessage,
        owner: str,
        error: str,
        cause: str,
        ended: tuple[ExecutionStatus, str] | None = None,
    ) -> bool:
        """Mark the claim FAILED if ``owner`` still holds it; whether it did. ``ended``: how
        the execution ended and its ARN, kept on the claim for a letter sent from it later."""
        return self._guard(
            lambda: mark_failed(
                self.dynamodb,
                self.settings.results_table,
                message,
                execution_arn=owner,
                error=error,
                cause=cause,
                ended=ended,
            ),
            "close the claim",
        )

    def _refused(self, exc: Exception, what: str) -> NoReturn:
        transient = self.is_transient(exc)
        logger.error("Could not " + what, transient=transient, exc_info=True)
        raise ExpressRetry(
            f"could not {what}: {exc}", transient=transient, back_off=transient
        ) from exc

    def _letter(
        self,
        message: PhotoMessage,
        *,
        arn: str,
        status: ExecutionStatus,
        error: str,
        cause: str,
        letter_cause: str,
    ) -> None:
        if self._guard(lambda: self.markers.already_sent(letter_cause), "mark the letter"):
            return
        letter = WorkflowDeadLetter(
            message=message.model_dump(),
            error={"Error": error, "Cause": cause[:MAX_CAUSE_CHARS]},
            execution=arn,
            status=status,
            failed_state=None,
            detected_by=DetectedBy.SYNC_RESULT,
        )
        self._guard(
            lambda: self.sqs.send_message(
                QueueUrl=self.settings.require_workflow_dlq_url(),
                MessageBody=letter.body(),
            ),
            "send the dead letter",
        )
        try:
            self.markers.mark_sent(letter_cause)
        except (ClientError, BotoCoreError):
            # The letter is out, so the record is done (as for a rejection, classifier.logic).
            # A retry would find the marker PENDING and send the letter a second time.
            logger.warning(
                "Could not mark the letter sent; the record is done all the same", exc_info=True
            )
        logger.warning(
            "Execution dead-lettered",
            execution=arn,
            status=status.value,
            error=error,
            detected_by=DetectedBy.SYNC_RESULT.value,
        )

    def _guard[T](self, call: Callable[[], T], what: str) -> T:
        try:
            return call()
        except (ClientError, BotoCoreError) as exc:
            self._refused(exc, what)


# What a synchronous Express execution can end as (ABORTED is not documented for it, and is
# closed like any other unsuccessful end if it ever comes).
ENDED_STATUSES = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.ABORTED,
    }
)


def _ended_status(value: object) -> ExecutionStatus:
    """The answer's status; anything else leaves the record queued, named, as a deployment
    problem (its claim's lease ends before the message is delivered again)."""
    try:
        status = ExecutionStatus(str(value))
    except ValueError:
        status = None
    if status not in ENDED_STATUSES:
        logger.error("StartSyncExecution answered no end status", status=str(value)[:64])
        raise ExpressRetry(
            f"StartSyncExecution answered status {str(value)[:64]!r}, not an end", transient=False
        )
    return status


def _own_failure_without_letter(claim: Claim, token: str) -> bool:
    """Whether ``claim`` is this message's (``token``) execution, closed FAILED for good by
    this classifier: its letter is then the only thing left to do. Not a claim the closer's
    sweep closed (LeaseExpired): the sweep sent that letter itself, and the classifier that
    waited died, so whether the image ran to its end is unknown; the message runs again."""
    return (
        claim.status == FAILED_STATUS
        and claim.error != LEASE_EXPIRED_ERROR
        and ended_for_good(FAILED_STATUS, claim.error)
        and owner_token(claim.execution) == token
    )


def _status_of_claim(claim: Claim) -> ExecutionStatus:
    """How an Express execution ended: as its claim records it, or, on a claim closed before
    the status was recorded, from the error it was closed with (``run``)."""
    try:
        recorded = ExecutionStatus(claim.ended_status)
    except ValueError:
        recorded = None
    if recorded in ENDED_STATUSES and recorded is not ExecutionStatus.SUCCEEDED:
        return recorded
    return ExecutionStatus.TIMED_OUT if claim.error == TIMEOUT_ERROR else ExecutionStatus.FAILED


def _repeats(claim: Claim, message: PhotoMessage, token: str) -> bool:
    """Whether ``claim`` closed a permanent failure that ``message`` only repeats."""
    return claim.failed_for_good and repeats_failure(claim, message, token, claim.error)


def _same_delivery(claim: Claim, message: PhotoMessage, token: str) -> bool:
    """Whether the claim's owner is this SQS message (another delivery of it)."""
    owner = owner_token(claim.execution)
    if owner is None:
        # A claim named before executions carried their message: only its content tells.
        return _same_message(claim.message, message)
    return owner == token


def _billed(billing: object) -> dict[str, int] | None:
    """StartSyncExecution's billingDetails, as logged with the record's outcome."""
    if not isinstance(billing, dict):
        return None
    return {key: int(value) for key, value in billing.items() if isinstance(value, int | float)}


def _same_message(claimed: str, message: PhotoMessage) -> bool:
    try:
        return PhotoMessage.model_validate_json(claimed) == message
    except ValueError:
        return False


def _output_status(output: str | None) -> str:
    try:
        parsed = json.loads(output or "{}")
    except ValueError:
        return ""
    return str(parsed.get("status", "")) if isinstance(parsed, dict) else ""
