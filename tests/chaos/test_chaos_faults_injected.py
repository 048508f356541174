"""The invariant "every fault was injected": its detail alone tells a failing CI run's story."""

from __future__ import annotations

import dataclasses

import pytest

from tweetlens.chaos import ChaosConfig
from tweetlens.chaos.invariants import (
    InjectedFaults,
    fault_tallies,
    faults_injected,
)

# A 40-post STANDARD run's design: 3 duplicate deliveries, 1 abort, 1 timeout, 1 refused
# letter, 3 transient batch failures, DetectLabelsRate 2 (half the small run's 5/s quota).
CONFIG = ChaosConfig.for_posts(40, seed=11, workflow_type="STANDARD")

# What the seeded 40-post run injected (its figures; 2 refused photos, 1 poison page).
AS_DESIGNED = InjectedFaults(
    producer_kills=1,
    producer_crashes=1,
    classifier_kills=1,
    adopted=0,
    dynamodb_throttles=14,
    rekognition_throttles=47,
    throttled_by_neighbour=27,
    limiter_writes=150,
    limiter_refused=77,
    invalid_images=1,
    duplicate_deliveries=3,
    aborted=1,
    timed_out=1,
    letters_refused=1,
    transient_send_failures=3,
    send_refusals=4,
    refused_photos=2,
    poison_pages=1,
    unreadable_page_letters=1,
)

# Each kind as the detail names it when injected as designed, in the detail's order.
INJECTED = {
    "producer_kills": "producer worker killed 1",
    "producer_crashes": "producer run crashed 1",
    "classifier_kills": "classifier worker killed 1",
    "adopted": "executions adopted after a classifier kill 0",
    "dynamodb_throttles": "DynamoDB requests throttled 14",
    "rekognition_throttles": (
        "Rekognition calls throttled 47 (27 while another caller held the quota)"
    ),
    "limiter_refused": "start limiter window writes refused 77 (of 150, DetectLabelsRate 2)",
    "invalid_images": "invalid images 1",
    "duplicate_deliveries": "duplicate deliveries 3",
    "aborted": "executions aborted 1",
    "timed_out": "executions timed out 1",
    "letters_refused": "dead letters refused by SQS 1",
    "transient_send_failures": "batch entries failed on SQS's side 3",
    "send_refusals": "batch entries refused as the sender's fault 4 (2 refused photo(s))",
    "unreadable_page_letters": "UnreadablePage letters 1 (1 poison page(s) served)",
}


def _injected_except(*fields: str) -> str:
    return "injected: " + ", ".join(text for f, text in INJECTED.items() if f not in fields)


def test_every_fault_injected_as_designed_lists_each_kind_with_its_count() -> None:
    # GIVEN a run that injected every fault as designed
    # WHEN the invariant is read
    invariant = faults_injected(fault_tallies(AS_DESIGNED, CONFIG))
    # THEN it holds, and its detail counts every kind
    assert invariant.ok
    assert invariant.detail == _injected_except()


# One case per way the invariant fails: the field changed, and how the detail names it.
FAILURES = [
    ("producer_kills", 0, "producer worker killed 0 (wanted 1)"),
    ("producer_crashes", 2, "producer run crashed 2 (wanted 1)"),
    ("classifier_kills", 0, "classifier worker killed 0 (wanted 1)"),
    ("adopted", 2, "executions adopted after a classifier kill 2 (wanted at most 1)"),
    ("dynamodb_throttles", 0, "DynamoDB requests throttled 0 (wanted at least 1)"),
    (
        "rekognition_throttles",
        0,
        "Rekognition calls throttled 0 (wanted at least 1; 27 while another caller held the quota)",
    ),
    (
        "limiter_refused",
        0,
        "start limiter window writes refused 0 (wanted at least 1; of 150, DetectLabelsRate 2)",
    ),
    ("invalid_images", 0, "invalid images 0 (wanted at least 1)"),
    ("duplicate_deliveries", 2, "duplicate deliveries 2 (wanted 3)"),
    ("aborted", 0, "executions aborted 0 (wanted 1)"),
    ("timed_out", 2, "executions timed out 2 (wanted 1)"),
    ("letters_refused", 0, "dead letters refused by SQS 0 (wanted 1)"),
    ("transient_send_failures", 2, "batch entries failed on SQS's side 2 (wanted 3)"),
    (
        "send_refusals",
        1,
        "batch entries refused as the sender's fault 1 (wanted at least 2; 2 refused photo(s))",
    ),
    (
        "unreadable_page_letters",
        0,
        "UnreadablePage letters 0 (wanted at least 1; 1 poison page(s) served)",
    ),
]


@pytest.mark.parametrize(
    ("field", "value", "named"), FAILURES, ids=[field for field, _, _ in FAILURES]
)
def test_a_fault_not_injected_as_designed_is_named_with_the_rest_counted(
    field: str, value: int, named: str
) -> None:
    # GIVEN a run where one kind of fault was not injected as designed
    injected = dataclasses.replace(AS_DESIGNED, **{field: value})
    # WHEN the invariant is read
    invariant = faults_injected(fault_tallies(injected, CONFIG))
    # THEN it fails, naming that kind with the count wanted, then every other kind's count
    assert not invariant.ok
    assert invariant.detail == f"not injected as designed: {named}; {_injected_except(field)}"


def test_every_failure_path_has_its_case() -> None:
    # GIVEN the failure cases above and the kinds the invariant tallies
    # WHEN they are compared
    # THEN each tallied kind has a case (a kind added later needs its own)
    assert [field for field, _, _ in FAILURES] == list(INJECTED)
    assert len(fault_tallies(AS_DESIGNED, CONFIG)) == len(INJECTED)


def test_several_kinds_missing_are_all_named_in_order() -> None:
    # GIVEN a run where the classifier was never killed and nothing was throttled by DynamoDB
    injected = dataclasses.replace(AS_DESIGNED, classifier_kills=0, dynamodb_throttles=0)
    # WHEN the invariant is read
    invariant = faults_injected(fault_tallies(injected, CONFIG))
    # THEN both are named, in the detail's order
    assert invariant.detail == (
        "not injected as designed: classifier worker killed 0 (wanted 1), "
        "DynamoDB requests throttled 0 (wanted at least 1); "
        + _injected_except("classifier_kills", "dynamodb_throttles")
    )


def test_a_classifier_killed_when_none_was_due_is_named() -> None:
    # GIVEN a run designed to kill no classifier worker, in which one was killed
    config = ChaosConfig.for_posts(
        40, seed=11, workflow_type="STANDARD", kill_classifier_after_starts=None
    )
    # WHEN the invariant is read
    invariant = faults_injected(fault_tallies(AS_DESIGNED, config))
    # THEN the kill is named as not designed
    assert invariant.detail == (
        "not injected as designed: classifier worker killed 1 (wanted 0); "
        + _injected_except("classifier_kills")
    )


def test_express_has_no_start_limiter_to_count() -> None:
    # GIVEN an EXPRESS run (no DetectLabelsRate, no aborts) whose limiter refused nothing
    config = ChaosConfig.for_posts(40, seed=11, workflow_type="EXPRESS")
    injected = dataclasses.replace(AS_DESIGNED, limiter_refused=0, limiter_writes=0, aborted=0)
    # WHEN the invariant is read
    invariant = faults_injected(fault_tallies(injected, config))
    # THEN it holds, and the limiter is not among the kinds
    assert invariant.ok
    assert invariant.detail == (
        "injected: producer worker killed 1, producer run crashed 1, classifier worker killed 1, "
        "executions adopted after a classifier kill 0, DynamoDB requests throttled 14, "
        "Rekognition calls throttled 47 (27 while another caller held the quota), "
        "invalid images 1, duplicate deliveries 3, executions aborted 0, "
        "executions timed out 1, dead letters refused by SQS 1, "
        "batch entries failed on SQS's side 3, "
        "batch entries refused as the sender's fault 4 (2 refused photo(s)), "
        "UnreadablePage letters 1 (1 poison page(s) served)"
    )
