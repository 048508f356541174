"""How the pipeline names what it makes, written once for the functions and the tooling.

The functions name each image's S3 object and each Standard execution after the image URL's
digest; the tooling (the demo's accounting, chaos invariants, the CLI tests) finds them by the
same rules. Standard library only: `sam build` copies this package with the rest of
``functions/``, and the tooling's wheel ships it as a top-level package (pyproject's
``packages.find``), so neither side keeps a copy of its own.
"""

from __future__ import annotations

import hashlib
from typing import Final

IMAGE_KEY_PREFIX: Final = "images/"
# An image's result item in ResultsTable: partition key ``pk`` the image URL, sort key ``sk``
# this; its ``status`` is DONE_STATUS once the image is classified. The classifier reads a URL's
# claim by this key (``classifier.lookup``), and so does the tooling (results, ``tweetlens dlq``).
RESULT_SORT_KEY: Final = "RESULT"
DONE_STATUS: Final = "DONE"
# A Standard execution name holds at most 80 characters: the digest, a dash and the attempt.
EXECUTION_NAME_HASH_CHARS: Final = 64
MAX_EXECUTION_SEQUENCE: Final = 10**15 - 1
# The highest ``attempt`` a route message may carry (a count of replays from a dead-letter
# queue): the classifier rejects a higher one as InvalidMessage, and a redrive, which sends a
# letter back one attempt higher, keeps a letter that is already here.
MAX_ATTEMPT: Final = 99
# The message attribute of a rejection letter (the classifier's SendMessage to a route DLQ) that
# names the SQS message it rejected: the letter is a new SQS message with an id of its own, and
# the tooling settles the rejected message by this one (``tweetlens.settlement``). A message
# the queue's redrive policy moved keeps its id and carries no such attribute.
SOURCE_MESSAGE_ID_ATTRIBUTE: Final = "source_message_id"


def url_digest(url: str) -> str:
    """Hex SHA-256 of an image URL: the stem of its S3 key and of its execution names."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def image_key(url: str, extension: str) -> str:
    """The S3 key of an image: the digest of the URL the task was given, not of a redirect."""
    return f"{IMAGE_KEY_PREFIX}{url_digest(url)}.{extension}"


def execution_name(url: str, sequence: int) -> str:
    """The name of the ``sequence``-th Standard ClassifyImage execution for an image URL.

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
    return int(tail) if tail.isdigit() and len(tail) <= len(str(MAX_EXECUTION_SEQUENCE)) else 0
