"""The console's pages, one blueprint each: thin views over ``tweetlens.console.data``."""

from __future__ import annotations

from flask import current_app, request

from tweetlens.console.data import ConsoleData, InvalidRequest

EXTENSION = "tweetlens_console"
MAX_LABEL_CHARS = 100


def console_data() -> ConsoleData:
    data: ConsoleData = current_app.extensions[EXTENSION]
    return data


def text_arg(name: str, max_chars: int = MAX_LABEL_CHARS) -> str | None:
    """A query parameter, stripped; None when empty; too long is a bad request."""
    value = request.args.get(name, "").strip()
    if len(value) > max_chars:
        raise InvalidRequest(f"{name} is longer than {max_chars} characters")
    return value or None
