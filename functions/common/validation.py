"""One way to say why input failed validation: ``loc: msg; loc: msg``, without input values.

Input values stay out because they may be attacker-controlled post text or a whole event.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

# Keys of an unknown field end up in the summary: keep each short.
MAX_LOCATION_PART_CHARS = 64


def summarize(error: ValidationError, *, root: str = "input") -> str:
    """Every problem of ``error`` as ``location: message``, joined by ``; ``."""
    return "; ".join(
        f"{location(issue['loc'], root=root)}: {issue['msg']}"
        for issue in error.errors(include_url=False, include_input=False)
    )


def location(loc: Iterable[int | str], *, root: str = "input") -> str:
    """A pydantic error location as a dotted path; ``root`` for the whole input."""
    parts = [str(part)[:MAX_LOCATION_PART_CHARS] for part in loc]
    return ".".join(parts) if parts else root
