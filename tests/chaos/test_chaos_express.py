"""The seeded chaos run with WorkflowType=EXPRESS: StartSyncExecution under every fault."""

from __future__ import annotations

import pytest

from tweetlens.chaos import ChaosConfig, ChaosReport, run_chaos

# Up to about 8 minutes when a copy has to wait out the compressed 432 s visibility timeout
# (below); under a minute when none does, as in the runs of 2026-12-02 with one record per
# classifier invocation: `make test-slow`, not `make test`.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Every dead-letter reason the stream's faults give under EXPRESS (no aborts: StopExecution
# does not apply to a synchronous Express execution).
DESIGNED_REASONS = {
    "BlockedUrl",
    "ImageHostError",
    "ImageNotFound",
    "ImageTooLarge",
    "Rekognition.InvalidImageFormatException",
    "UnsupportedImageType",
    "States.Timeout",
}

QUOTA_EXHAUSTED = "Rekognition.ThrottlingException"


@pytest.fixture(scope="module")
def report() -> ChaosReport:
    # 40 posts. No classifier worker is killed here (the 500-post run in the README kills
    # one). The run still waits out one compressed visibility timeout (432 s, which must stay
    # above the classifier's 360 s): a copy of a message that arrives while the message runs
    # (a duplicate delivery, a re-read page) is left on its queue by the classifier until the
    # visibility timeout; a transient failure is delivered again after a shorter backoff.
    config = ChaosConfig.for_posts(
        40, seed=11, workflow_type="EXPRESS", kill_classifier_after_starts=None
    )
    return run_chaos(config)


def test_every_invariant_holds(report: ChaosReport) -> None:
    # GIVEN the EXPRESS run under every fault
    # WHEN its invariants are read
    broken = [invariant for invariant in report.invariants if not invariant.ok]
    # THEN none is broken
    assert broken == []
    assert (report.workflow_type, report.ok) == ("EXPRESS", True)


def test_every_message_is_settled_once(report: ChaosReport) -> None:
    # GIVEN the run's figures, settled from the classifier's records (Express is never listed)
    settled = report.done + report.duplicates + sum(report.dead_letters.values())
    # WHEN they are added up
    # THEN they account for every accepted message, none lost or left in progress
    assert (settled, report.lost, report.in_progress) == (report.published, 0, 0)
    assert report.done > 0


def test_every_fault_ends_as_designed(report: ChaosReport) -> None:
    # GIVEN the run's dead letters and per-URL outcomes
    # WHEN they are compared with the faults' design
    # THEN every designed reason appears, the timed-out execution's included; the only other
    # end allowed is Rekognition's quota exhausted after all retries
    assert DESIGNED_REASONS <= set(report.dead_letters) <= DESIGNED_REASONS | {QUOTA_EXHAUSTED}
    assert set(report.unexpected_outcomes.values()) <= {QUOTA_EXHAUSTED}


def test_duplicate_deliveries_and_throttling_were_survived(report: ChaosReport) -> None:
    # GIVEN SQS delivering messages twice, throttled claims and DetectLabels, a killed producer
    # WHEN the run's figures are read
    # THEN the duplicates ran no second classification and nothing was labelled twice
    assert report.duplicate_deliveries == 3
    assert report.duplicates >= 1
    assert report.labelled_twice == 0
    assert report.rekognition_throttled > 0
    assert report.dynamodb_throttled > 0
    assert report.workers_killed == {"producer": 1, "classifier": 0}
    # AND one execution was timed out while it fetched, none aborted
    assert (report.executions_aborted, report.executions_timed_out) == (0, 1)
    # AND the poison page and refused photos ended as producer letters
    assert set(report.producer_letters) == {"UnreadablePage", "RejectedBySqs"}
