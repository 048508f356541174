"""boto3 clients made on first use, for the calls only some invocations make.

Each client costs a cold start its service model (JSON read and parsed), its endpoint rules and
its class: 7 to 15 ms of CPU beside the first client's session (measured 2026-12-02). A client
every invocation needs is made at init, where Lambda's init phase pays for it; a client only
some invocations need (the dead-letter queue's, used when a message is rejected or an
execution closed) is made by the first invocation that calls it, and kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast


class _FirstUse:
    """Stands in for the client ``make`` returns, and makes it when an attribute is first read.

    Lambda runs one invocation at a time per execution environment, so the client is made once.
    """

    def __init__(self, make: Callable[[], object]) -> None:
        self._make = make
        self._client: object | None = None

    @property
    def made(self) -> bool:
        """Whether the client exists yet (the cold-start tests read it)."""
        return self._client is not None

    def __getattr__(self, name: str) -> Any:
        # Only attributes this object lacks land here: everything the client offers, and this
        # object's own two while an instance is rebuilt without __init__ (copy, pickle).
        if name in {"_make", "_client"}:
            raise AttributeError(name)
        if self._client is None:
            self._client = self._make()
        return getattr(self._client, name)


def on_first_use[Client](make: Callable[[], Client]) -> Client:
    """A stand-in for ``make()`` (a boto3 client) that calls ``make`` when first used.

    Typed as the client itself: callers use it exactly as the client, attribute by attribute.
    """
    return cast(Client, _FirstUse(make))


def made(client: object) -> bool:
    """Whether ``client`` exists: False only for a stand-in of ``on_first_use`` never used."""
    return not isinstance(client, _FirstUse) or client.made
