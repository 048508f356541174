"""Environment of ClassifierFunction, validated once at cold start.

A missing or malformed variable stops the container before it touches a message, so a broken
deployment shows up as an init error instead of messages drifting into dead-letter queues.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError

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

QueueArn = Annotated[str, Field(pattern=QUEUE_ARN_PATTERN)]
QueueUrl = Annotated[str, Field(pattern=QUEUE_URL_PATTERN)]


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
    claim_lease_seconds: Annotated[
        int, Field(alias="CLAIM_LEASE_SECONDS", ge=MIN_LEASE_SECONDS, le=MAX_LEASE_SECONDS)
    ]
    # Powertools only notices a missing namespace when it flushes, i.e. after the batch has
    # been processed; checking it here fails the cold start instead.
    metrics_namespace: Annotated[str, Field(alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1)]


def load_settings(environ: Mapping[str, str]) -> ClassifierSettings:
    """Validate the environment, naming every offending variable in one error."""
    try:
        return ClassifierSettings.model_validate(dict(environ))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise InvalidSettings(f"invalid ClassifierFunction environment: {problems}") from exc
