"""Where every published message ended: the pipeline's "nothing is lost" promise, checked.

Everything here is read back from what really happened in a deployed stack — the producer's
responses, the classifier's per-record log lines, the executions and the dead-letter queues —
never inferred by subtraction. ``lost`` is what no such record accounts for.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError

from tweetlens.dlq import PRODUCER_DLQ, WORKFLOW_DLQ, DeadLetter
from tweetlens_naming import execution_sequence

# The classifier logs one record per SQS record under this key, in a versioned schema
# (docs/architecture.md, "Classifier outcomes"); the line's words are for people only.
RECORD_OUTCOME_KEY = "record_outcome"
RECORD_OUTCOME_VERSION = 1
# The producer logs its run summary (the handler's response) as "Producer run finished".
PRODUCER_FINISHED = "Producer run finished"
STARTED = "ExecutionStarted"
# WorkflowType=EXPRESS: the classifier waited for the execution, which classified the image
# (an execution that found it a duplicate is logged Duplicate); one that failed for good is
# logged ExecutionDeadLettered and settled by its workflow dead letter.
CLASSIFIED = "Classified"
DEAD_LETTERED = "ExecutionDeadLettered"
# A duplicate: the URL is DONE or carried by another record of the batch (Duplicate), or an
# execution for it is running (InFlight).
CLASSIFIER_DUPLICATES = ("Duplicate", "InFlight")


class AccountingError(Exception):
    """The logs hold a record this tooling cannot read (another schema version)."""


class ClassifierRecord(BaseModel):
    """The classifier's record of one SQS record, version 1 (its ``RecordOutcomeLog``).

    Fields the tooling does not read are allowed, so the classifier may add optional ones
    within a version; a change of meaning is a new version, refused here by name.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: Literal[1]
    message_id: str
    outcome: Literal[
        "ExecutionStarted",
        "Duplicate",
        "InFlight",
        "Rejected",
        "Classified",
        "ExecutionDeadLettered",
    ]
    event_source_arn: str
    route: str | None = None
    url_sha256: str | None = None
    execution: str = ""
    # EXPRESS: what the record's execution billed, StartSyncExecution's billingDetails
    # (billedDurationInMilliseconds, billedMemoryUsedInMB); left out when none ran.
    billing: dict[str, int] | None = None


class RecordOutcome(NamedTuple):
    """How the classifier ended one message (from its ``ClassifierRecord``)."""

    outcome: str
    # The route, or the source queue ARN when the record had no valid message.
    where: str
    # Name of the execution the record started or joined; "" when there is none.
    execution: str = ""


@dataclass
class RouteTally:
    published: int = 0
    started: int = 0
    classified: int = 0
    duplicates: int = 0
    running: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)

    @property
    def settled(self) -> int:
        return self.duplicates + sum(self.dead_letters.values()) + self.classified

    @property
    def lost(self) -> int:
        return self.published - self.settled - self.running


@dataclass
class ExecutionOutcome:
    arn: str
    name: str
    route: str
    url: str
    status: str  # RUNNING, DONE, DUPLICATE, FAILED, TIMED_OUT, ABORTED
    error: str = ""


@dataclass
class Accounting:
    routes: dict[str, RouteTally]
    executions: list[ExecutionOutcome]
    workflow_dead_letters: int
    failed_executions: int

    @property
    def lost(self) -> int:
        return sum(tally.lost for tally in self.routes.values())

    @property
    def published(self) -> int:
        return sum(tally.published for tally in self.routes.values())

    def problems(self) -> list[str]:
        """Broken invariants, in words; empty when every message is accounted for."""
        found = [
            f"route {route}: {tally.lost} message(s) lost"
            for route, tally in sorted(self.routes.items())
            if tally.lost != 0
        ]
        if self.failed_executions != self.workflow_dead_letters:
            found.append(
                f"{self.failed_executions} failed execution(s) but "
                f"{self.workflow_dead_letters} workflow dead letter(s)"
            )
        return found


def published_per_route(producer_payloads: Iterable[Mapping[str, Any]]) -> Counter[str]:
    published: Counter[str] = Counter()
    for payload in producer_payloads:
        published.update({route: int(n) for route, n in payload.get("published", {}).items()})
    return published


def _json_lines(log_texts: Iterable[str], marker: str) -> Iterator[dict[str, Any]]:
    """The JSON log lines (objects) whose text holds ``marker``."""
    for text in log_texts:
        for line in text.splitlines():
            if marker not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry


def classifier_records(log_texts: Iterable[str]) -> Iterator[ClassifierRecord]:
    """Every ``record_outcome`` the classifier logged, in log order.

    Raises ``AccountingError`` for a record of another schema version or shape: figures read
    from records this tooling does not understand would be wrong, not merely incomplete.
    """
    for entry in _json_lines(log_texts, RECORD_OUTCOME_KEY):
        raw = entry.get(RECORD_OUTCOME_KEY)
        if raw is None:
            continue
        version = raw.get("version") if isinstance(raw, dict) else None
        if version != RECORD_OUTCOME_VERSION:
            raise AccountingError(
                f"a classifier {RECORD_OUTCOME_KEY} of version {version!r}; this tooling reads "
                f"version {RECORD_OUTCOME_VERSION}: upgrade tweetlens"
            )
        try:
            yield ClassifierRecord.model_validate(raw)
        except ValidationError as error:
            raise AccountingError(
                f"a classifier {RECORD_OUTCOME_KEY} does not match version "
                f"{RECORD_OUTCOME_VERSION}: {error.error_count()} problem(s)"
            ) from error


def producer_summaries(log_texts: Iterable[str]) -> list[dict[str, Any]]:
    """The producer's run summaries read back from its logs, for ``published_per_route``.

    For when the responses themselves are not at hand (a scheduled run's response goes nowhere).
    A run that died before its summary is missing: what it published counts as lost.
    """
    return [
        entry
        for entry in _json_lines(log_texts, PRODUCER_FINISHED)
        if entry.get("message") == PRODUCER_FINISHED
    ]


def classifier_outcomes(log_texts: Iterable[str]) -> dict[str, RecordOutcome]:
    """message id → its RecordOutcome, from the classifier's records (``classifier_records``).

    A record can be processed twice (its batch failed after it succeeded, and SQS redelivered
    it); it started an execution if either time did. If both times did, it names the later
    attempt (the higher sequence), whatever order the logs come in: the redelivery finds the
    first attempt ended without classifying the image (failed transiently, its dead letter
    sent) and starts the next, which is how the message ends. Keeping the first would leave
    the later execution to no message (a classifier worker killed mid-batch, or timed out,
    after earlier records of its batch had logged their starts).
    """
    outcomes: dict[str, RecordOutcome] = {}
    for record in classifier_records(log_texts):
        where = record.route or record.event_source_arn
        held = outcomes.get(record.message_id)
        if (
            held is None
            or held.outcome != STARTED
            or (
                record.outcome == STARTED
                and execution_sequence(record.execution) > execution_sequence(held.execution)
            )
        ):
            outcomes[record.message_id] = RecordOutcome(record.outcome, where, record.execution)
    return outcomes


def execution_outcomes(
    sfn: Any, state_machine_arn: str, known: dict[str, ExecutionOutcome] | None = None
) -> list[ExecutionOutcome]:
    """Every execution of the state machine with its route and outcome.

    ``known`` (ARN → outcome) is filled in as executions end and saves describing them again:
    a caller that asks every few seconds describes only the executions still running.
    """
    found: list[ExecutionOutcome] = []
    paginator = sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn):
        for summary in page["executions"]:
            ended = known.get(summary["executionArn"]) if known is not None else None
            if ended is not None:
                found.append(ended)
                continue
            described = sfn.describe_execution(executionArn=summary["executionArn"])
            request = json.loads(described.get("input") or "{}")
            message = request.get("message") or {}
            status = str(described["status"])
            error = str(described.get("error", ""))
            if status == "SUCCEEDED":
                output = json.loads(described.get("output") or "{}")
                status = str(output.get("status", "SUCCEEDED"))
            outcome = ExecutionOutcome(
                arn=summary["executionArn"],
                name=str(summary["name"]),
                route=str(message.get("route", "")),
                url=str(message.get("url", "")),
                status=status,
                error=error,
            )
            if known is not None and status != "RUNNING":
                known[outcome.arn] = outcome
            found.append(outcome)
    return found


def account(
    *,
    published: Mapping[str, int],
    outcomes: Mapping[str, RecordOutcome],
    executions: list[ExecutionOutcome],
    dead_letters: list[DeadLetter],
    route_of_source: Mapping[str, str],
) -> Accounting:
    routes: dict[str, RouteTally] = {
        route: RouteTally(published=n) for route, n in published.items()
    }

    def tally(route: str) -> RouteTally:
        return routes.setdefault(route, RouteTally())

    # Express executions are not listed: their failures are counted from the classifier's lines.
    failed = 0
    for outcome, where, _ in outcomes.values():
        route = route_of_source.get(where, where)
        if outcome in CLASSIFIER_DUPLICATES:
            tally(route).duplicates += 1
        elif outcome == STARTED:
            tally(route).started += 1
        elif outcome == CLASSIFIED:
            tally(route).classified += 1
        elif outcome == DEAD_LETTERED:
            failed += 1  # settled through its workflow dead letter, counted below
    for execution in executions:
        if execution.status == "DONE":
            tally(execution.route).classified += 1
        elif execution.status == "DUPLICATE":
            tally(execution.route).duplicates += 1
        elif execution.status == "RUNNING":
            tally(execution.route).running += 1
        else:
            failed += 1  # settled through its workflow dead letter, counted below
    workflow_letters = 0
    for letter in dead_letters:
        if letter.queue == PRODUCER_DLQ:
            continue  # data the producer never published: it settles no published message
        route = letter.route or route_of_source.get(letter.queue, letter.queue)
        tally(route).dead_letters[letter.error] += 1
        workflow_letters += letter.queue == WORKFLOW_DLQ
    return Accounting(
        routes=routes,
        executions=executions,
        workflow_dead_letters=workflow_letters,
        failed_executions=failed,
    )
