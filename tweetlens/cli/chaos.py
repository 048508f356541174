"""The chaos command: the whole pipeline under every fault at once, then its invariants."""

from __future__ import annotations

from pathlib import Path

import click
import yaml
from rich.table import Table

from tweetlens.chaos import ChaosConfig, ChaosError, ChaosReport, run_chaos
from tweetlens.chaos.config import WorkflowType
from tweetlens.cli.common import template_option, terminal
from tweetlens.localcloud import LocalCloudError
from tweetlens.project import parameter_default


def print_report(report: ChaosReport) -> None:
    figures = Table(
        "figure",
        "value",
        title=(f"Chaos run ({report.workflow_type}): {report.posts} posts, seed {report.seed}"),
    )
    for name, value in (
        ("published (accepted by SQS)", report.published),
        ("  by the producer", report.published_by_producer),
        ("  re-published after the producer crash", report.republished_after_crash),
        ("  duplicate deliveries injected", report.duplicate_deliveries),
        ("done", report.done),
        ("duplicates", report.duplicates),
        ("dead letters", sum(report.dead_letters.values())),
        *((f"  {reason}", n) for reason, n in report.dead_letters.items()),
        ("workflow letters superseded (image classified since)", report.superseded_letters),
        ("dead letters sent again (recognised copies, counted once)", report.letter_copies),
        ("lost", report.lost),
        ("counted twice", report.counted_twice),
        ("left in progress", report.in_progress),
        ("labelled twice", report.labelled_twice),
        ("unique photo URLs published", report.unique_urls),
        ("Rekognition calls answered", report.rekognition_calls),
        ("Rekognition calls throttled", report.rekognition_throttled),
        ("  while another caller held the quota", report.rekognition_throttled_by_neighbour),
        *(
            ()
            if report.detect_labels_rate is None
            else (
                ("DetectLabelsRate (start limiter)", report.detect_labels_rate),
                (
                    "  window writes (refused: a start held back)",
                    f"{report.start_limiter_writes} ({report.start_limiter_refused})",
                ),
            )
        ),
        ("DynamoDB requests throttled", report.dynamodb_throttled),
        ("producer runs (crashed)", f"{report.producer_runs} ({report.producer_crashes})"),
        ("workers killed", ", ".join(f"{k} {v}" for k, v in report.workers_killed.items())),
        ("executions adopted after the kill", report.adopted_executions),
        (
            "executions aborted / timed out",
            f"{report.executions_aborted} / {report.executions_timed_out}",
        ),
        ("dead letters refused by SQS (then sent)", report.dead_letters_refused),
        ("poison X API pages served", report.poison_pages),
        (
            "SendMessageBatch entries failed (transient / refused)",
            f"{report.send_entries_failed_transiently} / {report.send_entries_refused}",
        ),
        ("producer dead letters", sum(report.producer_letters.values())),
        *((f"  {error}", n) for error, n in report.producer_letters.items()),
        ("URLs not ending as their fault was designed", len(report.unexpected_outcomes)),
        ("wall time", f"{report.seconds:.1f} s"),
    ):
        figures.add_row(name, str(value))
    terminal().print(figures)
    for url, runs in sorted(report.labelled_twice_executions.items()):
        terminal().print(f"  labelled twice: {url}: {', '.join(runs)}", markup=False)
    for url, state in sorted(report.unexpected_outcomes.items()):
        terminal().print(f"  {url} ended as {state}")
    checks = Table("invariant", "result", "detail", title="Invariants")
    for invariant in report.invariants:
        checks.add_row(
            invariant.name,
            "[green]ok[/green]" if invariant.ok else "[red]BROKEN[/red]",
            invariant.detail,
        )
    terminal().print(checks)


@click.command()
@click.option("--posts", type=click.IntRange(20, 5_000), default=500, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option(
    "--rekognition-rps",
    type=click.FloatRange(min=0.1),
    default=None,
    help="DetectLabels calls per second above which Rekognition throttles "
    "[default: 4, or 5 under 200 posts]. STANDARD deploys DetectLabelsRate at it "
    "(whole starts a second; half of it under 200 posts, so that a short backlog still "
    "meets the limit).",
)
@click.option(
    "--workflow-type",
    type=click.Choice(["STANDARD", "EXPRESS"]),
    default=None,
    help="The template's WorkflowType [default: the template's own, EXPRESS for tweetlens's]. "
    "EXPRESS: the classifier waits on StartSyncExecution; no aborts (they do not apply), "
    "executions timed out while they fetch; the run lasts at least 432 s.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=10),
    default=None,
    help="Seconds to wait for the pipeline to go idle [default: 600; EXPRESS 1032, as a "
    "killed worker's batch comes back only after its 432 s compressed visibility timeout].",
)
@template_option
def chaos(  # noqa: PLR0917 - click passes every option by name or position
    posts: int,
    seed: int,
    rekognition_rps: float | None,
    workflow_type: WorkflowType | None,
    timeout: float | None,
    template: Path,
) -> None:
    """Run the deployed template on the local cloud under every fault; check the invariants.

    Faults: image host 404/410/500, 503 then OK, resets, read timeouts, very slow bodies,
    bodies over 15 MB, text as an image, redirects to a private address; Rekognition
    throttling (STANDARD: DetectLabelsRate deployed at the quota, and another caller taking
    the whole quota 1 s in 10) and InvalidImageFormatException; DynamoDB throttling bursts; a
    classifier worker and the producer killed mid-invocation; duplicate deliveries; a poison
    X API page; SendMessageBatch entries failed once on SQS's side and refused as the
    sender's fault; STANDARD executions aborted and timed out, EXPRESS ones timed out.
    Exits 1 when an invariant is broken.

    Example:

        tweetlens chaos --posts 500 --seed 7

        tweetlens chaos --posts 500 --seed 7 --workflow-type STANDARD
    """
    workflow_type = workflow_type or _template_workflow_type(template)
    overrides: dict[str, float] = {}
    if timeout is not None:
        overrides["timeout_seconds"] = timeout
    if rekognition_rps is not None:
        overrides["rekognition_rps"] = rekognition_rps
    config = ChaosConfig.for_posts(posts, seed, workflow_type, **overrides)
    try:
        with terminal().status("chaos run…") as status:
            report = run_chaos(config, template=template, on_progress=status.update)
    except (ChaosError, LocalCloudError) as exc:
        raise click.ClickException(str(exc)) from exc
    print_report(report)
    if not report.ok:
        raise click.exceptions.Exit(1)


def _template_workflow_type(template: Path) -> WorkflowType:
    """The WorkflowType a plain `sam deploy` of ``template`` gets: what the run exercises."""
    try:
        declared = parameter_default(template, "WorkflowType")
    except (LocalCloudError, yaml.YAMLError) as exc:
        raise click.ClickException(str(exc)) from exc
    if declared == "STANDARD":
        return "STANDARD"
    if declared == "EXPRESS":
        return "EXPRESS"
    raise click.UsageError(
        f"{template} declares no WorkflowType default of STANDARD or EXPRESS: pass --workflow-type"
    )
