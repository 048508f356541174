"""A small on-disk cache of the offline deploy steps that give the same answer every time.

Parsing a template (SAM CLI's YAML loader) and SAM's transform take about half a second and
need two heavy imports, yet their result depends only on their inputs: the template's bytes,
or the packaged template, the region, the translator's version and the parameter values the
translator actually read. Each entry is a JSON file named by the SHA-256 of its key; a
missing, unreadable or foreign entry is a miss, and a cache that cannot be written is
skipped, never an error.

Where: ``$TWEETLENS_CACHE_DIR`` if set (empty: no cache), else ``$XDG_CACHE_HOME/tweetlens``
or ``~/.cache/tweetlens``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

CACHE_DIR_ENV = "TWEETLENS_CACHE_DIR"
# Bumped whenever what an entry holds changes meaning.
FORMAT = "1"


def cache_dir() -> Path | None:
    """The cache directory, or None when caching is switched off."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tweetlens"


def digest(*parts: str | bytes) -> str:
    """SHA-256 of the parts, each length-prefixed so that no two splits collide."""
    hasher = hashlib.sha256(FORMAT.encode())
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "big"))
        hasher.update(data)
    return hasher.hexdigest()


def read(kind: str, key: str) -> Any | None:
    """The entry stored under ``kind``/``key``, or None."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        return json.loads((directory / kind / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write(kind: str, key: str, value: Any) -> None:
    """Store ``value`` under ``kind``/``key``, atomically; skipped when it cannot be written or
    would not read back equal (JSON has no integer keys, tuples or dates)."""
    directory = cache_dir()
    if directory is None:
        return
    target = directory / kind / f"{key}.json"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        return
    if json.loads(text) != value:
        # Not JSON all the way down (integer keys, tuples, dates): a hit would differ.
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a reader never sees half an entry, and two writers of the
        # same key both leave a whole one.
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, target)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
