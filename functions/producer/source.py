"""Post sources: tweepy's recent search, against X or against a recording."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol, override

import requests
import tweepy
from pydantic import BaseModel, ConfigDict
from requests.adapters import HTTPAdapter

from producer.credentials import BearerTokenReader
from producer.observability import tracer
from producer.page import SearchPage, UnreadablePage, read_page
from producer.replay import ReplayAdapter, load_recording
from producer.settings import ProducerSettings
from tweetlens_xapi.recording import ReplayRecording

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EXPANSIONS = ["attachments.media_keys"]
MEDIA_FIELDS = ["url", "type"]
TWEET_FIELDS = ["created_at", "entities", "author_id"]
# tweepy sets no timeout; a stalled connection must fail well inside the Lambda timeout.
CONNECT_TIMEOUT_SECONDS = 3.05
READ_TIMEOUT_SECONDS = 10.0

# tweepy's DEBUG lines print the request headers, Authorization included: never let them out,
# whatever level the Lambda runtime or POWERTOOLS_LOG_LEVEL sets on the root logger.
logging.getLogger("tweepy.client").setLevel(logging.INFO)


class RateLimited(Exception):
    """X answered 429: the rate-limit window is used up."""

    def __init__(self, reset_time: int | None) -> None:
        self.reset_time = reset_time
        super().__init__(f"X API rate limit reached; window resets at {reset_time}")


class XApiError(Exception):
    """X refused the request or could not be reached: worth trying again on the next run."""


class InvalidSearchParameter(XApiError):
    """X answered 400 naming request parameters, e.g. an expired ``next_token``."""

    def __init__(self, message: str, parameters: frozenset[str]) -> None:
        self.parameters = parameters
        super().__init__(message)


class RateLimit(BaseModel):
    """The ``x-rate-limit-*`` headers of one response."""

    model_config = ConfigDict(frozen=True)

    limit: int
    remaining: int
    reset: int | None = None

    @property
    def used_fraction(self) -> float:
        return (self.limit - self.remaining) / self.limit if self.limit > 0 else 1.0


class SearchResult(BaseModel):
    """One 200 answer: a page, or a body that is none (dead-lettered by the run, not raised)."""

    model_config = ConfigDict(frozen=True)

    page: SearchPage | UnreadablePage
    rate_limit: RateLimit | None


class PostSource(Protocol):
    def search(
        self, query: str, *, since_id: str | None, next_token: str | None, max_results: int
    ) -> SearchResult: ...


class TweepySearch:
    """One recent-search page per call, with the response headers kept."""

    def __init__(self, client: tweepy.Client) -> None:
        self._client = client

    @tracer.capture_method(capture_response=False)
    def search(
        self, query: str, *, since_id: str | None, next_token: str | None, max_results: int
    ) -> SearchResult:
        try:
            response: requests.Response = self._client.search_recent_tweets(
                query,
                expansions=EXPANSIONS,
                media_fields=MEDIA_FIELDS,
                tweet_fields=TWEET_FIELDS,
                max_results=max_results,
                since_id=since_id,
                next_token=next_token,
            )
        except tweepy.TooManyRequests as error:
            raise RateLimited(error.reset_time) from error
        except tweepy.BadRequest as error:
            parameters = frozenset(
                name
                for api_error in error.api_errors
                if isinstance(api_error, dict)
                for name in api_error.get("parameters", {})
            )
            messages = "; ".join(error.api_messages) or error.response.reason
            raise InvalidSearchParameter(f"X API answered 400: {messages}", parameters) from error
        except tweepy.HTTPException as error:
            messages = "; ".join(error.api_messages) or error.response.reason
            raise XApiError(f"X API answered {error.response.status_code}: {messages}") from error
        except requests.RequestException as error:
            raise XApiError(f"X API unreachable: {type(error).__name__}") from error
        # A transfer cut short raises above (urllib3 checks Content-Length), so a body that
        # cannot be read here is what X sent; the run dead-letters it (producer.run).
        return SearchResult(
            page=read_page(response.content), rate_limit=read_rate_limit(response.headers)
        )


def read_rate_limit(headers: Any) -> RateLimit | None:
    """The rate-limit headers, or None when X sent none (or unreadable ones)."""
    try:
        return RateLimit(
            limit=int(headers["x-rate-limit-limit"]),
            remaining=int(headers["x-rate-limit-remaining"]),
            reset=int(headers["x-rate-limit-reset"]) if "x-rate-limit-reset" in headers else None,
        )
    except (KeyError, ValueError):
        return None


class _TimeoutAdapter(HTTPAdapter):
    @override
    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
        return super().send(request, *args, **kwargs)


def _client(bearer_token: str | None) -> tweepy.Client:
    # requests.Response as the return type keeps every call's headers readable, and the
    # producer decides itself what to do at a rate limit instead of sleeping in tweepy.
    return tweepy.Client(
        bearer_token=bearer_token, return_type=requests.Response, wait_on_rate_limit=False
    )


def x_api_source(bearer_token: str) -> TweepySearch:
    client = _client(bearer_token)
    client.session.mount("https://", _TimeoutAdapter())
    return TweepySearch(client)


def replay_source(recording: ReplayRecording) -> TweepySearch:
    client = _client(None)
    # Mounted for every URL so that a replaying producer can never reach the network.
    adapter = ReplayAdapter(recording)
    client.session.mount("https://", adapter)
    client.session.mount("http://", adapter)
    return TweepySearch(client)


class SourceFactory:
    """Builds the configured post source for each invocation, reusing what a warm container can."""

    def __init__(
        self,
        settings: ProducerSettings,
        *,
        token_reader: BearerTokenReader | None = None,
        s3: S3Client | None = None,
    ) -> None:
        if settings.post_source == "x-api" and token_reader is None:
            raise ValueError("the x-api source needs a bearer token reader")
        self._settings = settings
        self._token_reader = token_reader
        self._s3 = s3
        self._token: str | None = None
        self._x_source: TweepySearch | None = None

    def source(self) -> PostSource:
        settings = self._settings
        if settings.post_source == "replay":
            # Read on every run, so a recording swapped by the demo tooling takes effect.
            return replay_source(load_recording(settings.replay_uri, self._s3))
        assert self._token_reader is not None
        assert settings.bearer_token_store is not None
        token = self._token_reader.read(settings.bearer_token_store, settings.bearer_token_name)
        if self._x_source is None or token != self._token:
            # A new session per token: connections are reused across warm invocations.
            self._x_source = x_api_source(token)
            self._token = token
        return self._x_source
