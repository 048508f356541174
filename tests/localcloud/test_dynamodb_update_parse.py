"""``install_parsed_update_expressions``: each UpdateExpression string is parsed once; and
``copy_tree``, the validator's copy of the parsed tree: every update still answers, writes and
fails exactly as moto's own."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.parsing import expressions, validators
from moto.dynamodb.parsing.ast_nodes import Node

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.dynamodb import copy_tree, install_parsed_update_expressions

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
    patches.replace(validators, "deepcopy", copy_tree)
    try:
        # WHEN the same updates run with each expression parsed once and copied by copy_tree
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


EXPRESSIONS = [
    COUNT,
    "SET a.b[2].c = list_append(if_not_exists(a.b[2].c, :none), :l), #x = :y - :z",
    "REMOVE a[1], a[3], b.c DELETE tags :gone",
    "ADD n :one",
]


def _nodes(tree: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(tree, Node):
        found.append(tree)
        for child in tree.children or []:
            found.extend(_nodes(child))
    return found


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_copy_tree_makes_the_copy_deepcopy_makes(expression: str) -> None:
    # GIVEN a parsed expression and deepcopy's copy of it
    tree = expressions.UpdateExpressionParser.make(expression)
    before = _shape(tree)
    expected = copy.deepcopy(tree)
    # WHEN copy_tree copies it
    copied = copy_tree(tree)
    # THEN the copy has deepcopy's shape and attributes, every node is new, every child's
    # parent is its parent in the copy, and the original is unchanged
    assert _shape(copied) == _shape(expected) == before
    assert [vars(n).keys() for n in _nodes(copied)] == [vars(n).keys() for n in _nodes(expected)]
    assert not {id(n) for n in _nodes(copied)} & {id(n) for n in _nodes(tree)}
    for node in _nodes(copied):
        assert all(child.parent is node for child in node.children or [] if isinstance(child, Node))
    assert copied.parent is None


def test_copy_tree_copies_a_node_reached_twice_once_and_values_as_deepcopy() -> None:
    # GIVEN a list holding the same node twice, and a DynamoType (not a node)
    node = expressions.UpdateExpressionParser.make("ADD n :one")
    value = DynamoType({"L": [{"S": "Cat"}]})
    # WHEN copied
    twice = copy_tree([node, node])
    value_copy = copy_tree(value)
    # THEN the node was copied once, and the value is deepcopy's equal, separate copy
    assert twice[0] is twice[1]
    assert twice[0] is not node
    assert value_copy == copy.deepcopy(value)
    assert value_copy is not value
    assert value_copy.value is not value.value


def test_the_validator_rebuilds_no_node_through_deepcopy(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN copy_tree as the validator's copy, and every object deepcopy rebuilds counted
    rebuilt: list[str] = []
    reconstruct = copy._reconstruct  # type: ignore[attr-defined]

    def counted(x: Any, memo: Any, func: Any, args: Any, *rest: Any, **kw: Any) -> Any:
        made = reconstruct(x, memo, func, args, *rest, **kw)
        rebuilt.append(type(made).__name__)
        return made

    monkeypatch.setattr(copy, "_reconstruct", counted)
    patches = PatchSet()
    patches.replace(validators, "deepcopy", copy_tree)
    try:
        # WHEN the updates run
        with mock_aws():
            _run_updates()
    finally:
        patches.restore()
    # THEN no expression node was rebuilt by deepcopy (moto alone: every node of every update)
    assert not [name for name in rebuilt if hasattr(expressions, name) or "Expression" in name]
