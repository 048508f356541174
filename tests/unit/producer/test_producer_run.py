"""run_producer's handling of checkpoints X refuses, with a scripted post source."""

from __future__ import annotations

import json

import pytest

from producer.checkpoint import Checkpoint, CheckpointStore
from producer.publisher import SqsPublisher
from producer.run import run_producer
from producer.settings import ProducerSettings
from producer.source import InvalidSearchParameter, SearchResult, XApiError, read_rate_limit
from producer.xapi_models import XSearchResponse
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
        page=XSearchResponse.model_validate(page["body"]),
        rate_limit=read_rate_limit(page["headers"]),
    )


def settings(aws: Aws) -> ProducerSettings:
    return ProducerSettings.from_environ(
        {
            "HASHTAG_ROUTES": ROUTES,
            "ROUTE_QUEUE_URLS": json.dumps(aws.queue_urls),
            "CHECKPOINTS_TABLE": TABLE,
            "POST_SOURCE": "replay",
            "REPLAY_URI": "unused.json",
            "MAX_RESULTS_PER_PAGE": "10",
        }
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
    summary = run_producer(
        settings=config,
        source=source,
        checkpoints=store,
        publisher=SqsPublisher(aws.sqs, aws.queue_urls),
        remaining_ms=lambda: 50_000,
    )

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
        run_producer(
            settings=config,
            source=source,
            checkpoints=CheckpointStore(aws.dynamodb, TABLE, config.checkpoint_id),
            publisher=SqsPublisher(aws.sqs, aws.queue_urls),
            remaining_ms=lambda: 50_000,
        )
    assert aws.checkpoint() is None
