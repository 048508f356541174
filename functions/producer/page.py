"""One recent-search page, read item by item: what can be used, and what is poison.

The body is parsed with the standard library, which keeps a lone surrogate escape as it is
instead of refusing the whole document, and the envelope (``data``, ``includes``, ``meta``) is
checked before any post or media object. Each post and each media object is then validated on
its own, so a bad one is set aside with its raw JSON and the reason, and the rest of the page
goes on.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from producer.validation import describe, shorten
from tweetlens_xapi.models import XMedia, XMeta, XPageEnvelope, XPost

# A key read from a rejected item only labels the dead letter; longer ones are not X's.
MAX_KEY_CHARS = 100


class RejectedItem(BaseModel):
    """A post or media object that failed validation, kept as X sent it."""

    model_config = ConfigDict(frozen=True)

    raw: Any
    # The post id or media key, when the item carries one that can be read.
    key: str | None
    error: str


class SearchPage(BaseModel):
    """A page whose envelope is sound: its valid items, and the rejected ones."""

    model_config = ConfigDict(frozen=True)

    meta: XMeta
    posts: tuple[XPost, ...] = ()
    rejected_posts: tuple[RejectedItem, ...] = ()
    media: dict[str, XMedia] = {}
    rejected_media: tuple[RejectedItem, ...] = ()
    # The JSON of each valid post and media object, by id and key, for dead letters.
    raw_posts: dict[str, Any] = {}
    raw_media: dict[str, Any] = {}
    # Partial errors: X lists here the media it could not hydrate (deleted or withheld).
    errors: tuple[Any, ...] = ()

    @property
    def post_count(self) -> int:
        return len(self.posts) + len(self.rejected_posts)


class UnreadablePage(BaseModel):
    """A 200 answer that is not a page: not JSON, not an object, or a broken envelope."""

    # Only a broken answer makes one: its validator is built then, not at every cold start
    # (README, Cold start).
    model_config = ConfigDict(frozen=True, defer_build=True)

    # The body as received, decoded as UTF-8 (bytes that are not UTF-8 are replaced).
    body: str
    error: str
    # Read on its own when the rest of the envelope is broken: it may still say where the
    # next page is.
    meta: XMeta | None = None


def read_page(content: bytes) -> SearchPage | UnreadablePage:
    """Read a response body; never raises on bad content."""
    text = content.decode("utf-8", errors="replace")
    try:
        body = json.loads(content, parse_constant=_refuse_constant)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        return UnreadablePage(body=text, error=shorten(f"body: Invalid JSON: {error}"))
    if not isinstance(body, dict):
        return UnreadablePage(
            body=text, error=f"body: expected a JSON object, got {type(body).__name__}"
        )
    return read_page_object(body, text)


def read_page_object(body: dict[str, Any], text: str | None = None) -> SearchPage | UnreadablePage:
    """Read a parsed body (``text`` is the body as received, kept for a dead letter)."""
    try:
        envelope = XPageEnvelope.model_validate(body)
    except ValidationError as error:
        raw = text if text is not None else json.dumps(body, ensure_ascii=False)
        return UnreadablePage(body=raw, error=describe(error, "body"), meta=_meta_alone(body))
    posts, rejected_posts, raw_posts = _validate_items(envelope.data, XPost, "id")
    media_items = envelope.includes.media if envelope.includes else []
    media, rejected_media, raw_media = _validate_items(media_items, XMedia, "media_key")
    return SearchPage(
        meta=envelope.meta,
        posts=tuple(posts),
        rejected_posts=tuple(rejected_posts),
        media={item.media_key: item for item in media},
        rejected_media=tuple(rejected_media),
        raw_posts={post.id: raw_posts[index] for index, post in enumerate(posts)},
        raw_media={item.media_key: raw_media[index] for index, item in enumerate(media)},
        errors=tuple(envelope.errors),
    )


def _validate_items[M: (XPost, XMedia)](
    items: list[Any], model: type[M], key_field: str
) -> tuple[list[M], list[RejectedItem], list[Any]]:
    valid: list[M] = []
    raw_valid: list[Any] = []
    rejected: list[RejectedItem] = []
    for raw in items:
        try:
            valid.append(model.model_validate(raw))
        except ValidationError as error:
            rejected.append(
                RejectedItem(
                    raw=raw, key=_readable_key(raw, key_field), error=describe(error, "item")
                )
            )
            continue
        raw_valid.append(raw)
    return valid, rejected, raw_valid


def _readable_key(raw: Any, field: str) -> str | None:
    value = raw.get(field) if isinstance(raw, dict) else None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_KEY_CHARS:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _meta_alone(body: dict[str, Any]) -> XMeta | None:
    try:
        return XMeta.model_validate(body.get("meta"))
    except ValidationError:
        return None


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; X never sends them, and they could not be dead-lettered.
    raise ValueError(f"{name} is not allowed in JSON")
