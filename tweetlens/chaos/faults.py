"""The faults a chaos run installs in the local cloud, and what each one did."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

from moto.core.exceptions import JsonRESTError
from moto.dynamodb.exceptions import ConditionalCheckFailed
from moto.dynamodb.responses import DynamoHandler
from moto.sqs.responses import SQSResponse
from moto.stepfunctions.responses import StepFunctionResponse

from tweetlens.chaos.config import (
    CLASSIFIER_HANDLER,
    PRODUCER_HANDLER,
    ROUTE_QUEUES,
    STATE_MACHINE,
    ChaosConfig,
    ChaosError,
)
from tweetlens.chaos.stream import ABORT_ERROR, ChaosStream
from tweetlens.dlq import WORKFLOW_DLQ
from tweetlens.imageserver import ImageServer
from tweetlens.localcloud import (
    CallerKiller,
    DynamoDbThrottleBursts,
    LabelerError,
    LocalCloud,
    MessageLedger,
    PatchSet,
    RekognitionFaults,
    SendBatchFailures,
    compress_visibility_timeouts,
)
from tweetlens.localcloud.rekognition import LabelRequest
from tweetlens_naming import image_key

# The STANDARD start limiter's one-second window counters in ResultsTable (the classifier's
# ``classifier.pacing.WINDOW_PREFIX``; the tooling does not import the functions' code).
START_RATE_PREFIX: Final = "START_RATE#"


class SharedQuota(RekognitionFaults):
    """Rekognition's quota, which another caller in the account takes whole now and then.

    The STANDARD start limiter keeps the pipeline's own DetectLabels calls at the quota, but
    it cannot see what other callers of the account spend: for ``seconds`` of every ``every``,
    counted from the pipeline's first call (so the first call always meets one), every call
    is throttled; between those bursts the token bucket of ``RekognitionFaults`` applies.
    ``every`` None: no other caller.
    """

    def __init__(self, *, every: float | None, seconds: float, **quota: Any) -> None:
        super().__init__(**quota)
        self.every = every
        self.seconds = seconds
        self._first_call: float | None = None
        # Of ``throttled``, the calls refused while the other caller held the quota.
        self.throttled_by_neighbour = 0

    def __call__(self, request: LabelRequest) -> None:
        if self.every is not None:
            with self._lock:
                now = self._clock()
                if self._first_call is None:
                    self._first_call = now
                if (now - self._first_call) % self.every < self.seconds:
                    self.throttled += 1
                    self.throttled_by_neighbour += 1
                    raise LabelerError("ThrottlingException", "Rate exceeded")
        super().__call__(request)


class StartLimiterProbe:
    """Counts the STANDARD start limiter's writes to its window counters, and the refused ones.

    A refused take or skip (its condition failed) is a start the limiter held back: the
    second's window was full, or had no slot left for a late start to skip to. A refused
    release (a slot given back to a window already at 0) holds nothing back and is not counted
    as refused. Takes and skips are told by their condition's limit (``:limit``, ``:most``),
    releases by theirs (``:zero``). Installed beneath the DynamoDB throttle bursts, it sees only
    the writes that reached the table.
    """

    def __init__(self) -> None:
        self.writes = 0
        self.refused = 0
        self._lock = threading.Lock()

    def install(self, patches: PatchSet) -> None:
        original = DynamoHandler.update_item
        probe = self

        def update_item(handler: Any) -> Any:
            # moto's DynamoHandler holds the request as parsed JSON.
            body = handler.body if isinstance(handler.body, dict) else {}
            key = str(body.get("Key", {}).get("pk", {}).get("S", ""))
            if not key.startswith(START_RATE_PREFIX):
                return original(handler)
            holds_back = bool({":limit", ":most"} & set(body.get("ExpressionAttributeValues", {})))
            try:
                return original(handler)
            except ConditionalCheckFailed:
                if holds_back:
                    with probe._lock:
                        probe.refused += 1
                raise
            finally:
                with probe._lock:
                    probe.writes += 1

        patches.replace(DynamoHandler, "update_item", update_item)


@dataclass
class Faults:
    """The installed faults, and what the run did with them."""

    dynamodb: DynamoDbThrottleBursts
    rekognition: SharedQuota
    start_limiter: StartLimiterProbe
    producer_killer: CallerKiller
    # None when the run kills no classifier worker (``kill_classifier_after_starts`` None).
    classifier_killer: CallerKiller | None
    ledger: MessageLedger
    stopper: ExecutionStopper
    refusals: DeadLetterRefusals
    send_failures: SendBatchFailures
    # The compressed visibility timeouts, restored before the run is read back: listing the
    # dead letters holds each one invisible for a minute (``tweetlens.dlq.HOLD_SECONDS``);
    # compressed to 10 s, letters listed first reappear while a long queue is still being
    # listed, a receive then returns only letters already seen, and the listing stops short.
    visibility: PatchSet = field(default_factory=PatchSet)
    duplicate_ids: list[str] = field(default_factory=list)
    producer_crashes: int = 0
    producer_runs: int = 0


class DeadLetterRefusals:
    """SQS refuses the first ``count`` messages sent to one queue (``InternalError``)."""

    def __init__(self, queue_name: str, count: int) -> None:
        self.queue_name = queue_name
        self.count = count
        self.refused = 0
        self._lock = threading.Lock()

    def install(self, patches: PatchSet) -> None:
        original = SQSResponse.send_message
        refusals = self

        def send_message(response: SQSResponse) -> Any:
            if response._get_queue_name() == refusals.queue_name:
                with refusals._lock:
                    refuse = refusals.refused < refusals.count
                    refusals.refused += refuse
                if refuse:
                    raise JsonRESTError("InternalError", "chaos: SQS refused the dead letter")
            return original(response)

        patches.replace(SQSResponse, "send_message", send_message)


class ExecutionStopper:
    """Aborts or times out the first execution of each held URL while it fetches.

    A held URL's image host trickles the first answer; once the host has been asked for it,
    the URL's first execution is in Fetch Image: it is stopped (as an operator would) or its
    timeout is made to elapse. The execution is found by its input, as an operator would
    find it (the tooling does not import the functions' code for their naming rule).
    Express executions are not listed by ListExecutions: with ``express`` they are found among
    the local cloud's running synchronous executions, and only timed out (StopExecution does
    not apply to them).
    """

    def __init__(
        self,
        cloud: LocalCloud,
        images: ImageServer,
        stream: ChaosStream,
        state_machine: str,
        *,
        seconds: float,
        express: bool = False,
    ) -> None:
        self._express = express
        self._seconds = seconds
        self._cloud = cloud
        self._images = images
        self._state_machine = state_machine
        self._pending = dict.fromkeys(stream.aborted_urls, "abort") | dict.fromkeys(
            stream.timed_out_urls, "timeout"
        )
        self.aborted: list[str] = []
        self.timed_out: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-stopper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        deadline = time.monotonic() + self._seconds
        sfn = self._cloud.client("stepfunctions")
        while self._pending and not self._stop.wait(0.05) and time.monotonic() < deadline:
            for url, action in list(self._pending.items()):
                path = url.removeprefix(self._images.base_url)
                if self._images.request_count(path) == 0:
                    continue
                arn = self._running_execution_of(sfn, url)
                if arn is None:
                    continue
                del self._pending[url]
                if action == "abort":
                    sfn.stop_execution(
                        executionArn=arn, error=ABORT_ERROR, cause="chaos: an operator stopped it"
                    )
                    self.aborted.append(url)
                elif self._cloud.time_out_execution(arn):
                    self.timed_out.append(url)

    def _running_execution_of(self, sfn: Any, url: str) -> str | None:
        if self._express:
            for arn, execution_input in self._cloud.express.running_inputs().items():
                message = (execution_input or {}).get("message") or {}
                if message.get("url") == url:
                    return arn
            return None
        listed = sfn.list_executions(stateMachineArn=self._state_machine, statusFilter="RUNNING")
        for summary in listed["executions"]:
            described = sfn.describe_execution(executionArn=summary["executionArn"])
            message = json.loads(described.get("input") or "{}").get("message") or {}
            if message.get("url") == url:
                return str(summary["executionArn"])
        return None


def _media_key(body: str) -> str | None:
    try:
        key = json.loads(body).get("media_key")
    except (ValueError, AttributeError):
        return None
    return key if isinstance(key, str) else None


def queue_name(url: str) -> str:
    """An SQS queue's name from its URL (moto's responses know queues by name)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def install_faults(
    cloud: LocalCloud,
    stream: ChaosStream,
    config: ChaosConfig,
    patches: PatchSet,
    images: ImageServer,
) -> Faults:
    bucket = cloud.resources["ImagesBucket"]
    route_queues = {queue_name(cloud.resources[logical]) for logical in ROUTE_QUEUES.values()}
    refused = frozenset(stream.refused_media_keys)
    invalid_sources = {f"s3://{bucket}/{image_key(url, 'jpg')}" for url in stream.invalid_urls}
    faults = Faults(
        dynamodb=DynamoDbThrottleBursts(every=config.dynamodb_every, burst=config.dynamodb_burst),
        rekognition=SharedQuota(
            every=config.quota_neighbour_every,
            seconds=config.quota_neighbour_seconds,
            requests_per_second=config.rekognition_rps,
            invalid_sources=invalid_sources,
        ),
        start_limiter=StartLimiterProbe(),
        producer_killer=CallerKiller(
            SQSResponse,
            "send_message_batch",
            handler=PRODUCER_HANDLER,
            after=config.kill_producer_after_batches,
        ),
        # EXPRESS: the worker dies waiting on StartSyncExecution, once the execution ended and
        # before it reads the answer; its batch comes back after the visibility timeout.
        classifier_killer=None
        if config.kill_classifier_after_starts is None
        else CallerKiller(
            StepFunctionResponse,
            "start_sync_execution" if config.workflow_type == "EXPRESS" else "start_execution",
            handler=CLASSIFIER_HANDLER,
            after=config.kill_classifier_after_starts,
        ),
        ledger=MessageLedger(route_queues),
        stopper=ExecutionStopper(
            cloud,
            images,
            stream,
            cloud.resources[STATE_MACHINE],
            seconds=config.timeout_seconds,
            express=config.workflow_type == "EXPRESS",
        ),
        refusals=DeadLetterRefusals(
            queue_name(cloud.resources[WORKFLOW_DLQ]), config.dead_letter_refusals
        ),
        send_failures=SendBatchFailures(
            route_queues,
            transient=config.transient_send_failures,
            refuse=lambda body: _media_key(body) in refused,
        ),
    )
    faults.ledger.install(patches)
    faults.refusals.install(patches)
    faults.send_failures.install(patches)
    compress_visibility_timeouts(faults.visibility, config.visibility_factor)
    # Beneath the throttle bursts: it counts the writes that reached the table.
    faults.start_limiter.install(patches)
    faults.dynamodb.install(patches)
    faults.producer_killer.install(patches)
    if faults.classifier_killer is not None:
        faults.classifier_killer.install(patches)
    if cloud.rekognition is None:
        raise ChaosError("the local cloud has no Rekognition hook")
    cloud.rekognition.fault_injector = faults.rekognition
    return faults
