"""`tweetlens.coldstart`: the records' structure and arithmetic, never their timings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tweetlens.coldstart import DEFAULT_LIMIT, ColdStartError, ColdStartRecord, measure
from tweetlens.localcloud.cloud import LocalCloud

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(SAMPLE_TEMPLATE, run_schedules=False, run_pollers=False) as started:
        yield started


def test_one_record_per_function_with_its_ratio_and_limit(cloud: LocalCloud) -> None:
    # GIVEN the sample application deployed, and a limit for one of its functions
    first, *others = sorted(cloud.functions)

    # WHEN the cold starts are measured once each
    records = measure(cloud, runs=1, limits={first: 2.5})

    # THEN there is one record per function, in logical-id order, each with its handler
    assert [record.function for record in records] == [first, *others]
    assert [record.handler for record in records] == [
        cloud.functions[name].handler for name in (first, *others)
    ]
    for record in records:
        assert isinstance(record, ColdStartRecord)
        assert record.runs == 1
        assert record.init_ms > 0
        assert record.baseline_ms > 0
        assert record.init_cpu_ms > 0
        assert record.baseline_cpu_ms > 0
        # AND the ratios are the function's init over the floor's (CPU and wall), to 3 places
        assert record.ratio == round(record.init_cpu_ms / record.baseline_cpu_ms, 3)
        assert record.wall_ratio == round(record.init_ms / record.baseline_ms, 3)
        assert record.within_limit is (record.ratio <= record.limit)
    # AND the limit is the one given for that function, the default for the others
    assert [record.limit for record in records] == [2.5] + [DEFAULT_LIMIT] * len(others)


def test_selected_functions_only(cloud: LocalCloud) -> None:
    # GIVEN one function of the sample application
    name = sorted(cloud.functions)[-1]

    # WHEN only it is measured
    records = measure(cloud, functions=[name], runs=1)

    # THEN there is exactly its record
    assert [record.function for record in records] == [name]


def test_unknown_function_is_refused(cloud: LocalCloud) -> None:
    # GIVEN a logical id the template does not have
    # WHEN it is measured
    # THEN the error names it
    with pytest.raises(ColdStartError, match=r"no such functions in the template: \['Nope'\]"):
        measure(cloud, functions=["Nope"], runs=1)


def test_runs_must_be_at_least_one(cloud: LocalCloud) -> None:
    # GIVEN zero runs
    # WHEN measured
    # THEN it is refused
    with pytest.raises(ValueError, match="runs must be at least 1"):
        measure(cloud, runs=0)


def test_record_is_json_ready() -> None:
    # GIVEN a record
    record = ColdStartRecord(
        function="F",
        handler="f.handler",
        runs=3,
        init_ms=120.0,
        baseline_ms=100.0,
        init_cpu_ms=110.0,
        baseline_cpu_ms=100.0,
        ratio=1.1,
        wall_ratio=1.2,
        limit=1.3,
    )

    # WHEN it is dumped for the bench's JSON
    dumped = record.model_dump(mode="json")

    # THEN every field is there, as given
    assert dumped == {
        "function": "F",
        "handler": "f.handler",
        "runs": 3,
        "init_ms": 120.0,
        "baseline_ms": 100.0,
        "init_cpu_ms": 110.0,
        "baseline_cpu_ms": 100.0,
        "ratio": 1.1,
        "wall_ratio": 1.2,
        "limit": 1.3,
    }
    assert record.within_limit is True
