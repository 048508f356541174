"""A small bench (30 images, all three designs) on the local cloud: the report's structure and
its invariants, never its timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tweetlens.bench.chart import draw_chart
from tweetlens.bench.options import BenchOptions
from tweetlens.bench.report import BenchReport
from tweetlens.bench.run import run_bench

pytestmark = pytest.mark.integration

IMAGES = 30


@pytest.fixture(scope="module")
def report() -> BenchReport:
    # Small latencies and a quota the 30 images stay under keep the run short; the figures
    # are not checked, only what must hold whatever the machine's speed.
    options = BenchOptions.checked(
        images=IMAGES,
        duplicate_share=0.3,
        fetch_latency_ms=20,
        detect_labels_latency_ms=20,
        quota_tps=50.0,
        concurrency=(3,),
        design_timeout=300.0,
    )
    return run_bench(options)


def test_every_design_is_reported_in_order(report: BenchReport) -> None:
    assert [d.design for d in report.designs] == ["baseline", "standard", "express"]
    assert [d.concurrency for d in report.designs] == [None, 3, 3]
    assert (report.unique_images, report.duplicate_posts) == (IMAGES, 9)
    assert report.sweep == []


@pytest.mark.parametrize("design", ["baseline", "standard", "express"])
def test_nothing_is_lost_or_labelled_twice(report: BenchReport, design: str) -> None:
    figures = report.design(design)
    # THEN every unique image ends classified or dead-lettered, none is lost, none labelled
    # twice, and the duplicate posts cost no DetectLabels call
    assert figures.lost == 0
    assert figures.labelled_twice == 0
    assert figures.measurement.done + figures.dead_letters == IMAGES
    assert figures.duplicates_detect_labels_calls == 0
    assert figures.detect_labels_billed == figures.measurement.done
    assert figures.measurement.posts == IMAGES + 9


def test_duplicates_start_no_execution(report: BenchReport) -> None:
    assert report.design("baseline").transitions_per_image == 0
    assert report.design("baseline").executions == 0
    # One execution per unique image: duplicates are caught before one starts.
    assert report.design("standard").executions == IMAGES
    assert report.design("standard").transitions_per_image > 0
    # AWS lists no Express execution: the bench counts those that reported billingDetails
    # (the classifier logs each synchronous answer with its record). Duplicates run none: a
    # copy in the same batch is settled from the first, one in a concurrent invocation is
    # refused by the first's reservation. Only a record whose execution failed transiently
    # (throttled past the workflow's retries) and was delivered again runs once more.
    express = report.design("express")
    assert express.executions >= IMAGES
    if express.throttles == 0:
        assert express.executions == IMAGES


def test_costs_are_split_by_service(report: BenchReport) -> None:
    for figures in report.designs:
        dollars = figures.costs_per_million
        assert dollars.rekognition == pytest.approx(1000.0)
        assert dollars.total == pytest.approx(dollars.rekognition + dollars.orchestration)
        assert dollars.lambda_ > 0
        assert dollars.sqs > 0
        assert dollars.dynamodb > 0
    assert report.design("baseline").costs_per_million.stepfunctions == 0
    assert report.design("standard").costs_per_million.stepfunctions > 0
    assert report.design("express").express_billing_basis is not None
    assert report.design("standard").express_billing_basis is None


def test_the_report_round_trips_as_json_and_draws(report: BenchReport, tmp_path: Path) -> None:
    text = report.model_dump_json()
    assert BenchReport.model_validate(json.loads(text)) == report
    path = draw_chart(report, tmp_path / "bench.png")
    assert path.read_bytes().startswith(b"\x89PNG")
