"""ExecutionCloserFunction's environment, validated once at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.clients import CallBounds
from common.validation import summarize

TABLE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{3,255}$"
STATE_MACHINE_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]{1,80}$"
)
# http is allowed because the local cloud serves SQS on loopback without TLS.
QUEUE_URL_PATTERN = r"^https?://[^\s/]+/[0-9]{12}/[A-Za-z0-9_-]{1,80}$"

# Every AWS client of the closer (the results table, Step Functions, the workflow DLQ). A sweep
# starts no further claim with less than closer.SWEEP_MARGIN_MS (10 s) of its 60 s left, so one
# call started then must end within the margin: AWS_BOUNDS.worst_case_seconds() =
# 3 x (0.5 + 1.5) + 1 + 2 = 9 s. botocore's defaults (60 s timeouts, 5 attempts, 10 for
# DynamoDB, backoff up to ~25 s) let a single stalled call outlast the invocation, which ends
# by its timeout and reports nothing of what it closed. Three attempts ride out a short burst
# of throttling; a close that still fails is retried by Lambda (an event) or the next sweep.
AWS_CONNECT_TIMEOUT_SECONDS = 0.5
AWS_READ_TIMEOUT_SECONDS = 1.5
AWS_ATTEMPTS = 3
AWS_BOUNDS = CallBounds(
    connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
    read_timeout=AWS_READ_TIMEOUT_SECONDS,
    attempts=AWS_ATTEMPTS,
)
AWS_CONFIG: Config = AWS_BOUNDS.config()


class InvalidSettings(Exception):
    """The function's environment does not satisfy the contract in docs/architecture.md."""


class CloserSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    results_table: Annotated[str, Field(alias="RESULTS_TABLE", pattern=TABLE_NAME_PATTERN)]
    open_claims_index: Annotated[str, Field(alias="OPEN_CLAIMS_INDEX", min_length=3)]
    state_machine_arn: Annotated[
        str, Field(alias="STATE_MACHINE_ARN", pattern=STATE_MACHINE_ARN_PATTERN)
    ]
    workflow_dlq_url: Annotated[str, Field(alias="WORKFLOW_DLQ_URL", pattern=QUEUE_URL_PATTERN)]
    # Claims per page of the sweep's query (closer.MAX_SWEEP_PAGES pages at most per tick).
    sweep_limit: Annotated[int, Field(alias="SWEEP_LIMIT", ge=1, le=1_000)] = 100
    # How long the "letter sent" marker of an execution is kept: longer than EventBridge
    # keeps retrying an event (24 h), as long as a dead letter is kept (14 days).
    marker_days: Annotated[int, Field(alias="MARKER_DAYS", ge=2, le=365)] = 14


def load_settings(environ: Mapping[str, str]) -> CloserSettings:
    """Validate the environment, naming every offending variable in one error."""
    try:
        return CloserSettings.model_validate(dict(environ))
    except ValidationError as error:
        raise InvalidSettings(
            f"invalid ExecutionCloserFunction environment: {summarize(error, root='environment')}"
        ) from error
