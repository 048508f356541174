"""StoreResultFunction's environment, validated once at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.clients import CallBounds
from common.validation import summarize

TABLE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{3,255}$"

# The chain of timeouts: the Store Result state's TimeoutSeconds (10 s) equals this function's
# Timeout, and a task that times out ends the execution (States.Timeout is not retried), after
# DetectLabels was paid for. So a store must give up on DynamoDB well before that and raise
# ResultStoreBusy, which the state machine retries in a fresh invocation. A store makes
# DYNAMODB_CALLS_PER_STORE calls in turn (the Query of stale labels, then TransactWriteItems);
# each ends within DYNAMODB_BOUNDS.worst_case_seconds() = 2 x (0.5 + 1.0) + 1 = 4 s, so 8 s for
# both, leaving 2 s of the 10 for the invocation itself (a cold start's init included). (A
# DeleteItem more is made only when a retried store replaces more stale labels than its
# transaction has room for: 50 stale against 50 new ones, MaxLabels' maximum. When that third
# call leaves less than the transaction's worst case of the 8 s, the store raises
# ResultStoreBusy before the transaction, and the state machine's retry, finding the excess
# deleted, makes two calls: see store_result.store.)
# botocore's defaults (60 s timeouts, 10 attempts for DynamoDB with backoff up to ~25 s) let
# one throttled or stalled call outlast the task. DynamoDB answers in milliseconds within a
# region, so 0.5 s to connect and 1 s for an answer only cut off what is already broken.
# TransactWriteItems is safe to retry: botocore fills its ClientRequestToken once per call.
DYNAMODB_CONNECT_TIMEOUT_SECONDS = 0.5
DYNAMODB_READ_TIMEOUT_SECONDS = 1.0
DYNAMODB_ATTEMPTS = 2
DYNAMODB_CALLS_PER_STORE = 2
DYNAMODB_BOUNDS = CallBounds(
    connect_timeout=DYNAMODB_CONNECT_TIMEOUT_SECONDS,
    read_timeout=DYNAMODB_READ_TIMEOUT_SECONDS,
    attempts=DYNAMODB_ATTEMPTS,
)
DYNAMODB_CONFIG: Config = DYNAMODB_BOUNDS.config()


def store_worst_case_seconds() -> float:
    """The longest a store's DynamoDB calls can take together (the tests hold it under the
    Store Result task's TimeoutSeconds, read from the state machine)."""
    return DYNAMODB_CALLS_PER_STORE * DYNAMODB_BOUNDS.worst_case_seconds()


class InvalidSettings(Exception):
    """The function's environment does not satisfy the contract in docs/architecture.md."""


class StoreSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    results_table: Annotated[str, Field(alias="RESULTS_TABLE", pattern=TABLE_NAME_PATTERN)]


def load_settings(environ: Mapping[str, str]) -> StoreSettings:
    """Validate the environment, naming every offending variable in one error."""
    try:
        return StoreSettings.model_validate(dict(environ))
    except ValidationError as error:
        raise InvalidSettings(
            f"invalid StoreResultFunction environment: {summarize(error, root='environment')}"
        ) from error
