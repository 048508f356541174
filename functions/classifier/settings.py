"""Environment of ClassifierFunction, validated once at cold start.

A missing or malformed variable stops the container before it touches a message, so a broken
deployment shows up as an init error instead of messages drifting into dead-letter queues.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, Self

from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError, model_validator

from common.clients import CallBounds
from common.validation import summarize

# Patterns follow the AWS naming rules, with any partition (aws, aws-cn, aws-us-gov).
TABLE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{3,255}$"
STATE_MACHINE_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]{1,80}$"
)
QUEUE_ARN_PATTERN = r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}$"
# http is allowed because the local cloud serves SQS on loopback without TLS.
QUEUE_URL_PATTERN = r"^https?://[^\s/]+/[0-9]{12}/[A-Za-z0-9_-]{1,80}$"
# The lease equals the state machine's TimeoutSeconds; a Standard execution lasts at most a year.
MIN_LEASE_SECONDS = 60
MAX_LEASE_SECONDS = 31_536_000

# DetectLabels requests per second; far above any quota Rekognition grants, it only catches a
# typo (a rate of 1e9 would pace nothing while looking like a setting).
MAX_DETECT_LABELS_RATE = 10_000

# A route as the message contract spells it (common.messages.PhotoMessage.route).
ROUTE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"

QueueArn = Annotated[str, Field(pattern=QUEUE_ARN_PATTERN)]
QueueUrl = Annotated[str, Field(pattern=QUEUE_URL_PATTERN)]
Route = Annotated[str, Field(pattern=ROUTE_PATTERN)]


class InvalidSettings(Exception):
    """The function's environment does not satisfy the contract in docs/architecture.md."""


class ClassifierSettings(BaseModel):
    """The variables ClassifierFunction needs; other variables in the environment are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    results_table: Annotated[str, Field(alias="RESULTS_TABLE", pattern=TABLE_NAME_PATTERN)]
    state_machine_arn: Annotated[
        str, Field(alias="STATE_MACHINE_ARN", pattern=STATE_MACHINE_ARN_PATTERN)
    ]
    # Route queue ARN (the records' eventSourceARN) -> URL of that queue's dead-letter queue.
    route_dlq_urls: Annotated[
        Json[Annotated[dict[QueueArn, QueueUrl], Field(min_length=1)]],
        Field(alias="ROUTE_DLQ_URLS"),
    ]
    # Route -> URL of its dead-letter queue: the same queues as ROUTE_DLQ_URLS, one per route.
    # It names each route queue's route, and routes a record from a queue the deployment does
    # not know (a hand-made event) by its validated message: never to any other queue.
    route_dlq_urls_by_route: Annotated[
        Json[Annotated[dict[Route, QueueUrl], Field(min_length=1)]],
        Field(alias="ROUTE_DLQ_URLS_BY_ROUTE"),
    ]
    # EXPRESS: each image runs synchronously (StartSyncExecution) and the classifier owns its
    # outcome; STANDARD: executions are started and closed by ExecutionCloserFunction.
    workflow_type: Annotated[Literal["STANDARD", "EXPRESS"], Field(alias="WORKFLOW_TYPE")]
    # Where an Express execution that failed for good is dead-lettered (EXPRESS only).
    workflow_dlq_url: Annotated[QueueUrl | None, Field(alias="WORKFLOW_DLQ_URL")] = None
    claim_lease_seconds: Annotated[
        int, Field(alias="CLAIM_LEASE_SECONDS", ge=MIN_LEASE_SECONDS, le=MAX_LEASE_SECONDS)
    ]
    # STANDARD: the images per second all invocations together may start (the DetectLabels
    # quota), at least 1; 0 starts without a limit. A fraction is rounded down (one-second
    # windows count whole starts). EXPRESS ignores it (the images in flight are bounded).
    detect_labels_rate: Annotated[
        float,
        Field(alias="DETECT_LABELS_RATE", ge=0, le=MAX_DETECT_LABELS_RATE, allow_inf_nan=False),
    ]
    # Powertools only notices a missing namespace when it flushes, i.e. after the batch has
    # been processed; checking it here fails the cold start instead.
    metrics_namespace: Annotated[str, Field(alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1)]

    @model_validator(mode="after")
    def _one_dead_letter_queue_per_route(self) -> Self:
        by_route = list(self.route_dlq_urls_by_route.values())
        if len(set(by_route)) != len(by_route) or set(by_route) != set(
            self.route_dlq_urls.values()
        ):
            raise ValueError(
                "ROUTE_DLQ_URLS_BY_ROUTE must give each dead-letter queue of ROUTE_DLQ_URLS to "
                "exactly one route, and no other queue"
            )
        return self

    @model_validator(mode="after")
    def _express_needs_its_dead_letter_queue(self) -> Self:
        if self.workflow_type == "EXPRESS" and self.workflow_dlq_url is None:
            raise ValueError("WORKFLOW_TYPE EXPRESS needs WORKFLOW_DLQ_URL")
        return self

    @model_validator(mode="after")
    def _a_rate_starts_something(self) -> Self:
        # Between 0 and 1 the one-second windows would grant no start at all.
        if 0 < self.detect_labels_rate < 1:
            raise ValueError("DETECT_LABELS_RATE must be 0 (no limit) or at least 1")
        return self

    @property
    def start_rate(self) -> float | None:
        """Executions per second all invocations together may start (classifier.pacing);
        None: no limit (EXPRESS, or rate 0)."""
        if self.workflow_type != "STANDARD" or self.detect_labels_rate == 0:
            return None
        return self.detect_labels_rate

    def require_workflow_dlq_url(self) -> str:
        if self.workflow_dlq_url is None:
            raise InvalidSettings("WORKFLOW_DLQ_URL is not set")
        return self.workflow_dlq_url

    def route_queue_url(self, queue_arn: str) -> str | None:
        """The URL of a route queue, by its ARN; None for a queue this deployment lacks.

        A route queue and its dead-letter queue are in one account and region, so their URLs
        differ only in the queue's name: the route queue's URL is its dead-letter queue's with
        its own name (from the ARN). No variable more, and nothing assumed about the form of
        SQS URLs (AWS's, a VPC endpoint's or the local cloud's).
        """
        dead_letter_queue = self.route_dlq_urls.get(queue_arn)
        if dead_letter_queue is None:
            return None
        return f"{dead_letter_queue.rpartition('/')[0]}/{queue_arn.rpartition(':')[2]}"

    def route_of_queue(self, queue_arn: str) -> str | None:
        """The route of a route queue, by its ARN; None for a queue this deployment lacks."""
        dead_letter_queue = self.route_dlq_urls.get(queue_arn)
        return next(
            (
                route
                for route, url in self.route_dlq_urls_by_route.items()
                if url == dead_letter_queue
            ),
            None,
        )


# Reaching the Step Functions endpoint takes well under a second; botocore's 60 s default would
# spend the margin the invocation keeps over the claim lease (EXPRESS: 360 s timeout, 330 s
# lease, around an execution of up to 300 s) on one unreachable endpoint.
STEPFUNCTIONS_CONNECT_TIMEOUT_SECONDS = 3
# STANDARD: StartExecution is idempotent by name, so a retried start cannot start twice. It
# answers as soon as the execution exists (milliseconds), so its read timeout is short: the
# attempts at their worst, 3 x (3 + 5) s plus backoffs of at most 1 + 2 s, are 27 s, inside the
# function's 60 s timeout (a read timeout of the claim lease would let one stalled call outlast
# the invocation).
STANDARD_START_ATTEMPTS = 3
STANDARD_START_READ_TIMEOUT_SECONDS = 5


def stepfunctions_config(settings: ClassifierSettings) -> Config:
    """The Step Functions client's timeouts and retries, bounded by the invocation.

    EXPRESS: the read timeout follows the claim lease: StartSyncExecution answers when the
    execution ends, up to Express's 5 minutes, and the lease outlasts it. STANDARD's
    StartExecution answers at once: its read timeout is seconds. EXPRESS makes one
    attempt: Express does not dedupe names, so botocore retrying a call whose answer was lost
    (a read timeout) would start the image a second time; the classifier already handles a
    failed start itself (the record is backed off and delivered again).
    """
    express = settings.workflow_type == "EXPRESS"
    return Config(
        connect_timeout=STEPFUNCTIONS_CONNECT_TIMEOUT_SECONDS,
        read_timeout=(
            settings.claim_lease_seconds if express else STANDARD_START_READ_TIMEOUT_SECONDS
        ),
        retries={
            "mode": "standard",
            "total_max_attempts": 1 if express else STANDARD_START_ATTEMPTS,
        },
    )


# DynamoDB (the URL lookup, the pacing windows, the reservation, the claim's close, the letter
# markers) and SQS (a record's backoff, the dead letters): each call answers in milliseconds, so
# botocore's defaults (60 s timeouts, legacy retries: 10 attempts for DynamoDB, 5 for SQS) only
# matter when something stalls, and then let one call outlast the invocation. Under EXPRESS
# the tightest budget is what follows an execution's answer: a record is started only while
# the claim lease (330 s) is left, and from that check on it may spend the reservation (at most
# EXPRESS_DYNAMODB_CALLS_BEFORE_START), StartSyncExecution (its connect timeout, then up to the
# state machine's TimeoutSeconds of 300 s) and the settling of the answer (closing the claim,
# at most twice, and a dead letter: its marker read and written, the letter sent). So every
# such call at its worst must fit in 330 - 300 - 3 = 27 s, less 1 s for the batch response:
# 6 DynamoDB calls and 1 SQS call at 2 x (0.5 + 0.75) + 1 = 3.5 s each = 24.5 s
# (tests/unit/template/test_client_timeouts.py holds it against template.yaml and the ASL).
# Two attempts ride out one throttled or lost request; a read timeout of 0.75 s is still
# hundreds of times DynamoDB's and SQS's usual latency. What still fails leaves the record on
# its queue, as any failure of these calls did before.
AWS_CONNECT_TIMEOUT_SECONDS = 0.5
AWS_READ_TIMEOUT_SECONDS = 0.75
AWS_ATTEMPTS = 2
AWS_BOUNDS = CallBounds(
    connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
    read_timeout=AWS_READ_TIMEOUT_SECONDS,
    attempts=AWS_ATTEMPTS,
)
AWS_CONFIG: Config = AWS_BOUNDS.config()
# EXPRESS, after the check that the lease is left (classifier.express.ExpressRunner.run): the
# reservation, taken again once when it finds a FAILED item to judge ...
EXPRESS_DYNAMODB_CALLS_BEFORE_START = 2
# ... and after the answer: the claim closed (the reservation's when the execution's close is
# refused), the letter's marker checked and set (common.letters), with one SQS call: the
# letter, or the record's backoff when the execution failed transiently.
EXPRESS_DYNAMODB_CALLS_AFTER_ANSWER = 4
EXPRESS_SQS_CALLS_AFTER_ANSWER = 1
# Kept back at the end of an EXPRESS invocation for returning the batch response.
EXPRESS_RESPONSE_SECONDS = 1.0


def express_worst_case_seconds(execution_timeout_seconds: float) -> float:
    """The longest an EXPRESS record takes from its lease check on, with every DynamoDB and
    SQS call at its worst and the execution running to its ``TimeoutSeconds``."""
    calls = (
        EXPRESS_DYNAMODB_CALLS_BEFORE_START
        + EXPRESS_DYNAMODB_CALLS_AFTER_ANSWER
        + EXPRESS_SQS_CALLS_AFTER_ANSWER
    )
    return (
        calls * AWS_BOUNDS.worst_case_seconds()
        + STEPFUNCTIONS_CONNECT_TIMEOUT_SECONDS
        + execution_timeout_seconds
        + EXPRESS_RESPONSE_SECONDS
    )


def load_settings(environ: Mapping[str, str]) -> ClassifierSettings:
    """Validate the environment, naming every offending variable in one error."""
    try:
        return ClassifierSettings.model_validate(dict(environ))
    except ValidationError as exc:
        problems = summarize(exc, root="environment", part_chars=None)
        raise InvalidSettings(f"invalid ClassifierFunction environment: {problems}") from exc
