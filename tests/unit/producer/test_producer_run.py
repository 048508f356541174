"""run_producer's handling of checkpoints X refuses, with a scripted post source."""

from __future__ import annotations

import json
from typing import Any

import pytest

from producer.checkpoint import Checkpoint, CheckpointStore
from producer.observability import metrics
from producer.page import UnreadablePage, read_page_object
from producer.publisher import BatchSender, DeadLetterQueue, SqsPublisher
from producer.run import RunSummary, run_producer
from producer.settings import ProducerSettings
from producer.source import (
    InvalidSearchParameter,
    PostSource,
    SearchResult,
    XApiError,
    read_rate_limit,
)
from tests.unit.producer.producer_testkit import ROUTES, TABLE, Aws, load_event

OLD_SINCE_ID = "1850000000000000000"


class ScriptedSource:
    """Answers each search with the next scripted outcome and records the parameters."""

    def __init__(self, outcomes: list[SearchResult | Exception]) -> None:
        self._outcomes = outcomes
        self.calls: list[tuple[str | None, str | None]] = []

    def search(
        self, query: str, *, since_id: str | None, next_token: str | None, max_results: int
    ) -> SearchResult:
        self.calls.append((since_id, next_token))
        outcome = self._outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def recorded(name: str, index: int) -> SearchResult:
    page = load_event(name)["pages"][index]
    return SearchResult(
        page=read_page_object(page["body"]), rate_limit=read_rate_limit(page["headers"])
    )


def settings(aws: Aws) -> ProducerSettings:
    return ProducerSettings.from_environ(
        {
            "HASHTAG_ROUTES": ROUTES,
            "ROUTE_QUEUE_URLS": json.dumps(aws.queue_urls),
            "CHECKPOINTS_TABLE": TABLE,
            "PRODUCER_DLQ_URL": aws.dead_letter_queue_url,
            "POST_SOURCE": "replay",
            "REPLAY_URI": "unused.json",
            "MAX_RESULTS_PER_PAGE": "10",
        }
    )


def checkpoint_advanced() -> list[float]:
    """The CheckpointAdvanced values recorded since the last call (one per run)."""
    values = list(metrics.metric_set.get("CheckpointAdvanced", {}).get("Value", []))
    metrics.clear_metrics()
    return values


def run(aws: Aws, config: ProducerSettings, source: PostSource) -> RunSummary:
    """One run against moto, with all the time it needs."""
    sender = BatchSender(aws.sqs)
    return run_producer(
        settings=config,
        source=source,
        checkpoints=CheckpointStore(aws.dynamodb, TABLE, config.checkpoint_id),
        publisher=SqsPublisher(sender, aws.queue_urls),
        dead_letters=DeadLetterQueue(sender, aws.dead_letter_queue_url),
        remaining_ms=lambda: 50_000,
    )


def test_since_id_older_than_recent_search_is_dropped(aws: Aws) -> None:
    # GIVEN a checkpoint from a producer paused for weeks, which X refuses
    config = settings(aws)
    store = CheckpointStore(aws.dynamodb, TABLE, config.checkpoint_id)
    store.save(Checkpoint(), since_id=OLD_SINCE_ID, next_token=None, newest_id=None)
    refused = InvalidSearchParameter(
        "X API answered 400: Invalid 'since_id'", frozenset({"since_id"})
    )
    source = ScriptedSource([refused, recorded("x_api_search_empty.json", 0)])

    # WHEN the producer runs
    summary = run(aws, config, source)

    # THEN it searches again without since_id and completes
    assert source.calls == [(OLD_SINCE_ID, None), (None, None)]
    assert (summary.stopped_reason, summary.since_id) == ("complete", None)


def test_other_bad_request_fails_the_run(aws: Aws) -> None:
    # GIVEN X refuses the query itself
    config = settings(aws)
    refused = InvalidSearchParameter("X API answered 400: query too long", frozenset({"query"}))
    source = ScriptedSource([refused])

    # WHEN the producer runs THEN the error is raised and nothing is saved
    with pytest.raises(XApiError, match=r"^X API answered 400: query too long$"):
        run(aws, config, source)
    assert aws.checkpoint() is None


CUT_BODY = '{"data": [{"id": "1861704939338346519", "text": "Sunday nap'
CUT = SearchResult(
    page=UnreadablePage(
        body=CUT_BODY,
        error="body: Invalid JSON: Unterminated string starting at: line 1 column 49 (char 48)",
    ),
    rate_limit=None,
)
PAGE_1_TOKEN = "b26v89c19zqg8o3fpzhm4ixbbpfq9ubyr2zd6bmyoyjh9"
PAGE_1_NEWEST = "1861704939338346519"
PAGE_1_OLDEST = "1861704104671125512"


def letter_summary(letter: dict[str, Any]) -> tuple[Any, ...]:
    return (letter["kind"], letter["error"], letter.get("strike"), letter.get("pagination_token"))


def test_page_without_meta_is_read_again_by_the_next_runs_then_given_up(aws: Aws) -> None:
    # GIVEN a search whose first page is sound and whose second page is cut short, each time
    config = settings(aws)
    first = run(aws, config, ScriptedSource([recorded("x_api_search_photos.json", 0), CUT]))
    cats_of_page_1 = aws.drain("cats")

    # THEN the first run published page one, dead-lettered page two and kept its place
    assert (first.pages, first.stopped_reason, len(cats_of_page_1)) == (2, "unreadable_page", 5)
    assert aws.checkpoint() == {
        "id": config.checkpoint_id,
        "next_token": PAGE_1_TOKEN,
        "newest_id": PAGE_1_NEWEST,
        "oldest_id": PAGE_1_OLDEST,
        "unreadable_reads": "1",
    }

    # WHEN the next run finds it unreadable again
    second_source = ScriptedSource([CUT])
    run(aws, config, second_source)

    # THEN it asked for that page only, and counts a second read
    assert second_source.calls == [(None, PAGE_1_TOKEN)]
    assert (aws.checkpoint() or {}).get("unreadable_reads") == "2"

    # WHEN a third run finds it unreadable once more
    third = run(aws, config, ScriptedSource([CUT]))

    # THEN the search is closed at its newest post, and a range letter names what was not read
    assert (third.stopped_reason, third.since_id) == ("unreadable_page", PAGE_1_NEWEST)
    assert aws.checkpoint() == {"id": config.checkpoint_id, "since_id": PAGE_1_NEWEST}
    letters = aws.dead_letters()
    assert [letter_summary(letter) for letter in letters] == [
        ("page", "UnreadablePage", 1, PAGE_1_TOKEN),
        ("page", "UnreadablePage", 2, PAGE_1_TOKEN),
        ("page", "UnreadablePage", 3, PAGE_1_TOKEN),
        ("range", "PaginationAbandoned", None, PAGE_1_TOKEN),
    ]
    assert letters[2] == {
        "kind": "page",
        "error": "UnreadablePage",
        "reason": "body: Invalid JSON: Unterminated string starting at: line 1 column 49 (char 48)",
        "query": config.search_query,
        "raw": CUT_BODY,
        "raw_truncated": False,
        "since_id": None,
        "pagination_token": PAGE_1_TOKEN,
        "until_id": PAGE_1_OLDEST,
        "next_token": None,
        "strike": 3,
    }
    assert letters[3] == {
        "kind": "range",
        "error": "PaginationAbandoned",
        "reason": "the page at pagination_token was unreadable 3 runs in a row; posts older "
        "than until_id and newer than since_id were not read",
        "query": config.search_query,
        "raw": None,
        "raw_truncated": False,
        "since_id": None,
        "until_id": PAGE_1_OLDEST,
        "newest_id": PAGE_1_NEWEST,
        "pagination_token": PAGE_1_TOKEN,
    }


def test_page_readable_again_on_the_next_run_clears_the_count(aws: Aws) -> None:
    # GIVEN a run that found page two unreadable once (X's passing trouble)
    config = settings(aws)
    run(aws, config, ScriptedSource([recorded("x_api_search_photos.json", 0), CUT]))

    # WHEN the next run reads it fine
    summary = run(aws, config, ScriptedSource([recorded("x_api_search_photos.json", 1)]))

    # THEN the search completes at page one's newest post, as if nothing had happened
    assert (summary.stopped_reason, summary.since_id) == ("complete", PAGE_1_NEWEST)
    assert aws.checkpoint() == {"id": config.checkpoint_id, "since_id": PAGE_1_NEWEST}
    assert [letter_summary(letter) for letter in aws.dead_letters()] == [
        ("page", "UnreadablePage", 1, PAGE_1_TOKEN)
    ]


def test_unreadable_first_page_is_never_given_up(aws: Aws) -> None:
    # GIVEN a checkpoint and a search whose first page is unreadable on four runs in a row
    config = settings(aws)
    store = CheckpointStore(aws.dynamodb, TABLE, config.checkpoint_id)
    store.save(Checkpoint(), since_id=OLD_SINCE_ID, next_token=None, newest_id=None)

    # WHEN the four runs happen
    for _ in range(4):
        assert run(aws, config, ScriptedSource([CUT])).stopped_reason == "unreadable_page"

    # THEN no id is known to close the search at, so the checkpoint stays and counts the reads
    assert aws.checkpoint() == {
        "id": config.checkpoint_id,
        "since_id": OLD_SINCE_ID,
        "unreadable_reads": "4",
    }
    assert [letter_summary(letter) for letter in aws.dead_letters()] == [
        ("page", "UnreadablePage", strike, None) for strike in (1, 2, 3, 4)
    ]


def test_unreadable_page_with_a_readable_meta_is_passed_over(aws: Aws) -> None:
    # GIVEN a first page whose data is broken but whose meta leads to page two
    config = settings(aws)
    broken = load_event("x_api_search_photos.json")["pages"][0]["body"]
    cut = read_page_object({**broken, "data": {"not": "a list"}})
    assert isinstance(cut, UnreadablePage)
    source = ScriptedSource(
        [SearchResult(page=cut, rate_limit=None), recorded("x_api_search_photos.json", 1)]
    )

    # WHEN the producer runs
    summary = run(aws, config, source)

    # THEN page one is one letter, page two is published, and the search completes at page
    # one's newest post (its posts are in the letter)
    assert (summary.pages, summary.stopped_reason, summary.since_id) == (
        2,
        "complete",
        PAGE_1_NEWEST,
    )
    assert summary.published == {"cats": 3, "dogs": 2}
    assert [letter_summary(letter) for letter in aws.dead_letters()] == [
        ("page", "UnreadablePage", 1, None)
    ]


def test_checkpoint_progress_is_reported_run_by_run(aws: Aws) -> None:
    # GIVEN a search whose second page is cut short on three runs in a row, then nothing new
    config = settings(aws)
    metrics.clear_metrics()

    # WHEN the runs happen: page one is saved before page two stops the first run; the second
    # and third find the same page unreadable (the third gives it up); the fourth is caught up
    run(aws, config, ScriptedSource([recorded("x_api_search_photos.json", 0), CUT]))
    first = checkpoint_advanced()
    run(aws, config, ScriptedSource([CUT]))
    second = checkpoint_advanced()
    run(aws, config, ScriptedSource([CUT]))
    third = checkpoint_advanced()
    run(aws, config, ScriptedSource([recorded("x_api_search_empty.json", 0)]))
    fourth = checkpoint_advanced()

    # THEN only the run that read the same unreadable page again without giving it up made
    # no progress: moving to page two, closing the search and being caught up all count
    assert (first, second, third, fourth) == ([1.0], [0.0], [1.0], [1.0])


def test_run_that_fails_before_any_page_reports_no_progress(aws: Aws) -> None:
    # GIVEN X answers every search with an error
    config = settings(aws)
    metrics.clear_metrics()

    # WHEN the producer runs
    with pytest.raises(XApiError):
        run(aws, config, ScriptedSource([XApiError("X API answered 503")]))

    # THEN the run reports no progress (the alarm counts missing reports as none too)
    assert checkpoint_advanced() == [0.0]
