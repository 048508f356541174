"""The classifier's per-record log record and the tooling's reader of it: one contract.

The classifier writes ``record_outcome`` (``classifier.models.RecordOutcomeLog``); the demo,
the chaos run and the console read it with ``tweetlens.accounting.classifier_records``. Both
ends are pinned here, so neither can change the record without the other noticing.
"""

from __future__ import annotations

import json
from types import ModuleType

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from classifier.models import RECORD_OUTCOME_KEY, RECORD_OUTCOME_VERSION, RecordOutcomeLog
from classifier.observability import logger
from tests.unit.classifier.classifier_testkit import Cloud, load_event
from tests.unit.classifier.test_classifier_handler import STARTED_RECORDS, app  # noqa: F401
from tweetlens import accounting
from tweetlens.accounting import AccountingError, ClassifierRecord, classifier_records


def test_both_ends_name_the_same_key_version_and_fields() -> None:
    # GIVEN the writer's and the reader's models / WHEN compared / THEN they are one schema
    assert (RECORD_OUTCOME_KEY, RECORD_OUTCOME_VERSION) == (
        accounting.RECORD_OUTCOME_KEY,
        accounting.RECORD_OUTCOME_VERSION,
    )
    assert set(RecordOutcomeLog.model_fields) == set(ClassifierRecord.model_fields)
    writer = RecordOutcomeLog.model_json_schema()["$defs"]["Outcome"]["enum"]
    reader = ClassifierRecord.model_json_schema()["properties"]["outcome"]["enum"]
    assert sorted(writer) == sorted(reader)


def test_the_tooling_reads_what_the_classifier_logs(
    app: ModuleType,  # noqa: F811
    cloud: Cloud,
    lambda_context: LambdaContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN the batch sample: 8 records start executions, 1 repeats an image, 1 is poison
    event = load_event("classifier_sqs_batch.json")
    caplog.clear()
    # WHEN the handler runs and the tooling reads its log lines, as Powertools writes them
    app.lambda_handler(event, lambda_context)
    lines = "\n".join(
        logger.registered_formatter.format(entry)
        for entry in caplog.records
        if entry.name == logger.name
    )
    records = list(classifier_records([lines]))
    # THEN there is one record per SQS record, with the outcome the handler gave it
    ids = [record["messageId"] for record in event["Records"]]
    assert [record.message_id for record in records] == ids
    outcomes = {record.message_id: record.outcome for record in records}
    assert outcomes == {
        message_id: (
            "ExecutionStarted"
            if index in STARTED_RECORDS
            else "Rejected"
            if index == 2
            else "Duplicate"
        )
        for index, message_id in enumerate(ids)
    }
    # AND a started record names its execution and route; the poison one has no route
    started = records[0]
    assert (started.route, started.execution.endswith("-1"), started.version) == ("cats", True, 1)
    assert (records[2].route, records[2].url_sha256, records[2].execution) == (None, None, "")
    # AND the per-message outcomes the demo accounts with follow from them
    assert accounting.classifier_outcomes(
        [json.dumps({RECORD_OUTCOME_KEY: r.model_dump()}) for r in records[:1]]
    ) == {ids[0]: accounting.RecordOutcome("ExecutionStarted", "cats", started.execution)}


def _line(record: object) -> str:
    return json.dumps({"message": "anything at all", RECORD_OUTCOME_KEY: record})


def test_the_line_wording_does_not_matter() -> None:
    # GIVEN a record under a reworded message
    record = {
        "version": 1,
        "message_id": "m1",
        "outcome": "InFlight",
        "event_source_arn": "arn:aws:sqs:us-east-1:123456789012:cats",
        "route": "cats",
        "execution": "abc-1",
    }
    # WHEN the tooling reads it / THEN it is read by its key, whatever the words
    assert accounting.classifier_outcomes([_line(record)]) == {
        "m1": accounting.RecordOutcome("InFlight", "cats", "abc-1")
    }


def test_another_version_is_refused_by_name() -> None:
    # GIVEN a record of version 2
    line = _line({"version": 2, "message_id": "m1"})
    # WHEN it is read / THEN the tooling says it cannot read that version
    with pytest.raises(AccountingError, match="of version 2; this tooling reads version 1"):
        list(classifier_records([line]))


def test_a_record_not_matching_its_version_is_refused() -> None:
    # GIVEN a version 1 record with an outcome the schema does not know
    line = _line({"version": 1, "message_id": "m1", "outcome": "Lost", "event_source_arn": "arn"})
    # WHEN it is read / THEN it is refused, not counted as something it is not
    with pytest.raises(AccountingError, match="does not match version 1: 1 problem"):
        list(classifier_records([line]))


def test_lines_without_the_record_are_skipped() -> None:
    # GIVEN log text with other lines, one mentioning the key in its words only
    text = "START RequestId\n" + json.dumps({"message": "record_outcome mentioned"}) + "\nnot json"
    # WHEN it is read / THEN there is no record
    assert list(classifier_records([text])) == []


def _started(message_id: str, execution: str) -> str:
    return _line(
        {
            "version": 1,
            "message_id": message_id,
            "outcome": "ExecutionStarted",
            "event_source_arn": "arn:aws:sqs:us-east-1:123456789012:cats",
            "route": "cats",
            "execution": execution,
        }
    )


@pytest.mark.parametrize("later_first", [False, True])
def test_a_message_that_started_twice_names_its_later_attempt(later_first: bool) -> None:
    # GIVEN one message logged ExecutionStarted twice: its batch's worker died after its start
    # was logged, and the redelivery, finding that attempt ended without a result, started
    # the next one (logs in either order: invocations are listed as they end)
    lines = [_started("m1", "abc-1"), _started("m1", "abc-2")]
    if later_first:
        lines.reverse()
    # WHEN the tooling reads the outcomes
    outcomes = accounting.classifier_outcomes(lines)
    # THEN the message names the later attempt, the one it ends with
    assert outcomes == {"m1": accounting.RecordOutcome("ExecutionStarted", "cats", "abc-2")}
