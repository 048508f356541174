"""A recorded X API v2 recent-search stream for the local demo, and what it must produce.

``build_recording`` writes about fifty posts in the producer's replay recording format: cat,
people, coffee and rocket photos under cat and dog hashtags, the same photo URL in several
posts, posts re-using another post's media (as retweets do), videos, GIFs, posts without
media, posts with several photos, and photo URLs that fail on the loopback image server
(404, 410, 500-then-OK, not an image, too large, redirect to a private address). Pages are
newest first and linked by ``next_token``, as X returns them.

``expected_outcome`` reads a recording the way the producer and the pipeline treat it and
says how many messages each route gets, how many distinct URLs must be classified, which
must fail and with which error, and which labels the local labeler must find.
"""

from __future__ import annotations

import datetime
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from tweetlens_xapi.models import (
    PHOTO,
    MediaType,
    XAttachments,
    XEntities,
    XHashtag,
    XMedia,
    XMediaIncludes,
    XMeta,
    XPost,
    XPostsPage,
)
from tweetlens_xapi.recording import RecordedPage, ReplayRecording

# Routes and hashtags as the template's defaults (CatHashtags, DogHashtags).
DEFAULT_ROUTES: Final[Mapping[str, tuple[str, ...]]] = {
    "cats": ("cat", "cats", "kitten"),
    "dogs": ("dog", "dogs", "puppy"),
}
DEFAULT_SEED: Final = 2026
DEFAULT_PAGE_SIZE: Final = 10
# A fixed instant keeps the recording byte-for-byte reproducible from its seed.
DEFAULT_START: Final = datetime.datetime(2026, 1, 15, 12, 0, tzinfo=datetime.UTC)
RATE_LIMIT: Final = 450
RATE_WINDOW_SECONDS: Final = 15 * 60
_FIRST_POST_ID: Final = 1_879_000_000_000_000_000
_FIRST_MEDIA_ID: Final = 1_878_000_000_000_000_000
_FIRST_AUTHOR_ID: Final = 1_400_000_000_000_000_000

# The labels the local labeler finds on each shipped photo (what a test can insist on).
PHOTO_LABELS: Final[Mapping[str, tuple[str, ...]]] = {
    "chelsea": ("Animal", "Cat", "Mammal", "Pet"),
    "astronaut": ("Face", "Head", "Person"),
    "coffee": (),
    "rocket": (),
}
# The photo the image server's flaky route serves once it stops failing.
FLAKY_PHOTO: Final = "chelsea"
# FetchImageFunction's error for each broken route of the image server.
FAULT_ERRORS: Final[Mapping[str, str]] = {
    "404": "ImageNotFound",
    "410": "ImageNotFound",
    "not-an-image": "UnsupportedImageType",
    "too-large": "ImageTooLarge",
    "redirect-private": "BlockedUrl",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Page(_Strict):
    status: Literal[200]
    headers: dict[str, str]
    body: XPostsPage


class Recording(_Strict):
    """The producer's replay recording, pages typed: recent-search pages, newest first."""

    pages: Annotated[list[Page], Field(min_length=1)]

    def replay(self) -> ReplayRecording:
        """The recording as the producer reads it (each body as X sends it)."""
        return ReplayRecording(
            pages=[
                RecordedPage(status=page.status, headers=page.headers, body=page.body.x_json())
                for page in self.pages
            ]
        )

    def to_json(self) -> str:
        return self.replay().to_json()


class ExpectedOutcome(_Strict):
    """What the pipeline must do with a recording, derived from the recording itself."""

    posts: int
    posts_with_photos: int
    messages_per_route: dict[str, int]
    messages: int
    unique_urls: int
    # Messages whose URL another message already carries: caught before Rekognition.
    duplicate_messages: int
    failing_urls: dict[str, str]
    classified_urls: list[str]
    # Per classified URL, the label names the local labeler finds.
    labels: dict[str, list[str]]
    # URLs that fail on their first fetches and succeed on a retry.
    flaky_urls: list[str]


# -- building ------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaItem:
    media_key: str
    type: MediaType
    url: str | None


@dataclass
class _DraftPost:
    words: str
    tags: tuple[str, ...]
    media: list[MediaItem] = field(default_factory=list)


@dataclass
class _Ids:
    """Increasing X-style snowflake ids, spaced irregularly but reproducibly."""

    rng: random.Random
    next_media: int = _FIRST_MEDIA_ID

    def media_key(self, kind: MediaType) -> str:
        self.next_media += self.rng.randint(1_000, 90_000)
        prefix = {"photo": "3", "video": "7", "animated_gif": "16"}[kind]
        return f"{prefix}_{self.next_media}"


_CAT_WORDS: Final = (
    "Sunday nap champion, do not disturb",
    "Caught mid-stretch",
    "She owns the sofa now",
    "Window patrol, reporting for duty",
    "Who needs a bed when there is a keyboard",
    "Judging you politely",
)
_DOG_WORDS: Final = (
    "First walk in the snow",
    "Zoomies at the park",
    "Very good boy, very muddy paws",
    "Fetch, forever",
)
_OTHER_WORDS: Final = (
    "Morning fuel before the vet visit",
    "Launch day! Not a pet, but still",
    "Selfie with the crew",
)
_CAT_TAGS: Final[tuple[tuple[str, ...], ...]] = (
    ("cat",),
    ("kitten",),
    ("cat", "caturday"),
    ("Cats",),
    ("CAT", "kitten"),
)
_DOG_TAGS: Final[tuple[tuple[str, ...], ...]] = (
    ("dog",),
    ("puppy",),
    ("dog", "dogsofx"),
    ("Puppy",),
)


def _photo(ids: _Ids, url: str) -> MediaItem:
    return MediaItem(ids.media_key("photo"), "photo", url)


def _drafts(base_url: str, rng: random.Random) -> list[_DraftPost]:
    """The posts, oldest first. Fixed kinds and counts; words, tags and photos drawn by rng."""
    ids = _Ids(rng)
    base = base_url.rstrip("/")

    def media(name: str) -> str:
        return f"{base}/media/{name}.jpg"

    def fault(name: str) -> str:
        return f"{base}/faults/{name}"

    def cat_tags() -> tuple[str, ...]:
        return rng.choice(_CAT_TAGS)

    def dog_tags() -> tuple[str, ...]:
        return rng.choice(_DOG_TAGS)

    drafts: list[_DraftPost] = []
    # Cat-route posts, one photo each: mostly the cat, sometimes not a cat at all. The same
    # photo URL appears in several posts, which the classifier must catch as duplicates.
    for _ in range(14):
        name = rng.choice(("chelsea", "chelsea", "chelsea", "astronaut", "coffee"))
        drafts.append(_DraftPost(rng.choice(_CAT_WORDS), cat_tags(), [_photo(ids, media(name))]))
    # Dog-route posts: the demo has no dog photo, which is the point of the label check.
    for _ in range(8):
        name = rng.choice(("rocket", "coffee", "astronaut", "chelsea"))
        drafts.append(_DraftPost(rng.choice(_DOG_WORDS), dog_tags(), [_photo(ids, media(name))]))
    # Both routes: one message per route for the same photo.
    for _ in range(3):
        both = (cat_tags()[0], dog_tags()[0])
        drafts.append(_DraftPost("Best friends", both, [_photo(ids, media("chelsea"))]))
    # Several photos in one post.
    for count in (2, 3, 4):
        names = rng.sample(("chelsea", "astronaut", "coffee", "rocket"), count)
        drafts.append(
            _DraftPost(
                "Photo dump from the weekend",
                cat_tags(),
                [_photo(ids, media(name)) for name in names],
            )
        )
    # Videos, GIFs, a mix of video and photo, and posts with no media at all.
    for kind in ("video", "video", "animated_gif", "animated_gif"):
        tags = cat_tags() if rng.random() < 0.5 else dog_tags()
        drafts.append(
            _DraftPost("Watch till the end", tags, [MediaItem(ids.media_key(kind), kind, None)])
        )
    drafts.append(
        _DraftPost(
            "Clip and a still",
            cat_tags(),
            [MediaItem(ids.media_key("video"), "video", None), _photo(ids, media("chelsea"))],
        )
    )
    for _ in range(3):
        drafts.append(_DraftPost(rng.choice(_CAT_WORDS + _DOG_WORDS), cat_tags()))
    # Photos under hashtags no route listens to.
    drafts.append(_DraftPost(_OTHER_WORDS[0], ("coffee",), [_photo(ids, media("coffee"))]))
    drafts.append(_DraftPost(_OTHER_WORDS[1], ("spacex",), [_photo(ids, media("rocket"))]))
    # Broken photos: every way the image host can fail the fetch function.
    for name in ("404", "410", "not-an-image", "too-large", "redirect-private"):
        drafts.append(_DraftPost(rng.choice(_CAT_WORDS), cat_tags(), [_photo(ids, fault(name))]))
    flaky = fault(f"flaky-demo{rng.randint(100, 999)}")
    drafts.append(_DraftPost(rng.choice(_CAT_WORDS), cat_tags(), [_photo(ids, flaky)]))
    drafts.append(_DraftPost(rng.choice(_DOG_WORDS), dog_tags(), [_photo(ids, flaky)]))
    drafts.append(_DraftPost("Again!", cat_tags(), [_photo(ids, fault("404"))]))

    rng.shuffle(drafts)
    # "Retweeted media": later posts carrying an earlier post's media, same media_key and URL.
    with_photos = [draft for draft in drafts if any(m.type == "photo" for m in draft.media)]
    for original in rng.sample(with_photos, 4):
        tags = cat_tags() if rng.random() < 0.5 else dog_tags()
        drafts.append(_DraftPost("RT this gem", tags, list(original.media)))
    return drafts


def _text_and_entities(words: str, tags: Sequence[str]) -> tuple[str, XEntities | None]:
    text = words
    hashtags: list[XHashtag] = []
    for tag in tags:
        text += " "
        start = len(text)
        text += f"#{tag}"
        hashtags.append(XHashtag(start=start, end=len(text), tag=tag))
    return text, (XEntities(hashtags=hashtags) if hashtags else None)


def build_recording(
    base_url: str,
    *,
    seed: int = DEFAULT_SEED,
    page_size: int = DEFAULT_PAGE_SIZE,
    start: datetime.datetime = DEFAULT_START,
) -> Recording:
    """The demo stream as replay pages, newest post first; same arguments, same recording."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"base_url must be an https URL, got {base_url!r}")
    # Reproducible demo data from a seed, not secrets: a plain PRNG is the right tool.
    rng = random.Random(seed)  # noqa: S311
    drafts = _drafts(base_url, rng)

    posts: list[tuple[XPost, list[MediaItem]]] = []
    post_id = _FIRST_POST_ID
    moment = start
    for index, draft in enumerate(drafts):
        post_id += rng.randint(10_000_000, 900_000_000)
        moment += datetime.timedelta(seconds=rng.randint(5, 120))
        text, entities = _text_and_entities(draft.words, draft.tags)
        post = XPost(
            id=str(post_id),
            text=text,
            created_at=moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            author_id=str(_FIRST_AUTHOR_ID + (index * 7919) % 23),
            entities=entities,
            attachments=(
                XAttachments(media_keys=[m.media_key for m in draft.media]) if draft.media else None
            ),
        )
        posts.append((post, draft.media))

    return paginate(
        posts,
        page_size=page_size,
        reset_at=moment + datetime.timedelta(seconds=RATE_WINDOW_SECONDS),
        next_token=lambda number: f"demo{seed}p{number:02d}",
    )


def paginate(
    posts: Sequence[tuple[XPost, Sequence[MediaItem]]],
    *,
    page_size: int,
    reset_at: datetime.datetime,
    next_token: Callable[[int], str],
) -> Recording:
    """Recent-search pages over `posts` (oldest first): newest first, `page_size` a page,
    each with its media in `includes` and the rate-limit headers counting down."""
    newest_first = list(reversed(posts))
    chunks = [newest_first[i : i + page_size] for i in range(0, len(newest_first), page_size)]
    reset = int(reset_at.timestamp())
    pages: list[Page] = []
    for number, chunk in enumerate(chunks):
        media: dict[str, XMedia] = {}
        for _post, items in chunk:
            for item in items:
                media.setdefault(
                    item.media_key, XMedia(media_key=item.media_key, type=item.type, url=item.url)
                )
        ids = [int(post.id) for post, _ in chunk]
        last = number == len(chunks) - 1
        pages.append(
            Page(
                status=200,
                headers={
                    "x-rate-limit-limit": str(RATE_LIMIT),
                    "x-rate-limit-remaining": str(RATE_LIMIT - 1 - number),
                    "x-rate-limit-reset": str(reset),
                },
                body=XPostsPage(
                    data=[post for post, _ in chunk],
                    includes=XMediaIncludes(media=list(media.values())) if media else None,
                    meta=XMeta(
                        newest_id=str(max(ids)),
                        oldest_id=str(min(ids)),
                        result_count=len(chunk),
                        next_token=None if last else next_token(number + 1),
                    ),
                ),
            )
        )
    return Recording(pages=pages)


# -- expectations --------------------------------------------------------------------


def _fault_name(url: str) -> str | None:
    path = urlsplit(url).path
    return path.removeprefix("/faults/") if path.startswith("/faults/") else None


def _photo_name(url: str) -> str | None:
    path = urlsplit(url).path
    if path.startswith("/media/") and path.endswith(".jpg"):
        return path.removeprefix("/media/").removesuffix(".jpg")
    return None


def expected_outcome(
    recording: Recording, routes: Mapping[str, Sequence[str]] = DEFAULT_ROUTES
) -> ExpectedOutcome:
    """What the producer publishes for ``recording`` and what classification must give.

    Applies the producer's rules: photos only (``type == "photo"`` with a ``url``), hashtags
    from ``entities`` compared case-insensitively, one message per (post, photo, route).
    """
    route_tags = {route: {tag.lower() for tag in tags} for route, tags in routes.items()}
    per_route: Counter[str] = Counter(dict.fromkeys(routes, 0))
    urls: dict[str, None] = {}
    posts = 0
    posts_with_photos = 0
    messages = 0
    for page in recording.pages:
        media = {m.media_key: m for m in (page.body.includes.media if page.body.includes else [])}
        for post in page.body.data:
            posts += 1
            keys = post.attachments.media_keys if post.attachments else []
            photos = [
                url
                for key in keys
                if key in media and media[key].type == PHOTO and (url := media[key].url)
            ]
            if not photos:
                continue
            posts_with_photos += 1
            tags = {tag.tag.lower() for tag in (post.entities.hashtags if post.entities else [])}
            for route, wanted in route_tags.items():
                if tags & wanted:
                    for url in photos:
                        per_route[route] += 1
                        messages += 1
                        urls.setdefault(url)

    failing: dict[str, str] = {}
    classified: list[str] = []
    labels: dict[str, list[str]] = {}
    flaky: list[str] = []
    for url in urls:
        fault = _fault_name(url)
        if fault is not None and fault in FAULT_ERRORS:
            failing[url] = FAULT_ERRORS[fault]
            continue
        name = _photo_name(url)
        if fault is not None and fault.startswith("flaky-"):
            flaky.append(url)
            name = FLAKY_PHOTO
        if name is None or name not in PHOTO_LABELS:
            raise ValueError(f"no expectation for photo URL {url!r}")
        classified.append(url)
        labels[url] = list(PHOTO_LABELS[name])
    return ExpectedOutcome(
        posts=posts,
        posts_with_photos=posts_with_photos,
        messages_per_route=dict(per_route),
        messages=messages,
        unique_urls=len(urls),
        duplicate_messages=messages - len(urls),
        failing_urls=failing,
        classified_urls=classified,
        labels=labels,
        flaky_urls=flaky,
    )
