"""One producer run: page through recent search from the checkpoint and enqueue photos.

What cannot be read or sent is dead-lettered (``producer.letters``) and the run goes on, so one
bad item never holds the checkpoint back. The checkpoint rule, page by page:

* a page whose ``meta`` can be read: every photo is on its queue or in a dead letter, then the
  checkpoint moves to the page's ``next_token`` (or closes the search at the run's newest id);
  a page that is unreadable apart from its ``meta`` costs one page letter with the body;
* a page whose ``meta`` cannot be read (not JSON, not an object, no ``meta``): nothing says
  where the next page is, and stepping over it would skip every older page unseen. The page
  costs a letter, the run ends, and the checkpoint stays at that page (the pages before it are
  saved), so the next run reads it again: such an answer is most often X's passing trouble.
  After ``MAX_UNREADABLE_READS`` runs in a row, the unfinished search is given up on: it is
  closed at its newest id and a ``range`` letter names the ids never read, for a later
  replay. A first page cannot be given up on (no id is known to close at); newer posts soon
  push its posts onto a second page, where the rule applies.

Errors that are nobody's data (X unreachable or 5xx, SQS failing on its side, a dead letter
that cannot be written) raise before the checkpoint moves, and the next run tries again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel, ConfigDict

from producer.checkpoint import CheckpointStore
from producer.extract import extract_photos
from producer.letters import PageLetter, PhotoLetter, PostLetter, RangeLetter
from producer.observability import logger, metrics, tracer
from producer.page import SearchPage, UnreadablePage
from producer.publisher import DeadLetterQueue, Letter, SqsPublisher
from producer.routing import RejectedPhoto, Router
from producer.settings import ProducerSettings
from producer.source import InvalidSearchParameter, PostSource, RateLimited, SearchResult
from producer.validation import shorten

StopReason = Literal["complete", "rate_limit", "time", "unreadable_page"]

# Stop at 90 % of the window so that a bug or a burst can never run the app into 429s.
RATE_LIMIT_STOP_FRACTION = 0.9
# Time left for one more page (API call, publishing, checkpoint write) before the timeout.
TIME_MARGIN_MS = 10_000
# Runs in a row (one a minute) that find the same page unreadable before it is given up on.
MAX_UNREADABLE_READS = 3
_TOKEN_PARAMETERS = frozenset({"next_token", "pagination_token"})
# 1 for a run that moved the checkpoint on or found the search caught up with X, else 0 (a run
# that failed, waited out a rate limit or is stuck at an unreadable page). A run that fails
# before it reads the checkpoint emits nothing: the alarm treats missing data as stalled too.
CHECKPOINT_ADVANCED = "CheckpointAdvanced"
_LETTER_METRICS = {
    "page": "PagesDeadLettered",
    "post": "PostsDeadLettered",
    "photo": "PhotosDeadLettered",
    "range": "PaginationsAbandoned",
}


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
        self.letters: Counter[str] = Counter(dict.fromkeys(_LETTER_METRICS, 0))
        # Whether the run left the search further along than it found it (see _Run._save and
        # _Run._complete): the ProducerCheckpointStalledAlarm watches this, run by run.
        self.checkpoint_advanced = False

    def emit(self) -> None:
        for name, value in (
            ("ApiCalls", self.api_calls),
            ("PostsRead", self.posts),
            ("PostsSkipped", self.skipped),
            ("Unrouted", self.unrouted),
            ("RateLimitStops", self.rate_limit_stops),
            (CHECKPOINT_ADVANCED, int(self.checkpoint_advanced)),
            *((_LETTER_METRICS[kind], count) for kind, count in self.letters.items()),
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
    dead_letters: DeadLetterQueue,
    remaining_ms: Callable[[], int],
) -> RunSummary:
    """Read pages until the search is complete, the rate limit nears, or time runs out."""
    run = _Run(settings, checkpoints, publisher, dead_letters)
    logger.info(
        "Producer run starting",
        checkpoint_id=settings.checkpoint_id,
        since_id=run.since_id,
        resuming=run.next_token is not None,
    )
    try:
        stopped_reason = run.read_pages(source, remaining_ms)
    finally:
        run.counts.emit()
    summary = RunSummary(
        pages=run.counts.pages,
        posts=run.counts.posts,
        published=dict(run.counts.published),
        stopped_reason=stopped_reason,
        since_id=run.since_id,
    )
    logger.info(
        "Producer run finished", **summary.model_dump(), dead_letters=dict(run.counts.letters)
    )
    return summary


class _Run:
    """The pagination position of one run, and what it has counted."""

    def __init__(
        self,
        settings: ProducerSettings,
        checkpoints: CheckpointStore,
        publisher: SqsPublisher,
        dead_letters: DeadLetterQueue,
    ) -> None:
        self.settings = settings
        self.router = Router(settings.hashtag_routes)
        self.counts = _Counts(list(settings.hashtag_routes))
        self.checkpoints = checkpoints
        self.publisher = publisher
        self.dead_letters = dead_letters
        self.checkpoint = checkpoints.load()
        self.since_id = self.checkpoint.since_id
        self.next_token = self.checkpoint.next_token
        # A resumed run keeps the newest id of its first page, read by an earlier invocation.
        self.newest_id = self.checkpoint.newest_id if self.next_token else None
        self.oldest_id = self.checkpoint.oldest_id if self.next_token else None

    def read_pages(self, source: PostSource, remaining_ms: Callable[[], int]) -> StopReason:
        while True:
            if remaining_ms() < TIME_MARGIN_MS:
                logger.info("Stopping before the Lambda timeout", pages=self.counts.pages)
                return "time"
            try:
                self.counts.api_calls += 1
                result = source.search(
                    self.settings.search_query,
                    since_id=self.since_id,
                    next_token=self.next_token,
                    max_results=self.settings.max_results_per_page,
                )
            except RateLimited as error:
                self.counts.rate_limit_stops += 1
                logger.warning("X API rate limit reached", reset_time=error.reset_time)
                return "rate_limit"
            except InvalidSearchParameter as error:
                self._restart_after(error)
                continue
            self.counts.pages += 1
            stopped = self._take_page(result)
            if stopped is not None:
                return stopped

    def _restart_after(self, error: InvalidSearchParameter) -> None:
        """Drop a checkpoint value X refuses, or re-raise.

        A checkpoint that X no longer accepts would fail every run from now on. Restarting
        re-reads posts (duplicates are deduplicated downstream) but never skips one that X can
        still return.
        """
        if self.next_token is not None and error.parameters & _TOKEN_PARAMETERS:
            logger.warning("Saved next_token refused; restarting the search", error=str(error))
            self.next_token = self.newest_id = self.oldest_id = None
            return
        if self.since_id is not None and "since_id" in error.parameters:
            # Recent search covers 7 days: an older since_id is refused outright.
            logger.warning("Saved since_id refused; searching without it", error=str(error))
            self.since_id = self.next_token = self.newest_id = self.oldest_id = None
            return
        raise error

    def _take_page(self, result: SearchResult) -> StopReason | None:
        """Enqueue or dead-letter one page and move the checkpoint; a stop reason ends the run."""
        page = result.page
        if isinstance(page, SearchPage):
            self._enqueue(page)
            meta = page.meta
        elif page.meta is not None:
            # The posts are in the letter, and meta still says where the page sits.
            self._send_letters([self._page_letter(page, strike=1)])
            meta = page.meta
        else:
            return self._stuck_at(page)
        self.newest_id = self.newest_id or meta.newest_id
        self.oldest_id = meta.oldest_id or self.oldest_id
        if meta.next_token is None:
            self._complete()
            return "complete"
        self._save(next_token=meta.next_token)
        if _near_rate_limit(result):
            self.counts.rate_limit_stops += 1
            return "rate_limit"
        return None

    def _complete(self) -> None:
        self.since_id = self.newest_id or self.since_id
        saved = self.checkpoint
        if self.since_id != saved.since_id or saved.next_token or saved.unreadable_reads:
            self._save(next_token=None)
        # Caught up with X: the checkpoint is as far along as it can be, even when no post was
        # new and nothing was written. Quiet hashtags are no stalled producer.
        self.counts.checkpoint_advanced = True

    def _stuck_at(self, page: UnreadablePage) -> StopReason:
        """An unreadable page with no meta: letter it, end the run, keep or give up the place."""
        saved = self.checkpoint
        same_place = (saved.since_id, saved.next_token) == (self.since_id, self.next_token)
        reads = saved.unreadable_reads + 1 if same_place else 1
        letters: list[Letter] = [self._page_letter(page, strike=reads)]
        gap = self._range_letter() if reads >= MAX_UNREADABLE_READS else None
        if gap is not None:
            letters.append(gap)
        self._send_letters(letters)
        if gap is not None:
            # Closing the search at its newest id skips what is left of it; the range letter
            # says exactly which ids, while X can still return them.
            self.since_id = gap.newest_id
            self._save(next_token=None)
        else:
            self._save(next_token=self.next_token, unreadable_reads=reads)
        logger.warning(
            "Unreadable page without meta; run ended",
            error=page.error,
            unreadable_reads=reads,
            gave_up=gap is not None,
        )
        return "unreadable_page"

    def _save(self, *, next_token: str | None, unreadable_reads: int = 0) -> None:
        paginating = next_token is not None
        # Saving the same place again (one more unreadable read of a page) is no progress.
        moved = (self.since_id, next_token) != (
            self.checkpoint.since_id,
            self.checkpoint.next_token,
        )
        self.checkpoint = self.checkpoints.save(
            self.checkpoint,
            since_id=self.since_id,
            next_token=next_token,
            newest_id=self.newest_id if paginating else None,
            oldest_id=self.oldest_id if paginating else None,
            unreadable_reads=unreadable_reads,
        )
        self.next_token = next_token
        if moved:
            self.counts.checkpoint_advanced = True

    def _enqueue(self, page: SearchPage) -> None:
        """Every photo of the page on its queue, or in a dead letter with every bad item."""
        self.counts.posts += page.post_count
        if page.errors:
            logger.warning("X API reported partial errors", errors=list(page.errors))
        letters: list[Letter] = [
            PostLetter(
                reason=item.error, query=self.settings.search_query, raw=item.raw, post_id=item.key
            )
            for item in page.rejected_posts
        ]
        extraction = extract_photos(page)
        for skipped in extraction.skipped:
            self.counts.skipped += 1
            logger.debug("Post skipped", post_id=skipped.post_id, reason=skipped.reason)
        routed = self.router.route_page(extraction.posts)
        letters.extend(self._photo_letter(page, rejected) for rejected in routed.rejected)
        for post_id in routed.unrouted:
            self.counts.unrouted += 1
            logger.info("Post matches no route", post_id=post_id)
        for route, messages in routed.messages.items():
            if not messages:
                continue
            refused = self.publisher.publish(route, messages)
            self.counts.published[route] += len(messages) - len(refused)
            letters.extend(
                PhotoLetter(
                    error="RejectedBySqs",
                    reason=shorten(f"SQS refused the message: {item.refusal.message}"),
                    query=self.settings.search_query,
                    raw=item.message.model_dump(mode="json"),
                    post_id=item.message.post_id,
                    media_key=item.message.media_key,
                    route=route,
                    sqs_error_code=item.refusal.code,
                )
                for item in refused
            )
        self._send_letters(letters)

    def _send_letters(self, letters: list[Letter]) -> None:
        if not letters:
            return
        self.dead_letters.send(letters)
        for letter in letters:
            self.counts.letters[letter.kind] += 1
            logger.warning("Dead-lettered", **_letter_fields(letter))

    def _page_letter(self, page: UnreadablePage, *, strike: int) -> PageLetter:
        return PageLetter(
            reason=page.error,
            query=self.settings.search_query,
            raw=page.body,
            since_id=self.since_id,
            pagination_token=self.next_token,
            until_id=self.oldest_id,
            next_token=page.meta.next_token if page.meta else None,
            strike=strike,
        )

    def _range_letter(self) -> RangeLetter | None:
        """The ids a given-up search leaves unread, or None when nothing bounds them yet."""
        if self.next_token is None or self.newest_id is None or self.oldest_id is None:
            return None
        return RangeLetter(
            reason=(
                f"the page at pagination_token was unreadable {MAX_UNREADABLE_READS} runs in a "
                "row; posts older than until_id and newer than since_id were not read"
            ),
            query=self.settings.search_query,
            since_id=self.since_id,
            until_id=self.oldest_id,
            newest_id=self.newest_id,
            pagination_token=self.next_token,
        )

    def _photo_letter(self, page: SearchPage, rejected: RejectedPhoto) -> PhotoLetter:
        media = page.raw_media.get(rejected.media_key)
        if media is None:
            media = next(
                (item.raw for item in page.rejected_media if item.key == rejected.media_key), None
            )
        return PhotoLetter(
            error=rejected.error,
            reason=rejected.reason,
            query=self.settings.search_query,
            raw={"post": page.raw_posts.get(rejected.post_id), "media": media},
            post_id=rejected.post_id,
            media_key=rejected.media_key,
            route=rejected.route,
        )


def _letter_fields(letter: Letter) -> dict[str, Any]:
    """What a log line says about a letter: names and ids, never the raw data."""
    return letter.model_dump(include={"kind", "error", "reason", "post_id", "media_key", "route"})


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
