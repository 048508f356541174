"""Settlement: tie every accepted message to exactly one end, from records of what happened.

Shared by the demo's accounting (``tweetlens.accounting.account``) and the chaos run's
invariants: a message is settled by its own records, never by a count of its route, so a
message counted twice cannot hide a lost one.

A redrive deletes a letter and sends its message again, tagged with what the letter ended
(``redriven``: the message attribute ``tweetlens.dlq.REDRIVEN_FROM_ATTRIBUTE``). That
successor is the same message, not a new one: the message whose letter it was ends where its
successor ends, along the whole chain (a message redriven twice), and a successor has no
fate of its own (``Settlement.fate`` leaves it out).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tweetlens import accounting
from tweetlens.dlq import WORKFLOW_DLQ, DeadLetter, mark_copies

_NOT_FAILED: Final = frozenset({"DONE", "DUPLICATE", "RUNNING"})


@dataclass
class Settlement:
    """Where each accepted message ended: ``done``, ``duplicate``, ``dead:<error>``,
    ``running`` or ``lost``; and what could not be tied to a message."""

    fate: dict[str, str]
    orphan_executions: list[str]
    adopted: int
    # Message id → every end its records give it, when they give it more than one: a route
    # dead letter besides a record that settled it, or (EXPRESS) both Classified and
    # ExecutionDeadLettered. ``fate`` keeps one of them.
    double_counted: dict[str, list[str]] = field(default_factory=dict)
    # Message id → the SQS ids of the copies of the letter that ended it (``dlq.mark_copies``:
    # a letter sent again for the same execution or route message). A recognised duplicate:
    # letters are sent at least once, so a copy is one end, not two.
    copies: dict[str, list[str]] = field(default_factory=dict)
    # Message id → the redriven message (``redriven``) whose end is its end: the last of the
    # chain, when the message's letter was sent back (once or more).
    successors: dict[str, str] = field(default_factory=dict)
    # How many workflow letters a redrive sent back (deleted from the queue, their messages
    # sent again, tagged): each closed a failed execution all the same.
    workflow_letters_sent_back: int = 0


# What a classifier outcome makes of its message, for naming a message's second end.
_END_OF_OUTCOME: Final = {
    accounting.CLASSIFIED: "done",
    accounting.DEAD_LETTERED: "dead",
    "Duplicate": "duplicate",
    "InFlight": "duplicate",
}


def _second_ends(outcome: str, name: str, fate: str) -> list[str] | None:
    """Both ends of a message that has a route dead letter (or had one, which a redrive sent
    back: ``fate`` follows it) and yet a record that settled it (``outcome``, with its
    execution ``name``); None when it has one end."""
    if outcome == accounting.STARTED:
        return [fate, f"started {name}"]
    if outcome in _END_OF_OUTCOME:
        return [fate, _END_OF_OUTCOME[outcome]]
    return None


# A fate that follows a redriven message (``redriven``): what its letter ended follows.
_FOLLOWS: Final = "follows:"
# Longer than any chain: each redrive sends the message one attempt higher, and a message
# carries at most ``MAX_ATTEMPT`` (99). Also bounds the recursion that follows one.
_MAX_CHAIN: Final = 100


class _Redriven:
    """The redriven messages (message id → what its letter ended, ``dlq.copy_key``) by what
    their letters ended, and a message's end followed along them."""

    def __init__(
        self, bodies: Mapping[str, Mapping[str, Any]], redriven: Mapping[str, str] | None
    ) -> None:
        self.of = dict(redriven or {})
        self.by_end: dict[str, list[str]] = defaultdict(list)
        # EXPRESS, a record naming no execution: a workflow letter's successor by its message's
        # key, one attempt lower (the redrive sent it one higher).
        self.by_key: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
        for message_id in bodies:
            ended = self.of.get(message_id)
            if ended is None:
                continue
            self.by_end[ended].append(message_id)
            if ended.startswith("execution:"):
                key = _message_key(dict(bodies[message_id]), attempt_offset=-1)
                if key is not None:
                    self.by_key[key].append(message_id)

    def workflow_letters(self, still_queued: Collection[str]) -> int:
        """How many workflow letters were sent back and are gone: one per execution (a redrive
        sends each execution's letter once, deleting its copies). An execution whose letter is
        still queued (``still_queued``: ARNs; a redrive stopped between send and delete) is
        counted by that letter already, not twice."""
        return len(
            {
                ended
                for ended in self.of.values()
                if ended.startswith("execution:")
                and ended.removeprefix("execution:") not in still_queued
            }
        )

    def of_message(self, message_id: str) -> str | None:
        """The fate of a message whose route letter was sent back, or None."""
        ended = f"message:{message_id}"
        return _FOLLOWS + ended if ended in self.by_end else None

    def of_execution(self, arn: str) -> str | None:
        """The fate of a message whose execution's workflow letter was sent back, or None."""
        ended = f"execution:{arn}"
        return _FOLLOWS + ended if arn and ended in self.by_end else None

    def of_key(self, key: tuple[str, str, str, str] | None) -> str | None:
        """The fate of a message whose workflow letter, found by its message's key, was sent
        back; or None."""
        found = self.by_key.get(key) if key is not None else None
        return _FOLLOWS + self.of[found[0]] if found else None

    def resolve(
        self,
        fate: dict[str, str],
        double: dict[str, list[str]],
        copies: dict[str, list[str]],
    ) -> dict[str, str]:
        """Replace every fate that follows a redriven message by where that message ended,
        along the chain (its double ends and copies come with it); returns message id → the
        last message of its chain. The redriven messages lose their own fate: each is the
        message whose letter it was, sent again (its end is that message's; were that letter
        still on its queue, a redrive that died before deleting it, the letter ends it)."""
        last_of: dict[str, str] = {}

        def follow(message_id: str, depth: int) -> str:
            if message_id in last_of:
                return last_of[message_id]
            # Until known, a message is its own last (a chain that came back to it ends here).
            last_of[message_id] = message_id
            end = fate.get(message_id, "lost")
            if not end.startswith(_FOLLOWS) or depth > _MAX_CHAIN:
                return message_id
            candidates = self.by_end[end.removeprefix(_FOLLOWS)]
            lasts = [follow(candidate, depth + 1) for candidate in candidates]
            # Sent back more than once (a redrive that died between sending and deleting the
            # letter, then ran again): the first that reached an end carries it.
            ended = [last for last in lasts if _settled(fate.get(last, "lost"))]
            last_of[message_id] = (ended or lasts)[0]
            return last_of[message_id]

        chains = {
            m: follow(m, 0) for m in fate if m not in self.of and fate[m].startswith(_FOLLOWS)
        }
        for message_id, last in chains.items():
            end = fate.get(last, "lost")
            end = "lost" if end.startswith(_FOLLOWS) else end
            fate[message_id] = end
            if message_id in double:
                double[message_id] = [
                    end if one.startswith(_FOLLOWS) else one for one in double[message_id]
                ]
            elif last in double:
                double[message_id] = list(double[last])
            if last in copies and message_id not in copies:
                copies[message_id] = list(copies[last])
        for message_id in self.of:
            fate.pop(message_id, None)
            double.pop(message_id, None)
            copies.pop(message_id, None)
        return chains


def _settled(end: str) -> bool:
    return end != "lost" and not end.startswith(_FOLLOWS)


def _first_letters(letters: list[DeadLetter]) -> tuple[list[DeadLetter], dict[str, list[str]]]:
    """The letters that are no copy, and each one's copies (letter id → the copies' ids)."""
    marked = mark_copies(letters)
    copies: dict[str, list[str]] = defaultdict(list)
    for letter in marked:
        if letter.copy_of:
            copies[letter.copy_of].append(letter.message_id)
    return [letter for letter in marked if not letter.copy_of], dict(copies)


def settle(
    bodies: Mapping[str, Mapping[str, Any]],
    outcomes: Mapping[str, accounting.RecordOutcome],
    executions: list[accounting.ExecutionOutcome],
    letters: list[DeadLetter],
    redriven: Mapping[str, str] | None = None,
) -> Settlement:
    """Tie every accepted message to exactly one end, from records of what happened.

    A record logged ``ExecutionStarted`` owns the execution its line names and ends as that
    execution ends (DONE, DUPLICATE, or failed with its workflow dead letter). A record logged
    ``Duplicate`` or ``InFlight`` is a duplicate - except that an execution nobody logged as
    started (its classifier worker was killed right after StartExecution) is owned by the
    first duplicate that names it: the redelivered record itself, or an equivalent.
    A message with a route dead letter ends there: the letter the classifier sent when it
    rejected the message (``Rejected``) names it in ``source_message_id``; one the queue's
    redrive policy moved keeps the message's id.
    A letter's copies (the same execution's, or the same route message's, sent again) make
    one end with it, named in ``copies``.
    ``redriven`` (message id → what its letter ended, for each message ``bodies`` holds that a
    redrive sent): a message whose letter was sent back ends where that message ends (see the
    module doc).
    """
    firsts, copies_of = _first_letters(letters)
    sent_back = _Redriven(bodies, redriven)
    copies: dict[str, list[str]] = {}
    workflow_letters: dict[str, DeadLetter] = {}
    route_letters: dict[str, DeadLetter] = {}
    for letter in firsts:
        if letter.queue == WORKFLOW_DLQ:
            workflow_letters[str(json.loads(letter.body).get("execution", ""))] = letter
        else:
            route_letters[letter.route_message_id] = letter

    fate: dict[str, str] = {}
    double: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    waiting: dict[str, list[str]] = defaultdict(list)
    for message_id in bodies:
        outcome, _, name = outcomes.get(message_id, accounting.RecordOutcome("", ""))
        followed = sent_back.of_message(message_id)
        if message_id in route_letters:
            fate[message_id] = "dead:" + route_letters[message_id].error
            _note_copies(copies, message_id, route_letters[message_id], copies_of)
            ends = _second_ends(outcome, name, fate[message_id])
            if ends is not None:
                double[message_id] = ends
        elif followed is not None:
            # Its route letter was sent back: it ends where that message ends.
            fate[message_id] = followed
            ends = _second_ends(outcome, name, followed)
            if ends is not None:
                double[message_id] = ends
        elif outcome == accounting.STARTED and name and name not in owner:
            owner[name] = message_id
        elif outcome == accounting.STARTED or outcome in accounting.CLASSIFIER_DUPLICATES:
            # A second StartExecution with the same name and input returns the first
            # execution: that record is a duplicate as much as an InFlight one.
            fate[message_id] = "duplicate"
            if name:
                waiting[name].append(message_id)
        elif outcome == accounting.REJECTED:
            # Its route letter (matched above, by the id it carries) would have settled it:
            # rejected, yet no letter holds it.
            fate[message_id] = "lost"
        else:
            fate[message_id] = "lost"

    adopted = 0
    orphans: list[str] = []
    unnamed_done: list[accounting.ExecutionOutcome] = []
    for execution in executions:
        starter = owner.pop(execution.name, None)
        if starter is None:
            candidates = waiting.get(execution.name, [])
            if not candidates:
                # Its starter's log line died with its worker, and the redelivered record,
                # finding the attempt already over, went on without naming it:
                # - a failed execution is closed by its own dead letter, which holds the
                #   message;
                # - an execution that ended DUPLICATE lost the claim to another one (a copy
                #   of the URL) and changed nothing; the redelivery, finding it ended, was
                #   settled by that other execution, which it names.
                # The message's own end is checked for every message above either way.
                # - an execution that classified the image (DONE) answered a message of its URL
                #   whose redelivery, run after another post's record named an earlier
                #   attempt, or found the image DONE, was settled as a duplicate: no orphan
                #   while such a message exists (checked below, once every fate is known).
                if execution.status == "DUPLICATE":
                    continue
                if execution.status == "DONE":
                    unnamed_done.append(execution)
                    continue
                letter_sent = (
                    execution.arn in workflow_letters
                    or sent_back.of_execution(execution.arn) is not None
                )
                if not letter_sent or execution.status in _NOT_FAILED:
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
            _note_copies(copies, starter, workflow_letters[execution.arn], copies_of)
        else:
            # Its workflow letter was sent back (it ends where that message ends), or lost.
            fate[starter] = sent_back.of_execution(execution.arn) or "lost"
    for name, starter in owner.items():
        fate[starter] = "lost"  # logged as started, yet no such execution exists
        orphans.append(name)
    for execution in unnamed_done:
        if not any(
            fate.get(message_id) == "duplicate" and body.get("url") == execution.url
            for message_id, body in bodies.items()
        ):
            orphans.append(execution.name)
    successors = sent_back.resolve(fate, double, copies)
    return Settlement(
        fate=fate,
        orphan_executions=orphans,
        adopted=adopted,
        double_counted=double,
        copies=copies,
        successors=successors,
        workflow_letters_sent_back=sent_back.workflow_letters(workflow_letters),
    )


def _note_copies(
    copies: dict[str, list[str]],
    message_id: str,
    letter: DeadLetter,
    copies_of: Mapping[str, list[str]],
) -> None:
    """Name the copies of ``letter``, which ended ``message_id``, when it has any."""
    if letter.message_id in copies_of:
        copies[message_id] = list(copies_of[letter.message_id])


# How a record's outcomes rank when a message was handled more than once (its batch failed
# after it was settled, or SQS delivered it again): the one that settled it wins.
_EXPRESS_RANK: Final = {
    accounting.CLASSIFIED: 0,
    accounting.DEAD_LETTERED: 1,
    "Duplicate": 2,
    "InFlight": 2,
}


def _message_key(message: Any, *, attempt_offset: int = 0) -> tuple[str, str, str, str] | None:
    """What tells a route message's letter apart: its post, media, route and ``attempt``.

    ``attempt`` belongs in it: a redrive sends the message one attempt higher, and the letter
    of that successor must not be taken for the letter of the message it continues.
    """
    if not isinstance(message, dict):
        return None
    attempt = message.get("attempt") or 0
    if type(attempt) is int:
        attempt += attempt_offset
    return (
        str(message.get("post_id")),
        str(message.get("media_key")),
        str(message.get("route")),
        str(attempt),
    )


def settle_express(
    bodies: Mapping[str, Mapping[str, Any]],
    records: list[accounting.ClassifierRecord],
    letters: list[DeadLetter],
    redriven: Mapping[str, str] | None = None,
) -> Settlement:
    """``settle`` for WorkflowType=EXPRESS, from the classifier's records and the letters.

    Express executions are never listed: the classifier waited for each and logged how its
    record ended. ``Classified`` is done; ``Duplicate`` and ``InFlight`` are duplicates;
    ``ExecutionDeadLettered`` is settled by the workflow dead letter of the execution it names
    - or, when it names none (an earlier delivery of the same message sent the letter, and
    its marker stopped a second one), by the letter carrying this message. ``Rejected`` is
    settled by the route letter naming the message (as in ``settle``). A record that
    logged nothing (its worker was killed, or it was left queued) counts only through a later
    delivery. A workflow letter no record accounts for is an orphan. A letter's copies make
    one end with it, named in ``copies`` (as in ``settle``). A message whose letter a redrive
    sent back (``redriven``, as in ``settle``) ends where that message ends.
    """
    firsts, copies_of = _first_letters(letters)
    sent_back = _Redriven(bodies, redriven)
    copies: dict[str, list[str]] = {}
    by_arn: dict[str, DeadLetter] = {}
    by_message: dict[tuple[str, str, str, str], list[DeadLetter]] = defaultdict(list)
    route_letters: dict[str, DeadLetter] = {}
    for letter in firsts:
        if letter.queue == WORKFLOW_DLQ:
            body = json.loads(letter.body)
            by_arn[str(body.get("execution", ""))] = letter
            key = _message_key(body.get("message"))
            if key is not None:
                by_message[key].append(letter)
        else:
            route_letters[letter.route_message_id] = letter

    best: dict[str, accounting.ClassifierRecord] = {}
    logged_outcomes: dict[str, set[str]] = defaultdict(set)
    # Every execution a message's ExecutionDeadLettered records name (a delivery after the one
    # that sent the letter names none).
    dead_executions: dict[str, list[str]] = defaultdict(list)
    for logged in records:
        logged_outcomes[logged.message_id].add(logged.outcome)
        if logged.outcome == accounting.DEAD_LETTERED and logged.execution:
            dead_executions[logged.message_id].append(logged.execution)
        held = best.get(logged.message_id)
        if held is None or _EXPRESS_RANK.get(logged.outcome, 3) < _EXPRESS_RANK.get(
            held.outcome, 3
        ):
            best[logged.message_id] = logged

    fate: dict[str, str] = {}
    double: dict[str, list[str]] = {}
    accounted: set[str] = set()
    for message_id, body in bodies.items():
        record = best.get(message_id)
        outcome = record.outcome if record is not None else ""
        followed = sent_back.of_message(message_id)
        if message_id in route_letters:
            fate[message_id] = "dead:" + route_letters[message_id].error
            _note_copies(copies, message_id, route_letters[message_id], copies_of)
            ends = _second_ends(outcome, "", fate[message_id])
            if ends is not None:
                double[message_id] = ends
        elif followed is not None:
            # Its route letter was sent back: it ends where that message ends.
            fate[message_id] = followed
            ends = _second_ends(outcome, "", followed)
            if ends is not None:
                double[message_id] = ends
        elif outcome == accounting.CLASSIFIED:
            fate[message_id] = "done"
            if accounting.DEAD_LETTERED in logged_outcomes[message_id]:
                # The image was classified for this message, and a delivery of it was also
                # dead-lettered: two ends, whichever came first.
                double[message_id] = ["done", "dead"]
        elif outcome in accounting.CLASSIFIER_DUPLICATES:
            fate[message_id] = "duplicate"
        elif outcome == accounting.DEAD_LETTERED and record is not None:
            named = [record.execution, *dead_executions[message_id]]
            key = _message_key(dict(body))
            earlier = by_message.get(key, []) if key is not None else []
            found = next((by_arn[arn] for arn in named if arn in by_arn), None) or (
                earlier[0] if earlier else None
            )
            # Its letter was sent back (found by the execution it names, else by its key):
            # it ends where that message ends.
            forward = next(
                (f for f in map(sent_back.of_execution, named) if f is not None), None
            ) or sent_back.of_key(key)
            if found is None and forward is not None:
                fate[message_id] = forward
            elif found is None:
                fate[message_id] = "lost"  # logged as dead-lettered, yet no letter holds it
            else:
                fate[message_id] = "dead:" + found.error
                accounted.add(str(json.loads(found.body).get("execution", "")))
                _note_copies(copies, message_id, found, copies_of)
        elif outcome == accounting.REJECTED:
            # Its route letter (matched above, by the id it carries) would have settled it:
            # rejected, yet no letter holds it.
            fate[message_id] = "lost"
        else:
            fate[message_id] = "lost"
    accounted.update(
        logged.execution
        for logged in records
        if logged.outcome == accounting.DEAD_LETTERED and logged.execution
    )
    orphans = sorted(arn for arn in by_arn if arn not in accounted)
    successors = sent_back.resolve(fate, double, copies)
    return Settlement(
        fate=fate,
        orphan_executions=orphans,
        adopted=0,
        double_counted=double,
        copies=copies,
        successors=successors,
        workflow_letters_sent_back=sent_back.workflow_letters(by_arn),
    )


def settle_messages(
    bodies: Mapping[str, Mapping[str, Any]],
    records: list[accounting.ClassifierRecord],
    executions: list[accounting.ExecutionOutcome],
    letters: list[DeadLetter],
    *,
    express: bool,
    redriven: Mapping[str, str] | None = None,
) -> Settlement:
    """``settle`` or, for WorkflowType=EXPRESS (whose executions are never listed),
    ``settle_express``."""
    if express:
        return settle_express(bodies, records, letters, redriven)
    return settle(bodies, accounting.record_outcomes(records), executions, letters, redriven)
