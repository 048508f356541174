"""Helpers of the producer's unit tests: sample events, a Lambda context, moto views, EMF."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[3] / "events"
REGION = "us-east-1"
TABLE = "tweetlens-test-CheckpointsTable"
ROUTES = '{"cats": "cat,cats,kitten", "dogs": "dog,dogs,puppy"}'


def load_event(name: str) -> dict[str, Any]:
    """A sample event or recording from events/."""
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads, with a scripted remaining time."""

    remaining: list[int] = field(default_factory=lambda: [55_000])
    function_name: str = "tweetlens-test-ProducerFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:tweetlens-test-ProducerFunction"
    )
    aws_request_id: str = "6f7c2a1e-0d4b-4a0e-9a55-2a1f0c8b7d11"

    def get_remaining_time_in_millis(self) -> int:
        # The last value repeats, so one value means "always this much time left".
        return self.remaining.pop(0) if len(self.remaining) > 1 else self.remaining[0]


@dataclass
class Aws:
    sqs: Any
    dynamodb: Any
    queue_urls: dict[str, str]
    dead_letter_queue_url: str

    def drain(self, route: str) -> list[dict[str, Any]]:
        """Every message body on a route queue, parsed."""
        return self._drain(self.queue_urls[route])

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every producer dead letter, parsed, after checking each body is ASCII JSON."""
        return self._drain(self.dead_letter_queue_url)

    def _drain(self, queue_url: str) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                if queue_url == self.dead_letter_queue_url:
                    assert message["Body"].isascii()
                bodies.append(json.loads(message["Body"]))

    def checkpoint(self) -> dict[str, str] | None:
        """The checkpoint item without ``updated_at``; numbers as their text, as stored."""
        items = self.dynamodb.scan(TableName=TABLE)["Items"]
        if not items:
            return None
        assert len(items) == 1
        return {
            name: value.get("S", value.get("N"))
            for name, value in items[0].items()
            if name != "updated_at"
        }


def emitted_metrics(stdout: str) -> dict[tuple[str, str | None], float]:
    """Metric values in the EMF records printed to stdout, keyed by (name, route dimension)."""
    values: dict[tuple[str, str | None], float] = {}
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                name = metric["Name"]
                if name == "ColdStart":
                    continue
                value = record[name]
                values[(name, record.get("route"))] = (
                    sum(value) if isinstance(value, list) else value
                )
    return values
