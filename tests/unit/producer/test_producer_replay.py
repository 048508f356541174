"""The replay transport adapter answers tweepy's recent search as X does."""

from __future__ import annotations

import copy
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
import tweepy
from moto import mock_aws

from producer.page import SearchPage
from producer.replay import RecordingError, ReplayAdapter, load_recording
from producer.source import (
    RateLimit,
    RateLimited,
    TweepySearch,
    XApiError,
    read_rate_limit,
    replay_source,
)
from tests.unit.producer.producer_testkit import EVENTS, load_event
from tweetlens_xapi.models import XMeta
from tweetlens_xapi.recording import RecordedPage, ReplayRecording

QUERY = "(#cat OR #kitten OR #dog) has:images -is:retweet"
TOKEN_PAGE_1 = "b26v89c19zqg8o3fpzhm4ixbbpfq9ubyr2zd6bmyoyjh9"


@pytest.fixture
def photos() -> ReplayRecording:
    return ReplayRecording.model_validate(load_event("x_api_search_photos.json"))


def test_search_sends_the_documented_parameters(photos: ReplayRecording) -> None:
    # GIVEN a tweepy client whose session answers from the recording
    client = tweepy.Client(return_type=requests.Response)
    adapter = ReplayAdapter(photos)
    client.session.mount("https://", adapter)

    # WHEN one page is searched with a checkpoint and a pagination token
    TweepySearch(client).search(
        QUERY, since_id="1861700000000000000", next_token=TOKEN_PAGE_1, max_results=50
    )

    # THEN tweepy sent exactly the recent-search request the producer specifies
    sent = urlsplit(adapter.requests[0].url or "")
    assert (adapter.requests[0].method, sent.hostname, sent.path) == (
        "GET",
        "api.twitter.com",
        "/2/tweets/search/recent",
    )
    assert parse_qs(sent.query) == {
        "query": [QUERY],
        "expansions": ["attachments.media_keys"],
        "media.fields": ["url,type"],
        "tweet.fields": ["created_at,entities,author_id"],
        "max_results": ["50"],
        "since_id": ["1861700000000000000"],
        "next_token": [TOKEN_PAGE_1],
    }


def test_first_page_without_token(photos: ReplayRecording) -> None:
    # GIVEN the replay source WHEN searched without a token
    result = replay_source(photos).search(QUERY, since_id=None, next_token=None, max_results=10)

    # THEN it gets the first recorded page and its rate-limit headers
    assert result.page.meta == XMeta(
        result_count=6,
        newest_id="1861704939338346519",
        oldest_id="1861704104671125512",
        next_token=TOKEN_PAGE_1,
    )
    assert result.rate_limit == RateLimit(limit=450, remaining=449, reset=1732700900)


def test_token_leads_to_the_following_page(photos: ReplayRecording) -> None:
    # GIVEN the replay source WHEN searched with page one's next_token
    result = replay_source(photos).search(
        QUERY, since_id=None, next_token=TOKEN_PAGE_1, max_results=10
    )

    # THEN it gets page two, the last one
    assert isinstance(result.page, SearchPage)
    assert [post.id for post in result.page.posts] == [
        "1861703928512122898",
        "1861703739766804505",
        "1861703559413956615",
    ]
    assert result.page.meta.next_token is None
    assert result.rate_limit == RateLimit(limit=450, remaining=448, reset=1732700900)


def test_unknown_token_is_a_bad_request(photos: ReplayRecording) -> None:
    # GIVEN the replay source WHEN searched with a token no page issued
    with pytest.raises(XApiError) as raised:
        replay_source(photos).search(QUERY, since_id=None, next_token="bogus", max_results=10)

    # THEN it fails as X does, with a 400
    assert str(raised.value) == (
        "X API answered 400: The `next_token` query parameter value [bogus] is not valid"
    )


def test_since_id_drops_older_posts_their_media_and_the_next_page(photos: ReplayRecording) -> None:
    # GIVEN a checkpoint at the third post of page one
    session = requests.Session()
    session.mount("https://", ReplayAdapter(photos))

    # WHEN the first page is requested since that post
    response = session.get(
        "https://api.twitter.com/2/tweets/search/recent",
        params={"query": QUERY, "since_id": "1861704557658902533"},
    )

    # THEN only the two newer posts and their four photos remain, and meta is recomputed
    page_one = copy.deepcopy(photos.pages[0].body)
    assert response.status_code == 200
    assert response.json() == {
        "data": page_one["data"][:2],
        "includes": {"media": page_one["includes"]["media"][:4]},
        "meta": {
            "result_count": 2,
            "newest_id": "1861704939338346519",
            "oldest_id": "1861704758983336004",
        },
    }


def test_since_id_newer_than_everything_gives_an_empty_page(photos: ReplayRecording) -> None:
    # GIVEN a checkpoint at the newest post WHEN searched since it
    result = replay_source(photos).search(
        QUERY, since_id="1861704939338346519", next_token=None, max_results=10
    )

    # THEN the page is empty and final, as X answers
    assert result.page == SearchPage(meta=XMeta(result_count=0))


def test_recorded_429_raises_rate_limited() -> None:
    # GIVEN a recording whose first answer is 429
    recording = ReplayRecording.model_validate(load_event("x_api_search_too_many_requests.json"))

    # WHEN searched THEN tweepy's TooManyRequests becomes RateLimited with the reset time
    with pytest.raises(RateLimited) as raised:
        replay_source(recording).search(QUERY, since_id=None, next_token=None, max_results=10)
    assert raised.value.reset_time == 1732703400


def test_recorded_401_raises_x_api_error() -> None:
    # GIVEN a recorded 401 (a revoked token)
    recording = ReplayRecording(
        pages=[RecordedPage(status=401, body={"title": "Unauthorized", "status": 401})]
    )

    # WHEN searched THEN the failure is an XApiError naming the status
    with pytest.raises(XApiError, match=r"^X API answered 401: Unauthorized$"):
        replay_source(recording).search(QUERY, since_id=None, next_token=None, max_results=10)


def test_api_x_com_host_is_answered_too(photos: ReplayRecording) -> None:
    # GIVEN a session with the adapter WHEN the same endpoint is called on api.x.com
    session = requests.Session()
    session.mount("https://", ReplayAdapter(photos))
    response = session.get("https://api.x.com/2/tweets/search/recent", params={"query": QUERY})

    # THEN it is answered like api.twitter.com
    assert response.status_code == 200
    assert response.json() == photos.pages[0].body
    assert response.headers["x-rate-limit-remaining"] == "449"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.twitter.com/2/tweets/search/all?query=x",
        "https://example.com/2/tweets/search/recent?query=x",
    ],
)
def test_anything_else_is_not_found(photos: ReplayRecording, url: str) -> None:
    # GIVEN a session with the adapter WHEN another endpoint or host is called
    session = requests.Session()
    session.mount("https://", ReplayAdapter(photos))

    # THEN it is a 404 and no connection is made
    assert session.get(url).status_code == 404


def test_search_without_query_is_a_bad_request(photos: ReplayRecording) -> None:
    session = requests.Session()
    session.mount("https://", ReplayAdapter(photos))
    response = session.get("https://api.twitter.com/2/tweets/search/recent")
    assert (response.status_code, response.json()["title"]) == (400, "Invalid Request")


def test_rate_limit_headers() -> None:
    # GIVEN headers at 90 % used, just under, and none
    at_limit = read_rate_limit({"x-rate-limit-limit": "450", "x-rate-limit-remaining": "45"})
    under = read_rate_limit({"x-rate-limit-limit": "450", "x-rate-limit-remaining": "46"})

    # THEN the used fraction is exact and missing headers give None
    assert at_limit is not None
    assert under is not None
    assert at_limit.used_fraction == 0.9
    assert under.used_fraction < 0.9
    assert read_rate_limit({}) is None
    assert read_rate_limit({"x-rate-limit-limit": "n/a", "x-rate-limit-remaining": "1"}) is None


def test_load_recording_from_a_file() -> None:
    recording = load_recording(str(EVENTS / "x_api_search_rate_limited.json"))
    assert [page.headers["x-rate-limit-remaining"] for page in recording.pages] == [
        "46",
        "45",
        "44",
    ]


def test_load_recording_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.json"
    with pytest.raises(RecordingError) as raised:
        load_recording(str(missing))
    assert str(raised.value) == (
        f"cannot read recording {missing}: [Errno 2] No such file or directory: '{missing}'"
    )


def test_load_recording_that_is_not_a_recording() -> None:
    with pytest.raises(RecordingError, match=r"^recording .*producer_scheduled.json is malformed"):
        load_recording(str(EVENTS / "producer_scheduled.json"))


def test_load_recording_from_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        # GIVEN a recording in a bucket, and a key that does not exist
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="replays")
        s3.put_object(
            Bucket="replays",
            Key="empty.json",
            Body=(EVENTS / "x_api_search_empty.json").read_bytes(),
        )

        # WHEN both are loaded THEN the first reads, the second fails with a named error
        assert load_recording("s3://replays/empty.json", s3).pages[0].body == {
            "meta": {"result_count": 0}
        }
        with pytest.raises(RecordingError, match=r"^cannot read recording s3://replays/gone"):
            load_recording("s3://replays/gone.json", s3)


def test_load_recording_s3_uri_without_key() -> None:
    with pytest.raises(RecordingError, match=r"^replay uri s3://replays is not s3://bucket/key$"):
        load_recording("s3://replays")
