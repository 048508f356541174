"""The replay recording: recorded X API answers, written by the tooling, replayed by the producer.

The producer's replay source (``producer.replay``) serves these pages to tweepy in place of X;
the demo and chaos streams write them. Format::

    {"pages": [{"status": 200, "headers": {"x-rate-limit-limit": "450", ...},
                "body": {"data": [...], "includes": {"media": [...]}, "meta": {...}}}]}

A page may give ``raw_body`` (a string sent byte for byte) instead of ``body``, to replay an
answer that is not JSON at all, such as a body cut off mid-transfer. A ``body`` stays JSON, not
a model: it may hold what X may send and the producer must survive (a lone surrogate escape, a
broken envelope), and it is served escaped, as X sends it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RecordedPage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Annotated[int, Field(ge=100, le=599)]
    headers: dict[str, str] = {}
    body: dict[str, Any] | None = None
    raw_body: str | None = None

    @model_validator(mode="after")
    def _one_body(self) -> RecordedPage:
        if (self.body is None) == (self.raw_body is None):
            raise ValueError("a page needs exactly one of body and raw_body")
        return self

    @property
    def json_body(self) -> dict[str, Any]:
        """The JSON body, or ``{}`` for a raw page (it has no meta to paginate with)."""
        return self.body if self.body is not None else {}


class ReplayRecording(BaseModel):
    """The recording's pages, in the order they are served."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pages: Annotated[list[RecordedPage], Field(min_length=1)]

    def to_json(self) -> str:
        """The recording file's text (absent bodies left out).

        The standard library writes it: it escapes what pydantic's JSON writer refuses (a lone
        surrogate a test recording carries on purpose), as X escapes it.
        """
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2) + "\n"
