"""``common.clients.on_first_use``: a client made by the first invocation that uses it."""

from __future__ import annotations

import copy
from types import SimpleNamespace

from common.clients import made, on_first_use


class Factory:
    """Makes a stand-in client and counts how often it was asked to."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> SimpleNamespace:
        self.calls += 1
        return SimpleNamespace(send_message=lambda **kwargs: ("sent", kwargs), number=self.calls)


def test_nothing_is_made_until_an_attribute_is_read() -> None:
    # GIVEN a client wrapped for first use
    factory = Factory()

    # WHEN it is only created and passed around
    client = on_first_use(factory)

    # THEN the factory was never called
    assert (factory.calls, made(client)) == (0, False)


def test_the_first_use_makes_the_client_once_and_every_use_reaches_it() -> None:
    # GIVEN a client wrapped for first use
    factory = Factory()
    client = on_first_use(factory)

    # WHEN two calls go through it
    first = client.send_message(QueueUrl="q", MessageBody="a")
    second = client.send_message(QueueUrl="q", MessageBody="b")

    # THEN both reached the one client made by the first
    assert first == ("sent", {"QueueUrl": "q", "MessageBody": "a"})
    assert second == ("sent", {"QueueUrl": "q", "MessageBody": "b"})
    assert (factory.calls, client.number, made(client)) == (1, 1, True)


def test_a_client_made_at_init_counts_as_made() -> None:
    # GIVEN an ordinary client object
    # WHEN asked whether it exists THEN it does
    assert made(SimpleNamespace()) is True


def test_a_copy_of_an_unused_stand_in_makes_no_client() -> None:
    # GIVEN a client wrapped for first use, never used
    factory = Factory()
    client = on_first_use(factory)

    # WHEN it is copied (an instance rebuilt without __init__)
    copied = copy.copy(client)

    # THEN the copy is a stand-in too and nothing was made
    assert (factory.calls, made(copied)) == (0, False)
