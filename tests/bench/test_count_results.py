"""The bench's progress count agrees with the results it measures, filter and all."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tweetlens.bench.designs import STANDARD, Design
from tweetlens.bench.measure import count_results, read_results
from tweetlens.localcloud import LocalCloud

pytestmark = pytest.mark.integration

# The sample application's table (hash key pk), read the way the bench reads STANDARD's.
SAMPLE = dataclasses.replace(
    STANDARD,
    template=SAMPLE_TEMPLATE,
    results_table="ItemsTable",
    result_filter=(("kind", "RESULT"), ("status", "DONE")),
)


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(SAMPLE_TEMPLATE, run_schedules=False, run_pollers=False) as local_cloud:
        yield local_cloud


def test_only_finished_results_are_counted(cloud: LocalCloud) -> None:
    # GIVEN 7 finished results, 3 results still running and 4 other items (labels)
    dynamodb = cloud.client("dynamodb")
    table = cloud.resources["ItemsTable"]
    for n in range(14):
        kind, status = ("RESULT", "DONE") if n < 7 else ("RESULT", "RUNNING")
        if n >= 10:
            kind, status = "LABEL", "DONE"
        dynamodb.put_item(
            TableName=table,
            Item={
                "pk": {"S": f"https://images.example/{n}.jpg"},
                "kind": {"S": kind},
                "status": {"S": status},
            },
        )
    # WHEN the progress count and the measured results are read
    counted = count_results(cloud, SAMPLE)
    measured = read_results(cloud, SAMPLE)
    # THEN both see the same 7
    assert counted == 7
    assert len(measured) == 7


def test_a_design_without_a_filter_counts_every_item(cloud: LocalCloud) -> None:
    # GIVEN the table of the test above (14 items) and a design with no result filter
    unfiltered: Design = dataclasses.replace(SAMPLE, result_filter=())
    # WHEN counted / THEN every item is a result
    assert count_results(cloud, unfiltered) == 14
