"""The producer end to end: scheduled event → tweepy (replayed) → route queues + checkpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from common.messages import PhotoMessage
from producer.publisher import PublishError
from producer.settings import InvalidSettings
from tests.unit.producer.producer_testkit import (
    TABLE,
    Aws,
    FakeLambdaContext,
    emitted_metrics,
    load_event,
)

CHECKPOINT_ID = "search#477ec7bc87d6cf63"
TOKEN_PAGE_1 = "b26v89c19zqg8o3fpzhm4ixbbpfq9ubyr2zd6bmyoyjh9"
NEWEST_PHOTO_POST = "1861704939338346519"


Post = tuple[str, str, list[str]]


def message(post: Post, media_key: str, name: str, route: str) -> dict[str, Any]:
    post_id, text, hashtags = post
    return {
        "url": f"https://pbs.twimg.com/media/{name}.jpg",
        "post_id": post_id,
        "media_key": media_key,
        "text": text,
        "hashtags": hashtags,
        "route": route,
        "attempt": 0,
    }


NAP: Post = (
    NEWEST_PHOTO_POST,
    "Sunday nap champion, do not disturb 😴 #cat #caturday https://t.co/Qm3vT8kLzA",
    ["cat", "caturday"],
)
LITTER: Post = (
    "1861704758983336004",
    "The whole litter at 8 weeks, all looking for homes soon 🐾 #kitten #adoptdontshop "
    "https://t.co/8HfJkq2WsN",
    ["kitten", "adoptdontshop"],
)
QUOTE: Post = (
    "1861704285026127923",
    "This is exactly my #cat every single morning https://t.co/Kp2sNw7XbR https://t.co/aY4mUe9Hcq",
    ["cat"],
)
HARNESS: Post = (
    "1861704104671125512",
    "First walk with the new harness! #puppy #goldenretriever https://t.co/Rn5GhT2pLm",
    ["puppy", "goldenretriever"],
)
FRIENDS: Post = (
    "1861703739766804505",
    "Best friends since day one 🐱🐶 #Cat #Dog https://t.co/Gh6YbN1sDe",
    ["Cat", "Dog"],
)
BISCUITS: Post = (
    "1861703559413956615",
    "Mr. Biscuits demands breakfast #kitten https://t.co/Fc8KjW4mQz",
    ["kitten"],
)

# Page one: a photo, three photos, a video, a GIF, a quote with a photo, a puppy photo.
# Page two: no media, one post tagged #Cat and #Dog (both routes), a kitten photo.
EXPECTED_CATS = [
    message(NAP, "3_1861704784149098508", "GdXk3pRWsAAe9Tn", "cats"),
    message(LITTER, "3_1861704603794087997", "GdXkz1aWMAA7q2R", "cats"),
    message(LITTER, "3_1861704603794087999", "GdXkz1bWAAEpL0m", "cats"),
    message(LITTER, "3_1861704603794088001", "GdXkz1cXkAAu4Vd", "cats"),
    message(QUOTE, "3_1861704129836879917", "GdXkmQ2WoAA5cHf", "cats"),
    message(FRIENDS, "3_1861703584577556500", "GdXjwE4WQAAd1Ls", "cats"),
    message(FRIENDS, "3_1861703584577556503", "GdXjwE5WcAAQy8k", "cats"),
    message(BISCUITS, "3_1861703404224708611", "GdXjnR7XsAAbW3e", "cats"),
]
EXPECTED_DOGS = [
    message(HARNESS, "3_1861703949481877504", "GdXkZ8yW8AAkTtJ", "dogs"),
    message(FRIENDS, "3_1861703584577556500", "GdXjwE4WQAAd1Ls", "dogs"),
    message(FRIENDS, "3_1861703584577556503", "GdXjwE5WcAAQy8k", "dogs"),
]
EXPECTED_PAGE_1_CATS = EXPECTED_CATS[:5]
EXPECTED_PAGE_1_DOGS = EXPECTED_DOGS[:1]


def by_media(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(messages, key=lambda body: (body["post_id"], body["media_key"]))


def test_sample_recording_puts_exact_messages_on_each_queue(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the two-page sample recording and no checkpoint yet
    app = load_app(replay_env("x_api_search_photos.json"))

    # WHEN the schedule fires
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN every photo is on its route's queue once per route, nothing else is
    assert result == {
        "pages": 2,
        "posts": 9,
        "published": {"cats": 8, "dogs": 3},
        "stopped_reason": "complete",
        "since_id": NEWEST_PHOTO_POST,
    }
    cats, dogs = aws.drain("cats"), aws.drain("dogs")
    assert by_media(cats) == by_media(EXPECTED_CATS)
    assert by_media(dogs) == by_media(EXPECTED_DOGS)
    for body in cats + dogs:
        PhotoMessage.model_validate(body)
    # AND the checkpoint holds the newest post and no unfinished pagination
    assert aws.checkpoint() == {"id": CHECKPOINT_ID, "since_id": NEWEST_PHOTO_POST}
    assert aws.dead_letters() == []
    # AND the metrics count reads, skips (no media, video, GIF), publications per route and
    # dead letters per kind
    assert emitted_metrics(capsys.readouterr().out) == {
        ("ApiCalls", None): 2,
        ("PostsRead", None): 9,
        ("PostsSkipped", None): 3,
        ("Unrouted", None): 0,
        ("RateLimitStops", None): 0,
        ("CheckpointAdvanced", None): 1,
        ("PagesDeadLettered", None): 0,
        ("PostsDeadLettered", None): 0,
        ("PhotosDeadLettered", None): 0,
        ("PaginationsAbandoned", None): 0,
        ("PhotosPublished", "cats"): 8,
        ("PhotosPublished", "dogs"): 3,
    }


def test_a_run_makes_only_the_aws_calls_its_role_grants(
    aws: Aws,
    aws_calls: list[str],
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> None:
    # GIVEN the handler cold-started with every AWS call recorded
    app = load_app(replay_env("x_api_search_photos.json"))

    # WHEN it runs over the two-page sample recording
    app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN it reads the checkpoint, sends batches and puts the checkpoint: the actions of its
    # role's Checkpoint and SendToRouteQueues statements (tests/unit/template), no UpdateItem
    assert sorted(set(aws_calls)) == [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "sqs:SendMessageBatch",
    ]


def test_second_run_reads_nothing_new(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a completed run over the sample recording
    app = load_app(replay_env("x_api_search_photos.json"))
    app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())
    aws.drain("cats")
    aws.drain("dogs")
    capsys.readouterr()

    # WHEN the next scheduled run searches since the checkpoint
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN it reads no post, publishes nothing and leaves the checkpoint where it was
    assert result == {
        "pages": 1,
        "posts": 0,
        "published": {"cats": 0, "dogs": 0},
        "stopped_reason": "complete",
        "since_id": NEWEST_PHOTO_POST,
    }
    assert aws.drain("cats") == []
    assert aws.drain("dogs") == []
    assert aws.checkpoint() == {"id": CHECKPOINT_ID, "since_id": NEWEST_PHOTO_POST}
    # AND a run caught up with X counts as progress: quiet hashtags are no stalled producer
    assert emitted_metrics(capsys.readouterr().out)[("CheckpointAdvanced", None)] == 1


def test_run_stops_before_the_lambda_timeout_and_the_next_resumes(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> None:
    # GIVEN a run that has 40 s left before page one and 9.999 s before page two
    app = load_app(replay_env("x_api_search_photos.json"))
    context = FakeLambdaContext(remaining=[40_000, 9_999])

    # WHEN it runs
    first = app.lambda_handler(load_event("producer_scheduled.json"), context)

    # THEN it stops cleanly after page one, with page one enqueued and its token saved
    assert first == {
        "pages": 1,
        "posts": 6,
        "published": {"cats": 5, "dogs": 1},
        "stopped_reason": "time",
        "since_id": None,
    }
    assert by_media(aws.drain("cats")) == by_media(EXPECTED_PAGE_1_CATS)
    assert aws.drain("dogs") == EXPECTED_PAGE_1_DOGS
    assert aws.checkpoint() == {
        "id": CHECKPOINT_ID,
        "next_token": TOKEN_PAGE_1,
        "newest_id": NEWEST_PHOTO_POST,
        "oldest_id": "1861704104671125512",
    }

    # WHEN the next run has time
    second = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN it reads only page two and completes with the first run's newest id
    assert second == {
        "pages": 1,
        "posts": 3,
        "published": {"cats": 3, "dogs": 2},
        "stopped_reason": "complete",
        "since_id": NEWEST_PHOTO_POST,
    }
    assert by_media(aws.drain("cats")) == by_media(EXPECTED_CATS[5:])
    assert by_media(aws.drain("dogs")) == by_media(EXPECTED_DOGS[1:])
    assert aws.checkpoint() == {"id": CHECKPOINT_ID, "since_id": NEWEST_PHOTO_POST}


def test_no_api_call_when_too_little_time_is_left(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN an invocation that starts with less than the 10 s margin left
    app = load_app(replay_env("x_api_search_photos.json"))

    # WHEN it runs
    result = app.lambda_handler(
        load_event("producer_scheduled.json"), FakeLambdaContext(remaining=[9_999])
    )

    # THEN it makes no call and touches nothing
    assert result == {
        "pages": 0,
        "posts": 0,
        "published": {"cats": 0, "dogs": 0},
        "stopped_reason": "time",
        "since_id": None,
    }
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics[("ApiCalls", None)], metrics[("CheckpointAdvanced", None)]) == (0, 0)
    assert aws.checkpoint() is None


def test_stops_at_90_percent_of_the_rate_limit_and_resumes_from_next_token(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a recording whose pages leave 46, 45 and 44 of 450 calls (89.8 %, 90 %, 90.2 % used)
    app = load_app(replay_env("x_api_search_rate_limited.json"))

    # WHEN the schedule fires
    first = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN it continues after 89.8 % and makes no further call once 90 % is used
    assert first == {
        "pages": 2,
        "posts": 2,
        "published": {"cats": 1, "dogs": 1},
        "stopped_reason": "rate_limit",
        "since_id": None,
    }
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics[("ApiCalls", None)], metrics[("RateLimitStops", None)]) == (2, 1)
    # AND stopping near the limit after saving pages is progress
    assert metrics[("CheckpointAdvanced", None)] == 1
    assert aws.checkpoint() == {
        "id": CHECKPOINT_ID,
        "next_token": "b26v89c19zqg8o3fpzqx7x6v5m9dxtnfp4e2ey8t1uq3h",
        "newest_id": "1861715123109564419",
        "oldest_id": "1861714963723984913",
    }
    assert [body["post_id"] for body in aws.drain("cats") + aws.drain("dogs")] == [
        "1861715123109564419",
        "1861714963723984913",
    ]

    # WHEN the next run starts
    second = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN it reads only the third page and completes the search
    assert second == {
        "pages": 1,
        "posts": 1,
        "published": {"cats": 1, "dogs": 0},
        "stopped_reason": "complete",
        "since_id": "1861715123109564419",
    }
    assert [body["post_id"] for body in aws.drain("cats")] == ["1861714791760334870"]
    assert aws.checkpoint() == {"id": CHECKPOINT_ID, "since_id": "1861715123109564419"}


def test_429_ends_the_run_cleanly_without_moving_the_checkpoint(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN X answers 429 Too Many Requests
    app = load_app(replay_env("x_api_search_too_many_requests.json"))

    # WHEN the schedule fires
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN the run ends without error, nothing is published and no checkpoint is written
    assert result == {
        "pages": 0,
        "posts": 0,
        "published": {"cats": 0, "dogs": 0},
        "stopped_reason": "rate_limit",
        "since_id": None,
    }
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics[("ApiCalls", None)], metrics[("RateLimitStops", None)]) == (1, 1)
    assert aws.checkpoint() is None
    # AND the run counts as no progress
    assert metrics[("CheckpointAdvanced", None)] == 0


def test_checkpoint_not_advanced_when_publishing_fails(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the dogs route points at a queue that does not exist
    environment = replay_env("x_api_search_photos.json")
    missing_queue = aws.queue_urls["dogs"] + "-deleted"
    environment["ROUTE_QUEUE_URLS"] = json.dumps({**aws.queue_urls, "dogs": missing_queue})
    app = load_app(environment)

    # WHEN the schedule fires
    with pytest.raises(PublishError) as raised:
        app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN the run fails with the unsent entry named, and the checkpoint is not written
    assert str(raised.value) == (
        "1 message(s) not sent to route dogs: 0: AWS.SimpleQueueService.NonExistentQueue"
    )
    assert aws.checkpoint() is None
    # AND the cats of page one went out: the retried page is deduplicated downstream
    assert by_media(aws.drain("cats")) == by_media(EXPECTED_PAGE_1_CATS)
    # AND the failed run still reports that it made no progress
    assert emitted_metrics(capsys.readouterr().out)[("CheckpointAdvanced", None)] == 0


def test_media_missing_from_includes_costs_each_photo_a_letter(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a page with one post's media missing from includes (X says so in errors), then a
    # page whose one post has two media keys and no includes at all
    app = load_app(replay_env("x_api_search_missing_includes.json"))

    # WHEN the schedule fires
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN the fully hydrated post is published and the run completes past both pages
    assert result == {
        "pages": 2,
        "posts": 3,
        "published": {"cats": 1, "dogs": 0},
        "stopped_reason": "complete",
        "since_id": "1861727349504217093",
    }
    assert [body["media_key"] for body in aws.drain("cats")] == ["3_1861727194314969091"]
    assert aws.checkpoint() == {"id": CHECKPOINT_ID, "since_id": "1861727349504217093"}
    # AND each missing photo is one letter on its post's route, with the post to replay it
    pages = load_event("x_api_search_missing_includes.json")["pages"]
    letters = aws.dead_letters()
    assert [
        (letter["kind"], letter["error"], letter["post_id"], letter["media_key"], letter["route"])
        for letter in letters
    ] == [
        ("photo", "MediaMissing", "1861727177537101847", "3_1861727022347853842", "dogs"),
        ("photo", "MediaMissing", "1861726992989294603", "3_1861726837800046602", "cats"),
        ("photo", "MediaMissing", "1861726992989294603", "3_1861726837800046600", "cats"),
    ]
    assert letters[0]["raw"] == {"post": pages[0]["body"]["data"][1], "media": None}
    assert letters[0]["reason"] == (
        "media key 3_1861727022347853842 is not in includes.media; "
        "X: Could not find media with id: [3_1861727022347853842]."
    )
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics[("PostsSkipped", None)], metrics[("PhotosDeadLettered", None)]) == (0, 3)


def test_empty_search_completes_without_writing(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> None:
    # GIVEN X finds no post
    app = load_app(replay_env("x_api_search_empty.json"))

    # WHEN the schedule fires
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN the run completes with nothing to save
    assert result == {
        "pages": 1,
        "posts": 0,
        "published": {"cats": 0, "dogs": 0},
        "stopped_reason": "complete",
        "since_id": None,
    }
    assert aws.checkpoint() is None


def test_posts_matching_no_route_are_counted(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN only a cats route, over a recording made when dogs were searched too
    environment = replay_env("x_api_search_photos.json")
    environment["HASHTAG_ROUTES"] = '{"cats": "cat,cats,kitten"}'
    environment["ROUTE_QUEUE_URLS"] = json.dumps({"cats": aws.queue_urls["cats"]})
    app = load_app(environment)

    # WHEN the schedule fires
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN the dog-only photo post is counted as unrouted and the cats still go out
    assert result["published"] == {"cats": 8}
    assert emitted_metrics(capsys.readouterr().out)[("Unrouted", None)] == 1


def test_replay_from_s3(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> None:
    # GIVEN the sample recording in a bucket
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="tweetlens-replays")
    s3.put_object(
        Bucket="tweetlens-replays",
        Key="recordings/photos.json",
        Body=json.dumps(load_event("x_api_search_photos.json")).encode("utf-8"),
    )
    environment = replay_env("x_api_search_photos.json")
    environment["REPLAY_URI"] = "s3://tweetlens-replays/recordings/photos.json"
    app = load_app(environment)

    # WHEN the schedule fires
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN the run reads it as from a file
    assert result["published"] == {"cats": 8, "dogs": 3}


@pytest.mark.no_application_metrics
def test_event_that_is_not_a_scheduled_event_is_rejected(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> None:
    # GIVEN the handler and an SQS-shaped event
    app = load_app(replay_env("x_api_search_photos.json"))

    # WHEN it is invoked with it
    with pytest.raises(app.InvalidEvent, match=r"^expected an EventBridge scheduled event"):
        app.lambda_handler({"Records": []}, FakeLambdaContext())

    # THEN nothing was read or written
    assert aws.checkpoint() is None


def test_cold_start_fails_on_a_bad_environment(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> None:
    # GIVEN a page size X does not accept
    environment = replay_env("x_api_search_photos.json")
    environment["MAX_RESULTS_PER_PAGE"] = "500"

    # WHEN the function cold-starts
    with pytest.raises(InvalidSettings) as raised:
        load_app(environment)

    # THEN the error names the variable and the rule
    assert str(raised.value) == (
        "invalid producer environment: MAX_RESULTS_PER_PAGE: "
        "Input should be less than or equal to 100"
    )


def test_expired_next_token_restarts_the_search_without_skipping(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN an unfinished run whose saved token X no longer accepts
    aws.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "id": {"S": CHECKPOINT_ID},
            "next_token": {"S": "b26v89c19zqg8o3fpzexpired"},
            "newest_id": {"S": "1861704939338346519"},
            "updated_at": {"S": "2024-11-27T08:00:00.000000+00:00"},
        },
    )
    app = load_app(replay_env("x_api_search_photos.json"))

    # WHEN the schedule fires
    result = app.lambda_handler(load_event("producer_scheduled.json"), FakeLambdaContext())

    # THEN the 400 is absorbed, the search restarts from the top and completes
    assert result == {
        "pages": 2,
        "posts": 9,
        "published": {"cats": 8, "dogs": 3},
        "stopped_reason": "complete",
        "since_id": NEWEST_PHOTO_POST,
    }
    assert emitted_metrics(capsys.readouterr().out)[("ApiCalls", None)] == 3
    assert aws.checkpoint() == {"id": CHECKPOINT_ID, "since_id": NEWEST_PHOTO_POST}
