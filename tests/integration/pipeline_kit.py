"""Helpers for driving the deployed template on the local cloud with small recordings.

A module (or the folder ``shared/``) gets a ``LocalPipeline`` (this repo's ``template.yaml``,
the loopback image server, the replayed X API). A test describes the posts it needs,
``publish`` writes them as the producer's replay recording and fires the producer's schedule,
and ``settle`` waits until nothing moves. Post ids only ever grow, so the producer's
``since_id`` checkpoint reads every new recording of a pipeline and nothing of the ones before.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from common.messages import execution_name as _execution_name
from common.messages import url_digest
from tweetlens import accounting
from tweetlens.demo_stream import (
    DEFAULT_START,
    RATE_LIMIT,
    Page,
    Recording,
)
from tweetlens.dlq import DeadLetter, list_dead_letters
from tweetlens.pipeline import PRODUCER, LocalPipeline
from tweetlens.results import RESULTS_TABLE
from tweetlens.stack import DeployedStack
from tweetlens_xapi.models import (
    PHOTO,
    XAttachments,
    XEntities,
    XHashtag,
    XMedia,
    XMediaIncludes,
    XMeta,
    XPost,
    XPostsPage,
)

STATE_MACHINE = "ClassifyImageStateMachine"
CLASSIFIER = "ClassifierFunction"
SCHEDULE_RULE = "ProducerFunctionEveryMinute"
# Far above any demo stream id, so a module's first recording is newer than anything.
FIRST_POST_ID = 1_950_000_000_000_000_000
FIRST_MEDIA_ID = 1_949_000_000_000_000_000
AUTHOR_ID = "1400000000000000007"
# Every wait is bounded: a pipeline that stops moving fails the test instead of hanging it.
SETTLE_SECONDS = 90.0
# The STANDARD route mappings' 5 s batching window at a tenth: every classifier batch would
# otherwise start 5 s after its first message (about half the wall time of the shared modules),
# and a test's messages arrive together (one producer run, one SendMessageBatch, or one send),
# which half a second still gathers. The window's length is tested in tests/localcloud/
# test_pollers.py; what the mappings declare is unchanged.
BATCHING_WINDOW_SCALE = 0.1
# The template's default WorkflowType is EXPRESS: modules of STANDARD-only behaviour (listed and
# named executions, the execution closer, aborts, status-change events) deploy with this.
STANDARD = {"WorkflowType": "STANDARD"}

_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class PostSpec:
    """One post to replay: its words, hashtags (without '#') and photo URLs."""

    words: str
    hashtags: tuple[str, ...]
    photos: tuple[str, ...] = ()


class Recordings:
    """Builds replay recordings whose post ids always grow, across every call."""

    def __init__(self) -> None:
        self._post_ids = itertools.count(FIRST_POST_ID, 1_000_003)
        self._media_ids = itertools.count(FIRST_MEDIA_ID, 7_919)
        self._moments = itertools.count(0, 17)

    def build(self, posts: Sequence[PostSpec]) -> Recording:
        """One page of ``posts`` (given oldest first), newest first as X returns it."""
        built: list[XPost] = []
        media: list[XMedia] = []
        for spec in posts:
            text = spec.words
            tags: list[XHashtag] = []
            for tag in spec.hashtags:
                start = len(text) + 1
                text += f" #{tag}"
                tags.append(XHashtag(start=start, end=len(text), tag=tag))
            keys = [f"3_{next(self._media_ids)}" for _ in spec.photos]
            media.extend(
                XMedia(media_key=key, type=PHOTO, url=url)
                for key, url in zip(keys, spec.photos, strict=True)
            )
            moment = DEFAULT_START + datetime.timedelta(seconds=next(self._moments))
            built.append(
                XPost(
                    id=str(next(self._post_ids)),
                    text=text,
                    created_at=moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    author_id=AUTHOR_ID,
                    entities=XEntities(hashtags=tags) if tags else None,
                    attachments=XAttachments(media_keys=keys) if keys else None,
                )
            )
        newest_first = list(reversed(built))
        ids = [int(post.id) for post in built]
        return Recording(
            pages=[
                Page(
                    status=200,
                    headers={
                        "x-rate-limit-limit": str(RATE_LIMIT),
                        "x-rate-limit-remaining": str(RATE_LIMIT - 1),
                        "x-rate-limit-reset": "1768480000",
                    },
                    body=XPostsPage(
                        data=newest_first,
                        includes=XMediaIncludes(media=media) if media else None,
                        meta=XMeta(
                            newest_id=str(max(ids)),
                            oldest_id=str(min(ids)),
                            result_count=len(built),
                        ),
                    ),
                )
            ]
        )


def publish(pipeline: LocalPipeline, recording: Recording) -> dict[str, Any]:
    """Replay ``recording`` through one scheduled producer run; its summary."""
    assert pipeline.recording_path is not None
    # The producer reads its recording on every run, as it would call X on every run.
    pipeline.recording_path.write_text(recording.to_json(), encoding="utf-8")
    result = pipeline.cloud.fire_schedule(PRODUCER)
    assert result.error is None, result.error
    payload: dict[str, Any] = result.payload
    return payload


def settle(pipeline: LocalPipeline, timeout: float = SETTLE_SECONDS) -> None:
    status = pipeline.cloud.wait_until_idle(timeout=timeout)
    assert status.idle, f"the pipeline is still busy after {timeout} s: {status}"


def execution_arn(stack: DeployedStack, name: str) -> str:
    machine = stack.resource(STATE_MACHINE)
    return f"{machine.replace(':stateMachine:', ':execution:')}:{name}"


def execution_name(url: str, sequence: int = 1) -> str:
    """The name of the ``sequence``-th execution for ``url`` (the classifier's rule)."""
    return _execution_name(url, sequence)


def executions_of(stack: DeployedStack, url: str) -> list[accounting.ExecutionOutcome]:
    """Every execution started for ``url``, oldest name first."""
    found = accounting.execution_outcomes(
        stack.client("stepfunctions"), stack.resource(STATE_MACHINE)
    )
    return sorted((e for e in found if e.url == url), key=lambda e: e.name)


def result_item(stack: DeployedStack, url: str, sort_key: str = "RESULT") -> dict[str, Any]:
    """A ResultsTable item as plain Python values (numbers as Decimal)."""
    response = stack.client("dynamodb").get_item(
        TableName=stack.resource(RESULTS_TABLE),
        Key={"pk": {"S": url}, "sk": {"S": sort_key}},
        ConsistentRead=True,
    )
    item = response.get("Item")
    assert item is not None, f"no {sort_key} item for {url}"
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def classifier_log_entries(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    """Every JSON log line the classifier wrote, oldest invocation first."""
    function_name = pipeline.cloud.resources[CLASSIFIER]
    entries: list[dict[str, Any]] = []
    for record in pipeline.cloud.invocations():
        if record.function_name != function_name:
            continue
        for line in record.logs.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def record_outcomes(pipeline: LocalPipeline, url: str) -> Counter[str]:
    """How the classifier ended each record carrying ``url`` (its ``record_outcome`` records)."""
    digest = url_digest(url)
    logs = [json.dumps(entry) for entry in classifier_log_entries(pipeline)]
    return Counter(
        record.outcome
        for record in accounting.classifier_records(["\n".join(logs)])
        if record.url_sha256 == digest
    )


def route_message(recording: Recording, url: str, route: str, attempt: int = 0) -> dict[str, Any]:
    """The route message the producer writes for the one post of ``recording`` showing ``url``."""
    page = recording.pages[0].body
    keys = {m.media_key for m in (page.includes.media if page.includes else []) if m.url == url}
    posts = [
        post for post in page.data if post.attachments and keys & set(post.attachments.media_keys)
    ]
    assert len(posts) == 1, f"{len(posts)} posts show {url}"
    post = posts[0]
    assert post.attachments is not None
    (media_key,) = keys & set(post.attachments.media_keys)
    return {
        "url": url,
        "post_id": post.id,
        "media_key": media_key,
        "text": post.text,
        "hashtags": [tag.tag for tag in (post.entities.hashtags if post.entities else [])],
        "route": route,
        "attempt": attempt,
    }


def dead_letters_of(stack: DeployedStack, queue: str) -> list[DeadLetter]:
    return [letter for letter in list_dead_letters(stack, limit=1_000) if letter.queue == queue]


def workflow_letter_row(letter: DeadLetter) -> dict[str, Any]:
    """A workflow dead letter without what SQS assigns (ids, handles, receive counts).

    The Lambda error's ``Cause`` is parsed: its stack trace names files of this machine.
    """
    body = json.loads(letter.body)
    cause = json.loads(body["error"]["Cause"])
    return {
        "queue": letter.queue,
        "route": letter.route,
        "error": letter.error,
        "message": body["message"],
        "error_type": cause["errorType"],
        "error_message": cause["errorMessage"],
        "body_error": body["error"]["Error"],
        "execution": body["execution"],
        "status": body["status"],
        "failed_state": body["failed_state"],
        "detected_by": body["detected_by"],
    }


def rule_state(pipeline: LocalPipeline) -> tuple[str, str]:
    """The EveryMinute rule's state and expression as EventBridge holds them."""
    rule = pipeline.cloud.schedules[SCHEDULE_RULE]
    described = pipeline.cloud.client("events").describe_rule(Name=rule.name)
    return described["State"], described["ScheduleExpression"]
