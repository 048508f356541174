"""Dead letters: list them with their reason, and send them back to be processed again.

Three kinds of dead-letter queue hold tweetlens messages:

* a route's DLQ (``CatsDeadLetterQueue`` …): the original message body, either rejected by the
  classifier (message attributes ``error`` and ``reason``) or moved there by the queue's
  redrive policy after ``maxReceiveCount`` failed receives (no attributes);
* ``WorkflowDeadLetterQueue``: ``{"message", "input", "error", "execution", "status",
  "failed_state", "detected_by"}`` written for every ClassifyImage execution that failed, timed
  out or was aborted: by the classifier from its synchronous result under ``WorkflowType``
  EXPRESS (the default), by ExecutionCloserFunction under STANDARD. ``message`` is the route
  message when it could be recovered; otherwise it is null and ``input`` holds the execution
  input as it came (only a hand-started execution can carry one that is not a
  ClassifyRequest);
* ``ProducerDeadLetterQueue``: what the producer could not read or send, as a letter
  ``{"kind", "error", "reason", "query", "raw", ...}`` (docs/architecture.md).

Redrive sends a workflow dead letter back to its route queue with ``attempt`` + 1 (a count of
replays; above the failed message's attempt, it is no duplicate of the failure, as a later post
of the photo is, so the classifier runs it in a new execution: under STANDARD the next name from
the URL's result item, under EXPRESS a new synchronous execution, its failed claim being taken
over). A route dead letter moved there by the redrive policy goes back to its source queue with
``attempt`` + 1 too: under EXPRESS it may be the message whose execution failed for good while
SQS refused its workflow letter on every receive, so its image's claim is closed and no letter
was ever sent; sent back unchanged (a new SQS message, the same attempt) the classifier would
judge it a repeat of that failure and delete it as a duplicate, and the photo would be lost.
One attempt higher it runs again (SQS's own DLQ redrive, which moves messages unchanged, must
not be used on route dead-letter queues for that reason). A letter without a message is
skipped and stays on the queue: there is nothing in it the classifier would accept, so
replaying it could only fail again; someone has to read it, then fix and start it by hand or
delete it. A producer letter is skipped the same way: it holds X's data, not a message any
queue takes.
A route letter the classifier rejected (``error`` ``NotJson`` or ``InvalidMessage``) would be
rejected again as it is, so it is skipped too unless the redrive is forced (after the message
contract changed, say), and then sent back byte for byte. So is a *superseded* workflow letter:
its image URL has been classified since (its result item, read by the key the classifier reads
it by, is DONE: a later post of the photo, or an earlier redrive), so the classifier would only
settle it as a duplicate; it is obsolete, and goes back only when forced.
Letters are sent at least once, not exactly once: a closer killed between sending a workflow
letter and recording it sends it again, and a message whose classifier worker was killed
between sending its rejection and recording it is rejected again on its redelivery, or moved by
the queue's redrive policy as well once its receives run out.
The tools recognise a copy (``mark_copies``: the same execution ARN for workflow letters, the
same route message for route letters) and name the first letter it copies; a redrive sends
that first letter back once (or keeps it, by the rules above) and deletes its copies.
SQS's own ``StartMessageMoveTask`` is not used: it cannot rewrite bodies, and the local
emulator does not implement it.
A message a redrive sends is the message its letter ended, not a new one: it carries the
message attribute ``redriven_from`` (``REDRIVEN_FROM_ATTRIBUTE``), what that letter ended
(``copy_key``: ``message:<SQS id of the route message>`` or ``execution:<ARN>``), so the
record of accepted messages does not count it as published again and the settlement ends the
first message where its successor ends (``tweetlens.settlement``). The classifier ignores
message attributes it does not know; SQS keeps them when a redrive policy moves the message,
and a rejection letter names the message it rejected, so a message redriven again is tagged
after its own id: a chain.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from tweetlens.results import RESULTS_TABLE, ImageResult, results_for
from tweetlens.stack import DeployedStack
from tweetlens_naming import DONE_STATUS, MAX_ATTEMPT, SOURCE_MESSAGE_ID_ATTRIBUTE

WORKFLOW_DLQ = "WorkflowDeadLetterQueue"
PRODUCER_DLQ = "ProducerDeadLetterQueue"
DLQ_SUFFIX = "DeadLetterQueue"
# The classifier's rejections (message attribute ``error`` on a route dead letter): the body can
# never become a route message, so replayed unchanged it is rejected again.
PERMANENT_REJECTIONS = frozenset({"NotJson", "InvalidMessage"})
# Why a letter stays on its queue during a redrive (see ``skip_reason``).
SKIPPED_PRODUCER_LETTER = "X's data, not a route message: read it and replay what X still holds"
SKIPPED_NO_MESSAGE = "no route message to replay: read it, then start it by hand or delete it"
SKIPPED_REJECTION = "the classifier would reject it again; --force sends it back anyway"
SKIPPED_SUPERSEDED = (
    "superseded: its image was classified since, so it would only be a duplicate; "
    "--force sends it back anyway"
)
SKIPPED_TOP_ATTEMPT = (
    f"at attempt {MAX_ATTEMPT}, the most a message may carry: sent back one higher, the "
    "classifier would reject it as InvalidMessage and its real reason would be lost; read it, "
    "then send its message again by hand (attempt 0) or delete it"
)
SKIPPED_HOLD_LAPSED = (
    "the pass's hold on it ran out before its turn (another reader may have it): left on its "
    "queue for the next redrive"
)
# What a redrive does with a copy (``mark_copies``), forced or not: each execution's or route
# message's letter goes back once.
DELETED_COPY = (
    "a copy of a letter for the same execution or message: deleted, its first letter is "
    "sent back or kept"
)
# The message attribute a redrive tags each message it sends with: what its letter ended
# (``copy_key``), so the message is known as the same message sent again, not a new one.
REDRIVEN_FROM_ATTRIBUTE = "redriven_from"
# Long enough for a listing to finish before the messages reappear. A redrive pass extends its
# hold by as much whenever less than half of it is left (a long queue takes longer to send back
# than to read), and never sends or deletes a letter with less than HOLD_MARGIN_SECONDS of it
# left: by then another reader may have received the letter and would send it back too.
HOLD_SECONDS = 60
HOLD_MARGIN_SECONDS = 10
# What a ChangeMessageVisibilityBatch takes at most.
VISIBILITY_BATCH = 10
MAX_RECEIVE_ROUNDS = 1_000
# Every receive is a long poll, however short: a short poll (WaitTimeSeconds=0) asks a sample
# of SQS's servers, so a queue with few messages (a dead-letter queue) may answer empty while it
# holds some, and the listing would end there. A long poll asks every server: its empty answer
# means no message is visible. 1 s is the shortest AWS recommends; a poll that finds messages
# returns at once, so only the last, empty receive of each queue waits it out.
RECEIVE_WAIT_SECONDS = 1


class RedriveError(Exception):
    """A dead letter cannot be sent back (unknown route, unreadable body)."""


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    receipt_handle: str
    body: str
    error: str
    reason: str
    route: str
    receive_count: int
    # When the message was first sent (epoch seconds): SQS keeps it when it moves the message
    # to the dead-letter queue, so it dates the photo's message, not its last failure.
    sent_at: float | None = None
    # A workflow letter whose image was classified since (``mark_superseded``): the execution
    # that classified it ("DONE" when the result names none); "" when not superseded or not
    # looked up.
    superseded_by: str = ""
    # A route letter the classifier rejected: the SQS id of the message it rejected (message
    # attribute ``source_message_id``, besides ``error`` and ``reason``), as the letter is a new
    # message with an id of its own; "" for any other letter. A redrive sends a letter back as
    # its body alone, so a forced replay of a rejection carries no stale id: rejected again,
    # its new letter names the new message.
    source_message_id: str = ""
    # A copy (``mark_copies``): the SQS id of the first letter that ends the same execution
    # (workflow letters) or the same route message (route letters); "" for a letter that is
    # no copy, or not looked at. Letters are sent at least once: a writer killed between
    # sending a letter and recording it sends it again, and a message the classifier rejected
    # can also be moved by its queue's redrive policy.
    copy_of: str = ""
    # A redrive pass lost its hold on the letter before its turn (``SKIPPED_HOLD_LAPSED``): it
    # left it on its queue, neither sent nor deleted.
    hold_lapsed: bool = False

    @property
    def route_message_id(self) -> str:
        """The SQS id of the route message a route letter ends: the rejected message's, else
        the letter's own (a message the redrive policy moved keeps its id)."""
        return self.source_message_id or self.message_id


def dead_letter_queues(stack: DeployedStack) -> dict[str, str]:
    """Logical id → URL of every dead-letter queue in the stack."""
    return {
        logical_id: physical_id
        for logical_id, physical_id in sorted(stack.resources.items())
        if logical_id.endswith(DLQ_SUFFIX) and physical_id.startswith("http")
    }


def readable_cause(cause: str) -> str:
    """A Lambda task's Cause is its error JSON (with a stack trace): keep the message."""
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause
    message = payload.get("errorMessage") if isinstance(payload, dict) else None
    return message if isinstance(message, str) else cause


def _describe(queue: str, message: dict[str, Any]) -> DeadLetter:
    body = message["Body"]
    attributes = message.get("MessageAttributes", {})
    receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0"))
    sent_timestamp = message.get("Attributes", {}).get("SentTimestamp")
    error, reason, route, source_message_id = "", "", "", ""
    if queue == PRODUCER_DLQ:
        error, reason, route = _producer_letter(body)
    elif queue == WORKFLOW_DLQ:
        try:
            payload = json.loads(body)
            caught = payload.get("error") or {}
            error = str(caught.get("Error", "Unknown"))
            reason = readable_cause(str(caught.get("Cause", "")))
            route = _workflow_route(payload)
        except (ValueError, AttributeError):
            error, reason = "UnreadableDeadLetter", "the workflow dead letter is not JSON"
    else:
        error = attributes.get("error", {}).get("StringValue", "")
        reason = attributes.get("reason", {}).get("StringValue", "")
        source_message_id = attributes.get(SOURCE_MESSAGE_ID_ATTRIBUTE, {}).get("StringValue", "")
        if not error:
            error = "MaxReceiveCountExceeded"
            reason = "the classifier failed on it on every receive (see its logs)"
        try:
            route = str(json.loads(body).get("route", ""))
        except (ValueError, AttributeError):
            route = ""
    return DeadLetter(
        queue=queue,
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=body,
        error=error,
        reason=reason,
        route=route,
        receive_count=receive_count,
        sent_at=int(sent_timestamp) / 1000 if sent_timestamp else None,
        source_message_id=source_message_id,
    )


def _producer_letter(body: str) -> tuple[str, str, str]:
    """Error, reason and route (photo letters only) of a producer dead letter."""
    try:
        payload = json.loads(body)
        return (
            str(payload["error"]),
            str(payload.get("reason", "")),
            str(payload.get("route") or ""),
        )
    except (ValueError, KeyError, TypeError):
        return "UnreadableDeadLetter", "the producer dead letter is not a letter", ""


def _workflow_route(payload: dict[str, Any]) -> str:
    """The route of a workflow dead letter; a rejected input may not have one, or be any JSON."""
    message = payload.get("message")
    if message is None:
        request = payload.get("input")
        message = request.get("message") if isinstance(request, dict) else None
    route = message.get("route", "") if isinstance(message, dict) else ""
    return route if isinstance(route, str) else ""


def skip_reason(letter: DeadLetter, *, force: bool = False) -> str | None:
    """Why a redrive leaves ``letter`` on its queue, or None when it sends it back.

    Never replayed, forced or not: a copy (``copy_of``: a redrive deletes it and judges its
    first letter), a producer letter (X's data, for a person to read), a
    workflow letter without a message (its input is no route message) and a letter whose
    message is at ``MAX_ATTEMPT`` (one higher, the classifier would reject it as
    InvalidMessage, hiding why it failed: ``SKIPPED_TOP_ATTEMPT``). Replayed only when
    ``force`` is set: a route letter the classifier rejected (unchanged, it is rejected again)
    and a superseded workflow letter (``superseded_by``: its image is classified already).
    A letter a pass lost its hold on (``hold_lapsed``) is left for the next pass.
    """
    if letter.hold_lapsed:
        return SKIPPED_HOLD_LAPSED
    if letter.copy_of:
        return DELETED_COPY
    if letter.queue == PRODUCER_DLQ:
        return SKIPPED_PRODUCER_LETTER
    if letter.queue == WORKFLOW_DLQ:
        try:
            payload = json.loads(letter.body)
        except ValueError:
            return SKIPPED_NO_MESSAGE
        has_message = isinstance(payload, dict) and isinstance(payload.get("message"), dict)
        if not has_message:
            return SKIPPED_NO_MESSAGE
        if letter.superseded_by and not force:
            return SKIPPED_SUPERSEDED
        return SKIPPED_TOP_ATTEMPT if _at_top_attempt(payload["message"]) else None
    if letter.error in PERMANENT_REJECTIONS:
        # Sent back as it came (no attempt added), only when forced.
        return None if force else SKIPPED_REJECTION
    try:
        message = json.loads(letter.body)
    except ValueError:
        return None
    return SKIPPED_TOP_ATTEMPT if _at_top_attempt(message) else None


def _at_top_attempt(message: Any) -> bool:
    """Whether a replay (``attempt`` + 1) would carry the message past ``MAX_ATTEMPT``.

    Forced or not: the classifier would reject the replay as InvalidMessage, and the letter's
    own reason (why the image failed) would give way to that rejection.
    """
    attempt = message.get("attempt", 0) if isinstance(message, dict) else None
    return type(attempt) is int and attempt >= MAX_ATTEMPT


def letter_url(letter: DeadLetter) -> str:
    """The image URL of a workflow letter's message; "" for any other letter, or none."""
    if letter.queue != WORKFLOW_DLQ:
        return ""
    try:
        payload = json.loads(letter.body)
    except ValueError:
        return ""
    message = payload.get("message") if isinstance(payload, dict) else None
    url = message.get("url") if isinstance(message, dict) else None
    return url if isinstance(url, str) else ""


def superseded_by(letter: DeadLetter, results: Mapping[str, ImageResult]) -> str:
    """The execution that classified a workflow letter's image since, from the result items
    by URL ("DONE" when the item names none); "" when the image is not classified."""
    result = results.get(letter_url(letter))
    if result is None or result.status != DONE_STATUS:
        return ""
    return result.execution or DONE_STATUS


def mark_superseded(stack: DeployedStack, letters: list[DeadLetter]) -> list[DeadLetter]:
    """``letters`` with ``superseded_by`` set on each workflow letter whose image is DONE.

    The image's result item is read by the key the classifier reads it by (the URL and
    ``RESULT_SORT_KEY``), in batches; a stack with no workflow letter is not read at all.
    """
    urls = sorted({url for url in map(letter_url, letters) if url})
    if not urls:
        return letters
    results = results_for(stack.client("dynamodb"), stack.resource(RESULTS_TABLE), urls)
    return [replace(letter, superseded_by=superseded_by(letter, results)) for letter in letters]


def copy_key(letter: DeadLetter) -> str:
    """What ``letter`` ends, as its copies share it; "" when no other letter can be its copy.

    A workflow letter ends its execution (the ARN in its body): a closer killed between
    sending the letter and recording it sends it again on its retry, so two letters of one
    ARN are one letter sent twice. A route letter ends its route message
    (``route_message_id``): a rejection whose worker was killed before recording it is sent
    again on the message's redelivery, or the queue's redrive policy moves the message too. A
    producer letter, or an unreadable workflow letter, is judged on its own.
    """
    if letter.queue == PRODUCER_DLQ:
        return ""
    if letter.queue == WORKFLOW_DLQ:
        try:
            payload = json.loads(letter.body)
        except ValueError:
            return ""
        execution = payload.get("execution") if isinstance(payload, dict) else None
        return f"execution:{execution}" if isinstance(execution, str) and execution else ""
    return f"message:{letter.route_message_id}"


def _first_letter_rank(letter: DeadLetter) -> tuple[int, float, str]:
    """Which of a letter's copies is its first: a rejection before a message the redrive
    policy moved (it says why the classifier refused the message), then the earliest sent."""
    return (
        0 if letter.source_message_id else 1,
        letter.sent_at if letter.sent_at is not None else float("inf"),
        letter.message_id,
    )


def mark_copies(letters: list[DeadLetter]) -> list[DeadLetter]:
    """``letters`` (same order) with ``copy_of`` set on each copy: the id of the first letter
    (``_first_letter_rank``) of the same ``copy_key``. Letters are sent at least once; the
    tools count, show and redrive one letter per execution or route message."""
    first: dict[str, DeadLetter] = {}
    for letter in letters:
        key = copy_key(letter)
        if not key:
            continue
        held = first.get(key)
        if held is None or _first_letter_rank(letter) < _first_letter_rank(held):
            first[key] = letter
    marked: list[DeadLetter] = []
    for letter in letters:
        original = first.get(copy_key(letter), letter)
        copy_of = "" if original.message_id == letter.message_id else original.message_id
        marked.append(replace(letter, copy_of=copy_of))
    return marked


def is_replayable(letter: DeadLetter, *, force: bool = False) -> bool:
    """Whether a redrive (forced or not) sends ``letter`` back; see ``skip_reason``."""
    return skip_reason(letter, force=force) is None


def receive_wait_seconds(stack: DeployedStack) -> int:
    """How long each receive of ``stack``'s dead-letter queues waits for letters.

    In AWS a long poll (``RECEIVE_WAIT_SECONDS``): only it asks every server. A stack reached
    through an endpoint of its own is an emulator's (the local cloud's), whose SQS is one store:
    a short poll's empty answer is already the end of the queue there, and the demo's and the
    console's repeated listings do not wait a second each.
    """
    return 0 if stack.endpoint_url else RECEIVE_WAIT_SECONDS


def _receive_all(
    sqs: Any, queue_url: str, limit: int, wait_seconds: int = RECEIVE_WAIT_SECONDS
) -> Iterator[dict[str, Any]]:
    """Receive up to `limit` messages, holding each invisible while the caller works."""
    seen: set[str] = set()
    for _ in range(MAX_RECEIVE_ROUNDS):
        if len(seen) >= limit:
            return
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=HOLD_SECONDS,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
        if not messages:
            # An empty long poll (or short, from one store): nothing visible is left (what this
            # pass holds is invisible).
            return
        for message in messages:
            seen.add(message["MessageId"])
            yield message


def list_dead_letters(stack: DeployedStack, limit: int = 100) -> list[DeadLetter]:
    """Every dead letter (up to `limit` per queue); they stay on their queues."""
    sqs = stack.client("sqs")
    wait_seconds = receive_wait_seconds(stack)

    def list_queue(logical_id: str, url: str) -> list[DeadLetter]:
        received = [_describe(logical_id, m) for m in _receive_all(sqs, url, limit, wait_seconds)]
        # Make them visible again at once: listing must not delay a redrive or an alarm.
        for letter in received:
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0
            )
        return received

    queues = dead_letter_queues(stack)
    # One thread per queue, as AWS advises for long polls of several queues: each queue's last,
    # empty receive waits RECEIVE_WAIT_SECONDS, and the queues wait it out together, not in
    # turn. boto3's clients are thread-safe.
    with ThreadPoolExecutor(max_workers=max(1, len(queues))) as pool:
        listed = [pool.submit(list_queue, logical_id, url) for logical_id, url in queues.items()]
        return [letter for future in listed for letter in future.result()]


def _source_queue_url(stack: DeployedStack, sqs: Any, dlq_url: str) -> str:
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", [])
    if len(sources) != 1:
        raise RedriveError(f"{dlq_url} is the dead-letter queue of {len(sources)} queues, not 1")
    return str(sources[0])


def _route_queue_url(stack: DeployedStack, route: str) -> str:
    logical_id = f"{route.capitalize()}Queue"
    if not route or logical_id not in stack.resources:
        raise RedriveError(f"no route queue for route {route!r}")
    return stack.resources[logical_id]


def _replay_body(letter: DeadLetter) -> str:
    payload = json.loads(letter.body)
    message = dict(payload["message"])
    message["attempt"] = int(message.get("attempt", 0)) + 1
    return json.dumps(message, separators=(",", ":"))


def _route_replay_body(letter: DeadLetter) -> str:
    """A route letter's body as it goes back to its source queue (see the module doc): a
    message moved by the redrive policy one attempt higher, a rejection as it came."""
    if letter.error in PERMANENT_REJECTIONS:
        return letter.body
    try:
        message = json.loads(letter.body)
    except ValueError:
        return letter.body
    attempt = message.get("attempt", 0) if isinstance(message, dict) else None
    if type(attempt) is not int:
        # No route message the classifier would accept: it decides what becomes of it.
        return letter.body
    message["attempt"] = attempt + 1
    return json.dumps(message, separators=(",", ":"))


def _redriven_tag(letter: DeadLetter) -> dict[str, Any]:
    """The message attributes of ``letter``'s message as a redrive sends it: what the letter
    ended (``REDRIVEN_FROM_ATTRIBUTE``); none for a letter that ends nothing known."""
    ended = copy_key(letter)
    if not ended:
        return {}
    return {
        "MessageAttributes": {REDRIVEN_FROM_ATTRIBUTE: {"DataType": "String", "StringValue": ended}}
    }


def redriven_messages(attributes: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Message id → what its letter ended (``copy_key``), for each message a redrive sent,
    from the String message attributes of accepted messages (``MessageLedger.attributes``)."""
    return {
        message_id: found[REDRIVEN_FROM_ATTRIBUTE]
        for message_id, found in attributes.items()
        if REDRIVEN_FROM_ATTRIBUTE in found
    }


class _Hold:
    """The letters a redrive pass holds invisible, and until when (this process's clock).

    A pass reads its whole queue before it sends anything, then sends and deletes one letter
    after another: a long queue (1,000 letters, ~30 ms a call in AWS) outlasts one hold. The
    hold is extended (``ChangeMessageVisibilityBatch``) whenever less than half of it is left,
    and a letter whose hold ran out all the same (a stalled pass) is neither sent nor deleted:
    another reader may have it by then, and would send it too.
    """

    def __init__(self, sqs: Any, url: str, letters: list[DeadLetter], since: float) -> None:
        self.sqs, self.url = sqs, url
        # Counted from before the first receive: the hold of each letter began after that.
        self.until = {letter.message_id: since + HOLD_SECONDS for letter in letters}

    def holds(self, letter: DeadLetter) -> bool:
        """Whether the pass may still send or delete ``letter``: its hold lasts long enough."""
        return time.monotonic() < self.until[letter.message_id] - HOLD_MARGIN_SECONDS

    def keep(self, letters: list[DeadLetter]) -> None:
        """Extend the hold of ``letters`` still held when the soonest has less than half left;
        a letter SQS no longer holds for this pass (not in flight) is held no more."""
        held = [letter for letter in letters if self.holds(letter)]
        now = time.monotonic()
        if not held or min(self.until[m.message_id] for m in held) - now > HOLD_SECONDS / 2:
            return
        for start in range(0, len(held), VISIBILITY_BATCH):
            batch = held[start : start + VISIBILITY_BATCH]
            since = time.monotonic()
            failed = self._change(batch, HOLD_SECONDS)
            for letter in batch:
                self.until[letter.message_id] = (
                    0.0 if letter.message_id in failed else (since + HOLD_SECONDS)
                )

    def release(self, letters: list[DeadLetter]) -> None:
        """Make ``letters`` visible again at once, those still held; a handle SQS no longer
        holds (``ReceiptHandleIsInvalid``, ``MessageNotInflight``: its hold ran out, or the
        letter is gone) is passed over: the letter is visible already, or held by another."""
        held = [letter for letter in letters if self.holds(letter)]
        for start in range(0, len(held), VISIBILITY_BATCH):
            self._change(held[start : start + VISIBILITY_BATCH], 0)

    def _change(self, letters: list[DeadLetter], seconds: int) -> set[str]:
        """ChangeMessageVisibilityBatch of ``letters`` to ``seconds``; the ids it failed for."""
        response = self.sqs.change_message_visibility_batch(
            QueueUrl=self.url,
            Entries=[
                {
                    "Id": str(index),
                    "ReceiptHandle": letter.receipt_handle,
                    "VisibilityTimeout": seconds,
                }
                for index, letter in enumerate(letters)
            ],
        )
        return {letters[int(failure["Id"])].message_id for failure in response.get("Failed", [])}


def _redrive_queue(
    stack: DeployedStack,
    sqs: Any,
    logical_id: str,
    url: str,
    *,
    limit: int,
    message_ids: Collection[str] | None,
    force: bool,
    on_message: Callable[[DeadLetter], None] | None,
    on_skipped: Callable[[DeadLetter], None] | None,
    on_copy: Callable[[DeadLetter], None] | None,
) -> int:
    count = 0
    # Every letter received is held until the pass ends; what was neither sent back nor
    # deleted is made visible again then (visible now, it would be received again and again).
    held: list[DeadLetter] = []
    hold = _Hold(sqs, url, [], time.monotonic())
    gone: set[str] = set()
    try:
        # The whole queue is read before anything is sent: a letter's copies (``mark_copies``)
        # may come after it, and only the first of them goes back.
        since = time.monotonic()
        held = [
            _describe(logical_id, m)
            for m in _receive_all(sqs, url, limit, receive_wait_seconds(stack))
        ]
        hold = _Hold(sqs, url, held, since)
        letters = held
        if logical_id == WORKFLOW_DLQ and not force:
            # Forced, a superseded letter goes back all the same: nothing to read.
            letters = mark_superseded(stack, letters)
        letters = mark_copies(letters)
        if message_ids is not None:
            # A letter asked for brings its copies, or its first letter when it is a copy: the
            # others are left untouched.
            wanted = set(message_ids)
            asked = {
                letter.copy_of or letter.message_id
                for letter in letters
                if letter.message_id in wanted
            }
            letters = [
                letter for letter in letters if (letter.copy_of or letter.message_id) in asked
            ]
        # Copies first: a pass that dies after them leaves their first letter on the queue, so
        # nothing is lost and nothing goes back twice.
        ordered = sorted(letters, key=lambda letter: not letter.copy_of)
        for turn, letter in enumerate(ordered):
            hold.keep(ordered[turn:])
            if not hold.holds(letter):
                # Left as it is: neither sent (another reader may send it) nor deleted.
                if on_skipped is not None:
                    on_skipped(replace(letter, hold_lapsed=True))
                continue
            if letter.copy_of:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=letter.receipt_handle)
                gone.add(letter.message_id)
                if on_copy is not None:
                    on_copy(letter)
                continue
            if not is_replayable(letter, force=force):
                if on_skipped is not None:
                    on_skipped(letter)
                continue
            if logical_id == WORKFLOW_DLQ:
                target, body = _route_queue_url(stack, letter.route), _replay_body(letter)
            else:
                target, body = _source_queue_url(stack, sqs, url), _route_replay_body(letter)
            sqs.send_message(QueueUrl=target, MessageBody=body, **_redriven_tag(letter))
            # Deleted only once the copy is safely on its way: a crash here duplicates, never loses.
            sqs.delete_message(QueueUrl=url, ReceiptHandle=letter.receipt_handle)
            gone.add(letter.message_id)
            count += 1
            if on_message is not None:
                on_message(letter)
    finally:
        hold.release([letter for letter in held if letter.message_id not in gone])
    return count


def redrive(
    stack: DeployedStack,
    queue: str | None = None,
    limit: int = 1_000,
    on_message: Callable[[DeadLetter], None] | None = None,
    on_skipped: Callable[[DeadLetter], None] | None = None,
    *,
    message_ids: Collection[str] | None = None,
    force: bool = False,
    on_copy: Callable[[DeadLetter], None] | None = None,
) -> dict[str, int]:
    """Send dead letters back to be processed again; returns how many per DLQ.

    Each execution's or route message's letter goes back once: its copies (``mark_copies``)
    are deleted, forced or not, and handed to ``on_copy``, whether their first letter is
    sent back or kept.

    Letters that are not to be replayed (see ``skip_reason``; ``force`` replays the
    classifier's rejections and superseded workflow letters too) stay on their queue, visible
    again once the pass over it ends, and are handed to ``on_skipped``. With ``message_ids``,
    only those letters are sent back (the same rules apply to them), each as the first letter
    of its copies (a copy asked for sends its first letter back); the others are left as they
    are.
    """
    sqs = stack.client("sqs")
    queues = dead_letter_queues(stack)
    if queue is not None:
        if queue not in queues:
            raise RedriveError(f"unknown dead-letter queue {queue!r}; known: {', '.join(queues)}")
        queues = {queue: queues[queue]}
    return {
        logical_id: _redrive_queue(
            stack,
            sqs,
            logical_id,
            url,
            limit=limit,
            message_ids=message_ids,
            force=force,
            on_message=on_message,
            on_skipped=on_skipped,
            on_copy=on_copy,
        )
        for logical_id, url in queues.items()
    }


def redrive_lines(
    moved: Mapping[str, int],
    kept: Mapping[tuple[str, str, str], int],
    copies: Mapping[str, int],
) -> list[str]:
    """What a redrive did, as `tweetlens dlq redrive` and the console say it: per queue the
    letters sent back, then those kept by (queue, error, reason), then the copies deleted."""
    said = [f"{queue}: {count} message(s) sent back" for queue, count in moved.items()]
    said.extend(
        f"{queue}: {count} message(s) kept ({error}: {reason})"
        for (queue, error, reason), count in sorted(kept.items())
    )
    said.extend(
        f"{queue}: {count} cop{'y' if count == 1 else 'ies'} deleted ({DELETED_COPY})"
        for queue, count in sorted(copies.items())
    )
    return said
