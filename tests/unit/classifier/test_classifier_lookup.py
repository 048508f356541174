"""The per-batch BatchGetItem that tells where each image URL stands (status and owner)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError

from classifier.lookup import (
    Claim,
    DoneLookupFailed,
    ended_for_good,
    find_claims,
    repeats_failure,
)
from common.messages import PhotoMessage, express_execution_name, message_token
from tests.unit.classifier.classifier_testkit import RESULTS_TABLE, Cloud, client_error, no_sleep

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

URL_DONE = "https://pbs.twimg.com/media/GdLq3aXWkAAe9fT.jpg"
URL_IN_PROGRESS = "https://pbs.twimg.com/media/GdLq4bYWAAA7pQs.jpg"
URL_FAILED = "https://pbs.twimg.com/media/GdLq5cZXoAAk2Hd.jpg"
URL_NEW = "https://pbs.twimg.com/media/GdLq6dAWMAAxR4u.jpg"


class RecordingDynamoDB:
    """Passes BatchGetItem to moto, optionally holding back keys as UnprocessedKeys."""

    def __init__(self, real: DynamoDBClient, *, hold_back: int = 0, hold_back_calls: int = 0):
        self._real = real
        self._hold_back = hold_back
        self._hold_back_calls = hold_back_calls
        self.requested_keys: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        keys_and_attributes = RequestItems[RESULTS_TABLE]
        keys = keys_and_attributes["Keys"]
        self.requested_keys.append(len(keys))
        if len(self.requested_keys) > self._hold_back_calls or not self._hold_back:
            return dict(self._real.batch_get_item(RequestItems=RequestItems))
        served, held = keys[: -self._hold_back], keys[-self._hold_back :]
        response: dict[str, Any] = {"Responses": {RESULTS_TABLE: []}}
        if served:
            response = dict(
                self._real.batch_get_item(
                    RequestItems={RESULTS_TABLE: keys_and_attributes | {"Keys": served}}
                )
            )
        response["UnprocessedKeys"] = {RESULTS_TABLE: keys_and_attributes | {"Keys": held}}
        return response


def find_done_urls(
    dynamodb: DynamoDBClient, table: str, urls: list[str], sleep: Any
) -> frozenset[str]:
    """The URLs whose result is DONE, from ``find_claims``."""
    claims = find_claims(dynamodb, table, urls, sleep)
    return frozenset(url for url, claim in claims.items() if claim.done)


class FailingDynamoDB:
    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        raise client_error(
            "ResourceNotFoundException", "Requested resource not found", "BatchGetItem"
        )


def test_every_existing_result_is_reported_with_its_status_and_owner(cloud: Cloud) -> None:
    # GIVEN result items in every status, one owned by a known execution, and a URL never seen
    cloud.put_result(URL_DONE, "DONE")
    cloud.put_result(URL_IN_PROGRESS, "IN_PROGRESS")
    cloud.put_result(URL_FAILED, "FAILED")
    owner = "arn:aws:states:us-east-1:123456789012:execution:ClassifyImage:abc-3"
    cloud.dynamodb.update_item(
        TableName=RESULTS_TABLE,
        Key={"pk": {"S": URL_IN_PROGRESS}, "sk": {"S": "RESULT"}},
        UpdateExpression="SET #execution = :owner",
        ExpressionAttributeNames={"#execution": "execution"},
        ExpressionAttributeValues={":owner": {"S": owner}},
    )

    # WHEN the four URLs are looked up
    claims = find_claims(
        cloud.dynamodb,
        RESULTS_TABLE,
        [URL_DONE, URL_IN_PROGRESS, URL_FAILED, URL_NEW],
        sleep=no_sleep,
    )

    # THEN the three items come back with status and owner; the new URL has none
    assert claims == {
        URL_DONE: Claim(status="DONE", execution=""),
        URL_IN_PROGRESS: Claim(status="IN_PROGRESS", execution=owner),
        URL_FAILED: Claim(status="FAILED", execution=""),
    }


def test_unprocessed_keys_are_retried_with_backoff(cloud: Cloud) -> None:
    # GIVEN DynamoDB holds back two keys on the first two requests
    cloud.put_result(URL_DONE, "DONE")
    cloud.put_result(URL_FAILED, "DONE")
    dynamodb = RecordingDynamoDB(cloud.dynamodb, hold_back=2, hold_back_calls=2)
    sleeps: list[float] = []

    # WHEN the URLs are looked up
    done = find_done_urls(
        cast("DynamoDBClient", dynamodb),
        RESULTS_TABLE,
        [URL_NEW, URL_DONE, URL_FAILED, URL_IN_PROGRESS],
        sleep=sleeps.append,
    )

    # THEN the held-back keys are asked for again until answered, with growing pauses
    assert done == frozenset({URL_DONE, URL_FAILED})
    assert dynamodb.requested_keys == [4, 2, 2]
    assert sleeps == [0.05, 0.1]


def test_keys_still_unprocessed_after_retries_fail_the_lookup(cloud: Cloud) -> None:
    # GIVEN DynamoDB never serves one of the keys
    dynamodb = RecordingDynamoDB(cloud.dynamodb, hold_back=1, hold_back_calls=99)
    sleeps: list[float] = []

    # WHEN the URLs are looked up THEN the lookup fails after three retries
    with pytest.raises(DoneLookupFailed) as raised:
        find_done_urls(
            cast("DynamoDBClient", dynamodb), RESULTS_TABLE, [URL_NEW, URL_DONE], sleeps.append
        )
    assert str(raised.value) == (
        f"BatchGetItem on {RESULTS_TABLE} left keys unprocessed after 3 retries"
    )
    assert dynamodb.requested_keys == [2, 1, 1, 1]
    assert sleeps == [0.05, 0.1, 0.2]


def test_client_error_fails_the_lookup() -> None:
    # GIVEN a table that cannot be read
    # WHEN a URL is looked up THEN the AWS error is wrapped, naming the table
    with pytest.raises(DoneLookupFailed) as raised:
        find_done_urls(
            cast("DynamoDBClient", FailingDynamoDB()), RESULTS_TABLE, [URL_NEW], no_sleep
        )
    assert str(raised.value) == (
        f"BatchGetItem on {RESULTS_TABLE} failed: An error occurred (ResourceNotFoundException)"
        " when calling the BatchGetItem operation: Requested resource not found"
    )
    assert isinstance(raised.value.__cause__, ClientError)


def test_more_than_100_urls_are_split_into_requests(cloud: Cloud) -> None:
    # GIVEN 150 URLs, the last of which is DONE
    urls = [f"https://pbs.twimg.com/media/G{index:03d}.jpg" for index in range(150)]
    cloud.put_result(urls[-1], "DONE")
    dynamodb = RecordingDynamoDB(cloud.dynamodb)

    # WHEN they are looked up
    done = find_done_urls(cast("DynamoDBClient", dynamodb), RESULTS_TABLE, urls, no_sleep)

    # THEN BatchGetItem is called within its 100-key limit and every URL is covered
    assert dynamodb.requested_keys == [100, 50]
    assert done == frozenset({urls[-1]})


def test_no_urls_make_no_request() -> None:
    # GIVEN no URL (every record of the batch was invalid)
    # WHEN they are looked up THEN DynamoDB is not called at all
    assert find_claims(cast("DynamoDBClient", FailingDynamoDB()), RESULTS_TABLE, [], no_sleep) == {}


@pytest.mark.parametrize(
    ("status", "error", "for_good"),
    [
        ("FAILED", "ImageNotFound", True),
        ("FAILED", "ImageHostError", True),
        ("FAILED", "States.Timeout", True),
        ("FAILED", "LeaseExpired", True),
        ("FAILED", "", True),
        ("TIMED_OUT", "", True),
        ("ABORTED", "Operator", True),
        ("FAILED", "Rekognition.ThrottlingException", False),
        ("FAILED", "ResultStoreBusy", False),
        ("FAILED", "StartSyncExecutionFailed", False),
        ("RUNNING", "", False),
        ("SUCCEEDED", "", False),
        ("NOT_FOUND", "", False),
    ],
)
def test_which_ends_are_for_good(status: str, error: str, for_good: bool) -> None:
    # GIVEN how an execution ended WHEN it is judged THEN only a transient error (the names
    # the workflow retries), a refused start, or no end at all leaves the image open
    assert ended_for_good(status, error) is for_good


FAILED_MESSAGE = PhotoMessage(
    url=URL_FAILED,
    post_id="1",
    media_key="3_1",
    text="gone",
    hashtags=["cat"],
    route="cats",
    attempt=1,
)
FIRST_ID = "5e0c1a7b-0b1d-4f4e-9c3a-00000000d001"
LATER_ID = "5e0c1a7b-0b1d-4f4e-9c3a-00000000d002"
FAILED_CLAIM = Claim(
    status="FAILED",
    execution=(
        "arn:aws:states:us-east-1:123456789012:express:ClassifyImage:"
        f"{express_execution_name(URL_FAILED, FIRST_ID)}:run-1"
    ),
    message=FAILED_MESSAGE.model_dump_json(),
    error="ImageNotFound",
)


@pytest.mark.parametrize(
    ("claim", "message", "message_id", "repeats"),
    [
        (FAILED_CLAIM, FAILED_MESSAGE.model_copy(update={"post_id": "2"}), LATER_ID, True),
        (FAILED_CLAIM, FAILED_MESSAGE.model_copy(update={"attempt": 0}), LATER_ID, True),
        (FAILED_CLAIM, FAILED_MESSAGE.model_copy(update={"attempt": 2}), LATER_ID, False),
        (FAILED_CLAIM, FAILED_MESSAGE, FIRST_ID, False),
        (Claim("FAILED", "x", message="", error="ImageNotFound"), FAILED_MESSAGE, LATER_ID, False),
    ],
    ids=["later-post", "lower-attempt", "replay", "same-sqs-message", "claim-without-message"],
)
def test_which_messages_repeat_a_failure(
    claim: Claim, message: PhotoMessage, message_id: str, repeats: bool
) -> None:
    # GIVEN a claim closed after a permanent failure WHEN a message for its URL is judged
    # THEN a later post repeats it; a replay, the failed SQS message itself (its letter may be
    # unsent) and a claim that names no message leave the image to run
    assert repeats_failure(claim, message, message_token(message_id), claim.error) is repeats


HOST_FAILED_CLAIM = replace(FAILED_CLAIM, error="ImageHostError")


@pytest.mark.parametrize(
    ("message", "message_id", "repeats"),
    [
        (FAILED_MESSAGE, LATER_ID, True),
        (FAILED_MESSAGE.model_copy(update={"attempt": 0}), LATER_ID, True),
        (FAILED_MESSAGE, FIRST_ID, False),
        (FAILED_MESSAGE.model_copy(update={"attempt": 2}), LATER_ID, False),
        (FAILED_MESSAGE.model_copy(update={"post_id": "2"}), LATER_ID, False),
        (FAILED_MESSAGE.model_copy(update={"post_id": "2", "attempt": 0}), LATER_ID, False),
        (FAILED_MESSAGE.model_copy(update={"media_key": "3_2"}), LATER_ID, False),
        (FAILED_MESSAGE.model_copy(update={"route": "dogs"}), LATER_ID, False),
    ],
    ids=[
        "copy-of-the-failed-message",
        "copy-at-a-lower-attempt",
        "same-sqs-message",
        "replay",
        "later-post",
        "later-post-lower-attempt",
        "other-photo-key",
        "other-route",
    ],
)
def test_after_an_image_host_error_only_a_copy_of_the_failed_message_repeats_it(
    message: PhotoMessage, message_id: str, repeats: bool
) -> None:
    # GIVEN a claim closed after the image host failed (ImageHostError, before Detect Labels)
    # WHEN a message for its URL is judged
    # THEN only a copy of the failed message (same post, photo and route, another SQS message)
    # repeats it: any different message takes the URL over, as do a replay and the failed SQS
    # message itself
    assert (
        repeats_failure(HOST_FAILED_CLAIM, message, message_token(message_id), "ImageHostError")
        is repeats
    )


@pytest.mark.parametrize("error", ["States.Timeout", "LeaseExpired", "ImageNotFound", "ChaosAbort"])
def test_other_permanent_errors_make_a_later_post_a_duplicate(error: str) -> None:
    # GIVEN a claim closed after an error that is not the image host's (a timed-out call may
    # have been billed: a second run could label the image twice)
    claim = replace(FAILED_CLAIM, error=error)
    later_post = FAILED_MESSAGE.model_copy(update={"post_id": "2"})
    # WHEN a later post of the photo is judged
    # THEN it repeats the failure
    assert repeats_failure(claim, later_post, message_token(LATER_ID), error) is True
