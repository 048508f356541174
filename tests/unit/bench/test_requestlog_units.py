"""DynamoDB request units as AWS bills them, estimated from the items on the wire."""

from __future__ import annotations

import json

import pytest

from tweetlens.localcloud.requestlog import dynamodb_units, item_size


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_item_size_counts_names_and_values() -> None:
    # "pk"(2) + "abc"(3), "n"(1) + 123 (3 digits -> 3 bytes), "b"(1) + true(1)
    assert item_size({"pk": {"S": "abc"}, "n": {"N": "123"}, "b": {"BOOL": True}}) == 11


@pytest.mark.parametrize(
    ("action", "sent", "answer", "status", "units"),
    [
        ("PutItem", {"Item": {"pk": {"S": "x" * 2000}}}, {}, 200, (0.0, 2.0)),
        ("UpdateItem", {"Key": {"pk": {"S": "k"}}}, {}, 200, (0.0, 1.0)),
        (
            "UpdateItem",
            {"Key": {"pk": {"S": "k"}}},
            {"__type": "x#ConditionalCheckFailedException"},
            400,
            (0.0, 1.0),
        ),
        (
            "PutItem",
            {"Item": {"pk": {"S": "k"}}},
            {"__type": "x#ThrottlingException"},
            400,
            (0.0, 0.0),
        ),
        (
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"Item": {"pk": {"S": "a"}}}},
                    {"Delete": {"Key": {"pk": {"S": "b"}}}},
                ]
            },
            {},
            200,
            (0.0, 4.0),
        ),
        ("GetItem", {"Key": {}}, {"Item": {"pk": {"S": "a"}}}, 200, (0.5, 0.0)),
        ("GetItem", {"Key": {}, "ConsistentRead": True}, {}, 200, (1.0, 0.0)),
        (
            "BatchGetItem",
            {"RequestItems": {"T": {"Keys": []}}},
            {"Responses": {"T": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}]}},
            200,
            (1.0, 0.0),
        ),
        ("Query", {}, {"Items": [{"pk": {"S": "x" * 5000}}]}, 200, (1.0, 0.0)),
    ],
)
def test_units_per_request(
    action: str,
    sent: dict[str, object],
    answer: dict[str, object],
    status: int,
    units: tuple[float, float],
) -> None:
    assert dynamodb_units(action, _body(sent), _body(answer), status) == units
