"""Driving one chaos run: deploy, inject, publish the stream, wait for quiet, check."""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tweetlens.chaos.config import MAX_PRODUCER_RUNS, ROUTE_QUEUES, ChaosConfig, ChaosError
from tweetlens.chaos.faults import Faults, install_faults, queue_name
from tweetlens.chaos.invariants import check
from tweetlens.chaos.report import ChaosReport
from tweetlens.chaos.stream import ChaosStream, build_chaos_stream
from tweetlens.imageserver import ImageServer
from tweetlens.localcloud import LocalCloud, OpenCvLabeler, PatchSet
from tweetlens.pipeline import PRODUCER, STACK_NAME
from tweetlens.project import find_template
from tweetlens.stack import DeployedStack, emulator_stack


@dataclass
class ChaosRun:
    config: ChaosConfig
    stream: ChaosStream
    faults: Faults
    cloud: LocalCloud
    stack: DeployedStack
    idle: bool


@contextmanager
def chaos_cloud(
    config: ChaosConfig, template: Path | None = None
) -> Iterator[tuple[LocalCloud, ChaosStream, ImageServer]]:
    """tweetlens's template (default: ./template.yaml) on the local cloud, serving the stream."""
    with ImageServer() as images, tempfile.TemporaryDirectory(prefix="tweetlens-chaos-") as work:
        stream = build_chaos_stream(images.base_url, config)
        recording_path = Path(work) / "x-api-recording.json"
        recording_path.write_text(stream.recording_json(), encoding="utf-8")
        cloud = LocalCloud(
            find_template(template),
            stack_name=STACK_NAME,
            parameter_overrides={
                "PostSource": "replay",
                "ReplayUri": str(recording_path),
                "AllowedImageHosts": images.host,
                "ImageHostAllowedNetworks": images.allowed_network,
                "ScheduleEnabled": "false",
                "WorkflowType": config.workflow_type,
                **(
                    {}
                    if config.detect_labels_rate is None
                    else {"DetectLabelsRate": str(config.detect_labels_rate)}
                ),
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
    urls = {queue_name(url): url for url in (cloud.resources[q] for q in ROUTE_QUEUES.values())}
    sqs = cloud.client("sqs")
    for name, body in rng.sample(accepted, min(config.duplicate_deliveries, len(accepted))):
        sent = sqs.send_message(QueueUrl=urls[name], MessageBody=body)
        faults.duplicate_ids.append(str(sent["MessageId"]))


def run_chaos(
    config: ChaosConfig,
    *,
    template: Path | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> ChaosReport:
    """Deploy, inject every fault, drive the stream through, wait for quiet, then check."""
    started = time.monotonic()
    with chaos_cloud(config, template) as (cloud, stream, images):
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
            # Real visibility timeouts again before the dead-letter queues are listed (see
            # Faults.visibility): nothing is in flight any more once the pipeline is idle.
            faults.visibility.restore()
            # The check's own reads are no part of the pipeline: a burst left over when it went
            # idle would throttle them (its Query of the OpenClaims index failed that way).
            faults.dynamodb.stop()
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
                faults.visibility.restore()
            patches.restore()
