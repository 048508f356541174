"""The main job: the whole pipeline, end to end, on the local cloud; then what it found."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tweetlens import accounting, trace
from tweetlens.demo_stream import ExpectedOutcome, Recording, expected_outcome
from tweetlens.dlq import DLQ_SUFFIX, DeadLetter, list_dead_letters, redriven_messages
from tweetlens.localcloud import MessageLedger, PatchSet
from tweetlens.pipeline import PRODUCER, LocalPipeline
from tweetlens.results import RESULTS_TABLE, ImageResult, all_results, done_per_route
from tweetlens.settlement import settle_messages
from tweetlens.stack import DeployedStack, emulator_stack
from tweetlens.trace import express_logs
from tweetlens.trace.express_logs import workflow_logging

STATE_MACHINE = "ClassifyImageStateMachine"
# A run reads every page unless the rate limit stops it; a few runs always drain the stream.
MAX_PRODUCER_RUNS = 10


class DemoError(Exception):
    """The demo could not finish, or finished with messages unaccounted for."""


@dataclass
class Progress:
    published: int
    settled: int
    status: str


@dataclass
class DemoResult:
    accounting: accounting.Accounting
    expected: ExpectedOutcome
    results: list[ImageResult]
    labels: Counter[str]
    dead_letters: list[DeadLetter]
    traces: list[trace.DrawnTrace]
    images: dict[str, bytes]
    producer_runs: int
    seconds: float
    rekognition_calls: dict[str, int]


def route_of_source(stack: DeployedStack) -> dict[str, str]:
    """Queue ARNs and dead-letter queue logical ids → route name (``CatsQueue`` → cats)."""
    routes: dict[str, str] = {}
    for logical_id, physical in stack.resources.items():
        for suffix in ("DeadLetterQueue", "Queue"):
            if logical_id.endswith(suffix) and physical.startswith("http"):
                route = logical_id.removesuffix(suffix).lower()
                name = physical.rstrip("/").rsplit("/", 1)[-1]
                account = physical.rstrip("/").rsplit("/", 2)[-2]
                routes[logical_id] = route
                routes[f"arn:aws:sqs:{stack.region}:{account}:{name}"] = route
                break
    return routes


def route_queue_names(stack: DeployedStack) -> dict[str, str]:
    """Queue name → route of every route queue (``CatsQueue`` → cats), dead-letter queues apart."""
    return {
        physical.rstrip("/").rsplit("/", 1)[-1]: logical_id.removesuffix("Queue").lower()
        for logical_id, physical in stack.resources.items()
        if logical_id.endswith("Queue")
        and not logical_id.endswith(DLQ_SUFFIX)
        and physical.startswith("http")
    }


@dataclass(frozen=True)
class AcceptedMessages:
    """SQS's own record of the messages it accepted on the route queues (the local cloud's
    ``MessageLedger``): what the demo settles message by message."""

    ledger: MessageLedger
    routes: dict[str, str]
    # WorkflowType=EXPRESS: settled from the classifier's records (executions are not listed).
    express: bool

    def messages(self) -> dict[str, accounting.AcceptedMessage]:
        """The messages published: every one accepted but those a redrive sent (``redriven``),
        each the same message as the one whose letter it was, not a new one."""
        redriven = self.redriven()
        return {
            message_id: message
            for message_id, message in self.all_messages().items()
            if message_id not in redriven
        }

    def all_messages(self) -> dict[str, accounting.AcceptedMessage]:
        """Every message accepted, the redriven ones too: what the settlement reads."""
        accepted: dict[str, accounting.AcceptedMessage] = {}
        for message_id, (queue, body) in self.ledger.messages().items():
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            accepted[message_id] = accounting.AcceptedMessage(
                self.routes[queue], parsed if isinstance(parsed, dict) else {}
            )
        return accepted

    def redriven(self) -> dict[str, str]:
        """Message id → what its letter ended, for each message a redrive sent
        (``tweetlens.dlq.redriven_messages``)."""
        return redriven_messages(self.ledger.attributes())


@contextmanager
def record_accepted(stack: DeployedStack) -> Iterator[AcceptedMessages]:
    """Record every message the local cloud's SQS accepts on the route queues, until exit."""
    routes = route_queue_names(stack)
    patches = PatchSet()
    ledger = MessageLedger(routes)
    ledger.install(patches)
    try:
        yield AcceptedMessages(
            ledger,
            routes,
            express=workflow_logging(stack, stack.resource(STATE_MACHINE)).is_express,
        )
    finally:
        patches.restore()


def take_account(
    stack: DeployedStack,
    producer_payloads: list[dict[str, Any]],
    logs: list[str],
    *,
    known_executions: dict[str, accounting.ExecutionOutcome] | None = None,
    accepted: AcceptedMessages | None = None,
    logs_read: bool = True,
) -> accounting.Accounting:
    """Where every message ended; ``known_executions`` as in ``execution_outcomes``.

    With ``accepted`` each message is settled on its own (``accounting.account``); without it
    (the console apart from the local cloud's process, or a stack in AWS: no record of the
    accepted messages) the routes' totals are compared.

    EXPRESS: Step Functions lists no execution (ListExecutions refuses the machine). What the
    classifier classified is in its records (``logs``); when those were not read
    (``logs_read`` false: the console apart from the cloud) the results table's DONE items,
    one per classified image, count it instead.
    """
    sfn = stack.client("stepfunctions")
    machine = stack.resource(STATE_MACHINE)
    logging = workflow_logging(stack, machine)
    records = list(accounting.classifier_records(logs))
    outcomes = accounting.record_outcomes(records)
    executions = accounting.execution_outcomes(
        sfn, machine, known_executions, workflow_type=logging.workflow_type
    )
    letters = list_dead_letters(stack, limit=10_000)
    messages, settlement = None, None
    if accepted is not None:
        everything, redriven = accepted.all_messages(), accepted.redriven()
        # Published: what no redrive sent. Settled: everything, a redriven message carrying
        # the end of the one whose letter it was.
        messages = {m: message for m, message in everything.items() if m not in redriven}
        bodies = {message_id: message.body for message_id, message in everything.items()}
        settlement = settle_messages(
            bodies, records, executions, letters, express=accepted.express, redriven=redriven
        )
    tally = accounting.account(
        published=accounting.published_per_route(producer_payloads),
        outcomes=outcomes,
        executions=executions,
        dead_letters=letters,
        route_of_source=route_of_source(stack),
        accepted=messages,
        settlement=settlement,
    )
    if not logging.is_express:
        return tally
    tally.workflow_type = logging.workflow_type
    if not logs_read:
        done = done_per_route(stack.client("dynamodb"), stack.resource(RESULTS_TABLE))
        for route, classified in done.items():
            tally.routes.setdefault(route, accounting.RouteTally()).classified = classified
    return tally


def deployed(pipeline: LocalPipeline) -> DeployedStack:
    cloud = pipeline.cloud
    return emulator_stack(
        endpoint_url=cloud.endpoint_url, region=cloud.region, resources=dict(cloud.resources)
    )


def classifier_logs(pipeline: LocalPipeline) -> list[str]:
    function_name = pipeline.cloud.resources["ClassifierFunction"]
    return [
        record.logs
        for record in pipeline.cloud.invocations()
        if record.function_name == function_name
    ]


def run_producer(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    """Fire the producer's schedule until it reports the stream read to the end."""
    payloads: list[dict[str, Any]] = []
    for _ in range(MAX_PRODUCER_RUNS):
        result = pipeline.cloud.fire_schedule(PRODUCER)
        if not result.ok or not isinstance(result.payload, dict):
            error = result.error.error_message if result.error else "no summary returned"
            raise DemoError(f"the producer failed: {error}")
        payloads.append(result.payload)
        if result.payload.get("stopped_reason") == "complete":
            return payloads
    raise DemoError(f"the producer did not finish the stream in {MAX_PRODUCER_RUNS} runs")


def run_demo(
    *,
    recording: Recording | Callable[[str], Recording] | None = None,
    seed: int = 2026,
    time_scale: float = 0.02,
    timeout: float = 110.0,
    template: Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    # None: the template's default WorkflowType (EXPRESS for tweetlens's own).
    workflow_type: str | None = None,
) -> DemoResult:
    started = time.monotonic()
    with (
        LocalPipeline(
            template=template,
            recording=recording,
            seed=seed,
            time_scale=time_scale,
            parameter_overrides=workflow_parameters(workflow_type),
        ) as pipeline,
        record_accepted(deployed(pipeline)) as accepted,
    ):
        assert pipeline.recording is not None
        stack = deployed(pipeline)
        payloads = run_producer(pipeline)
        published = sum(accounting.published_per_route(payloads).values())

        def progress(status: Any) -> None:
            if on_progress is None:
                return
            tally = take_account(stack, payloads, classifier_logs(pipeline), accepted=accepted)
            settled = sum(route.settled for route in tally.routes.values())
            on_progress(Progress(published, settled, _describe(status)))

        status = pipeline.cloud.wait_until_idle(timeout=timeout, on_progress=progress)
        if not status.idle:
            raise DemoError(
                f"the pipeline was still busy after {timeout:.0f} s: {_describe(status)}"
            )
        tally = take_account(stack, payloads, classifier_logs(pipeline), accepted=accepted)
        dynamodb, s3 = stack.client("dynamodb"), stack.client("s3")
        results = all_results(dynamodb, stack.resource(RESULTS_TABLE))
        bucket = stack.resource("ImagesBucket")
        images = {
            result.url: s3.get_object(Bucket=bucket, Key=result.image_key)["Body"].read()
            for result in results
            if result.status == "DONE" and result.image_key
        }
        sfn = stack.client("stepfunctions")
        traces = [trace.draw(sfn, execution.arn) for execution in tally.executions]
        # Express executions are not listed: they are drawn from their logs (level ALL).
        traces += [
            trace.draw_express(stack, arn)
            for arn in sorted({result.execution for result in results})
            if express_logs.is_express(arn)
        ]
        labels: Counter[str] = Counter()
        for result in results:
            labels.update(name for name, _ in result.labels)
        rekognition = pipeline.cloud.rekognition
        return DemoResult(
            accounting=tally,
            expected=expected_outcome(pipeline.recording),
            results=results,
            labels=labels,
            dead_letters=list_dead_letters(stack, limit=10_000),
            traces=traces,
            images=images,
            producer_runs=len(payloads),
            seconds=time.monotonic() - started,
            rekognition_calls=rekognition.calls_by_source() if rekognition else {},
        )


def workflow_parameters(workflow_type: str | None) -> dict[str, str]:
    """Template parameters for a workflow type (none: the template's default).

    EXPRESS needs no logging level here: the local pipeline logs Express executions at ALL
    (``LOCAL_EXPRESS_LOG_LEVEL``), so every one is drawn in the report.
    """
    return {} if workflow_type is None else {"WorkflowType": workflow_type}


def _describe(status: Any) -> str:
    return (
        f"{status.visible_messages} queued, {status.in_flight_messages} in flight, "
        f"{status.running_executions} executions running"
    )
