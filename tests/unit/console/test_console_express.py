"""The Executions page over an EXPRESS workflow: Step Functions lists none of its executions,
so the console reads them from the workflow's log group when it logs ALL, and says why they
are missing when it logs less."""

from __future__ import annotations

import json
import re
import time

import pytest
from flask.testing import FlaskClient

from tests.unit.console.console_testkit import ACCOUNT, REGION, Stack
from tweetlens.console import data

LOG_GROUP = "/aws/vendedlogs/states/classify-image-express"
DEFINITION = {"StartAt": "Fetch Image", "States": {"Fetch Image": {"Type": "Pass", "End": True}}}
# Express execution ids are UUIDs; these are two, of a name shared by two executions.
FIRST_ID = "6e3aeb36-42e4-4104-af2a-07f148537475"
SECOND_ID = "9329d97c-f5a1-47b5-9ef3-06994bb22c9a"
NAME = "d725ff21e1a7ecfc780d6cd774d45bbee396efcbe073c53c2c6bdd457bf80bee"


def express_machine(stack: Stack, level: str) -> str:
    """An EXPRESS ClassifyImage logging at ``level`` to its group, in place of the STANDARD one."""
    logs = stack.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:*"
    machine = stack.client("stepfunctions").create_state_machine(
        name="classify-image-express",
        definition=json.dumps(DEFINITION),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/states",
        type="EXPRESS",
        loggingConfiguration={
            "level": level,
            "includeExecutionData": level == "ALL",
            "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}],
        },
    )["stateMachineArn"]
    stack.deployed.resources["ClassifyImageStateMachine"] = machine
    return str(machine)


def log_execution(stack: Stack, machine: str, execution_id: str, *, failed: bool, at: int) -> str:
    """One Express execution's records at level ALL (AWS's format), ``at`` seconds apart."""
    arn = machine.replace(":stateMachine:", ":express:") + f":{NAME}:{execution_id}"
    # CloudWatch Logs refuses events older than 14 days: a minute ago, then ``at`` seconds on.
    millis = int(time.time() * 1_000) - 60_000 + at * 1_000
    ended = (
        ("ExecutionFailed", {"error": "ImageNotFound", "cause": "'localhost' answered 404"})
        if failed
        else ("ExecutionSucceeded", {"output": "{}"})
    )
    steps = [
        ("ExecutionStarted", {"input": json.dumps({"message": {"url": "https://x/a.jpg"}})}),
        ("PassStateEntered", {"name": "Fetch Image", "input": "{}"}),
        ("PassStateExited", {"name": "Fetch Image", "output": "{}"}),
        ended,
    ]
    records = [
        {
            "timestamp": millis + index,
            "message": json.dumps(
                {
                    "id": str(index + 1),
                    "type": event_type,
                    "details": details,
                    "previous_event_id": str(index),
                    "event_timestamp": str(millis + index),
                    "execution_arn": arn,
                    "redrive_count": "0",
                }
            ),
        }
        for index, (event_type, details) in enumerate(steps)
    ]
    stream = f"states/classify-image-express/{execution_id[:8]}"
    logs = stack.client("logs")
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=records)
    return arn


def rows(page: str) -> list[tuple[str, str]]:
    """(status, link) of each row of the executions table."""
    return re.findall(r'<tr data-status="(\w+)">\s*<td><a href="([^"]+)"', page)


def test_logging_all_lists_express_executions_newest_first(
    client: FlaskClient, stack: Stack
) -> None:
    # GIVEN an EXPRESS workflow logging ALL, and two executions of one name in its logs
    machine = express_machine(stack, "ALL")
    log_execution(stack, machine, FIRST_ID, failed=True, at=0)
    log_execution(stack, machine, SECOND_ID, failed=False, at=5)

    # WHEN the Executions page is opened, all and by status
    every = client.get("/executions").text
    failed = client.get("/executions", query_string={"status": "FAILED"}).text

    # THEN it says where they come from, and lists each by name and id, newest first
    assert 'id="express-logged"' in every
    assert rows(every) == [
        ("SUCCEEDED", f"/executions/{NAME}:{SECOND_ID}"),
        ("FAILED", f"/executions/{NAME}:{FIRST_ID}"),
    ]
    assert rows(failed) == [("FAILED", f"/executions/{NAME}:{FIRST_ID}")]


def test_an_express_execution_is_drawn_from_its_logs(client: FlaskClient, stack: Stack) -> None:
    # GIVEN a failed Express execution in the logs of an EXPRESS workflow logging ALL
    machine = express_machine(stack, "ALL")
    log_execution(stack, machine, FIRST_ID, failed=True, at=0)

    # WHEN its page and its drawing are opened by name and id
    page = client.get(f"/executions/{NAME}:{FIRST_ID}")
    drawing = client.get(f"/executions/{NAME}:{FIRST_ID}/trace.svg")

    # THEN both are served, with its status and its error
    assert page.status_code == 200
    assert 'id="execution-status">FAILED<' in page.text
    assert 'id="error-name">ImageNotFound<' in page.text
    assert f'src="/executions/{NAME}:{FIRST_ID}/trace.svg"' in page.text
    assert (drawing.status_code, drawing.mimetype) == (200, "image/svg+xml")


def test_express_pages_follow_by_offset(stack: Stack) -> None:
    # GIVEN three Express executions logged at ALL
    machine = express_machine(stack, "ALL")
    third = "0b1c2d3e-0000-4000-8000-000000000000"
    for at, execution_id in enumerate((FIRST_ID, SECOND_ID, third)):
        log_execution(stack, machine, execution_id, failed=False, at=at)

    # WHEN they are listed two at a time
    first = data.executions(stack.deployed, limit=2)
    second = data.executions(stack.deployed, token=first.next_token, limit=2)

    # THEN the second page holds the oldest, and says there is nothing after it
    assert [row.ref.split(":")[1] for row in first.rows + second.rows] == [
        third,
        SECOND_ID,
        FIRST_ID,
    ]
    assert (first.next_token, second.next_token) == ("2", None)


@pytest.mark.parametrize("token", ["x", "-1", "1" * 10])
def test_a_bad_express_page_token_is_a_bad_request(
    client: FlaskClient, stack: Stack, token: str
) -> None:
    # GIVEN an EXPRESS workflow logging ALL WHEN a page token that is no offset is sent
    express_machine(stack, "ALL")
    # THEN it is refused
    assert client.get("/executions", query_string={"token": token}).status_code == 400


@pytest.mark.parametrize("level", ["ERROR", "FATAL", "OFF"])
def test_below_all_the_page_says_why_express_executions_are_missing(
    client: FlaskClient, stack: Stack, level: str
) -> None:
    # GIVEN an EXPRESS workflow logging below ALL, with a failure in its logs
    machine = express_machine(stack, level)
    log_execution(stack, machine, FIRST_ID, failed=True, at=0)

    # WHEN the Executions page is opened
    page = client.get("/executions").text

    # THEN it lists nothing and says why, and what to deploy to see them
    assert rows(page) == []
    note = re.search(r'<p class="note" id="express-unlisted">([^<]+)</p>', page)
    assert note is not None
    assert note.group(1) == (
        "This stack&#39;s workflow is EXPRESS: Step Functions does not list Express executions, "
        f"and this stack logs them at {level}, which does not record every execution (ERROR "
        "keeps only failures, without their path). Deploy with ExpressLogLevel=ALL to see every "
        "execution here (its logs then hold the post text, and cost CloudWatch Logs ingestion), "
        "or with WorkflowType=STANDARD to have them listed."
    )


def test_executions_days_apart_are_all_listed(stack: Stack) -> None:
    # GIVEN one Express execution logged two days ago and one a minute ago (the log group is
    # read backwards from now, in windows that double)
    machine = express_machine(stack, "ALL")
    log_execution(stack, machine, FIRST_ID, failed=True, at=-2 * 86_400)
    log_execution(stack, machine, SECOND_ID, failed=False, at=0)

    # WHEN they are listed, all and failed only
    every = data.executions(stack.deployed)
    failed = data.executions(stack.deployed, status="FAILED")

    # THEN both are found, newest first, and the filter finds the old failure
    assert [(row.status, row.ref) for row in every.rows] == [
        ("SUCCEEDED", f"{NAME}:{SECOND_ID}"),
        ("FAILED", f"{NAME}:{FIRST_ID}"),
    ]
    assert [row.ref for row in failed.rows] == [f"{NAME}:{FIRST_ID}"]
    assert every.next_token is None
