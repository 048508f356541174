"""Where every published message ended: the pipeline's "nothing is lost" promise, checked.

Everything here is read back from what really happened in a deployed stack — the producer's
responses, the classifier's per-record log lines, the executions and the dead-letter queues —
never inferred by subtraction. ``lost`` is what no such record accounts for.

Given SQS's record of the messages it accepted (the demo's, on the local cloud), each message is
settled to one end by its own records (``tweetlens.settlement``), and a message with no end
(lost) or with two (counted twice) is named; the per-route figures count those ends. Dead
letters are sent at least once: a letter sent again for the same execution or route message (a
copy, ``tweetlens.dlq.mark_copies``) is one end with its first, a recognised duplicate named
apart, never counted twice. Without that record (`tweetlens console` apart from the cloud, a
stack in AWS) only per-route totals can be compared: a message counted twice there would hide a
lost one of the same route.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError

from tweetlens.dlq import PRODUCER_DLQ, WORKFLOW_DLQ, DeadLetter, mark_copies
from tweetlens_naming import execution_sequence

if TYPE_CHECKING:
    from tweetlens.settlement import Settlement

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
# The classifier sent the message to its route's dead-letter queue (NotJson, InvalidMessage):
# settled by that letter, which names the message in ``source_message_id``.
REJECTED = "Rejected"
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


class AcceptedMessage(NamedTuple):
    """One message SQS accepted on a route queue: its route and its body (a route message)."""

    route: str
    body: Mapping[str, Any]


@dataclass(frozen=True)
class UnsettledMessage:
    """A message that did not end exactly once: no end (lost), or ``ends`` (counted twice)."""

    message_id: str
    route: str
    post_id: str
    url: str
    ends: tuple[str, ...] = ()

    @property
    def lost(self) -> bool:
        return not self.ends

    def describe(self) -> str:
        """One line a person can act on: which message, of which post and photo, and its ends."""
        kind = "counted twice" if self.ends else "lost"
        found = " + ".join(self.ends) if self.ends else "no end"
        return (
            f"{kind}: {self.route} message {self.message_id} "
            f"(post {self.post_id or '?'}, {self.url or 'no url'}): {found}"
        )


@dataclass(frozen=True)
class CopiedMessage:
    """A message ended by a dead letter that was sent more than once (``copies``: the SQS ids
    of the letters sent again): a recognised duplicate, one end, counted once."""

    message_id: str
    route: str
    post_id: str
    url: str
    end: str
    copies: tuple[str, ...]

    def describe(self) -> str:
        """One line: which message, its one end, and the copies of its letter."""
        return (
            f"copy: {self.route} message {self.message_id} "
            f"(post {self.post_id or '?'}, {self.url or 'no url'}): {self.end}, its letter sent "
            f"{1 + len(self.copies)} times (copies {', '.join(self.copies)}); counted once"
        )


@dataclass
class Accounting:
    routes: dict[str, RouteTally]
    executions: list[ExecutionOutcome]
    workflow_dead_letters: int
    failed_executions: int
    # Settled message by message (``accepted`` given to ``account``): the messages that did not
    # end exactly once, lost ones first; executions that no message started; and, per route,
    # what the producer said it published where SQS's record differs.
    per_message: bool = False
    unsettled: list[UnsettledMessage] = field(default_factory=list)
    orphan_executions: list[str] = field(default_factory=list)
    producer_disagrees: dict[str, int] = field(default_factory=dict)
    # Messages whose letter was sent more than once (recognised duplicates, counted once), and
    # how many route and workflow letters are copies (``tweetlens.dlq.mark_copies``): counted
    # nowhere else, by route or message.
    copies: list[CopiedMessage] = field(default_factory=list)
    letter_copies: int = 0
    # EXPRESS: Step Functions lists no execution (``executions`` is empty).
    workflow_type: str = "STANDARD"

    @property
    def is_express(self) -> bool:
        return self.workflow_type == "EXPRESS"

    @property
    def lost(self) -> int:
        return sum(tally.lost for tally in self.routes.values())

    @property
    def published(self) -> int:
        return sum(tally.published for tally in self.routes.values())

    @property
    def lost_messages(self) -> list[UnsettledMessage]:
        return [message for message in self.unsettled if message.lost]

    @property
    def double_counted(self) -> list[UnsettledMessage]:
        return [message for message in self.unsettled if not message.lost]

    def problems(self) -> list[str]:
        """Broken invariants, in words; empty when every message is accounted for."""
        found: list[str] = []
        for route, tally in sorted(self.routes.items()):
            lost = [m.message_id for m in self.lost_messages if m.route == route]
            twice = [m.message_id for m in self.double_counted if m.route == route]
            if tally.lost != 0:
                found.append(
                    f"route {route}: {tally.lost} message(s) lost"
                    + (f" ({', '.join(lost)})" if lost else "")
                )
            if twice:
                found.append(
                    f"route {route}: {len(twice)} message(s) counted twice ({', '.join(twice)})"
                )
            if route in self.producer_disagrees:
                found.append(
                    f"route {route}: the producer reported {self.producer_disagrees[route]} "
                    f"published, SQS accepted {tally.published}"
                )
        if self.orphan_executions:
            found.append(
                f"{len(self.orphan_executions)} execution(s) started for no message "
                f"({', '.join(self.orphan_executions)})"
            )
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
    """message id → its RecordOutcome, from the classifier's log lines (``record_outcomes``)."""
    return record_outcomes(classifier_records(log_texts))


def record_outcomes(records: Iterable[ClassifierRecord]) -> dict[str, RecordOutcome]:
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
    for record in records:
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
    sfn: Any,
    state_machine_arn: str,
    known: dict[str, ExecutionOutcome] | None = None,
    *,
    workflow_type: str | None = None,
) -> list[ExecutionOutcome]:
    """Every execution of the state machine with its route and outcome.

    ``known`` (ARN → outcome) is filled in as executions end and saves describing them again:
    a caller that asks every few seconds describes only the executions still running.

    EXPRESS: none. ``ListExecutions`` refuses an Express machine (StateMachineTypeNotSupported,
    in AWS as in the local cloud); its executions are accounted from the classifier's records,
    the results table and the workflow's log group instead. ``workflow_type`` (the machine's,
    when the caller knows it) saves asking ``DescribeStateMachine``.
    """
    if workflow_type is None:
        described = sfn.describe_state_machine(stateMachineArn=state_machine_arn)
        workflow_type = str(described.get("type") or "STANDARD")
    if workflow_type == "EXPRESS":
        return []
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
    accepted: Mapping[str, AcceptedMessage] | None = None,
    settlement: Settlement | None = None,
) -> Accounting:
    """Where every published message ended, per route.

    With ``accepted`` (message id → the message SQS accepted) and its ``settlement``
    (``tweetlens.settlement.settle_messages``), each message counts once, at the end its own
    records give it, and the ones that did not end exactly once are named. Without them the
    routes' totals are compared: ``published`` from the producer, every outcome, execution and
    letter counted where it says it belongs.
    """
    # A copy of a letter (the same execution's or route message's, sent again) is no end of
    # its own: counted with its first letter, nowhere else.
    marked = mark_copies(dead_letters)
    first_letters = [letter for letter in marked if not letter.copy_of]
    letter_copies = len(marked) - len(first_letters)
    failed, workflow_letters = _failures(outcomes, executions, first_letters)
    if accepted is not None and settlement is not None:
        # A workflow letter a redrive sent back is gone from its queue, yet it closed its
        # failed execution as much as one still there.
        workflow_letters += settlement.workflow_letters_sent_back
        found = _account_messages(
            published=published,
            outcomes=outcomes,
            executions=executions,
            accepted=accepted,
            settlement=settlement,
            failed=failed,
            workflow_letters=workflow_letters,
        )
        found.letter_copies = letter_copies
        return found
    routes: dict[str, RouteTally] = {
        route: RouteTally(published=n) for route, n in published.items()
    }

    def tally(route: str) -> RouteTally:
        return routes.setdefault(route, RouteTally())

    # Express executions are not listed: their failures are counted from the classifier's lines.
    for outcome, where, _ in outcomes.values():
        route = route_of_source.get(where, where)
        if outcome in CLASSIFIER_DUPLICATES:
            tally(route).duplicates += 1
        elif outcome == STARTED:
            tally(route).started += 1
        elif outcome == CLASSIFIED:
            tally(route).classified += 1
    for execution in executions:
        if execution.status == "DONE":
            tally(execution.route).classified += 1
        elif execution.status == "DUPLICATE":
            tally(execution.route).duplicates += 1
        elif execution.status == "RUNNING":
            tally(execution.route).running += 1
    for letter in first_letters:
        if letter.queue == PRODUCER_DLQ:
            continue  # data the producer never published: it settles no published message
        route = letter.route or route_of_source.get(letter.queue, letter.queue)
        tally(route).dead_letters[letter.error] += 1
    return Accounting(
        routes=routes,
        executions=executions,
        workflow_dead_letters=workflow_letters,
        failed_executions=failed,
        letter_copies=letter_copies,
    )


def _failures(
    outcomes: Mapping[str, RecordOutcome],
    executions: list[ExecutionOutcome],
    dead_letters: list[DeadLetter],
) -> tuple[int, int]:
    """Executions that failed (each owes one workflow dead letter), and the workflow letters.

    Express executions are not listed: their failures are the classifier's
    ExecutionDeadLettered records.
    """
    failed = sum(outcome == DEAD_LETTERED for outcome, _, _ in outcomes.values())
    failed += sum(e.status not in ("DONE", "DUPLICATE", "RUNNING") for e in executions)
    letters = sum(letter.queue == WORKFLOW_DLQ for letter in dead_letters)
    return failed, letters


def _account_messages(
    *,
    published: Mapping[str, int],
    outcomes: Mapping[str, RecordOutcome],
    executions: list[ExecutionOutcome],
    accepted: Mapping[str, AcceptedMessage],
    settlement: Settlement,
    failed: int,
    workflow_letters: int,
) -> Accounting:
    """``account`` message by message (see there)."""
    # Every route the producer names has a row, even one SQS accepted nothing on.
    routes: dict[str, RouteTally] = {route: RouteTally() for route in published}
    unsettled: list[UnsettledMessage] = []
    twice: list[UnsettledMessage] = []
    copies: list[CopiedMessage] = []
    for message_id, message in accepted.items():
        tally = routes.setdefault(message.route, RouteTally())
        tally.published += 1
        end = settlement.fate.get(message_id, "lost")
        if end == "done":
            tally.classified += 1
        elif end == "duplicate":
            tally.duplicates += 1
        elif end == "running":
            tally.running += 1
        elif end.startswith("dead:"):
            tally.dead_letters[end.removeprefix("dead:")] += 1
        # "lost": no end; RouteTally.lost counts it.
        if outcomes.get(message_id, RecordOutcome("", "")).outcome == STARTED:
            tally.started += 1
        named = UnsettledMessage(
            message_id=message_id,
            route=message.route,
            post_id=str(message.body.get("post_id") or ""),
            url=str(message.body.get("url") or ""),
        )
        if end == "lost":
            unsettled.append(named)
        elif message_id in settlement.double_counted:
            ends = tuple(settlement.double_counted[message_id])
            twice.append(replace(named, ends=ends))
        if end != "lost" and message_id in settlement.copies:
            copies.append(
                CopiedMessage(
                    message_id=named.message_id,
                    route=named.route,
                    post_id=named.post_id,
                    url=named.url,
                    end=end,
                    copies=tuple(settlement.copies[message_id]),
                )
            )
    return Accounting(
        routes=routes,
        executions=executions,
        workflow_dead_letters=workflow_letters,
        failed_executions=failed,
        per_message=True,
        unsettled=unsettled + twice,
        orphan_executions=list(settlement.orphan_executions),
        copies=copies,
        producer_disagrees={
            route: published.get(route, 0)
            for route, tally in sorted(routes.items())
            if published.get(route, 0) != tally.published
        },
    )
