"""A cancelled transaction leaves every table exactly as it was, with the copy-on-write snapshot.

moto in-process (``mock_aws``, no network) with the local cloud's DynamoDB fixes installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tweetlens.localcloud import dynamodb
from tweetlens.localcloud._patching import PatchSet

RANGED = "ranged"
FLAT = "flat"


@pytest.fixture
def client() -> Iterator[Any]:
    patches = PatchSet()
    with mock_aws():
        dynamodb.install(patches)
        try:
            ddb = boto3.client(
                "dynamodb",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            ddb.create_table(
                TableName=RANGED,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
            )
            ddb.create_table(
                TableName=FLAT,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            )
            yield ddb
        finally:
            patches.restore()


def _everything(ddb: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        table: sorted(
            ddb.scan(TableName=table, ConsistentRead=True)["Items"],
            key=lambda item: (item["pk"]["S"], item.get("sk", {}).get("S", "")),
        )
        for table in (RANGED, FLAT)
    }


def _seed(ddb: Any) -> None:
    for n in range(5):
        ddb.put_item(
            TableName=RANGED, Item={"pk": {"S": "url"}, "sk": {"S": f"L#{n}"}, "n": {"N": str(n)}}
        )
        ddb.put_item(TableName=FLAT, Item={"pk": {"S": f"k{n}"}, "v": {"S": "old"}})
    ddb.put_item(
        TableName=RANGED, Item={"pk": {"S": "url"}, "sk": {"S": "RESULT"}, "v": {"S": "old"}}
    )


def test_a_cancelled_transaction_undoes_its_puts_updates_and_deletes(client: Any) -> None:
    # GIVEN items in a table with a range key and in one without
    _seed(client)
    before = _everything(client)
    # WHEN a transaction puts, updates and deletes in both, then fails its last condition
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": RANGED, "Item": {"pk": {"S": "url"}, "sk": {"S": "L#9"}}}},
                {
                    "Update": {
                        "TableName": RANGED,
                        "Key": {"pk": {"S": "url"}, "sk": {"S": "RESULT"}},
                        "UpdateExpression": "SET v = :new",
                        "ExpressionAttributeValues": {":new": {"S": "new"}},
                    }
                },
                {"Delete": {"TableName": RANGED, "Key": {"pk": {"S": "url"}, "sk": {"S": "L#0"}}}},
                {
                    "Update": {
                        "TableName": FLAT,
                        "Key": {"pk": {"S": "k1"}},
                        "UpdateExpression": "SET v = :new",
                        "ExpressionAttributeValues": {":new": {"S": "new"}},
                    }
                },
                {"Delete": {"TableName": FLAT, "Key": {"pk": {"S": "k2"}}}},
                {
                    "ConditionCheck": {
                        "TableName": FLAT,
                        "Key": {"pk": {"S": "k3"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    # THEN it is cancelled, and both tables hold exactly what they held before
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _everything(client) == before


def test_a_cancelled_transaction_leaves_later_writes_independent(client: Any) -> None:
    # GIVEN a transaction cancelled after updating an item in place
    _seed(client)
    key = {"pk": {"S": "url"}, "sk": {"S": "RESULT"}}
    with pytest.raises(ClientError):
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": RANGED,
                        "Key": key,
                        "UpdateExpression": "SET v = :new",
                        "ExpressionAttributeValues": {":new": {"S": "lost"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": FLAT,
                        "Key": {"pk": {"S": "k0"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    # WHEN the restored items are written again, one by one and in a committed transaction
    client.update_item(
        TableName=RANGED,
        Key=key,
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "kept"}},
    )
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": RANGED, "Item": {"pk": {"S": "url"}, "sk": {"S": "L#7"}}}},
            {"Delete": {"TableName": FLAT, "Key": {"pk": {"S": "k4"}}}},
        ]
    )
    # THEN every write shows, and nothing of the cancelled one
    result = client.get_item(TableName=RANGED, Key=key, ConsistentRead=True)["Item"]
    assert result["v"] == {"S": "kept"}
    ranged = _everything(client)[RANGED]
    assert [item["sk"]["S"] for item in ranged] == [f"L#{n}" for n in range(5)] + [
        "L#7",
        "RESULT",
    ]
    assert [item["pk"]["S"] for item in _everything(client)[FLAT]] == ["k0", "k1", "k2", "k3"]


def test_a_transaction_naming_an_unknown_table_is_refused_as_moto_refuses_it(client: Any) -> None:
    # GIVEN a transaction whose keys cannot be read against a table (it does not exist)
    _seed(client)
    before = _everything(client)
    # WHEN it runs (the snapshot falls back to moto's full copy)
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": FLAT, "Item": {"pk": {"S": "k9"}}}},
                {"Put": {"TableName": "missing", "Item": {"pk": {"S": "x"}}}},
            ]
        )
    # THEN moto's answer stands and nothing was written
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert _everything(client) == before
