"""Reversible attribute patches on moto's in-process internals.

The emulator runs in this process, so its behaviour is changed by replacing attributes; every
replacement is recorded so that stopping the cloud puts moto back exactly as it was.
"""

from __future__ import annotations

import threading
from typing import Any

_MISSING = object()


class PatchSet:
    """A stack of attribute replacements undone in reverse order."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []
        self._lock = threading.Lock()

    def replace(self, owner: Any, name: str, value: Any) -> None:
        with self._lock:
            original = (
                owner.__dict__.get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
            )
            self._undo.append((owner, name, original))
            setattr(owner, name, value)

    def restore(self) -> None:
        with self._lock:
            while self._undo:
                owner, name, original = self._undo.pop()
                if original is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
