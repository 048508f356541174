"""One workload for every design: N unique images, plus duplicate posts of some of them.

Every post is a route message as the producer publishes it (``PhotoMessage``'s shape) on the
``cats`` route. Each unique image has its own URL and its own bytes (the image server's
``/unique/<tag>/<photo>.jpg``), so a URL labelled twice shows in Rekognition's counts whatever
the design passes to it (an S3 object or the bytes).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Final

from pydantic import BaseModel, ConfigDict

ROUTE: Final = "cats"
HASHTAG: Final = "cat"
PHOTOS: Final = ("chelsea", "astronaut", "coffee", "rocket")


class Post(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    post_id: str
    duplicate: bool

    def body(self) -> str:
        """The route message, as ``functions/common/messages.PhotoMessage`` defines it."""
        return json.dumps(
            {
                "url": self.url,
                "post_id": self.post_id,
                "media_key": f"3_{self.post_id}",
                "text": f"bench post {self.post_id} #{HASHTAG}",
                "hashtags": [HASHTAG],
                "route": ROUTE,
                "attempt": 0,
            }
        )


class Workload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    posts: tuple[Post, ...]

    @property
    def unique_urls(self) -> frozenset[str]:
        return frozenset(post.url for post in self.posts)

    @property
    def duplicates(self) -> int:
        return sum(post.duplicate for post in self.posts)


def build_workload(
    images: int, duplicate_share: float, seed: int, url_for: Callable[[str, str], str]
) -> Workload:
    """``images`` unique photos and ``round(images * duplicate_share)`` duplicate posts of them.

    ``url_for(photo, tag)`` makes the URL of a distinct image (``ImageServer.unique_url``).
    A duplicate is posted after its original in the publishing order, as on X.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    originals = [
        Post(url=url_for(PHOTOS[n % len(PHOTOS)], f"img-{n}"), post_id=str(n + 1), duplicate=False)
        for n in range(images)
    ]
    posts = list(originals)
    for n in range(round(images * duplicate_share)):
        # Never first: posts[0] is an original, so every position has one before it.
        position = rng.randrange(1, len(posts) + 1)
        original = rng.choice([post for post in posts[:position] if not post.duplicate])
        copy = Post(url=original.url, post_id=str(images + n + 1), duplicate=True)
        posts.insert(position, copy)
    return Workload(posts=tuple(posts))
