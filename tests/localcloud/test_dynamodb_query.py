"""``Query`` of a table's own key reads only that hash key's items, and answers as moto does.

moto in-process (``mock_aws``, no network) with the local cloud's DynamoDB fixes installed;
every answer is checked by value, and against moto's own answer without the fixes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from tweetlens.localcloud import dynamodb
from tweetlens.localcloud._patching import PatchSet

RANGED = "ranged"
FLAT = "flat"


def _create_tables(ddb: Any) -> None:
    ddb.create_table(
        TableName=RANGED,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "label", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-label",
                "KeySchema": [{"AttributeName": "label", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.create_table(
        TableName=FLAT,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    for url in ("u1", "u2", "u3"):
        for sk in ("RESULT", "LABEL#cat", "LABEL#dog", "POST#1"):
            ddb.put_item(
                TableName=RANGED,
                Item={"pk": {"S": url}, "sk": {"S": sk}, "label": {"S": f"{url}-{sk[:5]}"}},
            )
        ddb.put_item(TableName=FLAT, Item={"pk": {"S": url}, "n": {"N": "1"}})


@pytest.fixture
def ddb() -> Iterator[Any]:
    patches = PatchSet()
    with mock_aws():
        dynamodb.install(patches)
        try:
            client = boto3.client("dynamodb", region_name="us-east-1")
            _create_tables(client)
            yield client
        finally:
            patches.restore()


QUERIES: list[dict[str, Any]] = [
    {
        "TableName": RANGED,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": "u2"}, ":prefix": {"S": "LABEL#"}},
    },
    {
        "TableName": RANGED,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "u1"}},
        "ScanIndexForward": False,
        "Limit": 2,
    },
    {
        "TableName": RANGED,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "u1"}},
        "Limit": 2,
        "ExclusiveStartKey": {"pk": {"S": "u1"}, "sk": {"S": "LABEL#dog"}},
    },
    {
        "TableName": RANGED,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "absent"}},
    },
    {
        "TableName": RANGED,
        "IndexName": "by-label",
        "KeyConditionExpression": "label = :label",
        "ExpressionAttributeValues": {":label": {"S": "u3-RESUL"}},
    },
    {
        "TableName": FLAT,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "u3"}},
    },
]


def _answer(ddb: Any, query: dict[str, Any]) -> tuple[list[str], Any, int]:
    response = ddb.query(**query)
    keys = [f"{item['pk']['S']}/{item.get('sk', {}).get('S', '')}" for item in response["Items"]]
    return keys, response.get("LastEvaluatedKey"), response["ScannedCount"]


def test_query_by_hash_key_returns_that_keys_items_in_range_order(ddb: Any) -> None:
    # GIVEN three URLs with four items each
    # WHEN a URL's labels are queried
    keys, last, scanned = _answer(ddb, QUERIES[0])

    # THEN exactly its two label items come back, in range-key order
    assert keys == ["u2/LABEL#cat", "u2/LABEL#dog"]
    assert (last, scanned) == (None, 2)


def test_query_backwards_with_a_limit_pages_as_dynamodb_does(ddb: Any) -> None:
    # GIVEN / WHEN the first page of two, newest range key first
    keys, last, scanned = _answer(ddb, QUERIES[1])

    # THEN the two highest range keys and the key to continue from
    assert keys == ["u1/RESULT", "u1/POST#1"]
    assert last == {"pk": {"S": "u1"}, "sk": {"S": "POST#1"}}
    assert scanned == 2


def test_query_from_an_exclusive_start_key_continues_after_it(ddb: Any) -> None:
    # GIVEN / WHEN a page of two after LABEL#dog
    keys, last, scanned = _answer(ddb, QUERIES[2])

    # THEN the items after it, and no further page
    assert keys == ["u1/POST#1", "u1/RESULT"]
    assert (last, scanned) == (None, 2)


def test_query_of_an_absent_hash_key_is_empty_and_adds_nothing(ddb: Any) -> None:
    # GIVEN / WHEN a hash key no item has is queried
    keys, last, scanned = _answer(ddb, QUERIES[3])

    # THEN nothing comes back, and the table still holds its twelve items
    assert (keys, last, scanned) == ([], None, 0)
    assert ddb.scan(TableName=RANGED, Select="COUNT")["Count"] == 12


def test_index_and_hash_only_queries_answer_as_before(ddb: Any) -> None:
    # GIVEN / WHEN an index is queried, and a table without a range key
    by_label = _answer(ddb, QUERIES[4])
    flat = _answer(ddb, QUERIES[5])

    # THEN each finds its one item
    assert by_label == (["u3/RESULT"], None, 1)
    assert flat == (["u3/"], None, 1)


def test_every_answer_is_moto_s_own() -> None:
    # GIVEN the same tables in moto with the fixes, and without
    def answers(fixed: bool) -> list[tuple[list[str], Any, int]]:
        patches = PatchSet()
        with mock_aws():
            if fixed:
                dynamodb.install(patches)
            try:
                client = boto3.client("dynamodb", region_name="us-east-1")
                _create_tables(client)
                return [_answer(client, query) for query in QUERIES]
            finally:
                patches.restore()

    # WHEN every query runs in both
    with_fixes, without = answers(True), answers(False)

    # THEN the answers are the same, and the fixes were undone afterwards
    assert with_fixes == without
    assert not hasattr(Table.query, "__wrapped__")


def test_a_table_query_walks_only_the_queried_hash_keys_items(
    ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a record of how many items moto's query walks (Table.all_items)
    walked: list[int] = []
    original = Table.all_items

    def all_items(table: Table) -> Any:
        items = original(table)
        walked.append(len(items))
        return items

    monkeypatch.setattr(Table, "all_items", all_items)

    # WHEN one URL of three is queried
    keys, _, _ = _answer(ddb, QUERIES[0])

    # THEN moto walked that URL's four items, not the table's twelve
    assert keys == ["u2/LABEL#cat", "u2/LABEL#dog"]
    assert walked == [4]
