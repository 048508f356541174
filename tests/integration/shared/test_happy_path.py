"""A photo's way through the deployed stack, duplicates of it, and the producer's checkpoint."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from common.messages import url_digest
from tests.integration.pipeline_kit import (
    PostSpec,
    Recordings,
    execution_arn,
    execution_name,
    executions_of,
    publish,
    record_outcomes,
    result_item,
    route_message,
    settle,
)
from tweetlens.demo_stream import PHOTO_LABELS
from tweetlens.pipeline import LocalPipeline
from tweetlens.results import RESULTS_TABLE, LabelHit, images_with_label
from tweetlens.stack import DeployedStack

pytestmark = pytest.mark.integration


RESULT_ATTRIBUTES = {
    "pk",
    "sk",
    "status",
    "execution",
    "lease_expires_at",
    "message",
    "post_id",
    "media_key",
    "text",
    "hashtags",
    "route",
    "labels",
    "image_key",
    "classified_at",
}


def test_cat_photo_is_fetched_labelled_and_stored(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN one post with the cat photo under #cat
    url = pipeline.images.media_url("chelsea")
    recording = recordings.build([PostSpec("Window patrol", ("cat",), (url,))])
    message = route_message(recording, url, "cats")
    key = f"images/{url_digest(url)}.jpg"
    # (the pipeline is shared: other modules' cat photos are already in the ByLabel index)
    cats_before = set(
        images_with_label(stack.client("dynamodb"), stack.resource(RESULTS_TABLE), "Cat", 50)
    )

    # WHEN the producer's schedule fires and the pipeline settles
    summary = publish(pipeline, recording)
    settle(pipeline)

    # THEN one message went to the cats route
    assert summary == {
        "pages": 1,
        "posts": 1,
        "published": {"cats": 1, "dogs": 0},
        "stopped_reason": "complete",
        "since_id": message["post_id"],
    }
    # AND its execution succeeded with the local labeler's labels for the cat
    names = list(PHOTO_LABELS["chelsea"])
    sfn = stack.client("stepfunctions")
    described = sfn.describe_execution(executionArn=execution_arn(stack, execution_name(url)))
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {
        "status": "DONE",
        "url": url,
        "image_key": key,
        "labels": names,
    }
    # AND the result item holds the post and the labels
    item = result_item(stack, url)
    assert set(item) == RESULT_ATTRIBUTES
    assert {name: item[name] for name in ("status", "route", "post_id", "text", "hashtags")} == {
        "status": "DONE",
        "route": "cats",
        "post_id": message["post_id"],
        "text": "Window patrol #cat",
        "hashtags": ["cat"],
    }
    assert item["execution"] == execution_arn(stack, execution_name(url))
    assert item["image_key"] == key
    assert [label["name"] for label in item["labels"]] == names
    confidence = {label["name"]: label["confidence"] for label in item["labels"]}
    assert all(Decimal(70) <= value <= Decimal(100) for value in confidence.values())
    # AND the ByLabel index finds the photo as a cat, and nothing else new
    hits = images_with_label(stack.client("dynamodb"), stack.resource(RESULTS_TABLE), "Cat", 50)
    assert [hit for hit in hits if hit not in cats_before] == [
        LabelHit(
            url=url,
            label="Cat",
            confidence=float(confidence["Cat"]),
            post_id=message["post_id"],
            route="cats",
        )
    ]
    # AND the images bucket holds the exact bytes the image host served
    stored = stack.client("s3").get_object(Bucket=stack.resource("ImagesBucket"), Key=key)
    assert stored["Body"].read() == pipeline.images.photo_bytes("chelsea")
    assert stored["ContentType"] == "image/jpeg"


def test_same_photo_in_many_posts_and_routes_is_labelled_once(
    pipeline: LocalPipeline, stack: DeployedStack, recordings: Recordings
) -> None:
    # GIVEN the same photo URL in three cat posts, a dog post and a post under both routes
    url = pipeline.images.media_url("astronaut")
    fetched_before = pipeline.images.request_count("/media/astronaut.jpg")
    recording = recordings.build(
        [
            PostSpec("Selfie with the crew", ("cat",), (url,)),
            PostSpec("Selfie again", ("kitten",), (url,)),
            PostSpec("Crew day", ("dog",), (url,)),
            PostSpec("Best friends", ("cats", "puppy"), (url,)),
            PostSpec("Still the crew", ("cat",), (url,)),
        ]
    )

    # WHEN the producer publishes them and the pipeline settles
    summary = publish(pipeline, recording)
    settle(pipeline)

    # THEN six messages were published for the one URL
    assert summary["published"] == {"cats": 4, "dogs": 2}
    # AND exactly one execution ran, and classified it
    assert [(e.name, e.status) for e in executions_of(stack, url)] == [
        (execution_name(url), "DONE")
    ]
    # AND the five other records were caught as duplicates by the classifier
    outcomes = record_outcomes(pipeline, url)
    assert outcomes["ExecutionStarted"] == 1
    assert outcomes["Duplicate"] + outcomes["InFlight"] == 5
    assert sum(outcomes.values()) == 6
    # AND Rekognition and the image host saw the photo once
    rekognition = pipeline.cloud.rekognition
    assert rekognition is not None
    source = f"s3://{stack.resource('ImagesBucket')}/images/{url_digest(url)}.jpg"
    assert rekognition.calls_by_source()[source] == 1
    assert pipeline.images.request_count("/media/astronaut.jpg") - fetched_before == 1


def test_second_producer_run_reads_nothing_new(
    pipeline: LocalPipeline, recordings: Recordings
) -> None:
    # GIVEN a recording the producer has already read to the end
    url = pipeline.images.media_url("coffee")
    recording = recordings.build([PostSpec("Morning fuel", ("kitten",), (url,))])
    first = publish(pipeline, recording)
    newest = route_message(recording, url, "cats")["post_id"]

    # WHEN the schedule fires again over the same posts
    second = publish(pipeline, recording)
    settle(pipeline)

    # THEN the first run published the photo and the second, starting at the checkpoint, nothing
    assert first["published"] == {"cats": 1, "dogs": 0}
    assert second == {
        "pages": 1,
        "posts": 0,
        "published": {"cats": 0, "dogs": 0},
        "stopped_reason": "complete",
        "since_id": newest,
    }
