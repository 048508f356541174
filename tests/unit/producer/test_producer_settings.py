"""ProducerSettings: the environment is validated with errors that name the variable."""

from __future__ import annotations

import pytest

from producer.settings import InvalidSettings, ProducerSettings

VALID = {
    "HASHTAG_ROUTES": '{"cats": "cat, #Cats,kitten", "dogs": "dog,dogs,puppy"}',
    "ROUTE_QUEUE_URLS": (
        '{"cats": "https://sqs.us-east-1.amazonaws.com/123456789012/cats",'
        ' "dogs": "https://sqs.us-east-1.amazonaws.com/123456789012/dogs"}'
    ),
    "CHECKPOINTS_TABLE": "tweetlens-dev-CheckpointsTable",
    "PRODUCER_DLQ_URL": (
        "https://sqs.us-east-1.amazonaws.com/123456789012/tweetlens-dev-ProducerDeadLetterQueue-X"
    ),
    "POST_SOURCE": "x-api",
    "REPLAY_URI": "",
    "BEARER_TOKEN_STORE": "secretsmanager",
    "BEARER_TOKEN_NAME": "tweetlens/x-bearer-token",
    "MAX_RESULTS_PER_PAGE": "100",
}


def invalid(**changes: str | None) -> str:
    environment = {**VALID, **changes}
    with pytest.raises(InvalidSettings) as raised:
        ProducerSettings.from_environ(
            {name: value for name, value in environment.items() if value is not None}
        )
    return str(raised.value)


def test_valid_environment_builds_the_query_and_checkpoint_id() -> None:
    # GIVEN the environment of a deployed producer
    # WHEN it is validated
    settings = ProducerSettings.from_environ(VALID)

    # THEN hashtags are normalised and every one is in the query, in configuration order
    assert settings.hashtag_routes == {
        "cats": ("cat", "cats", "kitten"),
        "dogs": ("dog", "dogs", "puppy"),
    }
    assert settings.search_query == (
        "(#cat OR #cats OR #kitten OR #dog OR #dogs OR #puppy) has:images -is:retweet"
    )
    assert settings.checkpoint_id == "search#477ec7bc87d6cf63"
    assert settings.max_results_per_page == 100


def test_post_source_defaults_to_x_api() -> None:
    # GIVEN no POST_SOURCE
    environment = {name: value for name, value in VALID.items() if name != "POST_SOURCE"}

    # WHEN it is validated THEN the real API is used
    assert ProducerSettings.from_environ(environment).post_source == "x-api"


def test_replay_needs_no_token_settings() -> None:
    # GIVEN a replaying producer with no token variables
    environment = {
        **{name: value for name, value in VALID.items() if not name.startswith("BEARER")},
        "POST_SOURCE": "replay",
        "REPLAY_URI": "s3://tweetlens-demo/recordings/photos.json",
    }

    # WHEN it is validated THEN it is accepted
    assert ProducerSettings.from_environ(environment).replay_uri == (
        "s3://tweetlens-demo/recordings/photos.json"
    )


def test_every_missing_variable_is_named() -> None:
    # GIVEN an empty environment WHEN it is validated THEN each required variable is named
    with pytest.raises(InvalidSettings) as raised:
        ProducerSettings.from_environ({})
    assert str(raised.value) == (
        "invalid producer environment: HASHTAG_ROUTES: Field required; "
        "ROUTE_QUEUE_URLS: Field required; CHECKPOINTS_TABLE: Field required; "
        "PRODUCER_DLQ_URL: Field required; MAX_RESULTS_PER_PAGE: Field required"
    )


def test_routes_that_are_not_json() -> None:
    assert invalid(HASHTAG_ROUTES="cats=cat") == (
        "invalid producer environment: HASHTAG_ROUTES: Value error, "
        "is not valid JSON (Expecting value)"
    )


def test_routes_that_are_not_an_object() -> None:
    assert invalid(HASHTAG_ROUTES='["cat"]') == (
        "invalid producer environment: HASHTAG_ROUTES: Value error, must be a JSON object"
    )


def test_route_name_the_message_contract_rejects() -> None:
    assert invalid(HASHTAG_ROUTES='{"Cats": "cat"}', ROUTE_QUEUE_URLS='{"Cats": "https://q"}') == (
        "invalid producer environment: HASHTAG_ROUTES: Value error, "
        "route 'Cats' must match ^[a-z0-9][a-z0-9-]{0,39}$"
    )


def test_route_without_hashtags() -> None:
    assert invalid(HASHTAG_ROUTES='{"cats": " , ", "dogs": "dog"}') == (
        "invalid producer environment: HASHTAG_ROUTES: Value error, route 'cats' has no hashtags"
    )


def test_hashtag_with_a_space() -> None:
    assert invalid(HASHTAG_ROUTES='{"cats": "cat lovers", "dogs": "dog"}') == (
        "invalid producer environment: HASHTAG_ROUTES: Value error, "
        "route 'cats' has an invalid hashtag 'cat lovers'"
    )


def test_route_value_that_is_not_a_string() -> None:
    assert invalid(HASHTAG_ROUTES='{"cats": ["cat"], "dogs": "dog"}') == (
        "invalid producer environment: HASHTAG_ROUTES: Value error, "
        "route 'cats' must map to a comma-separated string"
    )


def test_routes_without_a_queue() -> None:
    assert invalid(ROUTE_QUEUE_URLS='{"cats": "https://sqs.example/cats"}') == (
        "invalid producer environment: configuration: Value error, HASHTAG_ROUTES and "
        "ROUTE_QUEUE_URLS must name the same routes, got ['cats', 'dogs'] and ['cats']"
    )


def test_queue_url_that_is_not_a_url() -> None:
    assert invalid(ROUTE_QUEUE_URLS='{"cats": "cats-queue", "dogs": "https://q/dogs"}') == (
        "invalid producer environment: ROUTE_QUEUE_URLS: Value error, "
        "queue url of route 'cats' must be an http(s) URL"
    )


def test_dead_letter_queue_url_that_is_not_a_url() -> None:
    # GIVEN the queue's name where its URL belongs WHEN validated THEN the variable is named
    assert invalid(PRODUCER_DLQ_URL="tweetlens-dev-ProducerDeadLetterQueue") == (
        "invalid producer environment: PRODUCER_DLQ_URL: "
        "String should match pattern '^https?://[^\\s/]+/\\S+$'"
    )


def test_unknown_post_source() -> None:
    assert invalid(POST_SOURCE="firehose") == (
        "invalid producer environment: POST_SOURCE: Input should be 'x-api' or 'replay'"
    )


def test_replay_without_uri() -> None:
    assert invalid(POST_SOURCE="replay", REPLAY_URI="") == (
        "invalid producer environment: configuration: Value error, "
        "REPLAY_URI is required when POST_SOURCE is replay"
    )


def test_x_api_without_token_name() -> None:
    assert invalid(BEARER_TOKEN_NAME=None) == (
        "invalid producer environment: configuration: Value error, "
        "BEARER_TOKEN_STORE and BEARER_TOKEN_NAME are required when POST_SOURCE is x-api"
    )


def test_unknown_token_store() -> None:
    assert invalid(BEARER_TOKEN_STORE="env") == (
        "invalid producer environment: BEARER_TOKEN_STORE: "
        "Input should be 'secretsmanager' or 'ssm'"
    )


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("9", "Input should be greater than or equal to 10"),
        ("101", "Input should be less than or equal to 100"),
        ("ten", "Input should be a valid integer, unable to parse string as an integer"),
    ],
)
def test_page_size_outside_what_x_accepts(value: str, error: str) -> None:
    assert invalid(MAX_RESULTS_PER_PAGE=value) == (
        f"invalid producer environment: MAX_RESULTS_PER_PAGE: {error}"
    )


def test_query_longer_than_x_accepts() -> None:
    # GIVEN 400 ten-character hashtags and #dog WHEN validated THEN the query length is refused
    tags = ",".join(f"tag{number:07d}" for number in range(400))
    assert invalid(HASHTAG_ROUTES=f'{{"cats": "{tags}", "dogs": "dog"}}') == (
        "invalid producer environment: configuration: Value error, HASHTAG_ROUTES makes a "
        "search query of 6029 characters, more than the 4096 X accepts"
    )
