"""One producer run: page through recent search from the checkpoint and enqueue photos."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Literal

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel, ConfigDict

from producer.checkpoint import CheckpointStore
from producer.extract import extract_photos
from producer.observability import logger, metrics, tracer
from producer.publisher import SqsPublisher
from producer.routing import Router
from producer.settings import ProducerSettings
from producer.source import InvalidSearchParameter, PostSource, RateLimited, SearchResult

StopReason = Literal["complete", "rate_limit", "time"]

# Stop at 90 % of the window so that a bug or a burst can never run the app into 429s.
RATE_LIMIT_STOP_FRACTION = 0.9
# Time left for one more page (API call, publishing, checkpoint write) before the timeout.
TIME_MARGIN_MS = 10_000
_TOKEN_PARAMETERS = frozenset({"next_token", "pagination_token"})


class RunSummary(BaseModel):
    """What the handler returns."""

    model_config = ConfigDict(frozen=True)

    pages: int
    posts: int
    published: dict[str, int]
    stopped_reason: StopReason
    since_id: str | None


class _Counts:
    def __init__(self, routes: list[str]) -> None:
        self.pages = 0
        self.api_calls = 0
        self.posts = 0
        self.skipped = 0
        self.unrouted = 0
        self.rate_limit_stops = 0
        self.published: Counter[str] = Counter(dict.fromkeys(routes, 0))

    def emit(self) -> None:
        for name, value in (
            ("ApiCalls", self.api_calls),
            ("PostsRead", self.posts),
            ("PostsSkipped", self.skipped),
            ("Unrouted", self.unrouted),
            ("RateLimitStops", self.rate_limit_stops),
        ):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        for route, count in self.published.items():
            # The route dimension would apply to every metric of the shared blob, so each
            # route's count goes out as its own EMF record.
            with single_metric(
                name="PhotosPublished",
                unit=MetricUnit.Count,
                value=count,
                namespace=metrics.namespace,
                default_dimensions=metrics.default_dimensions,
            ) as metric:
                metric.add_dimension(name="route", value=route)


@tracer.capture_method(capture_response=False)
def run_producer(
    *,
    settings: ProducerSettings,
    source: PostSource,
    checkpoints: CheckpointStore,
    publisher: SqsPublisher,
    remaining_ms: Callable[[], int],
) -> RunSummary:
    """Read pages until the search is complete, the rate limit nears, or time runs out.

    The checkpoint moves only after every message of a page is on its queue, so a post is
    never skipped; a failed page is read again by the next run (the classifier dedupes).
    """
    router = Router(settings.hashtag_routes)
    counts = _Counts(list(settings.hashtag_routes))
    checkpoint = checkpoints.load()
    since_id = checkpoint.since_id
    next_token = checkpoint.next_token
    # A resumed run keeps the newest id of its first page, read by an earlier invocation.
    newest_id = checkpoint.newest_id if next_token else None
    logger.info(
        "Producer run starting",
        checkpoint_id=settings.checkpoint_id,
        since_id=since_id,
        resuming=next_token is not None,
    )
    stopped_reason: StopReason
    try:
        while True:
            if remaining_ms() < TIME_MARGIN_MS:
                stopped_reason = "time"
                logger.info("Stopping before the Lambda timeout", pages=counts.pages)
                break
            try:
                counts.api_calls += 1
                result = source.search(
                    settings.search_query,
                    since_id=since_id,
                    next_token=next_token,
                    max_results=settings.max_results_per_page,
                )
            except RateLimited as error:
                counts.rate_limit_stops += 1
                stopped_reason = "rate_limit"
                logger.warning("X API rate limit reached", reset_time=error.reset_time)
                break
            except InvalidSearchParameter as error:
                # A checkpoint that X no longer accepts would fail every run from now on.
                # Restarting re-reads posts (duplicates are deduplicated downstream) but
                # never skips one that X can still return.
                if next_token is not None and error.parameters & _TOKEN_PARAMETERS:
                    logger.warning(
                        "Saved next_token refused; restarting the search", error=str(error)
                    )
                    next_token = newest_id = None
                    continue
                if since_id is not None and "since_id" in error.parameters:
                    # Recent search covers 7 days: an older since_id is refused outright.
                    logger.warning("Saved since_id refused; searching without it", error=str(error))
                    since_id = next_token = newest_id = None
                    continue
                raise
            counts.pages += 1
            _enqueue_page(result, router, publisher, counts)

            if newest_id is None:
                newest_id = result.page.meta.newest_id
            token = result.page.meta.next_token
            if token is None:
                completed_since_id = newest_id or since_id
                if completed_since_id != checkpoint.since_id or checkpoint.next_token:
                    checkpoint = checkpoints.save(
                        checkpoint, since_id=completed_since_id, next_token=None, newest_id=None
                    )
                since_id = completed_since_id
                stopped_reason = "complete"
                break
            checkpoint = checkpoints.save(
                checkpoint, since_id=since_id, next_token=token, newest_id=newest_id
            )
            next_token = token
            if _near_rate_limit(result):
                counts.rate_limit_stops += 1
                stopped_reason = "rate_limit"
                break
    finally:
        counts.emit()

    summary = RunSummary(
        pages=counts.pages,
        posts=counts.posts,
        published=dict(counts.published),
        stopped_reason=stopped_reason,
        since_id=since_id,
    )
    logger.info("Producer run finished", **summary.model_dump())
    return summary


def _enqueue_page(
    result: SearchResult, router: Router, publisher: SqsPublisher, counts: _Counts
) -> None:
    page = result.page
    counts.posts += len(page.data)
    if page.errors:
        logger.warning("X API reported partial errors", errors=page.errors)
    extraction = extract_photos(page)
    for skipped in extraction.skipped:
        counts.skipped += 1
        if skipped.reason == "missing_media":
            logger.warning(
                "Post skipped: its media is missing from includes",
                post_id=skipped.post_id,
                missing_media_keys=list(skipped.missing_media_keys),
            )
        elif skipped.reason == "unusable_media":
            logger.warning(
                "Post skipped: none of its media can be used",
                post_id=skipped.post_id,
                unusable_media=list(skipped.unusable_media),
            )
        else:
            logger.debug("Post skipped", post_id=skipped.post_id, reason=skipped.reason)
    routed = router.route_page(extraction.posts)
    for rejected in routed.rejected:
        counts.skipped += 1
        logger.warning(
            "Post skipped: invalid message", post_id=rejected.post_id, error=rejected.error
        )
    for post_id in routed.unrouted:
        counts.unrouted += 1
        logger.info("Post matches no route", post_id=post_id)
    for route, messages in routed.messages.items():
        if messages:
            counts.published[route] += publisher.publish(route, messages)


def _near_rate_limit(result: SearchResult) -> bool:
    rate_limit = result.rate_limit
    if rate_limit is None:
        logger.warning("X API response without rate-limit headers")
        return False
    if rate_limit.used_fraction >= RATE_LIMIT_STOP_FRACTION:
        logger.info(
            "Stopping near the X API rate limit",
            limit=rate_limit.limit,
            remaining=rate_limit.remaining,
            reset=rate_limit.reset,
        )
        return True
    return False
