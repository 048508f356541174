"""Settlement: tie every accepted message to exactly one end, from records of what happened."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tweetlens import accounting
from tweetlens.dlq import WORKFLOW_DLQ, DeadLetter

_NOT_FAILED: Final = frozenset({"DONE", "DUPLICATE", "RUNNING"})


@dataclass
class Settlement:
    """Where each accepted message ended: ``done``, ``duplicate``, ``dead:<error>``,
    ``running`` or ``lost``; and what could not be tied to a message."""

    fate: dict[str, str]
    orphan_executions: list[str]
    adopted: int


def settle(
    bodies: Mapping[str, Mapping[str, Any]],
    outcomes: Mapping[str, accounting.RecordOutcome],
    executions: list[accounting.ExecutionOutcome],
    letters: list[DeadLetter],
) -> Settlement:
    """Tie every accepted message to exactly one end, from records of what happened.

    A record logged ``ExecutionStarted`` owns the execution its line names and ends as that
    execution ends (DONE, DUPLICATE, or failed with its workflow dead letter). A record logged
    ``Duplicate`` or ``InFlight`` is a duplicate - except that an execution nobody logged as
    started (its classifier worker was killed right after StartExecution) is owned by the
    first duplicate that names it: the redelivered record itself, or an equivalent.
    """
    workflow_letters: dict[str, DeadLetter] = {}
    route_letters: dict[str, DeadLetter] = {}
    for letter in letters:
        if letter.queue == WORKFLOW_DLQ:
            workflow_letters[str(json.loads(letter.body).get("execution", ""))] = letter
        else:
            route_letters[letter.message_id] = letter

    fate: dict[str, str] = {}
    owner: dict[str, str] = {}
    waiting: dict[str, list[str]] = defaultdict(list)
    for message_id in bodies:
        outcome, _, name = outcomes.get(message_id, accounting.RecordOutcome("", ""))
        if message_id in route_letters:
            fate[message_id] = "dead:" + route_letters[message_id].error
        elif outcome == accounting.STARTED and name and name not in owner:
            owner[name] = message_id
        elif outcome == accounting.STARTED or outcome in accounting.CLASSIFIER_DUPLICATES:
            # A second StartExecution with the same name and input returns the first
            # execution: that record is a duplicate as much as an InFlight one.
            fate[message_id] = "duplicate"
            if name:
                waiting[name].append(message_id)
        else:
            fate[message_id] = "lost"

    adopted = 0
    orphans: list[str] = []
    for execution in executions:
        starter = owner.pop(execution.name, None)
        if starter is None:
            candidates = waiting.get(execution.name, [])
            if not candidates:
                # Its starter's log line died with its worker, and the redelivered record,
                # finding the attempt already failed, started the next one: a failed
                # execution is closed by its own dead letter, which holds the message.
                if execution.arn not in workflow_letters or execution.status in _NOT_FAILED:
                    orphans.append(execution.name)
                continue
            starter = candidates.pop(0)
            adopted += 1
        if execution.status == "DONE":
            fate[starter] = "done"
        elif execution.status == "DUPLICATE":
            fate[starter] = "duplicate"
        elif execution.status == "RUNNING":
            fate[starter] = "running"
        elif execution.arn in workflow_letters:
            fate[starter] = "dead:" + workflow_letters[execution.arn].error
        else:
            fate[starter] = "lost"
    for name, starter in owner.items():
        fate[starter] = "lost"  # logged as started, yet no such execution exists
        orphans.append(name)
    return Settlement(fate=fate, orphan_executions=orphans, adopted=adopted)
