"""The X API v2 recent-search response (``GET /2/tweets/search/recent``), as models.

One set of classes for both sides: the producer reads X's answers with them, and the local
tooling (demo and chaos streams) builds the answers it replays with them, so what is written is
what is read by construction.

Reading is strict on what the producer uses and lenient on the rest:

- fields the producer reads (ids, text, hashtags, media keys, types, URLs, meta) are validated,
  and a string that cannot be encoded as UTF-8 (a lone surrogate escape) is refused here, where
  it enters, because it could not travel in a queue message;
- fields X sends that the producer does not read (``created_at``, ``author_id``, a hashtag's
  ``start``/``end``) are typed for the writers but never a reason to refuse an item: a value of
  another type reads as ``None``;
- unknown fields are ignored (X adds fields over time); ids stay strings, as X sends them.

A page is read in two steps (``producer.page``): the envelope (``XPageEnvelope``) first, with
posts and media left as raw JSON, then each post and media object on its own, so that one bad
item costs that item and not the page. Writers build a whole typed page (``XPostsPage``) and
dump it with ``x_json`` (fields they did not set are left out, as X leaves them out).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

# The media types X documents; the producer publishes photos only, and reads any other type
# (one X may add) as "not a photo" rather than as a bad item.
MediaType = Literal["photo", "video", "animated_gif"]
PHOTO: Final = "photo"


def _utf8(value: str) -> str:
    # JSON may escape a lone surrogate ("\ud800"); Python keeps it, but it cannot be encoded
    # into a queue message, so the item carrying it is refused here, where it enters.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"contains a lone surrogate (U+{ord(value[error.start]):04X}) at {error.start}"
        ) from None
    return value


def _none_if_invalid(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # A field the producer never reads must not cost it a post or a photo.
    try:
        return handler(value)
    except ValidationError:
        return None


Utf8Str = Annotated[str, AfterValidator(_utf8)]
PostId = Annotated[str, Field(pattern=r"^[0-9]{1,25}$")]
# Typed for the writers, never validated against the reader (see the module docstring).
Unread = WrapValidator(_none_if_invalid)


class _XModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def x_json(self) -> dict[str, Any]:
        """The object as X sends it: JSON types, fields left unset or ``None`` absent."""
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=True)


# Field order is the order X writes (and the writers dump) them in.


class XHashtag(_XModel):
    start: Annotated[int | None, Unread] = None
    end: Annotated[int | None, Unread] = None
    tag: Utf8Str


class XEntities(_XModel):
    hashtags: list[XHashtag] = []


class XAttachments(_XModel):
    media_keys: list[Utf8Str] = []


class XPost(_XModel):
    id: PostId
    text: Utf8Str = ""
    created_at: Annotated[str | None, Unread] = None
    author_id: Annotated[str | None, Unread] = None
    entities: XEntities | None = None
    attachments: XAttachments | None = None


class XMedia(_XModel):
    media_key: Utf8Str
    type: Utf8Str
    # Only photos carry ``url``; videos and GIFs have ``preview_image_url`` instead.
    url: Utf8Str | None = None


class XMeta(_XModel):
    # Absent when the page is empty.
    newest_id: PostId | None = None
    oldest_id: PostId | None = None
    result_count: int = 0
    next_token: Annotated[Utf8Str, Field(min_length=1, max_length=1024)] | None = None


class XIncludes[M](_XModel):
    media: list[M] = []


class XPage[P, M](_XModel):
    """The response body; ``data`` and ``includes`` are absent when empty."""

    data: list[P] = []
    includes: XIncludes[M] | None = None
    # X sends meta on every page, result_count 0 included. Without it nothing says whether
    # more pages follow, and taking the page for the last one could skip posts for good.
    meta: XMeta
    # Partial errors: X answers 200 and lists resources it could not hydrate (deleted media).
    errors: list[Any] = []


# What the producer validates first: the envelope, posts and media still raw JSON.
XPageEnvelope = XPage[Any, Any]
# A whole page, typed: what the tooling writes.
XPostsPage = XPage[XPost, XMedia]
XMediaIncludes = XIncludes[XMedia]
