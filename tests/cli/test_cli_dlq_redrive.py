"""`tweetlens dlq redrive --stack-name` against a stack of the template's queues in moto.

No local cloud is started: the stack is created in moto in this process from template.yaml's
own queues (with their redrive policies), and the command finds it through CloudFormation as it
would find a stack in AWS. The letters are written as each writer does (the classifier's
rejection attributes, the execution closer's body, a producer letter).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from samcli.yamlhelper import yaml_parse

from tests.cli.cli_testkit import REPO_ROOT, make_runner, run_cli, table_rows
from tweetlens_naming import SOURCE_MESSAGE_ID_ATTRIBUTE

STACK = "tweetlens-dev"
REGION = "us-east-1"
REJECTED = "the classifier would reject it again; --force sends it back anyway"
NO_MESSAGE = "no route message to replay: read it, then start it by hand or delete it"
PRODUCER_LETTER = "X's data, not a route message: read it and replay what X still holds"
MESSAGE = {
    "url": "https://pbs.twimg.com/media/GdNb2bYXcAAr6Tt.jpg",
    "post_id": "1861523010000000301",
    "media_key": "3_1861523010000000301",
    "text": "is this a loaf? #cat",
    "hashtags": ["cat"],
    "route": "cats",
    "attempt": 0,
}


def queues_stack_template() -> dict[str, Any]:
    """template.yaml's queues and its results table, nothing else: what `tweetlens dlq` reads
    and writes (the table says whether a workflow letter's image was classified since)."""
    template = yaml_parse((REPO_ROOT / "template.yaml").read_text(encoding="utf-8"))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        # The queues' settings follow WorkflowType (IsExpress): its default applies.
        "Parameters": template["Parameters"],
        "Conditions": template["Conditions"],
        "Resources": {
            name: resource
            for name, resource in template["Resources"].items()
            if resource["Type"] == "AWS::SQS::Queue" or name == "ResultsTable"
        },
    }


class Letters:
    """The stack's queues by logical id, and ways to fill and read them."""

    def __init__(self) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION)
        summaries = boto3.client("cloudformation", region_name=REGION).list_stack_resources(
            StackName=STACK
        )["StackResourceSummaries"]
        self.urls = {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries}

    def rejection(self, error: str, reason: str, body: str) -> None:
        """A body the classifier sent to the cats DLQ, as it sends one."""
        self.sqs.send_message(
            QueueUrl=self.urls["CatsDeadLetterQueue"],
            MessageBody=body,
            MessageAttributes={
                "error": {"DataType": "String", "StringValue": error},
                "reason": {"DataType": "String", "StringValue": reason},
            },
        )

    def send(self, queue: str, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.urls[queue], MessageBody=body)

    def bodies(self, queue: str) -> list[str]:
        """Every body on a queue (received and deleted)."""
        found: list[str] = []
        while messages := self.sqs.receive_message(
            QueueUrl=self.urls[queue], MaxNumberOfMessages=10
        ).get("Messages", []):
            for message in messages:
                found.append(message["Body"])
                self.sqs.delete_message(
                    QueueUrl=self.urls[queue], ReceiptHandle=message["ReceiptHandle"]
                )
        return sorted(found)


NOT_JSON = '{"url": "https://pbs.twimg.com/media/GdNb'
NO_URL = json.dumps({key: value for key, value in MESSAGE.items() if key != "url"})
HTTP_URL = json.dumps(MESSAGE | {"url": "http://pbs.twimg.com/media/GdNb2bYXcAAr6Tt.jpg"})
MOVED = json.dumps(MESSAGE | {"url": "https://pbs.twimg.com/media/GdNc3cZXdAAs7Uu.jpg"})
# The moved message as it goes back: one attempt higher, so the classifier does not take it for
# a repeat of a failure for good whose letter it never got out (tweetlens.dlq).
MOVED_REPLAYED = json.dumps(json.loads(MOVED) | {"attempt": 1}, separators=(",", ":"))


@pytest.fixture
def letters(aws_credentials: None) -> Iterator[Letters]:
    """GIVEN the template's queues in a stack, and on them: three rejections by the classifier
    and one message moved by the cats queue's redrive policy; a workflow letter without a
    message; a producer letter."""
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=json.dumps(queues_stack_template())
        )
        filled = Letters()
        filled.rejection("NotJson", "body: Invalid JSON: EOF while parsing a string", NOT_JSON)
        filled.rejection("InvalidMessage", "url: Field required", NO_URL)
        filled.rejection("InvalidMessage", "url: Value error, url must use https", HTTP_URL)
        filled.send("CatsDeadLetterQueue", MOVED)
        filled.send(
            "WorkflowDeadLetterQueue",
            json.dumps(
                {
                    "message": None,
                    "input": {},
                    "error": {"Error": "States.Runtime", "Cause": "no message in the input"},
                    "execution": "arn:aws:states:us-east-1:123456789012:execution:m:by-hand",
                    "status": "FAILED",
                    "failed_state": "Claim Image",
                    "detected_by": "status-change-event",
                }
            ),
        )
        filled.send(
            "ProducerDeadLetterQueue",
            json.dumps({"kind": "photo", "error": "MediaMissing", "reason": "not in includes"}),
        )
        yield filled


def redrive(*options: str) -> Any:
    return run_cli(
        make_runner(),
        "dlq",
        "redrive",
        "--stack-name",
        STACK,
        "--region",
        REGION,
        "--yes",
        *options,
    )


def test_redrive_keeps_the_classifier_s_rejections_and_says_why(letters: Letters) -> None:
    # WHEN every dead-letter queue is redriven
    result = redrive()

    # THEN only the moved message went back; what would fail again is counted per queue and
    # error, with the reason it stays
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "CatsDeadLetterQueue: 1 message(s) sent back\n"
        "DogsDeadLetterQueue: 0 message(s) sent back\n"
        "ProducerDeadLetterQueue: 0 message(s) sent back\n"
        "WorkflowDeadLetterQueue: 0 message(s) sent back\n"
        f"CatsDeadLetterQueue: 2 message(s) kept (InvalidMessage: {REJECTED})\n"
        f"CatsDeadLetterQueue: 1 message(s) kept (NotJson: {REJECTED})\n"
        f"ProducerDeadLetterQueue: 1 message(s) kept (MediaMissing: {PRODUCER_LETTER})\n"
        f"WorkflowDeadLetterQueue: 1 message(s) kept (States.Runtime: {NO_MESSAGE})\n"
    )
    # AND the moved message is on its source queue one attempt higher, the rejections still on
    # the DLQ
    assert letters.bodies("CatsQueue") == [MOVED_REPLAYED]
    assert letters.bodies("CatsDeadLetterQueue") == sorted([NOT_JSON, NO_URL, HTTP_URL])


def test_forced_redrive_sends_the_rejections_back_too(letters: Letters) -> None:
    # WHEN the cats DLQ is redriven with --force
    result = redrive("--queue", "CatsDeadLetterQueue", "--force")

    # THEN all four went back to the cats queue (the rejections unchanged, the moved message
    # one attempt higher), and nothing is kept
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "CatsDeadLetterQueue: 4 message(s) sent back\n"
    assert letters.bodies("CatsQueue") == sorted([NOT_JSON, NO_URL, HTTP_URL, MOVED_REPLAYED])
    assert letters.bodies("CatsDeadLetterQueue") == []


def test_force_never_replays_letters_without_a_route_message(letters: Letters) -> None:
    # WHEN every queue is redriven with --force
    result = redrive("--force")

    # THEN the workflow letter without a message and the producer letter still stay
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[4:] == [
        f"ProducerDeadLetterQueue: 1 message(s) kept (MediaMissing: {PRODUCER_LETTER})",
        f"WorkflowDeadLetterQueue: 1 message(s) kept (States.Runtime: {NO_MESSAGE})",
    ]
    assert len(letters.bodies("WorkflowDeadLetterQueue")) == 1
    assert len(letters.bodies("ProducerDeadLetterQueue")) == 1


# -- superseded workflow letters -------------------------------------------------------------

CLASSIFIED_URL = "https://pbs.twimg.com/media/GdNd4dAXeAAt8Vv.jpg"
STILL_BROKEN_URL = "https://pbs.twimg.com/media/GdNe5eBXfAAu9Ww.jpg"
CLASSIFIED_BY = "arn:aws:states:us-east-1:123456789012:express:ClassifyImage:d1gest-m2:2222"
SUPERSEDED = (
    "superseded: its image was classified since, so it would only be a duplicate; "
    "--force sends it back anyway"
)


def _workflow_letter(url: str, error: str) -> str:
    """A workflow letter as the classifier sends one for a failed Express execution."""
    return json.dumps(
        {
            "message": MESSAGE | {"url": url},
            "input": None,
            "error": {"Error": error, "Cause": "the image host failed"},
            "execution": f"arn:aws:states:us-east-1:123456789012:express:ClassifyImage:{error}:1",
            "status": "FAILED",
            "failed_state": None,
            "detected_by": "sync-result",
        }
    )


def _replayed(url: str) -> str:
    """A workflow letter's message as a redrive sends it back: one attempt higher."""
    return json.dumps(MESSAGE | {"url": url, "attempt": 1}, separators=(",", ":"))


@pytest.fixture
def workflow_letters(aws_credentials: None) -> Iterator[Letters]:
    """GIVEN two workflow letters: one whose image a later post has classified since (its
    result item is DONE), one whose image is still FAILED."""
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=json.dumps(queues_stack_template())
        )
        filled = Letters()
        table = filled.urls["ResultsTable"]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for url, status, execution in (
            (CLASSIFIED_URL, "DONE", CLASSIFIED_BY),
            (STILL_BROKEN_URL, "FAILED", "arn:aws:states:us-east-1:123456789012:express:x:y:1"),
        ):
            dynamodb.put_item(
                TableName=table,
                Item={
                    "pk": {"S": url},
                    "sk": {"S": "RESULT"},
                    "status": {"S": status},
                    "execution": {"S": execution},
                },
            )
        filled.send("WorkflowDeadLetterQueue", _workflow_letter(CLASSIFIED_URL, "ImageHostError"))
        filled.send("WorkflowDeadLetterQueue", _workflow_letter(STILL_BROKEN_URL, "ImageNotFound"))
        yield filled


def _list(*options: str) -> Any:
    return run_cli(
        make_runner(), "dlq", "list", "--stack-name", STACK, "--region", REGION, *options
    )


def test_list_shows_a_letter_whose_image_was_classified_since_as_superseded(
    workflow_letters: Letters,
) -> None:
    # WHEN the dead letters are listed as a table
    result = _list()

    # THEN the letter of the classified image says so, the other does not, and the count says
    # what a redrive will do with it
    assert result.exit_code == 0, result.stderr
    assert sorted((row[1], row[3], row[6]) for row in table_rows(result.stdout)) == [
        ("WorkflowDeadLetterQueue", "ImageHostError", "yes"),
        ("WorkflowDeadLetterQueue", "ImageNotFound", ""),
    ]
    assert result.stdout.splitlines()[-1] == (
        "2 dead letter(s), 1 superseded (image classified since; a redrive keeps them unless "
        "--force)"
    )


def test_list_json_names_the_execution_that_superseded_a_letter(
    workflow_letters: Letters,
) -> None:
    # WHEN the dead letters are listed as JSON lines
    result = _list("--json")

    # THEN each letter carries the execution that classified its image since, or ""
    assert result.exit_code == 0, result.stderr
    letters = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted((x["error"], x["superseded_by"]) for x in letters) == [
        ("ImageHostError", CLASSIFIED_BY),
        ("ImageNotFound", ""),
    ]


def test_redrive_keeps_a_superseded_letter_and_counts_it_with_its_reason(
    workflow_letters: Letters,
) -> None:
    # WHEN the workflow dead-letter queue is redriven
    result = redrive("--queue", "WorkflowDeadLetterQueue")

    # THEN only the letter of the image still broken went back; the superseded one is kept,
    # counted under its error with the reason
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "WorkflowDeadLetterQueue: 1 message(s) sent back\n"
        f"WorkflowDeadLetterQueue: 1 message(s) kept (ImageHostError: {SUPERSEDED})\n"
    )
    assert workflow_letters.bodies("CatsQueue") == [_replayed(STILL_BROKEN_URL)]
    assert workflow_letters.bodies("WorkflowDeadLetterQueue") == [
        _workflow_letter(CLASSIFIED_URL, "ImageHostError")
    ]


def test_forced_redrive_sends_a_superseded_letter_back_too(workflow_letters: Letters) -> None:
    # WHEN the workflow dead-letter queue is redriven with --force
    result = redrive("--queue", "WorkflowDeadLetterQueue", "--force")

    # THEN both letters went back one attempt higher, and nothing is kept
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "WorkflowDeadLetterQueue: 2 message(s) sent back\n"
    assert workflow_letters.bodies("CatsQueue") == sorted(
        [_replayed(CLASSIFIED_URL), _replayed(STILL_BROKEN_URL)]
    )
    assert workflow_letters.bodies("WorkflowDeadLetterQueue") == []


TOP_ATTEMPT = (
    "at attempt 99, the most a message may carry: sent back one higher, the classifier would "
    "reject it as InvalidMessage and its real reason would be lost; read it, then send its "
    "message again by hand (attempt 0) or delete it"
)


def test_redrive_keeps_letters_at_the_top_attempt_even_forced(aws_credentials: None) -> None:
    # GIVEN a workflow letter and a message moved by the cats queue's redrive policy, both at
    # attempt 99 (the most a message may carry), and a moved message at attempt 98
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=json.dumps(queues_stack_template())
        )
        letters = Letters()
        top = json.loads(_workflow_letter(STILL_BROKEN_URL, "ImageNotFound"))
        top["message"]["attempt"] = 99
        letters.send("WorkflowDeadLetterQueue", json.dumps(top))
        moved_top = json.dumps(json.loads(MOVED) | {"attempt": 99})
        letters.send("CatsDeadLetterQueue", moved_top)
        letters.send("CatsDeadLetterQueue", json.dumps(json.loads(MOVED) | {"attempt": 98}))

        # WHEN every queue is redriven, even with --force
        result = redrive("--force")

        # THEN only the one at 98 went back (at 99); the two at 99 are kept where they were,
        # counted under their own reason, which a replay at attempt 100 would have lost
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines() == [
            "CatsDeadLetterQueue: 1 message(s) sent back",
            "DogsDeadLetterQueue: 0 message(s) sent back",
            "ProducerDeadLetterQueue: 0 message(s) sent back",
            "WorkflowDeadLetterQueue: 0 message(s) sent back",
            f"CatsDeadLetterQueue: 1 message(s) kept (MaxReceiveCountExceeded: {TOP_ATTEMPT})",
            f"WorkflowDeadLetterQueue: 1 message(s) kept (ImageNotFound: {TOP_ATTEMPT})",
        ]
        assert [json.loads(body)["attempt"] for body in letters.bodies("CatsQueue")] == [99]
        assert letters.bodies("CatsDeadLetterQueue") == [moved_top]
        assert letters.bodies("WorkflowDeadLetterQueue") == [json.dumps(top)]


# -- copies: letters are sent at least once ---------------------------------------------------

BROKEN_ARN = "arn:aws:states:us-east-1:123456789012:express:ClassifyImage:ImageNotFound:1"
CLASSIFIED_ARN = "arn:aws:states:us-east-1:123456789012:express:ClassifyImage:ImageHostError:1"
COPY = (
    "a copy of a letter for the same execution or message: deleted, its first letter is sent "
    "back or kept"
)


class Copies:
    """The letters of ``copied_letters`` by name: each first letter's id and its copy's."""

    def __init__(self, letters: Letters, ids: dict[str, str]) -> None:
        self.letters = letters
        self.ids = ids


def _send_id(letters: Letters, queue: str, body: str, **attributes: str) -> str:
    """Send a letter and wait a few ms, so the next one is sent later (SentTimestamp is in ms:
    the first of two copies is the earlier sent)."""
    message_id = letters.sqs.send_message(
        QueueUrl=letters.urls[queue],
        MessageBody=body,
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        },
    )["MessageId"]
    time.sleep(0.005)
    return str(message_id)


def _moved_by_the_redrive_policy(letters: Letters, body: str) -> str:
    """A message on the cats queue received until its redrive policy (maxReceiveCount 5) moves
    it to the cats DLQ, keeping its id, as SQS does with a message its consumer keeps failing."""
    message_id = _send_id(letters, "CatsQueue", body)
    for _ in range(6):
        letters.sqs.receive_message(QueueUrl=letters.urls["CatsQueue"], VisibilityTimeout=0)
    return message_id


@pytest.fixture
def copied_letters(aws_credentials: None) -> Iterator[Copies]:
    """GIVEN letters sent twice: the workflow letter of an execution whose image is still
    broken, and of one whose image a later post classified since (superseded), each sent twice
    (a closer killed between sending and recording); and a message on the cats queue the
    classifier rejected, then moved by the redrive policy as well (its worker was killed
    after sending the rejection, before recording it)."""
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=json.dumps(queues_stack_template())
        )
        filled = Letters()
        boto3.client("dynamodb", region_name=REGION).put_item(
            TableName=filled.urls["ResultsTable"],
            Item={
                "pk": {"S": CLASSIFIED_URL},
                "sk": {"S": "RESULT"},
                "status": {"S": "DONE"},
                "execution": {"S": CLASSIFIED_BY},
            },
        )
        broken = _workflow_letter(STILL_BROKEN_URL, "ImageNotFound")
        classified = _workflow_letter(CLASSIFIED_URL, "ImageHostError")
        ids = {
            "broken": _send_id(filled, "WorkflowDeadLetterQueue", broken),
            "classified": _send_id(filled, "WorkflowDeadLetterQueue", classified),
            "broken copy": _send_id(filled, "WorkflowDeadLetterQueue", broken),
            "classified copy": _send_id(filled, "WorkflowDeadLetterQueue", classified),
        }
        ids["moved"] = _moved_by_the_redrive_policy(filled, NO_URL)
        ids["rejection"] = _send_id(
            filled,
            "CatsDeadLetterQueue",
            NO_URL,
            error="InvalidMessage",
            reason="url: Field required",
            **{SOURCE_MESSAGE_ID_ATTRIBUTE: ids["moved"]},
        )
        yield Copies(filled, ids)


def test_list_marks_each_copy_with_the_letter_it_copies(copied_letters: Copies) -> None:
    ids = copied_letters.ids

    # WHEN the dead letters are listed as a table
    result = _list()

    # THEN each letter shows the start of its id, and each copy names its first letter the
    # same way: the earlier sent of an execution's two letters, and the classifier's rejection
    # (it says why) before the message SQS moved
    assert result.exit_code == 0, result.stderr
    rows = [(row[0], row[1], row[3], row[6], row[7]) for row in table_rows(result.stdout)]
    short = {name: message_id[:8] for name, message_id in ids.items()}
    assert sorted(rows) == sorted(
        [
            (short["rejection"], "CatsDeadLetterQueue", "InvalidMessage", "", ""),
            (
                short["moved"],
                "CatsDeadLetterQueue",
                "MaxReceiveCountExceeded",
                "",
                short["rejection"],
            ),
            (short["classified"], "WorkflowDeadLetterQueue", "ImageHostError", "yes", ""),
            (
                short["classified copy"],
                "WorkflowDeadLetterQueue",
                "ImageHostError",
                "yes",
                short["classified"],
            ),
            (short["broken"], "WorkflowDeadLetterQueue", "ImageNotFound", "", ""),
            (short["broken copy"], "WorkflowDeadLetterQueue", "ImageNotFound", "", short["broken"]),
        ]
    )
    assert result.stdout.splitlines()[-1] == (
        "6 dead letter(s), 2 superseded (image classified since; a redrive keeps them unless "
        "--force), 3 copies of another letter (a redrive deletes them)"
    )


def test_list_at_80_columns_shows_the_short_ids_whole(copied_letters: Copies) -> None:
    ids = copied_letters.ids

    # WHEN the dead letters are listed as a table on a terminal 80 columns wide
    result = run_cli(
        make_runner(COLUMNS="80"), "dlq", "list", "--stack-name", STACK, "--region", REGION
    )

    # THEN no line is wider, and every id and every copy's first letter is shown whole (the
    # first 8 characters of its SQS id) on the rows
    assert result.exit_code == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    table = "\n".join(line for line in result.stdout.splitlines() if line.startswith("│"))
    assert {message_id[:8] for message_id in ids.values()} <= set(
        re.findall(r"│ ([0-9a-f-]{8}) ", table)
    )
    assert [table.count(ids[first][:8]) for first in ("rejection", "classified", "broken")] == [
        2,
        2,
        2,
    ]


def test_list_json_names_the_letter_each_copy_copies(copied_letters: Copies) -> None:
    ids = copied_letters.ids

    # WHEN the dead letters are listed as JSON lines
    result = _list("--json")

    # THEN each letter's copy_of is its first letter's id, or "" for a first letter
    assert result.exit_code == 0, result.stderr
    listed = {x["message_id"]: x["copy_of"] for x in map(json.loads, result.stdout.splitlines())}
    assert listed == {
        ids["broken"]: "",
        ids["broken copy"]: ids["broken"],
        ids["classified"]: "",
        ids["classified copy"]: ids["classified"],
        ids["rejection"]: "",
        ids["moved"]: ids["rejection"],
    }


def test_redrive_sends_each_letter_once_and_deletes_its_copies(copied_letters: Copies) -> None:
    letters = copied_letters.letters

    # WHEN every dead-letter queue is redriven
    result = redrive()

    # THEN the broken image's letter went back once; the superseded letter and the rejection
    # are kept, with their reasons; every copy is deleted, and the output says so
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "CatsDeadLetterQueue: 0 message(s) sent back\n"
        "DogsDeadLetterQueue: 0 message(s) sent back\n"
        "ProducerDeadLetterQueue: 0 message(s) sent back\n"
        "WorkflowDeadLetterQueue: 1 message(s) sent back\n"
        f"CatsDeadLetterQueue: 1 message(s) kept (InvalidMessage: {REJECTED})\n"
        f"WorkflowDeadLetterQueue: 1 message(s) kept (ImageHostError: {SUPERSEDED})\n"
        f"CatsDeadLetterQueue: 1 copy deleted ({COPY})\n"
        f"WorkflowDeadLetterQueue: 2 copies deleted ({COPY})\n"
    )
    assert letters.bodies("CatsQueue") == [_replayed(STILL_BROKEN_URL)]
    assert letters.bodies("WorkflowDeadLetterQueue") == [
        _workflow_letter(CLASSIFIED_URL, "ImageHostError")
    ]
    assert letters.bodies("CatsDeadLetterQueue") == [NO_URL]


def test_forced_redrive_still_sends_each_letter_once(copied_letters: Copies) -> None:
    letters = copied_letters.letters

    # WHEN every dead-letter queue is redriven with --force
    result = redrive("--force")

    # THEN the superseded letter and the rejection go back too, each once; copies are deleted
    # all the same
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "CatsDeadLetterQueue: 1 message(s) sent back\n"
        "DogsDeadLetterQueue: 0 message(s) sent back\n"
        "ProducerDeadLetterQueue: 0 message(s) sent back\n"
        "WorkflowDeadLetterQueue: 2 message(s) sent back\n"
        f"CatsDeadLetterQueue: 1 copy deleted ({COPY})\n"
        f"WorkflowDeadLetterQueue: 2 copies deleted ({COPY})\n"
    )
    assert letters.bodies("CatsQueue") == sorted(
        [NO_URL, _replayed(CLASSIFIED_URL), _replayed(STILL_BROKEN_URL)]
    )
    assert letters.bodies("WorkflowDeadLetterQueue") == []
    assert letters.bodies("CatsDeadLetterQueue") == []
