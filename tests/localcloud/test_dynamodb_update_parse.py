"""``install_parsed_update_expressions``: each UpdateExpression string is parsed once, and
every update still answers, writes and fails exactly as moto's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.parsing import expressions
from moto.dynamodb.parsing.ast_nodes import Node

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.dynamodb import install_parsed_update_expressions

COUNT = "SET #s = :s, hits = if_not_exists(hits, :zero) + :one ADD tags :tag REMOVE gone"
UPDATES: list[dict[str, Any]] = [
    {
        "UpdateExpression": COUNT,
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {
            ":s": {"S": "OPEN"},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":tag": {"SS": ["a"]},
        },
    },
    {
        "UpdateExpression": COUNT,
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {
            ":s": {"S": "DONE"},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":tag": {"SS": ["b"]},
        },
    },
    {
        "UpdateExpression": "SET labels = list_append(if_not_exists(labels, :none), :l)",
        "ExpressionAttributeValues": {":none": {"L": []}, ":l": {"L": [{"S": "Cat"}]}},
        "ConditionExpression": "attribute_exists(hits)",
    },
    {
        "UpdateExpression": "SET labels = list_append(if_not_exists(labels, :none), :l)",
        "ExpressionAttributeValues": {":none": {"L": []}, ":l": {"L": [{"S": "Dog"}]}},
        "ConditionExpression": "attribute_exists(hits)",
    },
    {
        # refused by its condition: nothing written
        "UpdateExpression": "SET #s = :s",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "LATE"}, ":done": {"S": "DONE"}},
        "ConditionExpression": "#s <> :done",
    },
    {
        # a placeholder the expression names but the request does not give
        "UpdateExpression": "SET missing = :nowhere",
    },
    {
        # not an expression at all, sent twice
        "UpdateExpression": "SET = = :s",
        "ExpressionAttributeValues": {":s": {"S": "x"}},
    },
    {
        "UpdateExpression": "SET = = :s",
        "ExpressionAttributeValues": {":s": {"S": "x"}},
    },
]


def _run_updates() -> list[Any]:
    """Every update above on one item, in order: each answer or error, then the item."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="results",
        KeySchema=[{"AttributeName": "url", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "url", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    outcomes: list[Any] = []
    for update in UPDATES:
        try:
            answer = dynamodb.update_item(
                TableName="results", Key={"url": {"S": "u"}}, ReturnValues="ALL_NEW", **update
            )
            outcomes.append(answer["Attributes"])
        except ClientError as error:
            outcomes.append((error.response["Error"]["Code"], error.response["Error"]["Message"]))
    transaction = {
        "Update": {"TableName": "results", "Key": {"url": {"S": "v"}}, **UPDATES[0]},
    }
    dynamodb.transact_write_items(TransactItems=[transaction])
    dynamodb.transact_write_items(TransactItems=[transaction])
    outcomes.append(dynamodb.scan(TableName="results")["Items"])
    return outcomes


def _shape(node: Any) -> Any:
    """A tree as nested tuples of node types and leaf values, to compare two trees by value."""
    if isinstance(node, Node):
        children = None if node.children is None else [_shape(c) for c in node.children]
        return (type(node).__name__, children)
    return repr(node)


@pytest.fixture
def tokenised(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every expression string moto's update-expression parser tokenises, in order."""
    seen: list[str] = []
    make_list: Callable[[str], Any] = expressions.ExpressionTokenizer.make_list

    def counted(expression: str) -> Any:
        seen.append(expression)
        return make_list(expression)

    monkeypatch.setattr(expressions.ExpressionTokenizer, "make_list", staticmethod(counted))
    return seen


@pytest.fixture
def parsed_once() -> Iterator[Any]:
    patches = PatchSet()
    try:
        yield install_parsed_update_expressions(patches)
    finally:
        patches.restore()


def test_updates_answer_write_and_fail_as_moto_s_own() -> None:
    # GIVEN what moto alone answers to the updates, its errors and the items they leave
    with mock_aws():
        expected = _run_updates()
    patches = PatchSet()
    install_parsed_update_expressions(patches)
    try:
        # WHEN the same updates run with each expression parsed once
        with mock_aws():
            outcomes = _run_updates()
    finally:
        patches.restore()
    # THEN every answer, every error and the items are the same
    assert outcomes == expected
    assert expected[1]["hits"] == {"N": "2"}
    assert expected[1]["tags"] == {"SS": ["a", "b"]}
    assert expected[3]["labels"] == {"L": [{"S": "Cat"}, {"S": "Dog"}]}
    assert expected[4][0] == "ConditionalCheckFailedException"
    assert expected[5][0] == "ValidationException"
    assert expected[6][0] == expected[7][0] == "ValidationException"


def test_an_expression_is_tokenised_once_however_often_it_runs(
    tokenised: list[str], parsed_once: Any
) -> None:
    # GIVEN the fix installed
    # WHEN the updates run (COUNT four times: twice alone, twice in a transaction)
    with mock_aws():
        _run_updates()
    # THEN COUNT was tokenised once (moto alone: twice per update) and the unparsable
    # expression each time it was sent (a failed parse is not kept)
    assert tokenised.count(COUNT) == 1
    assert tokenised.count("SET = = :s") == 2


def test_the_kept_tree_is_not_changed_by_the_updates_that_use_it(parsed_once: Any) -> None:
    # GIVEN the kept parse of COUNT and its shape before any update
    tree = expressions.UpdateExpressionParser.make(COUNT)
    before = _shape(tree)
    # WHEN the updates resolve and run it against items
    with mock_aws():
        _run_updates()
    # THEN the kept tree is the same object, of the same shape, with no value resolved into it
    assert expressions.UpdateExpressionParser.make(COUNT) is tree
    assert _shape(tree) == before
    assert "DDBTypedValue" not in repr(before)
