"""A retried store whose first transaction committed is recognised as this execution's own.

The first attempt's TransactWriteItems commits and its answer is lost (ReadTimeoutError):
ResultStoreBusy, which the state machine retries. The retry's condition (this execution's
IN_PROGRESS claim) then fails, the result being DONE already; it must answer as the first
attempt would have, not ClaimLost (the ASL's Duplicate), or the image would be counted as a
duplicate though it is stored. Another execution's DONE result stays ClaimLost.

A store that must delete one stale label item ahead of its transaction makes a third call; if
that leaves less than the transaction's worst case of the store's 8 s, it hands over to the
state machine's retry (ResultStoreBusy) instead of risking the task's timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from moto import mock_aws

from store_result.errors import ClaimLost, ResultStoreBusy
from store_result.models import StoreRequest, StoreResponse
from store_result.store import store_result
from tests.conftest import load_event
from tests.unit.store_result.lost_reply import FirstTransactionLosesItsReply

REGION = "us-east-1"
TABLE = "tweetlens-results"
OTHER_EXECUTION = (
    "arn:aws:states:us-east-1:123456789012:express:ClassifyImageStateMachine-Ab12Cd34Ef56:"
    "a02ef976b2917256605ef7865f4e22c4438cce0a98926a416c7672344b4c5bfd-0:0b6e0c1d"
)


@pytest.fixture
def table(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name=REGION)
        yield resource.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )


def request() -> StoreRequest:
    return StoreRequest.model_validate(load_event("store_result_cat_photo.json"))


def claim(execution: str) -> dict[str, Any]:
    url = request().message.url
    return {"pk": url, "sk": "RESULT", "status": "IN_PROGRESS", "execution": execution}


def items(table: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = table.query(
        KeyConditionExpression=Key("pk").eq(request().message.url), ConsistentRead=True
    )["Items"]
    return found


def test_retry_after_a_committed_transaction_lost_its_reply_is_stored(table: Any) -> None:
    # GIVEN this execution's claim, and a client whose first transaction commits, then times out
    store = request()
    table.put_item(Item=claim(store.execution))
    client = FirstTransactionLosesItsReply(boto3.client("dynamodb", region_name=REGION))
    with pytest.raises(ResultStoreBusy, match=r"^DynamoDB did not answer: ReadTimeoutError$"):
        store_result(client, TABLE, store)
    committed = items(table)

    # WHEN the state machine retries the store
    response = store_result(client, TABLE, store)

    # THEN it answers as the first attempt would have, with the stored labels
    assert response == StoreResponse(
        url=store.message.url, image_key=store.image_key, labels=["Cat", "Pet", "Radiator"]
    )
    assert client.transactions == 2
    # AND the table holds exactly what the first attempt wrote: one DONE result, three labels
    assert items(table) == committed
    assert [(item["sk"], item.get("status")) for item in committed] == [
        ("LABEL#Cat", None),
        ("LABEL#Pet", None),
        ("LABEL#Radiator", None),
        ("RESULT", "DONE"),
    ]
    assert committed[3]["execution"] == store.execution
    assert committed[3]["labels"] == [
        {"name": "Cat", "confidence": Decimal("98.71")},
        {"name": "Pet", "confidence": Decimal("98.71")},
        {"name": "Radiator", "confidence": Decimal("81.3")},
    ]


def test_another_executions_done_result_is_still_claim_lost(table: Any) -> None:
    # GIVEN the URL's result DONE by another execution
    store = request()
    done = {
        **claim(OTHER_EXECUTION),
        "status": "DONE",
        "image_key": store.image_key,
        "labels": [{"name": "Dog", "confidence": Decimal("97")}],
    }
    table.put_item(Item=done)

    # WHEN this execution stores its labels
    with pytest.raises(ClaimLost) as lost:
        store_result(boto3.client("dynamodb", region_name=REGION), TABLE, store)

    # THEN its claim is lost, and the other execution's result is left as it was
    assert str(lost.value) == f"{store.execution} no longer owns the claim; result not written"
    assert items(table) == [done]


def test_this_executions_result_not_done_is_not_its_result(table: Any) -> None:
    # GIVEN the result item names this execution but is not DONE (a closer marked it FAILED)
    store = request()
    failed = {**claim(store.execution), "status": "FAILED"}
    table.put_item(Item=failed)

    # WHEN this execution stores its labels
    # THEN its claim is lost: only a DONE result of its own is an earlier attempt's write
    with pytest.raises(ClaimLost):
        store_result(boto3.client("dynamodb", region_name=REGION), TABLE, store)
    assert items(table) == [failed]


def fifty_labels() -> StoreRequest:
    """The most labels a store takes (MaxLabels' maximum), none named as a stale one."""
    labels = [{"Name": f"New{index:02d}", "Confidence": 90.0} for index in range(50)]
    return StoreRequest.model_validate(
        {**load_event("store_result_cat_photo.json"), "labels": labels}
    )


def stale_labels(table: Any, url: str) -> None:
    """Fifty label items an older design left: one more than the transaction has room for."""
    with table.batch_writer() as batch:
        for index in range(50):
            batch.put_item(Item={"pk": url, "sk": f"LABEL#Old{index:02d}", "label": f"Old{index}"})


class Clock:
    """Seconds since the store began: ``step`` more at each reading."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        reading = self.now
        self.now += self.step
        return reading


def test_a_third_call_that_leaves_too_little_time_hands_the_store_to_the_retry(
    table: Any,
) -> None:
    # GIVEN this execution's claim, 50 stale label items against 50 new labels (one delete
    # ahead of the transaction), and a clock by which the calls before the transaction took
    # 4.5 s, so the transaction at its worst (4 s) would end past the store's 8 s
    store = fifty_labels()
    table.put_item(Item=claim(store.execution))
    stale_labels(table, store.message.url)
    client = boto3.client("dynamodb", region_name=REGION)

    # WHEN the store runs
    # THEN it stops before the transaction with ResultStoreBusy, the state machine's retry
    with pytest.raises(ResultStoreBusy, match=r"^stale label deletes used the transaction"):
        store_result(client, TABLE, store, clock=Clock(step=4.5))
    # AND only the excess stale item is gone; the result is still the claim
    left = items(table)
    assert [item["sk"] for item in left] == [f"LABEL#Old{i:02d}" for i in range(49)] + ["RESULT"]
    assert left[-1] == claim(store.execution)

    # WHEN the retry runs, its two calls in time
    response = store_result(client, TABLE, store, clock=Clock(step=4.5))

    # THEN the result is DONE with exactly the 50 new label items
    assert response.labels == [f"New{index:02d}" for index in range(50)]
    stored = items(table)
    assert [item["sk"] for item in stored] == [
        *(f"LABEL#New{index:02d}" for index in range(50)),
        "RESULT",
    ]
    assert stored[-1]["status"] == "DONE"


def test_a_third_call_in_time_leaves_the_transaction_to_the_same_invocation(table: Any) -> None:
    # GIVEN the same store, and calls before the transaction that took 4 s of the 8
    store = fifty_labels()
    table.put_item(Item=claim(store.execution))
    stale_labels(table, store.message.url)

    # WHEN the store runs
    response = store_result(
        boto3.client("dynamodb", region_name=REGION), TABLE, store, clock=Clock(step=4.0)
    )

    # THEN it completes in one invocation: DONE with exactly the 50 new label items
    assert response.labels == [f"New{index:02d}" for index in range(50)]
    assert [item["sk"] for item in items(table)] == [
        *(f"LABEL#New{index:02d}" for index in range(50)),
        "RESULT",
    ]
