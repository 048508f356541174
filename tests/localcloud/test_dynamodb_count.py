"""``Scan`` with ``Select=COUNT`` counts the stored items without copying them, and answers
as moto does. moto in-process (``mock_aws``, no network) with the DynamoDB fixes installed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import Item

from tweetlens.localcloud import dynamodb
from tweetlens.localcloud._patching import PatchSet

TABLE = "results"
COUNT_DONE: dict[str, Any] = {
    "TableName": TABLE,
    "Select": "COUNT",
    "FilterExpression": "#s = :done",
    "ExpressionAttributeNames": {"#s": "status"},
    "ExpressionAttributeValues": {":done": {"S": "DONE"}},
}


def _fill(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    for n in range(9):
        client.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": f"u{n}"},
                "status": {"S": "DONE" if n % 3 else "IN_PROGRESS"},
                "labels": {"L": [{"M": {"name": {"S": "Cat"}, "confidence": {"N": "99.1"}}}]},
            },
        )


@pytest.fixture
def ddb() -> Iterator[Any]:
    patches = PatchSet()
    with mock_aws():
        dynamodb.install(patches)
        try:
            client = boto3.client("dynamodb", region_name="us-east-1")
            _fill(client)
            yield client
        finally:
            patches.restore()


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The items moto deep-copies, by key."""
    made: list[str] = []
    original = Item.__deepcopy__

    def deepcopy(item: Item, memo: dict[int, Any]) -> Any:
        made.append(item.hash_key.value)
        return original(item, memo)

    monkeypatch.setattr(Item, "__deepcopy__", deepcopy)
    return made


def test_a_counting_scan_counts_without_copying(ddb: Any, copies: list[str]) -> None:
    # GIVEN nine results, six of them DONE
    # WHEN the DONE ones are counted
    response = ddb.scan(**COUNT_DONE)

    # THEN six of nine, and no item was copied to count them
    assert (response["Count"], response["ScannedCount"]) == (6, 9)
    assert "Items" not in response
    assert copies == []


def test_a_paged_counting_scan_pages_as_before(ddb: Any) -> None:
    # GIVEN / WHEN the DONE ones are counted four items at a time
    pages = list(ddb.get_paginator("scan").paginate(**COUNT_DONE, Limit=4))

    # THEN three pages in key order (u0-u3, u4-u7, u8), the six DONE among them
    assert [(page["Count"], page["ScannedCount"]) for page in pages] == [(2, 4), (3, 4), (1, 1)]


def test_a_scan_returning_items_still_copies_them(ddb: Any, copies: list[str]) -> None:
    # GIVEN / WHEN the DONE items themselves are scanned for
    scan = {key: value for key, value in COUNT_DONE.items() if key != "Select"}
    response = ddb.scan(**scan)

    # THEN the six come back, each from a copy of the stored item (as moto does)
    assert sorted(item["pk"]["S"] for item in response["Items"]) == [
        "u1",
        "u2",
        "u4",
        "u5",
        "u7",
        "u8",
    ]
    assert len(copies) == 9


def test_counts_are_moto_s_own() -> None:
    # GIVEN the same table in moto with the fixes, and without
    def counts(fixed: bool) -> list[tuple[int, int]]:
        patches = PatchSet()
        with mock_aws():
            if fixed:
                dynamodb.install(patches)
            try:
                client = boto3.client("dynamodb", region_name="us-east-1")
                _fill(client)
                pages = client.get_paginator("scan").paginate(**COUNT_DONE, Limit=4)
                return [(page["Count"], page["ScannedCount"]) for page in pages]
            finally:
                patches.restore()

    # WHEN / THEN both count alike
    assert counts(True) == counts(False)
