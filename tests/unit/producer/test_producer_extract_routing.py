"""Photos and hashtags from a search page, and fan-out to routes."""

from __future__ import annotations

from typing import Any

from producer.extract import Photo, PhotoProblem, PostPhotos, SkippedPost, extract_photos
from producer.page import SearchPage, read_page_object
from producer.routing import RejectedPhoto, Router
from tests.unit.producer.producer_testkit import load_event

ROUTES = {"cats": ("cat", "cats", "kitten"), "dogs": ("dog", "dogs", "puppy")}
GOOD_URL = "https://pbs.twimg.com/media/GdXk3pRWsAAe9Tn.jpg"


def page(recording: str, index: int) -> SearchPage:
    return body_page(load_event(recording)["pages"][index]["body"])


def body_page(body: dict[str, Any]) -> SearchPage:
    read = read_page_object(body)
    assert isinstance(read, SearchPage), read
    return read


def post_with_media(*media: dict[str, Any], keys: list[str] | None = None) -> SearchPage:
    """A one-post page tagged #cat whose post points at ``keys`` (default: the media's keys)."""
    return body_page(
        {
            "data": [
                {
                    "id": "1861704939338346519",
                    "text": "my #cat",
                    "attachments": {"media_keys": keys or [m["media_key"] for m in media]},
                    "entities": {"hashtags": [{"tag": "cat"}]},
                }
            ],
            "includes": {"media": list(media)},
            "meta": {"result_count": 1},
        }
    )


def test_only_photos_are_extracted_with_their_hashtags() -> None:
    # GIVEN page one of the sample recording (photo, 3 photos, video, GIF, quote, photo)
    # WHEN photos are extracted
    extraction = extract_photos(page("x_api_search_photos.json", 0))

    # THEN videos and GIFs are skipped and every photo keeps its url and post hashtags
    assert [post.post_id for post in extraction.posts] == [
        "1861704939338346519",
        "1861704758983336004",
        "1861704285026127923",
        "1861704104671125512",
    ]
    assert extraction.posts[1].photos == (
        Photo(
            media_key="3_1861704603794087997",
            url="https://pbs.twimg.com/media/GdXkz1aWMAA7q2R.jpg",
        ),
        Photo(
            media_key="3_1861704603794087999",
            url="https://pbs.twimg.com/media/GdXkz1bWAAEpL0m.jpg",
        ),
        Photo(
            media_key="3_1861704603794088001",
            url="https://pbs.twimg.com/media/GdXkz1cXkAAu4Vd.jpg",
        ),
    )
    assert extraction.posts[1].hashtags == ("kitten", "adoptdontshop")
    assert extraction.skipped == (
        SkippedPost(post_id="1861704557658902533", reason="no_photos"),
        SkippedPost(post_id="1861704461188472865", reason="no_photos"),
    )


def test_post_without_media_is_skipped() -> None:
    # GIVEN page two, whose first post has no attachments
    extraction = extract_photos(page("x_api_search_photos.json", 1))

    # THEN it is skipped as having no media
    assert extraction.skipped == (SkippedPost(post_id="1861703928512122898", reason="no_media"),)
    assert extraction.posts[0].hashtags == ("Cat", "Dog")


def test_media_missing_from_includes_costs_that_photo_with_what_x_said() -> None:
    # GIVEN a page where one post's media key is not in includes, and X says why in errors
    extraction = extract_photos(page("x_api_search_missing_includes.json", 0))

    # THEN the post is kept with the missing key as a problem, and X's detail as the reason
    assert extraction.skipped == ()
    assert [(post.post_id, post.photos) for post in extraction.posts] == [
        (
            "1861727349504217093",
            (
                Photo(
                    media_key="3_1861727194314969091",
                    url="https://pbs.twimg.com/media/GdY4bK2WwAAm7Hq.jpg",
                ),
            ),
        ),
        ("1861727177537101847", ()),
    ]
    assert extraction.posts[1].problems == (
        PhotoProblem(
            media_key="3_1861727022347853842",
            error="MediaMissing",
            reason="media key 3_1861727022347853842 is not in includes.media; "
            "X: Could not find media with id: [3_1861727022347853842].",
        ),
    )


def test_page_without_includes_gives_one_problem_per_media_key() -> None:
    # GIVEN a page with attachments but no includes at all
    extraction = extract_photos(page("x_api_search_missing_includes.json", 1))

    # THEN nothing crashes and each key of the post is a MediaMissing problem
    assert [(problem.media_key, problem.error) for problem in extraction.posts[0].problems] == [
        ("3_1861726837800046602", "MediaMissing"),
        ("3_1861726837800046600", "MediaMissing"),
    ]


def test_one_bad_photo_does_not_cost_the_other_photos_of_its_post() -> None:
    # GIVEN a post with a good photo, a photo without url, an unknown type, an invalid media
    # object, a missing key and a video
    media = [
        {"media_key": "3_1", "type": "photo", "url": GOOD_URL},
        {"media_key": "3_2", "type": "photo"},
        {"media_key": "16_3", "type": "hologram"},
        {"media_key": "3_4", "type": ["photo"]},
        {"media_key": "7_6", "type": "video"},
    ]

    # WHEN its photos are extracted
    extraction = extract_photos(
        post_with_media(*media, keys=["3_1", "3_2", "16_3", "3_4", "3_5", "7_6"])
    )

    # THEN the good photo is kept and each bad one is a named problem; the video is no photo
    assert extraction.posts[0].photos == (Photo(media_key="3_1", url=GOOD_URL),)
    assert [(p.media_key, p.error, p.reason) for p in extraction.posts[0].problems] == [
        ("3_2", "PhotoWithoutUrl", "photo without url"),
        ("16_3", "UnknownMediaType", "unknown media type 'hologram'"),
        ("3_4", "InvalidMedia", "type: Input should be a valid string"),
        ("3_5", "MediaMissing", "media key 3_5 is not in includes.media"),
    ]


def test_empty_page() -> None:
    extraction = extract_photos(page("x_api_search_empty.json", 0))
    assert (extraction.posts, extraction.skipped) == ((), ())


def test_routes_match_case_insensitively_in_configuration_order() -> None:
    router = Router(ROUTES)
    assert router.routes_for(["Dog", "CAT"]) == ["cats", "dogs"]
    assert router.routes_for(["Puppy"]) == ["dogs"]
    assert router.routes_for(["caturday"]) == []


def test_a_post_on_two_routes_gives_one_message_per_photo_and_route() -> None:
    # GIVEN the #Cat #Dog post with two photos
    post = extract_photos(page("x_api_search_photos.json", 1)).posts[0]

    # WHEN it is routed
    routed = Router(ROUTES).route_page([post])

    # THEN each queue gets both photos
    assert {
        route: [m.media_key for m in messages] for route, messages in routed.messages.items()
    } == {
        "cats": ["3_1861703584577556500", "3_1861703584577556503"],
        "dogs": ["3_1861703584577556500", "3_1861703584577556503"],
    }
    assert routed.messages["dogs"][0].model_dump() == {
        "url": "https://pbs.twimg.com/media/GdXjwE4WQAAd1Ls.jpg",
        "post_id": "1861703739766804505",
        "media_key": "3_1861703584577556500",
        "text": "Best friends since day one 🐱🐶 #Cat #Dog https://t.co/Gh6YbN1sDe",
        "hashtags": ["Cat", "Dog"],
        "route": "dogs",
        "attempt": 0,
    }


def test_post_matching_no_route_is_unrouted() -> None:
    post = PostPhotos(
        post_id="1861704939338346519",
        text="Monday mood #caturday",
        hashtags=("caturday",),
        photos=(Photo(media_key="3_1", url=GOOD_URL),),
    )
    routed = Router(ROUTES).route_page([post])
    assert routed.unrouted == ("1861704939338346519",)
    assert routed.messages == {"cats": [], "dogs": []}


def test_photo_that_breaks_the_message_contract_costs_only_itself_on_each_route() -> None:
    # GIVEN a post on both routes with one photo served over plain http and one good photo
    post = PostPhotos(
        post_id="1861704939338346519",
        text="my #cat and #dog",
        hashtags=("cat", "dog"),
        photos=(
            Photo(media_key="3_1", url="http://pbs.twimg.com/media/GdXk3pRWsAAe9Tn.jpg"),
            Photo(media_key="3_2", url=GOOD_URL),
        ),
        problems=(PhotoProblem(media_key="3_3", error="MediaMissing", reason="gone"),),
    )

    # WHEN routed
    routed = Router(ROUTES).route_page([post])

    # THEN the good photo goes to both routes, and each bad one is rejected once per route
    assert {route: [m.media_key for m in found] for route, found in routed.messages.items()} == {
        "cats": ["3_2"],
        "dogs": ["3_2"],
    }
    assert routed.rejected == tuple(
        RejectedPhoto(
            post_id="1861704939338346519", media_key=key, route=route, error=error, reason=reason
        )
        for route in ("cats", "dogs")
        for key, error, reason in (
            ("3_3", "MediaMissing", "gone"),
            ("3_1", "InvalidPhotoMessage", "url: Value error, url must use https"),
        )
    )


def test_long_text_is_cut_to_the_contract_limit() -> None:
    post = PostPhotos(
        post_id="1861704939338346519",
        text="#cat " + "x" * 5_000,
        hashtags=("cat",),
        photos=(Photo(media_key="3_1", url=GOOD_URL),),
    )
    assert len(Router(ROUTES).route_page([post]).messages["cats"][0].text) == 4_000
