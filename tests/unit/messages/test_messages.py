"""The message contract shared by the producer, the classifier and the state machine."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from common.messages import (
    MAX_URL_BYTES,
    PhotoMessage,
    execution_arn,
    execution_name,
    execution_sequence,
)

BASE = {
    "post_id": "1790000000000000001",
    "media_key": "3_1790000000000000001",
    "text": "my #cat",
    "hashtags": ["cat"],
    "route": "cats",
}


def test_url_over_the_key_limit_in_bytes_is_refused() -> None:
    # GIVEN a URL under 2048 characters but over 2048 bytes once encoded (the results table's
    # partition key limit): 1,100 two-byte characters
    url = "https://pbs.twimg.com/media/" + "é" * 1_100 + ".jpg"
    assert len(url) < MAX_URL_BYTES < len(url.encode("utf-8"))
    # WHEN it is validated
    # THEN it is refused with a readable reason instead of failing a whole batch later
    with pytest.raises(ValidationError, match="url is longer than 2048 bytes in UTF-8"):
        PhotoMessage(url=url, **BASE)


@pytest.mark.parametrize("scheme", ["HTTPS", "Https"])
def test_url_whose_scheme_is_not_spelled_in_lower_case_is_refused(scheme: str) -> None:
    # GIVEN an https URL whose scheme is in capitals (urlsplit would read it as "https")
    url = f"{scheme}://pbs.twimg.com/media/a.jpg"
    # WHEN it is validated
    # THEN it is refused: the roles writing result items may write only keys "https://*"
    with pytest.raises(ValidationError, match="url must use https"):
        PhotoMessage(url=url, **BASE)


def test_execution_name_is_deterministic_per_url_and_sequence() -> None:
    # GIVEN one image URL
    url = "https://pbs.twimg.com/media/a.jpg"
    digest = hashlib.sha256(url.encode()).hexdigest()
    # WHEN names are computed for attempts 1 and 2
    # THEN the same attempt always gives the same valid name, the next attempt another
    assert execution_name(url, 1) == execution_name(url, 1) == f"{digest}-1"
    assert execution_name(url, 2) == f"{digest}-2"
    assert len(execution_name(url, 10**15 - 1)) == 80


@pytest.mark.parametrize("sequence", [0, -1, 10**15])
def test_execution_sequence_out_of_range_is_refused(sequence: int) -> None:
    # GIVEN a sequence no execution name can carry WHEN a name is asked for THEN it is refused
    with pytest.raises(ValueError, match="out of range"):
        execution_name("https://pbs.twimg.com/media/a.jpg", sequence)


@pytest.mark.parametrize(
    ("execution", "sequence"),
    [
        ("arn:aws:states:us-east-1:123456789012:execution:ClassifyImage:abc-7", 7),
        ("abc-12", 12),
        ("hand-started", 0),
        ("", 0),
    ],
)
def test_execution_sequence_is_read_from_a_name_or_arn(execution: str, sequence: int) -> None:
    # GIVEN an execution name or ARN WHEN its sequence is read THEN it is the trailing number
    assert execution_sequence(execution) == sequence


def test_execution_arn_follows_the_state_machine_arn() -> None:
    # GIVEN a state machine ARN and a name WHEN the execution ARN is derived
    # THEN it is the one StartExecution returns; anything else is refused
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:ClassifyImage"
    assert execution_arn(machine, "abc-1") == (
        "arn:aws:states:us-east-1:123456789012:execution:ClassifyImage:abc-1"
    )
    with pytest.raises(ValueError, match="not a state machine ARN"):
        execution_arn("arn:aws:sqs:us-east-1:123456789012:queue", "abc-1")
