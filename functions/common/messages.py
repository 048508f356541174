"""The contracts between the pipeline's stages.

``PhotoMessage`` is the body of every message on a route queue: the producer writes it, the
classifier reads it, the state machine carries it and the workflow dead-letter queue keeps it.
``ClassifyRequest`` is the input of one ClassifyImage execution.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The naming rules the tooling shares, written once in ``tweetlens_naming``: re-exported here
# (the ``as`` form is mypy's explicit re-export) so the functions keep one place to import from.
from tweetlens_naming import EXECUTION_NAME_HASH_CHARS as EXECUTION_NAME_HASH_CHARS  # noqa: PLC0414
from tweetlens_naming import MAX_ATTEMPT as MAX_ATTEMPT  # noqa: PLC0414
from tweetlens_naming import MAX_EXECUTION_SEQUENCE as MAX_EXECUTION_SEQUENCE  # noqa: PLC0414
from tweetlens_naming import execution_name as execution_name  # noqa: PLC0414
from tweetlens_naming import execution_sequence as execution_sequence  # noqa: PLC0414
from tweetlens_naming import url_digest as url_digest  # noqa: PLC0414

# SQS accepts 256 KiB per message; a post is at most a few KB, so anything near this is abuse.
MAX_TEXT_LENGTH = 4_000
MAX_URL_LENGTH = 2_048
# The URL is the results table's partition key, which DynamoDB caps at 2048 *bytes*.
MAX_URL_BYTES = 2_048
# ``ClassifyRequest.supersedes`` when the execution takes over no earlier one.
NO_EXECUTION = "-"
# WorkflowType=EXPRESS: the classifier reserves a URL's result item for one SQS message before
# it starts the execution, whose claim takes the reservation over (``supersedes``). The item's
# ``execution`` is then ``reservation:<message token>``: never an ARN, so the closer's sweep
# knows there is no execution to describe.
RESERVATION_PREFIX = "reservation:"
# An Express execution is named ``<first 40 hex of the URL digest>-<message token>``: 40 + 1 +
# 39 = 80, Step Functions' limit. An SQS message id (a UUID, 36 characters) is its own token.
EXPRESS_NAME_HASH_CHARS = 40
_TOKEN_SAFE = re.compile(r"[A-Za-z0-9_-]{1,39}")
TOKEN_HASH_CHARS = 36


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
    attempt: Annotated[int, Field(ge=0, le=MAX_ATTEMPT)] = 0

    @field_validator("url")
    @classmethod
    def _https_without_credentials(cls, url: str) -> str:
        if len(url.encode("utf-8")) > MAX_URL_BYTES:
            raise ValueError(f"url is longer than {MAX_URL_BYTES} bytes in UTF-8")
        parts = urlsplit(url)
        # Spelled "https://" exactly, not only a scheme urlsplit lowercases: the URL is the
        # result item's partition key, and the roles that write those items are limited to keys
        # starting "https://" (dynamodb:LeadingKeys, case-sensitive). An "HTTPS://" URL would
        # pass here and then be refused at every write of its workflow.
        if parts.scheme != "https" or not url.startswith("https://"):
            raise ValueError("url must use https")
        if not parts.hostname:
            raise ValueError("url has no host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("url must not carry credentials")
        return url


def message_token(message_id: str) -> str:
    """An SQS message id as it appears in an Express execution name and a reservation.

    A real message id is a UUID and is kept as it is (searchable in the logs); anything else a
    hand-made event may carry is hashed into the characters an execution name allows.
    """
    if _TOKEN_SAFE.fullmatch(message_id):
        return message_id
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:TOKEN_HASH_CHARS]


def express_execution_name(url: str, message_id: str) -> str:
    """The name of the Express execution one SQS message runs for an image URL.

    Express does not dedupe by name; the name says which message owns the URL's claim, so a
    copy of a running message is told from another post of the same image.
    """
    return f"{url_digest(url)[:EXPRESS_NAME_HASH_CHARS]}-{message_token(message_id)}"


def reservation_id(message_id: str) -> str:
    """The ``execution`` of a result item reserved for one SQS message (EXPRESS)."""
    return f"{RESERVATION_PREFIX}{message_token(message_id)}"


def owner_token(execution: str) -> str | None:
    """The message token of a claim's owner: a reservation, or an Express execution named by
    ``express_execution_name``; None for anything else (a Standard execution, an older name)."""
    if execution.startswith(RESERVATION_PREFIX):
        return execution.removeprefix(RESERVATION_PREFIX) or None
    # arn:<partition>:states:<region>:<account>:express:<machine>:<name>:<run id>
    parts = execution.split(":")
    if len(parts) != 9 or parts[5] != "express":
        return None
    name = parts[7]
    if len(name) <= EXPRESS_NAME_HASH_CHARS + 1 or name[EXPRESS_NAME_HASH_CHARS] != "-":
        return None
    return name[EXPRESS_NAME_HASH_CHARS + 1 :]


def is_express_execution(arn: str) -> bool:
    """Whether ``arn`` is an Express execution's (``arn:...:states:...:express:...``): Step
    Functions' DescribeExecution and GetExecutionHistory do not serve those."""
    parts = arn.split(":")
    return len(parts) > 5 and parts[2] == "states" and parts[5] == "express"


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
