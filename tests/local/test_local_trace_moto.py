"""A trace of a history produced by moto's Step Functions interpreter, not written by hand."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
from moto import mock_aws

from tests.local.conftest import load_data
from tweetlens.trace import build_trace, render_svg, render_timeline

ROLE_ARN = "arn:aws:iam::123456789012:role/trace-test"


def _run(
    definition: dict[str, Any], execution_input: dict[str, Any]
) -> Sequence[Mapping[str, object]]:
    """Run one execution in moto (in-process, no network) and return its history events."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    dynamodb.create_table(
        TableName="claims",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="claims", Item={"pk": {"S": "taken"}})
    machine = sfn.create_state_machine(
        name="trace-test", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]
    execution = sfn.start_execution(
        stateMachineArn=machine, name="trace-run", input=json.dumps(execution_input)
    )["executionArn"]
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not finish in 30 s"
        time.sleep(0.05)
    return sfn.get_execution_history(executionArn=execution)["events"]


@mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
def test_trace_of_a_moto_execution_with_map_retry_and_catch(aws_credentials: None) -> None:
    # GIVEN a machine with a Map, a Task that retries once and a Catch leading to a Fail state
    definition: dict[str, Any] = load_data("trace_moto_claim.asl.json")

    # WHEN moto runs it on an already claimed key and the history is traced
    trace = build_trace(definition, _run(definition, {"pk": "taken", "tags": ["Cat", "Dog"]}))

    # THEN the Map ran twice, Claim retried once then was caught, and the Fail state ended it
    assert trace.status == "FAILED"
    visits = [(v.name, v.iteration, v.outcome, v.retries) for v in trace.visits]
    # Map iterations run concurrently, so their order in the history is not fixed.
    visits[2:4] = sorted(visits[2:4], key=lambda visit: visit[1] or 0)
    assert visits == [
        ("Prepare", None, "succeeded", 0),
        ("Tags", None, "succeeded", 0),
        ("Lower", 0, "succeeded", 0),
        ("Lower", 1, "succeeded", 0),
        ("Claim", None, "caught", 1),
        ("Claim Failed", None, "succeeded", 0),
        ("Failed", None, "failed", 0),
    ]
    assert trace.failed_state == "Claim"
    assert trace.error is not None
    assert trace.error.error == "DynamoDB.ConditionalCheckFailedException"
    assert trace.execution_error is not None
    assert trace.execution_error.error == "ClaimFailed"
    timeline = [line.split()[2:] for line in render_timeline(trace)[1:]]
    # The two Map iterations run concurrently: their lines may come in either order.
    timeline[2:4] = sorted(timeline[2:4])
    assert timeline == [
        ["Prepare", "succeeded"],
        ["Tags", "succeeded"],
        ["[0]", "Lower", "succeeded"],
        ["[1]", "Lower", "succeeded"],
        [
            "Claim",
            "caught",
            "DynamoDB.ConditionalCheckFailedException",
            "->",
            "Claim",
            "Failed",
            "retries=1",
        ],
        ["Claim", "Failed", "succeeded"],
        ["Failed", "failed", "ClaimFailed"],
    ]
    svg = render_svg(definition, trace)
    assert '<g id="state-claim" class="state taken caught failed retried"' in svg
    assert '<g id="state-done" class="state" data-state="Done">' in svg
