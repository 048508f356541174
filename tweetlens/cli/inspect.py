"""Commands that look at a deployed stack: results, trace, dead letters."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click
from rich.table import Column, Table

from tweetlens import dlq as dead_letters
from tweetlens import results as stored
from tweetlens.cli.common import open_stack, readable_errors, stack_options, terminal
from tweetlens.trace import trace_execution


def _url_column() -> Column:
    # A URL is what one copies into `tweetlens trace` or a browser: wrap it, never cut it.
    return Column("url", overflow="fold")


@click.command()
@click.option(
    "--label", default=None, help="Only images with this label (case-sensitive, e.g. Cat)."
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 100),
    default=0.0,
    show_default=True,
    help="With --label: the lowest confidence to list.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@stack_options
def results(
    label: str | None,
    min_confidence: float,
    as_json: bool,
    stack_name: str | None,
    region: str | None,
) -> None:
    """Query stored results, by label through the ByLabel index.

    Example:

        tweetlens results --label Cat --min-confidence 80
    """
    stack = open_stack(stack_name, region)
    with readable_errors():
        table = stack.resource(stored.RESULTS_TABLE)
        dynamodb = stack.client("dynamodb")
        if label is not None:
            hits = stored.images_with_label(dynamodb, table, label, min_confidence)
            if as_json:
                for hit in hits:
                    click.echo(json.dumps(hit.__dict__, sort_keys=True))
                return
            view = Table(
                "confidence", "route", "post", _url_column(), title=f"Images labelled {label}"
            )
            for hit in hits:
                view.add_row(f"{hit.confidence:.1f}", hit.route, hit.post_id, hit.url)
            terminal().print(view)
            terminal().print(f"{len(hits)} image(s)")
            return
        items = stored.all_results(dynamodb, table)
    if as_json:
        for item in items:
            click.echo(json.dumps(item.__dict__, sort_keys=True))
        return
    view = Table("status", "route", "labels", _url_column(), title="Results")
    for item in items:
        labels = ", ".join(f"{name} {confidence:.0f}" for name, confidence in item.labels[:4])
        view.add_row(item.status, item.route, labels or item.error, item.url)
    terminal().print(view)
    terminal().print(f"{len(items)} image(s)")


@click.command()
@click.argument("execution")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the drawn trace (default: out/trace-<execution>.html).",
)
@stack_options
def trace(
    execution: str, html_path: Path | None, stack_name: str | None, region: str | None
) -> None:
    """Trace one execution: the state machine drawn with the path taken, and a timeline.

    EXECUTION is an execution name or ARN (the `execution` of `tweetlens results --json`, or
    the demo report). A STANDARD execution is read from Step Functions; an EXPRESS one, which
    Step Functions keeps no history of, from the workflow's log group (ExpressLogLevel=ALL,
    the local cloud's level). An Express name is `<URL digest>-<SQS message id>`: only a message
    run again after a transient failure repeats it; a name several executions share is an
    error listing their ARNs, pass one of them. A Standard name is `<URL digest>-<n>`.

    Example:

        tweetlens trace arn:aws:states:us-east-1:1234:express:ClassifyImage:5f0c...e1:0b1c...

        tweetlens trace 5f0c...e1-1
    """
    stack = open_stack(stack_name, region)
    with readable_errors():
        drawn = trace_execution(stack, execution)
    target = html_path or Path("out") / f"trace-{drawn.execution_name}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(drawn.html, encoding="utf-8")
    click.echo(drawn.timeline)
    click.echo(f"\nDrawn trace: {target}")


@click.group()
def dlq() -> None:
    """Dead-letter queues: list what is there and why, send it back.

    Example:

        tweetlens dlq list
    """


# How many characters of a letter's SQS id (a UUID) `dlq list` shows: enough to tell the letters
# of a queue apart, short enough for the table to fit 80 columns.
SHORT_ID = 8


def short_id(message_id: str) -> str:
    """The start of an SQS message id, as `tweetlens dlq list` shows it."""
    return message_id[:SHORT_ID]


@dlq.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="The most dead letters to list per queue.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@stack_options
def dlq_list(limit: int, as_json: bool, stack_name: str | None, region: str | None) -> None:
    """List dead letters with their error and reason (they stay on their queues).

    A workflow dead letter whose image has been classified since (a later post of the photo,
    or a redrive) is superseded: sent back, it would only be a duplicate. The table says
    `yes` in its `superseded` column; the JSON's `superseded_by` names the execution that
    classified the image ("" when not superseded).

    Letters are sent at least once: a second letter for the same execution (workflow letters)
    or the same route message (route letters) is a copy. The table's `copy of` column names the
    first letter it copies by the start of its id, as the `id` column shows it (the JSON's
    `message_id` and `copy_of` hold them whole; "" when it is none); a redrive deletes copies
    and sends each first letter back once.

    Example:

        tweetlens dlq list --limit 20

        tweetlens dlq list --json
    """
    stack = open_stack(stack_name, region)
    with readable_errors():
        letters = dead_letters.mark_copies(
            dead_letters.mark_superseded(stack, dead_letters.list_dead_letters(stack, limit=limit))
        )
    if as_json:
        for letter in letters:
            # A receipt handle is this listing's own; ``hold_lapsed`` is a redrive pass's.
            record = {
                k: v
                for k, v in letter.__dict__.items()
                if k not in ("receipt_handle", "hold_lapsed")
            }
            click.echo(json.dumps(record, sort_keys=True))
        return
    # Each letter by the start of its SQS id, and a copy's first letter the same way: a whole
    # id (36 characters) would be cut at 80 columns, and the JSON has them whole.
    view = Table(
        Column("id", no_wrap=True, min_width=SHORT_ID),
        "queue",
        "route",
        "error",
        "reason",
        "receives",
        "superseded",
        Column("copy of", no_wrap=True, min_width=SHORT_ID),
        title="Dead letters",
    )
    for letter in letters:
        view.add_row(
            short_id(letter.message_id),
            letter.queue,
            letter.route,
            letter.error,
            letter.reason[:120],
            str(letter.receive_count),
            "yes" if letter.superseded_by else "",
            short_id(letter.copy_of),
        )
    terminal().print(view)
    superseded = sum(1 for letter in letters if letter.superseded_by)
    copies = sum(1 for letter in letters if letter.copy_of)
    terminal().print(
        f"{len(letters)} dead letter(s)"
        + (
            f", {superseded} superseded (image classified since; "
            "a redrive keeps them unless --force)"
            if superseded
            else ""
        )
        + (
            f", {copies} cop{'y' if copies == 1 else 'ies'} of another letter (a redrive "
            "deletes them)"
            if copies
            else ""
        )
    )


@dlq.command("redrive")
@click.option("--queue", default=None, help="Only this DLQ (logical id, e.g. CatsDeadLetterQueue).")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=1_000,
    show_default=True,
    help="The most dead letters to send back per queue.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Also send back what the classifier rejected (NotJson, InvalidMessage), e.g. once the "
    "message contract accepts it, and superseded workflow letters (image classified since).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@stack_options
def dlq_redrive(
    *,
    queue: str | None,
    limit: int,
    force: bool,
    yes: bool,
    stack_name: str | None,
    region: str | None,
) -> None:
    """Send dead letters back to be processed again.

    Route dead letters return to their source queue, and workflow dead letters to their route
    queue, as a new attempt (the message's attempt + 1), so they are never taken for a copy of
    the failure they came from; a forced rejection goes back byte for byte. What cannot work again
    stays where it is, counted per queue and error with the reason: a route dead letter the
    classifier rejected (NotJson, InvalidMessage) unless --force, a superseded workflow dead
    letter (its image was classified since, by a later post or a redrive: sent back it would
    only be a duplicate) unless --force, a workflow dead letter without a message, and every
    producer letter. Letters are sent at least once: each execution's or route message's letter
    goes back (or stays) once, and its copies are deleted, forced or not, and counted per queue.

    Example:

        tweetlens dlq redrive --queue WorkflowDeadLetterQueue --yes

        tweetlens dlq redrive --queue WorkflowDeadLetterQueue --force --yes

        tweetlens dlq redrive --queue CatsDeadLetterQueue --force --yes
    """
    stack = open_stack(stack_name, region)
    known = dead_letters.dead_letter_queues(stack)
    # Checked before asking: a typo must not cost a confirmation, and says what exists.
    if queue is not None and queue not in known:
        raise click.BadParameter(
            f"unknown dead-letter queue {queue!r}; known: {', '.join(known)}", param_hint="--queue"
        )
    if not yes:
        click.confirm(f"Send dead letters back for processing in {stack.description}?", abort=True)
    kept: Counter[tuple[str, str, str]] = Counter()
    copies: Counter[str] = Counter()

    def count_kept(letter: dead_letters.DeadLetter) -> None:
        reason = dead_letters.skip_reason(letter, force=force) or ""
        kept.update([(letter.queue, letter.error, reason)])

    def count_copy(letter: dead_letters.DeadLetter) -> None:
        copies.update([letter.queue])

    with readable_errors():
        try:
            moved = dead_letters.redrive(
                stack,
                queue=queue,
                limit=limit,
                force=force,
                on_skipped=count_kept,
                on_copy=count_copy,
            )
        except dead_letters.RedriveError as error:
            raise click.ClickException(str(error)) from error
    for line in dead_letters.redrive_lines(moved, kept, copies):
        click.echo(line)
