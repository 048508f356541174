"""The bench command: one workload through the baseline, STANDARD and EXPRESS, priced."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn

from tweetlens.bench.chart import draw_chart
from tweetlens.bench.options import (
    DESIGNS,
    BenchOptionError,
    BenchOptions,
    ConcurrencyError,
    QuotaError,
    TemplateParameterError,
)
from tweetlens.bench.prices import PriceError
from tweetlens.bench.report import print_report
from tweetlens.bench.run import BenchError, run_bench
from tweetlens.cli.common import terminal
from tweetlens.localcloud.errors import LocalCloudError


def parse_concurrency(text: str) -> tuple[int, ...]:
    """``5`` or ``2,5,10``; anything else is a ``ConcurrencyError``."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError as exc:
        raise ConcurrencyError(
            f"--concurrency takes integers separated by commas (e.g. 2,5,10), got {text!r}"
        ) from exc


def parse_quota(text: str) -> float | None:
    """A number of requests/s, or ``none``; anything else is a ``QuotaError``."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise QuotaError(f"--quota takes requests/s (e.g. 5) or none, got {text!r}") from exc


def parse_parameters(params: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` pairs; anything else is a ``TemplateParameterError``."""
    parsed: dict[str, str] = {}
    for param in params:
        key, separator, value = param.partition("=")
        if not separator or not key:
            raise TemplateParameterError(f"--param takes KEY=VALUE, got {param!r}")
        parsed[key] = value
    return parsed


@click.command("bench")
@click.option("--images", type=int, default=60, show_default=True, help="Unique images.")
@click.option(
    "--duplicates",
    type=float,
    default=0.25,
    show_default=True,
    help="Duplicate posts per unique image (0.25: one post in five repeats an image).",
)
@click.option(
    "--fetch-latency-ms", type=int, default=150, show_default=True, help="Image host latency."
)
@click.option(
    "--detect-latency-ms", type=int, default=300, show_default=True, help="DetectLabels latency."
)
@click.option(
    "--quota",
    default="5",
    show_default=True,
    help=(
        "DetectLabels quota (requests/s); beyond it: ProvisionedThroughputExceededException. "
        "'none': no quota (measures the local cloud itself)."
    ),
)
@click.option(
    "--concurrency",
    default="5",
    show_default=True,
    help="ClassifierMaxConcurrency (2-1000); several values (2,5,10) sweep EXPRESS.",
)
@click.option(
    "--designs",
    default=",".join(DESIGNS),
    show_default=True,
    help="Which designs to run, in order.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Another parameter of template.yaml for STANDARD and EXPRESS (repeatable).",
)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds each design may take to settle.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Where bench.json and bench.png are written.",
)
def bench(
    *,
    images: int,
    duplicates: float,
    fetch_latency_ms: int,
    detect_latency_ms: int,
    quota: str,
    concurrency: str,
    designs: str,
    params: tuple[str, ...],
    seed: int,
    timeout: float,
    out: Path,
) -> None:
    """Run one workload through three designs on the local cloud, side by side, and price it.

    The designs: the seed's original one scheduled serial consumer (baseline), and this
    template with WorkflowType STANDARD and EXPRESS. Each gets the same posts (unique images
    and duplicate posts of them), the same injected latencies and the same DetectLabels quota,
    in a fresh local cloud. For each: unique images/s, p50/p95 latency from post to stored
    result, DetectLabels calls and throttles, dead letters, lost and labelled twice (both
    must be 0), transitions and Lambda GB-seconds per image, and dollars per million images
    by service from tweetlens/bench/prices.toml. Writes OUT/bench.json and OUT/bench.png.

    Example:

        tweetlens bench --images 60 --quota 5

        tweetlens bench --images 200 --quota 10 --concurrency 2,5,10

        tweetlens bench --designs baseline,standard --detect-latency-ms 0

        tweetlens bench --designs standard --images 1000 --duplicates 0 \\
            --fetch-latency-ms 0 --detect-latency-ms 0 --quota none
    """
    try:
        options = BenchOptions.checked(
            images=images,
            duplicate_share=duplicates,
            fetch_latency_ms=fetch_latency_ms,
            detect_labels_latency_ms=detect_latency_ms,
            quota_tps=parse_quota(quota),
            concurrency=parse_concurrency(concurrency),
            designs=tuple(part.strip() for part in designs.split(",") if part.strip()),
            parameters=parse_parameters(params),
            seed=seed,
            design_timeout=timeout,
        )
    except BenchOptionError as exc:
        raise click.UsageError(f"{type(exc).__name__}: {exc}") from exc
    tasks: dict[str, TaskID] = {}
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=terminal(),
    ) as progress:

        def on_progress(label: str, settled: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=settled)

        try:
            report = run_bench(options, on_progress=on_progress)
        except (BenchError, PriceError, LocalCloudError) as exc:
            raise click.ClickException(str(exc)) from exc
    print_report(report, terminal())
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "bench.json"
    json_path.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    chart_path = draw_chart(report, out / "bench.png")
    terminal().print(f"Wrote {json_path} and {chart_path}")
