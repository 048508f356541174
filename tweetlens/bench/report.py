"""The bench's report: typed figures per design, dollars per million images, and a table."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

from tweetlens.bench.measure import Measurement
from tweetlens.bench.options import BenchOptions
from tweetlens.bench.prices import PriceTable

MILLION: Final = 1_000_000
GB: Final = 1024**3
# S3 bills PUT, COPY, POST and LIST at the PUT rate; GET, HEAD and the rest at the GET rate;
# DELETE is free. The request log names REST calls by their HTTP method.
S3_PUT_METHODS: Final = ("PUT", "POST")
S3_GET_METHODS: Final = ("GET", "HEAD")
# Rekognition and the X API are the work itself; everything else is orchestration.
NOT_ORCHESTRATION: Final = ("rekognition",)


class Costs(BaseModel):
    """Dollars per million unique images classified, by service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rekognition: float
    stepfunctions: float
    lambda_: float
    sqs: float
    dynamodb: float
    s3: float
    cloudwatch_logs: float

    @property
    def total(self) -> float:
        return (
            self.rekognition
            + self.stepfunctions
            + self.lambda_
            + self.sqs
            + self.dynamodb
            + self.s3
            + self.cloudwatch_logs
        )

    @property
    def orchestration(self) -> float:
        return self.total - self.rekognition

    @property
    def orchestration_percent_of_rekognition(self) -> float:
        return 100 * self.orchestration / self.rekognition if self.rekognition else 0.0


class DesignReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    design: str
    title: str
    concurrency: int | None
    images_per_second: float
    p50_latency_ms: float
    p95_latency_ms: float
    quota_share: float | None  # images/s as a share of the DetectLabels quota (None: no quota)
    detect_labels_calls: int
    detect_labels_billed: int
    throttles: int
    dead_letters: int
    dead_letter_errors: dict[str, int]
    lost: int
    labelled_twice: int
    duplicates_detect_labels_calls: int  # billed calls beyond one per unique image classified
    transitions_per_image: float
    executions: int
    lambda_gb_seconds_per_image: float
    express_billing_basis: str | None
    costs_per_million: Costs
    orchestration_percent_of_rekognition: float
    measurement: Measurement


class SweepPoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    concurrency: int
    images_per_second: float
    quota_share: float | None
    throttles: int
    dead_letters: int
    lost: int


class BenchReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    options: BenchOptions
    unique_images: int
    duplicate_posts: int
    price_region: str
    prices_checked: str
    designs: list[DesignReport]
    sweep: list[SweepPoint]

    def design(self, name: str) -> DesignReport:
        return next(report for report in self.designs if report.design == name)


def costs(measurement: Measurement, prices: PriceTable) -> Costs:
    """Dollars per million unique images classified (per image done, times a million)."""
    p = prices.prices
    done = max(measurement.done, 1)
    stats = measurement.requests
    express = measurement.express
    if express is None:
        stepfunctions = measurement.transitions * p.stepfunctions_standard_transition.usd
    else:
        stepfunctions = (
            measurement.executions * p.stepfunctions_express_request.usd
            + express.gb_seconds * p.stepfunctions_express_gb_second.usd
        )
    lambda_ = sum(
        use.invocations * p.lambda_request.usd + use.gb_seconds * p.lambda_arm64_gb_second.usd
        for use in measurement.functions.values()
    )
    log_bytes = measurement.lambda_log_bytes + measurement.workflow_log_bytes + stats.logs_put_bytes
    per_image = {
        "rekognition": measurement.detect_labels_billed * p.rekognition_image.usd,
        "stepfunctions": stepfunctions,
        "lambda_": lambda_,
        "sqs": stats.count("sqs") * p.sqs_request.usd,
        "dynamodb": stats.dynamodb_write_units * p.dynamodb_write_unit.usd
        + stats.dynamodb_read_units * p.dynamodb_read_unit.usd,
        "s3": stats.count("s3", S3_PUT_METHODS) * p.s3_put_request.usd
        + stats.count("s3", S3_GET_METHODS) * p.s3_get_request.usd,
        "cloudwatch_logs": log_bytes / GB * p.cloudwatch_logs_ingested_gb.usd,
    }
    return Costs(**{name: value / done * MILLION for name, value in per_image.items()})


def design_report(
    measurement: Measurement,
    *,
    name: str,
    title: str,
    concurrency: int | None,
    options: BenchOptions,
    prices: PriceTable,
) -> DesignReport:
    done = max(measurement.done, 1)
    rate = measurement.done / measurement.seconds if measurement.seconds > 0 else 0.0
    dollars = costs(measurement, prices)
    return DesignReport(
        design=name,
        title=title,
        concurrency=concurrency,
        images_per_second=rate,
        p50_latency_ms=measurement.p50_ms,
        p95_latency_ms=measurement.p95_ms,
        quota_share=None if options.quota_tps is None else rate / options.quota_tps,
        detect_labels_calls=measurement.detect_labels_calls,
        detect_labels_billed=measurement.detect_labels_billed,
        throttles=measurement.throttles,
        dead_letters=measurement.dead_letters,
        dead_letter_errors=measurement.dead_letter_errors,
        lost=measurement.lost,
        labelled_twice=measurement.labelled_twice,
        duplicates_detect_labels_calls=max(0, measurement.detect_labels_billed - measurement.done),
        transitions_per_image=measurement.transitions / done,
        executions=measurement.executions,
        lambda_gb_seconds_per_image=sum(u.gb_seconds for u in measurement.functions.values())
        / done,
        express_billing_basis=None if measurement.express is None else measurement.express.basis,
        costs_per_million=dollars,
        orchestration_percent_of_rekognition=dollars.orchestration_percent_of_rekognition,
        measurement=measurement,
    )


def print_report(report: BenchReport, console: Console) -> None:
    """The designs side by side, then dollars per million images by service, then the sweep."""
    header = ["figure", *(d.design for d in report.designs)]
    figures = Table(
        *header,
        title=(
            f"tweetlens bench: {report.unique_images} unique images + "
            f"{report.duplicate_posts} duplicate posts, DetectLabels quota "
            f"{quota_text(report.options.quota_tps)}"
        ),
    )
    rows: list[tuple[str, list[str]]] = [
        ("concurrency", [str(d.concurrency or "-") for d in report.designs]),
        ("unique images/s", [f"{d.images_per_second:.2f}" for d in report.designs]),
        ("share of the quota", [share_text(d.quota_share) for d in report.designs]),
        ("p50 latency", [f"{d.p50_latency_ms / 1000:.2f} s" for d in report.designs]),
        ("p95 latency", [f"{d.p95_latency_ms / 1000:.2f} s" for d in report.designs]),
        (
            "DetectLabels calls (billed)",
            [f"{d.detect_labels_calls} ({d.detect_labels_billed})" for d in report.designs],
        ),
        ("throttles", [str(d.throttles) for d in report.designs]),
        ("dead letters", [_letters(d) for d in report.designs]),
        ("lost", [str(d.lost) for d in report.designs]),
        ("labelled twice", [str(d.labelled_twice) for d in report.designs]),
        ("transitions / image", [f"{d.transitions_per_image:.2f}" for d in report.designs]),
        ("Lambda GB-s / image", [f"{d.lambda_gb_seconds_per_image:.3f}" for d in report.designs]),
    ]
    for name, values in rows:
        figures.add_row(name, *values)
    console.print(figures)
    money = Table(*header, title="Dollars per million unique images (us-east-1 list prices)")
    for field, label in (
        ("rekognition", "Rekognition"),
        ("stepfunctions", "Step Functions"),
        ("lambda_", "Lambda"),
        ("sqs", "SQS"),
        ("dynamodb", "DynamoDB"),
        ("s3", "S3"),
        ("cloudwatch_logs", "CloudWatch Logs"),
    ):
        money.add_row(
            label, *(f"{getattr(d.costs_per_million, field):,.2f}" for d in report.designs)
        )
    money.add_row("total", *(f"{d.costs_per_million.total:,.2f}" for d in report.designs))
    money.add_row(
        "orchestration vs Rekognition",
        *(f"{d.orchestration_percent_of_rekognition:.1f} %" for d in report.designs),
    )
    console.print(money)
    for design in report.designs:
        if design.express_billing_basis is not None:
            console.print(f"{design.design}: Express duration {design.express_billing_basis}")
    if report.sweep:
        sweep = Table(
            "concurrency",
            "images/s",
            "share of quota",
            "throttles",
            "dead letters",
            "lost",
            title="EXPRESS concurrency sweep",
        )
        for point in report.sweep:
            sweep.add_row(
                str(point.concurrency),
                f"{point.images_per_second:.2f}",
                share_text(point.quota_share),
                str(point.throttles),
                str(point.dead_letters),
                str(point.lost),
            )
        console.print(sweep)


def _letters(design: DesignReport) -> str:
    if not design.dead_letters:
        return "0"
    reasons = ", ".join(f"{k} {v}" for k, v in design.dead_letter_errors.items())
    return f"{design.dead_letters} ({reasons})"


def quota_text(quota_tps: float | None) -> str:
    return "none" if quota_tps is None else f"{quota_tps:g}/s"


def share_text(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f} %"
