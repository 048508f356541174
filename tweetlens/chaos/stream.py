"""The seeded chaos stream: X API pages whose photo URLs fail in every designed way.

Same base URL and config, same stream; ``expected`` says how each unique URL must end.
"""

from __future__ import annotations

import datetime
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tweetlens.chaos.config import ChaosConfig
from tweetlens.demo_stream import (
    DEFAULT_ROUTES,
    DEFAULT_START,
    FLAKY_PHOTO,
    PHOTO_LABELS,
    RATE_WINDOW_SECONDS,
    MediaItem,
    Recording,
    paginate,
)
from tweetlens_xapi.models import (
    PHOTO,
    MediaType,
    XAttachments,
    XEntities,
    XHashtag,
    XPost,
)
from tweetlens_xapi.recording import RecordedPage, ReplayRecording

# Each TRICKLE part arrives within the fetch function's 10 s read timeout; the body as a
# whole takes three pauses.
TRICKLE_PAUSE_MS: Final = 3_000
_FIRST_POST_ID: Final = 1_890_000_000_000_000_000
_FIRST_MEDIA_ID: Final = 1_889_000_000_000_000_000

# FetchImageFunction's error for each broken image-host route (the URL's fault name).
HOST_FAULTS: Final[Mapping[str, str]] = {
    "404": "ImageNotFound",
    "410": "ImageNotFound",
    "500": "ImageHostError",
    "reset": "ImageHostError",
    "too-large": "ImageTooLarge",
    "not-an-image": "UnsupportedImageType",
    "redirect-private": "BlockedUrl",
}
TIMEOUT_FAULT: Final = "slow"  # pauses longer than the read timeout: ImageHostError
INVALID_IMAGE_ERROR: Final = "Rekognition.InvalidImageFormatException"
# Executions held in Fetch Image (the image host's hold route: slow the first time, fast
# after) so they can be aborted or timed out; how their letters and results name it.
HOLD_MS: Final = 3_000
ABORT_ERROR: Final = "ChaosAbort"
EXECUTION_TIMEOUT_ERROR: Final = "States.Timeout"
_CAT_TAGS: Final = (("cat",), ("kitten",), ("Cats", "caturday"), ("CAT",))
_DOG_TAGS: Final = (("dog",), ("puppy",), ("Dogs",))
_WORDS: Final = ("Nap time", "Zoomies", "Window patrol", "Muddy paws", "Look at this face")


POISON_MEDIA: Final = "chaos: includes.media is not a list"


@dataclass(frozen=True)
class PoisonPage:
    """A 200 page whose envelope fails validation, served after page ``after`` of the stream.

    Its ``meta`` is sound (the producer can still go on to the next page), so it must end as
    one producer page letter holding the body; its posts are never published.
    """

    after: int
    newest_id: str
    body: dict[str, Any]


@dataclass
class ChaosStream:
    recording: Recording
    # Per unique photo URL: "DONE" or the dead-letter error it must end with.
    expected: dict[str, str]
    # Per URL that may end DONE: the labels the local labeler finds.
    labels: dict[str, list[str]]
    invalid_urls: list[str]
    # URLs whose first execution is aborted / timed out while it fetches.
    aborted_urls: list[str] = field(default_factory=list)
    timed_out_urls: list[str] = field(default_factory=list)
    poison_pages: list[PoisonPage] = field(default_factory=list)
    # Media keys whose route messages SQS refuses as the sender's fault.
    refused_media_keys: list[str] = field(default_factory=list)

    def recording_json(self) -> str:
        """The replay recording the producer reads: the pages, poison pages spliced in.

        Pages are relinked in their served order (X's next_token is opaque: any unique
        string will do), so each poison page sits between the pages around it.
        """
        served: list[tuple[RecordedPage, dict[str, Any]]] = []
        for index, page in enumerate(self.recording.replay().pages):
            served.append((page, page.json_body))
            served.extend(
                (page, poison.body) for poison in self.poison_pages if poison.after == index
            )
        pages: list[RecordedPage] = []
        for number, (page, body) in enumerate(served):
            meta = {name: value for name, value in body["meta"].items() if name != "next_token"}
            if number < len(served) - 1:
                meta["next_token"] = f"chaos-served-{number + 1:04d}"
            pages.append(
                RecordedPage(status=page.status, headers=page.headers, body={**body, "meta": meta})
            )
        return ReplayRecording(pages=pages).to_json()


Draft = tuple[str, tuple[str, ...], list[MediaItem]]


class _StreamBuilder:
    """The photo URLs of one stream and how each must end, drawn from one seeded generator.

    The order of the generator's draws is the stream: a change to it changes every stream.
    """

    def __init__(self, base_url: str, config: ChaosConfig) -> None:
        # Reproducible test data from a seed, not secrets: a plain PRNG is the right tool.
        self.rng = random.Random(config.seed)  # noqa: S311
        self.config = config
        self.base = base_url.rstrip("/")
        self.expected: dict[str, str] = {}
        self.labels: dict[str, list[str]] = {}
        self.invalid: list[str] = []
        self.held: dict[str, list[str]] = {"abort": [], "execution-timeout": []}
        self.next_media = _FIRST_MEDIA_ID
        self.budget = {"timeouts": config.timeouts, "slow": config.slow_bodies}
        self.variants = max(4, config.posts // 5)
        self.photo_names = sorted(PHOTO_LABELS)
        # Every fault at least once, early in the stream, whatever the size; the rest at random.
        pending = [f"host:{fault}" for fault in sorted(HOST_FAULTS)] + ["unavailable", "invalid"]
        pending += ["timeout"] * min(1, config.timeouts) + ["slow"] * min(1, config.slow_bodies)
        pending += ["abort"] * config.execution_aborts
        pending += ["execution-timeout"] * config.execution_timeouts
        self.rng.shuffle(pending)
        self.pending = pending

    def item(self, kind: MediaType, url: str | None) -> MediaItem:
        self.next_media += self.rng.randint(1_000, 90_000)
        prefix = {"photo": "3", "video": "7", "animated_gif": "16"}[kind]
        return MediaItem(f"{prefix}_{self.next_media}", kind, url)

    def done(self, url: str, photo: str) -> str:
        self.expected[url] = "DONE"
        self.labels[url] = list(PHOTO_LABELS[photo])
        return url

    def failing(self, url: str, error: str) -> str:
        self.expected[url] = error
        return url

    def broken_image(self, photo: str, index: int) -> str:
        url = self.failing(
            f"{self.base}/media/{photo}.jpg?format=broken{index}", INVALID_IMAGE_ERROR
        )
        self.invalid.append(url)
        return url

    def forced(self, kind: str, index: int) -> str:
        """A URL with the fault ``kind``: ``host:<route>``, timeout, slow, unavailable, held."""
        base, seed = self.base, self.config.seed
        if kind.startswith("host:"):
            fault = kind.removeprefix("host:")
            return self.failing(f"{base}/faults/{fault}?n={index}", HOST_FAULTS[fault])
        if kind == "timeout":
            self.budget["timeouts"] -= 1
            return self.failing(f"{base}/faults/{TIMEOUT_FAULT}?n={index}", "ImageHostError")
        if kind == "slow":
            self.budget["slow"] -= 1
            return self.done(f"{base}/faults/trickle-{TRICKLE_PAUSE_MS}?n={index}", FLAKY_PHOTO)
        if kind == "unavailable":
            return self.done(f"{base}/faults/unavailable-chaos{seed}n{index}", FLAKY_PHOTO)
        if kind in self.held:
            url = f"{base}/faults/hold-{HOLD_MS}-chaos{seed}{kind}{index}"
            self.held[kind].append(url)
            # The held attempt fails for good; only its own message starts the next one, run
            # again (EXPRESS) when the classifier waiting for it was killed and the sweep closed
            # its claim LeaseExpired. The image host answers that one at once: DONE with the
            # photo's labels is its other end.
            self.labels[url] = list(PHOTO_LABELS[FLAKY_PHOTO])
            return self.failing(url, ABORT_ERROR if kind == "abort" else EXECUTION_TIMEOUT_ERROR)
        return self.broken_image(self.rng.choice(self.photo_names), index)

    def photo_url(self, index: int) -> str:
        if self.pending:
            return self.forced(self.pending.pop(), index)
        rng, config = self.rng, self.config
        roll = rng.random()
        if roll < config.fault_fraction:
            return self.random_fault(index)
        photo = rng.choice(self.photo_names)
        if roll < config.fault_fraction + config.invalid_image_fraction:
            return self.broken_image(photo, index)
        if rng.random() < 0.4:
            return self.done(f"{self.base}/media/{photo}.jpg", photo)  # very popular URLs
        return self.done(f"{self.base}/media/{photo}.jpg?v={rng.randrange(self.variants)}", photo)

    def random_fault(self, index: int) -> str:
        rng = self.rng
        if self.expected and rng.random() < 0.25:
            held_urls = {url for urls in self.held.values() for url in urls}
            failing = [
                url
                for url, fate in self.expected.items()
                if fate != "DONE" and url not in held_urls
            ]
            if failing:
                # The same broken URL in many posts. A later post of one whose host failed
                # (ImageHostError: 500, reset, the timeout) fetches it again and fails again, so
                # it ends with its own letter; of any other, it is a duplicate of the failure.
                return rng.choice(failing)
        if self.budget["timeouts"] and rng.random() < 0.1:
            return self.forced("timeout", index)
        if self.budget["slow"] and rng.random() < 0.15:
            return self.forced("slow", index)
        if rng.random() < 0.15:
            return self.forced("unavailable", index)
        return self.forced(f"host:{rng.choice(sorted(HOST_FAULTS))}", index)

    def drafts(self) -> list[Draft]:
        """Each post's words, hashtags and media, oldest first."""
        rng = self.rng
        drafts: list[Draft] = []
        for index in range(self.config.posts):
            roll = rng.random()
            words = rng.choice(_WORDS)
            tags = rng.choice(_CAT_TAGS) if rng.random() < 0.6 else rng.choice(_DOG_TAGS)
            if roll < 0.05:
                drafts.append((words, tags, []))
            elif roll < 0.09:
                kind: MediaType = rng.choice(("video", "animated_gif"))
                drafts.append((words, tags, [self.item(kind, None)]))
            elif roll < 0.13:
                drafts.append((words, ("coffee",), [self.item(PHOTO, self.photo_url(index))]))
            elif roll < 0.17 and drafts:
                # A retweet: an earlier post's media, same media keys and URLs.
                with_media = [draft for draft in drafts if draft[2]]
                media = list(rng.choice(with_media)[2]) if with_media else []
                drafts.append(("RT " + words, tags, media))
            else:
                if rng.random() < 0.15:
                    tags = (rng.choice(_CAT_TAGS)[0], rng.choice(_DOG_TAGS)[0])
                count = rng.choices((1, 2, 3), weights=(85, 10, 5))[0]
                photos = [self.item(PHOTO, self.photo_url(index)) for _ in range(count)]
                drafts.append((words, tags, photos))
        return drafts


def build_chaos_stream(base_url: str, config: ChaosConfig) -> ChaosStream:
    """``config.posts`` posts, newest first in pages; same base URL and config, same stream."""
    builder = _StreamBuilder(base_url, config)
    recording = _paged(builder.drafts(), builder.rng, config)
    # Their own generator: the stream above stays what it was for a seed.
    extra = random.Random(config.seed + 2)  # noqa: S311 - test data
    return ChaosStream(
        recording=recording,
        expected=builder.expected,
        labels=builder.labels,
        invalid_urls=builder.invalid,
        aborted_urls=builder.held["abort"],
        timed_out_urls=builder.held["execution-timeout"],
        poison_pages=_poison_pages(recording, config.poison_pages),
        refused_media_keys=_refused_media(recording, builder.expected, builder.base, config, extra),
    )


def _poison_pages(recording: Recording, count: int) -> list[PoisonPage]:
    """``count`` poison pages spread over the stream, each with ids between its neighbours'."""
    pages = recording.pages
    poison: list[PoisonPage] = []
    for number in range(count):
        after = max(0, (number + 1) * len(pages) // (count + 1) - 1)
        # The pages' own ids (a written page is never empty, so its meta ids are the same).
        above = min(int(post.id) for post in pages[after].body.data)
        below = (
            max(int(post.id) for post in pages[after + 1].body.data)
            if after + 1 < len(pages)
            else 0
        )
        # Several poison pages after one page share its gap, newest first.
        siblings = sum(1 for page in poison if page.after == after)
        newest = above - 1 - siblings * 3
        if newest - 1 <= below:
            raise ValueError("no room for a poison page between two pages")
        posts = [
            {
                "id": str(post_id),
                "text": f"Poison page {number} #cat",
                "created_at": "2026-01-15T12:00:00.000Z",
                "author_id": "1400000000000000000",
                "attachments": {"media_keys": [f"3_{post_id}"]},
            }
            for post_id in (newest, newest - 1)
        ]
        body = {
            "data": posts,
            # The envelope fault: the producer cannot read the page's media, so none of its
            # posts can be published; the meta below still says where the stream goes on.
            "includes": {"media": POISON_MEDIA},
            "meta": {"newest_id": str(newest), "oldest_id": str(newest - 1), "result_count": 2},
        }
        poison.append(PoisonPage(after=after, newest_id=str(newest), body=body))
    return poison


def _refused_media(
    recording: Recording,
    expected: Mapping[str, str],
    base: str,
    config: ChaosConfig,
    rng: random.Random,
) -> list[str]:
    """Photos SQS will refuse: published ones with a plain image URL (no other fault on them)."""
    urls = {
        media.media_key: media.url
        for page in recording.pages
        for media in (page.body.includes.media if page.body.includes else [])
    }
    published = sorted({key for _post, key, _route in expected_message_keys(recording)})
    plain = [
        key
        for key in published
        if (url := urls.get(key))
        and url.startswith(f"{base}/media/")
        and expected.get(url) == "DONE"
    ]
    return sorted(rng.sample(plain, min(config.refused_photos, len(plain))))


def _paged(
    drafts: list[Draft],
    rng: random.Random,
    config: ChaosConfig,
) -> Recording:
    posts: list[tuple[XPost, list[MediaItem]]] = []
    post_id = _FIRST_POST_ID
    moment = DEFAULT_START
    for index, (words, tags, items) in enumerate(drafts):
        post_id += rng.randint(10_000_000, 900_000_000)
        moment += datetime.timedelta(seconds=rng.randint(1, 30))
        text = words
        hashtags: list[XHashtag] = []
        for tag in tags:
            start = len(text) + 1
            text += f" #{tag}"
            hashtags.append(XHashtag(start=start, end=len(text), tag=tag))
        post = XPost(
            id=str(post_id),
            text=text,
            created_at=moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            author_id=str(1_400_000_000_000_000_000 + index % 97),
            entities=XEntities(hashtags=hashtags) if hashtags else None,
            attachments=XAttachments(media_keys=[m.media_key for m in items]) if items else None,
        )
        posts.append((post, items))
    return paginate(
        posts,
        page_size=config.page_size,
        reset_at=moment + datetime.timedelta(seconds=RATE_WINDOW_SECONDS),
        next_token=lambda number: f"chaos{config.seed}p{number:03d}",
    )


def expected_message_keys(recording: Recording) -> Counter[tuple[str, str, str]]:
    """(post id, media key, route) of every message the producer must publish once.

    The producer's rules: photos with a URL only, hashtags compared case-insensitively, one
    message per (post, photo, route).
    """
    route_tags = {route: {tag.lower() for tag in tags} for route, tags in DEFAULT_ROUTES.items()}
    keys: Counter[tuple[str, str, str]] = Counter()
    for page in recording.pages:
        media = {m.media_key: m for m in (page.body.includes.media if page.body.includes else [])}
        for post in page.body.data:
            photos = [
                key
                for key in (post.attachments.media_keys if post.attachments else [])
                if key in media and media[key].type == PHOTO and media[key].url
            ]
            tags = {tag.tag.lower() for tag in (post.entities.hashtags if post.entities else [])}
            for route, wanted in route_tags.items():
                if tags & wanted:
                    keys.update((post.id, key, route) for key in photos)
    return keys
