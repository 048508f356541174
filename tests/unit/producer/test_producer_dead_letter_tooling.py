"""Producer letters as `tweetlens dlq` and the demo's accounting see them.

They are listed with their error, reason and route, never sent back by a redrive (they hold
X's data, not a message a queue takes), and settle no published message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType

from tests.unit.producer.producer_testkit import REGION, Aws, FakeLambdaContext, load_event
from tweetlens.accounting import account
from tweetlens.dlq import PRODUCER_DLQ, DeadLetter, list_dead_letters, redrive
from tweetlens.stack import DeployedStack


def run_over_missing_includes(
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> dict[str, object]:
    """One run over the recording whose posts miss three media: three photo letters."""
    app = load_app(replay_env("x_api_search_missing_includes.json"))
    result: dict[str, object] = app.lambda_handler(
        load_event("producer_scheduled.json"), FakeLambdaContext()
    )
    return result


def stack_of(aws: Aws) -> DeployedStack:
    return DeployedStack(
        resources={
            PRODUCER_DLQ: aws.dead_letter_queue_url,
            "CatsQueue": aws.queue_urls["cats"],
            "DogsQueue": aws.queue_urls["dogs"],
        },
        region=REGION,
    )


def rows(letters: list[DeadLetter]) -> list[tuple[str, str, str]]:
    return sorted((letter.queue, letter.route, letter.error) for letter in letters)


def test_list_shows_each_letter_with_its_error_reason_and_route(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> None:
    # GIVEN a run that dead-lettered three photos whose media X could not find
    run_over_missing_includes(replay_env, load_app)

    # WHEN the dead letters are listed
    letters = list_dead_letters(stack_of(aws))

    # THEN each shows the letter's error and route, and its reason
    assert rows(letters) == [
        (PRODUCER_DLQ, "cats", "MediaMissing"),
        (PRODUCER_DLQ, "cats", "MediaMissing"),
        (PRODUCER_DLQ, "dogs", "MediaMissing"),
    ]
    assert sorted(letter.reason for letter in letters)[0] == (
        "media key 3_1861726837800046600 is not in includes.media; "
        "X: Could not find media with id: [3_1861726837800046600]."
    )


def test_redrive_keeps_producer_letters_where_they_are(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> None:
    # GIVEN three producer letters
    run_over_missing_includes(replay_env, load_app)
    aws.drain("cats")
    skipped: list[DeadLetter] = []

    # WHEN every dead-letter queue is redriven
    moved = redrive(stack_of(aws), on_skipped=skipped.append)

    # THEN none was sent anywhere, and all are still on their queue, unchanged
    assert moved == {PRODUCER_DLQ: 0}
    assert len(skipped) == 3
    assert aws.drain("cats") == []
    assert aws.drain("dogs") == []
    assert sorted(map(json.dumps, aws.dead_letters())) == sorted(
        json.dumps(json.loads(letter.body)) for letter in skipped
    )


def test_accounting_counts_no_producer_letter_against_a_route(
    aws: Aws,
    replay_env: Callable[[str], dict[str, str]],
    load_app: Callable[[dict[str, str]], ModuleType],
) -> None:
    # GIVEN a run that published one photo and dead-lettered three
    result = run_over_missing_includes(replay_env, load_app)

    # WHEN the demo accounts for what was published
    tally = account(
        published={"cats": 1, "dogs": 0},
        outcomes={},
        executions=[],
        dead_letters=list_dead_letters(stack_of(aws)),
        route_of_source={},
    )

    # THEN the letters settle nothing: the one published photo is all that is outstanding
    assert result["published"] == {"cats": 1, "dogs": 0}
    assert {route: t.dead_letters for route, t in tally.routes.items()} == {"cats": {}, "dogs": {}}
    assert tally.lost == 1
