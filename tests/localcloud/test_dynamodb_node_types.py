"""``install_node_types_once``: a validator check builds the node types it processes once per
check, not at every node it visits, and every update answers as moto's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.parsing.validators import ActionCountValidator

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.dynamodb import install_node_types_once

EXPRESSION = "SET a = :a, b = if_not_exists(b, :zero) + :one REMOVE gone"


@pytest.fixture
def fixed() -> Iterator[None]:
    patches = PatchSet()
    install_node_types_once(patches)
    yield
    patches.restore()


class CountingCheck(ActionCountValidator):
    """moto's ActionCountValidator, counting how often its processing map is built."""

    def __init__(self) -> None:
        self.maps_built = 0

    def _processing_map(self) -> Any:
        self.maps_built += 1
        return super()._processing_map()


@pytest.mark.usefixtures("fixed")
def test_a_check_builds_its_processing_map_once_for_the_node_types() -> None:
    # GIVEN a parsed update expression of many nodes and one of moto's checks
    tree = UpdateExpressionParser.make(EXPRESSION)
    check = CountingCheck()
    # WHEN the check walks the tree
    check.traverse(tree)
    # THEN the map was built once for the node types and once for each of the 16 nodes the
    # check processes (UpdateExpression and its subclasses). moto alone also builds it at
    # each of the 25 nodes visited: 41.
    assert check.maps_built == 1 + 16


def _updates(table: Any) -> list[dict[str, Any]]:
    table.put_item(Item={"pk": "k", "gone": "x", "b": 1})
    answers = []
    for values in ({":a": "A", ":zero": 0, ":one": 1}, {":a": "B", ":zero": 5, ":one": 2}):
        answers.append(
            table.update_item(
                Key={"pk": "k"},
                UpdateExpression=EXPRESSION,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        )
    return answers


def _table() -> Any:
    dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
    return dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_updates_answer_as_moto_s_own() -> None:
    # GIVEN moto's answers to two updates
    with mock_aws():
        expected = _updates(_table())
    patches = PatchSet()
    install_node_types_once(patches)
    try:
        # WHEN the same updates run with the fix
        with mock_aws():
            answers = _updates(_table())
    finally:
        patches.restore()
    # THEN the items are the same
    assert answers == expected
    assert answers[1] == {"pk": "k", "a": "B", "b": 4}


def test_restoring_gives_moto_its_accessor_back() -> None:
    # GIVEN the fix installed
    accessor = DepthFirstTraverser.nodes_to_be_processed
    patches = PatchSet()
    install_node_types_once(patches)
    assert DepthFirstTraverser.nodes_to_be_processed is not accessor
    # WHEN restored / THEN it is moto's again
    patches.restore()
    assert DepthFirstTraverser.nodes_to_be_processed is accessor
