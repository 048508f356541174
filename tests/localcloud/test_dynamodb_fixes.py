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

    # THEN no request failed and every item is there
    assert errors == []
    items = cloud.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"]
    assert items >= WRITERS * WRITES * 6
