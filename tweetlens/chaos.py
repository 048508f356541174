"""The chaos run: the deployed template on the local cloud, with every fault injected at once.

A seeded post stream (``build_chaos_stream``) carries photo URLs that fail on the image host
in every way it can (404, 410, 500, 503 then OK, resets, read timeouts, very slow bodies,
bodies over 15 MB, text served as an image, a redirect to a private address), images that
Rekognition refuses (InvalidImageFormatException), and the same URL in many posts. While it
runs, Rekognition is throttled above a requests-per-second limit, DynamoDB throttles in
bursts (the claim and the store transaction included), one classifier worker is SIGKILLed
right after it started an execution mid-batch, the producer's worker is SIGKILLed after its
Nth SendMessageBatch (and the schedule fired again), some accepted messages are delivered a
second time, executions are aborted by an "operator" and timed out while they fetch, and SQS
refuses the execution closer's first dead letter (Lambda's retry must send it once).

Then ``check`` reads back what happened - SQS's own record of accepted messages, the
classifier's per-record log lines, the executions, the dead-letter queues, the results
table and the Rekognition calls - and states each invariant as passed or broken.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from moto.core.exceptions import JsonRESTError
from moto.sqs.responses import SQSResponse
from moto.stepfunctions.responses import StepFunctionResponse
from pydantic import BaseModel, ConfigDict, Field

from tweetlens import accounting
from tweetlens.demo_stream import (
    DEFAULT_ROUTES,
    DEFAULT_START,
    FLAKY_PHOTO,
    PHOTO_LABELS,
    RATE_WINDOW_SECONDS,
    Attachments,
    Entities,
    Hashtag,
    MediaItem,
    MediaType,
    Post,
    Recording,
    paginate,
)
from tweetlens.dlq import WORKFLOW_DLQ, DeadLetter, list_dead_letters
from tweetlens.imageserver import ImageServer
from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.cloud import LocalCloud
from tweetlens.localcloud.faults import (
    CallerKiller,
    DynamoDbThrottleBursts,
    MessageLedger,
    RekognitionFaults,
    compress_visibility_timeouts,
)
from tweetlens.localcloud.labelers import OpenCvLabeler
from tweetlens.pipeline import PRODUCER, STACK_NAME, TEMPLATE
from tweetlens.results import RESULTS_TABLE, ImageResult, all_results
from tweetlens.stack import DeployedStack, emulator_stack

STATE_MACHINE: Final = "ClassifyImageStateMachine"
ROUTE_QUEUES: Final = {"cats": "CatsQueue", "dogs": "DogsQueue"}
PRODUCER_HANDLER: Final = "producer.app.lambda_handler"
CLASSIFIER_HANDLER: Final = "classifier.app.lambda_handler"
MAX_PRODUCER_RUNS: Final = 10
# Each TRICKLE part arrives within the fetch function's 10 s read timeout; the body as a
# whole takes three pauses.
TRICKLE_PAUSE_MS: Final = 3_000
_FIRST_POST_ID: Final = 1_890_000_000_000_000_000
_FIRST_MEDIA_ID: Final = 1_889_000_000_000_000_000

# FetchImageFunction's error for each broken image-host route (the URL's fault name).
HOST_FAULTS: Final[Mapping[str, str]] = {
    "404": "ImageNotFound",
    "410": "ImageNotFound",
    "500": "ImageHostError",
    "reset": "ImageHostError",
    "too-large": "ImageTooLarge",
    "not-an-image": "UnsupportedImageType",
    "redirect-private": "BlockedUrl",
}
TIMEOUT_FAULT: Final = "slow"  # pauses longer than the read timeout: ImageHostError
INVALID_IMAGE_ERROR: Final = "Rekognition.InvalidImageFormatException"
# Executions held in Fetch Image (the image host's hold route: slow the first time, fast
# after) so they can be aborted or timed out; how their letters and results name it.
HOLD_MS: Final = 3_000
ABORT_ERROR: Final = "ChaosAbort"
EXECUTION_TIMEOUT_ERROR: Final = "States.Timeout"
_CAT_TAGS: Final = (("cat",), ("kitten",), ("Cats", "caturday"), ("CAT",))
_DOG_TAGS: Final = (("dog",), ("puppy",), ("Dogs",))
_WORDS: Final = ("Nap time", "Zoomies", "Window patrol", "Muddy paws", "Look at this face")


class ChaosError(Exception):
    """The chaos run could not be carried out (as opposed to finding broken invariants)."""


class ChaosConfig(BaseModel):
    """Knobs of one run; ``for_posts`` scales the fault counts with the stream's size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    posts: int = Field(ge=20, le=5_000)
    seed: int
    page_size: int = Field(default=25, ge=10, le=100)
    rekognition_rps: float = Field(default=4.0, gt=0)
    dynamodb_every: int = Field(default=40, ge=1)
    dynamodb_burst: int = Field(default=2, ge=1)
    kill_producer_after_batches: int = Field(default=5, ge=1)
    kill_classifier_after_starts: int = Field(default=6, ge=1)
    duplicate_deliveries: int = Field(default=10, ge=0)
    timeouts: int = Field(default=2, ge=0)
    slow_bodies: int = Field(default=3, ge=0)
    execution_aborts: int = Field(default=1, ge=0, le=20)
    execution_timeouts: int = Field(default=1, ge=0, le=20)
    dead_letter_refusals: int = Field(default=1, ge=0, le=20)
    fault_fraction: float = Field(default=0.12, ge=0, le=0.5)
    invalid_image_fraction: float = Field(default=0.02, ge=0, le=0.2)
    # Retries and waits at a quarter of real time: a throttled DetectLabels keeps about 15 s
    # of its state machine's retry budget to get through.
    time_scale: float = Field(default=0.25, gt=0, le=1)
    # Step Functions timeouts (the workflow's 300 s and each task's) x 10: under this load the
    # local cloud runs each function on 2 workers and labels one image at a time, where AWS
    # scales out, and a task waiting for a worker is on the task's clock; without headroom
    # queueing here ends executions as States.Timeout. Timeouts are injected on purpose
    # instead (``execution_timeouts``).
    execution_timeout_scale: float = Field(default=10.0, ge=1, le=20)
    # 180 s visibility becomes 30 s, the classifier's timeout: a crashed batch comes back
    # quickly, yet never while its invocation may still be running.
    visibility_factor: float = Field(default=1 / 6, gt=0, le=1)
    timeout_seconds: float = Field(default=600.0, gt=0)

    @classmethod
    def for_posts(cls, posts: int, seed: int, **overrides: Any) -> ChaosConfig:
        small = posts < 200
        defaults: dict[str, Any] = {
            "posts": posts,
            "seed": seed,
            # A small run makes fewer DetectLabels calls: a lower quota still makes them collide.
            "rekognition_rps": 3.0 if small else 4.0,
            "timeouts": 1 if small else 2,
            "slow_bodies": 1 if small else 3,
            "duplicate_deliveries": max(3, posts // 50),
            "execution_aborts": 1 if small else 2,
            "execution_timeouts": 1 if small else 2,
            "kill_producer_after_batches": 3 if small else 12,
        }
        defaults.update(overrides)
        return cls.model_validate(defaults)


# -- the stream ------------------------------------------------------------------------


@dataclass
class ChaosStream:
    recording: Recording
    # Per unique photo URL: "DONE" or the dead-letter error it must end with.
    expected: dict[str, str]
    # Per URL expected DONE: the labels the local labeler finds.
    labels: dict[str, list[str]]
    invalid_urls: list[str]
    # URLs whose first execution is aborted / timed out while it fetches.
    aborted_urls: list[str] = field(default_factory=list)
    timed_out_urls: list[str] = field(default_factory=list)


def build_chaos_stream(base_url: str, config: ChaosConfig) -> ChaosStream:
    """``config.posts`` posts, newest first in pages; same base URL and config, same stream."""
    # Reproducible test data from a seed, not secrets: a plain PRNG is the right tool.
    rng = random.Random(config.seed)  # noqa: S311
    base = base_url.rstrip("/")
    expected: dict[str, str] = {}
    labels: dict[str, list[str]] = {}
    invalid: list[str] = []
    held: dict[str, list[str]] = {"abort": [], "execution-timeout": []}
    next_media = _FIRST_MEDIA_ID
    budget = {"timeouts": config.timeouts, "slow": config.slow_bodies}
    variants = max(4, config.posts // 5)
    photo_names = sorted(PHOTO_LABELS)

    def item(kind: MediaType, url: str | None) -> MediaItem:
        nonlocal next_media
        next_media += rng.randint(1_000, 90_000)
        prefix = {"photo": "3", "video": "7", "animated_gif": "16"}[kind]
        return MediaItem(f"{prefix}_{next_media}", kind, url)

    def done(url: str, photo: str) -> str:
        expected[url] = "DONE"
        labels[url] = list(PHOTO_LABELS[photo])
        return url

    # Every fault at least once, early in the stream, whatever the size; the rest at random.
    pending = [f"host:{fault}" for fault in sorted(HOST_FAULTS)] + ["unavailable", "invalid"]
    pending += ["timeout"] * min(1, config.timeouts) + ["slow"] * min(1, config.slow_bodies)
    pending += ["abort"] * config.execution_aborts
    pending += ["execution-timeout"] * config.execution_timeouts
    rng.shuffle(pending)

    def forced(kind: str, index: int) -> str:
        if kind.startswith("host:"):
            fault = kind.removeprefix("host:")
            url = f"{base}/faults/{fault}?n={index}"
            expected[url] = HOST_FAULTS[fault]
            return url
        if kind == "timeout":
            budget["timeouts"] -= 1
            url = f"{base}/faults/{TIMEOUT_FAULT}?n={index}"
            expected[url] = "ImageHostError"
            return url
        if kind == "slow":
            budget["slow"] -= 1
            return done(f"{base}/faults/trickle-{TRICKLE_PAUSE_MS}?n={index}", FLAKY_PHOTO)
        if kind == "unavailable":
            return done(f"{base}/faults/unavailable-chaos{config.seed}n{index}", FLAKY_PHOTO)
        if kind in held:
            url = f"{base}/faults/hold-{HOLD_MS}-chaos{config.seed}{kind}{index}"
            expected[url] = ABORT_ERROR if kind == "abort" else EXECUTION_TIMEOUT_ERROR
            held[kind].append(url)
            return url
        url = f"{base}/media/{rng.choice(photo_names)}.jpg?format=broken{index}"
        expected[url] = INVALID_IMAGE_ERROR
        invalid.append(url)
        return url

    def photo_url(index: int) -> str:
        if pending:
            return forced(pending.pop(), index)
        roll = rng.random()
        if roll < config.fault_fraction:
            if expected and rng.random() < 0.25:
                held_urls = {url for urls in held.values() for url in urls}
                failing = [
                    url for url, fate in expected.items() if fate != "DONE" and url not in held_urls
                ]
                if failing:
                    return rng.choice(failing)  # the same broken URL in many posts
            if budget["timeouts"] and rng.random() < 0.1:
                return forced("timeout", index)
            if budget["slow"] and rng.random() < 0.15:
                return forced("slow", index)
            if rng.random() < 0.15:
                return forced("unavailable", index)
            fault = rng.choice(sorted(HOST_FAULTS))
            url = f"{base}/faults/{fault}?n={index}"
            expected[url] = HOST_FAULTS[fault]
            return url
        photo = rng.choice(photo_names)
        if roll < config.fault_fraction + config.invalid_image_fraction:
            url = f"{base}/media/{photo}.jpg?format=broken{index}"
            expected[url] = INVALID_IMAGE_ERROR
            invalid.append(url)
            return url
        if rng.random() < 0.4:
            return done(f"{base}/media/{photo}.jpg", photo)  # very popular URLs
        return done(f"{base}/media/{photo}.jpg?v={rng.randrange(variants)}", photo)

    drafts: list[tuple[str, tuple[str, ...], list[MediaItem]]] = []
    for index in range(config.posts):
        roll = rng.random()
        words = rng.choice(_WORDS)
        tags = rng.choice(_CAT_TAGS) if rng.random() < 0.6 else rng.choice(_DOG_TAGS)
        if roll < 0.05:
            drafts.append((words, tags, []))
        elif roll < 0.09:
            drafts.append((words, tags, [item(rng.choice(("video", "animated_gif")), None)]))
        elif roll < 0.13:
            drafts.append((words, ("coffee",), [item("photo", photo_url(index))]))
        elif roll < 0.17 and drafts:
            # A retweet: an earlier post's media, same media keys and URLs.
            with_media = [draft for draft in drafts if draft[2]]
            drafts.append(
                ("RT " + words, tags, list(rng.choice(with_media)[2]) if with_media else [])
            )
        else:
            if rng.random() < 0.15:
                tags = (rng.choice(_CAT_TAGS)[0], rng.choice(_DOG_TAGS)[0])
            count = rng.choices((1, 2, 3), weights=(85, 10, 5))[0]
            drafts.append((words, tags, [item("photo", photo_url(index)) for _ in range(count)]))
    return ChaosStream(
        recording=_paged(drafts, rng, config),
        expected=expected,
        labels=labels,
        invalid_urls=invalid,
        aborted_urls=held["abort"],
        timed_out_urls=held["execution-timeout"],
    )


def _paged(
    drafts: list[tuple[str, tuple[str, ...], list[MediaItem]]],
    rng: random.Random,
    config: ChaosConfig,
) -> Recording:
    posts: list[tuple[Post, list[MediaItem]]] = []
    post_id = _FIRST_POST_ID
    moment = DEFAULT_START
    for index, (words, tags, items) in enumerate(drafts):
        post_id += rng.randint(10_000_000, 900_000_000)
        moment += datetime.timedelta(seconds=rng.randint(1, 30))
        text = words
        hashtags: list[Hashtag] = []
        for tag in tags:
            start = len(text) + 1
            text += f" #{tag}"
            hashtags.append(Hashtag(start=start, end=len(text), tag=tag))
        post = Post(
            id=str(post_id),
            text=text,
            created_at=moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            author_id=str(1_400_000_000_000_000_000 + index % 97),
            entities=Entities(hashtags=hashtags) if hashtags else None,
            attachments=Attachments(media_keys=[m.media_key for m in items]) if items else None,
        )
        posts.append((post, items))
    return paginate(
        posts,
        page_size=config.page_size,
        reset_at=moment + datetime.timedelta(seconds=RATE_WINDOW_SECONDS),
        next_token=lambda number: f"chaos{config.seed}p{number:03d}",
    )


def expected_message_keys(recording: Recording) -> Counter[tuple[str, str, str]]:
    """(post id, media key, route) of every message the producer must publish once.

    The producer's rules: photos with a URL only, hashtags compared case-insensitively, one
    message per (post, photo, route).
    """
    route_tags = {route: {tag.lower() for tag in tags} for route, tags in DEFAULT_ROUTES.items()}
    keys: Counter[tuple[str, str, str]] = Counter()
    for page in recording.pages:
        media = {m.media_key: m for m in (page.body.includes.media if page.body.includes else [])}
        for post in page.body.data:
            photos = [
                key
                for key in (post.attachments.media_keys if post.attachments else [])
                if key in media and media[key].type == "photo" and media[key].url
            ]
            tags = {tag.tag.lower() for tag in (post.entities.hashtags if post.entities else [])}
            for route, wanted in route_tags.items():
                if tags & wanted:
                    keys.update((post.id, key, route) for key in photos)
    return keys


# -- running ---------------------------------------------------------------------------


@dataclass
class Faults:
    """The installed faults, and what the run did with them."""

    dynamodb: DynamoDbThrottleBursts
    rekognition: RekognitionFaults
    producer_killer: CallerKiller
    classifier_killer: CallerKiller
    ledger: MessageLedger
    stopper: ExecutionStopper
    refusals: DeadLetterRefusals
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
    """

    def __init__(
        self,
        cloud: LocalCloud,
        images: ImageServer,
        stream: ChaosStream,
        state_machine: str,
        *,
        seconds: float,
    ) -> None:
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
        listed = sfn.list_executions(stateMachineArn=self._state_machine, statusFilter="RUNNING")
        for summary in listed["executions"]:
            described = sfn.describe_execution(executionArn=summary["executionArn"])
            message = json.loads(described.get("input") or "{}").get("message") or {}
            if message.get("url") == url:
                return str(summary["executionArn"])
        return None


@dataclass
class ChaosRun:
    config: ChaosConfig
    stream: ChaosStream
    faults: Faults
    cloud: LocalCloud
    stack: DeployedStack
    idle: bool


@contextmanager
def chaos_cloud(config: ChaosConfig) -> Iterator[tuple[LocalCloud, ChaosStream, ImageServer]]:
    """This repository's template on the local cloud, serving the chaos stream."""
    with ImageServer() as images, tempfile.TemporaryDirectory(prefix="tweetlens-chaos-") as work:
        stream = build_chaos_stream(images.base_url, config)
        recording_path = Path(work) / "x-api-recording.json"
        recording_path.write_text(stream.recording.to_json(), encoding="utf-8")
        cloud = LocalCloud(
            TEMPLATE,
            stack_name=STACK_NAME,
            parameter_overrides={
                "PostSource": "replay",
                "ReplayUri": str(recording_path),
                "AllowedImageHosts": images.host,
                "ImageHostAllowedNetworks": images.allowed_network,
                "ScheduleEnabled": "false",
            },
            labeler=OpenCvLabeler(),
            time_scale=config.time_scale,
            execution_timeout_scale=config.execution_timeout_scale,
            extra_env={"SSL_CERT_FILE": str(images.ca_file)},
            run_schedules=False,
            run_pollers=True,
        )
        with cloud:
            yield cloud, stream, images


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def install_faults(
    cloud: LocalCloud,
    stream: ChaosStream,
    config: ChaosConfig,
    patches: PatchSet,
    images: ImageServer,
) -> Faults:
    bucket = cloud.resources["ImagesBucket"]
    # The fetch function's S3 key (docs/architecture.md): images/<sha256(url)>.jpg.
    invalid_sources = {f"s3://{bucket}/images/{_digest(url)}.jpg" for url in stream.invalid_urls}
    faults = Faults(
        dynamodb=DynamoDbThrottleBursts(every=config.dynamodb_every, burst=config.dynamodb_burst),
        rekognition=RekognitionFaults(
            requests_per_second=config.rekognition_rps, invalid_sources=invalid_sources
        ),
        producer_killer=CallerKiller(
            SQSResponse,
            "send_message_batch",
            handler=PRODUCER_HANDLER,
            after=config.kill_producer_after_batches,
        ),
        classifier_killer=CallerKiller(
            StepFunctionResponse,
            "start_execution",
            handler=CLASSIFIER_HANDLER,
            after=config.kill_classifier_after_starts,
        ),
        ledger=MessageLedger(
            {_queue_name(cloud.resources[logical]) for logical in ROUTE_QUEUES.values()}
        ),
        stopper=ExecutionStopper(
            cloud, images, stream, cloud.resources[STATE_MACHINE], seconds=config.timeout_seconds
        ),
        refusals=DeadLetterRefusals(
            _queue_name(cloud.resources[WORKFLOW_DLQ]), config.dead_letter_refusals
        ),
    )
    faults.ledger.install(patches)
    faults.refusals.install(patches)
    compress_visibility_timeouts(patches, config.visibility_factor)
    faults.dynamodb.install(patches)
    faults.producer_killer.install(patches)
    faults.classifier_killer.install(patches)
    if cloud.rekognition is None:
        raise ChaosError("the local cloud has no Rekognition hook")
    cloud.rekognition.fault_injector = faults.rekognition
    return faults


def run_producer(cloud: LocalCloud, faults: Faults) -> None:
    """Fire the schedule until the stream is read to the end; a killed run is fired again."""
    for _ in range(MAX_PRODUCER_RUNS):
        faults.producer_runs += 1
        result = cloud.fire_schedule(PRODUCER)
        if result.ok and isinstance(result.payload, dict):
            if result.payload.get("stopped_reason") == "complete":
                return
            continue
        error = result.error.error_type if result.error else "no summary"
        if error == "Runtime.ExitError" and faults.producer_killer.killed:
            faults.producer_crashes += 1
            continue
        raise ChaosError(f"the producer failed: {error}")
    raise ChaosError(f"the producer did not finish the stream in {MAX_PRODUCER_RUNS} runs")


def deliver_duplicates(cloud: LocalCloud, faults: Faults, config: ChaosConfig) -> None:
    """Send some accepted messages again, same body, to the same queue: SQS's at-least-once."""
    rng = random.Random(config.seed + 1)  # noqa: S311 - test data
    accepted = list(faults.ledger.messages().values())
    urls = {_queue_name(url): url for url in (cloud.resources[q] for q in ROUTE_QUEUES.values())}
    sqs = cloud.client("sqs")
    for queue_name, body in rng.sample(accepted, min(config.duplicate_deliveries, len(accepted))):
        sent = sqs.send_message(QueueUrl=urls[queue_name], MessageBody=body)
        faults.duplicate_ids.append(str(sent["MessageId"]))


def run_chaos(
    config: ChaosConfig, *, on_progress: Callable[[str], None] | None = None
) -> ChaosReport:
    """Deploy, inject every fault, drive the stream through, wait for quiet, then check."""
    started = time.monotonic()
    with chaos_cloud(config) as (cloud, stream, images):
        patches = PatchSet()
        faults: Faults | None = None
        try:
            faults = install_faults(cloud, stream, config, patches, images)
            faults.stopper.start()
            run_producer(cloud, faults)
            deliver_duplicates(cloud, faults, config)

            def progress(status: Any) -> None:
                if on_progress is not None:
                    on_progress(
                        f"{status.visible_messages} queued, {status.in_flight_messages} in "
                        f"flight, {status.running_executions} executions running"
                    )

            status = cloud.wait_until_idle(timeout=config.timeout_seconds, on_progress=progress)
            stack = emulator_stack(
                endpoint_url=cloud.endpoint_url,
                region=cloud.region,
                resources=dict(cloud.resources),
            )
            run = ChaosRun(config, stream, faults, cloud, stack, status.idle)
            return check(run, started)
        finally:
            if faults is not None:
                faults.stopper.stop()
            patches.restore()


# -- checking --------------------------------------------------------------------------


class Invariant(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    ok: bool
    detail: str


class ChaosReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    seed: int
    posts: int
    seconds: float
    published: int
    published_by_producer: int
    duplicate_deliveries: int
    republished_after_crash: int
    done: int
    duplicates: int
    dead_letters: dict[str, int]
    lost: int
    in_progress: int
    labelled_twice: int
    labelled_twice_executions: dict[str, list[str]] = Field(default_factory=dict)
    unique_urls: int
    rekognition_calls: int
    rekognition_throttled: int
    dynamodb_throttled: int
    producer_runs: int
    producer_crashes: int
    workers_killed: dict[str, int]
    adopted_executions: int
    executions_aborted: int
    executions_timed_out: int
    dead_letters_refused: int
    # URL → its final state, where it differs from the state its fault was designed to give.
    unexpected_outcomes: dict[str, str]
    invariants: list[Invariant]

    @property
    def ok(self) -> bool:
        return all(invariant.ok for invariant in self.invariants)


def _classifier_logs(cloud: LocalCloud) -> list[str]:
    name = cloud.resources["ClassifierFunction"]
    return [record.logs for record in cloud.invocations() if record.function_name == name]


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _message_key(body: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(body["post_id"]), str(body["media_key"]), str(body["route"]))


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


def _done_items(
    results: list[ImageResult], labels: Mapping[str, list[str]]
) -> tuple[list[str], list[str]]:
    """URLs of DONE items missing post data, and of DONE items with other labels than due."""
    incomplete: list[str] = []
    wrong_labels: list[str] = []
    for result in results:
        if result.status != "DONE":
            continue
        if not all((result.post_id, result.text, result.hashtags, result.route, result.image_key)):
            incomplete.append(result.url)
        wanted = labels.get(result.url)
        if wanted is None or sorted(name for name, _ in result.labels) != sorted(wanted):
            wrong_labels.append(result.url)
    return incomplete, wrong_labels


def _open_claims(stack: DeployedStack) -> int:
    """Claims still open (IN_PROGRESS, not closed by a result or a dead letter)."""
    found = stack.client("dynamodb").query(
        TableName=stack.resource(RESULTS_TABLE),
        IndexName="OpenClaims",
        KeyConditionExpression="open_claim = :open",
        ExpressionAttributeValues={":open": {"S": "OPEN"}},
        Select="COUNT",
    )
    return int(found["Count"])


def check(run: ChaosRun, started: float) -> ChaosReport:
    """Settle every accepted message exactly once and test the invariants."""
    stack, faults = run.stack, run.faults
    ledger = faults.ledger.messages()
    bodies = {message_id: json.loads(body) for message_id, (_q, body) in ledger.items()}
    executions = accounting.execution_outcomes(
        stack.client("stepfunctions"), stack.resource(STATE_MACHINE)
    )
    settled = settle(
        bodies,
        accounting.classifier_outcomes(_classifier_logs(run.cloud)),
        executions,
        list_dead_letters(stack, limit=100_000),
    )
    fate = settled.fate
    figures: Counter[str] = Counter(fate.values())
    dead = {
        key.removeprefix("dead:"): n
        for key, n in sorted(figures.items())
        if key.startswith("dead:")
    }
    lost = figures["lost"] + figures["running"]
    # Answered DetectLabels calls per image; throttled calls are refused, not answered.
    # Labelled = answered with labels: a refused image (InvalidImageFormatException) is
    # tried again by the next message for its URL, as every failed attempt is.
    labelled_twice = sum(1 for n in faults.rekognition.labelled.values() if n > 1)
    # For a broken invariant to be read: each such URL's executions and how they ended.
    bucket = stack.resource("ImagesBucket")
    twice = {source for source, n in faults.rekognition.accepted.items() if n > 1}
    labelled_twice_executions = {
        execution.url: [
            f"{e.name.rsplit('-', 1)[-1]}:{e.status}:{e.error}"
            for e in executions
            if e.url == execution.url
        ]
        for execution in executions
        if f"s3://{bucket}/images/{_digest(execution.url)}.jpg" in twice
    }

    results = all_results(stack.client("dynamodb"), stack.resource(RESULTS_TABLE))
    in_progress = [result.url for result in results if result.status == "IN_PROGRESS"]
    leased = _open_claims(stack)
    incomplete, wrong_labels = _done_items(results, run.stream.labels)
    final = {r.url: ("DONE" if r.status == "DONE" else r.error or r.status) for r in results}
    # Only published URLs: a photo under no route's hashtag is never fetched.
    published_urls = {str(body["url"]) for body in bodies.values()}
    # A held URL shown again by a later post (a retweet) gets its next attempt: DONE is its
    # other designed end.
    held = set(run.stream.aborted_urls) | set(run.stream.timed_out_urls)
    unexpected_outcomes = {
        url: final.get(url, "never claimed")
        for url, wanted in run.stream.expected.items()
        if url in published_urls
        and final.get(url) != wanted
        and not (url in held and final.get(url) == "DONE")
    }

    injected = set(faults.duplicate_ids)
    producer_ids = [message_id for message_id in ledger if message_id not in injected]
    published = Counter(_message_key(bodies[message_id]) for message_id in producer_ids)
    expected_keys = expected_message_keys(run.stream.recording)
    skipped = [key for key in expected_keys if key not in published]
    unexpected = [key for key in published if key not in expected_keys]
    republished = sum(n - 1 for n in published.values() if n > 1)
    # Copies of one (post, photo, route) - re-read by the producer or delivered twice: at
    # most one of them may be worked on; the others end as duplicates.
    copies: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for message_id, body in bodies.items():
        copies[_message_key(body)].append(message_id)
    # After a failed attempt a copy starts the next one (only DONE or a running execution
    # makes a copy a duplicate); what must never happen is a second classification.
    second_executions = sum(
        max(0, sum(fate.get(message_id) == "done" for message_id in ids) - 1)
        for ids in copies.values()
    )
    # A URL may have several executions (after one failed, a later message starts the next
    # attempt), but only one may classify it.
    done_per_url = Counter(execution.url for execution in executions if execution.status == "DONE")
    producer_kills = len(faults.producer_killer.killed)
    classifier_kills = len(faults.classifier_killer.killed)
    dynamodb_throttled = sum(faults.dynamodb.throttled.values())

    invariants = [
        Invariant(
            name="every published message ends exactly once (DONE, duplicate or dead letter)",
            ok=lost == 0 and not settled.orphan_executions and run.idle,
            detail=(
                f"{lost} lost or unsettled, {len(settled.orphan_executions)} execution(s) "
                "without a message" + ("" if run.idle else "; the pipeline never went idle")
            ),
        ),
        Invariant(
            name="Rekognition answered at most once per unique URL",
            ok=labelled_twice == 0,
            detail=f"{labelled_twice} image(s) labelled twice",
        ),
        Invariant(
            name="every DONE item has its labels and post data",
            ok=not incomplete and not wrong_labels,
            detail=f"{len(incomplete)} without post data, {len(wrong_labels)} with wrong labels",
        ),
        Invariant(
            name="no item left in progress or leased",
            ok=not in_progress and leased == 0,
            detail=f"{len(in_progress)} item(s) IN_PROGRESS, {leased} open claim(s)",
        ),
        Invariant(
            name="the producer's checkpoint never skipped a post",
            ok=not skipped and not unexpected,
            detail=f"{len(skipped)} message(s) never published, {len(unexpected)} unexpected",
        ),
        Invariant(
            name="re-read posts and re-delivered messages are never classified twice",
            ok=second_executions == 0 and max(done_per_url.values(), default=0) <= 1,
            detail=(
                f"{republished} re-published after the crash, {len(injected)} delivered twice; "
                f"{second_executions} second execution(s), "
                f"{sum(n - 1 for n in done_per_url.values())} URL(s) classified twice"
            ),
        ),
        Invariant(
            name="every fault was injected",
            ok=producer_kills == 1
            and faults.producer_crashes == 1
            and classifier_kills == 1
            and settled.adopted <= classifier_kills
            and dynamodb_throttled > 0
            and faults.rekognition.throttled > 0
            and faults.rekognition.invalid > 0
            and len(injected) == run.config.duplicate_deliveries
            and len(faults.stopper.aborted) == run.config.execution_aborts
            and len(faults.stopper.timed_out) == run.config.execution_timeouts
            and faults.refusals.refused == run.config.dead_letter_refusals,
            detail=(
                f"producer killed {producer_kills}x, classifier killed {classifier_kills}x, "
                f"{dynamodb_throttled} DynamoDB and {faults.rekognition.throttled} Rekognition "
                f"throttles, {faults.rekognition.invalid} invalid images, {len(injected)} "
                f"duplicate deliveries, {len(faults.stopper.aborted)} aborted and "
                f"{len(faults.stopper.timed_out)} timed-out executions, "
                f"{faults.refusals.refused} dead letter(s) refused"
            ),
        ),
    ]
    return ChaosReport(
        seed=run.config.seed,
        posts=run.config.posts,
        seconds=round(time.monotonic() - started, 1),
        published=len(ledger),
        published_by_producer=len(producer_ids),
        duplicate_deliveries=len(injected),
        republished_after_crash=republished,
        done=figures["done"],
        duplicates=figures["duplicate"],
        dead_letters=dead,
        lost=lost,
        in_progress=len(in_progress),
        labelled_twice=labelled_twice,
        labelled_twice_executions=labelled_twice_executions,
        unique_urls=len(published_urls),
        rekognition_calls=sum(faults.rekognition.accepted.values()),
        rekognition_throttled=faults.rekognition.throttled,
        dynamodb_throttled=dynamodb_throttled,
        producer_runs=faults.producer_runs,
        producer_crashes=faults.producer_crashes,
        workers_killed={"producer": producer_kills, "classifier": classifier_kills},
        adopted_executions=settled.adopted,
        executions_aborted=len(faults.stopper.aborted),
        executions_timed_out=len(faults.stopper.timed_out),
        dead_letters_refused=faults.refusals.refused,
        unexpected_outcomes=unexpected_outcomes,
        invariants=invariants,
    )
