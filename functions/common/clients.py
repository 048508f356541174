"""boto3 clients made on first use, for the calls only some invocations make.

Each client costs a cold start its service model (JSON read and parsed), its endpoint rules and
its class: 7 to 15 ms of CPU beside the first client's session (measured 2026-12-02). A client
every invocation needs is made at init, where Lambda's init phase pays for it; a client only
some invocations need (the dead-letter queue's, used when a message is rejected or an
execution closed) is made by the first invocation that calls it, and kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from botocore.config import Config

# botocore's standard retry mode sleeps rand(0, 1) x min(2 ** (attempt - 1), 20) s after a failed
# attempt (botocore.retries.standard.ExponentialBackoff): at most 1 s, then 2 s, 4 s ... That is
# the pinned botocore with its "new retries" off (AWS_NEW_RETRIES_2026 unset); on, a throttled
# answer's x-amz-retry-after header adds up to 5 s per retry, which the budgets built on this
# model do not hold (test_the_pinned_botocore_sleeps_no_longer_than_the_model fails first).
_STANDARD_BACKOFF_CAP_SECONDS = 20.0


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


@dataclass(frozen=True)
class CallBounds:
    """How long one call of a client may wait, and how often it is attempted.

    botocore's defaults are 60 s connect and read timeouts and the legacy retry mode (5 attempts,
    10 for DynamoDB, backoff up to ~25 s): a single stalled or throttled call can outlast the
    function's timeout, or the Step Functions task's around it, which the workflow cannot tell
    from a permanent failure. The standard mode retries throttling, 5xx and connection errors,
    and its backoff has a known ceiling.
    """

    connect_timeout: float
    read_timeout: float
    attempts: int

    def config(self) -> Config:
        """The client config that applies these bounds."""
        return Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"mode": "standard", "total_max_attempts": self.attempts},
        )

    def worst_case_seconds(self) -> float:
        """The longest one call can take: every attempt waits out its connect and read
        timeouts, and every retry sleeps its longest backoff.

        A model, not a guarantee: the read timeout bounds each wait on the socket, so a peer
        trickling bytes could take longer; no AWS endpoint does that.
        """
        backoff = sum(
            min(2.0 ** (attempt - 1), _STANDARD_BACKOFF_CAP_SECONDS)
            for attempt in range(1, self.attempts)
        )
        return self.attempts * (self.connect_timeout + self.read_timeout) + backoff
