"""The contracts between the pipeline's stages.

``PhotoMessage`` is the body of every message on a route queue: the producer writes it, the
classifier reads it, the state machine carries it and the workflow dead-letter queue keeps it.
``ClassifyRequest`` is the input of one ClassifyImage execution.
"""

from __future__ import annotations

import hashlib
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# SQS accepts 256 KiB per message; a post is at most a few KB, so anything near this is abuse.
MAX_TEXT_LENGTH = 4_000
MAX_URL_LENGTH = 2_048
# The URL is the results table's partition key, which DynamoDB caps at 2048 *bytes*.
MAX_URL_BYTES = 2_048
# Step Functions execution names: at most 80 characters of [0-9A-Za-z_-].
EXECUTION_NAME_HASH_CHARS = 64
MAX_EXECUTION_SEQUENCE = 10**15 - 1
# ``ClassifyRequest.supersedes`` when the execution takes over no earlier one.
NO_EXECUTION = "-"


class PhotoMessage(BaseModel):
    """One photo of one post, routed to one queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
    post_id: Annotated[str, Field(pattern=r"^[0-9]{1,25}$")]
    media_key: Annotated[str, Field(min_length=1, max_length=64)]
    text: Annotated[str, Field(max_length=MAX_TEXT_LENGTH)]
    hashtags: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=140)]], Field(max_length=100)
    ]
    route: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
    # How many times this message came back from a dead-letter queue. Informational: which
    # execution name a message gets is decided from the URL's result item (``execution_name``).
    attempt: Annotated[int, Field(ge=0, le=99)] = 0

    @field_validator("url")
    @classmethod
    def _https_without_credentials(cls, url: str) -> str:
        if len(url.encode("utf-8")) > MAX_URL_BYTES:
            raise ValueError(f"url is longer than {MAX_URL_BYTES} bytes in UTF-8")
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise ValueError("url must use https")
        if not parts.hostname:
            raise ValueError("url has no host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("url must not carry credentials")
        return url


def url_digest(url: str) -> str:
    """Hex SHA-256 of an image URL: the S3 key stem and execution name stem."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def execution_name(url: str, sequence: int) -> str:
    """The name of the ``sequence``-th ClassifyImage execution for an image URL.

    Standard workflows keep a name for 90 days whatever the outcome, so each attempt at a URL
    gets the next sequence number; the same attempt always gets the same name, so a
    redelivered message cannot start a second execution (``ExecutionAlreadyExists``).
    """
    if not 1 <= sequence <= MAX_EXECUTION_SEQUENCE:
        raise ValueError(f"execution sequence {sequence} is out of range")
    return f"{url_digest(url)[:EXECUTION_NAME_HASH_CHARS]}-{sequence}"


def execution_sequence(execution: str) -> int:
    """The sequence number at the end of an execution name or ARN; 0 when there is none."""
    _, _, tail = execution.rpartition("-")
    return int(tail) if tail.isdigit() and len(tail) <= 15 else 0


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN StartExecution gives an execution of ``state_machine_arn`` named ``name``."""
    prefix, separator, machine = state_machine_arn.partition(":stateMachine:")
    if not separator:
        raise ValueError(f"not a state machine ARN: {state_machine_arn}")
    return f"{prefix}:execution:{machine}:{name}"


class ClassifyRequest(BaseModel):
    """Input of one ClassifyImage execution, built by the classifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: PhotoMessage
    # Epoch seconds. The Claim state cannot do clock arithmetic, so the classifier computes
    # the claim lease (now + the state machine's timeout) when it starts the execution.
    requested_at: int
    lease_expires_at: int
    source_queue_arn: str
    # The ARN of an ended execution whose claim this one may take over although its lease
    # has not expired (the classifier saw it end), or NO_EXECUTION.
    supersedes: Annotated[str, Field(min_length=1, max_length=2_048)] = NO_EXECUTION
