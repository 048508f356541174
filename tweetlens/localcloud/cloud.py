"""``LocalCloud``: a SAM application deployed and running on this machine, no Docker, no AWS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from tweetlens.localcloud import (
    aslcache,
    dispatch,
    dynamodb,
    eventbus,
    express,
    s3policies,
    sfnclients,
    sfnthreads,
    sqs,
    stepfunctions,
    taskclock,
)
from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.activity import Activity
from tweetlens.localcloud.asyncinvoke import AsyncInvoker
from tweetlens.localcloud.deploy import Deployer, Deployment
from tweetlens.localcloud.emulator import ACCOUNT_ID, Emulator
from tweetlens.localcloud.errors import (
    SYNC_INVOKE_PAYLOAD_LIMIT,
    LocalCloudError,
    PayloadTooLargeError,
    UnknownResourceError,
)
from tweetlens.localcloud.eventbus import EventBus
from tweetlens.localcloud.eventinput import RuleContext, render_input
from tweetlens.localcloud.labelers import Labeler
from tweetlens.localcloud.models import (
    AsyncInvocationRecord,
    BusEvent,
    EventDelivery,
    EventRuleConfig,
    EventSourceMappingConfig,
    FunctionConfig,
    IdleStatus,
    InvocationRecord,
    InvocationResult,
    StateMachineConfig,
)
from tweetlens.localcloud.pollers import (
    DEFAULT_MAXIMUM_CONCURRENCY,
    SqsPoller,
    disable_moto_sqs_delivery,
)
from tweetlens.localcloud.rekognition import DetectLabelsQuota, RekognitionHook
from tweetlens.localcloud.requestlog import RequestLog
from tweetlens.localcloud.runtime import (
    DEFAULT_CONCURRENCY,
    InitMeasurement,
    LambdaRuntime,
    install_lambda_hook,
)
from tweetlens.localcloud.scheduler import Scheduler
from tweetlens.localcloud.statusevents import StatusChangeEmitter

logger = Logger(service="localcloud")

IDLE_POLL_SECONDS = 0.2


class LocalCloud:
    """Deploys ``template`` into an in-process emulator and runs it like AWS would.

    Example::

        with LocalCloud(Path("template.yaml"), time_scale=0.01) as cloud:
            cloud.client("sqs").send_message(QueueUrl=cloud.resources["WorkQueue"], ...)
            cloud.wait_until_idle(timeout=60)

    ``status_change_events=False`` starts with Step Functions' status-change events off;
    ``status_events`` switches them, or drops some, at any time.

    ``function_concurrency`` is the workers a function without reserved concurrency may run
    at once (at least what its SQS mappings' ``MaximumConcurrency`` allows).
    ``detect_labels_tps`` / ``detect_labels_burst`` set a DetectLabels quota (refused beyond
    it with ``ProvisionedThroughputExceededException``), ``detect_labels_latency`` the seconds
    each admitted call takes; both need a labeler and can be changed later. ``requests``
    counts what the application asks of every service.
    ``visibility_timeout_scale`` runs SQS visibility timeouts on a faster clock (0.05: a
    180 s timeout lasts 9 s) for tests of redelivery; function timeouts are not scaled, so
    keep a scaled timeout above the longest batch.
    ``batching_window_scale`` runs SQS mappings' ``MaximumBatchingWindowInSeconds`` on a faster
    clock (0.1: a 5 s window gathers for 0.5 s) for tests whose messages arrive together: each
    batch of such a mapping otherwise starts that long after its first message. The mapping
    still reads as declared; ``BatchSize`` is unchanged.
    ``only_function`` (a function's logical id) deploys only what that function needs
    (``tweetlens.localcloud.subset``): a quick cloud for one invocation of it, where its
    environment resolves as in a full deploy.
    """

    def __init__(
        self,
        template: Path,
        *,
        stack_name: str = "local",
        parameter_overrides: Mapping[str, str] | None = None,
        labeler: Labeler | None = None,
        time_scale: float = 1.0,
        extra_env: Mapping[str, str] | None = None,
        run_schedules: bool = True,
        run_pollers: bool = True,
        status_change_events: bool = True,
        execution_timeout_scale: float = 1.0,
        function_concurrency: int = DEFAULT_CONCURRENCY,
        detect_labels_tps: float | None = None,
        detect_labels_burst: int | None = None,
        detect_labels_latency: float = 0.0,
        visibility_timeout_scale: float = 1.0,
        batching_window_scale: float = 1.0,
        only_function: str | None = None,
    ) -> None:
        if function_concurrency < 1:
            raise ValueError("function_concurrency must be at least 1")
        if labeler is None and (detect_labels_tps is not None or detect_labels_latency):
            raise ValueError("a DetectLabels quota or latency needs a labeler")
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if execution_timeout_scale <= 0:
            raise ValueError("execution_timeout_scale must be positive")
        if visibility_timeout_scale <= 0:
            raise ValueError("visibility_timeout_scale must be positive")
        self.visibility_timeout_scale = visibility_timeout_scale
        if batching_window_scale <= 0:
            raise ValueError("batching_window_scale must be positive")
        self.batching_window_scale = batching_window_scale
        # Kept apart from time_scale: tasks run on the real clock, so shrinking a workflow's
        # TimeoutSeconds is only for tests that want an execution to time out.
        self.execution_timeout_scale = execution_timeout_scale
        self.template = Path(template)
        self.stack_name = stack_name
        self.parameter_overrides = dict(parameter_overrides or {})
        self.time_scale = time_scale
        self.extra_env = dict(extra_env or {})
        self.run_schedules = run_schedules
        self.run_pollers = run_pollers
        self.only_function = only_function
        # Workers per function without reserved concurrency (at least what its mappings need).
        self.function_concurrency = function_concurrency
        self.rekognition = (
            RekognitionHook(
                labeler,
                quota=None
                if detect_labels_tps is None
                else DetectLabelsQuota(detect_labels_tps, burst=detect_labels_burst),
                latency_seconds=detect_labels_latency,
            )
            if labeler is not None
            else None
        )
        # Every request the application makes, counted as AWS bills it.
        self.requests = RequestLog()
        self._emulator = Emulator()
        self._patches = PatchSet()
        self._stack: Deployment | None = None
        self._runtime: LambdaRuntime | None = None
        self._pollers: list[SqsPoller] = []
        self._scheduler: Scheduler | None = None
        self._bus: EventBus | None = None
        self._async: AsyncInvoker | None = None
        self._activity = Activity()
        self._interpreters: stepfunctions.Interpreters | None = None
        self.express = express.ExpressExecutions(execution_timeout_scale=execution_timeout_scale)
        self.status_events = StatusChangeEmitter(
            self._put_status_event,
            declared_types={},
            activity=self._activity,
            enabled=status_change_events,
        )
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the emulator, deploy the stack, then the pollers and the scheduler.

        Worker processes start lazily, on each function's first invocation (a cold start).
        """
        with self._lock:
            if self._stack is not None:
                return
            started = time.monotonic()
            try:
                self._emulator.start()
                self._install_fixes()
                stack = Deployer(self._emulator).deploy(
                    self.template,
                    self.stack_name,
                    self.parameter_overrides,
                    only_function=self.only_function,
                )
                self.status_events.declare_types(
                    {machine.arn: machine.type for machine in stack.state_machines.values()}
                )
                self.express.declare(stack.state_machines)
                self._runtime = LambdaRuntime(
                    stack.functions,
                    endpoint_url=self._emulator.endpoint_url,
                    region=self._emulator.region,
                    extra_env=self.extra_env,
                    default_concurrency=self.function_concurrency,
                    on_invoke=self._activity.started,
                    while_waiting=taskclock.waiting_for_worker,
                )
                _require_mapping_workers(self._runtime, stack.event_source_mappings)
                install_lambda_hook(self._patches, self._runtime)
                self._stack = stack
                self._start_events(stack)
                if self.run_pollers:
                    self._start_pollers(stack.event_source_mappings)
                self._scheduler = Scheduler(
                    stack.schedules,
                    events=self._emulator.lazy_client("events"),
                    deliver=self._require_bus().deliver_scheduled,
                    account_id=ACCOUNT_ID,
                    region=self._emulator.region,
                )
                if self.run_schedules:
                    self._scheduler.start()
            except BaseException:
                self._stop_locked()
                raise
            logger.info(
                "Local cloud started",
                endpoint_url=self._emulator.endpoint_url,
                seconds=round(time.monotonic() - started, 2),
            )

    def _install_fixes(self) -> None:
        dispatch.install_backend_lookup_cache(self._patches)
        dispatch.install_action_lookup(self._patches)
        dispatch.install_service_models_once(self._patches)
        self.requests.install(self._patches)
        stepfunctions.install(
            self._patches,
            time_scale=self.time_scale,
            execution_timeout_scale=self.execution_timeout_scale,
        )
        self._interpreters = stepfunctions.install_end_states(self._patches, self.status_events)
        express.install(self._patches, self.express)
        sfnclients.install_client_cache(self._patches, prepare=taskclock.register_on)
        sfnthreads.install_live_threads(self._patches)
        taskclock.install(self._patches)
        disable_moto_sqs_delivery(self._patches, on_message=self._activity.started)
        sqs.install_visibility_timeout_scale(self._patches, self.visibility_timeout_scale)
        sqs.install_receive_fixes(self._patches)
        sqs.install_attributes_once(self._patches)
        sqs.install_atomic_message_list(self._patches)
        aslcache.install(self._patches)
        eventbus.install_cloudformation_fixes(self._patches)
        dynamodb.install(self._patches)
        s3policies.install(self._patches)
        if self.rekognition is not None:
            self.rekognition.install(self._patches)

    def _start_events(self, stack: Deployment) -> None:
        self._async = AsyncInvoker(
            self._require_runtime().invoke,
            time_scale=self.time_scale,
            on_submit=self._activity.started,
        )
        self._async.start()
        self._bus = EventBus(
            stack.rules,
            account_id=ACCOUNT_ID,
            region=self._emulator.region,
            sqs=self._emulator.lazy_client("sqs"),
            stepfunctions=self._emulator.lazy_client("stepfunctions"),
            async_invoker=self._async,
            activity=self._activity,
        )
        self._bus.start()
        eventbus.install(self._patches, self._bus, account_id=ACCOUNT_ID, region=self.region)

    def _put_status_event(self, event: dict[str, Any]) -> None:
        if self._bus is not None:
            self._bus.put(event)

    def stop(self) -> None:
        """Stop schedules, pollers, events, workers and the emulator; safe to call twice."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        for poller in self._pollers:
            poller.stop()
        self._pollers = []
        if self._bus is not None:
            self._bus.stop()
            self._bus = None
        if self._async is not None:
            self._async.stop()
            self._async = None
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
        self._patches.restore()
        self._interpreters = None
        self._emulator.stop()
        self._stack = None

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what was deployed ---------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return self._emulator.endpoint_url

    @property
    def region(self) -> str:
        return self._emulator.region

    @property
    def account_id(self) -> str:
        return ACCOUNT_ID

    @property
    def stack(self) -> Deployment:
        if self._stack is None:
            raise LocalCloudError("the local cloud is not started")
        return self._stack

    @property
    def resources(self) -> Mapping[str, str]:
        return self.stack.resources

    @property
    def outputs(self) -> Mapping[str, str]:
        return self.stack.outputs

    @property
    def functions(self) -> Mapping[str, FunctionConfig]:
        return self.stack.functions

    @property
    def event_source_mappings(self) -> list[EventSourceMappingConfig]:
        return self.stack.event_source_mappings

    @property
    def rules(self) -> Mapping[str, EventRuleConfig]:
        """Every EventBridge rule of the stack: schedules and event patterns."""
        return self.stack.rules

    @property
    def schedules(self) -> Mapping[str, EventRuleConfig]:
        return self.stack.schedules

    @property
    def state_machines(self) -> Mapping[str, StateMachineConfig]:
        return self.stack.state_machines

    def client(self, service: str) -> Any:
        """A boto3 client bound to the emulator."""
        return self._emulator.client(service)

    def observer_client(self, service: str) -> Any:
        """A boto3 client whose calls ``requests`` leaves out (reading results, polling)."""
        return self._emulator.observer_client(service)

    def set_detect_labels_quota(self, tps: float | None, *, burst: int | None = None) -> None:
        """DetectLabels answers ``ProvisionedThroughputExceededException`` beyond ``tps``
        requests a second from now on (None: no quota)."""
        hook = self._require_rekognition()
        hook.quota = None if tps is None else DetectLabelsQuota(tps, burst=burst)

    def set_detect_labels_latency(self, seconds: float) -> None:
        """Every admitted DetectLabels call takes at least ``seconds`` from now on."""
        self._require_rekognition().set_latency(seconds)

    def _require_rekognition(self) -> RekognitionHook:
        if self.rekognition is None:
            raise LocalCloudError("this local cloud has no labeler: DetectLabels is moto's")
        return self.rekognition

    # -- running things ------------------------------------------------------------------

    def invoke(self, function_logical_id: str, event: Mapping[str, Any]) -> InvocationResult:
        """Invoke a function synchronously (logical id, name or ARN).

        An event whose JSON is over Lambda's synchronous payload quota raises
        ``PayloadTooLargeError``, as Lambda's Invoke refuses it before the function runs.
        Lambda counts the bytes a client sends; an event given as data is measured in its
        compact JSON (UTF-8, no spaces), about the least a client would send for it. A lone
        surrogate (``"\\ud800"`` in the file, valid JSON) is counted as its 6-byte escape, the
        only way a client can send it.
        """
        text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        size = len(text.encode("utf-8", "backslashreplace"))
        if size > SYNC_INVOKE_PAYLOAD_LIMIT:
            raise PayloadTooLargeError(size)
        return self._require_runtime().invoke(function_logical_id, dict(event))

    def measure_init(
        self, function: FunctionConfig, *, site_packages: Path | None = None
    ) -> InitMeasurement:
        """The Init Duration of one fresh execution environment of ``function`` (see
        ``LambdaRuntime.measure_init``, also for ``site_packages``); the function's
        environment is the deployed one."""
        return self._require_runtime().measure_init(function, site_packages=site_packages)

    def fire_schedule(self, rule_or_function_logical_id: str) -> InvocationResult:
        """Fire a schedule now, whatever its state, and invoke its function synchronously.

        Names the rule by its logical id or its function's. For a rule whose targets are not
        exactly one function, use ``fire_rule``.
        """
        rule = self._schedule(rule_or_function_logical_id)
        if len(rule.targets) != 1 or rule.targets[0].kind != "lambda":
            raise LocalCloudError(
                f"{rule.logical_id} does not target exactly one function; use fire_rule"
            )
        event = self._require_scheduler().event(rule.logical_id)
        context = RuleContext(rule.name, rule.arn, datetime.now(UTC))
        payload = json.loads(render_input(rule.targets[0], event, context))
        logger.info("Schedule fired on demand", rule=rule.logical_id)
        return self._require_runtime().invoke(rule.targets[0].arn, payload)

    def fire_rule(
        self, rule_logical_id: str, event: Mapping[str, Any] | None = None
    ) -> list[EventDelivery]:
        """Deliver an event to every target of a rule now, whatever its state or pattern.

        A schedule rule sends its scheduled event when ``event`` is None. Functions are
        invoked asynchronously, as EventBridge does: wait with ``wait_until_idle``.
        """
        if rule_logical_id not in self.rules:
            raise UnknownResourceError(f"{rule_logical_id!r} names no rule of the stack")
        rule = self.rules[rule_logical_id]
        if event is None:
            if rule.schedule_expression is None:
                raise ValueError(f"{rule_logical_id} matches events: give the event to deliver")
            event = self._require_scheduler().event(rule_logical_id)
        return self._require_bus().deliver(rule, event, received=datetime.now(UTC))

    def time_out_execution(self, execution_arn: str) -> bool:
        """Fault injection: the execution's ``TimeoutSeconds`` elapses now.

        It ends ``TIMED_OUT`` (error ``States.Timeout``, with its status-change event) once the
        state it is in returns. False when it was not running.
        """
        running_express = self.express.running(execution_arn)
        if running_express is not None:
            return stepfunctions.time_out_execution(running_express)
        backend = stepfunctions_parser_backends[self.account_id][self.region]
        return stepfunctions.time_out_execution(backend.describe_execution(execution_arn))

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``PutEvents`` without a client: ``Detail`` may be a mapping. One result per entry,
        ``{"EventId": …}`` or ``{"ErrorCode": …, "ErrorMessage": …}``.

        ``client("events").put_events(Entries=[…])`` reaches the same bus.
        """
        prepared = [
            {
                **entry,
                "Detail": entry["Detail"]
                if isinstance(entry.get("Detail"), str)
                else json.dumps(entry.get("Detail")),
            }
            for entry in entries
        ]
        return self._require_bus().put_entries(prepared)

    def bus_events(self) -> list[BusEvent]:
        """Every event accepted on a bus so far, with the rules it matched, oldest first."""
        return self._require_bus().history()

    def deliveries(self) -> list[EventDelivery]:
        """Every event handed to a rule target so far, oldest first."""
        return self._require_bus().deliveries()

    def async_invocations(self) -> list[AsyncInvocationRecord]:
        """Every finished asynchronous invocation (after its retries), oldest first."""
        return self._require_async().history()

    def warm_up(self, function_logical_id: str, workers: int) -> int:
        """Start ``workers`` workers of a function now (at most its ``worker_cap``), as
        provisioned concurrency would: the invocations they serve are warm. Returns how many
        are ready."""
        return self._require_runtime().warm(function_logical_id, workers)

    def worker_cap(self, function_logical_id: str) -> int:
        """How many invocations of a function run at once here: its reserved concurrency, or
        the larger of ``function_concurrency`` and its SQS mappings' ``MaximumConcurrency``."""
        return self._require_runtime().worker_cap(function_logical_id)

    def invocations(self) -> list[InvocationRecord]:
        """Every invocation so far, oldest first."""
        return self._require_runtime().history()

    def idle_status(self) -> IdleStatus:
        activity_before = self._activity.value
        # Observer clients: the idle check is not the application's traffic (RequestLog).
        sqs = self._emulator.observer_client("sqs")
        visible = in_flight_messages = 0
        # Only queues that are polled: with run_pollers=False nothing would ever drain them.
        for url in sorted({poller.mapping.queue_url for poller in self._pollers}):
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            visible += int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes.get("ApproximateNumberOfMessagesDelayed", 0)
            )
            in_flight_messages += int(attributes["ApproximateNumberOfMessagesNotVisible"])
        running = 0
        sfn = self._emulator.observer_client("stepfunctions")
        for machine in self.state_machines.values():
            # ListExecutions refuses an EXPRESS machine (as in AWS).
            if machine.type != "EXPRESS":
                running += _running_executions(sfn, machine.arn)
        # Express executions are not listed (as in AWS); the local cloud counts its own.
        running += self.express.running_count()
        interpreters = 0 if self._interpreters is None else self._interpreters.running()
        # Read after the executions: a status change is counted from before it happens.
        events = self.status_events.pending() + self._require_bus().in_flight()
        async_invocations = self._require_async().in_flight()
        invocations = self._require_runtime().in_flight()
        batches = sum(poller.in_flight_batches() for poller in self._pollers)
        counts = (visible, in_flight_messages, running, interpreters, events, async_invocations)
        return IdleStatus(
            idle=not any(counts)
            and invocations == batches == 0
            and self._activity.value == activity_before,
            visible_messages=visible,
            in_flight_messages=in_flight_messages,
            running_executions=running,
            in_flight_invocations=invocations,
            in_flight_batches=batches,
            pending_events=events,
            pending_async_invocations=async_invocations,
            running_interpreters=interpreters,
        )

    def wait_until_idle(
        self, timeout: float, on_progress: Callable[[IdleStatus], None] | None = None
    ) -> IdleStatus:
        """Wait until nothing moves: no queued or in-flight messages on mapped queues, no
        running executions, no invocations, no events or asynchronous invocations pending.
        Returns the last status (``idle`` False on timeout).
        """
        deadline = time.monotonic() + timeout
        while True:
            status = self.idle_status()
            if on_progress is not None:
                on_progress(status)
            if status.idle or time.monotonic() >= deadline:
                return status
            time.sleep(IDLE_POLL_SECONDS)

    def _start_pollers(self, mappings: list[EventSourceMappingConfig]) -> None:
        runtime = self._require_runtime()
        for mapping in mappings:
            if not mapping.enabled:
                continue
            # Each poller has its own client: long polls hold a connection each.
            poller = SqsPoller(
                mapping,
                sqs=self._emulator.new_client("sqs"),
                invoke=runtime.invoke,
                region=self._emulator.region,
                batching_window_scale=self.batching_window_scale,
            )
            poller.start()
            self._pollers.append(poller)

    def _require_runtime(self) -> LambdaRuntime:
        if self._runtime is None:
            raise LocalCloudError("the local cloud is not started")
        return self._runtime

    def _require_bus(self) -> EventBus:
        if self._bus is None:
            raise LocalCloudError("the local cloud is not started")
        return self._bus

    def _require_async(self) -> AsyncInvoker:
        if self._async is None:
            raise LocalCloudError("the local cloud is not started")
        return self._async

    def _require_scheduler(self) -> Scheduler:
        if self._scheduler is None:
            raise LocalCloudError("the local cloud is not started")
        return self._scheduler

    def _schedule(self, rule_or_function_logical_id: str) -> EventRuleConfig:
        schedules = self.stack.schedules
        if rule_or_function_logical_id in schedules:
            return schedules[rule_or_function_logical_id]
        runtime = self._require_runtime()
        matching = [
            rule
            for rule in schedules.values()
            if any(
                target.kind == "lambda"
                and runtime.function(target.arn).logical_id == rule_or_function_logical_id
                for target in rule.targets
            )
        ]
        if len(matching) != 1:
            raise UnknownResourceError(
                f"{rule_or_function_logical_id!r} names no schedule rule, nor a function with "
                f"exactly one (found {[rule.logical_id for rule in matching]})"
            )
        return matching[0]


def _require_mapping_workers(
    runtime: LambdaRuntime, mappings: list[EventSourceMappingConfig]
) -> None:
    """A function gets as many workers as its enabled mappings' pollers may use at once."""
    required: dict[str, int] = {}
    for mapping in mappings:
        if mapping.enabled:
            name = runtime.function(mapping.function_name).name
            concurrency = mapping.maximum_concurrency or DEFAULT_MAXIMUM_CONCURRENCY
            required[name] = required.get(name, 0) + concurrency
    for name, workers in required.items():
        runtime.require_workers(name, workers)


def _running_executions(sfn: Any, state_machine_arn: str) -> int:
    """RUNNING executions of one state machine.

    moto's pagination token goes stale when the filtered list changes between pages (an
    execution ended meanwhile): that alone says work is moving, so it counts as one running.
    """
    paginator = sfn.get_paginator("list_executions")
    running = 0
    try:
        for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
            running += len(page["executions"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "InvalidToken":
            raise
        return max(running, 1)
    return running
