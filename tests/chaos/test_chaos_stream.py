"""The seeded chaos stream and the settlement of messages: pure functions, no network."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from requests import Request

from common.messages import execution_name
from producer.page import SearchPage, UnreadablePage, read_page
from producer.replay import ReplayAdapter
from tests.settlement_kit import REJECTED_BODY, rejection_letter
from tweetlens.accounting import ExecutionOutcome, RecordOutcome, classifier_outcomes
from tweetlens.chaos import (
    ABORT_ERROR,
    EXECUTION_TIMEOUT_ERROR,
    HOST_FAULTS,
    INVALID_IMAGE_ERROR,
    ChaosConfig,
    build_chaos_stream,
    expected_message_keys,
    settle,
)
from tweetlens.chaos.invariants import producer_letters
from tweetlens.demo_stream import FLAKY_PHOTO, PHOTO_LABELS, build_recording, expected_outcome
from tweetlens.dlq import PRODUCER_DLQ, WORKFLOW_DLQ, DeadLetter
from tweetlens_xapi.recording import ReplayRecording

BASE_URL = "https://localhost:8443"
URL = f"{BASE_URL}/media/chelsea.jpg"


def _body(post_id: str, url: str = URL) -> dict[str, object]:
    return {
        "url": url,
        "post_id": post_id,
        "media_key": f"3_{post_id}",
        "text": "my #cat",
        "hashtags": ["cat"],
        "route": "cats",
        "attempt": 0,
    }


def _name(url: str = URL) -> str:
    return execution_name(url, 1)


def _execution(status: str, url: str = URL) -> ExecutionOutcome:
    return _execution_named(_name(url), status, url)


def _execution_named(name: str, status: str, url: str = URL) -> ExecutionOutcome:
    return ExecutionOutcome(
        arn=f"arn:aws:states:us-east-1:123456789012:execution:sm:{name}",
        name=name,
        route="cats",
        url=url,
        status=status,
    )


def test_same_seed_gives_the_same_stream(small_config: ChaosConfig) -> None:
    # GIVEN one configuration
    # WHEN the stream is built twice
    first = build_chaos_stream(BASE_URL, small_config)
    second = build_chaos_stream(BASE_URL, small_config)
    # THEN the recordings are identical, and another seed gives another one
    assert first.recording.to_json() == second.recording.to_json()
    other = build_chaos_stream(BASE_URL, small_config.model_copy(update={"seed": 12}))
    assert other.recording.to_json() != first.recording.to_json()


def test_small_stream_carries_every_fault(small_config: ChaosConfig) -> None:
    # GIVEN the smallest stream the pytest run uses
    stream = build_chaos_stream(BASE_URL, small_config)
    # WHEN its URLs are sorted by fault
    paths = {urlsplit(url).path for url in stream.expected}
    # THEN every image-host fault, the timeout, the slow body, the 503 and a bad image are in it
    assert {f"/faults/{fault}" for fault in HOST_FAULTS} <= paths
    assert "/faults/slow" in paths
    assert "/faults/trickle-3000" in paths
    assert any(path.startswith("/faults/unavailable-chaos11n") for path in paths)
    assert stream.invalid_urls
    assert {stream.expected[url] for url in stream.invalid_urls} == {INVALID_IMAGE_ERROR}
    assert set(stream.expected.values()) == {
        "DONE",
        INVALID_IMAGE_ERROR,
        ABORT_ERROR,
        EXECUTION_TIMEOUT_ERROR,
        *HOST_FAULTS.values(),
    }
    # AND one execution of it is aborted, one timed out, each on a URL of its own
    assert (len(stream.aborted_urls), len(stream.timed_out_urls)) == (1, 1)
    assert {stream.expected[url] for url in stream.aborted_urls} == {ABORT_ERROR}
    assert {stream.expected[url] for url in stream.timed_out_urls} == {EXECUTION_TIMEOUT_ERROR}
    # AND a held URL's other designed end, DONE on its next attempt, has the labels to check
    for url in stream.aborted_urls + stream.timed_out_urls:
        assert stream.labels[url] == list(PHOTO_LABELS[FLAKY_PHOTO])


def _served_pages(recording_json: str) -> list[bytes]:
    """Every page in the order the producer's replay serves them, following next_token."""
    adapter = ReplayAdapter(ReplayRecording.model_validate_json(recording_json))
    url = "https://api.x.com/2/tweets/search/recent?query=cat"
    bodies: list[bytes] = []
    token: str | None = None
    while True:
        params = {"query": "cat", **({"next_token": token} if token else {})}
        prepared = Request("GET", url.split("?", maxsplit=1)[0], params=params).prepare()
        response = adapter.send(prepared)
        assert response.status_code == 200
        bodies.append(response.content)
        token = json.loads(response.content)["meta"].get("next_token")
        if token is None:
            return bodies


def test_poison_page_is_served_between_pages_and_read_as_unreadable(
    small_config: ChaosConfig,
) -> None:
    # GIVEN a stream of two pages of 25 posts with one poison page
    config = small_config.model_copy(update={"posts": 50, "poison_pages": 1})
    stream = build_chaos_stream(BASE_URL, config)
    # WHEN the producer's replay serves its recording and the producer reads each page
    read = [read_page(body) for body in _served_pages(stream.recording_json())]
    # THEN the poison page comes after the first page, unreadable but with a readable meta
    assert [type(page).__name__ for page in read] == ["SearchPage", "UnreadablePage", "SearchPage"]
    poison = read[1]
    assert isinstance(poison, UnreadablePage)
    assert poison.error == "includes.media: Input should be a valid list"
    assert poison.meta is not None
    assert poison.meta.newest_id == stream.poison_pages[0].newest_id
    # AND its ids lie between the pages around it, so the stream stays newest first
    first, last = read[0], read[2]
    assert isinstance(first, SearchPage)
    assert isinstance(last, SearchPage)
    assert int(first.meta.oldest_id or 0) > int(poison.meta.newest_id or 0)
    assert int(poison.meta.oldest_id or 0) > int(last.meta.newest_id or 0)
    # AND the valid pages are served as built: every post of the recording, once
    served_posts = [post.id for page in (first, last) for post in page.posts]
    built_posts = [post.id for page in stream.recording.pages for post in page.body.data]
    assert served_posts == built_posts


def test_refused_photos_are_published_photos_without_another_fault(
    small_config: ChaosConfig,
) -> None:
    # GIVEN a stream whose two photos SQS refuses
    stream = build_chaos_stream(BASE_URL, small_config)
    # WHEN the refused media keys are looked up
    urls = {
        media.media_key: media.url
        for page in stream.recording.pages
        for media in (page.body.includes.media if page.body.includes else [])
    }
    published = {key for _post, key, _route in expected_message_keys(stream.recording)}
    # THEN there are two, each published on a route, each a plain image expected DONE
    assert len(stream.refused_media_keys) == small_config.refused_photos == 2
    assert set(stream.refused_media_keys) <= published
    for key in stream.refused_media_keys:
        url = urls[key]
        assert url is not None
        assert urlsplit(url).path.startswith("/media/")
        assert stream.expected[url] == "DONE"


def test_expected_keys_agree_with_the_demo_expectation() -> None:
    # GIVEN the demo's recording, whose messages demo_stream counts by the producer's rules
    recording = build_recording(BASE_URL, seed=5)
    # WHEN the chaos run lists the messages the producer must publish
    keys = expected_message_keys(recording)
    # THEN both agree, route by route, and no (post, photo, route) is listed twice
    outcome = expected_outcome(recording)
    per_route = {
        route: sum(n for key, n in keys.items() if key[2] == route) for route in ("cats", "dogs")
    }
    assert per_route == outcome.messages_per_route
    assert max(keys.values()) == 1


def test_a_started_message_ends_as_its_execution() -> None:
    # GIVEN a record logged ExecutionStarted whose execution classified the image
    bodies = {"m1": _body("1")}
    outcomes = {"m1": RecordOutcome("ExecutionStarted", "cats", _name())}
    # WHEN the messages are settled
    settled = settle(bodies, outcomes, [_execution("DONE")], [])
    # THEN the message is done, with nothing adopted or orphaned
    assert (settled.fate, settled.orphan_executions, settled.adopted) == ({"m1": "done"}, [], 0)


def test_a_killed_starter_is_adopted_by_its_redelivery() -> None:
    # GIVEN the starter's log line died with its worker: redelivered, it was InFlight, and
    # another post of the same URL was a Duplicate of the DONE result
    bodies = {"m1": _body("1"), "m2": _body("2")}
    outcomes = {
        "m1": RecordOutcome("InFlight", "cats", _name()),
        "m2": RecordOutcome("Duplicate", "cats", _name()),
    }
    # WHEN the messages are settled
    settled = settle(bodies, outcomes, [_execution("DONE")], [])
    # THEN the first of them owns the execution and the other stays a duplicate
    assert settled.fate == {"m1": "done", "m2": "duplicate"}
    assert settled.adopted == 1


def test_a_failed_execution_ends_in_its_dead_letter() -> None:
    # GIVEN a started record whose execution failed and left a workflow dead letter
    url = f"{BASE_URL}/faults/404?n=1"
    execution = _execution("FAILED", url)
    letter = DeadLetter(
        queue=WORKFLOW_DLQ,
        message_id="d1",
        receipt_handle="r1",
        body=json.dumps({"execution": execution.arn}),
        error="ImageNotFound",
        reason="gone",
        route="cats",
        receive_count=1,
    )
    # WHEN the messages are settled
    settled = settle(
        {"m1": _body("1", url)},
        {"m1": RecordOutcome("ExecutionStarted", "cats", execution.name)},
        [execution],
        [letter],
    )
    # THEN the message ends in the dead-letter queue with the reason
    assert settled.fate == {"m1": "dead:ImageNotFound"}


def test_a_failed_execution_without_dead_letter_is_lost() -> None:
    # GIVEN a started record whose execution failed but no dead letter says so
    # WHEN the messages are settled
    settled = settle(
        {"m1": _body("1")},
        {"m1": RecordOutcome("ExecutionStarted", "cats", _name())},
        [_execution("FAILED")],
        [],
    )
    # THEN the message is lost
    assert settled.fate == {"m1": "lost"}


def test_a_message_never_processed_is_lost() -> None:
    # GIVEN a message no classifier invocation ever logged
    # WHEN the messages are settled
    settled = settle({"m1": _body("1")}, {}, [], [])
    # THEN it is lost
    assert settled.fate == {"m1": "lost"}


def test_an_execution_without_a_message_is_an_orphan() -> None:
    # GIVEN an execution that no record started nor duplicated
    # WHEN the messages are settled
    settled = settle({}, {}, [_execution("DONE")], [])
    # THEN it is reported as an orphan
    assert settled.orphan_executions == [_name()]


def test_an_unnamed_execution_that_lost_the_claim_is_no_orphan() -> None:
    # GIVEN a killed starter's execution that ended DUPLICATE (another copy's execution held
    # the claim), and its redelivered record settled as InFlight of that other execution
    other = execution_name(URL, 2)
    bodies = {"m1": _body("1")}
    outcomes = {"m1": RecordOutcome("InFlight", "cats", other)}
    # WHEN the messages are settled with both executions
    settled = settle(
        bodies, outcomes, [_execution("DUPLICATE"), _execution_named(other, "DONE")], []
    )
    # THEN the message ends with the execution it names, and the one that did nothing is no
    # orphan
    assert (settled.fate, settled.orphan_executions, settled.adopted) == ({"m1": "done"}, [], 1)


def test_an_unnamed_execution_that_classified_a_url_with_a_duplicate_message_is_no_orphan() -> None:
    # GIVEN a first execution that failed (its letter sent) and a second, DONE, whose starter's
    # log line died with its worker; the URL's other message was InFlight of the first
    first, second = execution_name(URL, 1), execution_name(URL, 2)
    failed = _execution_named(first, "FAILED")
    letter = DeadLetter(
        queue=WORKFLOW_DLQ,
        message_id="d1",
        receipt_handle="r1",
        body=json.dumps({"execution": failed.arn}),
        error="Rekognition.ThrottlingException",
        reason="quota",
        route="cats",
        receive_count=1,
    )
    bodies = {"m1": _body("1"), "m2": _body("2")}
    outcomes = {
        "m1": RecordOutcome("ExecutionStarted", "cats", first),
        "m2": RecordOutcome("InFlight", "cats", first),
    }
    # WHEN the messages are settled
    settled = settle(bodies, outcomes, [failed, _execution_named(second, "DONE")], [letter])
    # THEN every message has its end and the DONE execution, which answered one of them, is no
    # orphan
    assert settled.fate == {"m1": "dead:Rekognition.ThrottlingException", "m2": "duplicate"}
    assert settled.orphan_executions == []


def test_an_unnamed_done_execution_of_a_url_without_a_duplicate_is_an_orphan() -> None:
    # GIVEN a DONE execution nobody named, and the URL's only message started another one
    first, second = execution_name(URL, 1), execution_name(URL, 2)
    bodies = {"m1": _body("1")}
    outcomes = {"m1": RecordOutcome("ExecutionStarted", "cats", first)}
    # WHEN the messages are settled
    settled = settle(
        bodies,
        outcomes,
        [_execution_named(first, "DONE"), _execution_named(second, "DONE")],
        [],
    )
    # THEN the one no message can account for is an orphan
    assert settled.orphan_executions == [second]


def _throttled_letter(execution: ExecutionOutcome) -> DeadLetter:
    return DeadLetter(
        queue=WORKFLOW_DLQ,
        message_id="d1",
        receipt_handle="r1",
        body=json.dumps({"execution": execution.arn, "message": _body("1")}),
        error="Rekognition.ThrottlingException",
        reason="quota",
        route="cats",
        receive_count=1,
    )


def _started_line(message_id: str, execution: str) -> str:
    record = {
        "version": 1,
        "message_id": message_id,
        "outcome": "ExecutionStarted",
        "event_source_arn": "arn:aws:sqs:us-east-1:123456789012:cats",
        "route": "cats",
        "execution": execution,
    }
    return json.dumps({"message": "Record processed", "record_outcome": record})


def test_a_message_started_again_by_its_redelivery_ends_as_its_later_attempt() -> None:
    # GIVEN a message whose first start was logged before its classifier worker was killed
    # mid-batch; that attempt was throttled out (its letter sent), and the batch's redelivery
    # started the next attempt, which classified the image (the open flake of the 500-post
    # STANDARD run: the second execution was reported without a message)
    first, second = execution_name(URL, 1), execution_name(URL, 2)
    throttled = _execution_named(first, "FAILED")
    logs = [_started_line("m1", first), _started_line("m1", second)]
    # WHEN the messages are settled from the logs as the chaos run reads them
    settled = settle(
        {"m1": _body("1")},
        classifier_outcomes(logs),
        [throttled, _execution_named(second, "DONE")],
        [_throttled_letter(throttled)],
    )
    # THEN the message ends DONE, and the throttled attempt is closed by its own letter
    assert (settled.fate, settled.orphan_executions) == ({"m1": "done"}, [])


def test_a_done_attempt_no_log_names_is_still_an_orphan() -> None:
    # GIVEN the same executions, but the message's logs name only its first attempt: nothing
    # started the DONE one, and no other message of the URL is a duplicate of it
    first, second = execution_name(URL, 1), execution_name(URL, 2)
    throttled = _execution_named(first, "FAILED")
    # WHEN the messages are settled
    settled = settle(
        {"m1": _body("1")},
        classifier_outcomes([_started_line("m1", first)]),
        [throttled, _execution_named(second, "DONE")],
        [_throttled_letter(throttled)],
    )
    # THEN that execution is an orphan
    assert (settled.fate, settled.orphan_executions) == (
        {"m1": "dead:Rekognition.ThrottlingException"},
        [second],
    )


def test_a_started_record_without_execution_is_lost() -> None:
    # GIVEN a record logged ExecutionStarted, but no such execution exists
    # WHEN the messages are settled
    started = {"m1": RecordOutcome("ExecutionStarted", "cats", _name())}
    settled = settle({"m1": _body("1")}, started, [], [])
    # THEN the message is lost and the missing execution named
    assert (settled.fate, settled.orphan_executions) == ({"m1": "lost"}, [_name()])


def test_a_route_dead_letter_settles_its_message() -> None:
    # GIVEN a message moved to its route's DLQ by the redrive policy (same message id)
    letter = DeadLetter(
        queue="CatsDeadLetterQueue",
        message_id="m1",
        receipt_handle="r1",
        body=json.dumps(_body("1")),
        error="MaxReceiveCountExceeded",
        reason="",
        route="cats",
        receive_count=5,
    )
    # WHEN the messages are settled
    settled = settle({"m1": _body("1")}, {}, [], [letter])
    # THEN it ends there, with the reason
    assert settled.fate == {"m1": "dead:MaxReceiveCountExceeded"}


def test_a_rejected_message_ends_in_the_route_letter_naming_it() -> None:
    # GIVEN a message the classifier rejected, and its letter: a new SQS message with an id of
    # its own, naming the rejected message in source_message_id
    outcomes = {"m1": RecordOutcome("Rejected", "cats", "")}
    # WHEN the messages are settled
    settled = settle({"m1": REJECTED_BODY}, outcomes, [], [rejection_letter("m1")])
    # THEN it ends in that letter, with its error, once, and nothing is orphaned
    assert (settled.fate, settled.double_counted, settled.orphan_executions) == (
        {"m1": "dead:InvalidMessage"},
        {},
        [],
    )


def test_a_rejected_message_without_its_letter_is_lost() -> None:
    # GIVEN two messages the classifier rejected, and only the second one's letter, whose own
    # id is the first message's (a letter is matched by the message it names, not its own id)
    outcomes = {
        "m1": RecordOutcome("Rejected", "cats", ""),
        "m2": RecordOutcome("Rejected", "cats", ""),
    }
    letters = [rejection_letter("m2", letter_id="m1")]
    # WHEN the messages are settled
    settled = settle({"m1": REJECTED_BODY, "m2": REJECTED_BODY}, outcomes, [], letters)
    # THEN the first is lost and the second ends in its letter
    assert settled.fate == {"m1": "lost", "m2": "dead:InvalidMessage"}


def test_a_failed_execution_nobody_logged_is_closed_by_its_dead_letter() -> None:
    # GIVEN an execution whose starter's log line died with its worker, that failed and left
    # its dead letter, while the redelivered record started the next attempt
    url = f"{BASE_URL}/faults/404?n=2"
    first = _execution("FAILED", url)
    second_name = execution_name(url, 2)
    second = ExecutionOutcome(
        arn=first.arn.replace(first.name, second_name),
        name=second_name,
        route="cats",
        url=url,
        status="FAILED",
    )
    letters = [
        DeadLetter(
            queue=WORKFLOW_DLQ,
            message_id=f"d{index}",
            receipt_handle=f"r{index}",
            body=json.dumps({"execution": execution.arn}),
            error="ImageNotFound",
            reason="gone",
            route="cats",
            receive_count=1,
        )
        for index, execution in enumerate((first, second))
    ]
    outcomes = {"m1": RecordOutcome("ExecutionStarted", "cats", second_name)}
    # WHEN the messages are settled
    settled = settle({"m1": _body("1", url)}, outcomes, [first, second], letters)
    # THEN the message ends in its attempt's dead letter, and the first execution is no orphan
    assert (settled.fate, settled.orphan_executions) == ({"m1": "dead:ImageNotFound"}, [])


def test_a_failed_execution_without_its_letter_is_an_orphan() -> None:
    # GIVEN an execution nobody logged, that failed and has no dead letter
    # WHEN the messages are settled
    settled = settle({}, {}, [_execution("FAILED")], [])
    # THEN it is reported as an orphan: nothing accounts for it
    assert settled.orphan_executions == [_name()]


def _producer_letter(body: dict[str, object] | str, error: str, reason: str = "why") -> DeadLetter:
    text = body if isinstance(body, str) else json.dumps(body)
    return DeadLetter(PRODUCER_DLQ, "m", "r", text, error, reason, "", 1)


def test_producer_letters_name_the_poison_page_and_the_refused_message() -> None:
    # GIVEN a page letter with the page as X sent it, and a photo letter for a refused message
    page = {"kind": "page", "raw": json.dumps({"meta": {"newest_id": "42"}, "data": []})}
    refused_message = _body("7")
    photo = {
        "kind": "photo",
        "post_id": "7",
        "media_key": refused_message["media_key"],
        "route": "cats",
        "sqs_error_code": "InvalidMessageContents",
        "raw": refused_message,
    }
    letters = [
        _producer_letter(page, "UnreadablePage"),
        _producer_letter(photo, "RejectedBySqs"),
        _producer_letter({"kind": "post"}, "OtherError"),
    ]
    # WHEN they are read
    read = producer_letters(letters)
    # THEN the page is known by its newest id, the message by its (post, photo, route)
    assert read.pages == {"42"}
    assert read.refused == {("7", "3_7", "cats")}
    assert read.by_error == {"OtherError": 1, "RejectedBySqs": 1, "UnreadablePage": 1}


def test_a_letter_without_reason_or_readable_data_names_nothing() -> None:
    # GIVEN a page letter cut short, one without a reason, and a body that is no JSON
    cut = {"kind": "page", "raw": '{"meta": {"newest_id": "4', "raw_truncated": True}
    whole = {"kind": "page", "raw": json.dumps({"meta": {"newest_id": "9"}})}
    letters = [
        _producer_letter(cut, "UnreadablePage"),
        _producer_letter(whole, "UnreadablePage", reason=""),
        _producer_letter("not json", "UnreadableDeadLetter"),
    ]
    # WHEN they are read / THEN they are counted, and none names a page or a message
    read = producer_letters(letters)
    assert (read.pages, read.refused) == (set(), set())
    assert read.by_error == {"UnreadableDeadLetter": 1, "UnreadablePage": 2}


def test_standard_runs_deploy_the_start_limiter_at_the_quota() -> None:
    # GIVEN STANDARD runs of both sizes, and one with its own quota
    # WHEN their configs are made
    small = ChaosConfig.for_posts(40, seed=1, workflow_type="STANDARD")
    large = ChaosConfig.for_posts(500, seed=1, workflow_type="STANDARD")
    own = ChaosConfig.for_posts(500, seed=1, workflow_type="STANDARD", rekognition_rps=2.5)
    small_own = ChaosConfig.for_posts(40, seed=1, workflow_type="STANDARD", rekognition_rps=1)
    # THEN DetectLabelsRate is the quota in whole starts a second (half of it in a small run,
    # whose short backlog must still outrun it; never under 1), and another caller of the
    # account takes the quota now and then
    assert [c.detect_labels_rate for c in (small, large, own, small_own)] == [2, 4, 2, 1]
    assert (large.quota_neighbour_every, large.quota_neighbour_seconds) == (10.0, 1.0)


def test_express_runs_leave_detect_labels_rate_alone() -> None:
    # GIVEN an EXPRESS run / WHEN its config is made / THEN it deploys no DetectLabelsRate
    express = ChaosConfig.for_posts(500, seed=1, workflow_type="EXPRESS")
    assert (express.detect_labels_rate, express.quota_neighbour_every) == (None, None)
    # AND asking for one is refused: the limiter is STANDARD's
    with pytest.raises(ValueError, match="DetectLabelsRate applies to STANDARD only"):
        ChaosConfig.for_posts(500, seed=1, workflow_type="EXPRESS", detect_labels_rate=4)
