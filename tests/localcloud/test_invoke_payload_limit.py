"""Lambda's synchronous Invoke payload quota (6 MB), as the local cloud answers it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tweetlens.localcloud import LocalCloud
from tweetlens.localcloud.errors import PayloadTooLargeError

pytestmark = pytest.mark.integration

# Lambda's documented quota: 6 MB, 6 x 1024 x 1024 bytes.
LIMIT = 6_291_456


def compact(event: object) -> bytes:
    """The fewest bytes a client sends for ``event``: UTF-8 JSON without spaces."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event_of_size(size: int) -> dict[str, str]:
    """An event whose compact JSON is exactly ``size`` bytes (a key the inspector does not
    print)."""
    frame = len(compact({"padding": ""}))
    return {"padding": "x" * (size - frame)}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(SAMPLE_TEMPLATE, run_schedules=False, run_pollers=False) as local_cloud:
        yield local_cloud


def test_invoke_over_six_megabytes_is_refused_before_the_function_runs(cloud: LocalCloud) -> None:
    # GIVEN an event of exactly the limit and one a byte over it
    at_limit = compact(event_of_size(LIMIT))
    over = compact(event_of_size(LIMIT + 1))
    assert (len(at_limit), len(over)) == (LIMIT, LIMIT + 1)
    client = cloud.client("lambda")
    function = cloud.resources["InspectorFunction"]
    before = len(cloud.invocations())

    # WHEN each is sent to Lambda's Invoke API, and the larger one to the in-process invoke
    answered = client.invoke(FunctionName=function, Payload=at_limit)
    with pytest.raises(ClientError) as refused:
        client.invoke(FunctionName=function, Payload=over)
    with pytest.raises(PayloadTooLargeError) as raised:
        cloud.invoke("InspectorFunction", event_of_size(LIMIT + 1))

    # THEN the one at the limit ran; the one over it is refused as Lambda refuses it (HTTP 413,
    # RequestEntityTooLargeException, its size and the limit in the message) and never ran
    assert "FunctionError" not in answered
    assert json.loads(answered["Payload"].read())["function_name"] == function
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["Error"]["Message"] == (
        "6291457 byte payload is too large for the RequestResponse invocation type "
        "(limit 6291456 bytes)"
    )
    assert str(raised.value) == f"RequestEntityTooLargeException: {error['Error']['Message']}"
    assert len(cloud.invocations()) == before + 1


def test_in_process_invoke_measures_the_event_as_its_fewest_bytes(cloud: LocalCloud) -> None:
    # GIVEN an event at the limit in compact UTF-8 JSON, made of characters that
    # json.dumps's defaults would escape (6 bytes each) and pad with spaces: re-encoded that
    # way it would be far over 6 MB, sent as a client sends it, it is not
    frame = len(compact({"padding": ""}))
    event = {"padding": "\u00e9" * ((LIMIT - frame) // 2)}
    assert len(compact(event)) == LIMIT
    assert len(json.dumps(event).encode()) > 2 * LIMIT
    before = len(cloud.invocations())

    # WHEN it is invoked in process
    result = cloud.invoke("InspectorFunction", event)

    # THEN the function ran: nothing Lambda would take is refused
    assert result.ok is True
    assert len(cloud.invocations()) == before + 1


def test_an_event_holding_a_lone_surrogate_is_measured_and_run(cloud: LocalCloud) -> None:
    # GIVEN an event whose file held "\ud800": valid JSON, a str no UTF-8 codec encodes strictly
    event = json.loads('{"padding": "\\ud800"}')
    before = len(cloud.invocations())

    # WHEN it is invoked in process
    result = cloud.invoke("InspectorFunction", event)

    # THEN it is measured without a UnicodeEncodeError and the function ran
    assert result.ok is True
    assert len(cloud.invocations()) == before + 1
