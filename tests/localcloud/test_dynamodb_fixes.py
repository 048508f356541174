"""moto's DynamoDB in the local cloud: transactions beside concurrent writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.localcloud.conftest import SAMPLE_TEMPLATE
from tweetlens.localcloud import LocalCloud

pytestmark = pytest.mark.integration

WRITERS = 3
WRITES = 30


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(SAMPLE_TEMPLATE, run_schedules=False, run_pollers=False) as local_cloud:
        yield local_cloud


def test_transactions_and_writes_side_by_side_all_succeed(cloud: LocalCloud) -> None:
    # GIVEN threads writing items while others write transactions to the same table
    table = cloud.resources["ItemsTable"]
    errors: list[Exception] = []

    def put(worker: int) -> None:
        dynamodb = cloud.client("dynamodb")
        for index in range(WRITES):
            try:
                dynamodb.put_item(TableName=table, Item={"pk": {"S": f"plain-{worker}-{index}"}})
            except Exception as error:  # every failure is the finding
                errors.append(error)

    def transact(worker: int) -> None:
        dynamodb = cloud.client("dynamodb")
        for index in range(WRITES):
            try:
                dynamodb.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": table,
                                "Item": {"pk": {"S": f"tx-{worker}-{index}-{n}"}},
                            }
                        }
                        for n in range(5)
                    ]
                )
            except Exception as error:
                errors.append(error)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(WRITERS)]
    threads += [threading.Thread(target=transact, args=(n,)) for n in range(WRITERS)]

    # WHEN they all run at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # THEN every thread finished, no request failed, and the table holds exactly the items
    # written: each plain item and each transaction's five, none lost and none extra (the
    # module's cloud serves this test alone, and nothing else writes its table)
    assert [thread.name for thread in threads if thread.is_alive()] == []
    assert errors == []
    pages = cloud.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    keys = [item["pk"]["S"] for page in pages for item in page["Items"]]
    expected = {f"plain-{w}-{i}" for w in range(WRITERS) for i in range(WRITES)} | {
        f"tx-{w}-{i}-{n}" for w in range(WRITERS) for i in range(WRITES) for n in range(5)
    }
    assert len(expected) == WRITERS * WRITES * 6
    assert sorted(keys) == sorted(expected)
