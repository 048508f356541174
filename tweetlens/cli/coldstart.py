"""`tweetlens coldstart`: each function's Init Duration against boto3 and one client."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from tweetlens.cli.common import (
    parameter_option,
    parse_parameters,
    template_option,
    terminal,
)
from tweetlens.coldstart import DEFAULT_RUNS, ColdStartRecord, measure
from tweetlens.localcloud.cloud import LocalCloud
from tweetlens.localcloud.errors import LocalCloudError
from tweetlens.localcloud.labelers import OpenCvLabeler
from tweetlens.pipeline import LocalPipeline
from tweetlens.project import is_tweetlens_template


@click.command("coldstart")
@template_option
@parameter_option
@click.option(
    "--function",
    "functions",
    multiple=True,
    metavar="LOGICAL_ID",
    help="Measure only this function (repeatable; default: every function).",
)
@click.option(
    "--runs",
    type=click.IntRange(1, 50),
    default=DEFAULT_RUNS,
    show_default=True,
    help="Cold starts of each function and of the floor; the medians are compared.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON lines.")
def coldstart(
    template: Path,
    parameters: tuple[str, ...],
    functions: tuple[str, ...],
    runs: int,
    as_json: bool,
) -> None:
    """Measure each function's cold start against a bare `import boto3` plus one client.

    Deploys the template into a fresh local cloud, builds each function built with a makefile
    as `sam build` would, for this machine (its package as shipped, bytecode included), and
    starts fresh execution environments of it, read-only and in a runtime with only boto3
    besides the standard library, as Lambda's, and of the floor in the same runtime,
    alternately. Other functions run from their CodeUri in this environment (package
    "source"). Prints the median Init Durations, the CPU time of each init, and their ratios
    beside the function's limit (judged on CPU time, which other processes on the machine do
    not inflate). Exits 1 when one is over.

    Example:

        tweetlens coldstart --runs 7 --function ProducerFunction
    """
    overrides = parse_parameters(parameters)
    selected = list(functions) or None
    try:
        if is_tweetlens_template(template):
            with LocalPipeline(
                template=template, run_pollers=False, parameter_overrides=overrides
            ) as pipeline:
                records = measure(pipeline.cloud, functions=selected, runs=runs)
        else:
            with LocalCloud(
                template,
                parameter_overrides=overrides,
                labeler=OpenCvLabeler(),
                run_schedules=False,
                run_pollers=False,
            ) as cloud:
                records = measure(cloud, functions=selected, runs=runs)
    except LocalCloudError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        for record in records:
            click.echo(json.dumps(record.model_dump(mode="json")))
    else:
        _print(records)
    if not all(record.within_limit for record in records):
        raise SystemExit(1)


def _print(records: list[ColdStartRecord]) -> None:
    view = Table(
        "function",
        "package",
        "init ms",
        "boto3 + client ms",
        "init CPU ms",
        "boto3 + client CPU ms",
        "CPU ratio",
        "wall ratio",
        "limit",
        "",
        title=f"Cold starts (median of {records[0].runs if records else 0})",
    )
    for record in records:
        view.add_row(
            record.function,
            record.package,
            f"{record.init_ms:.1f}",
            f"{record.baseline_ms:.1f}",
            f"{record.init_cpu_ms:.1f}",
            f"{record.baseline_cpu_ms:.1f}",
            f"{record.ratio:.2f}",
            f"{record.wall_ratio:.2f}",
            f"{record.limit:.1f}",
            "ok" if record.within_limit else "over",
        )
    terminal().print(view)
