"""What one chaos run is configured with, and the names of the pipeline's parts it drives."""

from __future__ import annotations

import math
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

STATE_MACHINE: Final = "ClassifyImageStateMachine"
ROUTE_QUEUES: Final = {"cats": "CatsQueue", "dogs": "DogsQueue"}
PRODUCER_HANDLER: Final = "producer.app.lambda_handler"
CLASSIFIER_HANDLER: Final = "classifier.app.lambda_handler"
MAX_PRODUCER_RUNS: Final = 10

WorkflowType = Literal["STANDARD", "EXPRESS"]

# Route queues' VisibilityTimeout, ClassifierFunction's Timeout and its SQS mappings'
# MaximumBatchingWindowInSeconds in template.yaml, per WorkflowType (pinned to the template by
# tests/chaos/test_chaos_visibility.py). The template keeps Lambda's advice for SQS event
# sources: visibility 6 x the function's timeout.
QUEUE_VISIBILITY_SECONDS: Final = {"STANDARD": 360, "EXPRESS": 2160}
CLASSIFIER_TIMEOUT_SECONDS: Final = {"STANDARD": 60, "EXPRESS": 360}
BATCHING_WINDOW_SECONDS: Final = {"STANDARD": 5, "EXPRESS": 0}
# Lambda's limit on a cold start's init phase: an init that takes longer is run again inside
# the invocation, on its timeout, so a batch's invocation ends at most this long plus the
# timeout after it began. (The local runtime lets an init run up to the function's timeout
# when that is longer: more lenient than Lambda; the classifier's inits here take about 2 s.)
INIT_LIMIT_SECONDS: Final = 10
# The chaos run compresses visibility timeouts (every redelivery: the killed classifier
# worker's batch, deferred records, batch item failures) so that a redelivery costs a minute
# or so, not 6; it cannot keep the 6 x rule and does not need to. Lambda's 6 x is headroom for
# its poller retrying an invocation that was throttled while the batch's clock runs; the local
# cloud's poller receives a batch only once it holds one of the mapping's MaximumConcurrency
# slots, and the classifier has a worker for every slot, so an invocation is never throttled
# nor retried. What must hold is that a batch comes back only after its invocation can no
# longer be working on it: visibility >= batching window + init limit + timeout
# (``longest_hold_seconds``). Nor can the classifier's timeout shrink with the visibility
# instead (10 s, with 60 s visibility): under STANDARD it waits for its start slots for up
# to its timeout less 5 s, and a 40-post run's invocations took up to 18 s, so records would
# be deferred, each deferral a visibility timeout and one of its 5 receives.
# STANDARD: 360 s x 5/24 = 75 s = 5 s + 10 s + 60 s (1/6, 60 s, left the window and the init out).
STANDARD_VISIBILITY_FACTOR: Final = 5 / 24
# EXPRESS: 2160 s x 1/5 = 432 s, above 0 s + 10 s + 360 s.
EXPRESS_VISIBILITY_FACTOR: Final = 1 / 5


def longest_hold_seconds(workflow_type: WorkflowType) -> int:
    """How long the local cloud's poller may hold a route batch before its invocation ends."""
    return (
        BATCHING_WINDOW_SECONDS[workflow_type]
        + INIT_LIMIT_SECONDS
        + CLASSIFIER_TIMEOUT_SECONDS[workflow_type]
    )


class ChaosError(Exception):
    """The chaos run could not be carried out (as opposed to finding broken invariants)."""


class ChaosConfig(BaseModel):
    """Knobs of one run; ``for_posts`` scales the fault counts with the stream's size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Strict: the run's size picks its defaults (``for_posts``), so "40" or 40.5 is refused by
    # name rather than read as a number.
    posts: int = Field(strict=True, ge=20, le=5_000)
    seed: int
    # The template's WorkflowType. EXPRESS: the classifier waits on StartSyncExecution and owns
    # every outcome; executions are never listed, so settlement reads the classifier's records.
    workflow_type: WorkflowType = "STANDARD"
    page_size: int = Field(default=25, ge=10, le=100)
    rekognition_rps: float = Field(default=4.0, gt=0)
    # STANDARD: the template's DetectLabelsRate, the start limiter's rate; None: the template's
    # default. ``for_posts`` deploys it at the injected quota, so the limiter binds under the
    # faults (the template's default, 50/s, is far above it and never bound here).
    detect_labels_rate: int | None = Field(default=None, ge=1)
    # Another caller of the account takes the whole Rekognition quota for
    # ``quota_neighbour_seconds`` of every ``quota_neighbour_every`` (from the first call):
    # throttling the limiter cannot prevent. None: no other caller.
    quota_neighbour_every: float | None = Field(default=None, gt=0)
    quota_neighbour_seconds: float = Field(default=1.0, gt=0)
    dynamodb_every: int = Field(default=40, ge=1)
    dynamodb_burst: int = Field(default=2, ge=1)
    kill_producer_after_batches: int = Field(default=5, ge=1)
    # The classifier worker that made this StartExecution (EXPRESS: StartSyncExecution) call
    # is SIGKILLed before it reads the answer; None: no classifier worker is killed.
    kill_classifier_after_starts: int | None = Field(default=6, ge=1)
    duplicate_deliveries: int = Field(default=10, ge=0)
    timeouts: int = Field(default=2, ge=0)
    slow_bodies: int = Field(default=3, ge=0)
    execution_aborts: int = Field(default=1, ge=0, le=20)
    execution_timeouts: int = Field(default=1, ge=0, le=20)
    dead_letter_refusals: int = Field(default=1, ge=0, le=20)
    # X API pages whose envelope fails validation (their meta still links the next page).
    poison_pages: int = Field(default=1, ge=0, le=5)
    # Photos whose route messages SendMessageBatch refuses as the sender's fault, every time.
    refused_photos: int = Field(default=2, ge=0, le=20)
    # Batch entries SQS fails on its side once (the rest of the batch is accepted).
    transient_send_failures: int = Field(default=3, ge=0, le=50)
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
    # Visibility timeouts x this (see STANDARD_VISIBILITY_FACTOR): STANDARD's 360 s become
    # 75 s, so a crashed batch comes back quickly, yet never while its invocation may still
    # be running.
    visibility_factor: float = Field(default=STANDARD_VISIBILITY_FACTOR, gt=0, le=1)
    timeout_seconds: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _fits_the_workflow_type(self) -> Self:
        if self.workflow_type == "EXPRESS" and self.detect_labels_rate is not None:
            raise ValueError("DetectLabelsRate applies to STANDARD only: detect_labels_rate")
        if self.workflow_type == "EXPRESS" and self.execution_aborts:
            # StopExecution does not apply to synchronous Express executions.
            raise ValueError("EXPRESS executions cannot be aborted: execution_aborts must be 0")
        visibility = QUEUE_VISIBILITY_SECONDS[self.workflow_type] * self.visibility_factor
        hold = longest_hold_seconds(self.workflow_type)
        if visibility < hold:
            raise ValueError(
                f"visibility_factor {self.visibility_factor:g} makes the route queues' "
                f"visibility {visibility:g} s, below the {hold} s a batch may be held: the "
                f"{BATCHING_WINDOW_SECONDS[self.workflow_type]} s batching window, Lambda's "
                f"{INIT_LIMIT_SECONDS} s init limit and the classifier's "
                f"{CLASSIFIER_TIMEOUT_SECONDS[self.workflow_type]} s timeout"
            )
        return self

    @property
    def kill_recovery_seconds(self) -> float:
        """How long a killed classifier worker's batch stays invisible before SQS redelivers it."""
        return QUEUE_VISIBILITY_SECONDS[self.workflow_type] * self.visibility_factor

    @classmethod
    def for_posts(
        cls, posts: int, seed: int, workflow_type: WorkflowType = "STANDARD", **overrides: Any
    ) -> ChaosConfig:
        if isinstance(posts, bool) or not isinstance(posts, int):
            # The defaults below are computed from the size: one that is no whole number is
            # refused by name (the model's ValidationError, as every other bad option is)
            # rather than by a TypeError from that arithmetic. ``posts`` is strict: this raises.
            return cls.model_validate(
                {"posts": posts, "seed": seed, "workflow_type": workflow_type}
            )
        small = posts < 200
        express = workflow_type == "EXPRESS"
        defaults: dict[str, Any] = {
            "posts": posts,
            "seed": seed,
            "workflow_type": workflow_type,
            # A small run's ~35 DetectLabels calls start within a second or two, so any quota
            # under that makes them collide (throttles are a designed fault). 5/s clears them in
            # about 7 s, inside Detect Labels' retry window (13 retries, waits capped at 2 s,
            # about 13 s): at 3/s the last calls ran out of retries, and a designed fault (the
            # refused image) was sometimes throttled out instead of reaching Rekognition.
            "rekognition_rps": 5.0 if small else 4.0,
            "timeouts": 1 if small else 2,
            "slow_bodies": 1 if small else 3,
            "duplicate_deliveries": max(3, posts // 50),
            "execution_aborts": 0 if express else 1 if small else 2,
            "execution_timeouts": 1 if small else 2,
            "kill_producer_after_batches": 3 if small else 12,
        }
        if express:
            defaults["visibility_factor"] = EXPRESS_VISIBILITY_FACTOR
            # The killed worker's batch comes back only after the visibility timeout.
            defaults["timeout_seconds"] = 600.0 + QUEUE_VISIBILITY_SECONDS["EXPRESS"] / 5
        else:
            # A neighbour's burst of one second every ten: about a tenth of the quota gone.
            defaults["quota_neighbour_every"] = 10.0
        defaults.update(overrides)
        if not express and "detect_labels_rate" not in overrides:
            # The limiter at the quota (it grants whole starts a second): a long run's backlog
            # makes it bind. A small run's backlog is a few batches, and whether its starts
            # ever outran the quota depended on the machine's speed (a 40-post run under the
            # parallel test suite once had no start held back): there the limit is half the
            # quota, which the backlog outruns on any machine.
            quota = math.floor(defaults["rekognition_rps"])
            defaults["detect_labels_rate"] = max(1, quota // 2 if small else quota)
        return cls.model_validate(defaults)
