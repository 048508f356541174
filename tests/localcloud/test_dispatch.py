"""moto's dispatcher with remembered host lookups, and its action lookup by name, answer exactly
as moto's own."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import boto3
import moto.core.responses as moto_responses
import pytest
from moto import mock_aws
from moto.awslambda.responses import LambdaResponse
from moto.core.utils import method_names_from_class
from moto.dynamodb.responses import DynamoHandler
from moto.logs.responses import LogsResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.rekognition.responses import RekognitionResponse
from moto.s3.responses import S3Response
from moto.sqs.responses import SQSResponse
from moto.stepfunctions.responses import StepFunctionResponse

from tweetlens.localcloud._patching import PatchSet
from tweetlens.localcloud.dispatch import (
    BackendLookupCache,
    FunctionNames,
    install_action_lookup,
    install_backend_lookup_cache,
)

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


def _response_classes() -> list[type]:
    """The response classes of the services the local cloud serves."""
    return [
        LambdaResponse,
        DynamoHandler,
        LogsResponse,
        RekognitionResponse,
        S3Response,
        SQSResponse,
        StepFunctionResponse,
    ]


def test_function_names_answer_as_moto_lists_them_for_every_name() -> None:
    # GIVEN the response classes, every name moto lists for them and every other name they
    # have (properties, class methods, attributes), plus names none of them has
    for clazz in _response_classes():
        listed = method_names_from_class(clazz)
        names = set(dir(clazz)) | {"receive_message", "no_such_action", "", "__init__"}
        # WHEN each name is tested against the class
        answers = {name: name in FunctionNames(clazz) for name in names}
        # THEN the answer is exactly whether moto lists it
        assert {name for name, found in answers.items() if found} == set(listed) & names
        assert len(listed) > 20


def test_function_names_see_a_method_added_and_removed_later() -> None:
    # GIVEN a response class without the method, and the names of that class
    names = FunctionNames(StepFunctionResponse)
    assert "tweetlens_probe_action" not in names
    patches = PatchSet()
    # WHEN a patch adds the method / THEN it is found; WHEN restored / THEN it is gone
    patches.replace(StepFunctionResponse, "tweetlens_probe_action", lambda self: "{}")
    try:
        assert "tweetlens_probe_action" in names
    finally:
        patches.restore()
    assert "tweetlens_probe_action" not in names


def test_call_action_serves_known_actions_and_refuses_unknown_ones_without_listing_members(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN moto in-process with the action lookup installed, and inspect.getmembers counted
    listings: list[object] = []
    getmembers = inspect.getmembers

    def counted(obj: object, predicate: Any = None) -> Any:
        listings.append(obj)
        return getmembers(obj, predicate)

    monkeypatch.setattr(inspect, "getmembers", counted)
    patches = PatchSet()
    install_action_lookup(patches)
    try:
        with mock_aws():
            sqs = boto3.client("sqs", region_name="us-east-1")
            # WHEN an action the handler has is called / THEN it is served, and moto listed no
            # class's members to find it
            url = sqs.create_queue(QueueName="probe")["QueueUrl"]
            assert sqs.list_queues()["QueueUrls"] == [url]
            assert SQSResponse not in listings
            # WHEN an action the handler lacks is called / THEN moto refuses it as before
            with pytest.raises(
                NotImplementedError,
                match=r"^The start_message_move_task action has not been implemented$",
            ):
                sqs.start_message_move_task(SourceArn="arn:aws:sqs:us-east-1:123456789012:x")
    finally:
        patches.restore()
    assert moto_responses.method_names_from_class is method_names_from_class
