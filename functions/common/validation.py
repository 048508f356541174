"""One way to say why input failed validation: ``loc: msg; loc: msg``, without input values.

Input values stay out because they may be attacker-controlled post text or a whole event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import ValidationError

# Keys of an unknown field end up in the summary: keep each short.
MAX_LOCATION_PART_CHARS = 64


def summarize(
    error: ValidationError,
    *,
    root: str = "input",
    names: Mapping[str, str] | None = None,
    part_chars: int | None = MAX_LOCATION_PART_CHARS,
) -> str:
    """Every problem of ``error`` as ``location: message``, joined by ``; ``.

    ``names`` renames a top-level field as its reader knows it (a setting's environment
    variable, say); ``part_chars=None`` keeps whole keys, for input the operator wrote
    (settings), where a cut key would hide which entry is wrong.
    """
    return "; ".join(
        f"{location(issue['loc'], root=root, names=names, part_chars=part_chars)}: {issue['msg']}"
        for issue in error.errors(include_url=False, include_input=False)
    )


def location(
    loc: Iterable[int | str],
    *,
    root: str = "input",
    names: Mapping[str, str] | None = None,
    part_chars: int | None = MAX_LOCATION_PART_CHARS,
) -> str:
    """A pydantic error location as a dotted path; ``root`` for the whole input."""
    parts = [str(part)[:part_chars] for part in loc]
    if parts and names:
        parts[0] = names.get(parts[0], parts[0])
    return ".".join(parts) if parts else root
