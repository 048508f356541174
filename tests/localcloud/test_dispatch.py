"""moto's dispatcher with remembered host lookups answers exactly as moto's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.dispatch import BackendLookupCache, install_backend_lookup_cache

HOSTS = [
    "sqs.us-east-1.amazonaws.com",
    "dynamodb",
    "states.us-east-1.amazonaws.com",
    "lambda.us-east-1.amazonaws.com",
    "s3.us-east-1.amazonaws.com",
    "bucket.s3.us-east-1.amazonaws.com",
    "moto_api",
    "sqs",
    None,
    "nothing.example.org",
]


@pytest.fixture
def patched() -> Iterator[tuple[DomainDispatcherApplication, BackendLookupCache]]:
    patches = PatchSet()
    cache = install_backend_lookup_cache(patches)
    try:
        yield DomainDispatcherApplication(create_backend_app), cache
    finally:
        patches.restore()


def test_every_host_gets_the_backend_moto_would_give(
    patched: tuple[DomainDispatcherApplication, BackendLookupCache],
) -> None:
    # GIVEN moto's answers before the cache is installed
    dispatcher, _ = patched
    original = BackendLookupCache()._original
    expected = [original(dispatcher, host) for host in HOSTS]
    # WHEN the patched dispatcher is asked twice for each host
    first = [dispatcher.get_backend_for_host(host) for host in HOSTS]
    second = [dispatcher.get_backend_for_host(host) for host in HOSTS]
    # THEN both rounds answer as moto does, unknown hosts included (None)
    assert first == expected
    assert second == expected
    assert expected[:4] == ["sqs", "dynamodb", "stepfunctions", "awslambda"]
    assert expected[-2:] == [None, None]


def test_moto_is_asked_once_per_host(
    patched: tuple[DomainDispatcherApplication, BackendLookupCache],
) -> None:
    # GIVEN the patched dispatcher
    dispatcher, cache = patched
    # WHEN the same three hosts are looked up a hundred times each
    for _ in range(100):
        for host in HOSTS[:3]:
            dispatcher.get_backend_for_host(host)
    # THEN moto's own lookup ran once for each
    assert cache.misses == 3


def test_restoring_the_patches_gives_moto_its_lookup_back() -> None:
    # GIVEN the cache installed
    original = DomainDispatcherApplication.get_backend_for_host
    patches = PatchSet()
    install_backend_lookup_cache(patches)
    assert DomainDispatcherApplication.get_backend_for_host is not original
    # WHEN the patches are restored / THEN moto's method is back
    patches.restore()
    assert DomainDispatcherApplication.get_backend_for_host is original
