"""The message contract shared by the producer, the classifier and the state machine."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.messages import MAX_URL_BYTES, PhotoMessage

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


def test_execution_name_is_deterministic_per_url_and_attempt() -> None:
    # GIVEN the same image twice and once more as a replay
    first = PhotoMessage(url="https://pbs.twimg.com/media/a.jpg", **BASE)
    again = PhotoMessage(url="https://pbs.twimg.com/media/a.jpg", **BASE)
    replay = PhotoMessage(url="https://pbs.twimg.com/media/a.jpg", attempt=1, **BASE)
    # WHEN their execution names are computed
    # THEN a redelivery reuses the name, a replay does not, and both are valid names
    assert first.execution_name() == again.execution_name()
    assert replay.execution_name() == first.execution_name()[:-1] + "1"
    assert len(first.execution_name()) == 66
