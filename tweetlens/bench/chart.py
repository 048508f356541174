"""The bench drawn: throughput, latency and cost per design, and the concurrency sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The object API, not pyplot: no global figure state and no display backend to choose.
from matplotlib.figure import Figure

from tweetlens.bench.report import BenchReport

# Orchestration only: Rekognition (about $1,000) would flatten every other bar.
SERVICES = (
    ("stepfunctions", "Step Functions"),
    ("lambda_", "Lambda"),
    ("sqs", "SQS"),
    ("dynamodb", "DynamoDB"),
    ("s3", "S3"),
    ("cloudwatch_logs", "CloudWatch Logs"),
)


def draw_chart(report: BenchReport, path: Path) -> Path:
    """Write a PNG with three panels (four with a sweep) and return its path."""
    panels = 4 if report.sweep else 3
    figure = Figure(figsize=(5 * panels, 4.5), layout="constrained")
    axes = figure.subplots(1, panels)
    names = [design.design for design in report.designs]

    throughput = axes[0]
    throughput.bar(names, [d.images_per_second for d in report.designs], color="#4c72b0")
    _quota_line(throughput, report)
    throughput.set_title("Unique images per second")

    latency = axes[1]
    positions = range(len(names))
    latency.bar(
        [p - 0.2 for p in positions],
        [d.p50_latency_ms / 1000 for d in report.designs],
        width=0.4,
        label="p50",
    )
    latency.bar(
        [p + 0.2 for p in positions],
        [d.p95_latency_ms / 1000 for d in report.designs],
        width=0.4,
        label="p95",
    )
    latency.set_xticks(list(positions), names)
    latency.set_title("Published → stored (s)")
    latency.legend()

    cost = axes[2]
    bottoms = [0.0] * len(names)
    for field, label in SERVICES:
        values = [getattr(d.costs_per_million, field) for d in report.designs]
        cost.bar(names, values, bottom=bottoms, label=label)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    rekognition = max(d.costs_per_million.rekognition for d in report.designs)
    cost.set_title(f"Orchestration $ per million images\n(Rekognition: ${rekognition:,.0f})")
    cost.legend(fontsize="small")

    if report.sweep:
        sweep = axes[3]
        concurrencies = [point.concurrency for point in report.sweep]
        sweep.plot(concurrencies, [point.images_per_second for point in report.sweep], marker="o")
        _quota_line(sweep, report)
        sweep.set_xlabel("ClassifierMaxConcurrency")
        sweep.set_title("EXPRESS: images/s by concurrency")

    figure.suptitle(
        f"tweetlens bench: {report.unique_images} unique images, "
        f"{report.duplicate_posts} duplicate posts"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _quota_line(axes: Any, report: BenchReport) -> None:
    """The DetectLabels quota as a dashed line (none drawn when the run had no quota)."""
    if report.options.quota_tps is not None:
        axes.axhline(report.options.quota_tps, color="#c44e52", linestyle="--", label="quota")
        axes.legend()
