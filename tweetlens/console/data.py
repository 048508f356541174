"""What the console's pages show, read from a deployed stack with the CLI's library.

Every function takes the stack (and, for the overview, where the functions' logs are) and
returns plain frozen records for a template; none knows about HTTP. ``ConsoleData`` holds what
outlives one request: how to find the stack, a few caches, and the lock that keeps dead-letter
listings and redrives from hiding messages from each other.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from tweetlens import accounting, demo, dlq, results, trace
from tweetlens.localcloud import InvocationRecord
from tweetlens.stack import DeployedStack, StackNotFound
from tweetlens.trace import ExecutionTrace, express_logs

PAGE_SIZE = 24
EXECUTIONS_PAGE_SIZE = 25
DEAD_LETTERS_LIMIT = 500
REDRIVE_LIMIT = 10_000
# EXPRESS: how long the Overview keeps its count of the executions in the log group.
EXPRESS_COUNT_SECONDS = 30.0
PRODUCER = "ProducerFunction"
CLASSIFIER = "ClassifierFunction"
IMAGES_BUCKET = "ImagesBucket"
EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# Thumbnails are re-encoded here: the browser never receives the bytes an image host served.
THUMBNAIL_PX = 480
THUMBNAIL_QUALITY = 82
# Rekognition's own limit; anything bigger in the bucket is not one of the pipeline's images.
MAX_IMAGE_BYTES = 15 * 1024 * 1024
_CACHED_THUMBNAILS = 256
_CACHED_TRACES = 64
# How the console names an execution in its URLs: a Standard execution by its name (this app's
# are a digest and an attempt; Step Functions allows a little more), an Express one by its name
# and id (``name:id``, the end of its ARN), since Express names need not be unique.
_EXECUTION_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}(?::[A-Za-z0-9-]{1,64})?")
# An S3 key as the fetch function writes them: no "..", no leading slash, no odd characters.
_IMAGE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9/_.-]{0,299}")
_POST_ID = re.compile(r"[0-9]{1,20}")
_CURSOR_ATTRIBUTES = frozenset({"pk", "sk", "label", "confidence"})
_CURSOR_MAX_CHARS = 4096


class InvalidRequest(ValueError):
    """A parameter from the browser that cannot name anything (a bad cursor, key or name)."""


# -- where the stack is --------------------------------------------------------------


class InvocationSource(Protocol):
    """What a local cloud running in this process offers: its invocations and its resources."""

    @property
    def resources(self) -> Mapping[str, str]: ...

    def invocations(self) -> list[InvocationRecord]: ...


class Activity(Protocol):
    """The log text of a function of the stack, oldest first."""

    def function_logs(self, logical_id: str) -> list[str]: ...


class CloudActivity:
    """The producer's and classifier's logs of a local cloud in this process (`up --console`).

    The cloud keeps a bounded history of invocations; the lines the accounting reads are
    copied out as they appear, so counts stay right after old invocations roll off.
    """

    _MARKERS = (accounting.RECORD_OUTCOME_KEY, accounting.PRODUCER_FINISHED)

    def __init__(self, cloud: InvocationSource) -> None:
        self._cloud = cloud
        self._lock = threading.Lock()
        self._lines: dict[str, list[str]] = {}
        self._last_request_id: str | None = None

    def function_logs(self, logical_id: str) -> list[str]:
        name = self._cloud.resources.get(logical_id, "")
        with self._lock:
            self._catch_up()
            return ["\n".join(self._lines.get(name, []))]

    def _catch_up(self) -> None:
        records = self._cloud.invocations()
        start = 0
        if self._last_request_id is not None:
            for index in range(len(records) - 1, -1, -1):
                if records[index].request_id == self._last_request_id:
                    start = index + 1
                    break
        for record in records[start:]:
            kept = [
                line
                for line in record.logs.splitlines()
                if any(marker in line for marker in self._MARKERS)
            ]
            if kept:
                self._lines.setdefault(record.function_name, []).extend(kept)
        if records:
            self._last_request_id = records[-1].request_id


@dataclass
class ConsoleData:
    """How the console finds its stack, and what it keeps between requests.

    ``load_stack`` is called on every request when ``reload`` is set: the cloud of
    `tweetlens up` may have been restarted on another port since the last one.
    """

    load_stack: Callable[[], DeployedStack]
    activity: Activity | None = None
    reload: bool = False
    # The local cloud's record of the messages SQS accepted on the route queues, when the
    # console runs in its process (`up --console`): the overview then settles message by
    # message, as `tweetlens demo` does, instead of comparing per-route totals.
    accepted: demo.AcceptedMessages | None = None
    _stack: DeployedStack | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Listing dead letters receives them (hidden for a while): one listing or redrive at a time.
    dead_letters_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    known_executions: dict[str, accounting.ExecutionOutcome] = field(default_factory=dict)
    _thumbnails: OrderedDict[str, bytes] = field(default_factory=OrderedDict, repr=False)
    # EXPRESS: (when counted, how many executions the log group holds, or None below ALL).
    _express_count: tuple[float, int | None] | None = field(default=None, repr=False)
    _traces: OrderedDict[str, trace.DrawnTrace] = field(default_factory=OrderedDict, repr=False)

    @classmethod
    def fixed(
        cls,
        stack: DeployedStack,
        activity: Activity | None = None,
        accepted: demo.AcceptedMessages | None = None,
    ) -> ConsoleData:
        return cls(load_stack=lambda: stack, activity=activity, accepted=accepted, _stack=stack)

    def stack(self) -> DeployedStack:
        with self._lock:
            if self._stack is not None and not self.reload:
                return self._stack
            loaded = self.load_stack()
            if loaded != self._stack:
                # Another deployment: nothing cached about the old one applies.
                self._stack = loaded
                self.known_executions.clear()
                self._express_count = None
                self._thumbnails.clear()
                self._traces.clear()
            return self._stack

    def express_executions(self, stack: DeployedStack) -> int | None:
        """How many Express executions the workflow's log group holds; None below level ALL.

        Counting reads the log group back as far as executions are listed (90 days), some 15
        FilterLogEvents calls a group (AWS allows 5 a second per account), while the Overview
        refreshes every 2 s: the count is kept for ``EXPRESS_COUNT_SECONDS``.
        """
        with self._lock:
            cached = self._express_count
        if cached is not None and time.monotonic() - cached[0] < EXPRESS_COUNT_SECONDS:
            return cached[1]
        logging = express_logs.workflow_logging(stack, state_machine(stack))
        count = (
            len(express_logs.logged_executions(stack, logging))
            if logging.logs_every_execution
            else None
        )
        with self._lock:
            self._express_count = (time.monotonic(), count)
        return count

    def cached_thumbnail(self, key: str, make: Callable[[], bytes | None]) -> bytes | None:
        return _cached(self._lock, self._thumbnails, key, make, _CACHED_THUMBNAILS)

    def cached_trace(self, name: str, make: Callable[[], trace.DrawnTrace]) -> trace.DrawnTrace:
        with self._lock:
            if name in self._traces:
                self._traces.move_to_end(name)
                return self._traces[name]
        drawn = make()
        # A running execution changes: only ended ones are kept.
        if drawn.status != "RUNNING":
            with self._lock:
                self._traces[name] = drawn
                while len(self._traces) > _CACHED_TRACES:
                    self._traces.popitem(last=False)
        return drawn


def _cached(
    lock: threading.Lock,
    cache: OrderedDict[str, bytes],
    key: str,
    make: Callable[[], bytes | None],
    size: int,
) -> bytes | None:
    with lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    made = make()
    if made is not None:
        with lock:
            cache[key] = made
            while len(cache) > size:
                cache.popitem(last=False)
    return made


# -- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """One image of the gallery."""

    url: str
    status: str
    route: str
    post_id: str
    post_link: str | None
    text: str
    hashtags: list[str]
    labels: list[tuple[str, float]]
    image_key: str
    error: str
    execution_name: str
    # The confidence of the label filtered by, when there is one.
    confidence: float | None = None


@dataclass(frozen=True)
class Gallery:
    cards: list[Card]
    next_cursor: str | None
    label: str | None
    min_confidence: float


def post_link(post_id: str) -> str | None:
    """The post on X; only for an id that is a number (the id came from a post's JSON)."""
    return f"https://x.com/i/web/status/{post_id}" if _POST_ID.fullmatch(post_id) else None


def execution_name(execution: str) -> str:
    """How the console's URLs name the execution of an ARN: ``name``, or ``name:id`` (Express)."""
    if express_logs.is_express(execution):
        return ":".join(execution.split(express_logs.EXPRESS_MARKER, 1)[1].split(":")[1:3])
    return execution.rsplit(":", 1)[-1] if execution else ""


def _card(result: results.ImageResult, confidence: float | None = None) -> Card:
    return Card(
        url=result.url,
        status=result.status,
        route=result.route,
        post_id=result.post_id,
        post_link=post_link(result.post_id),
        text=result.text,
        hashtags=result.hashtags,
        labels=result.labels,
        image_key=result.image_key,
        error=result.error,
        execution_name=execution_name(result.execution),
        confidence=confidence,
    )


def encode_cursor(key: Mapping[str, Any]) -> str:
    """A LastEvaluatedKey as an opaque URL-safe token."""
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(token: str) -> dict[str, Any]:
    """The key a cursor of ``encode_cursor`` holds; anything else is refused.

    The browser sends it back, so it is checked to be a key of this table's shape (strings and
    numbers of the key attributes) before it goes to DynamoDB.
    """
    if not token or len(token) > _CURSOR_MAX_CHARS:
        raise InvalidRequest("bad page cursor")
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as error:
        raise InvalidRequest("bad page cursor") from error
    if not isinstance(key, dict) or not key or not set(key) <= _CURSOR_ATTRIBUTES:
        raise InvalidRequest("bad page cursor")
    for value in key.values():
        if not (
            isinstance(value, dict)
            and len(value) == 1
            and next(iter(value)) in {"S", "N"}
            and isinstance(next(iter(value.values())), str)
            and len(next(iter(value.values()))) <= 2048
        ):
            raise InvalidRequest("bad page cursor")
    return key


def gallery(
    stack: DeployedStack,
    *,
    label: str | None,
    min_confidence: float = 0.0,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> Gallery:
    """One page of results: by label through the ByLabel index, or every result."""
    dynamodb = stack.client("dynamodb")
    table = stack.resource(results.RESULTS_TABLE)
    start_key = decode_cursor(cursor) if cursor else None
    if label:
        page = results.label_page(
            dynamodb, table, label, min_confidence, limit=limit, start_key=start_key
        )
        found = results.results_for(dynamodb, table, [hit.url for hit in page.items])
        cards = [_card(found[hit.url], hit.confidence) for hit in page.items if hit.url in found]
        next_key = page.next_key
    else:
        result_page = results.results_page(dynamodb, table, limit=limit, start_key=start_key)
        # Classified images first, then the failures with their error (as the demo report).
        ordered = sorted(result_page.items, key=lambda r: (r.status != "DONE", r.url))
        cards = [_card(result) for result in ordered]
        next_key = result_page.next_key
    return Gallery(
        cards=cards,
        next_cursor=encode_cursor(next_key) if next_key else None,
        label=label or None,
        min_confidence=min_confidence,
    )


def check_image_key(key: str) -> str:
    if not _IMAGE_KEY.fullmatch(key) or ".." in key:
        raise InvalidRequest("bad image key")
    return key


def make_thumbnail(data: bytes, max_px: int = THUMBNAIL_PX) -> bytes | None:
    """A JPEG of at most ``max_px`` a side, decoded and encoded afresh; None if undecodable."""
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        return None
    height, width = pixels.shape[:2]
    scale = min(1.0, max_px / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY])
    return bytes(encoded) if ok else None


def thumbnail(stack: DeployedStack, key: str) -> bytes | None:
    """The thumbnail of an image of the stack's bucket; None when there is no such image."""
    s3 = stack.client("s3")
    bucket = stack.resource(IMAGES_BUCKET)
    try:
        response = s3.get_object(Bucket=bucket, Key=check_image_key(key))
    except s3.exceptions.NoSuchKey:
        return None
    with response["Body"] as body:
        if int(response.get("ContentLength", 0)) > MAX_IMAGE_BYTES:
            return None
        return make_thumbnail(body.read(MAX_IMAGE_BYTES + 1))


# -- executions ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionRow:
    name: str
    status: str
    started_at: datetime.datetime | None
    stopped_at: datetime.datetime | None
    # What the execution's page is called by (``execution_name``): the name, or name:id.
    ref: str = ""

    @property
    def seconds(self) -> float | None:
        if self.stopped_at is None or self.started_at is None:
            return None
        return (self.stopped_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class ExecutionList:
    rows: list[ExecutionRow]
    status: str | None
    next_token: str | None
    # EXPRESS: the executions come from the workflow's log group, or cannot be shown at all
    # (``unlisted`` says why); STANDARD: from ListExecutions.
    workflow_type: str = "STANDARD"
    log_level: str = ""
    unlisted: str = ""


def state_machine(stack: DeployedStack) -> str:
    """The ClassifyImage state machine, or the stack's only one."""
    if demo.STATE_MACHINE in stack.resources:
        return stack.resources[demo.STATE_MACHINE]
    machines = trace.state_machine_arns(stack)
    if not machines:
        raise StackNotFound(f"no state machine in {stack.description}")
    return machines[0]


def executions(
    stack: DeployedStack,
    *,
    status: str | None = None,
    token: str | None = None,
    limit: int = EXECUTIONS_PAGE_SIZE,
) -> ExecutionList:
    """One page of executions, newest first, optionally of one status."""
    if status is not None and status not in EXECUTION_STATUSES:
        raise InvalidRequest(f"unknown status {status!r}")
    machine = state_machine(stack)
    logging = express_logs.workflow_logging(stack, machine)
    if logging.is_express:
        return _logged_executions(stack, logging, status=status, token=token, limit=limit)
    request: dict[str, Any] = {"stateMachineArn": machine, "maxResults": limit}
    if status is not None:
        request["statusFilter"] = status
    if token:
        request["nextToken"] = token
    response = stack.client("stepfunctions").list_executions(**request)
    rows = [
        ExecutionRow(
            name=str(summary["name"]),
            status=str(summary["status"]),
            started_at=summary["startDate"],
            stopped_at=summary.get("stopDate"),
            ref=str(summary["name"]),
        )
        for summary in response["executions"]
    ]
    return ExecutionList(rows=rows, status=status, next_token=response.get("nextToken"))


def _logged_executions(
    stack: DeployedStack,
    logging: express_logs.WorkflowLogging,
    *,
    status: str | None,
    token: str | None,
    limit: int,
) -> ExecutionList:
    """EXPRESS: Step Functions lists none; the log group has them all only at level ALL."""
    if not logging.logs_every_execution:
        return ExecutionList(
            rows=[],
            status=status,
            next_token=None,
            workflow_type=logging.workflow_type,
            log_level=logging.level,
            unlisted=(
                "This stack's workflow is EXPRESS: Step Functions does not list Express "
                "executions, and this stack logs them at "
                f"{logging.level}, which does not record every execution (ERROR keeps only "
                "failures, without their path). Deploy with ExpressLogLevel=ALL to see every "
                "execution here (its logs then hold the post text, and cost CloudWatch Logs "
                "ingestion), or with WorkflowType=STANDARD to have them listed."
            ),
        )
    offset = _offset(token)
    # One more than the page: whether there is a next page. A status filter needs them all.
    enough = offset + limit + 1 if status is None else None
    found = [
        execution
        for execution in express_logs.logged_executions(stack, logging, enough=enough)
        if status is None or execution.status == status
    ]
    page = found[offset : offset + limit]
    rows = [
        ExecutionRow(
            name=execution.name,
            status=execution.status,
            started_at=execution.started_at,
            stopped_at=execution.stopped_at,
            ref=execution_name(execution.execution_arn),
        )
        for execution in page
    ]
    more = offset + limit < len(found)
    return ExecutionList(
        rows=rows,
        status=status,
        next_token=str(offset + limit) if more else None,
        workflow_type=logging.workflow_type,
        log_level=logging.level,
    )


def _offset(token: str | None) -> int:
    """An Express listing's page token: how many executions the pages before showed."""
    if token is None:
        return 0
    if not token.isdigit() or len(token) > 9:
        raise InvalidRequest("bad page token")
    return int(token)


@dataclass(frozen=True)
class ExecutionView:
    drawn: trace.DrawnTrace
    # The photo message the execution was started for (empty when the input has none).
    message: dict[str, str]
    # What the console's URLs call it (``execution_name``).
    ref: str = ""

    @property
    def trace(self) -> ExecutionTrace:
        return self.drawn.trace

    @property
    def retries(self) -> int:
        return sum(visit.retries for visit in self.drawn.trace.visits)

    @property
    def cause(self) -> str:
        """The failing state's cause, as `tweetlens dlq list` words it (no stack trace)."""
        error = self.drawn.trace.error
        return dlq.readable_cause(error.cause) if error is not None else ""


def check_execution_name(name: str) -> str:
    if not _EXECUTION_NAME.fullmatch(name):
        raise InvalidRequest("bad execution name")
    return name


def _message_of(execution_input: str) -> dict[str, str]:
    try:
        request = json.loads(execution_input)
    except ValueError:
        return {}
    message = request.get("message") if isinstance(request, dict) else None
    if not isinstance(message, dict):
        return {}
    return {
        key: str(message[key])
        for key in ("url", "route", "post_id", "text", "attempt")
        if key in message
    }


def execution(data: ConsoleData, stack: DeployedStack, name: str) -> ExecutionView:
    """One execution drawn as `tweetlens trace` draws it (StackNotFound if there is none).

    ``name`` is ``execution_name``'s: a Standard name, or an Express ``name:id``, whose ARN is
    its state machine's with ``express`` for ``stateMachine`` (drawn from its logs).
    """
    check_execution_name(name)
    target = name
    if ":" in name:
        target = state_machine(stack).replace(":stateMachine:", express_logs.EXPRESS_MARKER, 1)
        target += ":" + name
    drawn = data.cached_trace(name, lambda: trace.trace_execution(stack, target))
    return ExecutionView(drawn=drawn, message=_message_of(drawn.input), ref=name)


# -- dead letters --------------------------------------------------------------------


@dataclass(frozen=True)
class LetterView:
    letter: dlq.DeadLetter
    age_seconds: float | None
    replayable: bool
    # Why a redrive keeps it ("" when it is sent back): ``tweetlens.dlq.skip_reason``.
    kept_reason: str
    # From a workflow dead letter's body: the execution that failed, and the photo's attempt.
    execution_name: str
    attempt: str
    url: str


@dataclass(frozen=True)
class QueueView:
    queue: str
    letters: list[LetterView]

    @property
    def replayable(self) -> int:
        return sum(view.replayable for view in self.letters)


def _letter_view(letter: dlq.DeadLetter, now: float) -> LetterView:
    execution, attempt, url = "", "", ""
    try:
        body = json.loads(letter.body)
    except ValueError:
        body = None
    if isinstance(body, dict):
        execution = str(body.get("execution") or "")
        message = body.get("message", body)
        if isinstance(message, dict):
            attempt = str(message.get("attempt", ""))
            url = str(message.get("url", ""))
    return LetterView(
        letter=letter,
        age_seconds=None if letter.sent_at is None else max(0.0, now - letter.sent_at),
        replayable=dlq.is_replayable(letter),
        kept_reason=dlq.skip_reason(letter) or "",
        execution_name=execution_name(execution),
        attempt=attempt,
        url=url,
    )


def dead_letters(data: ConsoleData, stack: DeployedStack) -> list[QueueView]:
    """Every dead-letter queue of the stack with its letters (they stay on their queues)."""
    with data.dead_letters_lock:
        queues = dlq.dead_letter_queues(stack)
        # Superseded letters are kept by a redrive, and copies deleted: shown as such, not as
        # replayable.
        letters = dlq.mark_copies(
            dlq.mark_superseded(stack, dlq.list_dead_letters(stack, limit=DEAD_LETTERS_LIMIT))
        )
    now = time.time()
    return [
        QueueView(
            queue=queue,
            letters=[_letter_view(letter, now) for letter in letters if letter.queue == queue],
        )
        for queue in queues
    ]


@dataclass(frozen=True)
class RedriveOutcome:
    moved: dict[str, int]
    # (queue, error, why it was kept) -> how many.
    kept: Counter[tuple[str, str, str]]
    # queue -> copies deleted (``dlq.mark_copies``).
    copies: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """The same report as `tweetlens dlq redrive`."""
        return dlq.redrive_lines(self.moved, self.kept, self.copies)


def redrive(
    data: ConsoleData, stack: DeployedStack, *, queue: str | None, message_id: str | None
) -> RedriveOutcome:
    """Send back one letter, a queue's letters or all, by `tweetlens dlq redrive`'s rules."""
    if message_id is not None and queue is None:
        raise InvalidRequest("a letter is sent back from its queue: name the queue")
    kept: Counter[tuple[str, str, str]] = Counter()
    copies: Counter[str] = Counter()

    def count_kept(letter: dlq.DeadLetter) -> None:
        kept.update([(letter.queue, letter.error, dlq.skip_reason(letter) or "")])

    def count_copy(letter: dlq.DeadLetter) -> None:
        copies.update([letter.queue])

    with data.dead_letters_lock:
        if queue is not None and queue not in dlq.dead_letter_queues(stack):
            raise InvalidRequest(f"unknown dead-letter queue {queue!r}")
        moved = dlq.redrive(
            stack,
            queue=queue,
            limit=REDRIVE_LIMIT,
            on_skipped=count_kept,
            on_copy=count_copy,
            message_ids=None if message_id is None else {message_id},
        )
    return RedriveOutcome(moved=moved, kept=kept, copies=copies)


# -- overview ------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteRow:
    route: str
    # None when the functions' logs are not at hand (see ``Overview.complete``).
    published: int | None
    queued: int
    # None when it cannot be known (EXPRESS: see ``Overview.unknown``).
    running: int | None
    classified: int
    duplicates: int | None
    dead_letters: list[tuple[str, int]]
    # None while messages of the route are still queued or running, or without the logs.
    lost: int | None


@dataclass(frozen=True)
class Overview:
    rows: list[RouteRow]
    # True when the producer's and the classifier's logs were read: published, the
    # classifier's duplicates and lost are then known, as in `tweetlens demo`.
    complete: bool
    problems: list[str]
    # None when it cannot be known (EXPRESS below logging level ALL).
    executions: int | None
    at: datetime.datetime
    # True when each accepted message was settled on its own (``ConsoleData.accepted``), so a
    # message counted twice cannot hide a lost one; then ``copies`` names each message whose
    # dead letter was sent more than once (one end, counted once), as `tweetlens demo` does.
    per_message: bool = False
    copies: list[str] = field(default_factory=list)
    # Why a figure shows "-" (EXPRESS: Step Functions lists no Express execution).
    unknown: list[str] = field(default_factory=list)

    @property
    def settled(self) -> bool:
        return all(row.queued == 0 and not row.running for row in self.rows)


def queue_depths(stack: DeployedStack) -> dict[str, int]:
    """Route → messages on its queue, visible or being processed."""
    sqs = stack.client("sqs")
    routes = demo.route_of_source(stack)
    depths: dict[str, int] = {}
    for logical_id, url in sorted(stack.resources.items()):
        if not logical_id.endswith("Queue") or logical_id.endswith(dlq.DLQ_SUFFIX):
            continue
        if not url.startswith("http") or logical_id not in routes:
            continue
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depths[routes[logical_id]] = int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
    return depths


def overview(data: ConsoleData, stack: DeployedStack) -> Overview:
    """Where every message ended, per route: `tweetlens demo`'s accounting, while it runs."""
    activity = data.activity
    producer_logs = activity.function_logs(PRODUCER) if activity else []
    classifier_logs = activity.function_logs(CLASSIFIER) if activity else []
    depths = queue_depths(stack)
    with data.dead_letters_lock:
        tally = demo.take_account(
            stack,
            accounting.producer_summaries(producer_logs),
            classifier_logs,
            known_executions=data.known_executions,
            # Settled per message only with the logs too: a message's records are in them.
            accepted=data.accepted if activity is not None else None,
            logs_read=activity is not None,
        )
    express = tally.is_express
    rows: list[RouteRow] = []
    for route in sorted(set(tally.routes) | set(depths)):
        counted = tally.routes.get(route, accounting.RouteTally())
        queued = depths.get(route, 0)
        moving = queued > 0 or counted.running > 0
        rows.append(
            RouteRow(
                route=route,
                published=counted.published if activity else None,
                queued=queued,
                # EXPRESS: a running execution's message is in flight on its queue (queued).
                running=None if express else counted.running,
                classified=counted.classified,
                # EXPRESS without the classifier's records: the duplicates the workflow
                # caught are in no execution listing.
                duplicates=None if express and activity is None else counted.duplicates,
                dead_letters=sorted(counted.dead_letters.items()),
                lost=None if (activity is None or moving) else counted.lost,
            )
        )
    settled = all(row.queued == 0 and not row.running for row in rows)
    express_count = data.express_executions(stack) if express else None
    return Overview(
        rows=rows,
        complete=activity is not None,
        problems=tally.problems() if activity is not None and settled else [],
        executions=express_count if express else len(tally.executions),
        at=datetime.datetime.now(datetime.UTC),
        per_message=tally.per_message,
        copies=[copied.describe() for copied in tally.copies] if settled else [],
        unknown=(
            _express_unknowns(express_count, logs_read=activity is not None) if express else []
        ),
    )


def _express_unknowns(executions: int | None, *, logs_read: bool) -> list[str]:
    """Why the Overview of an EXPRESS workflow shows "-" where a STANDARD one has a number."""
    unknown = [
        "Running: this stack's workflow is EXPRESS, whose executions Step Functions does not "
        "list; each runs inside the classifier's call, its message in flight on the route's "
        "queue, so it is counted under queued."
    ]
    if not logs_read:
        unknown.append(
            "Classified: the images the results table holds as DONE. Duplicates: the "
            "classifier's records say which messages were duplicates, and this console does "
            "not read them."
        )
    if executions is not None:
        unknown.append(
            "Executions: counted from the workflow's log group, at most every "
            f"{EXPRESS_COUNT_SECONDS:g} s."
        )
    else:
        unknown.append(
            "Executions: Express executions are counted from the workflow's log group, which "
            "holds every one only at logging level ALL (ExpressLogLevel=ALL)."
        )
    return unknown
