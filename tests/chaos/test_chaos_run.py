"""The seeded chaos run, small enough for the test command: every fault, every invariant."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tweetlens.chaos import ChaosConfig, ChaosReport, run_chaos
from tweetlens.cli.chaos import chaos

pytestmark = pytest.mark.integration

# Every dead-letter reason the stream's faults are designed to produce.
DESIGNED_REASONS = {
    "BlockedUrl",
    "ImageHostError",
    "ImageNotFound",
    "ImageTooLarge",
    "Rekognition.InvalidImageFormatException",
    "UnsupportedImageType",
    "ChaosAbort",
    "States.Timeout",
}

QUOTA_EXHAUSTED = "Rekognition.ThrottlingException"


@pytest.fixture(scope="module")
def report() -> ChaosReport:
    # 40 posts: every fault once at least, in about 80 s on a two-core machine, most of it
    # waiting out the killed classifier worker's batch (75 s compressed visibility). STANDARD
    # (not the template's default): aborts and the execution closer's path are faults only it
    # has, and an EXPRESS run waits out a 432 s visibility timeout (tests/chaos/
    # test_chaos_express.py, `make test-slow`).
    return run_chaos(
        ChaosConfig.for_posts(40, seed=11, workflow_type="STANDARD", timeout_seconds=120)
    )


def test_every_invariant_holds(report: ChaosReport) -> None:
    # GIVEN the run under every fault
    # WHEN its invariants are read
    broken = [invariant for invariant in report.invariants if not invariant.ok]
    # THEN none is broken
    assert broken == []
    assert report.ok


def test_every_message_is_settled_once(report: ChaosReport) -> None:
    # GIVEN the run's figures
    settled = report.done + report.duplicates + sum(report.dead_letters.values())
    # WHEN they are added up
    # THEN they account for every accepted message, none lost or left in progress
    assert (settled, report.lost, report.in_progress) == (report.published, 0, 0)


def test_every_fault_ends_as_designed(report: ChaosReport) -> None:
    # GIVEN the run's dead letters and per-URL outcomes
    # WHEN they are compared with the faults' design
    # THEN every designed reason appears; the only other end allowed is Rekognition's quota
    # exhausted after all retries (a dead letter with its reason, to be redriven)
    assert DESIGNED_REASONS <= set(report.dead_letters) <= DESIGNED_REASONS | {QUOTA_EXHAUSTED}
    assert set(report.unexpected_outcomes.values()) <= {QUOTA_EXHAUSTED}


def test_the_crashes_were_survived(report: ChaosReport) -> None:
    # GIVEN the killed producer and classifier workers
    # WHEN the run's figures are read
    # THEN the producer was fired again, re-published posts, and nothing was labelled twice
    assert report.workers_killed == {"producer": 1, "classifier": 1}
    assert (report.producer_crashes, report.labelled_twice) == (1, 0)
    assert report.republished_after_crash > 0
    assert report.rekognition_throttled > 0
    assert report.dynamodb_throttled > 0
    # AND an execution was aborted, one timed out, and SQS refused a dead letter once
    assert (report.executions_aborted, report.executions_timed_out) == (1, 1)
    assert report.dead_letters_refused == 1


def test_poison_pages_and_refused_messages_end_as_producer_letters(report: ChaosReport) -> None:
    # GIVEN the run's poison page and SendMessageBatch faults
    # WHEN the producer's dead letters are read
    # THEN three entries failed once on SQS's side (sent again, accepted), the refused photos'
    # messages were refused (again each time a re-read page sent them), and the producer
    # lettered exactly these: the poison page and the refused messages
    assert report.poison_pages == 1
    assert report.send_entries_failed_transiently == 3
    assert report.send_entries_refused >= 2
    assert set(report.producer_letters) == {"UnreadablePage", "RejectedBySqs"}
    # (a refusal whose letter died with the killed producer is refused and lettered again)
    assert 2 <= report.producer_letters["RejectedBySqs"] <= report.send_entries_refused


def test_the_command_has_help() -> None:
    # GIVEN the chaos command
    # WHEN its help is asked for
    result = CliRunner().invoke(chaos, ["--help"])
    # THEN it explains itself with an example
    assert result.exit_code == 0
    assert "tweetlens chaos --posts 500 --seed 7" in result.output
