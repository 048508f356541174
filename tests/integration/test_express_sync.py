"""The template deployed with its defaults: WorkflowType EXPRESS, the classifier running each
image synchronously and settling it. The happy path, duplicates that cost no DetectLabels
call, a failure as one letter, and finding Express executions in the logs: `tweetlens trace`
by ARN and by name, and the console's Executions page.

The local pipeline logs Express executions at ALL (``LOCAL_EXPRESS_LOG_LEVEL``); the template's
own default, what AWS bills, is ERROR.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.messages import EXPRESS_NAME_HASH_CHARS, url_digest
from tests.cli.cli_testkit import run_cli, state_file_runner
from tests.integration.pipeline_kit import (
    CLASSIFIER,
    PostSpec,
    Recordings,
    dead_letters_of,
    publish,
    record_outcomes,
    result_item,
    route_message,
    settle,
)
from tests.unit.console.console_testkit import client_of, console_app
from tweetlens import trace
from tweetlens.console import CloudActivity, ConsoleData
from tweetlens.demo import deployed
from tweetlens.demo_stream import PHOTO_LABELS, Recording
from tweetlens.dlq import WORKFLOW_DLQ, DeadLetter, redrive
from tweetlens.pipeline import LocalPipeline
from tweetlens.results import RESULTS_TABLE, LabelHit, all_results, images_with_label
from tweetlens.stack import DeployedStack

pytestmark = pytest.mark.integration

STATE_MACHINE = "ClassifyImageStateMachine"
LOG_GROUP = "ClassifyImageLogGroup"
DUPLICATE_POSTS = 6
RESULT_ATTRIBUTES = {
    "pk",
    "sk",
    "status",
    "execution",
    "lease_expires_at",
    "message",
    "post_id",
    "media_key",
    "text",
    "hashtags",
    "route",
    "labels",
    "image_key",
    "classified_at",
}
CLASSIFIED_PATH = ["Claim Image", "Fetch Image", "Detect Labels", "Store Result"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    """This module's pipeline: the template's defaults, with the state file the CLI reads."""
    state_file = tmp_path_factory.mktemp("express") / "local-cloud.json"
    with LocalPipeline(state_file=state_file) as started:
        yield started


@pytest.fixture(scope="module")
def stack(pipeline: LocalPipeline) -> DeployedStack:
    return deployed(pipeline)


def express_log_records(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    logs = pipeline.cloud.client("logs")
    group = pipeline.cloud.resources[LOG_GROUP]
    records: list[dict[str, Any]] = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
        records.extend(json.loads(event["message"]) for event in events["events"])
    return records


def send_to_cats_queue(stack: DeployedStack, message: dict[str, Any]) -> None:
    stack.client("sqs").send_message(
        QueueUrl=stack.resource("CatsQueue"), MessageBody=json.dumps(message)
    )


def detect_labels_calls(pipeline: LocalPipeline, stack: DeployedStack, url: str) -> int:
    rekognition = pipeline.cloud.rekognition
    assert rekognition is not None
    source = f"s3://{stack.resource('ImagesBucket')}/images/{url_digest(url)}.jpg"
    return rekognition.calls_by_source().get(source, 0)


@dataclass(frozen=True)
class Settled:
    """What the module published, in two producer runs, once the pipeline settled."""

    cat: str
    crew: str
    gone: str
    gone_twice: str
    blocked: str
    first: Recording
    summary: dict[str, Any]
    # The workflow letters after the first run, and after the second.
    first_letters: list[DeadLetter]
    letters: list[DeadLetter]
    redriven: dict[str, int]


@pytest.fixture(scope="module")
def settled(pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings) -> Settled:
    """Every scenario of the module, published together so that the pipeline settles twice.

    First run: a cat photo, one photo in five posts on both routes, a gone photo (404),
    another (410) and a blocked one. Second run, once the first settled: the 410 photo posted
    again, the cat photo's message delivered twice more by SQS (duplicates of a DONE image), and
    the blocked photo's workflow letter sent back by `tweetlens dlq redrive`'s library code.
    """
    cat = pipeline.images.media_url("chelsea")
    crew = pipeline.images.media_url("astronaut")
    gone, gone_twice = pipeline.images.fault_url("404"), pipeline.images.fault_url("410")
    blocked = pipeline.images.fault_url("redirect-private")
    first = recordings.build(
        [
            PostSpec("Window patrol", ("cat",), (cat,)),
            PostSpec("Selfie with the crew", ("cat",), (crew,)),
            PostSpec("Selfie again", ("kitten",), (crew,)),
            PostSpec("Crew day", ("dog",), (crew,)),
            PostSpec("Best friends", ("cats", "puppy"), (crew,)),
            PostSpec("Still the crew", ("cat",), (crew,)),
            PostSpec("Gone", ("cat",), (gone,)),
            PostSpec("Gone once", ("cat",), (gone_twice,)),
            PostSpec("Off limits", ("cat",), (blocked,)),
        ]
    )
    summary = publish(pipeline, first)
    settle(pipeline)
    first_letters = dead_letters_of(stack, WORKFLOW_DLQ)
    publish(pipeline, recordings.build([PostSpec("Gone again", ("cat",), (gone_twice,))]))
    message = route_message(first, cat, "cats")
    send_to_cats_queue(stack, message)
    send_to_cats_queue(stack, message)
    to_redrive = {
        letter.message_id
        for letter in first_letters
        if json.loads(letter.body)["message"]["url"] == blocked
    }
    redriven = redrive(stack, queue=WORKFLOW_DLQ, message_ids=to_redrive)
    settle(pipeline)
    return Settled(
        cat=cat,
        crew=crew,
        gone=gone,
        gone_twice=gone_twice,
        blocked=blocked,
        first=first,
        summary=summary,
        first_letters=first_letters,
        letters=dead_letters_of(stack, WORKFLOW_DLQ),
        redriven=redriven,
    )


def letters_for(settled: Settled, url: str) -> list[dict[str, Any]]:
    return letters_for_bodies(settled.letters, url)


def letters_for_bodies(letters: list[DeadLetter], url: str) -> list[dict[str, Any]]:
    bodies = [json.loads(letter.body) for letter in letters]
    return [body for body in bodies if body["message"]["url"] == url]


def test_the_default_workflow_is_express_logging_all_locally(
    pipeline: LocalPipeline, stack: DeployedStack
) -> None:
    # GIVEN / WHEN the template is deployed with its default WorkflowType
    machine = next(iter(pipeline.cloud.state_machines.values()))
    variables = pipeline.cloud.functions[CLASSIFIER].environment
    described = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.resource(STATE_MACHINE)
    )

    # THEN the machine is EXPRESS, logs ALL with data (the local pipeline's level), and the
    # classifier knows it; DescribeStateMachine says so too, as in AWS
    assert machine.type == "EXPRESS"
    assert machine.logging is not None
    assert (machine.logging.level, machine.logging.include_execution_data) == ("ALL", True)
    assert variables["WORKFLOW_TYPE"] == "EXPRESS"
    assert (described["type"], described["loggingConfiguration"]["level"]) == ("EXPRESS", "ALL")


def test_cat_photo_is_fetched_labelled_and_stored(
    pipeline: LocalPipeline, stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN / WHEN one post with the cat photo under #cat went through (module fixture)
    url = settled.cat
    message = route_message(settled.first, url, "cats")
    key = f"images/{url_digest(url)}.jpg"

    # THEN the classifier ran it to DONE itself, with one DetectLabels call
    assert settled.summary["published"] == {"cats": 8, "dogs": 2}
    assert record_outcomes(pipeline, url)["Classified"] == 1
    assert detect_labels_calls(pipeline, stack, url) == 1
    # AND the result item holds the post, the labels and the Express execution that stored it
    names = list(PHOTO_LABELS["chelsea"])
    item = result_item(stack, url)
    assert set(item) == RESULT_ATTRIBUTES
    assert {name: item[name] for name in ("status", "route", "post_id", "text", "hashtags")} == {
        "status": "DONE",
        "route": "cats",
        "post_id": message["post_id"],
        "text": "Window patrol #cat",
        "hashtags": ["cat"],
    }
    machine = stack.resource(STATE_MACHINE)
    # named after the URL's digest and the SQS message that ran it
    prefix = (
        machine.replace(":stateMachine:", ":express:")
        + f":{url_digest(url)[:EXPRESS_NAME_HASH_CHARS]}-"
    )
    assert item["execution"].startswith(prefix)
    assert item["image_key"] == key
    assert [label["name"] for label in item["labels"]] == names
    confidence = {label["name"]: label["confidence"] for label in item["labels"]}
    assert all(Decimal(70) <= value <= Decimal(100) for value in confidence.values())
    # AND Step Functions lists no execution: ListExecutions refuses an Express machine
    with pytest.raises(ClientError) as refused:
        stack.client("stepfunctions").list_executions(stateMachineArn=machine)
    assert refused.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"
    # AND the log group holds the execution from ExecutionStarted to ExecutionSucceeded, from
    # which `tweetlens trace` draws it: claim → fetch → label → store, with its input
    records = [r for r in express_log_records(pipeline) if r["execution_arn"] == item["execution"]]
    assert (records[0]["type"], records[-1]["type"]) == ("ExecutionStarted", "ExecutionSucceeded")
    drawn = trace.trace_execution(stack, item["execution"])
    assert (drawn.status, [visit.name for visit in drawn.trace.visits]) == (
        "SUCCEEDED",
        CLASSIFIED_PATH,
    )
    assert json.loads(drawn.input)["message"] == message
    # AND the ByLabel index finds the photo as a cat
    hits = images_with_label(stack.client("dynamodb"), stack.resource(RESULTS_TABLE), "Cat", 50)
    assert hits == [
        LabelHit(
            url=url,
            label="Cat",
            confidence=float(confidence["Cat"]),
            post_id=message["post_id"],
            route="cats",
        )
    ]
    # AND the images bucket holds the exact bytes the image host served
    stored = stack.client("s3").get_object(Bucket=stack.resource("ImagesBucket"), Key=key)
    assert stored["Body"].read() == pipeline.images.photo_bytes("chelsea")
    assert stored["ContentType"] == "image/jpeg"


def test_duplicates_of_a_done_image_run_no_execution(
    pipeline: LocalPipeline, stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN / WHEN SQS delivered the cat photo's message twice more once it was DONE (fixture)
    # THEN neither ran an execution nor called DetectLabels
    assert record_outcomes(pipeline, settled.cat) == {"Classified": 1, "Duplicate": 2}
    assert detect_labels_calls(pipeline, stack, settled.cat) == 1
    started = [
        r
        for r in express_log_records(pipeline)
        if r["type"] == "ExecutionStarted"
        and f":{url_digest(settled.cat)[:EXPRESS_NAME_HASH_CHARS]}-" in r["execution_arn"]
    ]
    assert len(started) == 1


def test_same_photo_in_many_posts_and_routes_is_labelled_once(
    pipeline: LocalPipeline, stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN / WHEN the same photo URL went out in five posts, on both routes (six messages)
    outcomes = record_outcomes(pipeline, settled.crew)

    # THEN one record classified it; the five others were duplicates: of the DONE result, of
    # a running execution, or found by the claim of an execution they started before the
    # first claim was written
    assert outcomes["Classified"] == 1
    assert outcomes["Duplicate"] + outcomes["InFlight"] == 5
    assert sum(outcomes.values()) == 6
    # AND Rekognition and the image host saw the photo once
    assert detect_labels_calls(pipeline, stack, settled.crew) == 1
    assert pipeline.images.request_count("/media/astronaut.jpg") == 1


def test_permanent_failure_is_one_letter(
    pipeline: LocalPipeline, stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN / WHEN a post whose photo is gone (404) went through (module fixture)
    url = settled.gone

    # THEN the classifier dead-lettered the execution once, in the closer's shape
    letters = letters_for(settled, url)
    assert len(letters) == 1
    body = letters[0]
    result = result_item(stack, url)
    assert {key: body[key] for key in ("message", "status", "detected_by", "failed_state")} == {
        "message": route_message(settled.first, url, "cats"),
        "status": "FAILED",
        "detected_by": "sync-result",
        "failed_state": None,
    }
    assert body["error"]["Error"] == "ImageNotFound"
    assert body["execution"] == result["execution"]
    # AND the claim is closed, and the record was deleted from its queue
    assert result["status"] == "FAILED"
    assert "open_claim" not in result
    assert record_outcomes(pipeline, url) == {"ExecutionDeadLettered": 1}
    # AND its trace shows where it failed
    drawn = trace.trace_execution(stack, body["execution"])
    assert (drawn.status, drawn.trace.failed_state) == ("FAILED", "Fetch Image")


def test_gone_photo_posted_again_is_a_duplicate_of_its_one_letter(
    pipeline: LocalPipeline, stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN / WHEN the 410 photo was posted again once its first post's execution had failed
    # for good and been dead-lettered (module fixture)
    url = settled.gone_twice

    # THEN the later post ran no execution: it is a duplicate of that failure, and the one
    # letter, of the first post, says why
    [letter] = letters_for(settled, url)
    assert letter["message"] == route_message(settled.first, url, "cats")
    assert letter["error"]["Error"] == "ImageNotFound"
    assert record_outcomes(pipeline, url) == {"ExecutionDeadLettered": 1, "Duplicate": 1}
    started = [
        r
        for r in express_log_records(pipeline)
        if r["type"] == "ExecutionStarted"
        and f":{url_digest(url)[:EXPRESS_NAME_HASH_CHARS]}-" in r["execution_arn"]
    ]
    assert len(started) == 1
    assert pipeline.images.request_count("/faults/410") == 1
    # AND the claim still names the failed execution
    item = result_item(stack, url)
    assert (item["status"], item["execution"]) == ("FAILED", letter["execution"])


def test_concurrent_duplicates_run_no_execution(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN six posts of one new photo published at once, half to each route: the two route
    # queues have mappings of their own, so copies reach concurrent classifier invocations
    # (and, within one queue, the same batch)
    url = pipeline.images.media_url("coffee")
    recording = recordings.build(
        [
            PostSpec(f"Same photo {i}", ("cat",) if i % 2 else ("dog",), (url,))
            for i in range(DUPLICATE_POSTS)
        ]
    )
    calls_before = detect_labels_calls(pipeline, stack, url)

    # WHEN the producer publishes them and the pipeline settles
    publish(pipeline, recording)
    settle(pipeline)

    # THEN one execution ran for the photo, and one DetectLabels call: every other post was
    # settled as a duplicate by the batch or by the reservation, none by an execution
    started = [
        record["execution_arn"]
        for record in express_log_records(pipeline)
        if record["type"] == "ExecutionStarted"
        and f":{url_digest(url)[:EXPRESS_NAME_HASH_CHARS]}-" in record["execution_arn"]
    ]
    assert len(started) == 1
    assert detect_labels_calls(pipeline, stack, url) == calls_before + 1
    outcomes = record_outcomes(pipeline, url)
    assert outcomes.pop("Classified") == 1
    assert sum(outcomes.values()) == DUPLICATE_POSTS - 1
    assert set(outcomes) <= {"Duplicate", "InFlight"}
    assert result_item(stack, url)["status"] == "DONE"


def test_trace_draws_an_express_execution_by_arn_and_by_name(
    pipeline: LocalPipeline, stack: DeployedStack, settled: Settled, tmp_path: Path
) -> None:
    # GIVEN the cat photo, classified by one Express execution named after the URL's digest
    arn = result_item(stack, settled.cat)["execution"]
    assert pipeline.state_file is not None
    runner = state_file_runner(pipeline.state_file)

    # WHEN `tweetlens trace` is given its ARN, then its name (`<digest>-<SQS message id>`)
    by_arn = run_cli(runner, "trace", arn, "--html", str(tmp_path / "arn.html"))
    by_name = run_cli(runner, "trace", arn.split(":")[-2], "--html", str(tmp_path / "name.html"))

    # THEN both draw it from the log group: succeeded, the same execution
    assert (by_arn.exit_code, by_name.exit_code) == (0, 0), by_arn.stderr + by_name.stderr
    first_line = by_arn.stdout.splitlines()[0]
    assert first_line.startswith("Execution SUCCEEDED in ")
    assert by_name.stdout.splitlines()[:-1] == by_arn.stdout.splitlines()[:-1]
    assert "<svg" in (tmp_path / "name.html").read_text(encoding="utf-8")


def test_trace_of_a_name_several_express_executions_share_names_them(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN a photo classified by one Express execution, and a second execution started by hand
    # with the same name and input (Express names need not be unique; this one ends DUPLICATE
    # at its claim, the image being DONE)
    url = pipeline.images.media_url("rocket")
    publish(pipeline, recordings.build([PostSpec("Launch day", ("cat",), (url,))]))
    settle(pipeline)
    first = result_item(stack, url)["execution"]
    name = first.split(":")[-2]
    [started] = [
        record
        for record in express_log_records(pipeline)
        if record["type"] == "ExecutionStarted" and record["execution_arn"] == first
    ]
    second = pipeline.cloud.client("stepfunctions").start_sync_execution(
        stateMachineArn=stack.resource(STATE_MACHINE),
        name=name,
        input=started["details"]["input"],
    )
    assert (second["status"], json.loads(second["output"])["status"]) == (
        "SUCCEEDED",
        "DUPLICATE",
    )
    assert pipeline.state_file is not None

    # WHEN `tweetlens trace` is given that name
    result = run_cli(state_file_runner(pipeline.state_file), "trace", name)

    # THEN one line names both, newest first, and asks for one ARN
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: 2 Express executions are named '{name}' (newest first: "
        f"{second['executionArn']} (SUCCEEDED); {first} (SUCCEEDED)): pass one ARN\n"
    )


def test_trace_of_an_unknown_express_name_is_one_clear_line(pipeline: LocalPipeline) -> None:
    # GIVEN a name no execution of the EXPRESS workflow has WHEN it is traced
    assert pipeline.state_file is not None
    result = run_cli(state_file_runner(pipeline.state_file), "trace", "no-such-execution")

    # THEN one line says so, naming where it looked
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: no execution named 'no-such-execution' in local cloud at "
        f"{pipeline.cloud.endpoint_url}\n"
    )


def test_console_lists_express_executions_from_the_log_group(
    stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN a classified photo and a gone one, each run by one Express execution (fixture)
    arns = {url: result_item(stack, url)["execution"] for url in (settled.cat, settled.gone)}
    client = client_of(console_app(ConsoleData.fixed(stack)))

    # WHEN the Executions page is opened, all and failed only, and the failed one's link followed
    every = client.get("/executions").text
    failed = client.get("/executions", query_string={"status": "FAILED"}).text
    named = url_digest(settled.gone)[:EXPRESS_NAME_HASH_CHARS]
    link = re.search(rf'href="(/executions/{named}-[0-9A-Za-z_-]+:[0-9a-f-]+)"', failed)
    assert link is not None, failed
    detail = client.get(link.group(1))

    # THEN the page says where Express executions come from and lists both with their status
    assert 'id="express-logged"' in every
    for url, status in ((settled.cat, "SUCCEEDED"), (settled.gone, "FAILED")):
        ref = ":".join(arns[url].split(":")[-2:])
        row = re.search(rf'<tr data-status="(\w+)">\s*<td><a href="/executions/{ref}"', every)
        assert row is not None, (url, every)
        assert row.group(1) == status
    assert url_digest(settled.cat)[:EXPRESS_NAME_HASH_CHARS] not in failed
    # AND the failed execution's page is drawn from its logs, with where and why it failed
    assert detail.status_code == 200
    assert 'id="execution-status">FAILED<' in detail.text
    assert 'id="failed-state">Fetch Image<' in detail.text
    assert client.get(link.group(1) + "/trace.svg").status_code == 200


def _overview_cells(table: str) -> dict[str, list[str]]:
    """Route → its row's cells as text (route, published, queued, running, classified,
    duplicates, dead letters, lost)."""
    rows = re.findall(r'<tr data-route="([^"]*)">(.*?)</tr>', table, re.S)
    return {
        route: [
            " ".join(re.sub(r"<[^>]+>", " ", cell).split())
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for route, row in rows
    }


def test_the_overview_counts_every_classified_image_of_the_express_workflow(
    pipeline: LocalPipeline, stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN the settled module: the images classified, the cat and crew photos among them
    # (the module's other tests classify more), each stored DONE with its route
    results = all_results(stack.client("dynamodb"), stack.resource(RESULTS_TABLE))
    done = [result for result in results if result.status == "DONE"]
    assert {settled.cat, settled.crew} <= {result.url for result in done}
    routes = Counter(result.route for result in done)
    started = {
        record["execution_arn"]
        for record in express_log_records(pipeline)
        if record["type"] == "ExecutionStarted"
    }

    # WHEN the Overview is taken apart from the cloud (no function logs, as against AWS) and
    # beside it (the classifier's records read)
    apart = client_of(console_app(ConsoleData.fixed(stack))).get("/overview/table").text
    beside_data = ConsoleData.fixed(stack, CloudActivity(pipeline.cloud))
    beside = client_of(console_app(beside_data)).get("/overview/table").text

    # THEN both count each route's classified images, all of them, not the 0 a listing of
    # executions gave; running shows "-" with the reason, and the executions come from the
    # log group (level ALL here)
    for table in (apart, beside):
        cells = _overview_cells(table)
        classified = {route: int(row[4]) for route, row in cells.items() if row[4] != "0"}
        assert classified == dict(routes)
        assert sum(int(row[4]) for row in cells.values()) == len(done)
        assert {row[3] for row in cells.values()} == {"-"}
        assert 'id="express-unknown"' in table
        assert f"{len(started)} execution(s)" in table
    # AND apart from the cloud the duplicates are unknown ("-"), beside it they are counted
    assert {row[5] for row in _overview_cells(apart).values()} == {"-"}
    assert "-" not in {row[5] for row in _overview_cells(beside).values()}


def test_a_redriven_workflow_letter_runs_again_as_the_next_attempt(
    pipeline: LocalPipeline, stack: DeployedStack, settled: Settled
) -> None:
    # GIVEN the blocked photo's workflow letter, sent back to its route queue (module fixture)
    [first] = letters_for_bodies(settled.first_letters, settled.blocked)

    # WHEN the pipeline has settled again
    [again] = letters_for(settled, settled.blocked)

    # THEN the letter went back as the next attempt of its message, which ran again in a new
    # Express execution (its failed claim taken over), failed the same way, and is one letter
    assert settled.redriven[WORKFLOW_DLQ] == 1
    assert again["message"] == {**first["message"], "attempt": 1}
    assert (again["error"]["Error"], again["detected_by"]) == ("BlockedUrl", "sync-result")
    assert again["execution"] != first["execution"]
    assert result_item(stack, settled.blocked)["execution"] == again["execution"]
    assert record_outcomes(pipeline, settled.blocked) == {"ExecutionDeadLettered": 2}
    # AND neither run reached DetectLabels
    assert detect_labels_calls(pipeline, stack, settled.blocked) == 0
