"""Validation errors in words: where and what, never the values (they are X's data)."""

from __future__ import annotations

from pydantic import ValidationError

from common.validation import summarize

# Enough for every problem of one item; a page-sized list of problems is cut here.
MAX_PROBLEMS_CHARS = 1_024


def describe(error: ValidationError, root: str) -> str:
    """``loc: msg; loc: msg``, with ``root`` naming the top level, at most 1 KiB."""
    return shorten(summarize(error, root=root))


def shorten(text: str, limit: int = MAX_PROBLEMS_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
