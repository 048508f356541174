"""The parts of an X API v2 recent-search response the producer reads.

X adds fields over time, so these models ignore unknown ones; ids stay strings, as X sends
them, and compare as integers where order matters.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class _XModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class XHashtag(_XModel):
    tag: str


class XEntities(_XModel):
    hashtags: list[XHashtag] = []


class XAttachments(_XModel):
    media_keys: list[str] = []


class XPost(_XModel):
    id: Annotated[str, Field(pattern=r"^[0-9]{1,25}$")]
    text: str = ""
    attachments: XAttachments | None = None
    entities: XEntities | None = None


class XMedia(_XModel):
    media_key: str
    type: str
    # Only photos carry ``url``; videos and GIFs have ``preview_image_url`` instead.
    url: str | None = None


class XIncludes(_XModel):
    media: list[XMedia] = []


class XMeta(_XModel):
    result_count: int = 0
    newest_id: str | None = None
    oldest_id: str | None = None
    next_token: str | None = None


class XSearchResponse(_XModel):
    """Body of ``GET /2/tweets/search/recent``; ``data`` and ``includes`` are absent when empty."""

    data: list[XPost] = []
    includes: XIncludes | None = None
    # X sends meta on every page, result_count 0 included. Without it nothing says whether
    # more pages follow, and taking the page for the last one could skip posts for good.
    meta: XMeta
    # Partial errors: X answers 200 and lists resources it could not hydrate (deleted media).
    errors: list[dict[str, Any]] = []
