"""The invariants of a chaos run, read back from SQS, the logs, Step Functions and DynamoDB."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tweetlens import accounting
from tweetlens.chaos.config import STATE_MACHINE, ChaosConfig
from tweetlens.chaos.report import ChaosReport, Invariant
from tweetlens.chaos.stream import expected_message_keys
from tweetlens.dlq import (
    PRODUCER_DLQ,
    DeadLetter,
    list_dead_letters,
    mark_copies,
    redriven_messages,
    superseded_by,
)
from tweetlens.localcloud import LocalCloud
from tweetlens.results import RESULTS_TABLE, ImageResult, all_results
from tweetlens.settlement import Settlement, settle_messages
from tweetlens.stack import DeployedStack
from tweetlens_naming import image_key

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


@dataclass(frozen=True)
class _Evidence:
    """What the run left behind, read once."""

    bodies: dict[str, dict[str, Any]]
    executions: list[accounting.ExecutionOutcome]
    letters: list[DeadLetter]
    results: list[ImageResult]
    settled: Settlement


def _gather(run: ChaosRun) -> _Evidence:
    stack = run.stack
    ledger = run.faults.ledger.messages()
    bodies = {message_id: json.loads(body) for message_id, (_q, body) in ledger.items()}
    # Copies marked once: the settlement, the superseded count and the report read them alike.
    letters = mark_copies(list_dead_letters(stack, limit=100_000))
    records = list(accounting.classifier_records(_classifier_logs(run.cloud)))
    express = run.config.workflow_type == "EXPRESS"
    # Express executions are never listed: the classifier's records say how each ended.
    executions = (
        []
        if express
        else accounting.execution_outcomes(
            stack.client("stepfunctions"), stack.resource(STATE_MACHINE)
        )
    )
    # A message a redrive sent is the one whose letter it was: settled along with it.
    redriven = redriven_messages(run.faults.ledger.attributes())
    settled = settle_messages(
        bodies, records, executions, letters, express=express, redriven=redriven
    )
    results = all_results(stack.client("dynamodb"), stack.resource(RESULTS_TABLE))
    return _Evidence(bodies, executions, letters, results, settled)


def _labelled_twice_executions(run: ChaosRun, evidence: _Evidence) -> dict[str, list[str]]:
    """For a broken invariant to be read: each URL labelled twice, its executions' ends."""
    bucket = run.stack.resource("ImagesBucket")
    twice = {source for source, n in run.faults.rekognition.accepted.items() if n > 1}
    executions = evidence.executions
    if run.config.workflow_type == "EXPRESS":
        # Express executions are not listed: each message for the URL, with how it ended.
        by_url: dict[str, list[str]] = defaultdict(list)
        for message_id, body in evidence.bodies.items():
            url = str(body["url"])
            if f"s3://{bucket}/{image_key(url, 'jpg')}" in twice:
                by_url[url].append(f"{message_id[:8]}:{evidence.settled.fate.get(message_id)}")
        return dict(by_url)
    return {
        execution.url: [
            f"{e.name.rsplit('-', 1)[-1]}:{e.status}:{e.error}"
            for e in executions
            if e.url == execution.url
        ]
        for execution in executions
        if f"s3://{bucket}/{image_key(execution.url, 'jpg')}" in twice
    }


def _unexpected_outcomes(run: ChaosRun, evidence: _Evidence) -> dict[str, str]:
    """URL → its final state, where it differs from the state its fault was designed to give."""
    results = evidence.results
    final = {r.url: ("DONE" if r.status == "DONE" else r.error or r.status) for r in results}
    # Only published URLs: a photo under no route's hashtag is never fetched.
    published_urls = {str(body["url"]) for body in evidence.bodies.values()}
    # A held URL's attempt ends for good: a later post of it is a duplicate of that failure.
    # Under EXPRESS the very message runs again only when the classifier waiting for the held
    # execution was killed (kill_classifier_after_starts): the sweep then closes the claim
    # LeaseExpired, where the execution stopped is unknown, and the redelivery runs the image,
    # which the host answers at once: DONE is its other designed end. (A letter SQS refused is
    # sent from the closed claim on redelivery, running nothing.)
    held = set(run.stream.aborted_urls) | set(run.stream.timed_out_urls)
    return {
        url: final.get(url, "never claimed")
        for url, wanted in run.stream.expected.items()
        if url in published_urls
        and final.get(url) != wanted
        and not (url in held and final.get(url) == "DONE")
    }


def superseded_letters(letters: list[DeadLetter], results: list[ImageResult]) -> int:
    """Workflow dead letters whose image ended DONE all the same (``tweetlens.dlq``'s rule);
    a copy (``copy_of``) is counted apart, with the copies, not again here."""
    by_url = {result.url: result for result in results}
    return sum(1 for letter in letters if not letter.copy_of and superseded_by(letter, by_url))


def no_message_counted_twice(settled: Settlement) -> Invariant:
    """No message has two ends (``Settlement.double_counted``): a route letter besides a record
    that settled it another way, or (EXPRESS) Classified and ExecutionDeadLettered both.

    A letter sent again for the same execution or route message is a recognised copy, one end
    (``Settlement.copies``), and breaks nothing: dead letters are sent at least once. Without
    this check a double count would pass unseen, as the other invariants count ends per
    message, not ends per letter.
    """
    twice = sorted(settled.double_counted)
    copied = sum(len(ids) for ids in settled.copies.values())
    return Invariant(
        name="no message counted twice (a letter sent again is a copy, counted once)",
        ok=not twice,
        detail=(
            f"{len(twice)} message(s) counted twice"
            # Named with their ends, so a broken run can be traced message by message.
            + "".join(
                f" {message_id} ({' + '.join(settled.double_counted[message_id])})"
                for message_id in twice[:3]
            )
            + f"; {copied} letter copy(ies) of {len(settled.copies)} message(s) recognised"
        ),
    )


@dataclass(frozen=True)
class ProducerLetters:
    """The producer's dead letters, as the chaos stream's poison and refusals need them."""

    by_error: dict[str, int]
    # newest_id of each page lettered with its body and a reason.
    pages: set[str]
    # (post id, media key, route) of each refused message lettered with it and SQS's code.
    refused: set[tuple[str, str, str]]


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def producer_letters(letters: list[DeadLetter]) -> ProducerLetters:
    by_error: Counter[str] = Counter()
    pages: set[str] = set()
    refused: set[tuple[str, str, str]] = set()
    for letter in letters:
        if letter.queue != PRODUCER_DLQ:
            continue
        by_error[letter.error] += 1
        payload = _json_object(letter.body)
        if not letter.reason:
            continue
        if payload.get("kind") == "page":
            # The page as X sent it: its meta names it (a cut raw body names nothing).
            meta = _json_object(str(payload.get("raw") or "")).get("meta")
            if isinstance(meta, dict) and meta.get("newest_id"):
                pages.add(str(meta["newest_id"]))
        elif payload.get("kind") == "photo" and payload.get("sqs_error_code"):
            message = payload.get("raw")
            if isinstance(message, dict) and message.get("media_key") == payload.get("media_key"):
                refused.add(_message_key(payload))
    return ProducerLetters(dict(sorted(by_error.items())), pages, refused)


@dataclass(frozen=True)
class _Publication:
    """What the producer published, against what the stream says it must."""

    producer_ids: list[str]
    skipped: list[tuple[str, str, str]]
    unexpected: list[tuple[str, str, str]]
    refused: list[tuple[str, str, str]]
    republished: int


def _publication(run: ChaosRun, evidence: _Evidence) -> _Publication:
    injected = set(run.faults.duplicate_ids)
    bodies = evidence.bodies
    producer_ids = [message_id for message_id in bodies if message_id not in injected]
    published = Counter(_message_key(bodies[message_id]) for message_id in producer_ids)
    expected_keys = expected_message_keys(run.stream.recording)
    refused_media = set(run.stream.refused_media_keys)
    refused = [key for key in expected_keys if key[1] in refused_media]
    return _Publication(
        producer_ids=producer_ids,
        skipped=[
            key for key in expected_keys if key not in published and key[1] not in refused_media
        ],
        unexpected=[
            key for key in published if key not in expected_keys or key[1] in refused_media
        ],
        refused=refused,
        republished=sum(n - 1 for n in published.values() if n > 1),
    )


def _second_classifications(evidence: _Evidence) -> tuple[int, int]:
    """Copies of one message that each ended DONE, and URLs with more than one DONE execution.

    Copies of one (post, photo, route) - re-read by the producer or delivered twice: at most
    one of them may be worked on; the others end as duplicates. After a transient failure a
    copy starts the next attempt (after a failure for good it is a duplicate of it, unless it
    is the message whose letter SQS refused, which sends it and runs nothing more; so too after
    the image host failed, where only a different message runs the URL again); what must never
    happen is a second classification.
    """
    copies: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for message_id, body in evidence.bodies.items():
        copies[_message_key(body)].append(message_id)
    fate = evidence.settled.fate
    second_executions = sum(
        max(0, sum(fate.get(message_id) == "done" for message_id in ids) - 1)
        for ids in copies.values()
    )
    done_per_url = Counter(e.url for e in evidence.executions if e.status == "DONE")
    if not evidence.executions:
        # EXPRESS: no listed executions; each Classified record is one execution that ended DONE.
        done_per_url = Counter(
            str(evidence.bodies[message_id]["url"])
            for message_id, end in fate.items()
            if end == "done"
        )
    return second_executions, sum(n - 1 for n in done_per_url.values())


@dataclass(frozen=True)
class InjectedFaults:
    """How often each fault was injected in a run, read from its injectors and its stream."""

    producer_kills: int
    producer_crashes: int
    classifier_kills: int
    # Executions started by a killed classifier worker and taken over by its batch's redelivery.
    adopted: int
    dynamodb_throttles: int
    rekognition_throttles: int
    throttled_by_neighbour: int
    limiter_writes: int
    limiter_refused: int
    invalid_images: int
    duplicate_deliveries: int
    aborted: int
    timed_out: int
    letters_refused: int
    transient_send_failures: int
    send_refusals: int
    # What the stream was built with: its refused photos and its poison pages.
    refused_photos: int
    poison_pages: int
    unreadable_page_letters: int


def injected_faults(run: ChaosRun, adopted: int, letters: ProducerLetters) -> InjectedFaults:
    faults = run.faults
    killer = faults.classifier_killer
    return InjectedFaults(
        producer_kills=len(faults.producer_killer.killed),
        producer_crashes=faults.producer_crashes,
        classifier_kills=len(killer.killed) if killer is not None else 0,
        adopted=adopted,
        dynamodb_throttles=sum(faults.dynamodb.throttled.values()),
        rekognition_throttles=faults.rekognition.throttled,
        throttled_by_neighbour=faults.rekognition.throttled_by_neighbour,
        limiter_writes=faults.start_limiter.writes,
        limiter_refused=faults.start_limiter.refused,
        invalid_images=faults.rekognition.invalid,
        duplicate_deliveries=len(faults.duplicate_ids),
        aborted=len(faults.stopper.aborted),
        timed_out=len(faults.stopper.timed_out),
        letters_refused=faults.refusals.refused,
        transient_send_failures=faults.send_failures.transient_failures,
        send_refusals=faults.send_failures.refusals,
        refused_photos=len(run.stream.refused_media_keys),
        poison_pages=len(run.stream.poison_pages),
        unreadable_page_letters=letters.by_error.get("UnreadablePage", 0),
    )


@dataclass(frozen=True)
class FaultTally:
    """One kind of fault: how often it was injected against how often the run designed it."""

    kind: str
    injected: int
    at_least: int
    # None: no upper bound.
    at_most: int | None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.injected >= self.at_least and (
            self.at_most is None or self.injected <= self.at_most
        )

    @property
    def wanted(self) -> str:
        if self.at_most is None:
            return f"at least {self.at_least}"
        if self.at_least == self.at_most:
            return str(self.at_least)
        return f"at most {self.at_most}"


def fault_tallies(injected: InjectedFaults, config: ChaosConfig) -> list[FaultTally]:
    """Each fault kind of the run's design, in the order the detail names them."""
    kills_wanted = 0 if config.kill_classifier_after_starts is None else 1
    # STANDARD with DetectLabelsRate at the quota: the limiter must have held starts back
    # (a refused take or skip of a window slot), or it was never exercised. Rekognition
    # throttling is then injected by the other caller's bursts too (``SharedQuota``: its first
    # burst meets the pipeline's first call), so ``throttled > 0`` shows the fault reached the
    # pipeline, not that the limiter let calls exceed the quota; that the throttled calls were
    # retried or dead-lettered is what the other invariants check.
    limited = config.workflow_type == "STANDARD" and config.detect_labels_rate is not None
    tallies = [
        FaultTally("producer worker killed", injected.producer_kills, 1, 1),
        FaultTally("producer run crashed", injected.producer_crashes, 1, 1),
        FaultTally(
            "classifier worker killed", injected.classifier_kills, kills_wanted, kills_wanted
        ),
        # More adopted executions than kills: an execution outlived a worker nothing killed.
        FaultTally(
            "executions adopted after a classifier kill",
            injected.adopted,
            0,
            injected.classifier_kills,
        ),
        FaultTally("DynamoDB requests throttled", injected.dynamodb_throttles, 1, None),
        FaultTally(
            "Rekognition calls throttled",
            injected.rekognition_throttles,
            1,
            None,
            f"{injected.throttled_by_neighbour} while another caller held the quota",
        ),
    ]
    if limited:
        tallies.append(
            FaultTally(
                "start limiter window writes refused",
                injected.limiter_refused,
                1,
                None,
                f"of {injected.limiter_writes}, DetectLabelsRate {config.detect_labels_rate}",
            )
        )
    return [
        *tallies,
        FaultTally("invalid images", injected.invalid_images, 1, None),
        FaultTally(
            "duplicate deliveries",
            injected.duplicate_deliveries,
            config.duplicate_deliveries,
            config.duplicate_deliveries,
        ),
        FaultTally(
            "executions aborted", injected.aborted, config.execution_aborts, config.execution_aborts
        ),
        FaultTally(
            "executions timed out",
            injected.timed_out,
            config.execution_timeouts,
            config.execution_timeouts,
        ),
        FaultTally(
            "dead letters refused by SQS",
            injected.letters_refused,
            config.dead_letter_refusals,
            config.dead_letter_refusals,
        ),
        FaultTally(
            "batch entries failed on SQS's side",
            injected.transient_send_failures,
            config.transient_send_failures,
            config.transient_send_failures,
        ),
        # A refused photo is refused again each time a re-read page sends it: at least once.
        FaultTally(
            "batch entries refused as the sender's fault",
            injected.send_refusals,
            injected.refused_photos,
            None,
            f"{injected.refused_photos} refused photo(s)",
        ),
        FaultTally(
            "UnreadablePage letters",
            injected.unreadable_page_letters,
            injected.poison_pages,
            None,
            f"{injected.poison_pages} poison page(s) served",
        ),
    ]


def _tally_text(tally: FaultTally) -> str:
    notes = ([] if tally.ok else [f"wanted {tally.wanted}"]) + ([tally.note] if tally.note else [])
    return f"{tally.kind} {tally.injected}" + (f" ({'; '.join(notes)})" if notes else "")


def faults_injected(tallies: list[FaultTally]) -> Invariant:
    """The invariant, its detail naming each kind not injected as designed before the rest.

    A failing CI run is read from its output alone: the detail names what is missing (or too
    many) with the count wanted, and the count of every kind that was injected as designed.
    """
    missing = [_tally_text(tally) for tally in tallies if not tally.ok]
    injected = "injected: " + ", ".join(_tally_text(tally) for tally in tallies if tally.ok)
    return Invariant(
        name="every fault was injected",
        ok=not missing,
        detail=(f"not injected as designed: {', '.join(missing)}; " if missing else "") + injected,
    )


@dataclass(frozen=True)
class _Findings:
    """What ``check`` read back, as the invariants and the report need it."""

    figures: Counter[str]
    lost: int
    labelled_twice: int
    in_progress: list[str]
    leased: int
    incomplete: list[str]
    wrong_labels: list[str]
    publication: _Publication
    second_executions: int
    classified_twice: int
    letters: ProducerLetters
    poison_unlettered: list[str]
    refused_unlettered: list[tuple[str, str, str]]


def _findings(run: ChaosRun, evidence: _Evidence) -> _Findings:
    figures: Counter[str] = Counter(evidence.settled.fate.values())
    incomplete, wrong_labels = _done_items(evidence.results, run.stream.labels)
    publication = _publication(run, evidence)
    second_executions, classified_twice = _second_classifications(evidence)
    letters = producer_letters(evidence.letters)
    return _Findings(
        figures=figures,
        lost=figures["lost"] + figures["running"],
        # Answered DetectLabels calls per image; throttled calls are refused, not answered.
        # Labelled = answered with labels: a refused image (InvalidImageFormatException) fails
        # for good, and is tried again only by a redrive of its letter.
        labelled_twice=sum(1 for n in run.faults.rekognition.labelled.values() if n > 1),
        in_progress=[r.url for r in evidence.results if r.status == "IN_PROGRESS"],
        leased=_open_claims(run.stack),
        incomplete=incomplete,
        wrong_labels=wrong_labels,
        publication=publication,
        second_executions=second_executions,
        classified_twice=classified_twice,
        letters=letters,
        poison_unlettered=[
            page.newest_id
            for page in run.stream.poison_pages
            if page.newest_id not in letters.pages
        ],
        refused_unlettered=[key for key in publication.refused if key not in letters.refused],
    )


def check(run: ChaosRun, started: float) -> ChaosReport:
    """Settle every accepted message exactly once and test the invariants."""
    evidence = _gather(run)
    found = _findings(run, evidence)
    return _report(run, evidence, found, _invariants(run, evidence.settled, found), started)


def _invariants(run: ChaosRun, settled: Settlement, found: _Findings) -> list[Invariant]:
    faults, publication = run.faults, found.publication
    lost, labelled_twice = found.lost, found.labelled_twice
    incomplete, wrong_labels = found.incomplete, found.wrong_labels
    in_progress, leased = found.in_progress, found.leased
    poison_unlettered, refused_unlettered = found.poison_unlettered, found.refused_unlettered
    second_executions, classified_twice = found.second_executions, found.classified_twice
    letters = found.letters
    return [
        Invariant(
            name="every published message ends exactly once (DONE, duplicate or dead letter)",
            ok=lost == 0 and not settled.orphan_executions and run.idle,
            detail=(
                f"{lost} lost or unsettled, {len(settled.orphan_executions)} execution(s) "
                "without a message"
                # Named, so a broken run can be traced (tweetlens trace, the execution's history).
                + "".join(f" {name}" for name in settled.orphan_executions[:3])
                + ("" if run.idle else "; the pipeline never went idle")
            ),
        ),
        no_message_counted_twice(settled),
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
            ok=not publication.skipped and not publication.unexpected,
            detail=(
                f"{len(publication.skipped)} message(s) never published, "
                f"{len(publication.unexpected)} unexpected"
            ),
        ),
        Invariant(
            name="poison pages and refused messages end as producer dead letters",
            ok=not poison_unlettered and not refused_unlettered,
            detail=(
                f"{len(run.stream.poison_pages) - len(poison_unlettered)} of "
                f"{len(run.stream.poison_pages)} poison page(s) and "
                f"{len(publication.refused) - len(refused_unlettered)} of "
                f"{len(publication.refused)} refused message(s) lettered with reason and data"
            ),
        ),
        Invariant(
            name="re-read posts and re-delivered messages are never classified twice",
            ok=second_executions == 0 and classified_twice == 0,
            detail=(
                f"{publication.republished} re-published after the crash, "
                f"{len(faults.duplicate_ids)} delivered twice; "
                f"{second_executions} second execution(s), "
                f"{classified_twice} URL(s) classified twice"
            ),
        ),
        faults_injected(fault_tallies(injected_faults(run, settled.adopted, letters), run.config)),
    ]


def _report(
    run: ChaosRun,
    evidence: _Evidence,
    found: _Findings,
    invariants: list[Invariant],
    started: float,
) -> ChaosReport:
    faults, settled, publication = run.faults, evidence.settled, found.publication
    dead = {
        key.removeprefix("dead:"): n
        for key, n in sorted(found.figures.items())
        if key.startswith("dead:")
    }
    return ChaosReport(
        seed=run.config.seed,
        posts=run.config.posts,
        workflow_type=run.config.workflow_type,
        seconds=round(time.monotonic() - started, 1),
        published=len(evidence.bodies),
        published_by_producer=len(publication.producer_ids),
        duplicate_deliveries=len(faults.duplicate_ids),
        republished_after_crash=publication.republished,
        done=found.figures["done"],
        duplicates=found.figures["duplicate"],
        dead_letters=dead,
        superseded_letters=superseded_letters(evidence.letters, evidence.results),
        letter_copies=sum(1 for letter in evidence.letters if letter.copy_of),
        counted_twice=len(settled.double_counted),
        producer_letters=found.letters.by_error,
        lost=found.lost,
        in_progress=len(found.in_progress),
        labelled_twice=found.labelled_twice,
        labelled_twice_executions=_labelled_twice_executions(run, evidence),
        unique_urls=len({str(body["url"]) for body in evidence.bodies.values()}),
        rekognition_calls=sum(faults.rekognition.accepted.values()),
        rekognition_throttled=faults.rekognition.throttled,
        rekognition_throttled_by_neighbour=faults.rekognition.throttled_by_neighbour,
        detect_labels_rate=run.config.detect_labels_rate,
        start_limiter_writes=faults.start_limiter.writes,
        start_limiter_refused=faults.start_limiter.refused,
        dynamodb_throttled=sum(faults.dynamodb.throttled.values()),
        producer_runs=faults.producer_runs,
        producer_crashes=faults.producer_crashes,
        workers_killed={
            "producer": len(faults.producer_killer.killed),
            "classifier": 0
            if faults.classifier_killer is None
            else len(faults.classifier_killer.killed),
        },
        adopted_executions=settled.adopted,
        executions_aborted=len(faults.stopper.aborted),
        executions_timed_out=len(faults.stopper.timed_out),
        dead_letters_refused=faults.refusals.refused,
        poison_pages=len(run.stream.poison_pages),
        send_entries_failed_transiently=faults.send_failures.transient_failures,
        send_entries_refused=faults.send_failures.refusals,
        unexpected_outcomes=_unexpected_outcomes(run, evidence),
        invariants=invariants,
    )
