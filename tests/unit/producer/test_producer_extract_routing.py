"""Photos and hashtags from a search page, and fan-out to routes."""

from __future__ import annotations

from producer.extract import Photo, PostPhotos, SkippedPost, extract_photos
from producer.routing import RejectedPost, Router
from producer.xapi_models import XSearchResponse
from tests.unit.producer.producer_testkit import load_event

ROUTES = {"cats": ("cat", "cats", "kitten"), "dogs": ("dog", "dogs", "puppy")}


def page(recording: str, index: int) -> XSearchResponse:
    return XSearchResponse.model_validate(load_event(recording)["pages"][index]["body"])


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


def test_media_missing_from_includes_skips_the_post() -> None:
    # GIVEN a page where one post's media key is not in includes
    extraction = extract_photos(page("x_api_search_missing_includes.json", 0))

    # THEN that post is skipped with the missing key, the other is kept
    assert [post.post_id for post in extraction.posts] == ["1861727349504217093"]
    assert extraction.skipped == (
        SkippedPost(
            post_id="1861727177537101847",
            reason="missing_media",
            missing_media_keys=("3_1861727022347853842",),
        ),
    )


def test_page_without_includes_is_handled() -> None:
    # GIVEN a page with attachments but no includes at all
    extraction = extract_photos(page("x_api_search_missing_includes.json", 1))

    # THEN nothing crashes and the post is skipped
    assert extraction.posts == ()
    assert [skipped.reason for skipped in extraction.skipped] == ["missing_media"]


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
        photos=(Photo(media_key="3_1", url="https://pbs.twimg.com/media/GdXk3pRWsAAe9Tn.jpg"),),
    )
    routed = Router(ROUTES).route_page([post])
    assert routed.unrouted == ("1861704939338346519",)
    assert routed.messages == {"cats": [], "dogs": []}


def test_photo_that_breaks_the_message_contract_rejects_the_post() -> None:
    # GIVEN a photo served over plain http
    post = PostPhotos(
        post_id="1861704939338346519",
        text="my #cat",
        hashtags=("cat",),
        photos=(Photo(media_key="3_1", url="http://pbs.twimg.com/media/GdXk3pRWsAAe9Tn.jpg"),),
    )

    # WHEN routed THEN the post is rejected with the reason and nothing is built
    routed = Router(ROUTES).route_page([post])
    assert routed.rejected == (
        RejectedPost(post_id="1861704939338346519", error="url: Value error, url must use https"),
    )
    assert routed.messages == {"cats": [], "dogs": []}


def test_long_text_is_cut_to_the_contract_limit() -> None:
    post = PostPhotos(
        post_id="1861704939338346519",
        text="#cat " + "x" * 5_000,
        hashtags=("cat",),
        photos=(Photo(media_key="3_1", url="https://pbs.twimg.com/media/GdXk3pRWsAAe9Tn.jpg"),),
    )
    assert len(Router(ROUTES).route_page([post]).messages["cats"][0].text) == 4_000
