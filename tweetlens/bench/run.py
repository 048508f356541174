"""One bench run: the workload through each design, one local cloud after another.

moto keeps its state per process, so the designs run one after another, each in a fresh
``LocalCloud``; the image server (with its injected latency) is shared.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Final

from tweetlens.bench.designs import DESIGNS, Design
from tweetlens.bench.measure import Measurement, count_results, measure
from tweetlens.bench.options import BenchOptions
from tweetlens.bench.prices import PriceTable, load_prices
from tweetlens.bench.report import BenchReport, DesignReport, SweepPoint, design_report
from tweetlens.bench.workload import PHOTOS, Workload, build_workload
from tweetlens.imageserver import ImageServer
from tweetlens.localcloud import LocalCloud
from tweetlens.localcloud.labelers import Labeler, OpenCvLabeler, PictureCachingLabeler
from tweetlens.localcloud.runtime import DEFAULT_CONCURRENCY

# (run label, images settled, unique images)
ProgressCallback = Callable[[str, int, int], None]
# Each progress count scans the results table in the emulator (O(table)): at 1 s it took ~22 %
# of the emulator's GIL time in a 1,000-image run, competing with the workload it measures.
PROGRESS_EVERY_SECONDS: Final = 5.0
SEND_BATCH: Final = 10


class BenchError(Exception):
    """A design could not be run to the end (it did not settle in time)."""


def run_bench(
    options: BenchOptions,
    *,
    on_progress: ProgressCallback | None = None,
    prices: PriceTable | None = None,
) -> BenchReport:
    prices = prices or load_prices()
    progress = on_progress or (lambda label, settled, total: None)
    reports: list[DesignReport] = []
    sweep: list[SweepPoint] = []
    with ImageServer(response_delay=options.fetch_latency_ms / 1000) as images:
        workload = build_workload(
            options.images, options.duplicate_share, options.seed, images.unique_url
        )
        labeler = warmed_labeler(images)
        for name in options.designs:
            design = DESIGNS[name]
            runs = _concurrencies(design, options)
            for concurrency in runs:
                label = design.name if concurrency is None else f"{design.name} c={concurrency}"
                measurement = run_design(
                    design,
                    workload,
                    images,
                    options,
                    labeler=labeler,
                    concurrency=concurrency or DEFAULT_CONCURRENCY,
                    on_progress=functools.partial(progress, label),
                )
                report = design_report(
                    measurement,
                    name=design.name,
                    title=design.title,
                    concurrency=concurrency,
                    options=options,
                    prices=prices,
                )
                if design.name == "express" and options.is_sweep:
                    sweep.append(
                        SweepPoint(
                            concurrency=report.concurrency or 0,
                            images_per_second=report.images_per_second,
                            quota_share=report.quota_share,
                            throttles=report.throttles,
                            dead_letters=report.dead_letters,
                            lost=report.lost,
                        )
                    )
                if concurrency == runs[-1]:
                    reports.append(report)
    checked = sorted({str(price.checked) for price in prices.prices.every()})
    return BenchReport(
        options=options,
        unique_images=len(workload.unique_urls),
        duplicate_posts=workload.duplicates,
        price_region=prices.region,
        prices_checked=", ".join(checked),
        designs=reports,
        sweep=sweep,
    )


def warmed_labeler(images: ImageServer) -> PictureCachingLabeler:
    """The local labeler, having looked once at every photo the workload is made of.

    Its CPU time (about a second a photo, one at a time) would otherwise be measured instead
    of DetectLabels' latency, which the bench injects; every design then meets the same
    labeler, already warm, and every unique image still gets the labels of its pixels.
    """
    labeler = PictureCachingLabeler(OpenCvLabeler())
    for photo in PHOTOS:
        labeler.detect_labels(images.photo_bytes(photo), max_labels=10, min_confidence=70.0)
    return labeler


def _concurrencies(design: Design, options: BenchOptions) -> list[int | None]:
    if design.workflow_type is None:
        return [None]
    if design.name == "express":
        return list(options.concurrency)
    return [max(options.concurrency)]


def run_design(
    design: Design,
    workload: Workload,
    images: ImageServer,
    options: BenchOptions,
    *,
    labeler: Labeler,
    concurrency: int,
    on_progress: Callable[[int, int], None],
) -> Measurement:
    """Deploy ``design`` in a fresh local cloud, publish the workload, wait, measure."""
    cloud = LocalCloud(
        design.template,
        stack_name=f"bench-{design.name}",
        parameter_overrides=design.parameters(
            images, concurrency, options.parameters, quota_tps=options.quota_tps
        ),
        labeler=labeler,
        # Retries back off on the real clock, as in AWS: throttling costs real time.
        time_scale=1.0,
        extra_env={"SSL_CERT_FILE": str(images.ca_file)},
        run_schedules=False,
        run_pollers=True,
        # Tasks scale out in AWS; here each function gets as many workers as the classifier
        # may run at once, so the workflow's tasks are not the local bottleneck.
        function_concurrency=max(DEFAULT_CONCURRENCY, concurrency),
        detect_labels_tps=options.quota_tps,
        detect_labels_latency=options.detect_labels_latency_ms / 1000,
    )
    with cloud:
        for function in design.functions:
            # One consumer at a time for the baseline; as many as may run for the others.
            workers = 1 if design.scheduled_consumer is not None else cloud.worker_cap(function)
            cloud.warm_up(function, workers)
        cloud.requests.reset()
        published_at = publish(cloud, design, workload)
        deadline = time.monotonic() + options.design_timeout
        total = len(workload.unique_urls)
        if design.scheduled_consumer is not None:
            consumer = _ScheduledConsumer(cloud, design, deadline)
            consumer.start()
            while consumer.running():
                on_progress(count_results(cloud, design), total)
                consumer.join(PROGRESS_EVERY_SECONDS)
            consumer.raise_failure()
        last_report = [0.0]

        def report_progress(_: object) -> None:
            if time.monotonic() - last_report[0] >= PROGRESS_EVERY_SECONDS:
                last_report[0] = time.monotonic()
                on_progress(count_results(cloud, design), total)

        status = cloud.wait_until_idle(
            timeout=max(0.0, deadline - time.monotonic()), on_progress=report_progress
        )
        if not status.idle:
            raise BenchError(
                f"{design.name} did not settle within {options.design_timeout:g} s: {status}"
            )
        requests = cloud.requests.stats()
        measurement = measure(
            cloud,
            design,
            posts=len(workload.posts),
            published_at=published_at,
            requests=requests,
        )
        on_progress(measurement.done, total)
        return measurement


def publish(cloud: LocalCloud, design: Design, workload: Workload) -> dict[str, float]:
    """Send every post as the producer would (SendMessageBatch, counted as the application's
    requests); return URL → when its first post was accepted (epoch s)."""
    sqs = cloud.client("sqs")
    queue_url = cloud.resources[design.queue]
    published_at: dict[str, float] = {}
    posts = workload.posts
    for start in range(0, len(posts), SEND_BATCH):
        chunk = posts[start : start + SEND_BATCH]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "MessageBody": post.body()} for n, post in enumerate(chunk)],
        )
        if response.get("Failed"):
            raise BenchError(f"SQS refused posts of the workload: {response['Failed']}")
        sent = time.time()
        for post in chunk:
            published_at.setdefault(post.url, sent)
    return published_at


class _ScheduledConsumer:
    """Fires the baseline's schedule as EventBridge would, back to back while work is left
    (the original ran every minute with a 58 s timeout: always one consumer running)."""

    def __init__(self, cloud: LocalCloud, design: Design, deadline: float) -> None:
        self._cloud = cloud
        self._design = design
        self._deadline = deadline
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-consumer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise BenchError(f"the baseline consumer failed: {self._failure}")

    def _run(self) -> None:
        try:
            assert self._design.scheduled_consumer is not None
            while time.monotonic() < self._deadline:
                visible, in_flight = self._queued()
                if visible + in_flight == 0:
                    return
                if visible == 0:
                    # Only messages a failed run left invisible: they come back on their own.
                    time.sleep(PROGRESS_EVERY_SECONDS)
                    continue
                result = self._cloud.fire_schedule(self._design.scheduled_consumer)
                if result.error is not None:
                    raise BenchError(f"{result.error.error_type}: {result.error.error_message}")
            raise BenchError("the baseline did not drain its queue before the deadline")
        except BaseException as exc:
            self._failure = exc

    def _queued(self) -> tuple[int, int]:
        attributes = self._cloud.observer_client("sqs").get_queue_attributes(
            QueueUrl=self._cloud.resources[self._design.queue],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )
