"""Commands that run things on the local cloud: up, demo (invoke has its own module)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tweetlens import demo as demo_job
from tweetlens import report
from tweetlens.cli.common import (
    parameter_option,
    parse_parameters,
    template_option,
    terminal,
    workflow_type_option,
)
from tweetlens.cli.console import console_beside_cloud
from tweetlens.console.server import DEFAULT_PORT
from tweetlens.localcloud import LocalCloud, LocalCloudError, OpenCvLabeler
from tweetlens.pipeline import LocalPipeline
from tweetlens.project import is_tweetlens_template
from tweetlens.stack import emulator_stack, state_file_path, write_local_state


def _is_this_app(template: Path) -> bool:
    return is_tweetlens_template(template)


def _print_resources(endpoint: str, resources: dict[str, str], state_file: Path) -> None:
    """The endpoint and each resource's physical id, one per line and never cut.

    Queue URLs and ARNs are copied from here into other commands: a table drawn to the
    terminal's width (80 columns when stdout is no terminal) cut or folded them. Plain lines
    keep each value whole whatever the width, and the state file holds them all for scripts.
    """
    lines = [f"Local cloud at {endpoint}"]
    width = max((len(logical_id) for logical_id in resources), default=0)
    lines += [
        f"  {logical_id:<{width}}  {physical}".rstrip()
        for logical_id, physical in sorted(resources.items())
    ]
    lines.append(f"Endpoint and resources, as JSON: {state_file}")
    click.echo("\n".join(lines))


@click.command()
@template_option
@parameter_option
@workflow_type_option
@click.option(
    "--time-scale",
    type=click.FloatRange(0.001, 1.0),
    default=1.0,
    show_default=True,
    help="Shrink Step Functions retries and waits (1.0 = real time).",
)
@click.option(
    "--console", "with_console", is_flag=True, help="Also serve the web console (loopback only)."
)
@click.option(
    "--console-port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port of the web console (0: any free port).",
)
def up(
    *,
    template: Path,
    parameters: tuple[str, ...],
    workflow_type: str | None,
    time_scale: float,
    with_console: bool,
    console_port: int,
) -> None:
    """Start the local cloud, deploy the template, run schedules and pollers until Ctrl-C.

    With this repo's template the producer replays a recorded post stream and the fetch
    function is allowed to reach the loopback image server. Other terminals can then use
    `tweetlens results`, `trace`, `dlq` and `console`, or any AWS client with
    AWS_ENDPOINT_URL. With --console, the web console is served too.

    Example:

        tweetlens up --param ClassifierMaxConcurrency=2 --workflow-type EXPRESS
    """
    overrides = parse_parameters(parameters)
    if workflow_type is not None:
        overrides = demo_job.workflow_parameters(workflow_type) | overrides
    stopped = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    state = state_file_path()
    try:
        if _is_this_app(template):
            with LocalPipeline(
                template=template,
                time_scale=time_scale,
                run_schedules=True,
                parameter_overrides=overrides,
                state_file=state,
            ) as pipeline:
                _print_resources(pipeline.cloud.endpoint_url, dict(pipeline.cloud.resources), state)
                stack = demo_job.deployed(pipeline)
                with console_beside_cloud(with_console, stack, pipeline.cloud, console_port):
                    terminal().print(
                        f"Images served at {pipeline.images.base_url}. Ctrl-C to stop."
                    )
                    stopped.wait()
            return
        with LocalCloud(
            template, parameter_overrides=overrides, labeler=OpenCvLabeler(), time_scale=time_scale
        ) as cloud:
            write_local_state(
                state,
                endpoint_url=cloud.endpoint_url,
                region=cloud.region,
                resources=dict(cloud.resources),
                template=template,
                parameter_overrides=overrides,
                functions=list(cloud.functions),
            )
            try:
                _print_resources(cloud.endpoint_url, dict(cloud.resources), state)
                stack = emulator_stack(
                    endpoint_url=cloud.endpoint_url,
                    region=cloud.region,
                    resources=dict(cloud.resources),
                )
                with console_beside_cloud(with_console, stack, cloud, console_port):
                    terminal().print("Ctrl-C to stop.")
                    stopped.wait()
            finally:
                state.unlink(missing_ok=True)
    except LocalCloudError as error:
        raise click.ClickException(str(error)) from error


@click.command()
@click.option("--seed", type=int, default=2026, show_default=True, help="Seed of the post stream.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("out/report.html"),
    show_default=True,
    help="Where to write the HTML report.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(0.001, 1.0),
    default=0.02,
    show_default=True,
    help="Shrink Step Functions retries and waits.",
)
@template_option
@workflow_type_option
def demo(
    seed: int, report_path: Path, time_scale: float, template: Path, workflow_type: str | None
) -> None:
    """Run the whole pipeline on the local cloud with a recorded stream of about 50 posts.

    Waits until every message is classified, a duplicate, or in a dead-letter queue, then
    prints a summary per route and the labels found, and writes an HTML report with
    thumbnails and a drawn trace of every execution. Exits non-zero if a message is lost.

    Example:

        tweetlens demo --report out/report.html --workflow-type EXPRESS
    """
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    here = Path.cwd()
    shown = template.relative_to(here) if template.is_relative_to(here) else template
    terminal().print(f"Starting the local cloud and deploying {shown} ...")
    with Progress(*columns, console=terminal(), transient=False) as bar:
        task = bar.add_task("messages settled", total=None, status="")

        def on_progress(progress: demo_job.Progress) -> None:
            bar.update(
                task, total=progress.published, completed=progress.settled, status=progress.status
            )

        try:
            result = demo_job.run_demo(
                seed=seed,
                time_scale=time_scale,
                template=template,
                on_progress=on_progress,
                workflow_type=workflow_type,
            )
        except (demo_job.DemoError, LocalCloudError) as error:
            raise click.ClickException(str(error)) from error
    _print_summary(result)
    written = report.write(result, report_path)
    terminal().print(f"HTML report with thumbnails and execution traces: {written}")
    problems = result.accounting.problems()
    if problems:
        raise click.ClickException("; ".join(problems))


def _print_summary(result: demo_job.DemoResult) -> None:
    view = Table(
        "route",
        "published",
        "classified",
        "duplicates",
        "dead letters by reason",
        "lost",
        title="Where every message ended",
    )
    for route, tally in sorted(result.accounting.routes.items()):
        reasons = ", ".join(f"{error} {n}" for error, n in sorted(tally.dead_letters.items()))
        view.add_row(
            route,
            str(tally.published),
            str(tally.classified),
            str(tally.duplicates),
            reasons or "-",
            str(tally.lost),
        )
    terminal().print(view)
    # Named, so a broken run can be followed message by message (tweetlens trace, the logs).
    for message in result.accounting.unsettled:
        terminal().print(message.describe(), markup=False)
    # Letters are sent at least once: a message whose letter came twice ended once, and is
    # named apart so the copy is seen, not counted.
    for copied in result.accounting.copies:
        terminal().print(copied.describe(), markup=False)
    labels = ", ".join(f"{name} x{count}" for name, count in result.labels.most_common())
    terminal().print(f"Labels found: {labels or 'none'}")
    twice = sum(1 for calls in result.rekognition_calls.values() if calls > 1)
    terminal().print(
        f"DetectLabels calls: {sum(result.rekognition_calls.values())} for "
        f"{len(result.rekognition_calls)} images (labelled twice: {twice}); "
        f"finished in {result.seconds:.1f} s"
    )
