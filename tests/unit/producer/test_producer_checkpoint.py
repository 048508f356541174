"""CheckpointStore: one item per search, written only over the version that was read."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError

from producer.checkpoint import Checkpoint, CheckpointConflict, CheckpointError, CheckpointStore
from producer.settings import AWS_CONFIG
from tests.unit.producer.producer_testkit import REGION, TABLE, Aws

CHECKPOINT_ID = "search#477ec7bc87d6cf63"


def test_absent_checkpoint_reads_as_empty(aws: Aws) -> None:
    assert CheckpointStore(aws.dynamodb, TABLE, CHECKPOINT_ID).load() == Checkpoint()


def test_saved_progress_reads_back(aws: Aws) -> None:
    # GIVEN a store with a fixed clock
    store = CheckpointStore(aws.dynamodb, TABLE, CHECKPOINT_ID, clock=lambda: "2024-11-27T09:34:01")

    # WHEN an unfinished run saves its progress
    saved = store.save(
        Checkpoint(), since_id="1861600000000000000", next_token="tok", newest_id="186170"
    )

    # THEN the item has the documented layout and reads back equal
    assert aws.dynamodb.get_item(TableName=TABLE, Key={"id": {"S": CHECKPOINT_ID}})["Item"] == {
        "id": {"S": CHECKPOINT_ID},
        "since_id": {"S": "1861600000000000000"},
        "next_token": {"S": "tok"},
        "newest_id": {"S": "186170"},
        "updated_at": {"S": "2024-11-27T09:34:01"},
    }
    assert store.load() == saved


def test_completion_clears_the_unfinished_run(aws: Aws) -> None:
    store = CheckpointStore(aws.dynamodb, TABLE, CHECKPOINT_ID)
    progress = store.save(Checkpoint(), since_id=None, next_token="tok", newest_id="186170")
    store.save(progress, since_id="186170", next_token=None, newest_id=None)
    assert store.load().model_dump(exclude={"updated_at"}) == {
        "since_id": "186170",
        "next_token": None,
        "newest_id": None,
        "oldest_id": None,
        "unreadable_reads": 0,
    }


def test_unreadable_reads_are_a_number_next_to_the_place_they_count_for(aws: Aws) -> None:
    # GIVEN a store with a fixed clock
    store = CheckpointStore(aws.dynamodb, TABLE, CHECKPOINT_ID, clock=lambda: "2024-11-27T09:35:01")

    # WHEN a run that found the page at "tok" unreadable twice saves its place
    saved = store.save(
        Checkpoint(),
        since_id="1861600000000000000",
        next_token="tok",
        newest_id="1861700000000000000",
        oldest_id="1861650000000000000",
        unreadable_reads=2,
    )

    # THEN the count is stored as a number beside the place, and reads back equal
    assert aws.dynamodb.get_item(TableName=TABLE, Key={"id": {"S": CHECKPOINT_ID}})["Item"] == {
        "id": {"S": CHECKPOINT_ID},
        "since_id": {"S": "1861600000000000000"},
        "next_token": {"S": "tok"},
        "newest_id": {"S": "1861700000000000000"},
        "oldest_id": {"S": "1861650000000000000"},
        "unreadable_reads": {"N": "2"},
        "updated_at": {"S": "2024-11-27T09:35:01"},
    }
    assert store.load() == saved


def test_write_over_a_checkpoint_another_run_moved_is_refused(aws: Aws) -> None:
    # GIVEN two overlapping runs that read the same (absent) checkpoint
    store = CheckpointStore(aws.dynamodb, TABLE, CHECKPOINT_ID)
    read_by_both = store.load()
    store.save(read_by_both, since_id="186175", next_token=None, newest_id=None)

    # WHEN the slower one saves over the version it read
    with pytest.raises(CheckpointConflict) as raised:
        store.save(read_by_both, since_id="186170", next_token=None, newest_id=None)

    # THEN it is refused and the faster run's checkpoint stays
    assert str(raised.value) == f"checkpoint {CHECKPOINT_ID} changed since None"
    assert store.load().since_id == "186175"


def test_missing_table_is_a_checkpoint_error(aws: Aws) -> None:
    store = CheckpointStore(aws.dynamodb, "no-such-table", CHECKPOINT_ID)
    with pytest.raises(CheckpointError, match=r"^cannot read checkpoint search#477ec7bc87d6cf63"):
        store.load()


def test_retried_write_whose_first_attempt_committed_is_not_a_conflict(aws: Aws) -> None:
    # GIVEN the producer's own client config, and a first PutItem whose answer is lost after
    # the table applied it (botocore sees a read timeout and retries the same write)
    client = boto3.client("dynamodb", region_name=REGION, config=AWS_CONFIG)
    put_items: list[str] = []

    def lose_first_answer(request: Any, **_: Any) -> None:
        # Registered after moto's own before-send handler, so this runs once moto has written.
        if request.headers["X-Amz-Target"].endswith(b".PutItem"):
            put_items.append("sent")
            if len(put_items) == 1:
                raise ReadTimeoutError(endpoint_url=request.url)

    client.meta.events.register("before-send", lose_first_answer)
    store = CheckpointStore(client, TABLE, CHECKPOINT_ID, clock=lambda: "2024-11-27T09:36:01")

    # WHEN a run saves its checkpoint over the one it read
    saved = store.save(Checkpoint(), since_id="186175", next_token=None, newest_id=None)

    # THEN the retry's failed condition is recognised as its own write: saved, no conflict
    assert put_items == ["sent", "sent"]
    assert saved == Checkpoint(since_id="186175", updated_at="2024-11-27T09:36:01")
    assert store.load() == saved
