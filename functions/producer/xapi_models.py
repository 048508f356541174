"""The parts of an X API v2 recent-search response the producer reads.

X adds fields over time, so these models ignore unknown ones; ids stay strings, as X sends
them, and compare as integers where order matters.

A page is read in two steps (``producer.page``): the envelope (``XPageEnvelope``) first, with
posts and media left as raw JSON, then each post and each media object on its own, so that one
bad item costs that item and not the page.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


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


Utf8Str = Annotated[str, AfterValidator(_utf8)]
PostId = Annotated[str, Field(pattern=r"^[0-9]{1,25}$")]


class _XModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class XHashtag(_XModel):
    tag: Utf8Str


class XEntities(_XModel):
    hashtags: list[XHashtag] = []


class XAttachments(_XModel):
    media_keys: list[Utf8Str] = []


class XPost(_XModel):
    id: PostId
    text: Utf8Str = ""
    attachments: XAttachments | None = None
    entities: XEntities | None = None


class XMedia(_XModel):
    media_key: Utf8Str
    type: Utf8Str
    # Only photos carry ``url``; videos and GIFs have ``preview_image_url`` instead.
    url: Utf8Str | None = None


class XMeta(_XModel):
    result_count: int = 0
    newest_id: PostId | None = None
    oldest_id: PostId | None = None
    next_token: Annotated[Utf8Str, Field(min_length=1, max_length=1024)] | None = None


class XIncludesEnvelope(_XModel):
    media: list[Any] = []


class XPageEnvelope(_XModel):
    """Body of ``GET /2/tweets/search/recent``; ``data`` and ``includes`` are absent when empty."""

    data: list[Any] = []
    includes: XIncludesEnvelope | None = None
    # X sends meta on every page, result_count 0 included. Without it nothing says whether
    # more pages follow, and taking the page for the last one could skip posts for good.
    meta: XMeta
    # Partial errors: X answers 200 and lists resources it could not hydrate (deleted media).
    errors: list[Any] = []
