"""The producer's environment, validated once at cold start."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.clients import CallBounds
from common.validation import summarize

# Same rule as ``PhotoMessage.route``: a route name that the message contract would reject
# must fail at cold start, not on the first post that matches it.
_ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# X hashtags are letters, digits, marks and underscores; ``\w`` covers them for any script.
_HASHTAG = re.compile(r"^\w{1,139}$")
# The longest recent-search query any X API access level accepts; a longer one can never work.
MAX_QUERY_LENGTH = 4_096
SEARCH_SUFFIX = "has:images -is:retweet"

# Every AWS client of the producer (SQS, the checkpoint table, the token store, a replay bucket).
# The run starts no further page with less than run.TIME_MARGIN_MS (10 s) of its 55 s left, so
# one call started then must end within the margin: AWS_BOUNDS.worst_case_seconds() =
# 3 x (0.5 + 1.5) + 1 + 2 = 9 s. botocore's defaults (60 s timeouts, 5 attempts, 10 for
# DynamoDB, backoff up to ~25 s) let a single stalled call outlast the whole invocation, which
# then ends by its timeout with its checkpoint unwritten. Three attempts ride out a short burst
# of throttling; what still fails is retried by the next minute's run, from the checkpoint.
AWS_CONNECT_TIMEOUT_SECONDS = 0.5
AWS_READ_TIMEOUT_SECONDS = 1.5
AWS_ATTEMPTS = 3
AWS_BOUNDS = CallBounds(
    connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
    read_timeout=AWS_READ_TIMEOUT_SECONDS,
    attempts=AWS_ATTEMPTS,
)
AWS_CONFIG: Config = AWS_BOUNDS.config()


class InvalidSettings(Exception):
    """The producer's environment variables are missing or malformed."""


class ProducerSettings(BaseModel):
    """Environment variables of ProducerFunction (docs/architecture.md)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    hashtag_routes: Annotated[dict[str, tuple[str, ...]], Field(alias="HASHTAG_ROUTES")]
    route_queue_urls: Annotated[dict[str, str], Field(alias="ROUTE_QUEUE_URLS")]
    checkpoints_table: Annotated[str, Field(alias="CHECKPOINTS_TABLE", min_length=3)]
    # Where what cannot be read or sent goes, with the data to replay it (producer.letters).
    producer_dlq_url: Annotated[
        str, Field(alias="PRODUCER_DLQ_URL", pattern=r"^https?://[^\s/]+/\S+$")
    ]
    post_source: Annotated[Literal["x-api", "replay"], Field(alias="POST_SOURCE")] = "x-api"
    replay_uri: Annotated[str, Field(alias="REPLAY_URI")] = ""
    bearer_token_store: Annotated[
        Literal["secretsmanager", "ssm"] | None, Field(alias="BEARER_TOKEN_STORE")
    ] = None
    bearer_token_name: Annotated[str, Field(alias="BEARER_TOKEN_NAME")] = ""
    max_results_per_page: Annotated[int, Field(alias="MAX_RESULTS_PER_PAGE", ge=10, le=100)]

    @field_validator("hashtag_routes", mode="before")
    @classmethod
    def _parse_routes(cls, raw: Any) -> dict[str, tuple[str, ...]]:
        routes = _json_object(raw)
        if not routes:
            raise ValueError("must name at least one route")
        parsed: dict[str, tuple[str, ...]] = {}
        for route, tags in routes.items():
            if not _ROUTE_NAME.match(route):
                raise ValueError(f"route {route!r} must match {_ROUTE_NAME.pattern}")
            if not isinstance(tags, str):
                raise ValueError(f"route {route!r} must map to a comma-separated string")
            # Hashtags match case-insensitively on X, so routing compares lower-case forms.
            cleaned = [tag.strip().removeprefix("#").lower() for tag in tags.split(",")]
            cleaned = [tag for tag in cleaned if tag]
            if not cleaned:
                raise ValueError(f"route {route!r} has no hashtags")
            for tag in cleaned:
                if not _HASHTAG.match(tag):
                    raise ValueError(f"route {route!r} has an invalid hashtag {tag!r}")
            parsed[route] = tuple(dict.fromkeys(cleaned))
        return parsed

    @field_validator("route_queue_urls", mode="before")
    @classmethod
    def _parse_queue_urls(cls, raw: Any) -> dict[str, str]:
        urls = _json_object(raw)
        for route, url in urls.items():
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise ValueError(f"queue url of route {route!r} must be an http(s) URL")
        return urls

    @model_validator(mode="after")
    def _consistent(self) -> ProducerSettings:
        if set(self.hashtag_routes) != set(self.route_queue_urls):
            raise ValueError(
                "HASHTAG_ROUTES and ROUTE_QUEUE_URLS must name the same routes, got "
                f"{sorted(self.hashtag_routes)} and {sorted(self.route_queue_urls)}"
            )
        if self.post_source == "replay" and not self.replay_uri:
            raise ValueError("REPLAY_URI is required when POST_SOURCE is replay")
        if self.post_source == "x-api" and (
            self.bearer_token_store is None or not self.bearer_token_name
        ):
            raise ValueError(
                "BEARER_TOKEN_STORE and BEARER_TOKEN_NAME are required when POST_SOURCE is x-api"
            )
        if len(self.search_query) > MAX_QUERY_LENGTH:
            raise ValueError(
                f"HASHTAG_ROUTES makes a search query of {len(self.search_query)} characters, "
                f"more than the {MAX_QUERY_LENGTH} X accepts"
            )
        return self

    @property
    def search_query(self) -> str:
        """The recent-search query covering every configured hashtag, in configuration order."""
        tags = dict.fromkeys(tag for tags in self.hashtag_routes.values() for tag in tags)
        return "(" + " OR ".join(f"#{tag}" for tag in tags) + ") " + SEARCH_SUFFIX

    @property
    def checkpoint_id(self) -> str:
        """Checkpoint key: a changed hashtag set is a new search and starts a new checkpoint."""
        digest = hashlib.sha256(self.search_query.encode("utf-8")).hexdigest()
        return f"search#{digest[:16]}"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProducerSettings:
        """Validate the environment, naming every bad variable in one readable error."""
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as error:
            problems = summarize(error, root="configuration", part_chars=None)
            raise InvalidSettings(f"invalid producer environment: {problems}") from None


def _json_object(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        raise ValueError("must be a JSON object")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"is not valid JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value
