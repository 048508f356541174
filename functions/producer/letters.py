"""Producer dead letters: what could not be read or sent, with the data to replay it.

One letter is one SQS message on ProducerDeadLetterQueue, a JSON object whose ``kind`` says
what was set aside (docs/architecture.md, "Producer dead letter"):

* ``page``: a 200 answer that is not a readable page, with the body as received;
* ``post``: one post that failed validation, with its JSON as X sent it;
* ``photo``: one photo of a post that cannot be published on one route, with the post's and
  the media object's JSON (or the message SQS refused, with SQS's error code);
* ``range``: posts never read because an unreadable page was given up on, as the id range a
  recent search with ``since_id`` / ``until_id`` can read again within X's 7 days.

Bodies are ASCII JSON: a lone surrogate or a character SQS refuses is escaped, so any data that
reached the producer fits in a letter. ``raw`` is cut to keep a letter under SQS's 256 KiB;
``raw_truncated`` then says so, and ``raw`` is the start of its JSON text.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from producer.extract import PhotoError

# SQS takes 262,144 bytes per message; the rest is headroom for the fields around ``raw``.
MAX_LETTER_BYTES = 250_000
Reason = Annotated[str, Field(max_length=1_024)]
OptionalId = Annotated[str, Field(max_length=100)] | None
PhotoLetterError = PhotoError | Literal["RejectedBySqs"]


class _Letter(BaseModel):
    # Letters are written only when something could not be published: pydantic builds each
    # kind's validator when the first letter of that kind is made, not at every cold start
    # (defer_build, inherited by every kind; README, Cold start).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    reason: Reason
    # The recent-search query that returned the data.
    query: str
    raw: Any = None
    raw_truncated: bool = False


class PageLetter(_Letter):
    """A 200 answer that is not a readable page. Re-request it with ``pagination_token``."""

    kind: Literal["page"] = "page"
    error: Literal["UnreadablePage"] = "UnreadablePage"
    raw: str
    since_id: OptionalId
    # The token the page was requested with; None for the first page of a search.
    pagination_token: str | None
    # The oldest post read before this page (its posts are older); None on a first page.
    until_id: OptionalId
    # Where the run went on from, when the page's meta could still be read.
    next_token: str | None
    # How many runs in a row found this page unreadable.
    strike: Annotated[int, Field(ge=1)]


class PostLetter(_Letter):
    """One post that failed validation; the rest of its page was published."""

    kind: Literal["post"] = "post"
    error: Literal["InvalidPost"] = "InvalidPost"
    post_id: OptionalId


class PhotoLetter(_Letter):
    """One photo of one post that cannot be published on ``route``."""

    kind: Literal["photo"] = "photo"
    error: PhotoLetterError
    post_id: str
    media_key: str
    route: str
    # SQS's error code, for a message SendMessageBatch refused as the sender's fault.
    sqs_error_code: str | None = None


class RangeLetter(_Letter):
    """Posts with ``since_id`` < id < ``until_id`` were never read: an unreadable page without a
    next token was given up on, and the search closed at ``newest_id``."""

    kind: Literal["range"] = "range"
    error: Literal["PaginationAbandoned"] = "PaginationAbandoned"
    since_id: OptionalId
    until_id: str
    newest_id: str
    pagination_token: str


ProducerLetter = Annotated[
    PageLetter | PostLetter | PhotoLetter | RangeLetter, Field(discriminator="kind")
]


def encode_letter(letter: PageLetter | PostLetter | PhotoLetter | RangeLetter) -> str:
    """The letter's SQS body: ASCII JSON of at most ``MAX_LETTER_BYTES``, ``raw`` cut to fit."""
    body = _dumps(letter.model_dump(mode="json"))
    if len(body) <= MAX_LETTER_BYTES:
        return body
    text = letter.raw if isinstance(letter.raw, str) else _dumps(letter.raw)
    empty = letter.model_copy(update={"raw": "", "raw_truncated": True})
    budget = MAX_LETTER_BYTES - len(_dumps(empty.model_dump(mode="json")))
    cut = letter.model_copy(update={"raw": _cut(text, budget), "raw_truncated": True})
    return _dumps(cut.model_dump(mode="json"))


def _dumps(value: Any) -> str:
    # ensure_ascii: one byte per character, and nothing SQS or UTF-8 could refuse.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def _cut(text: str, budget: int) -> str:
    """A start of ``text`` whose JSON string (quotes included) fits ``budget`` bytes."""
    length = min(len(text), budget)
    while length > 0:
        encoded = len(_dumps(text[:length]))
        if encoded <= budget:
            return text[:length]
        # Escapes make characters cost up to 6 bytes: shrink in proportion, at least by one.
        length = min(length - 1, length * budget // encoded)
    return ""
