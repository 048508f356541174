"""The invariants of a chaos run, read back from SQS, the logs, Step Functions and DynamoDB."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tweetlens import accounting
from tweetlens.chaos.config import STATE_MACHINE
from tweetlens.chaos.report import ChaosReport, Invariant
from tweetlens.chaos.settle import settle
from tweetlens.chaos.stream import expected_message_keys
from tweetlens.dlq import list_dead_letters
from tweetlens.localcloud import LocalCloud
from tweetlens.naming import image_key
from tweetlens.results import RESULTS_TABLE, ImageResult, all_results
from tweetlens.stack import DeployedStack

if TYPE_CHECKING:
    from tweetlens.chaos.run import ChaosRun


def _classifier_logs(cloud: LocalCloud) -> list[str]:
    name = cloud.resources["ClassifierFunction"]
    return [record.logs for record in cloud.invocations() if record.function_name == name]


def _message_key(body: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(body["post_id"]), str(body["media_key"]), str(body["route"]))


def _done_items(
    results: list[ImageResult], labels: Mapping[str, list[str]]
) -> tuple[list[str], list[str]]:
    """URLs of DONE items missing post data, and of DONE items with other labels than due."""
    incomplete: list[str] = []
    wrong_labels: list[str] = []
    for result in results:
        if result.status != "DONE":
            continue
        if not all((result.post_id, result.text, result.hashtags, result.route, result.image_key)):
            incomplete.append(result.url)
        wanted = labels.get(result.url)
        if wanted is None or sorted(name for name, _ in result.labels) != sorted(wanted):
            wrong_labels.append(result.url)
    return incomplete, wrong_labels


def _open_claims(stack: DeployedStack) -> int:
    """Claims still open (IN_PROGRESS, not closed by a result or a dead letter)."""
    found = stack.client("dynamodb").query(
        TableName=stack.resource(RESULTS_TABLE),
        IndexName="OpenClaims",
        KeyConditionExpression="open_claim = :open",
        ExpressionAttributeValues={":open": {"S": "OPEN"}},
        Select="COUNT",
    )
    return int(found["Count"])


def check(run: ChaosRun, started: float) -> ChaosReport:
    """Settle every accepted message exactly once and test the invariants."""
    stack, faults = run.stack, run.faults
    ledger = faults.ledger.messages()
    bodies = {message_id: json.loads(body) for message_id, (_q, body) in ledger.items()}
    executions = accounting.execution_outcomes(
        stack.client("stepfunctions"), stack.resource(STATE_MACHINE)
    )
    settled = settle(
        bodies,
        accounting.classifier_outcomes(_classifier_logs(run.cloud)),
        executions,
        list_dead_letters(stack, limit=100_000),
    )
    fate = settled.fate
    figures: Counter[str] = Counter(fate.values())
    dead = {
        key.removeprefix("dead:"): n
        for key, n in sorted(figures.items())
        if key.startswith("dead:")
    }
    lost = figures["lost"] + figures["running"]
    # Answered DetectLabels calls per image; throttled calls are refused, not answered.
    # Labelled = answered with labels: a refused image (InvalidImageFormatException) is
    # tried again by the next message for its URL, as every failed attempt is.
    labelled_twice = sum(1 for n in faults.rekognition.labelled.values() if n > 1)
    # For a broken invariant to be read: each such URL's executions and how they ended.
    bucket = stack.resource("ImagesBucket")
    twice = {source for source, n in faults.rekognition.accepted.items() if n > 1}
    labelled_twice_executions = {
        execution.url: [
            f"{e.name.rsplit('-', 1)[-1]}:{e.status}:{e.error}"
            for e in executions
            if e.url == execution.url
        ]
        for execution in executions
        if f"s3://{bucket}/{image_key(execution.url)}" in twice
    }

    results = all_results(stack.client("dynamodb"), stack.resource(RESULTS_TABLE))
    in_progress = [result.url for result in results if result.status == "IN_PROGRESS"]
    leased = _open_claims(stack)
    incomplete, wrong_labels = _done_items(results, run.stream.labels)
    final = {r.url: ("DONE" if r.status == "DONE" else r.error or r.status) for r in results}
    # Only published URLs: a photo under no route's hashtag is never fetched.
    published_urls = {str(body["url"]) for body in bodies.values()}
    # A held URL shown again by a later post (a retweet) gets its next attempt: DONE is its
    # other designed end.
    held = set(run.stream.aborted_urls) | set(run.stream.timed_out_urls)
    unexpected_outcomes = {
        url: final.get(url, "never claimed")
        for url, wanted in run.stream.expected.items()
        if url in published_urls
        and final.get(url) != wanted
        and not (url in held and final.get(url) == "DONE")
    }

    injected = set(faults.duplicate_ids)
    producer_ids = [message_id for message_id in ledger if message_id not in injected]
    published = Counter(_message_key(bodies[message_id]) for message_id in producer_ids)
    expected_keys = expected_message_keys(run.stream.recording)
    skipped = [key for key in expected_keys if key not in published]
    unexpected = [key for key in published if key not in expected_keys]
    republished = sum(n - 1 for n in published.values() if n > 1)
    # Copies of one (post, photo, route) - re-read by the producer or delivered twice: at
    # most one of them may be worked on; the others end as duplicates.
    copies: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for message_id, body in bodies.items():
        copies[_message_key(body)].append(message_id)
    # After a failed attempt a copy starts the next one (only DONE or a running execution
    # makes a copy a duplicate); what must never happen is a second classification.
    second_executions = sum(
        max(0, sum(fate.get(message_id) == "done" for message_id in ids) - 1)
        for ids in copies.values()
    )
    # A URL may have several executions (after one failed, a later message starts the next
    # attempt), but only one may classify it.
    done_per_url = Counter(execution.url for execution in executions if execution.status == "DONE")
    producer_kills = len(faults.producer_killer.killed)
    classifier_kills = len(faults.classifier_killer.killed)
    dynamodb_throttled = sum(faults.dynamodb.throttled.values())

    invariants = [
        Invariant(
            name="every published message ends exactly once (DONE, duplicate or dead letter)",
            ok=lost == 0 and not settled.orphan_executions and run.idle,
            detail=(
                f"{lost} lost or unsettled, {len(settled.orphan_executions)} execution(s) "
                "without a message" + ("" if run.idle else "; the pipeline never went idle")
            ),
        ),
        Invariant(
            name="Rekognition answered at most once per unique URL",
            ok=labelled_twice == 0,
            detail=f"{labelled_twice} image(s) labelled twice",
        ),
        Invariant(
            name="every DONE item has its labels and post data",
            ok=not incomplete and not wrong_labels,
            detail=f"{len(incomplete)} without post data, {len(wrong_labels)} with wrong labels",
        ),
        Invariant(
            name="no item left in progress or leased",
            ok=not in_progress and leased == 0,
            detail=f"{len(in_progress)} item(s) IN_PROGRESS, {leased} open claim(s)",
        ),
        Invariant(
            name="the producer's checkpoint never skipped a post",
            ok=not skipped and not unexpected,
            detail=f"{len(skipped)} message(s) never published, {len(unexpected)} unexpected",
        ),
        Invariant(
            name="re-read posts and re-delivered messages are never classified twice",
            ok=second_executions == 0 and max(done_per_url.values(), default=0) <= 1,
            detail=(
                f"{republished} re-published after the crash, {len(injected)} delivered twice; "
                f"{second_executions} second execution(s), "
                f"{sum(n - 1 for n in done_per_url.values())} URL(s) classified twice"
            ),
        ),
        Invariant(
            name="every fault was injected",
            ok=producer_kills == 1
            and faults.producer_crashes == 1
            and classifier_kills == 1
            and settled.adopted <= classifier_kills
            and dynamodb_throttled > 0
            and faults.rekognition.throttled > 0
            and faults.rekognition.invalid > 0
            and len(injected) == run.config.duplicate_deliveries
            and len(faults.stopper.aborted) == run.config.execution_aborts
            and len(faults.stopper.timed_out) == run.config.execution_timeouts
            and faults.refusals.refused == run.config.dead_letter_refusals,
            detail=(
                f"producer killed {producer_kills}x, classifier killed {classifier_kills}x, "
                f"{dynamodb_throttled} DynamoDB and {faults.rekognition.throttled} Rekognition "
                f"throttles, {faults.rekognition.invalid} invalid images, {len(injected)} "
                f"duplicate deliveries, {len(faults.stopper.aborted)} aborted and "
                f"{len(faults.stopper.timed_out)} timed-out executions, "
                f"{faults.refusals.refused} dead letter(s) refused"
            ),
        ),
    ]
    return ChaosReport(
        seed=run.config.seed,
        posts=run.config.posts,
        seconds=round(time.monotonic() - started, 1),
        published=len(ledger),
        published_by_producer=len(producer_ids),
        duplicate_deliveries=len(injected),
        republished_after_crash=republished,
        done=figures["done"],
        duplicates=figures["duplicate"],
        dead_letters=dead,
        lost=lost,
        in_progress=len(in_progress),
        labelled_twice=labelled_twice,
        labelled_twice_executions=labelled_twice_executions,
        unique_urls=len(published_urls),
        rekognition_calls=sum(faults.rekognition.accepted.values()),
        rekognition_throttled=faults.rekognition.throttled,
        dynamodb_throttled=dynamodb_throttled,
        producer_runs=faults.producer_runs,
        producer_crashes=faults.producer_crashes,
        workers_killed={"producer": producer_kills, "classifier": classifier_kills},
        adopted_executions=settled.adopted,
        executions_aborted=len(faults.stopper.aborted),
        executions_timed_out=len(faults.stopper.timed_out),
        dead_letters_refused=faults.refusals.refused,
        unexpected_outcomes=unexpected_outcomes,
        invariants=invariants,
    )
