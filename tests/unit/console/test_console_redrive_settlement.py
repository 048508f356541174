"""rv20 repro: with `up --console` (per-message settlement) a redrive from the Dead letters page
turns the redriven message into 'lost' and makes the producer's count disagree."""

from __future__ import annotations

import html
import json
import re

from tests.unit.console.console_testkit import (
    ORIGIN,
    FakeCloud,
    Stack,
    client_of,
    console_app,
    csrf_token,
    photo_message,
)
from tests.unit.console.test_console_pages import URL, _classifier_line
from tweetlens import demo
from tweetlens.console import CloudActivity, ConsoleData


def test_redrive_then_overview(stack: Stack) -> None:
    cloud = FakeCloud()
    cloud.log("ProducerFunction", {"message": "Producer run finished", "published": {"cats": 1}})
    with demo.record_accepted(stack.deployed) as accepted:
        moved = stack.send("CatsQueue", json.dumps(photo_message(f"{URL}m1.jpg")))
        for _ in range(6):  # the classifier failed on every receive: the redrive policy moves it
            stack.client("sqs").receive_message(
                QueueUrl=stack.deployed.resources["CatsQueue"], VisibilityTimeout=0
            )
        console = ConsoleData.fixed(stack.deployed, CloudActivity(cloud), accepted)
        client = client_of(console_app(console))
        before = html.unescape(client.get("/overview/table").text)
        print("BEFORE:", re.findall(r'<p class="error">(.*?)</p>', before))
        token = csrf_token(client)
        r = client.post(
            "/dead-letters/redrive", data={"csrf_token": token}, headers={"Origin": ORIGIN}
        )
        assert r.status_code == 303
        # the classifier takes the redriven message and classifies it this time
        queue = stack.deployed.resources["CatsQueue"]
        sqs = stack.client("sqs")
        (m,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        cloud.log("ClassifierFunction", _classifier_line(m["MessageId"], "Duplicate"))
        after = html.unescape(client.get("/overview/table").text)
    problems = re.findall(r'<p class="error">(.*?)</p>', after)
    print("AFTER:", problems)
    assert problems == [], problems
