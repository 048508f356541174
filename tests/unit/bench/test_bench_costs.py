"""The cost model: dollars per million images by service, from the price table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from tweetlens.bench.chart import draw_chart
from tweetlens.bench.measure import (
    ExpressBilling,
    FunctionUse,
    Measurement,
    billed_transitions,
    function_use,
)
from tweetlens.bench.options import BenchOptions
from tweetlens.bench.prices import PriceError, load_prices
from tweetlens.bench.report import BenchReport, SweepPoint, costs, design_report
from tweetlens.localcloud import LocalCloud
from tweetlens.localcloud.models import FunctionConfig, InvocationRecord
from tweetlens.localcloud.requestlog import RequestStats
from tweetlens.localcloud.runtime import format_report


def _measurement(**changes: object) -> Measurement:
    values: dict[str, object] = {
        "posts": 125,
        "unique_images": 100,
        "done": 100,
        "seconds": 20.0,
        "latencies_ms": [1000.0 + n for n in range(100)],
        "detect_labels_calls": 100,
        "detect_labels_billed": 100,
        "labelled_twice": 0,
        "throttles": 3,
        "dead_letters": 0,
        "dead_letter_errors": {},
        "lost": 0,
        "executions": 100,
        "transitions": 400,
        "express": None,
        "functions": {"FetchImageFunction": FunctionUse(invocations=100, gb_seconds=25.0)},
        "requests": RequestStats(
            requests={"sqs:ReceiveMessage": 50, "sqs:SendMessageBatch": 50, "s3:PUT": 100},
            dynamodb_read_units=50.0,
            dynamodb_write_units=400.0,
        ),
        "lambda_log_bytes": 1024**3 // 1000,
    }
    values.update(changes)
    return Measurement.model_validate(values)


def test_standard_costs_per_million_images_by_service() -> None:
    # GIVEN 100 images: 400 transitions, 100 fetches of 0.25 GB-s, 100 SQS requests, 400 WRU,
    # 50 RRU, 100 S3 PUTs, 1/1000 GB of logs
    dollars = costs(_measurement(), load_prices())
    # THEN each service's dollars per million images follow the price table
    assert dollars.rekognition == pytest.approx(1000.0)
    assert dollars.stepfunctions == pytest.approx(4 * 25.0)
    assert dollars.lambda_ == pytest.approx(0.20 + 0.25 * 0.0000133334 * 1e6)
    assert dollars.sqs == pytest.approx(0.40)
    assert dollars.dynamodb == pytest.approx(4 * 0.625 + 0.5 * 0.125)
    assert dollars.s3 == pytest.approx(5.0)
    assert dollars.cloudwatch_logs == pytest.approx(0.50 / 1000 / 100 * 1e6, rel=1e-3)
    assert dollars.orchestration == pytest.approx(dollars.total - 1000.0)
    assert dollars.orchestration_percent_of_rekognition == pytest.approx(dollars.orchestration / 10)


def test_express_costs_requests_and_duration_not_transitions() -> None:
    # GIVEN an EXPRESS run: 100 executions, 100 x 0.1 s at 64 MB
    express = ExpressBilling(gb_seconds=100 * 0.1 * 0.0625, basis="billingDetails")
    dollars = costs(_measurement(express=express), load_prices())
    # THEN Step Functions is $1 per million requests plus the GB-seconds
    assert dollars.stepfunctions == pytest.approx(1.0 + 0.0625 * 0.1 * 0.00001667 * 1e6)


def test_design_report_derives_rates_and_invariants() -> None:
    options = BenchOptions.checked(quota_tps=10.0)
    report = design_report(
        _measurement(detect_labels_billed=103, done=100),
        name="standard",
        title="t",
        concurrency=5,
        options=options,
        prices=load_prices(),
    )
    assert report.images_per_second == pytest.approx(5.0)
    assert report.quota_share == pytest.approx(0.5)
    assert report.transitions_per_image == pytest.approx(4.0)
    assert report.lambda_gb_seconds_per_image == pytest.approx(0.25)
    assert report.duplicates_detect_labels_calls == 3
    assert report.p50_latency_ms == pytest.approx(1049.5)


def test_without_a_quota_there_is_no_share_of_it() -> None:
    # GIVEN a run with no DetectLabels quota
    options = BenchOptions.checked(quota_tps=None)
    # WHEN its report is derived
    report = design_report(
        _measurement(done=100),
        name="standard",
        title="t",
        concurrency=5,
        options=options,
        prices=load_prices(),
    )
    # THEN the rate is measured and the share of a quota is absent, not a division by none
    assert report.images_per_second == pytest.approx(5.0)
    assert report.quota_share is None


def test_a_price_table_missing_a_price_is_refused(tmp_path: Path) -> None:
    # GIVEN a table without the Rekognition price
    text = (Path(__file__).parents[3] / "tweetlens/bench/prices.toml").read_text()
    broken = tmp_path / "prices.toml"
    broken.write_text(text.replace("[prices.rekognition_image]", "[prices.unused]"))
    # WHEN it is loaded / THEN it is refused, naming the missing price
    with pytest.raises(PriceError, match="rekognition_image"):
        load_prices(broken)


def test_every_price_has_a_source_and_a_date() -> None:
    table = load_prices()
    assert table.region == "us-east-1"
    assert all(price.source.startswith("https://aws.amazon.com/") for price in table.prices.every())


def test_the_chart_is_drawn_with_the_sweep(tmp_path: Path) -> None:
    # GIVEN a report with two designs and a sweep
    options = BenchOptions.checked(concurrency=(2, 5))
    designs = [
        design_report(
            _measurement(),
            name=name,
            title=name,
            concurrency=5,
            options=options,
            prices=load_prices(),
        )
        for name in ("baseline", "express")
    ]
    report = BenchReport(
        options=options,
        unique_images=100,
        duplicate_posts=25,
        price_region="us-east-1",
        prices_checked="2026-12-02",
        designs=designs,
        sweep=[
            SweepPoint(
                concurrency=c,
                images_per_second=c,
                quota_share=c / 5,
                throttles=0,
                dead_letters=0,
                lost=0,
            )
            for c in (2, 5)
        ],
    )
    # WHEN it is drawn / THEN a PNG is written
    path = draw_chart(report, tmp_path / "bench.png")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_workflow_logs_are_priced_beside_the_functions_logs() -> None:
    # GIVEN 100 images whose functions logged 1/1000 GB and whose workflow logged as much again
    # (an Express machine logging ALL)
    base = costs(_measurement(), load_prices())
    with_workflow_logs = costs(_measurement(workflow_log_bytes=1024**3 // 1000), load_prices())
    # THEN the workflow's log bytes are ingested logs too: the Logs figure doubles
    assert with_workflow_logs.cloudwatch_logs == pytest.approx(2 * base.cloudwatch_logs)


def _history(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(
        (Path(__file__).parents[2] / "local" / "data" / name).read_text(encoding="utf-8")
    )
    return events


def test_billed_transitions_are_the_states_entered_when_nothing_is_retried() -> None:
    # GIVEN a Standard history with no retry: seven states entered, one attempt per Task visit
    events = _history("history_success.json")

    # WHEN its billed transitions are counted
    # THEN each state entered is one
    assert billed_transitions(events) == 7


def test_billed_transitions_count_each_retry() -> None:
    # GIVEN a Standard history whose second Task state needed three attempts (two retries)
    events = _history("history_retry.json")

    # WHEN its billed transitions are counted
    # THEN the six states entered and the two retries are billed ("each retry will be charged
    # as an additional state transition", Step Functions pricing)
    assert billed_transitions(events) == 8


class _Invoked:
    """What ``function_use`` reads of a local cloud: its functions and its invocations."""

    def __init__(self, function: FunctionConfig, records: list[InvocationRecord]) -> None:
        self.functions = {function.logical_id: function}
        self._records = records

    def invocations(self) -> list[InvocationRecord]:
        return self._records


def test_function_logs_are_counted_once_as_lambda_ships_them() -> None:
    # GIVEN two invocations of a 128 MB function, each framed as the local runtime frames its
    # logs (START, the function's line, END, REPORT)
    function = FunctionConfig(
        logical_id="ClassifierFunction",
        name="stack-ClassifierFunction-X",
        arn="arn:aws:lambda:us-east-1:123456789012:function:stack-ClassifierFunction-X",
        handler="classifier.app.lambda_handler",
        runtime="python3.12",
        code_uri=Path("functions"),
        timeout=360,
        memory_size=128,
        environment={},
    )
    records = []
    for request_id in ("r1", "r2"):
        report = format_report(request_id, duration_ms=999.5, memory_size=128, max_memory_used=70)
        records.append(
            InvocationRecord(
                function_name=function.name,
                request_id=request_id,
                report=report,
                error_type=None,
                error_message=None,
                logs=f"START RequestId: {request_id} Version: $LATEST\n"
                f'{{"level":"INFO"}}\nEND RequestId: {request_id}\n{report}\n',
                cold_start=False,
                started_at=0.0,
                ended_at=1.0,
            )
        )

    # WHEN the bench reads the function's use
    uses, log_bytes = function_use(cast("LocalCloud", _Invoked(function, records)))

    # THEN each invocation is one request billed 1,000 ms at 128 MB, and its logs count once
    assert uses == {
        "ClassifierFunction": FunctionUse(invocations=2, gb_seconds=2 * 1.0 * 128 / 1024)
    }
    assert log_bytes == sum(len(record.logs.encode("utf-8")) for record in records)
