"""The chaos run: the deployed template on the local cloud, with every fault injected at once.

A seeded post stream (``stream``) carries photo URLs that fail on the image host in every way
it can (404, 410, 500, 503 then OK, resets, read timeouts, very slow bodies, bodies over
15 MB, text served as an image, a redirect to a private address), images that Rekognition
refuses (InvalidImageFormatException), and the same URL in many posts. While it runs
(``faults``, ``run``), Rekognition is throttled above a requests-per-second limit, DynamoDB
throttles in bursts (the claim and the store transaction included), one classifier worker is
SIGKILLed right after it started an execution mid-batch, the producer's worker is SIGKILLed
after its Nth SendMessageBatch (and the schedule fired again), some accepted messages are
delivered a second time, executions are aborted by an "operator" and timed out while they
fetch, and SQS refuses the execution closer's first dead letter (Lambda's retry must send it
once).

Then ``invariants.check`` reads back what happened - SQS's own record of accepted messages,
the classifier's per-record records, the executions, the dead-letter queues, the results
table and the Rekognition calls - ties each message to one end (``settle``) and states each
invariant as passed or broken (``report``).
"""

from tweetlens.chaos.config import (
    CLASSIFIER_HANDLER,
    PRODUCER_HANDLER,
    ROUTE_QUEUES,
    STATE_MACHINE,
    ChaosConfig,
    ChaosError,
)
from tweetlens.chaos.faults import DeadLetterRefusals, ExecutionStopper, Faults, install_faults
from tweetlens.chaos.invariants import check
from tweetlens.chaos.report import ChaosReport, Invariant
from tweetlens.chaos.run import ChaosRun, chaos_cloud, run_chaos
from tweetlens.chaos.stream import (
    ABORT_ERROR,
    EXECUTION_TIMEOUT_ERROR,
    HOST_FAULTS,
    INVALID_IMAGE_ERROR,
    ChaosStream,
    build_chaos_stream,
    expected_message_keys,
)
from tweetlens.settlement import Settlement, settle

__all__ = [
    "ABORT_ERROR",
    "CLASSIFIER_HANDLER",
    "EXECUTION_TIMEOUT_ERROR",
    "HOST_FAULTS",
    "INVALID_IMAGE_ERROR",
    "PRODUCER_HANDLER",
    "ROUTE_QUEUES",
    "STATE_MACHINE",
    "ChaosConfig",
    "ChaosError",
    "ChaosReport",
    "ChaosRun",
    "ChaosStream",
    "DeadLetterRefusals",
    "ExecutionStopper",
    "Faults",
    "Invariant",
    "Settlement",
    "build_chaos_stream",
    "chaos_cloud",
    "check",
    "expected_message_keys",
    "install_faults",
    "run_chaos",
    "settle",
]
