"""What one chaos run is configured with, and the names of the pipeline's parts it drives."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

STATE_MACHINE: Final = "ClassifyImageStateMachine"
ROUTE_QUEUES: Final = {"cats": "CatsQueue", "dogs": "DogsQueue"}
PRODUCER_HANDLER: Final = "producer.app.lambda_handler"
CLASSIFIER_HANDLER: Final = "classifier.app.lambda_handler"
MAX_PRODUCER_RUNS: Final = 10


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
