"""`tweetlens results`, `trace` and `dlq` against a running local cloud, found by its state file.

The module shares one stack (see ``running_stack``): the producer's recorded demo stream has
been classified, and its five broken photos wait on the workflow dead-letter queue. The
redrive test that changes that state comes last in the file.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from common.messages import PhotoMessage
from tests.cli.cli_testkit import (
    RunningStack,
    execution_name,
    run_cli,
    state_file_runner,
    table_header,
    table_rows,
)
from tweetlens.stack import write_local_state

pytestmark = pytest.mark.integration

# The demo stream's broken photos (fault name on the image server) and the error each ends with.
FAULTS = {
    "404": "ImageNotFound",
    "410": "ImageNotFound",
    "not-an-image": "UnsupportedImageType",
    "redirect-private": "BlockedUrl",
    "too-large": "ImageTooLarge",
}
DEAD_LETTER_FIELDS = {
    "body",
    "copy_of",
    "error",
    "message_id",
    "queue",
    "reason",
    "receive_count",
    "route",
    "sent_at",
    "source_message_id",
    "superseded_by",
}


def _plain(raw: dict[str, Any]) -> dict[str, Any]:
    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in raw.items()}


def _table_items(stack: RunningStack) -> list[dict[str, Any]]:
    """Every item of ResultsTable, read with boto3 directly, not through the CLI's library."""
    pages = (
        stack.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=stack.resource("ResultsTable"))
    )
    return [_plain(raw) for page in pages for raw in page["Items"]]


def _result_items(stack: RunningStack) -> dict[str, dict[str, Any]]:
    return {item["pk"]: item for item in _table_items(stack) if item["sk"] == "RESULT"}


def _queue_depths(stack: RunningStack) -> dict[str, int]:
    sqs = stack.client("sqs")
    depths: dict[str, int] = {}
    for logical_id in ("CatsQueue", "DogsQueue", "WorkflowDeadLetterQueue"):
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.resource(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depths[logical_id] = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
    return depths


def _dead_letters_json(stack: RunningStack) -> list[dict[str, Any]]:
    result = run_cli(stack.runner(), "dlq", "list", "--json")
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


# -- results -------------------------------------------------------------------------------


def test_results_table_lists_every_image(running_stack: RunningStack) -> None:
    # GIVEN the classified demo stream
    expected = _result_items(running_stack)

    # WHEN results are listed as a table
    result = run_cli(running_stack.runner(), "results")

    # THEN there is one row per result item, with its status and route, and a count
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert table_header(result.stdout) == ["status", "route", "labels", "url"]
    assert sorted((row[3], row[0], row[1]) for row in table_rows(result.stdout)) == sorted(
        (url, item["status"], item["route"]) for url, item in expected.items()
    )
    assert result.stdout.splitlines()[-1] == f"{len(expected)} image(s)"


def test_results_table_in_a_narrow_terminal_wraps_urls_whole(running_stack: RunningStack) -> None:
    # GIVEN a terminal 80 columns wide, narrower than the URLs
    expected = _result_items(running_stack)

    # WHEN results are listed as a table
    result = run_cli(running_stack.runner(COLUMNS="80"), "results")

    # THEN every URL is folded over lines but never cut: joined back, each is whole
    assert result.exit_code == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    urls: list[str] = []
    for row in table_rows(result.stdout):
        if row[0]:
            urls.append(row[3])
        else:
            urls[-1] += row[3]
    assert sorted(urls) == sorted(expected)


def test_results_json_has_one_object_per_image(running_stack: RunningStack) -> None:
    # GIVEN the classified demo stream: its five broken photos failed, the rest are done
    expected = _result_items(running_stack)
    failed = {running_stack.fault_url(fault): error for fault, error in FAULTS.items()}

    # WHEN results are listed as JSON lines
    result = run_cli(running_stack.runner(), "results", "--json")

    # THEN each line is one result item, sorted by URL, with the table's status and error
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["url"] for line in lines] == sorted(expected)
    assert {line["url"]: line["status"] for line in lines} == {
        url: item["status"] for url, item in expected.items()
    }
    assert {line["url"]: line["error"] for line in lines if line["status"] == "FAILED"} == failed


def test_results_by_label_json_matches_the_label_items(running_stack: RunningStack) -> None:
    # GIVEN the label items stored for Cat: the cat photo and the flaky URL serving it
    cats = sorted(
        (
            {
                "url": item["pk"],
                "label": item["label"],
                "confidence": float(item["confidence"]),
                "post_id": item["post_id"],
                "route": item["route"],
            }
            for item in _table_items(running_stack)
            if item["sk"] == "LABEL#Cat"
        ),
        key=lambda hit: hit["url"],
    )
    assert [hit["url"] for hit in cats] == sorted(
        [running_stack.flaky_url(), running_stack.media_url("chelsea")]
    )

    # WHEN results are queried by label as JSON
    result = run_cli(running_stack.runner(), "results", "--label", "Cat", "--json")

    # THEN each line is one of those items
    assert result.exit_code == 0, result.stderr
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(hits, key=lambda hit: hit["url"]) == cats


def test_results_by_label_table_counts_the_images(running_stack: RunningStack) -> None:
    # GIVEN two images labelled Cat
    # WHEN results are queried by label as a table
    result = run_cli(running_stack.runner(), "results", "--label", "Cat", "--min-confidence", "50")

    # THEN the table is titled by the label and has both images
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "Images labelled Cat"
    assert table_header(result.stdout) == ["confidence", "route", "post", "url"]
    assert sorted(row[3] for row in table_rows(result.stdout)) == sorted(
        [running_stack.flaky_url(), running_stack.media_url("chelsea")]
    )
    assert lines[-1] == "2 image(s)"


def test_results_by_a_label_nobody_has_is_empty(running_stack: RunningStack) -> None:
    # GIVEN a demo stream with no dog photo at all
    # WHEN results are queried for Dog
    result = run_cli(running_stack.runner(), "results", "--label", "Dog", "--json")

    # THEN nothing is printed, and the command succeeds
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == ""


def test_results_without_a_running_cloud_is_one_clear_line(tmp_path: Path) -> None:
    # GIVEN a state file path where no `tweetlens up` wrote one
    missing = tmp_path / "local-cloud.json"

    # WHEN results are asked for
    result = run_cli(state_file_runner(missing), "results")

    # THEN one line says what to do, and the exit code is 1
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: no local cloud is running (no {missing}); start one with `tweetlens up`, "
        "or pass --stack-name to inspect a stack in AWS\n"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "JSONDecodeError: Expecting property name enclosed in double quotes"),
        ('{"region": "us-east-1"}', "KeyError: 'endpoint_url'"),
    ],
    ids=["not-json", "not-a-state-file"],
)
def test_results_with_a_broken_state_file_is_one_clear_line(
    tmp_path: Path, content: str, problem: str
) -> None:
    # GIVEN a state file that a crash cut short, or that is not one
    state_file = tmp_path / "local-cloud.json"
    state_file.write_text(content, encoding="utf-8")

    # WHEN results are asked for
    result = run_cli(state_file_runner(state_file), "results")

    # THEN one line names the file and says what to do
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"Error: {state_file} is not a local cloud state file ({problem}"
    )
    assert result.stderr.endswith(
        "); delete it and start the local cloud again with `tweetlens up`\n"
    )
    assert result.stderr.count("\n") == 1


# moto's own CloudFormation creates this stack: it skips the resource types it lacks with a
# warning (the local cloud's deploy reports those itself), which is expected here.
@pytest.mark.filterwarnings("ignore:Tried to parse")
def test_results_with_stack_name_reads_the_stack_through_cloudformation(
    running_stack: RunningStack,
) -> None:
    # GIVEN boto3 pointed at the local emulator, as at any AWS endpoint, with fake credentials
    runner = running_stack.runner(**_emulator_as_aws(running_stack))

    # WHEN results are asked for by stack name instead of the state file
    by_name = run_cli(runner, "results", "--json", "--stack-name", "tweetlens-local")
    by_state = run_cli(running_stack.runner(), "results", "--json")

    # THEN the stack's resources are found through CloudFormation and the output is the same
    assert by_name.exit_code == 0, by_name.stderr
    assert by_name.stdout == by_state.stdout


def test_results_with_an_unknown_stack_name_is_one_clear_line(running_stack: RunningStack) -> None:
    # GIVEN boto3 pointed at the local emulator (never at AWS), where no such stack exists
    runner = running_stack.runner(**_emulator_as_aws(running_stack))

    # WHEN results are asked for by that stack name
    result = run_cli(runner, "results", "--stack-name", "no-such-stack", "--region", "us-east-1")

    # THEN CloudFormation's answer is one line
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: cannot read stack 'no-such-stack' in us-east-1: An error occurred "
        "(ValidationError) when calling the ListStackResources operation: "
        "Stack with id no-such-stack does not exist\n"
    )


def _emulator_as_aws(stack: RunningStack) -> dict[str, str | None]:
    return {
        "AWS_ENDPOINT_URL": stack.pipeline.cloud.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
    }


def test_results_when_the_cloud_has_stopped_is_one_quick_line(tmp_path: Path) -> None:
    # GIVEN a state file left behind by a `tweetlens up` that was killed: nothing listens there
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state_file = tmp_path / "local-cloud.json"
    write_local_state(
        state_file,
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        resources={"ResultsTable": "tweetlens-local-ResultsTable"},
    )

    # WHEN results are asked for
    started = time.monotonic()
    result = run_cli(state_file_runner(state_file), "results")

    # THEN one line says nothing answers, without retrying for long
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f'Error: Could not connect to the endpoint URL: "http://127.0.0.1:{port}/": '
        "nothing answers there (a local cloud whose `tweetlens up` has stopped?)\n"
    )
    assert time.monotonic() - started < 10


# -- trace ---------------------------------------------------------------------------------

# The states each path must go through, in this order (others, like input checks, may come
# between them: the state machine evolves, the path's milestones do not).
MILESTONES = {
    "SUCCEEDED": ["Claim Image", "Fetch Image", "Detect Labels", "Store Result"],
    # A failed execution ends in the failing state; the closer dead-letters it afterwards.
    "FAILED": ["Claim Image", "Fetch Image"],
}


def _timeline_states(lines: list[str]) -> list[str]:
    """State names of top-level timeline rows (`+0.013s  0.073s  Name  outcome`), in order."""
    states: list[str] = []
    for line in lines:
        # The offset is right-aligned: "   +0.5s" and "  +16.6s" are both rows.
        if not line.lstrip().startswith("+"):
            continue
        name_and_outcome = line.split(None, 2)[2]
        if name_and_outcome.startswith("["):
            continue  # an iteration of a Map state, indented under it
        states.append(name_and_outcome.rsplit("  ", 1)[0].strip())
    return states


def _in_order(milestones: list[str], states: list[str]) -> bool:
    remaining = iter(states)
    return all(milestone in remaining for milestone in milestones)


@pytest.mark.parametrize(
    ("photo", "status", "first_line_end"),
    [
        ("media:chelsea", "SUCCEEDED", ""),
        ("fault:404", "FAILED", "; failed at 'Fetch Image': ImageNotFound"),
    ],
    ids=["classified", "failed"],
)
def test_trace_prints_the_timeline_and_writes_the_drawing(
    running_stack: RunningStack, tmp_path: Path, photo: str, status: str, first_line_end: str
) -> None:
    # GIVEN the execution of one photo of the demo stream, named as the contract says
    kind, name = photo.split(":")
    url = running_stack.media_url(name) if kind == "media" else running_stack.fault_url(name)
    html = tmp_path / "trace.html"

    # WHEN it is traced by name
    result = run_cli(running_stack.runner(), "trace", execution_name(url), "--html", str(html))

    # THEN the timeline shows its status and the states it went through, in order
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Execution {status} in ")
    assert lines[0].endswith(first_line_end)
    states = _timeline_states(lines)
    assert _in_order(MILESTONES[status], states), " | ".join(states)
    assert states[-1] == MILESTONES[status][-1]
    # AND the drawn trace is written where asked, an HTML page with the graph as SVG
    assert lines[-1] == f"Drawn trace: {html}"
    assert "<svg" in html.read_text(encoding="utf-8")


def test_trace_by_arn_writes_to_out_by_default(running_stack: RunningStack) -> None:
    # GIVEN the ARN of a failed execution, and a working directory with no out/ folder
    name = execution_name(running_stack.fault_url("too-large"))
    machine = running_stack.resource("ClassifyImageStateMachine")
    arn = machine.replace(":stateMachine:", ":execution:") + ":" + name
    runner = running_stack.runner()

    with runner.isolated_filesystem():
        # WHEN it is traced without --html
        result = run_cli(runner, "trace", arn)

        # THEN the drawing goes to out/trace-<execution name>.html
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines()[0].endswith("; failed at 'Fetch Image': ImageTooLarge")
        assert result.stdout.splitlines()[-1] == f"Drawn trace: out/trace-{name}.html"
        assert "<svg" in Path("out", f"trace-{name}.html").read_text(encoding="utf-8")


def test_trace_of_an_unknown_execution_is_one_clear_line(running_stack: RunningStack) -> None:
    # GIVEN an execution name no state machine of the stack has
    # WHEN it is traced
    result = run_cli(running_stack.runner(), "trace", "no-such-execution")

    # THEN one line says so, naming where it looked
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: no execution named 'no-such-execution' in local cloud at "
        f"{running_stack.pipeline.cloud.endpoint_url}\n"
    )


def test_trace_of_an_unknown_arn_is_one_clear_line(running_stack: RunningStack) -> None:
    # GIVEN an execution ARN of the stack's state machine that never ran
    machine = running_stack.resource("ClassifyImageStateMachine")
    arn = machine.replace(":stateMachine:", ":execution:") + ":never-ran-0"

    # WHEN it is traced
    result = run_cli(running_stack.runner(), "trace", arn)

    # THEN Step Functions' error is one line
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ExecutionDoesNotExist: ")
    assert result.stderr.count("\n") == 1


# -- dead letters --------------------------------------------------------------------------


def test_dlq_list_table_shows_each_failure_and_its_error(running_stack: RunningStack) -> None:
    # GIVEN the demo stream's five broken photos on the workflow dead-letter queue
    # WHEN dead letters are listed as a table
    result = run_cli(running_stack.runner(), "dlq", "list")

    # THEN each is one row with its queue, route and error, and the count follows
    assert result.exit_code == 0, result.stderr
    assert table_header(result.stdout) == [
        "id",
        "queue",
        "route",
        "error",
        "reason",
        "receives",
        "superseded",
        "copy of",
    ]
    assert sorted((row[1], row[2], row[3]) for row in table_rows(result.stdout)) == sorted(
        ("WorkflowDeadLetterQueue", "cats", error) for error in FAULTS.values()
    )
    assert result.stdout.splitlines()[-1] == "5 dead letter(s)"


def test_dlq_list_json_has_the_message_error_and_reason(running_stack: RunningStack) -> None:
    # GIVEN the demo stream's five broken photos on the workflow dead-letter queue
    expected = {running_stack.fault_url(fault): error for fault, error in FAULTS.items()}

    # WHEN dead letters are listed as JSON lines
    letters = _dead_letters_json(running_stack)

    # THEN each carries the failed message, its error, and no receipt handle
    assert [set(letter) for letter in letters] == [DEAD_LETTER_FIELDS] * 5
    by_url: dict[str, str] = {}
    for letter in letters:
        body = json.loads(letter["body"])
        message = PhotoMessage.model_validate(body["message"])
        assert (letter["queue"], letter["route"], message.attempt) == (
            "WorkflowDeadLetterQueue",
            "cats",
            0,
        )
        assert body["failed_state"] == "Fetch Image"
        assert body["execution"].endswith(":" + execution_name(message.url))
        assert body["error"]["Error"] == letter["error"]
        by_url[message.url] = letter["error"]
    assert by_url == expected
    # AND the reason carries the fetch function's own message
    reasons = {json.loads(letter["body"])["message"]["url"]: letter["reason"] for letter in letters}
    assert "'localhost' answered 404: the image is gone" in reasons[running_stack.fault_url("404")]


def test_dlq_redrive_of_an_unknown_queue_lists_the_known_ones(
    running_stack: RunningStack,
) -> None:
    # GIVEN a queue name that is no dead-letter queue of the stack
    # WHEN a redrive of it is asked for, without --yes
    result = run_cli(running_stack.runner(), "dlq", "redrive", "--queue", "Unknown")

    # THEN it is refused before any question, naming the queues there are
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for --queue: unknown dead-letter queue 'Unknown'; known: "
        "CatsDeadLetterQueue, DogsDeadLetterQueue, ProducerDeadLetterQueue, "
        "WorkflowDeadLetterQueue"
    )
    assert _queue_depths(running_stack) == {
        "CatsQueue": 0,
        "DogsQueue": 0,
        "WorkflowDeadLetterQueue": 5,
    }


def test_dlq_redrive_answered_no_moves_nothing(running_stack: RunningStack) -> None:
    # GIVEN five dead letters
    # WHEN a redrive is asked for and the question is answered "n"
    result = run_cli(running_stack.runner(), "dlq", "redrive", stdin="n\n")

    # THEN it is aborted and every dead letter is still where it was
    assert result.exit_code == 1
    assert result.stdout == (
        "Send dead letters back for processing in local cloud at "
        f"{running_stack.pipeline.cloud.endpoint_url}? [y/N]: n\n"
    )
    assert result.stderr == "Aborted!\n"
    assert _queue_depths(running_stack) == {
        "CatsQueue": 0,
        "DogsQueue": 0,
        "WorkflowDeadLetterQueue": 5,
    }


def test_dlq_redrive_sends_them_back_as_a_new_attempt(running_stack: RunningStack) -> None:
    # GIVEN five dead letters of photos that are still broken (this test changes the shared
    # stack, so it runs last)
    # WHEN they are sent back with --yes
    result = run_cli(running_stack.runner(), "dlq", "redrive", "--yes")

    # THEN every queue reports what it sent back
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "CatsDeadLetterQueue: 0 message(s) sent back\n"
        "DogsDeadLetterQueue: 0 message(s) sent back\n"
        "ProducerDeadLetterQueue: 0 message(s) sent back\n"
        "WorkflowDeadLetterQueue: 5 message(s) sent back\n"
    )
    # AND once the pipeline settled, each ran again as attempt 1 and is a dead letter again
    running_stack.settle()
    letters = _dead_letters_json(running_stack)
    messages = [PhotoMessage.model_validate(json.loads(x["body"])["message"]) for x in letters]
    assert sorted((m.url, m.attempt) for m in messages) == sorted(
        (running_stack.fault_url(fault), 1) for fault in FAULTS
    )
    retraced = run_cli(
        running_stack.runner(),
        "trace",
        execution_name(running_stack.fault_url("410"), sequence=2),
        "--html",
        str(running_stack.state_file.with_name("retrace.html")),
    )
    assert retraced.exit_code == 0, retraced.stderr
    assert retraced.stdout.splitlines()[0].endswith("; failed at 'Fetch Image': ImageNotFound")
